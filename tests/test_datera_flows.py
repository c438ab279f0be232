"""The Datera lab driven through the unmodified dfs_sdk 1.2.27 the way its consumers drive it:
the Cinder driver's flows (reference datera-api §3.3-3.11), the CSI driver's (§3.13), and the
whole chain a host sees (API -> initiator login -> NBD bytes -> metrics).
"""
import json
import os
import uuid

import pytest

from clients.datera_acl import acl_with, acl_without, tenant_initiator
from fixtures.waiters import poll_until
from tests.support.datera_api import (api, cinder_ai, cinder_create, cinder_dvol,  # noqa: F401
                                      make_tenant, tenant, udc)
from tests.support.datera_lab import POOL
from tests.support.dsdk import errors


# ---- Cinder flows ----------------------------------------------------------------------------

def test_cinder_create_volume_with_qos_and_metadata(api, tenant):
    ai, vol_id = cinder_create(api, tenant, size=2, qos={"total_iops_max": 500, "read_bandwidth_max": 2048})
    assert ai["tenant"] == tenant and ai["uuid"] == vol_id and ai["admin_state"] == "online"
    assert ai["access_control_mode"] == "deny_all"
    assert ai.app_template["path"] == ""
    vol = cinder_dvol(api, tenant, vol_id)
    assert vol["size"] == 2 and vol["replica_count"] == 3
    policy = vol.performance_policy.get(tenant=tenant)
    assert policy["total_iops_max"] == 500 and policy["read_bandwidth_max"] == 2048
    assert policy["write_iops_max"] == 0
    meta = cinder_ai(api, tenant, vol_id).metadata.get(tenant=tenant)
    assert meta["host"] == "cinder@datera"
    assert api.app_instances.get(f"OS-{vol_id}", tenant=tenant)["id"] == ai["id"]   # by name
    assert api.app_instances.get(ai["id"], tenant=tenant)["name"] == f"OS-{vol_id}"  # by id


def test_cinder_extend_offline_flip_and_grow_only(api, tenant):
    _, vol_id = cinder_create(api, tenant, size=1)
    ai = cinder_ai(api, tenant, vol_id)
    ai.set(admin_state="offline", tenant=tenant)
    vol = cinder_dvol(api, tenant, vol_id)
    assert vol.set(size=3, tenant=tenant)["size"] == 3
    with pytest.raises(errors.ApiInvalidRequestError):
        vol.set(size=2, tenant=tenant)
    assert ai.set(admin_state="online", tenant=tenant)["admin_state"] == "online"
    assert cinder_dvol(api, tenant, vol_id)["size"] == 3


def test_cinder_attach_chap_and_detach(api, tenant):
    _, vol_id = cinder_create(api, tenant)
    iqn = f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}"
    ai = cinder_ai(api, tenant, vol_id)
    # create_export
    ai.set(admin_state="offline", force=True, tenant=tenant)
    si = ai.storage_instances.list(tenant=tenant)[0]
    pools = api.access_network_ip_pools.list(tenant=tenant)
    assert "default" in [p["name"] for p in pools]
    pool = api.access_network_ip_pools.get("default", tenant=tenant)
    si.set(ip_pool={"path": pool["path"]}, tenant=tenant)
    ai.set(admin_state="online", tenant=tenant)
    with pytest.raises(errors.ApiNotFoundError):
        api.initiators.get(iqn, tenant=tenant)
    init = api.initiators.create(id=iqn, name=f"OpenStack-{uuid.uuid4().hex[:8]}", force=True,
                                 tenant=tenant)
    assert init["tenant"] == tenant and init["path"] == f"/initiators/{iqn}"
    si = ai.storage_instances.list(tenant=tenant)[0]
    acl = si.acl_policy.get(tenant=tenant)
    existing = [{"path": e["path"]} for e in acl["initiators"]]
    si.acl_policy.set(initiators=existing + [{"path": init["path"]}],
                      initiator_groups=acl["initiator_groups"], tenant=tenant)
    auth = si.auth.set(type="chap", target_user_name="chapuser", target_pswd="secret-123456",
                       tenant=tenant)
    assert auth["target_pswd"] == "(hidden)" and auth["type"] == "chap"
    si = si.reload(tenant=tenant)
    assert si["op_state"] == "available"
    assert si.access["iqn"].startswith("iqn.2013-05.com.daterainc:tc:01:sn:")
    assert len(si.access["ips"]) == 2 and len(set(si.access["ips"])) == 2
    assert [e["path"] for e in si.acl_policy.get(tenant=tenant)["initiators"]] == [init["path"]]
    # detach_volume
    acl = si.acl_policy.get(tenant=tenant)
    left = [{"path": e["path"]} for e in acl["initiators"] if e["path"].rsplit("/", 1)[1] != iqn]
    si.acl_policy.set(initiators=left, initiator_groups=acl["initiator_groups"], tenant=tenant)
    assert si.acl_policy.get(tenant=tenant)["initiators"] == []
    ai.set(admin_state="offline", force=True, tenant=tenant)
    assert si.reload(tenant=tenant)["op_state"] == "unavailable"
    # delete_volume
    ai.delete(force=True, tenant=tenant)
    assert api.app_instances.list(filter=f"match(name,.*{vol_id}.*)", tenant=tenant) == []


