"""The OpenStack lab's Cinder: its model and both backends driven directly (first part), then
Cinder v3 over HTTP through openstacksdk 4.22, the openstack CLI and raw requests against the
target's three clouds (second part).

The `datera` backend talks to the session lab's Datera through the unmodified dfs_sdk, in a
Datera tenant of each test's own (the clouds' Vancouver-O* tenants stay untouched); the `ceph`
backend is a pool of sparse files in the test's tmp dir. Images come from a stand-in image
source holding real bytes in a file, as Glance's store does.
"""
import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import openstack.exceptions
import pytest
import requests
from openstack.block_storage.v3.volume import Volume as SdkVolume

from clients import ports
from clients.initiator import LoginError, login
from lab.openstack import errors
from lab.openstack.cinder.backends.ceph import CephDriver
from lab.openstack.cinder.backends.datera import (DateraConfig, DateraDriver, performance_policy,
                                                  policies)
from lab.openstack.cinder.models import Caller, CinderModel, ImageData, ImageSource
from lab.openstack.releases import PROFILES
from fixtures.waiters import poll_until, wait_until
from tests.support.dsdk import Udc, connect, errors as dexc
from tests.support.openstack import (CLOUDS, TEST_INITIATOR, ceph_volume_path,
                                     read_datera_volume, sha256_file, unique_name)

GiB = 1 << 30
ADMIN = Caller(project_id="admin-project", user_id="admin", is_admin=True)
TENANT = Caller(project_id="c0ffee00c0ffee00c0ffee00c0ffee00", user_id="demo")
OTHER = Caller(project_id="0ther000000000000000000000000000", user_id="other")


class FileImages(ImageSource):
    """Images whose bytes are files, visible to every project."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.images: dict[str, ImageData] = {}

    def add(self, data: bytes, name: str = "cirros") -> ImageData:
        image_id = str(uuid.uuid4())
        path = self.folder / image_id
        path.write_bytes(data)
        img = ImageData(id=image_id, name=name, status="active", size=len(data),
                        checksum=hashlib.md5(data).hexdigest(), disk_format="raw",
                        container_format="bare", min_disk=0, min_ram=0,
                        properties={"os_distro": "cirros"}, path=str(path))
        self.images[image_id] = img
        return img

    def image(self, caller, image_id):
        return self.images[image_id]


@pytest.fixture(scope="module")
def datera_udc(target):
    if not target.is_lab or target.section("datera").get("transport") != "lab":
        pytest.skip("needs the embedded lab's Datera data plane (initiator login + NBD)")
    return Udc.load(target.file("datera", "udc"), target.file("datera", "ca_file"))


@pytest.fixture
def datera_tenant(datera_udc):
    """A Datera tenant of the test's own; its app instances are removed afterwards."""
    name = f"vct-{uuid.uuid4().hex[:8]}"
    yield name
    api = connect(datera_udc)
    path = f"/root/{name}"
    try:
        for ai in api.app_instances.list(tenant=path):
            ai.set(admin_state="offline", force=True, tenant=path)
            ai.delete(force=True, tenant=path)
        for init in api.initiators.list(tenant=path):
            if init.get("tenant") == path:
                init.delete(tenant=path)
        api.tenants.get(name).delete(tenant="/root")
    except dexc.ApiNotFoundError:
        pass


def make_cinder(release, udc, tenant, tmp_path) -> CinderModel:
    host_ip = "127.0.0.1"
    datera = DateraDriver(DateraConfig(
        san_ip=udc.mgmt_ip, san_login=udc.username, san_password=udc.password, tenant=tenant,
        fast_retype=PROFILES[release].datera_fast_retype, ca_file=udc.ca_file,
        host_iqn=f"iqn.2010-10.org.openstack:{tenant}-cinder", host_ip=host_ip,
        login_port=ports.ISCSI))
    ceph = CephDriver(pool_dir=tmp_path / "ceph", monitor="127.0.6.1")
    images = FileImages(tmp_path)
    model = CinderModel(profile=PROFILES[release], host="ctl", images=images,
                        drivers={"datera": datera, "ceph": ceph}, default_backend="ceph")
    return model


