"""Cinder v3 over HTTP on the target's three clouds (clouds.yaml), through openstacksdk 4.22,
the openstack CLI and raw requests: version documents and microversions, the demo flow
(volume from image on Datera, retype Ceph -> Datera on demand), types, QoS, snapshots,
clones, quotas, limits, Cinder's fault bodies for bad input, and the attachments API (Pike
only). Volumes live in the clouds' own tenants, named vancouver-test-*, and are deleted by the
`cc` fixture. The model and backends driven directly are test_openstack_cinder_model.py.
"""
import hashlib
import os
import subprocess
import uuid

import openstack.exceptions
import pytest
import requests
from openstack.block_storage.v3.volume import Volume as SdkVolume

from clients import ports
from clients.initiator import LoginError, login
from fixtures.waiters import poll_until, wait_until
from tests.support.openstack import (CLOUDS, TEST_INITIATOR, ceph_volume_path,
                                     read_datera_volume, sha256_file, unique_name)


# The highest Cinder v3 microversion of each release (lab/openstack/releases.py).
CINDER_MAX = {"mitaka": "3.0", "newton": "3.15", "pike": "3.43"}


# ---- discovery and microversions -----------------------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_http_version_documents_and_negotiated_microversion(cc, cloud):
    base = cc.url(cloud).rsplit("/v3/", 1)[0]
    root = requests.get(base + "/", timeout=10)
    assert root.status_code == 300
    v3 = [v for v in root.json()["versions"] if v["id"] == "v3.0"][0]
    assert v3["status"] == "CURRENT" and v3["version"] == CINDER_MAX[cloud]
    assert v3["min_version"] == "3.0"
    assert {"rel": "self", "href": base + "/v3/"} in v3["links"]
    one = requests.get(base + "/v3/", timeout=10)
    assert one.status_code == 200 and [v["id"] for v in one.json()["versions"]] == ["v3.0"]
    # The SDK discovered the maximum and sends it; Cinder echoes it.
    bs = cc.conn(cloud).block_storage
    assert SdkVolume._get_microversion(bs) == CINDER_MAX[cloud]
    echoed = cc.raw(cloud, "GET", "/volumes", version=CINDER_MAX[cloud])
    assert echoed.headers["OpenStack-API-Version"] == f"volume {CINDER_MAX[cloud]}"
    assert echoed.headers["Vary"] == "OpenStack-API-Version"
    assert cc.raw(cloud, "GET", "/volumes").headers["OpenStack-API-Version"] == "volume 3.0"
    too_new = cc.raw(cloud, "GET", "/volumes", version="3.44")
    assert too_new.status_code == 406
    assert too_new.json()["computeFault"]["message"].startswith("Version 3.44 is not supported")
    bad = cc.raw(cloud, "GET", "/volumes", version="3.x")
    assert bad.status_code == 400 and "invalid format" in bad.json()["badRequest"]["message"]


