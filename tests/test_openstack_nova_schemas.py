"""Nova's response bodies, action by action, release by release and microversion by
microversion, validated with the schema Tempest's own compute service clients pick for that
microversion (tempest.lib.services.compute.*.schema_versions_info over
tempest.lib.api_schema.response.compute.v2_*, Tempest 47.0.0), in the pinned Tempest venv.

Each cloud is asked at 2.1, at each threshold below its maximum where a schema changes
(2.2 key pairs, 2.10, 2.36 limits and quotas, 2.11/2.53 services, 2.28/2.33/2.53
hypervisors) and at its maximum (Mitaka 2.25, Pike 2.53).
"""
import pytest
import requests

from tests.support.openstack import unique_name
from tests.support.tempest_schemas import tempest_python, validate

MAX = {"mitaka": "2.25", "pike": "2.53"}
THRESHOLDS = ("2.1", "2.2", "2.10", "2.11", "2.28", "2.33", "2.36", "2.53")
# A valid imported ssh key (RSA, 1024 bits) and Nova's MD5 fingerprint of it.
PUBLIC_KEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44b"
              "d8AFn0gWUo5fG1k6pIqEvL3NXhYAcyaOrtmbOTNwmNbH48GPg4MTw4TtAxCsmBz0r76lXvt76Q6R5DBp"
              "fuxYMV7wdTeQpXmHtCW6ppkqjL9ktShZLFlXXhoMbkaNcjQ== tempest@schemas")


def _mv_le(a: str, b: str) -> bool:
    return tuple(map(int, a.split("."))) <= tuple(map(int, b.split(".")))


def _compute_url(token: dict) -> str:
    svc = next(s for s in token["catalog"] if s["type"] == "compute")
    return next(e["url"] for e in svc["endpoints"] if e["interface"] == "public").rstrip("/")


class Nova:
    def __init__(self, ost, cloud):
        self.cloud = cloud
        self.tokens = {admin: ost.token(cloud, admin) for admin in (False, True)}
        # Mitaka's endpoint carries the token's project: each caller uses its own
        self.bases = {admin: _compute_url(self.tokens[admin][1]) for admin in (False, True)}
        self.root = self.bases[False].split("/v2.1")[0]
        self.items = []

    def call(self, schema: str, mv: str, method: str, path: str, admin=False, **kw) -> dict:
        headers = {"X-Auth-Token": self.tokens[admin][0],
                   "OpenStack-API-Version": f"compute {mv}",
                   "X-OpenStack-Nova-API-Version": mv}
        r = requests.request(method, self.bases[admin] + path, headers=headers, timeout=30, **kw)
        body = r.json() if r.content else None
        self.items.append({"label": f"{self.cloud} {mv} {method} {path} [{schema}] "
                                    f"{r.status_code}",
                           "compute": schema, "microversion": mv,
                           "status": r.status_code, "body": body})
        return body or {}


@pytest.mark.parametrize("cloud", ["pike", "mitaka"])
def test_nova_bodies_pass_tempest_schemas(ost, cloud):
    tempest_python()
    nova = Nova(ost, cloud)
    project = nova.tokens[False][1]["project"]["id"]
    versions = [v for v in THRESHOLDS if _mv_le(v, MAX[cloud])] + [MAX[cloud]]
    for mv in dict.fromkeys(versions):
        c = nova.call
        c("flavors_client.list_flavors", mv, "GET", "/flavors")
        flavors = c("flavors_client.list_flavors_details", mv, "GET", "/flavors/detail")
        fid = flavors["flavors"][0]["id"]
        c("flavors_client.list_flavors_details", mv, "GET", "/flavors/detail?minRam=1&limit=2")
        c("flavors_client.create_update_get_flavor_details", mv, "GET", f"/flavors/{fid}")
        c("limits_client.get_limit", mv, "GET", "/limits")
        c("quotas_client.get_quota_set", mv, "GET", f"/os-quota-sets/{project}")
        c("quotas_client.get_quota_set", mv, "GET",
          f"/os-quota-sets/{project}/defaults")
        c("quotas_client.get_quota_set_details", mv, "GET",
          f"/os-quota-sets/{project}/detail", admin=True)
        c("quotas_client.update_quota_set", mv, "PUT", f"/os-quota-sets/{project}",
          admin=True, json={"quota_set": {"key_pairs": 100}})
        c("quotas_client.delete_quota", mv, "DELETE", f"/os-quota-sets/{project}",
          admin=True)
        c("availability_zone_client.list_availability_zone_list", mv, "GET",
          "/os-availability-zone")
        c("availability_zone_client.list_availability_zone_list_detail", mv, "GET",
          "/os-availability-zone/detail", admin=True)
        c("extensions_client.list_extensions", mv, "GET", "/extensions")
        assert c("extensions_client.list_extensions", mv, "GET", "/extensions/os-consoles"
                 )["extension"]["alias"] == "os-consoles"
        nova.items.pop()   # the one-extension body has no Tempest schema: checked above
        c("services_client.list_services", mv, "GET", "/os-services", admin=True)
        hyps = c("hypervisor_client.list_search_hypervisors", mv, "GET", "/os-hypervisors",
                 admin=True)
        c("hypervisor_client.list_hypervisors_detail", mv, "GET", "/os-hypervisors/detail",
          admin=True)
        c("hypervisor_client.get_hypervisor", mv, "GET",
          f"/os-hypervisors/{hyps['hypervisors'][0]['id']}", admin=True)
        c("hypervisor_client.get_hypervisor_statistics", mv, "GET",
          "/os-hypervisors/statistics", admin=True)
        # key pairs: generated, imported, listed, shown, deleted
        gen = unique_name("kp").replace("-", "_")
        c("keypairs_client.create_keypair", mv, "POST", "/os-keypairs",
          json={"keypair": {"name": gen}})
        imported = unique_name("kp")
        made = c("keypairs_client.create_keypair", mv, "POST", "/os-keypairs",
                 json={"keypair": {"name": imported, "public_key": PUBLIC_KEY}})
        assert "private_key" not in made["keypair"]
        c("keypairs_client.list_keypairs", mv, "GET", "/os-keypairs")
        c("keypairs_client.get_keypair", mv, "GET", f"/os-keypairs/{imported}")
        for name in (gen, imported):
            c("keypairs_client.delete_keypair", mv, "DELETE", f"/os-keypairs/{name}")
    # version documents (unversioned requests)
    for path, schema in (("/", "versions_client.list_versions"),
                         ("/v2.1/", "versions_client.get_one_version"),
                         ("/v2/", "versions_client.get_one_version")):
        r = requests.get(nova.root + path, timeout=10)
        nova.items.append({"label": f"{cloud} GET {path}", "compute": schema,
                           "microversion": None, "status": r.status_code, "body": r.json()})
    refused = validate(nova.items)
    assert not refused, "\n".join(f"{r['label']}: {r['error']}" for r in refused)
    assert len(nova.items) >= 60