@pytest.fixture
def cinder_factory(datera_udc, datera_tenant, tmp_path):
    made = []

    def make(release="pike"):
        (tmp_path / release).mkdir(exist_ok=True)
        m = make_cinder(release, datera_udc, datera_tenant, tmp_path / release)
        made.append(m)
        return m
    yield make
    for m in made:
        for v in list(m.volumes.values()):
            for a in list(v.attachments):
                m.detach(ADMIN, v.id, a.id)
            if v.status not in ("deleting",):
                m.reset_status(ADMIN, v.id, status="available")
                m.delete_volume(ADMIN, v.id, cascade=True)
        m.wait_for(lambda: not m.volumes, 60)
        m.close()


@pytest.fixture
def cinder(cinder_factory):
    return cinder_factory("pike")


def wait_status(model, volume_id, want, timeout=60, field="status"):
    ok = model.wait_for(lambda: getattr(model.volumes[volume_id], field) == want
                        or model.volumes[volume_id].status == "error", timeout)
    vol = model.volumes[volume_id]
    assert ok and getattr(vol, field) == want, (
        f"volume {volume_id} {field}={getattr(vol, field)!r} status={vol.status} "
        f"({vol.error_reason})")
    return vol


def make_types(model):
    datera = model.create_type(ADMIN, "datera", extra_specs={"volume_backend_name": "datera",
                                                            "DF:replica_count": "1"})
    ceph = model.create_type(ADMIN, "ceph", extra_specs={"volume_backend_name": "ceph"})
    return datera, ceph


def read_volume(model, volume_id, nbytes: int, tmp_path) -> bytes:
    """The first nbytes of a volume, read as the host reads it (NBD after login, or rbd)."""
    driver, ref = model.driver_ref(volume_id)
    out = tmp_path / f"read-{uuid.uuid4().hex[:6]}"
    with driver.local_access(ref) as src:
        if src.startswith("nbd://"):
            # Only the first bytes: nbdkit's truncate filter in front of the volume's export.
            subprocess.run(["nbdcopy", "--", "[", "nbdkit", "--exit-with-parent", "-r",
                            "--filter=truncate", "nbd", f"uri={src}", f"truncate={nbytes}", "]",
                            str(out)], check=True, timeout=120, capture_output=True)
            return out.read_bytes()[:nbytes]
        with open(src, "rb") as f:
            return f.read(nbytes)


def volumesha256_file(model, volume_id, tmp_path) -> str:
    driver, ref = model.driver_ref(volume_id)
    with driver.local_access(ref) as src:
        if src.startswith("nbd://"):
            out = tmp_path / f"sum-{uuid.uuid4().hex[:6]}"
            subprocess.run(["nbdcopy", src, str(out)], check=True, timeout=120)
            src = str(out)
        h = hashlib.sha256()
        with open(src, "rb") as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
        return h.hexdigest()


# ==== policies: pure functions ====================================================================

def test_per_gb_qos_is_size_times_rate_capped_only_by_a_set_max():
    pol = policies({"DF:iops_per_gb": "10", "DF:bandwidth_per_gb": "100"}, {})
    # The real driver's fallback cap of 1 would give 1 here.
    assert performance_policy(pol, 5) == {"total_iops_max": 50, "total_bandwidth_max": 500}
    capped = policies({"DF:iops_per_gb": "10", "DF:total_iops_max": "30"}, {})
    assert performance_policy(capped, 5) == {"total_iops_max": 30}
    # QoS spec keys (unprefixed) win over extra specs.
    qos = policies({"DF:total_iops_max": "30", "DF:read_iops_max": "7"},
                   {"total_iops_max": "1000"})
    assert performance_policy(qos, 1) == {"total_iops_max": 1000, "read_iops_max": 7}
    assert performance_policy(policies({}, {}), 10) == {}
    assert policies({"DF:use_chap_auth": "<is> True"}, {})["use_chap_auth"] is True


# ==== the model with both backends =================================================================