# ---- the demo flow through openstacksdk ----------------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_sdk_volume_from_image_on_datera_holds_the_image_bytes(cc, cloud, tmp_path):
    data = os.urandom(2 << 20) + bytes(1 << 20) + os.urandom(300_001)
    image = cc.image(cloud, data)
    dtype = cc.datera_type(cloud, **{"DF:use_chap_auth": "True"})
    vol = cc.volume(cloud, size=1, volume_type=dtype.name, image_id=image.id)
    assert vol.volume_type == dtype.name and vol.is_bootable is True
    assert vol.volume_image_metadata["image_id"] == image.id
    assert vol.volume_image_metadata["checksum"] == hashlib.md5(data).hexdigest()
    # tenants never see the admin-only attributes; admins do
    assert vol.host is None and vol.migration_status is None
    raw_tenant = cc.raw(cloud, "GET", f"/volumes/{vol.id}").json()["volume"]
    assert not any(k.startswith(("os-vol-host-attr", "os-vol-mig-status-attr"))
                   for k in raw_tenant)
    admin_view = cc.admin_volume(cloud, vol.id)
    assert admin_view["os-vol-host-attr:host"].endswith("@datera#datera")
    assert admin_view["os-vol-tenant-attr:tenant_id"] == cc.conn(cloud).current_project_id
    assert read_datera_volume(cc, cloud, vol.id, tmp_path, len(data)) == data
    cc.conn(cloud).block_storage.delete_volume(vol)
    cc.conn(cloud).block_storage.wait_for_delete(vol, wait=60)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_sdk_retype_ceph_to_datera_on_demand_keeps_id_and_checksum(cc, target, cloud,
                                                                  tmp_path):
    image = cc.image(cloud, os.urandom(1 << 20))
    ctype, dtype = cc.ceph_type(cloud), cc.datera_type(cloud)
    vol = cc.volume(cloud, size=1, volume_type=ctype.name, image_id=image.id)
    bs = cc.conn(cloud).block_storage
    info = bs.init_volume_attachment(vol, {"initiator": TEST_INITIATOR, "ip": "127.0.0.1"})
    assert info["driver_volume_type"] == "rbd"
    before = sha256_file(ceph_volume_path(target, cloud, info))
    # the SDK's default policy is 'never': the retype reverts, asynchronously
    bs.retype_volume(vol, dtype.id)
    done = cc.wait_admin(cloud, vol.id, lambda v: v["status"] != "retyping")
    assert done["volume_type"] == ctype.name and done["status"] == "available"
    bs.retype_volume(vol, dtype.name, migration_policy="on-demand")
    done = cc.wait_admin(cloud, vol.id, lambda v: v["status"] != "retyping")
    assert done["status"] == "available", done
    assert done["volume_type"] == dtype.name
    assert done["os-vol-mig-status-attr:migstat"] == "success"
    assert done["os-vol-host-attr:host"].endswith("@datera#datera")
    assert bs.get_volume(vol.id).id == vol.id
    assert read_datera_volume(cc, cloud, vol.id, tmp_path) == before


# ---- the same flow through the openstack CLI -----------------------------------------------

def _osc_wait(ost, cloud: str, name: str, done, timeout: float = 120) -> dict:
    return poll_until(lambda: ost.osc(cloud, "volume", "show", name, "-f", "json", admin=True),
                      done, timeout, 0.3)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_osc_types_qos_volume_from_image_retype_and_delete(cc, ost, cloud, tmp_path):
    src = tmp_path / "img.raw"
    src.write_bytes(os.urandom(1 << 20))
    image = cc.image(cloud, src.read_bytes())
    dname, cname, qname = unique_name("gold"), unique_name("ceph"), unique_name("qos")
    dtype = ost.osc(cloud, "volume", "type", "create", "--property",
                    "volume_backend_name=datera", "--property", "DF:replica_count=1",
                    "--property", "DF:read_iops_max=500", dname, "-f", "json", admin=True)
    cc.types.append((cloud, dtype["id"]))
    ctype = ost.osc(cloud, "volume", "type", "create", "--property",
                    "volume_backend_name=ceph", cname, "-f", "json", admin=True)
    cc.types.append((cloud, ctype["id"]))
    shown = ost.osc(cloud, "volume", "type", "show", dname, "-f", "json", admin=True)
    assert shown["id"] == dtype["id"]
    assert "DF:read_iops_max='500'" in str(shown["properties"]) or \
        shown["properties"].get("DF:read_iops_max") == "500"
    qos = ost.osc(cloud, "volume", "qos", "create", "--consumer", "back-end", "--property",
                  "total_iops_sec=800", qname, "-f", "json", admin=True)
    cc.qos.append((cloud, qos["id"]))
    ost.osc(cloud, "volume", "qos", "associate", qname, dname, admin=True)
    qshow = ost.osc(cloud, "volume", "qos", "show", qname, "-f", "json", admin=True)
    assert dname in str(qshow["associations"])
    # a volume from the image on ceph, retyped to datera through the CLI
    vname = unique_name("osc")
    created = ost.osc(cloud, "volume", "create", "--size", "1", "--image", image.id, "--type",
                      cname, vname, "-f", "json")
    cc.volumes.append((cloud, created["id"]))
    assert created["status"] == "creating"
    # admins find another project's volume by id (a name lookup lists their own project)
    vol = _osc_wait(ost, cloud, created["id"], lambda v: v["status"] != "creating"
                    and v["status"] != "downloading")
    assert vol["status"] == "available" and str(vol["bootable"]).lower() == "true"
    assert vol["type"] == cname
    ost.osc(cloud, "volume", "set", "--type", dname, "--retype-policy", "on-demand", vname)
    vol = _osc_wait(ost, cloud, created["id"], lambda v: v["status"] != "retyping",
                    timeout=180)
    assert vol["status"] == "available" and vol["type"] == dname
    assert vol["os-vol-mig-status-attr:migstat"] == "success"
    assert vol["os-vol-host-attr:host"].endswith("@datera#datera")
    assert vol["id"] == created["id"]
    ost.osc(cloud, "volume", "delete", vname)
    wait_until(lambda: ost.osc(cloud, "volume", "show", vname, check=False).returncode != 0,
               60, "volume delete to finish", 0.3, error=AssertionError)