def test_cinder_snapshots_clones_and_restore(api, tenant):
    _, vol_id = cinder_create(api, tenant, size=1)
    vol = cinder_dvol(api, tenant, vol_id)
    snap_id = str(uuid.uuid4())
    snap = vol.snapshots.create(uuid=snap_id, tenant=tenant)
    assert snap["op_state"] == "available" and snap["uuid"] == snap_id
    assert float(snap["utc_ts"]) > 1e9
    with pytest.raises(errors.ApiInvalidRequestError) as dup:
        vol.snapshots.create(uuid=snap_id, tenant=tenant)
    assert dup.value.code == 15
    assert vol.snapshots.get(snap["timestamp"], tenant=tenant)["uuid"] == snap_id
    # create_volume_from_snapshot, create_cloned_volume, and a whole-AI clone
    from_snap = api.app_instances.create(name=f"OS-{uuid.uuid4()}", create_mode="openstack",
                                         clone_snapshot_src={"path": snap["path"]}, tenant=tenant)
    from_vol = api.app_instances.create(name=f"OS-{uuid.uuid4()}", create_mode="openstack",
                                        clone_volume_src={"path": vol["path"]}, tenant=tenant)
    whole = api.app_instances.create(name=f"clone-{uuid.uuid4().hex[:8]}",
                                     clone_src={"path": cinder_ai(api, tenant, vol_id)["path"]},
                                     tenant=tenant)
    for clone in (from_snap, from_vol, whole):
        si = clone["storage_instances"][0]
        assert si["name"] == "storage-1" and si["volumes"][0]["name"] == "volume-1"
        assert si["volumes"][0]["size"] == 1 and si["volumes"][0]["uuid"] != vol["uuid"]
    # restore needs the AI offline (Cinder's backup driver flips it)
    ai = cinder_ai(api, tenant, vol_id)
    with pytest.raises(errors.ApiInvalidRequestError):
        vol.set(restore_point=snap["timestamp"], tenant=tenant)
    ai.set(admin_state="offline", force=True, tenant=tenant)
    assert vol.set(restore_point=snap["timestamp"], tenant=tenant)["restore_point"] == snap["timestamp"]
    ai.set(admin_state="online", tenant=tenant)
    vol.snapshots.get(snap["timestamp"], tenant=tenant).delete(tenant=tenant)
    assert vol.snapshots.list(tenant=tenant) == []


def test_cinder_retype_qos_replicas_placement(api, tenant):
    _, vol_id = cinder_create(api, tenant, qos={"total_iops_max": 100})
    vol = cinder_dvol(api, tenant, vol_id)
    pp = vol.performance_policy.get(tenant=tenant)
    pp.delete(tenant=tenant)
    with pytest.raises(errors.ApiNotFoundError):
        vol.performance_policy.get(tenant=tenant)
    vol.performance_policy.create(write_iops_max=250, tenant=tenant)
    with pytest.raises(errors.ApiConflictError):
        vol.performance_policy.create(write_iops_max=1, tenant=tenant)
    assert vol.performance_policy.get(tenant=tenant)["write_iops_max"] == 250
    updated = vol.performance_policy.get(tenant=tenant).set(total_iops_max=900, tenant=tenant)
    assert updated["write_iops_max"] == 250 and updated["total_iops_max"] == 900
    ai = cinder_ai(api, tenant, vol_id)
    ai.set(admin_state="offline", tenant=tenant)
    assert vol.set(replica_count=4, placement_mode="all_flash", tenant=tenant)["replica_count"] == 4
    with pytest.raises(errors.ApiInvalidRequestError):
        vol.set(replica_count=2, tenant=tenant)
    ai.set(admin_state="online", tenant=tenant)
    assert cinder_dvol(api, tenant, vol_id)["placement_mode"] == "all_flash"
    # update_migrated_volume / unmanage rename the AI
    renamed = ai.set(name=f"UNMANAGED-{vol_id}", tenant=tenant)
    assert api.app_instances.get(f"UNMANAGED-{vol_id}", tenant=tenant)["id"] == renamed["id"]


