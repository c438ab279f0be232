"""Cinder's response bodies, action by action and release by release, validated with
Tempest's own response schemas (tempest.lib.api_schema.response.volume.*, Tempest 47.0.0).

Tempest is not in the project's venv (it pins a whole OpenStack stack): the bodies are
collected here from the lab through raw requests, and one subprocess in the pinned Tempest
venv (`make tempest-venv`, $(VANCOUVER_CACHE)/tempest-47.0.0) validates them all with
RestClient.validate_response, the check Tempest applies to every response it gets
(conformance/validate_schemas.py).
"""
import base64
import json
import uuid

import pytest

from tests.support.openstack import unique_name
from tests.support.tempest_schemas import tempest_python as _tempest_python, validate


class Collector:
    """Calls the lab and records each answer with the Tempest schema that names it."""

    def __init__(self, cc, cloud: str):
        self.cc, self.cloud, self.items = cc, cloud, []

    def call(self, schema: str, method: str, path: str, *, admin=False, version=None,
             **kw) -> dict:
        resp = self.cc.raw(self.cloud, method, path, admin=admin, version=version, **kw)
        body = resp.json() if resp.content else None
        who = "admin" if admin else "user"
        self.items.append({"label": f"{self.cloud} {who} {method} {path.split('?')[0]} "
                                    f"[{schema}] {resp.status_code}",
                           "schema": schema, "status": resp.status_code, "body": body})
        return body or {}


@pytest.mark.parametrize("cloud", ["pike", "mitaka"])
def test_cinder_bodies_pass_tempest_schemas(cc, cloud):
    """Every answer of the volume, type, snapshot, metadata, service, quota, limit,
    extension, pool, host and version actions, as a tenant user and as an admin."""
    _tempest_python()
    c = Collector(cc, cloud)
    project = cc.conn(cloud).current_project_id
    vol_type = c.call("volume.volume_types.create_volume_type", "POST", "/types", admin=True,
                      json={"volume_type": {"name": unique_name("schema"),
                                            "extra_specs": {"volume_backend_name": "ceph"}}})
    type_id = vol_type["volume_type"]["id"]
    cc.types.append((cloud, type_id))
    c.call("volume.volume_types.show_volume_type", "GET", f"/types/{type_id}", admin=True)
    c.call("volume.volume_types.show_volume_type", "GET", f"/types/{type_id}")
    c.call("volume.volume_types.list_volume_types", "GET", "/types", admin=True)
    c.call("volume.volume_types.list_volume_types", "GET", "/types")
    c.call("volume.volume_types.update_volume_types", "PUT", f"/types/{type_id}", admin=True,
           json={"volume_type": {"description": "schema check"}})
    c.call("volume.volume_types.list_volume_types_extra_specs", "GET",
           f"/types/{type_id}/extra_specs", admin=True)

    for admin in (False, True):
        vol = c.call("volume.volumes.create_volume", "POST", "/volumes", admin=admin,
                     json={"volume": {"size": 1, "name": unique_name("schema"),
                                      "volume_type": type_id}})["volume"]
        cc.volumes.append((cloud, vol["id"]))
        cc.wait_admin(cloud, vol["id"], lambda v: v["status"] == "available")
        c.call("volume.volumes.show_volume", "GET", f"/volumes/{vol['id']}", admin=admin)
        c.call("volume.volumes.update_volume", "PUT", f"/volumes/{vol['id']}", admin=admin,
               json={"volume": {"description": "schema check"}})
        c.call("volume.volumes.list_volumes_no_detail", "GET", "/volumes", admin=admin)
        c.call("volume.volumes.list_volumes_with_detail", "GET", "/volumes/detail?limit=1",
               admin=admin)
    vid = vol["id"]
    c.call("volume.volumes.create_volume_metadata", "POST", f"/volumes/{vid}/metadata",
           json={"metadata": {"k1": "v1"}}, admin=True)
    c.call("volume.volumes.show_volume_metadata", "GET", f"/volumes/{vid}/metadata", admin=True)
    c.call("volume.volumes.update_volume_metadata", "PUT", f"/volumes/{vid}/metadata",
           json={"metadata": {"k2": "v2"}}, admin=True)
    c.call("volume.volumes.show_volume_metadata_item", "GET", f"/volumes/{vid}/metadata/k2",
           admin=True)
    c.call("volume.volumes.update_volume_metadata_item", "PUT", f"/volumes/{vid}/metadata/k2",
           json={"meta": {"k2": "v3"}}, admin=True)
    c.call("volume.volumes.delete_volume_metadata_item", "DELETE",
           f"/volumes/{vid}/metadata/k2", admin=True)

    snap = c.call("volume.snapshots.create_snapshot", "POST", "/snapshots", admin=True,
                  json={"snapshot": {"volume_id": vid, "name": unique_name("schema")}})
    sid = snap["snapshot"]["id"]
    c.call("volume.snapshots.show_snapshot", "GET", f"/snapshots/{sid}", admin=True)
    c.call("volume.snapshots.update_snapshot", "PUT", f"/snapshots/{sid}", admin=True,
           json={"snapshot": {"description": "schema check"}})
    c.call("volume.snapshots.list_snapshots_no_detail", "GET", "/snapshots", admin=True)
    c.call("volume.snapshots.list_snapshots_with_detail", "GET", "/snapshots/detail",
           admin=True)
    c.call("volume.snapshots.create_snapshot_metadata", "POST", f"/snapshots/{sid}/metadata",
           json={"metadata": {"k": "v"}}, admin=True)
    c.call("volume.snapshots.show_snapshot_metadata_item", "GET",
           f"/snapshots/{sid}/metadata/k", admin=True)

    c.call("volume.services.list_services", "GET", "/os-services", admin=True)
    if cloud != "mitaka":   # Tempest 47's quota schema requires `groups` (Cinder >= 10)
        c.call("volume.quotas.show_quota_set", "GET", f"/os-quota-sets/{project}",
               admin=True)
        c.call("volume.quotas.show_quota_set_usage", "GET",
               f"/os-quota-sets/{project}?usage=true", admin=True)
        c.call("volume.quotas.show_quota_set", "GET", f"/os-quota-sets/{project}/defaults",
               admin=True)
    c.call("volume.limits.show_limits", "GET", "/limits")
    c.call("volume.extensions.list_extensions", "GET", "/extensions")
    c.call("volume.scheduler_stats.get_pools_no_detail", "GET", "/scheduler-stats/get_pools",
           admin=True)
    c.call("volume.scheduler_stats.get_pools_with_detail", "GET",
           "/scheduler-stats/get_pools?detail=true", admin=True)
    hosts = c.call("volume.hosts.list_hosts", "GET", "/os-hosts", admin=True)["hosts"]
    volume_host = next(h["host_name"] for h in hosts if h["service"] == "cinder-volume")
    c.call("volume.hosts.show_host", "GET", f"/os-hosts/{volume_host}", admin=True)
    c.call("volume.capabilities.show_backend_capabilities", "GET",
           f"/capabilities/{volume_host}", admin=True)
    c.call("volume.snapshots.delete_snapshot", "DELETE", f"/snapshots/{sid}", admin=True)

    refused = validate(c.items)
    assert not refused, "\n".join(f"{r['label']}: {r['error']}" for r in refused)
    assert len(c.items) >= 35