# ---- types, QoS, snapshots, clones, quotas and limits through the SDK ----------------------

def test_sdk_types_qos_snapshots_clones_quotas_and_limits(cc, tmp_path):
    cloud = "pike"
    admin, bs = cc.conn(cloud, True).block_storage, cc.conn(cloud).block_storage
    ctype = cc.ceph_type(cloud)
    admin.update_type_extra_specs(ctype, demo="vancouver")
    assert admin.get_type(ctype.id).extra_specs == {"volume_backend_name": "ceph",
                                                    "demo": "vancouver"}
    admin.delete_type_extra_specs(ctype, ["demo"])
    assert "demo" not in admin.get_type(ctype.id).extra_specs
    # a private type is invisible to the tenant until access is granted
    private = admin.create_type(name=unique_name("private"), is_public=False)
    cc.types.append((cloud, private.id))
    assert private.is_public is False
    assert cc.raw(cloud, "GET", f"/types/{private.id}").status_code == 404
    admin.add_type_access(private, cc.conn(cloud).current_project_id)
    assert bs.get_type(private.id).name == private.name
    assert [a["project_id"] for a in admin.get_type_access(private)] == \
        [cc.conn(cloud).current_project_id]
    # QoS: flat keys, associate by type id, associations listed
    qos = admin.create_qos_spec(name=unique_name("qos"), consumer="back-end", total_iops_sec="900")
    cc.qos.append((cloud, qos.id))
    assert admin.get_qos_spec(qos.id).specs == {"total_iops_sec": "900"}
    admin.associate_qos_spec(qos, ctype.id)
    assert cc.raw(cloud, "GET", f"/types/{ctype.id}", admin=True).json()[
        "volume_type"]["qos_specs_id"] == qos.id
    assert cc.raw(cloud, "GET", f"/qos-specs/{qos.id}/associations", admin=True).json() == {
        "qos_associations": [{"association_type": "volume_type", "name": ctype.name,
                              "id": ctype.id}]}
    # snapshot, volume from snapshot, clone, extend: bytes carried on ceph
    vol = cc.volume(cloud, size=1, volume_type=ctype.name)
    snap = bs.create_snapshot(volume_id=vol.id, name=unique_name("snap"))
    snap = bs.wait_for_status(snap, "available", failures=["error"], wait=60)
    assert snap.volume_id == vol.id and snap.size == 1
    from_snap = cc.volume(cloud, snapshot_id=snap.id)
    clone = cc.volume(cloud, source_volume_id=vol.id, size=2)
    assert from_snap.snapshot_id == snap.id and clone.source_volume_id == vol.id
    assert from_snap.volume_type == ctype.name and clone.size == 2
    bs.extend_volume(clone, 3)
    assert bs.get_volume(clone.id).status in ("extending", "available")
    grown = wait_until(lambda: (v := bs.get_volume(clone.id)).status != "extending" and v, 60,
                       "extend to finish", error=AssertionError)
    assert grown.status == "available" and grown.size == 3
    bs.delete_snapshot(snap)
    bs.wait_for_delete(snap, wait=60)
    # list filters and paging
    names = {v.name for v in bs.volumes(details=True, name=vol.name)}
    assert names == {vol.name}
    page = cc.raw(cloud, "GET", "/volumes/detail", params={"limit": 1}).json()
    assert len(page["volumes"]) == 1 and page["volumes_links"][0]["rel"] == "next"
    # quotas and limits: usage per project, updates admin-only
    project = cc.conn(cloud).current_project_id
    quota = admin.get_quota_set(project, usage=True)
    assert quota.usage["volumes"] >= 3 and quota.usage["gigabytes"] >= 5   # 1 + 1 + 3
    per_type = cc.raw(cloud, "GET", f"/os-quota-sets/{project}", params={"usage": "True"})
    assert per_type.json()["quota_set"][f"volumes_{ctype.name}"] == {
        "limit": -1, "in_use": 3, "reserved": 0, "allocated": 0}
    limits = cc.raw(cloud, "GET", "/limits").json()["limits"]["absolute"]
    assert limits["totalVolumesUsed"] >= 3 and limits["maxTotalVolumes"] >= 3
    denied = cc.raw(cloud, "PUT", f"/os-quota-sets/{project}",
                    json={"quota_set": {"volumes": 50}})
    assert denied.status_code == 403
    assert "Policy doesn't allow" in denied.json()["forbidden"]["message"]
    zones = cc.raw(cloud, "GET", "/os-availability-zone").json()
    assert zones["availabilityZoneInfo"][0]["zoneName"] == "nova"
    svcs = cc.raw(cloud, "GET", "/os-services", admin=True).json()["services"]
    assert {s["binary"] for s in svcs} == {"cinder-scheduler", "cinder-volume", "cinder-backup"}