def test_volume_from_image_on_datera_has_the_image_bytes(cinder, tmp_path):
    datera, _ = make_types(cinder)
    data = os.urandom(3 * 1024 * 1024 + 123)
    image = cinder.images.add(data)
    vol = cinder.create_volume(TENANT, size=1, name="boot", volume_type="datera",
                               image_id=image.id)
    assert vol.status == "creating"
    vol = wait_status(cinder, vol.id, "available")
    assert vol.host == "ctl@datera#datera" and vol.bootable
    assert vol.image_metadata["image_id"] == image.id
    assert vol.image_metadata["checksum"] == image.checksum
    assert read_volume(cinder, vol.id, len(data), tmp_path) == data
    # The app instance is named after the volume, in the cloud's tenant.
    drv, ref = cinder.driver_ref(vol.id)
    assert drv._ai(ref.id)["name"] == f"OS-{vol.id}"


def test_volume_on_ceph_is_a_sparse_file_with_the_image_bytes(cinder, tmp_path):
    _, ceph = make_types(cinder)
    data = os.urandom(1 << 20)
    image = cinder.images.add(data)
    vol = wait_status(cinder, cinder.create_volume(TENANT, volume_type="ceph",
                                                   image_id=image.id).id, "available")
    assert vol.size == 1 and vol.host == "ctl@ceph#volumes"
    path = cinder.drivers["ceph"].local_path(vol.id)
    assert path.stat().st_size == GiB and path.stat().st_blocks * 512 < 8 << 20
    with open(path, "rb") as f:
        assert f.read(len(data)) == data
    info = cinder.initialize_connection(TENANT, vol.id, {"initiator": "iqn.x:h", "ip": "127.0.0.1"})
    assert info["driver_volume_type"] == "rbd"
    assert info["data"]["name"] == f"volumes/volume-{vol.id}"
    assert info["data"]["hosts"] == ["127.0.6.1"]
    cinder.delete_volume(TENANT, vol.id)
    assert cinder.wait_for(lambda: vol.id not in cinder.volumes, 10)
    assert not path.exists()


def test_retype_ceph_to_datera_on_demand_keeps_id_and_checksum(cinder, tmp_path):
    make_types(cinder)
    image = cinder.images.add(os.urandom(2 << 20))
    vol = wait_status(cinder, cinder.create_volume(TENANT, size=1, volume_type="ceph",
                                                   image_id=image.id).id, "available")
    before = volumesha256_file(cinder, vol.id, tmp_path)
    # never: a cross-backend retype reverts, asynchronously.
    cinder.retype(TENANT, vol.id, "datera", "never")
    assert cinder.volumes[vol.id].status == "retyping"
    vol = wait_status(cinder, vol.id, "available")
    assert cinder.volume_type_of(vol).name == "ceph" and vol.migration_status is None
    cinder.retype(TENANT, vol.id, "datera", "on-demand")
    vol = wait_status(cinder, vol.id, "success", field="migration_status")
    assert vol.status == "available" and vol.id in cinder.volumes
    assert cinder.volume_type_of(vol).name == "datera"
    assert vol.host == "ctl@datera#datera" and vol.name_id is None
    assert [v.id for v in cinder.volumes.values()] == [vol.id]   # the temporary one is gone
    assert not cinder.drivers["ceph"].local_path(vol.id).exists()
    assert volumesha256_file(cinder, vol.id, tmp_path) == before
    drv, ref = cinder.driver_ref(vol.id)
    assert drv._ai(vol.id)["name"] == f"OS-{vol.id}"


def test_retype_between_datera_types_in_place_on_pike(cinder):
    make_types(cinder)
    gold = cinder.create_type(ADMIN, "gold", extra_specs={
        "volume_backend_name": "datera", "DF:replica_count": "1", "DF:iops_per_gb": "100",
        "DF:total_iops_max": "150"})
    vol = wait_status(cinder, cinder.create_volume(TENANT, size=2, volume_type="datera").id,
                      "available")
    drv, ref = cinder.driver_ref(vol.id)
    assert drv.current_policy(ref) == {}
    ai_id = drv._ai(vol.id)["id"]
    cinder.retype(TENANT, vol.id, gold.id, "never")
    vol = wait_status(cinder, vol.id, "available")
    assert cinder.volume_type_of(vol).name == "gold" and vol.migration_status is None
    assert drv._ai(vol.id)["id"] == ai_id                       # same app instance
    assert drv.current_policy(cinder.driver_ref(vol.id)[1]) == {"total_iops_max": 150}


