"""Revert a volume to its latest snapshot (Cinder's `revert` action, microversion 3.40, Pike
only) through openstacksdk and raw requests: the preconditions of cinder/api/v3/volumes.py and
cinder/volume/api.py (11.0.0), the reverting/restoring states, and the bytes: written through
the data plane (Datera) or the RBD image (Ceph), snapshotted, overwritten, reverted, read back.
"""
import openstack.exceptions
import pytest

from fixtures.waiters import poll_until
from tests.support.openstack import (ceph_volume_path, read_datera_volume, unique_name,
                                     write_datera_volume)

MiB = 1 << 20
BEFORE, AFTER = b"B" * MiB, b"A" * MiB


def _snapshot(cc, cloud, vol_id):
    bs = cc.conn(cloud).block_storage
    snap = bs.create_snapshot(volume_id=vol_id, name=unique_name("snap"))
    return bs.wait_for_status(snap, "available", failures=["error"], wait=60)


def _revert(cc, cloud, vol_id, snap_id, version="3.40"):
    return cc.raw(cloud, "POST", f"/volumes/{vol_id}/action", version=version,
                  json={"revert": {"snapshot_id": snap_id}})


def _ceph_path(cc, target, cloud, vol_id):
    resp = cc.raw(cloud, "POST", f"/volumes/{vol_id}/action",
                  json={"os-initialize_connection": {"connector": {"host": "t"}}})
    assert resp.status_code == 200, resp.text
    return ceph_volume_path(target, cloud, resp.json()["connection_info"])


@pytest.mark.parametrize("backend", ["datera", "ceph"])
def test_revert_brings_the_snapshot_bytes_back(cc, target, tmp_path, backend):
    cloud = "pike"
    vtype = cc.datera_type(cloud) if backend == "datera" else cc.ceph_type(cloud)
    vol = cc.volume(cloud, size=1, volume_type=vtype.name)
    if backend == "datera":
        write = lambda data: write_datera_volume(cc, cloud, vol.id, data, tmp_path)  # noqa: E731
        read = lambda: read_datera_volume(cc, cloud, vol.id, tmp_path, MiB)          # noqa: E731
    else:
        path = _ceph_path(cc, target, cloud, vol.id)

        def write(data):
            with open(path, "r+b") as f:
                f.write(data)

        def read():
            with open(path, "rb") as f:
                return f.read(MiB)
    write(BEFORE)
    snap = _snapshot(cc, cloud, vol.id)
    write(AFTER)
    assert read() == AFTER
    bs = cc.conn(cloud).block_storage
    bs.revert_volume_to_snapshot(vol, snap)          # openstacksdk, at 3.40
    seen = set()
    poll_until(lambda: cc.admin_volume(cloud, vol.id)["status"],
               lambda s: seen.add(s) or s == "available", 60)
    assert seen <= {"reverting", "available"}
    assert bs.get_snapshot(snap.id).status == "available"
    assert read() == BEFORE


def test_revert_is_3_40_and_pike_only(cc):
    vol = cc.volume("pike", size=1)
    snap = _snapshot(cc, "pike", vol.id)
    assert _revert(cc, "pike", vol.id, snap.id, "3.39").status_code == 404
    resp = cc.raw("pike", "POST", f"/volumes/{vol.id}/action".replace("/v3/", "/v2/"),
                  json={"revert": {"snapshot_id": snap.id}})
    assert resp.status_code == 404
    assert _revert(cc, "pike", vol.id, snap.id, "3.40").status_code == 202
    for cloud in ("mitaka", "newton"):
        v = cc.volume(cloud, size=1)
        s = _snapshot(cc, cloud, v.id)
        # 3.40 is outside both releases' range: 406 before any action is looked at
        assert _revert(cc, cloud, v.id, s.id).status_code == 406
        assert _revert(cc, cloud, v.id, s.id, None).status_code == 404
        with pytest.raises(openstack.exceptions.SDKException):
            cc.conn(cloud).block_storage.revert_volume_to_snapshot(v, s)


def test_revert_preconditions(cc):
    cloud = "pike"
    vol = cc.volume(cloud, size=1)
    resp = _revert(cc, cloud, vol.id, "0" * 32)
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == \
        f"Volume {vol.id} doesn't have any snapshots."
    older = _snapshot(cc, cloud, vol.id)
    latest = _snapshot(cc, cloud, vol.id)
    for wrong in (older.id, None):
        resp = _revert(cc, cloud, vol.id, wrong)
        assert resp.status_code == 400
        assert resp.json()["badRequest"]["message"] == \
            f"Specified snapshot {wrong} is None or not the latest one of volume {vol.id}."
    # an extended volume no longer matches its latest snapshot's size
    bs = cc.conn(cloud).block_storage
    ext = cc.volume(cloud, size=1)
    ext_snap = _snapshot(cc, cloud, ext.id)
    bs.extend_volume(ext, 2)
    # a fresh GET: the object in hand says "available" already, and openstacksdk's
    # wait_for_status returns at once when the status in hand matches (resource.py)
    bs.wait_for_status(bs.get_volume(ext.id), "available", failures=["error_extending"], wait=60)
    resp = _revert(cc, cloud, ext.id, ext_snap.id)
    assert resp.status_code == 400
    assert "The volume size must be equal to the snapshot size." in \
        resp.json()["badRequest"]["message"]
    # a volume not available: 409 InvalidVolume, nothing changed
    cc.raw(cloud, "POST", f"/volumes/{vol.id}/action", admin=True,
           json={"os-reset_status": {"status": "error"}})
    resp = _revert(cc, cloud, vol.id, latest.id)
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == (
        f"Invalid volume: Can't revert volume {vol.id} to its latest snapshot. "
        "Volume's status must be 'available'.")
    assert bs.get_snapshot(latest.id).status == "available"
    # a snapshot not available: 409 InvalidSnapshot, the volume stays available
    cc.raw(cloud, "POST", f"/volumes/{vol.id}/action", admin=True,
           json={"os-reset_status": {"status": "available"}})
    cc.raw(cloud, "POST", f"/snapshots/{latest.id}/action", admin=True,
           json={"os-reset_status": {"status": "error"}})
    resp = _revert(cc, cloud, vol.id, latest.id)
    assert resp.status_code == 409
    assert "Snapshot's status must be 'available'." in \
        resp.json()["conflictingRequest"]["message"]
    assert cc.admin_volume(cloud, vol.id)["status"] == "available"