def test_delete_of_an_online_app_instance_needs_force(api, tenant):
    ai, _ = cinder_create(api, tenant)
    with pytest.raises(errors.ApiInvalidRequestError):
        ai.delete(tenant=tenant)
    ai.delete(force=True, tenant=tenant)
    with pytest.raises(errors.ApiNotFoundError):
        api.app_instances.get(ai["id"], tenant=tenant)



def test_cinder_export_makes_a_tenant_local_initiator_and_adds_it_once(api, tenant):
    """clients.datera_acl, as both the driver and the lab's Cinder backend export (§3.7): an
    initiator inherited from /root is copied into the tenant, a second export of the same host
    leaves the ACL with one entry for it, next to what was there, and a detach removes it."""
    ai, vol_id = cinder_create(api, tenant)
    si = cinder_ai(api, tenant, vol_id).storage_instances.list(tenant=tenant)[0]
    iqn = f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}"
    other = f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}"
    api.initiators.create(id=iqn, name="root-copy", force=True, tenant="/root")
    try:
        api.initiators.create(id=other, name="already-there", tenant=tenant)
        si.acl_policy.set(initiators=[{"path": f"/initiators/{other}"}], tenant=tenant)
        init = tenant_initiator(api, tenant, iqn, name="OpenStack-0001")
        assert init["tenant"] == tenant and init["name"] == "OpenStack-0001"
        again = tenant_initiator(api, tenant, iqn, name="OpenStack-0002")
        assert again["tenant"] == tenant and again["name"] == "OpenStack-0001"   # read back
        for _ in range(2):
            si.acl_policy.set(tenant=tenant, **acl_with(si.acl_policy.get(tenant=tenant),
                                                         init["path"]))
        paths = [i["path"] for i in si.acl_policy.get(tenant=tenant)["initiators"]]
        assert paths == [f"/initiators/{other}", f"/initiators/{iqn}"]
        # detach (§3.9): the host's entry goes, the rest stays
        si.acl_policy.set(tenant=tenant, **acl_without(si.acl_policy.get(tenant=tenant), iqn))
        paths = [i["path"] for i in si.acl_policy.get(tenant=tenant)["initiators"]]
        assert paths == [f"/initiators/{other}"]
    finally:
        api.initiators.get(iqn, tenant="/root").delete(tenant="/root")

# ---- CSI flows -------------------------------------------------------------------------------

