"""Helpers for the tests of the lab's OpenStack clouds (fixtures `ost` and `cc` are in
tests/conftest.py): the target's clouds through openstacksdk, the openstack CLI and raw
requests; Cinder resources made per test and removed after; a host's read of a Datera
volume; the guest fio command and its console reports.

Every resource a test makes is named vancouver-test-<tag>-<8 hex> (`unique_name`).
"""
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import openstack
import openstack.config
import pytest
import requests

from clients import ports
from clients.initiator import login
from fixtures.waiters import poll_until, wait_until

CLOUDS = ("mitaka", "newton", "pike")
OPENSTACK_CLI = str(Path(sys.executable).with_name("openstack"))
# The initiator the Cinder tests attach as (os-initialize_connection's connector).
TEST_INITIATOR = "iqn.1993-08.org.debian:01:vancouver-cinder-test"
# A guest's fio command (user_data line); its JSON lands on the server's console.
FIO = ("fio --name={name} --filename={dev} --rw={rw} --bs=64k --size=4m --ioengine=libaio "
       "--direct=1 --output-format=json")


def unique_name(tag: str) -> str:
    """vancouver-test-<tag>-<8 hex>: unique, and found by the sweeper."""
    return f"vancouver-test-{tag}-{uuid.uuid4().hex[:8]}"


class OpenStackTarget:
    """The target's `openstack:` section: clouds.yaml and, per cloud, its entries' names."""

    def __init__(self, target):
        if "openstack" not in target.doc:
            pytest.skip("the target has no openstack section: it runs no OpenStack cloud "
                        "(a lab started before the clouds were added, or a real target "
                        "without them)")
        self.section = target.section("openstack")
        self.clouds_yaml = target.file("openstack", "clouds_yaml")
        self._config = openstack.config.OpenStackConfig(config_files=[str(self.clouds_yaml)])

    def cloud(self, name: str) -> dict:
        try:
            return self.section["clouds"][name]
        except KeyError:
            pytest.skip(f"the target has no {name} cloud")

    def connect(self, name: str, admin: bool = False) -> openstack.connection.Connection:
        entry = self.cloud(name)["admin_cloud" if admin else "tenant_cloud"]
        return openstack.connection.Connection(config=self._config.get_one(cloud=entry))

    def auth(self, name: str, admin: bool = False) -> dict:
        entry = self.cloud(name)["admin_cloud" if admin else "tenant_cloud"]
        return self._config.get_one(cloud=entry).config["auth"]

    def osc(self, name: str, *args: str, admin: bool = False, check: bool = True):
        """Runs `openstack --os-cloud <entry> ARGS -f json`; the parsed output (or the
        CompletedProcess when check=False)."""
        entry = self.cloud(name)["admin_cloud" if admin else "tenant_cloud"]
        env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml))
        # A hang guard, not a figure: the CLI's imports alone took over 60 s on a loaded
        # 2-core machine (CI beside other work).
        proc = subprocess.run([OPENSTACK_CLI, "--os-cloud", entry, *args], env=env,
                              capture_output=True, text=True, timeout=240)
        if not check:
            return proc
        assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr}"
        return json.loads(proc.stdout) if "-f" in args and "json" in args else proc.stdout

    def token(self, name: str, admin: bool = False) -> tuple[str, dict]:
        """(token id, token body) straight from POST /v3/auth/tokens."""
        auth = self.auth(name, admin)
        resp = requests.post(f"{auth['auth_url']}/auth/tokens", json=password_auth(auth),
                             timeout=10)
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"], resp.json()["token"]

    def endpoint(self, name: str, service_type: str) -> str:
        _, token = self.token(name)
        for svc in token["catalog"]:
            if svc["type"] == service_type:
                return next(e["url"] for e in svc["endpoints"] if e["interface"] == "public")
        raise AssertionError(f"{service_type} is not in {name}'s catalog")


def password_auth(auth: dict, password: str | None = None) -> dict:
    return {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "password": password or auth["password"],
            "domain": {"name": auth.get("user_domain_name", "Default")}}}},
        "scope": {"project": {"name": auth["project_name"],
                              "domain": {"name": auth.get("project_domain_name", "Default")}}}}}


# ---- Cinder ----------------------------------------------------------------------------