def test_retype_between_datera_types_migrates_on_newton(cinder_factory, tmp_path):
    newton = cinder_factory("newton")
    make_types(newton)
    newton.create_type(ADMIN, "gold", extra_specs={"volume_backend_name": "datera",
                                                   "DF:replica_count": "1",
                                                   "DF:total_iops_max": "500"})
    data = os.urandom(1 << 20)
    image = newton.images.add(data)
    vol = wait_status(newton, newton.create_volume(TENANT, volume_type="datera",
                                                   image_id=image.id).id, "available")
    drv, _ = newton.driver_ref(vol.id)
    old_ai = drv._ai(vol.id)["id"]
    newton.retype(TENANT, vol.id, "gold", "never")   # Newton's driver cannot retype: reverts
    vol = wait_status(newton, vol.id, "available")
    assert newton.volume_type_of(vol).name == "datera"
    newton.retype(TENANT, vol.id, "gold", "on-demand")
    vol = wait_status(newton, vol.id, "success", field="migration_status")
    assert newton.volume_type_of(vol).name == "gold"
    new_ai = drv._ai(vol.id)
    assert new_ai["id"] != old_ai and new_ai["name"] == f"OS-{vol.id}"
    assert drv.current_policy(newton.driver_ref(vol.id)[1]) == {"total_iops_max": 500}
    assert read_volume(newton, vol.id, len(data), tmp_path) == data


def test_chap_type_gives_connection_info_with_both_vips_and_chap(cinder):
    cinder.create_type(ADMIN, "secure", extra_specs={"volume_backend_name": "datera",
                                                     "DF:replica_count": "1",
                                                     "DF:use_chap_auth": "True"})
    vol = wait_status(cinder, cinder.create_volume(TENANT, size=1, volume_type="secure").id,
                      "available")
    host = "iqn.1993-08.org.debian:01:compute-test"
    info = cinder.initialize_connection(TENANT, vol.id, {"initiator": host, "ip": "127.0.0.1",
                                                         "host": "compute1",
                                                         "multipath": False})
    assert info["driver_volume_type"] == "iscsi"
    d = info["data"]
    assert d["auth_method"] == "CHAP" and d["auth_username"].startswith("chap_")
    assert 12 <= len(d["auth_password"]) <= 16
    assert len(d["target_portals"]) == 2 and d["target_portal"] == d["target_portals"][0]
    assert d["target_lun"] == 0 and d["access_mode"] == "rw" and d["qos_specs"] is None
    portal = d["target_portal"].rsplit(":", 1)[0]
    with pytest.raises(LoginError, match="CHAP"):
        login(portal, ports.ISCSI, host, d["target_iqn"], chap_user=d["auth_username"],
              chap_secret="wrong-secret-00")
    for p in d["target_portals"]:
        luns = login(p.rsplit(":", 1)[0], ports.ISCSI, host, d["target_iqn"],
                     chap_user=d["auth_username"], chap_secret=d["auth_password"])
        assert luns[0].size == GiB
    cinder.terminate_connection(TENANT, vol.id, {"initiator": host})
    with pytest.raises(LoginError):
        login(portal, ports.ISCSI, host, d["target_iqn"], chap_user=d["auth_username"],
              chap_secret=d["auth_password"])


def test_snapshot_and_clone_carry_bytes_on_both_backends(cinder, tmp_path):
    make_types(cinder)
    data = os.urandom(1 << 20)
    image = cinder.images.add(data)
    for backend in ("datera", "ceph"):
        vol = wait_status(cinder, cinder.create_volume(TENANT, volume_type=backend,
                                                       image_id=image.id).id, "available")
        snap = cinder.create_snapshot(TENANT, vol.id, name="s1")
        assert cinder.wait_for(lambda: cinder.snapshots[snap.id].status == "available", 30)
        from_snap = cinder.create_volume(TENANT, snapshot_id=snap.id)
        clone = cinder.create_volume(TENANT, source_volid=vol.id, size=2)
        for v in (from_snap, clone):
            v = wait_status(cinder, v.id, "available")
            assert cinder.volume_type_of(v).name == backend
            assert read_volume(cinder, v.id, len(data), tmp_path) == data
        with pytest.raises(errors.BadRequest, match="have snapshots"):
            cinder.delete_volume(TENANT, vol.id)