@pytest.mark.parametrize("cloud", ["pike", "mitaka"])
def test_cinder_version_documents_pass_tempest_schemas(cc, cloud):
    """GET / lists only versions that are served; each one's GET /vN/ passes
    volume_api_version_details and names the same id."""
    _tempest_python()
    base = cc.url(cloud).split("/v3")[0]
    import requests
    root = requests.get(base + "/", timeout=10)
    items = [{"label": f"{cloud} GET /", "schema": "volume.versions.list_versions",
              "status": root.status_code,
              "body": root.json()}]
    for entry in root.json()["versions"]:
        major = entry["id"].split(".")[0]
        resp = requests.get(f"{base}/{major}/", timeout=10)
        assert resp.status_code == 200, f"{cloud}: advertised {entry['id']} is not served"
        assert resp.json()["versions"][0]["id"] == entry["id"]
        items.append({"label": f"{cloud} GET /{major}/",
                      "schema": "volume.versions.volume_api_version_details",
                      "status": resp.status_code, "body": resp.json()})
    refused = validate(items)
    assert not refused, "\n".join(f"{r['label']}: {r['error']}" for r in refused)


@pytest.mark.parametrize("cloud", ["pike", "mitaka"])
def test_cinder_backup_bodies_pass_tempest_schemas(cc, cloud):
    """Every answer of the backups API (create, show, lists, update at 3.9, restore, export,
    import, reset-status), as Tempest's backups schemas check them."""
    _tempest_python()
    c = Collector(cc, cloud)
    vol = cc.volume(cloud, size=1)
    created = c.call("volume.backups.create_backup", "POST", "/backups",
                     json={"backup": {"volume_id": vol.id, "name": unique_name("schema")}})
    bid = created["backup"]["id"]
    cc.backups.append((cloud, bid))
    bs = cc.conn(cloud).block_storage
    bs.wait_for_status(bs.get_backup(bid), "available", wait=120)
    c.call("volume.backups.show_backup", "GET", f"/backups/{bid}")
    c.call("volume.backups.show_backup", "GET", f"/backups/{bid}", admin=True, version="3.43"
           if cloud == "pike" else None)
    c.call("volume.backups.list_backups_no_detail", "GET", "/backups")
    c.call("volume.backups.list_backups_with_detail", "GET", "/backups/detail")
    if cloud == "pike":
        c.call("volume.backups.update_backup", "PUT", f"/backups/{bid}", version="3.9",
               json={"backup": {"name": unique_name("schema")}})
    restore = c.call("volume.backups.restore_backup", "POST", f"/backups/{bid}/restore",
                     json={"restore": {}})
    cc.volumes.append((cloud, restore["restore"]["volume_id"]))
    cc.wait_admin(cloud, restore["restore"]["volume_id"], lambda v: v["status"] == "available")
    bs.wait_for_status(bs.get_backup(bid), "available", wait=120)
    record = c.call("volume.backups.export_backup", "GET", f"/backups/{bid}/export_record",
                    admin=True)["backup-record"]
    # import a copy under another id, as Tempest's export/import test does
    doc = json.loads(base64.b64decode(record["backup_url"]))
    doc["id"] = str(uuid.uuid4())
    copy = c.call("volume.backups.import_backup", "POST", "/backups/import_record", admin=True,
                  json={"backup-record": {"backup_service": record["backup_service"],
                                          "backup_url": base64.b64encode(
                                              json.dumps(doc).encode()).decode()}})
    cc.backups.append((cloud, copy["backup"]["id"]))
    c.call("volume.backups.reset_backup_status", "POST", f"/backups/{bid}/action", admin=True,
           json={"os-reset_status": {"status": "error"}})
    refused = validate(c.items)
    assert not refused, "\n".join(f"{r['label']}: {r['error']}" for r in refused)
    assert len(c.items) >= 9
