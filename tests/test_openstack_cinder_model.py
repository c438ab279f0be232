"""The OpenStack lab's Cinder model and both backends, driven directly (no HTTP): per-GB QoS,
volumes from images, retype (in place on Pike, migrated on Newton, Ceph -> Datera on demand with
the bytes), CHAP connection_info, snapshots and clones, attach bookkeeping, bad input, tenancy
and QoS specs reaching the Datera policy. Cinder over HTTP is test_openstack_cinder.py.

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

import pytest

from clients import ports
from clients.initiator import LoginError, login
from lab.openstack import errors
from lab.openstack.cinder.backends.ceph import CephDriver
from lab.openstack.cinder.backends.datera import (DateraConfig, DateraDriver, performance_policy,
                                                  policies)
from lab.openstack.cinder.models import Caller, CinderModel, ImageData, ImageSource
from lab.openstack.releases import PROFILES
from tests.support.dsdk import Udc, connect, errors as dexc


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