def test_attach_bookkeeping_and_invalid_transitions(cinder):
    make_types(cinder)
    vol = wait_status(cinder, cinder.create_volume(TENANT, size=1, volume_type="ceph").id,
                      "available")
    cinder.reserve(TENANT, vol.id)
    assert vol.status == "attaching"
    a = cinder.attach(TENANT, vol.id, instance_uuid=str(uuid.uuid4()), mountpoint="/dev/vdb",
                      host_name="compute1")
    assert vol.status == "in-use" and vol.attachments == [a]
    with pytest.raises(errors.BadRequest, match="must be available to reserve"):
        cinder.reserve(TENANT, vol.id)                   # attach an attached one
    with pytest.raises(errors.BadRequest, match="Volume status must be available"):
        cinder.delete_volume(TENANT, vol.id)              # delete an in-use one
    cinder.begin_detaching(TENANT, vol.id)
    cinder.detach(TENANT, vol.id, a.id)
    assert vol.status == "available" and vol.attachments == []


def test_bad_input_and_tenancy(cinder):
    make_types(cinder)
    with pytest.raises(errors.Forbidden, match="types_manage"):
        cinder.create_type(TENANT, "mine")
    with pytest.raises(errors.Forbidden):
        cinder.create_qos(TENANT, {"name": "q"})
    with pytest.raises(errors.BadRequest, match="not of type 'string'"):
        cinder.create_qos(ADMIN, {"name": "q", "specs": {"total_iops_max": "1"}})
    with pytest.raises(errors.NotFound) as nf:
        cinder.get_volume(TENANT, str(uuid.uuid4()))
    assert nf.value.status == 404
    with pytest.raises(errors.BadRequest, match="must be an integer and greater than 0"):
        cinder.create_volume(TENANT, size="zero")
    with pytest.raises(errors.NotFound, match="Volume type nosuch"):
        cinder.create_volume(TENANT, size=1, volume_type="nosuch")
    with pytest.raises(errors.BadRequest, match="Invalid image identifier"):
        cinder.create_volume(TENANT, size=1, image_id=str(uuid.uuid4()))
    vol = wait_status(cinder, cinder.create_volume(TENANT, size=1, volume_type="ceph").id,
                      "available")
    with pytest.raises(errors.NotFound):
        cinder.get_volume(OTHER, vol.id)                  # another tenant's volume
    assert cinder.list_volumes(OTHER) == []
    with pytest.raises(errors.BadRequest, match="Invalid migration_policy"):
        cinder.retype(TENANT, vol.id, "datera", "sometimes")
    with pytest.raises(errors.BadRequest, match="same volume type"):
        cinder.retype(TENANT, vol.id, "ceph", "never")
    cinder.update_quota(ADMIN, TENANT.project_id, {"gigabytes": 3})
    with pytest.raises(errors.OverLimit, match="gigabytes quota"):
        cinder.create_volume(TENANT, size=3, volume_type="ceph")
    quota = cinder.get_quota(TENANT, TENANT.project_id, usage=True)
    assert quota["gigabytes"] == {"limit": 3, "in_use": 1, "reserved": 0, "allocated": 0}
    assert quota["volumes_datera"]["limit"] == -1


def test_qos_spec_association_reaches_the_datera_policy(cinder):
    make_types(cinder)
    q = cinder.create_qos(ADMIN, {"name": "fast", "consumer": "back-end",
                                  "total_iops_max": "800"})
    dtype = next(t for t in cinder.types.values() if t.name == "datera")
    cinder.associate_qos(ADMIN, q.id, dtype.id)
    assert [t.name for t in cinder.qos_associations(ADMIN, q.id)] == ["datera"]
    vol = wait_status(cinder, cinder.create_volume(TENANT, size=1, volume_type="datera").id,
                      "available")
    drv, ref = cinder.driver_ref(vol.id)
    assert drv.current_policy(ref) == {"total_iops_max": 800}
    with pytest.raises(errors.BadRequest, match="still associated"):
        cinder.delete_qos(ADMIN, q.id)


# ==== Cinder v3 over HTTP: openstacksdk 4.22, the openstack CLI and raw requests ============
# Against the target's three clouds (clouds.yaml). Volumes live in the clouds' own tenants,
# named vancouver-test-*, and are deleted by the fixtures below.

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