def test_csi_create_stage_expand_snapshot_delete(api, tenant):
    name = f"CSI-pvc-{uuid.uuid4().hex[:12]}"
    ai = api.app_instances.create(tenant=tenant, name=name, create_mode="kubernetes", storage_instances=[{
        "name": "storage-1", "ip_pool": {"path": POOL},
        "auth": {"type": "chap", "target_user_name": "csiuser", "target_pswd": "csi-secret-0001"},
        "volumes": [{"name": "volume-1", "size": 16, "replica_count": 3, "placement_mode": "hybrid",
                     "placement_policy": {"path": "/placement_policies/default"},
                     "performance_policy": {"read_iops_max": 0, "write_iops_max": 0,
                                            "total_iops_max": 1000, "read_bandwidth_max": 0,
                                            "write_bandwidth_max": 0, "total_bandwidth_max": 0}}]}])
    si = ai["storage_instances"][0]
    assert si["auth"]["target_pswd"] == "(hidden)"
    assert si["volumes"][0]["performance_policy"]["total_iops_max"] == 1000
    ai = api.app_instances.get(name, tenant=tenant)   # CSI's volume id is the AI name
    # NodeStageVolume: initiator (create on NotFoundError), ACL without tenant-tagged entries
    iqn = f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}"
    with pytest.raises(errors.ApiNotFoundError) as nf:
        api.initiators.get(iqn, tenant=tenant)
    assert nf.value.name == "NotFoundError"
    api.initiators.create(name=f"CSI-{uuid.uuid4().hex[:6]}", id=iqn, force=True, tenant=tenant)
    si = ai.storage_instances.get("storage-1", tenant=tenant)
    si.acl_policy.set(initiators=[{"path": f"/initiators/{iqn}"}], tenant=tenant)
    ai.set(admin_state="online", tenant=tenant)
    si = ai.storage_instances.get("storage-1", tenant=tenant)
    assert si["op_state"] == "available" and si["access"]["ips"][0] != si["access"]["ips"][1]
    # ControllerExpandVolume: online resize
    vol = si.volumes.get("volume-1", tenant=tenant)
    assert vol.set(size=20, tenant=tenant)["size"] == 20
    # CreateSnapshot with a UUIDv5 uuid; duplicate -> InvalidRequestError code 15
    snap_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    snap = vol.snapshots.create(uuid=snap_uuid, tenant=tenant)
    with pytest.raises(errors.ApiInvalidRequestError) as dup:
        vol.snapshots.create(uuid=snap_uuid, tenant=tenant)
    assert (dup.value.name, dup.value.code) == ("InvalidRequestError", 15)
    found = [s for s in api.app_instances.get(name, tenant=tenant)["storage_instances"][0]
             ["volumes"][0]["snapshots"] if s["uuid"] == snap_uuid]
    assert found and found[0]["timestamp"] == snap["timestamp"]
    vol.snapshots.get(snap["timestamp"], tenant=tenant).delete(tenant=tenant)
    # DeleteVolume
    ai.set(admin_state="offline", force=True, tenant=tenant)
    ai.delete(force=True, tenant=tenant)
    with pytest.raises(errors.ApiNotFoundError):
        api.app_instances.get(name, tenant=tenant)


# ---- the whole chain on the lab: API -> initiator login -> NBD bytes -> metrics ----------------

def _login(vip: str, port: int, initiator: str, target: str) -> dict:
    import socket
    with socket.create_connection((vip, port), timeout=10) as s:
        lines = s.makefile("rb")
        s.sendall(json.dumps({"op": "login", "initiator": initiator, "target": target}).encode() + b"\n")
        reply = json.loads(lines.readline())
        if "chap" in reply:   # no credentials to offer: decline, to hear the reason
            s.sendall(json.dumps({"chap_user": None}).encode() + b"\n")
            reply = json.loads(lines.readline())
        return reply


def test_acl_decides_the_initiator_login_and_io_shows_in_metrics(api, target, tenant, tmp_path):
    import shutil
    import subprocess
    from lab import topology

    if target.section("datera").get("transport") != "lab" or not shutil.which("nbdcopy"):
        pytest.skip("needs the lab's initiator login (transport: lab) and nbdcopy (libnbd-bin)")
    ai, vol_id = cinder_create(api, tenant, size=1)
    si = cinder_ai(api, tenant, vol_id).storage_instances.list(tenant=tenant)[0]
    iqn = f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}"
    vip = si.access["ips"][0]
    refused = _login(vip, topology.DATERA_LOGIN_PORT, iqn, si.access["iqn"])
    assert refused["ok"] is False and "ACL" in refused["reason"]
    api.initiators.create(id=iqn, name="OpenStack-e2e00001", force=True, tenant=tenant)
    si.acl_policy.set(initiators=[{"path": f"/initiators/{iqn}"}], tenant=tenant)
    ok = _login(vip, topology.DATERA_LOGIN_PORT, iqn, si.access["iqn"])
    assert ok["ok"] is True and ok["luns"][0]["size"] == 1 << 30
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(8 << 20))
    uri = f"nbd://{vip}:{ok['nbd_port']}/{ok['luns'][0]['export']}"
    copy = subprocess.run(["nbdcopy", str(src), uri], capture_output=True, text=True, timeout=60)
    assert copy.returncode == 0, copy.stderr
    vol = cinder_dvol(api, tenant, vol_id)
    written = poll_until(   # metrics roll once a second
        lambda: sum(p["value"] for p in api.metrics.io.bytes_written.get(
            uuid=vol["uuid"], since="1m", tenant=tenant)[0]["points"]),
        lambda w: w >= 8 << 20, 10)
    assert written >= 8 << 20
    codes = [e["code"] for e in api.events.system.list(tenant=tenant)]
    assert "initiator_login_refused" in codes and "initiator_login" in codes