class CinderClouds:
    """Per test: SDK connections, raw-request helpers, and everything made, removed after."""

    def __init__(self, ost):
        self.ost = ost
        self.volumes, self.types, self.qos, self.images = [], [], [], []
        self.backups = []         # (cloud, backup id): newest first out, before the volumes
        self._conns = {}

    def conn(self, cloud: str, admin: bool = False):
        key = (cloud, admin)
        if key not in self._conns:
            self._conns[key] = self.ost.connect(cloud, admin=admin)
        return self._conns[key]

    def url(self, cloud: str, admin: bool = False) -> str:
        """http://host:8776/v3/<project>: the catalog's volumev3 endpoint for that token."""
        return self.conn(cloud, admin).block_storage.get_endpoint().rstrip("/")

    def raw(self, cloud: str, method: str, path: str, admin: bool = False, version=None,
            **kw) -> requests.Response:
        headers = {"X-Auth-Token": self.conn(cloud, admin).session.get_token()}
        if version:
            headers["OpenStack-API-Version"] = f"volume {version}"
        headers.update(kw.pop("headers", {}))
        return requests.request(method, self.url(cloud, admin) + path, headers=headers,
                                timeout=30, **kw)

    def datera_type(self, cloud: str, **specs):
        specs = {"volume_backend_name": "datera", "DF:replica_count": "1", **specs}
        t = self.conn(cloud, True).block_storage.create_type(name=unique_name("datera"),
                                                              extra_specs=specs)
        self.types.append((cloud, t.id))
        return t

    def ceph_type(self, cloud: str):
        t = self.conn(cloud, True).block_storage.create_type(
            name=unique_name("ceph"), extra_specs={"volume_backend_name": "ceph"})
        self.types.append((cloud, t.id))
        return t

    def image(self, cloud: str, data: bytes):
        img = self.conn(cloud).image.create_image(name=unique_name("img"), data=data,
                                                  disk_format="raw", container_format="bare")
        self.images.append((cloud, img.id))
        return img

    def volume(self, cloud: str, wait: bool = True, **kw):
        bs = self.conn(cloud).block_storage
        vol = bs.create_volume(name=kw.pop("name", unique_name("vol")), **kw)
        self.volumes.append((cloud, vol.id))
        return bs.wait_for_status(vol, "available", failures=["error"], wait=120) if wait \
            else vol

    def admin_volume(self, cloud: str, volume_id: str) -> dict:
        resp = self.raw(cloud, "GET", f"/volumes/{volume_id}", admin=True)
        assert resp.status_code == 200, resp.text
        return resp.json()["volume"]

    def wait_admin(self, cloud: str, volume_id: str, done, timeout: float = 180) -> dict:
        return poll_until(lambda: self.admin_volume(cloud, volume_id), done, timeout)

    def cleanup(self) -> None:
        for cloud, bid in reversed(self.backups):    # incremental children before parents
            self.raw(cloud, "POST", f"/backups/{bid}/action", admin=True,
                     json={"os-force_delete": None})
            poll_until(lambda: self.raw(cloud, "GET", f"/backups/{bid}", admin=True),
                       lambda r: r.status_code == 404, 60)
        for cloud, vid in reversed(self.volumes):
            admin = self.conn(cloud, True).block_storage
            vol = admin.find_volume(vid, ignore_missing=True, all_projects=True)
            if vol is None:
                continue
            if vol.status not in ("available", "error", "deleting"):
                self.raw(cloud, "POST", f"/volumes/{vid}/action", admin=True,
                         json={"os-reset_status": {"status": "available",
                                                   "attach_status": "detached"}})
            if vol.status != "deleting":
                self.raw(cloud, "DELETE", f"/volumes/{vid}?cascade=true", admin=True)
        for cloud, vid in self.volumes:
            bs = self.conn(cloud, True).block_storage
            vol = bs.find_volume(vid, ignore_missing=True, all_projects=True)
            if vol is not None:
                bs.wait_for_delete(vol, wait=120)
        for cloud, qid in self.qos:
            self.conn(cloud, True).block_storage.delete_qos_spec(qid, force=True,
                                                                 ignore_missing=True)
        for cloud, tid in self.types:
            self.conn(cloud, True).block_storage.delete_type(tid, ignore_missing=True)
        for cloud, iid in self.images:
            self.conn(cloud).image.delete_image(iid, ignore_missing=True)


def read_datera_volume(cc: CinderClouds, cloud: str, volume_id: str, tmp_path,
                       nbytes: int | None = None) -> bytes | str:
    """As a host reads it: os-initialize_connection, the initiator login with the CHAP
    credentials of connection_info, NBD; then os-terminate_connection. The first nbytes,
    or the sha256 of the whole volume when nbytes is None."""
    connector = {"initiator": TEST_INITIATOR, "ip": "127.0.0.1", "host": "cinder-test",
                 "multipath": False, "platform": "x86_64", "os_type": "linux2"}
    resp = cc.raw(cloud, "POST", f"/volumes/{volume_id}/action",
                  json={"os-initialize_connection": {"connector": connector}})
    assert resp.status_code == 200, resp.text
    info = resp.json()["connection_info"]
    assert info["driver_volume_type"] == "iscsi"
    d = info["data"]
    try:
        chap = ({"chap_user": d["auth_username"], "chap_secret": d["auth_password"]}
                if d.get("auth_method") == "CHAP" else {})
        luns = login(d["target_portal"].rsplit(":", 1)[0], ports.ISCSI, TEST_INITIATOR,
                     d["target_iqn"], **chap)
        out = tmp_path / f"read-{uuid.uuid4().hex[:6]}"
        if nbytes is not None:
            subprocess.run(["nbdcopy", "--", "[", "nbdkit", "--exit-with-parent", "-r",
                            "--filter=truncate", "nbd", f"uri={luns[0].uri}",
                            f"truncate={nbytes}", "]", str(out)],
                           check=True, timeout=120, capture_output=True)
            return out.read_bytes()[:nbytes]
        subprocess.run(["nbdcopy", luns[0].uri, str(out)], check=True, timeout=120,
                       capture_output=True)
        return sha256_file(out)
    finally:
        cc.raw(cloud, "POST", f"/volumes/{volume_id}/action",
               json={"os-terminate_connection": {"connector": connector}})