# ---- bad input: Cinder's codes and fault bodies; the lab keeps serving ---------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_bad_input_answers_as_cinder(cc, cloud):
    ctype = cc.ceph_type(cloud)
    malformed = cc.raw(cloud, "POST", "/volumes", data=b'{"volume": {"size": 1',
                       headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "badRequest" in malformed.json()
    no_envelope = cc.raw(cloud, "POST", "/volumes", json={"size": 1})
    assert no_envelope.status_code == 400
    assert "volume" in no_envelope.json()["badRequest"]["message"]
    bad_size = cc.raw(cloud, "POST", "/volumes", json={"volume": {"size": "zero"}})
    assert bad_size.status_code == 400
    unknown = str(uuid.uuid4())
    missing = cc.raw(cloud, "GET", f"/volumes/{unknown}")
    assert missing.status_code == 404
    assert missing.json() == {"itemNotFound": {"code": 404, "message":
                                               f"Volume {unknown} could not be found."}}
    assert cc.raw(cloud, "GET", f"/types/{ctype.name}").status_code == 404   # by id only
    # the URL's project must be the token's; another project's volume is not there
    vol = cc.volume(cloud, size=1, volume_type=ctype.name)
    other_project = cc.conn(cloud, True).current_project_id
    headers = {"X-Auth-Token": cc.conn(cloud).session.get_token()}
    base = cc.url(cloud).rsplit("/", 1)[0]
    wrong = requests.get(f"{base}/{other_project}/volumes/{vol.id}", headers=headers,
                         timeout=10)
    assert wrong.status_code == 400 and "project_id" in wrong.json()["badRequest"]["message"]
    admin_vol = cc.conn(cloud, True).block_storage.create_volume(
        name=unique_name("adm"), size=1, volume_type=ctype.name)
    cc.volumes.append((cloud, admin_vol.id))
    assert cc.raw(cloud, "GET", f"/volumes/{admin_vol.id}").status_code == 404
    # admin-only calls
    forbidden = cc.raw(cloud, "POST", "/types", json={"volume_type": {"name": "mine"}})
    assert forbidden.status_code == 403 and "forbidden" in forbidden.json()
    reset = cc.raw(cloud, "POST", f"/volumes/{vol.id}/action",
                   json={"os-reset_status": {"status": "error"}})
    assert reset.status_code == 403
    # actions: unknown, two at once, bad policy
    action = f"/volumes/{vol.id}/action"
    assert cc.raw(cloud, "POST", action, json={"os-nosuch": {}}).status_code == 404
    two = cc.raw(cloud, "POST", action, json={"os-reserve": {}, "os-unreserve": {}})
    assert two.status_code == 400
    policy = cc.raw(cloud, "POST", action, json={"os-retype": {
        "new_type": ctype.id, "migration_policy": "sometimes"}})
    assert policy.status_code == 400 and "migration_policy" in policy.text
    # invalid transitions: attach an attached volume, delete an in-use one
    server = str(uuid.uuid4())
    assert cc.raw(cloud, "POST", action, json={"os-reserve": {}}).status_code == 202
    assert cc.raw(cloud, "POST", action, json={"os-attach": {
        "instance_uuid": server, "mountpoint": "/dev/vdb"}}).status_code == 202
    shown = cc.raw(cloud, "GET", f"/volumes/{vol.id}").json()["volume"]
    assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == server
    again = cc.raw(cloud, "POST", action, json={"os-reserve": {}})
    assert again.status_code == 400
    assert "Invalid volume" in again.json()["badRequest"]["message"]
    in_use = cc.raw(cloud, "DELETE", f"/volumes/{vol.id}")
    assert in_use.status_code == 400
    assert in_use.json()["badRequest"]["message"].startswith("Invalid volume: Volume status "
                                                             "must be available")
    assert cc.raw(cloud, "POST", action, json={"os-begin_detaching": {}}).status_code == 202
    assert cc.raw(cloud, "POST", action, json={"os-detach": {
        "attachment_id": shown["attachments"][0]["attachment_id"]}}).status_code == 202
    assert cc.raw(cloud, "GET", f"/volumes/{vol.id}").json()["volume"]["status"] == "available"
    # and the service still answers normally
    assert cc.raw(cloud, "DELETE", f"/volumes/{vol.id}").status_code == 202
    cc.conn(cloud).block_storage.wait_for_delete(vol, wait=60)


# ---- the attachments API: Pike only (3.27-3.43), through openstacksdk's block_storage ------

def test_sdk_attachments_api_on_pike_gives_connection_info_and_frees_the_volume(cc, tmp_path):
    cloud = "pike"
    bs = cc.conn(cloud).block_storage
    data = os.urandom(1 << 20)
    image = cc.image(cloud, data)
    vol = cc.volume(cloud, size=1, image_id=image.id,
                    volume_type=cc.datera_type(cloud, **{"DF:use_chap_auth": "True"}).name)
    server = str(uuid.uuid4())
    # create without a connector: the volume is reserved, there is no connection yet
    att = bs.create_attachment(vol, instance=server)
    assert (att.status, att.instance, att.volume_id) == ("reserved", server, vol.id)
    assert att.connection_info == {}
    assert bs.get_volume(vol.id).status == "reserved"
    assert bs.get_attachment(att.id).status == "reserved"
    assert [a.id for a in bs.attachments(volume_id=vol.id)] == [att.id]
    listed = cc.raw(cloud, "GET", "/attachments", version="3.27").json()["attachments"]
    assert {"id": att.id, "status": "reserved", "instance": server,
            "volume_id": vol.id} in listed
    # a second reservation of the reserved volume is refused
    again = cc.raw(cloud, "POST", "/attachments", version="3.27",
                   json={"attachment": {"volume_uuid": vol.id, "instance_uuid": server}})
    assert again.status_code == 400 and "Invalid volume" in again.json()["badRequest"]["message"]
    # update with the host's connector: the export and its iSCSI connection_info (CHAP)
    connector = {"initiator": TEST_INITIATOR, "ip": "127.0.0.1", "host": "cinder-test",
                 "multipath": False, "platform": "x86_64", "os_type": "linux2"}
    updated = bs.update_attachment(att, connector=connector)
    assert updated.status == "attaching"
    info = updated.connection_info
    assert info["driver_volume_type"] == "iscsi" and info["data"]["auth_method"] == "CHAP"
    d = info["data"]
    luns = login(d["target_portal"].rsplit(":", 1)[0], ports.ISCSI, TEST_INITIATOR,
                 d["target_iqn"], chap_user=d["auth_username"], chap_secret=d["auth_password"])
    out = tmp_path / "att.raw"
    subprocess.run(["nbdcopy", "--", "[", "nbdkit", "--exit-with-parent", "-r",
                    "--filter=truncate", "nbd", f"uri={luns[0].uri}", f"truncate={len(data)}",
                    "]", str(out)], check=True, timeout=120, capture_output=True)
    assert out.read_bytes()[:len(data)] == data
    # complete needs 3.44 (Queens): beyond Pike, so the SDK's call fails with 404
    with pytest.raises(openstack.exceptions.NotFoundException):
        bs.complete_attachment(att)
    assert cc.raw(cloud, "POST", f"/attachments/{att.id}/action", version="3.44",
                  json={"os-complete": att.id}).status_code == 406
    # delete: the export goes, the volume is available again, the login is refused
    bs.delete_attachment(att, ignore_missing=False)
    assert bs.get_volume(vol.id).status == "available"
    assert cc.raw(cloud, "GET", f"/attachments/{att.id}", version="3.27").status_code == 404
    with pytest.raises(LoginError):
        login(d["target_portal"].rsplit(":", 1)[0], ports.ISCSI, TEST_INITIATOR,
              d["target_iqn"], chap_user=d["auth_username"], chap_secret=d["auth_password"])


def test_attachments_api_bad_input_on_pike(cc):
    cloud = "pike"
    ctype = cc.ceph_type(cloud)
    vol = cc.volume(cloud, size=1, volume_type=ctype.name)
    no_volume = cc.raw(cloud, "POST", "/attachments", version="3.27",
                       json={"attachment": {"instance_uuid": str(uuid.uuid4())}})
    assert no_volume.status_code == 400 and "volume_uuid" in no_volume.text
    missing = str(uuid.uuid4())
    unknown = cc.raw(cloud, "POST", "/attachments", version="3.27",
                     json={"attachment": {"volume_uuid": missing}})
    assert unknown.status_code == 404 and missing in unknown.json()["itemNotFound"]["message"]
    assert cc.raw(cloud, "GET", f"/attachments/{missing}", version="3.27").status_code == 404
    # below 3.27 the resource does not exist, as on Ocata's predecessors
    assert cc.raw(cloud, "GET", "/attachments", version="3.26").status_code == 404
    att = cc.raw(cloud, "POST", "/attachments", version="3.27",
                 json={"attachment": {"volume_uuid": vol.id}}).json()["attachment"]
    assert cc.raw(cloud, "GET", f"/attachments/{att['id']}", version="3.27").status_code == 200
    # an attachment of another project's volume is not there for this tenant
    admin_vol = cc.conn(cloud, True).block_storage.create_volume(
        name=unique_name("adm"), size=1, volume_type=ctype.name)
    cc.volumes.append((cloud, admin_vol.id))
    cc.conn(cloud, True).block_storage.wait_for_status(admin_vol, "available", wait=60)
    theirs = cc.raw(cloud, "POST", "/attachments", version="3.27", admin=True,
                    json={"attachment": {"volume_uuid": admin_vol.id}}).json()["attachment"]
    assert cc.raw(cloud, "GET", f"/attachments/{theirs['id']}",
                  version="3.27").status_code == 404
    assert theirs["id"] not in {a["id"] for a in cc.raw(
        cloud, "GET", "/attachments", version="3.27").json()["attachments"]}
    assert cc.raw(cloud, "DELETE", f"/attachments/{theirs['id']}", version="3.27",
                  admin=True).status_code == 200
    bad = cc.raw(cloud, "PUT", f"/attachments/{att['id']}", version="3.27",
                 json={"attachment": {"connector": "iqn"}})
    assert bad.status_code == 400 and "connector" in bad.text
    assert cc.raw(cloud, "DELETE", f"/attachments/{att['id']}",
                  version="3.27").status_code == 200
    assert cc.conn(cloud).block_storage.get_volume(vol.id).status == "available"


@pytest.mark.parametrize("cloud", ["mitaka", "newton"])
def test_attachments_api_is_404_before_ocata(cc, cloud):
    vol = cc.volume(cloud, size=1, volume_type=cc.ceph_type(cloud).name)
    bs = cc.conn(cloud).block_storage
    with pytest.raises(openstack.exceptions.NotFoundException):
        bs.create_attachment(vol, instance=str(uuid.uuid4()))
    with pytest.raises(openstack.exceptions.NotFoundException):
        list(bs.attachments())
    assert bs.get_volume(vol.id).status == "available"


@pytest.mark.parametrize("status", ["attaching", "detaching", "maintenance"])   # reset-state takes these
def test_teardown_deletes_a_volume_stuck_in_a_transition(cc, status):
    """A kill -9 of the cloud mid-transition leaves a volume in it for good, as a real
    cinder-volume restart does (rehearsal cc7 leaked one): the demo's teardown
    (fixtures/openstack/resources.delete_volume) takes it as stuck once it has not changed
    for `stuck_s` (here 1 s, well before the 600 s overall bound), resets it as an operator
    would and deletes it."""
    from fixtures.openstack.resources import delete_volume
    vol = cc.volume("pike", size=1)
    admin = cc.conn("pike", admin=True)
    admin.block_storage.reset_volume_status(vol, status=status, attach_status="detached",
                                            migration_status=None)
    assert cc.admin_volume("pike", vol.id)["status"] == status
    delete_volume(cc.conn("pike"), vol.id, admin=admin, timeout=60, settle_s=600, stuck_s=1)
    assert cc.raw("pike", "GET", f"/volumes/{vol.id}").status_code == 404


def test_cleanup_deletes_a_snapshot_stuck_creating(cc):
    """Mitaka's restart leaves a snapshot `creating` for good (cinder-volume's init_host);
    Cinder refuses its delete (400). The cleanup command's snapshot delete
    (fixtures/openstack/resources.delete_snapshot) takes it as stuck once unchanged for
    `stuck_s`, resets it to error as an operator would, and deletes it."""
    from fixtures.openstack.resources import delete_snapshot, reset_snapshot_status
    vol = cc.volume("pike", size=1)
    conn, admin = cc.conn("pike"), cc.conn("pike", admin=True)
    snap = conn.block_storage.create_snapshot(volume_id=vol.id, name="stuck")
    conn.block_storage.wait_for_status(snap, "available", interval=0.2, wait=60)
    reset_snapshot_status(admin, snap.id, "creating")
    assert cc.raw("pike", "DELETE", f"/snapshots/{snap.id}").status_code == 400
    delete_snapshot(conn, snap.id, admin=admin, timeout=60, settle_s=600, stuck_s=1)
    assert cc.raw("pike", "GET", f"/snapshots/{snap.id}").status_code == 404

