"""Nova answers as Nova 13/16 do for key pairs, availability zones, access addresses and the
order of create-server checks (compute/api.py: metadata and instance quotas before block
devices), through raw requests and openstacksdk."""
import pytest
import requests

from tests.support.openstack import unique_name

PUBLIC_KEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44b"
              "d8AFn0gWUo5fG1k6pIqEvL3NXhYAcyaOrtmbOTNwmNbH48GPg4MTw4TtAxCsmBz0r76lXvt76Q6R5DBp"
              "fuxYMV7wdTeQpXmHtCW6ppkqjL9ktShZLFlXXhoMbkaNcjQ== tempest@schemas")


class Nova:
    def __init__(self, ost, cloud, admin=False):
        self.token, body = ost.token(cloud, admin)
        svc = next(s for s in body["catalog"] if s["type"] == "compute")
        self.base = next(e["url"] for e in svc["endpoints"] if e["interface"] == "public")
        self.base = self.base.rstrip("/")

    def __call__(self, method, path, mv="2.1", **kw):
        return requests.request(method, self.base + path, timeout=30, **kw, headers={
            "X-Auth-Token": self.token, "OpenStack-API-Version": f"compute {mv}",
            "X-OpenStack-Nova-API-Version": mv})


@pytest.mark.parametrize("cloud", ["pike", "mitaka"])
def test_keypairs_by_microversion(ost, cloud):
    nova = Nova(ost, cloud)
    name = unique_name("kp")
    r = nova("POST", "/os-keypairs", json={"keypair": {"name": name, "public_key": PUBLIC_KEY}})
    assert r.status_code == 200, r.text                       # 2.1: 200, no type
    kp = r.json()["keypair"]
    assert "type" not in kp and "private_key" not in kp
    assert len(kp["fingerprint"].split(":")) == 16
    assert nova("POST", "/os-keypairs", json={"keypair": {
        "name": name, "public_key": PUBLIC_KEY}}).status_code == 409
    shown = nova("GET", f"/os-keypairs/{name}").json()["keypair"]
    assert (shown["public_key"], shown["deleted"]) == (PUBLIC_KEY, False)
    assert nova("DELETE", f"/os-keypairs/{name}").status_code == 202
    assert nova("GET", f"/os-keypairs/{name}").status_code == 404
    # 2.2: type, 201 and 204; a generated key returns its private half once
    r = nova("POST", "/os-keypairs", mv="2.2", json={"keypair": {"name": name}})
    assert r.status_code == 201, r.text
    assert r.json()["keypair"]["type"] == "ssh"
    assert r.json()["keypair"]["private_key"].startswith("-----BEGIN RSA PRIVATE KEY")
    listed = nova("GET", "/os-keypairs", mv="2.2").json()["keypairs"]
    assert [k["keypair"]["type"] for k in listed if k["keypair"]["name"] == name] == ["ssh"]
    assert nova("DELETE", f"/os-keypairs/{name}", mv="2.2").status_code == 204
    for bad in ({"name": ""}, {"name": "a" * 256}, {"name": "bad/name"},
                {"name": name, "public_key": "ssh-rsa AAAA not-a-key"},
                {"name": name, "public_key": ""}):
        assert nova("POST", "/os-keypairs", json={"keypair": bad}).status_code == 400, bad


def test_x509_keypair_at_2_2(ost):
    nova = Nova(ost, "pike")
    name = unique_name("x509")
    r = nova("POST", "/os-keypairs", mv="2.2", json={"keypair": {"name": name,
                                                                 "type": "x509"}})
    assert r.status_code == 201, r.text
    assert r.json()["keypair"]["public_key"].startswith("-----BEGIN CERTIFICATE")
    assert len(r.json()["keypair"]["fingerprint"].split(":")) == 20      # SHA-1
    assert nova("DELETE", f"/os-keypairs/{name}", mv="2.2").status_code == 204


@pytest.mark.parametrize("cloud", ["pike", "mitaka"])
def test_availability_zones(ost, cloud):
    zones = Nova(ost, cloud)("GET", "/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]
    assert Nova(ost, cloud)("GET", "/os-availability-zone/detail").status_code == 403
    detail = Nova(ost, cloud, admin=True)("GET", "/os-availability-zone/detail").json()
    names = {z["zoneName"]: z for z in detail["availabilityZoneInfo"]}
    assert set(names) == {"internal", "nova"}
    assert all("nova-compute" in svcs for svcs in names["nova"]["hosts"].values())


def test_quota_checks_come_before_block_devices(ost):
    """An image boot (refused by the lab's diskless hosts) over the metadata quota is 403,
    as Nova checks quotas before it validates block devices."""
    nova = Nova(ost, "pike")
    flavor = nova("GET", "/flavors").json()["flavors"][0]["id"]
    body = {"server": {"name": unique_name("quota"), "flavorRef": flavor, "networks": "none",
                       "imageRef": "00000000-0000-0000-0000-000000000000",
                       "metadata": {f"k{i}": "v" for i in range(129)}}}
    r = nova("POST", "/servers", mv="2.37", json=body)
    assert r.status_code == 403 and "metadata_items" in r.text, r.text
    del body["server"]["metadata"]
    body["server"]["accessIPv4"] = "not-an-address"
    assert nova("POST", "/servers", mv="2.37", json=body).status_code == 400