def write_datera_volume(cc: CinderClouds, cloud: str, volume_id: str, data: bytes,
                        tmp_path) -> None:
    """As a host writes it: the login of read_datera_volume, then nbdcopy of `data` to the
    volume's first bytes."""
    connector = {"initiator": TEST_INITIATOR, "ip": "127.0.0.1", "host": "cinder-test",
                 "multipath": False, "platform": "x86_64", "os_type": "linux2"}
    resp = cc.raw(cloud, "POST", f"/volumes/{volume_id}/action",
                  json={"os-initialize_connection": {"connector": connector}})
    assert resp.status_code == 200, resp.text
    d = resp.json()["connection_info"]["data"]
    try:
        chap = ({"chap_user": d["auth_username"], "chap_secret": d["auth_password"]}
                if d.get("auth_method") == "CHAP" else {})
        luns = login(d["target_portal"].rsplit(":", 1)[0], ports.ISCSI, TEST_INITIATOR,
                     d["target_iqn"], **chap)
        src = tmp_path / f"write-{uuid.uuid4().hex[:6]}"
        src.write_bytes(data)
        subprocess.run(["nbdcopy", "--flush", str(src), luns[0].uri], check=True, timeout=120,
                       capture_output=True)
    finally:
        cc.raw(cloud, "POST", f"/volumes/{volume_id}/action",
               json={"os-terminate_connection": {"connector": connector}})


def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def ceph_volume_path(target, cloud: str, info: dict) -> Path:
    """Where the lab's Ceph node keeps the RBD image connection_info names (pool/volume-id)."""
    return target.dir.parent / f"openstack-{cloud}" / "data" / "ceph" / info["data"]["name"]


# ---- Nova --------------------------------------------------------------------------------

def boot_networks(cloud: str) -> dict:
    """Newton and Pike require `networks` (reference §e #1); Mitaka refuses strings (#2)."""
    return {} if cloud == "mitaka" else {"networks": "auto"}


def fio_reports(console: str) -> list[dict]:
    """Every fio JSON document in a console log."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while (at := console.find('{\n  "fio version"', at)) >= 0:
        doc, end = decoder.raw_decode(console, at)
        out.append(doc)
        at = end
    return out


def console_until(conn, server, until="finished at", timeout=120) -> str:
    def ready():
        out = conn.compute.get_server_console_output(server)["output"]
        return out if until in out else None
    return wait_until(ready, timeout, f"console of {server.id} to say {until!r}", 0.2,
                      error=AssertionError)


class RawGlance:
    """Raw requests to one cloud's Glance v2 as its tenant user (or admin=True), the images it
    made deleted by cleanup(); `glance` fixtures parametrize it by cloud name (indirect)."""
    name_tag = "glance"
    image_defaults: dict = {}

    def __init__(self, ost: OpenStackTarget, cloud: str):
        self.cloud, self.ost = cloud, ost
        self.base = ost.endpoint(cloud, "image").rstrip("/")
        self.tokens = {admin: ost.token(cloud, admin) for admin in (False, True)}
        self.made: list[str] = []

    @property
    def token(self) -> str:
        """The tenant user's token id (for requests made without this client)."""
        return self.tokens[False][0]

    def project(self, admin: bool = False) -> str:
        return self.tokens[admin][1]["project"]["id"]

    def __call__(self, method: str, path: str, admin: bool = False, **kw) -> requests.Response:
        headers = {"X-Auth-Token": self.tokens[admin][0], **kw.pop("headers", {})}
        return requests.request(method, f"{self.base}/v2{path}", headers=headers,
                                timeout=30, **kw)

    def image(self, **body) -> dict:
        """POST /images (201 asserted) with a unique name and the class's defaults."""
        r = self("POST", "/images", json={"name": unique_name(self.name_tag),
                                          **self.image_defaults, **body})
        assert r.status_code == 201, r.text
        self.made.append(r.json()["id"])
        return r.json()

    def cleanup(self, admin: bool = False) -> None:
        for image_id in self.made:
            self("DELETE", f"/images/{image_id}", admin=admin)
