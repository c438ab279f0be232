"""The Datera lab's data plane: NBD, the initiator login, bytes and metrics.

Two halves:
- in process: a DataPlane on a loop thread of the test's own, on spare lab addresses, with
  `AclTestDouble` standing in for the model's LoginAuthority (the real ACL and CHAP checks are
  the model's, and the second half drives them);
- end to end: the session lab's Datera, driven through the unmodified dfs_sdk, with the lab's
  initiator client and real NBD clients (nbdinfo, fio).
"""
import json
import os
import socket
import struct
import subprocess
import time
import uuid

import pytest

from lab import topology
from lab.datera import nbd_proto as dpm
from lab.datera.contract import Scope, VolumeHandle
from clients.initiator import LoginError, login
from lab.datera.metrics import IO_METRICS, Metrics
from fixtures import waiters
from fixtures import workload as fio
from tests.support.datera_lab import HOST, LabVolume, make_lab_volume
from tests.support.nbd import GiB, RawNbd, inproc, raw_nbd  # noqa: F401,F811 (fixtures)


def wait_until(predicate, timeout: float = 5.0, what: str = "condition"):
    return waiters.wait_until(predicate, timeout, what, 0.02, error=AssertionError)


# ==== in process ================================================================================

def test_metrics_roll_up_per_scope_keep_history_and_read_back():
    now = [1_000_000.5]
    m = Metrics(history_seconds=60, clock=lambda: now[0])
    a = m.add_volume(VolumeHandle("v1", "/root/T/sub", "ai1", GiB))
    b = m.add_volume(VolumeHandle("v2", "/root/T", "ai2", GiB))
    for lat in (10.0, 20.0, 30.0, 40.0):
        a.write(4096, lat)
    b.read(8192, 100.0)
    now[0] += 1
    m.roll()
    t = int(now[0]) - 1
    assert m.latest("iops_write", Scope("volume", "v1")) == {"time": t, "value": 4.0}
    assert m.latest("thpt_write", Scope("app_instance", "ai1"))["value"] == 4 * 4096
    assert m.latest("lat_50_write", Scope("volume", "v1"))["value"] == 20.0
    assert m.latest("lat_90_write", Scope("volume", "v1"))["value"] == 40.0
    assert m.latest("lat_avg_write", Scope("volume", "v1"))["value"] == 25.0
    # a tenant's figures include its sub-tenants'; the system sums everything
    assert m.latest("iops_write", Scope("tenant", "/root/T"))["value"] == 4.0
    assert m.latest("iops_read", Scope("tenant", "/root/T"))["value"] == 1.0
    assert m.latest("bytes_read", Scope("system", ""))["value"] == 8192
    assert m.latest("lat_100_read", Scope("tenant", "/root"))["value"] == 100.0
    assert m.latest("iops_write", Scope("volume", "nope")) is None
    # idle seconds read 0; one point per second; deleted volumes keep their tenant's history
    m.remove_volume("v1")
    for _ in range(3):
        now[0] += 1
        m.roll()
    series = m.series("writes", Scope("app_instance", "ai1"), since=t - 1)
    assert [p["time"] for p in series] == list(range(t - 1, t + 4))
    assert [p["value"] for p in series] == [0.0, 4.0, 0.0, 0.0, 0.0]
    assert m.series("writes", Scope("volume", "v1")) == []
    # the ring forgets what is older than its history, and never grows
    now[0] += 120
    m.roll()
    assert len(m.series("writes", Scope("tenant", "/root/T"))) == 60
    assert all(p["value"] == 0.0 for p in m.series("writes", Scope("tenant", "/root/T")))
    with pytest.raises(ValueError, match="unknown io metric 'iops'"):
        m.latest("iops", Scope("system", ""))
    assert len(IO_METRICS) == 16


def test_login_without_and_with_chap_and_refusals(inproc):
    open_t, _ = inproc.add_target()
    chap_t, vols = inproc.add_target(luns=2, chap=("chapuser", "secret-123456"))
    luns = inproc.login(open_t)
    assert [l.lun for l in luns] == [0]
    assert luns[0].export.startswith(f"{open_t}:lun0:") and len(luns[0].export.rsplit(":", 1)[1]) == 32
    assert luns[0].uri.startswith(f"nbd://{inproc.vips[0]}:{inproc.dp.nbd_port}/")
    # a second login gets new, unguessable names
    assert inproc.login(open_t)[0].export != luns[0].export
    ok = inproc.login(chap_t, vip=1, chap_user="chapuser", chap_secret="secret-123456")
    assert [(l.lun, l.size) for l in ok] == [(0, GiB), (1, GiB)]
    assert ok[0].uri.startswith(f"nbd://{inproc.vips[1]}:")
    with pytest.raises(LoginError, match="requires CHAP"):
        inproc.login(chap_t)
    with pytest.raises(LoginError, match="CHAP authentication failed") as wrong:
        inproc.login(chap_t, chap_user="chapuser", chap_secret="not-the-secret")
    assert "not-the-secret" not in str(wrong.value)
    with pytest.raises(LoginError, match="not in the ACL"):
        inproc.login(chap_t, initiator="iqn.test:intruder", chap_user="chapuser",
                     chap_secret="secret-123456")
    with pytest.raises(LoginError, match="unknown target"):
        inproc.login("iqn.nope")


def test_login_protocol_rejects_bad_input(inproc):
    def exchange(*lines: bytes) -> list[bytes]:
        with socket.create_connection((inproc.vips[0], inproc.dp.login_port), timeout=5) as s:
            for line in lines:
                s.sendall(line)
            return s.makefile("rb").read().splitlines()
    assert b"one JSON object per line" in exchange(b"not json\n")[0]
    assert b"expected {" in exchange(b'{"op": "logout"}\n')[0]
    assert b"initiator: expected an iSCSI name" in exchange(b'{"op": "login", "target": "x"}\n')[0]
    with pytest.raises(LoginError, match="cannot reach the login portal"):
        login(inproc.vips[0], 1, "iqn.a", "iqn.b", timeout=1)


def test_nbdinfo_sees_the_export_and_its_size(inproc):
    target, _ = inproc.add_target(size=3 * GiB)
    uri = inproc.login(target)[0].uri
    out = subprocess.run(["nbdinfo", "--json", uri], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    export = json.loads(out.stdout)["exports"][0]
    assert export["export-size"] == 3 * GiB
    assert export["can_multi_conn"] and export["can_flush"] and export["can_trim"]
    assert json.loads(out.stdout)["protocol"] == "newstyle-fixed"


def test_options_refusals_and_export_name(inproc, raw_nbd):
    target, vols = inproc.add_target(size=1 << 20)
    export = inproc.login(target)[0].export
    c = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    assert c.option(3)[-1][0] == dpm.REP_ERR_UNSUP                       # LIST
    assert c.option(11)[-1][0] == dpm.REP_ERR_UNSUP                      # EXTENDED_HEADERS
    rtype, msg = c.go(f"{target}:lun0:{'0' * 32}")[-1]
    assert rtype == dpm.REP_ERR_UNKNOWN and b"log in to the target" in msg
    info = c.go(export, opt=dpm.OPT_INFO)
    assert info[-1][0] == dpm.REP_ACK
    assert struct.unpack(">HQH", info[0][1]) == (dpm.INFO_EXPORT, 1 << 20, dpm.TRANSMISSION_FLAGS)
    assert c.option(dpm.OPT_ABORT)[-1][0] == dpm.REP_ACK
    assert c.at_eof()
    # EXPORT_NAME, without NO_ZEROES: size, flags and 124 zero bytes
    c = raw_nbd(inproc.vips[1], inproc.dp.nbd_port, no_zeroes=False)
    c.sock.sendall(struct.pack(">QII", dpm.IHAVEOPT, dpm.OPT_EXPORT_NAME, len(export)) + export.encode())
    size, flags = struct.unpack(">QH", c.recv(10))
    assert (size, flags) == (1 << 20, dpm.TRANSMISSION_FLAGS) and c.recv(124) == bytes(124)
    c.send(dpm.CMD_DISC, 1)
    assert c.at_eof()
    # EXPORT_NAME of an unknown export can only be refused by closing
    c = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    c.sock.sendall(struct.pack(">QII", dpm.IHAVEOPT, dpm.OPT_EXPORT_NAME, 3) + b"bad")
    assert c.at_eof()


def test_pipelined_requests_trim_flush_and_bounds(inproc, raw_nbd):
    started = time.time() - 1
    target, vols = inproc.add_target(size=8 << 20)
    c = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    assert c.go(inproc.login(target)[0].export)[-1][0] == dpm.REP_ACK
    blocks = {i: os.urandom(4096) for i in range(64)}
    # 64 writes and 64 reads in one send: parsed from one buffer, answered in order of arrival
    c.sock.sendall(b"".join(c.request(dpm.CMD_WRITE, i, i * 65536, 4096, blocks[i]) for i in blocks))
    assert sorted(c.reply()[1] for _ in blocks) == list(blocks)
    c.sock.sendall(b"".join(c.request(dpm.CMD_READ, 1000 + i, i * 65536, 4096) for i in blocks))
    for _ in blocks:
        err, handle, data = c.reply(4096)
        assert err == 0 and data == blocks[handle - 1000]
    path = inproc.dp.data_dir / "volumes" / f"{vols[0].uuid}.img"
    allocated = os.stat(path).st_blocks
    c.send(dpm.CMD_TRIM, 2, 0, 8 << 20)
    assert c.reply()[0] == 0
    assert os.stat(path).st_blocks < allocated and os.stat(path).st_size == 8 << 20
    c.send(dpm.CMD_READ, 3, 65536, 4096)
    assert c.reply(4096)[2] == bytes(4096)
    c.send(dpm.CMD_FLUSH, 4)
    assert c.reply() == (0, 4, b"")
    c.send(dpm.CMD_READ, 5, (8 << 20) - 512, 4096)
    assert c.reply() == (22, 5, b"")                                   # EINVAL past the end
    c.send(dpm.CMD_WRITE, 6, 8 << 20, 512, bytes(512))
    assert c.reply() == (28, 6, b"")                                   # ENOSPC past the end
    c.send(dpm.CMD_DISC, 7)
    assert c.at_eof()
    # every READ and WRITE reached the metrics, and the TRIM as one more write op (no bytes);
    # each series is waited for on its own (the last read's second may land after the
    # writes' did: CI once saw 64 reads), over the whole test (not "the last 10 s": a loaded
    # machine can take longer than that from the first write to here)
    def total(name: str, scope: Scope) -> float:
        return sum(p["value"] for p in inproc.metrics.series(name, scope, since=started))
    for name, scope, want in (("writes", Scope("volume", vols[0].uuid), 65),
                              ("bytes_written", Scope("volume", vols[0].uuid), 64 * 4096),
                              ("reads", Scope("tenant", "/root/T1"), 65)):
        wait_until(lambda: total(name, scope) == want, what=f"{want} {name} in the metrics")


def test_acl_change_refuses_the_next_open(inproc, raw_nbd):
    target, _ = inproc.add_target()
    export = inproc.login(target)[0].export
    inproc.auth.targets[target].acl.clear()
    c = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    rtype, msg = c.go(export)[-1]
    assert rtype == dpm.REP_ERR_POLICY and b"no longer allowed" in msg
    # and the export is gone for good, even once the ACL admits the host again
    inproc.auth.targets[target].acl.add("iqn.test:host1")
    assert c.go(export)[-1][0] == dpm.REP_ERR_UNKNOWN


def test_offline_closes_connections_and_refuses_io(inproc, raw_nbd):
    target, vols = inproc.add_target(size=1 << 20)
    export = inproc.login(target)[0].export
    c = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    assert c.go(export)[-1][0] == dpm.REP_ACK
    c.send(dpm.CMD_WRITE, 1, 0, 4, b"abcd")
    assert c.reply()[0] == 0
    inproc.lt.call(inproc.dp.volume_online, vols[0].uuid, False)
    assert c.at_eof()
    again = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    rtype, msg = again.go(export)[-1]
    assert rtype == dpm.REP_ERR_UNKNOWN and b"revoked since (volume offline" in msg
    # a fresh login to the offline volume still cannot do I/O
    fresh = inproc.login(target)[0].export
    assert again.go(fresh)[-1][0] == dpm.REP_ERR_UNKNOWN
    inproc.lt.call(inproc.dp.volume_online, vols[0].uuid, True)
    assert again.go(inproc.login(target)[0].export)[-1][0] == dpm.REP_ACK
    again.send(dpm.CMD_READ, 2, 0, 4)
    assert again.reply(4) == (0, 2, b"abcd")


def test_delete_sends_earned_replies_then_closes_and_removes_bytes(inproc, raw_nbd):
    target, vols = inproc.add_target(size=1 << 20)
    inproc.lt.call(inproc.dp.volume_qos, vols[0].uuid, {"write_iops_max": 2})
    c = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    assert c.go(inproc.login(target)[0].export)[-1][0] == dpm.REP_ACK
    c.sock.sendall(b"".join(c.request(dpm.CMD_WRITE, i, 0, 512, bytes(512)) for i in range(6)))
    wait_until(lambda: len(inproc.dp.pacer) >= 5, what="replies held by QoS")
    inproc.lt.call(inproc.dp.volume_deleted, vols[0].uuid)
    assert sorted(c.reply()[1] for _ in range(6)) == list(range(6))
    assert c.at_eof()
    # The file is unlinked off the event loop (lab/datera/dataplane.py), so it may lag a moment.
    img = inproc.dp.data_dir / "volumes" / f"{vols[0].uuid}.img"
    wait_until(lambda: not img.exists(), what="the volume's file to be removed")
    assert not img.exists()


def test_snapshot_clone_restore_copy_sparse_bytes(inproc):
    target, (src,) = inproc.add_target(size=64 << 20)
    dp = inproc.dp
    fd = os.open(dp.data_dir / "volumes" / f"{src.uuid}.img", os.O_RDWR)
    try:
        os.pwrite(fd, b"first", 0)
        os.pwrite(fd, b"far", 48 << 20)
        inproc.lt.call(dp.snapshot_bytes, src.uuid, "1700000000.000001")
        os.pwrite(fd, b"SECOND", 0)
        dst = VolumeHandle(str(uuid.uuid4()), "/root/T1", "ai-x", 64 << 20)
        inproc.lt.call(dp.volume_created, dst)
        inproc.lt.call(dp.clone_bytes, "1700000000.000001", dst.uuid)    # from the snapshot
        clone = dp.data_dir / "volumes" / f"{dst.uuid}.img"
        with open(clone, "rb") as f:
            assert f.read(6) == b"first\0"
            f.seek(48 << 20)
            assert f.read(3) == b"far"
        assert os.stat(clone).st_blocks * 512 < (1 << 20)                 # still sparse
        inproc.lt.call(dp.restore_bytes, src.uuid, "1700000000.000001")
        assert os.pread(fd, 6, 0) == b"first\0"                          # same inode
        inproc.lt.call(dp.drop_snapshot, src.uuid, "1700000000.000001")
        with pytest.raises(KeyError):
            inproc.lt.call(dp.clone_bytes, "1700000000.000001", dst.uuid)
        with pytest.raises(ValueError):
            inproc.lt.call(dp.snapshot_bytes, src.uuid, "../escape")
    finally:
        os.close(fd)


def test_fio_verifies_through_the_data_plane(inproc, tmp_path):
    target, (vol,) = inproc.add_target(size=256 << 20)
    uri = inproc.login(target)[0].uri
    r = fio.run(uri, tmp_path / "fio", rw="randwrite", size="32M",
                options={"verify": "crc32c", "do_verify": 1})
    assert r.ok, r.stderr
    assert r.write.total_ios == r.read.total_ios == 8192


# ==== end to end: the session lab through dfs_sdk ================================================

def test_e2e_nbdinfo_and_fio_verify_then_corruption_is_detected(lab_api, lab_tenant, tmp_path):
    lv = make_lab_volume(lab_api, lab_tenant, initiators=[HOST])
    (lun,) = lv.login(HOST, portal=1)
    assert lun.size == GiB
    info = subprocess.run(["nbdinfo", "--size", lun.uri], capture_output=True, text=True,
                          timeout=30)
    assert info.returncode == 0 and int(info.stdout) == GiB, info.stderr
    job = dict(name="verify", rw="randwrite", bs="4k", size="16M")
    r = fio.run(lun.uri, tmp_path / "w", **job, options={"verify": "crc32c", "do_verify": 1})
    assert r.ok and r.read.total_ios == 4096, r.stderr
    # read back later through the other VIP, on a new login
    (again,) = lv.login(HOST, portal=0)
    r = fio.run(again.uri, tmp_path / "v", **job, options={"verify": "crc32c", "verify_only": 1})
    assert r.ok and r.read.total_ios == 4096, r.stderr
    # one block overwritten through the export with another pattern
    r = fio.run(again.uri, tmp_path / "c", name="corrupt", rw="write", bs="4k", size="4k",
                options={"offset": 409600, "buffer_pattern": "0xdeadbeef"})
    assert r.ok, r.stderr
    r = fio.run(again.uri, tmp_path / "v2", **job, options={"verify": "crc32c", "verify_only": 1})
    assert r.returncode == 1 and r.error == 84 and "offset 409600" in r.stderr


def test_e2e_chap_and_acl_refusals_and_success(lab_api, lab_tenant, raw_nbd):
    lv = make_lab_volume(lab_api, lab_tenant, initiators=[HOST], chap=("vdpuser", "vdp-secret-1234"))
    with pytest.raises(LoginError, match="CHAP authentication failed") as wrong:
        lv.login(HOST, chap_user="vdpuser", chap_secret="wrong-secret-99")
    assert "wrong-secret-99" not in repr(wrong.value)
    with pytest.raises(LoginError, match="requires CHAP"):
        lv.login(HOST)
    with pytest.raises(LoginError, match="not in the ACL"):
        lv.login("iqn.1993-08.org.debian:01:foreign", chap_user="vdpuser", chap_secret="vdp-secret-1234")
    (lun,) = lv.login(HOST, chap_user="vdpuser", chap_secret="vdp-secret-1234")
    c = raw_nbd(lv.ips[0], topology.DATERA_NBD_PORT)
    assert c.go(lun.export)[-1][0] == dpm.REP_ACK
    c.close()
    # the ACL drops the host: its export no longer opens
    lv.si.acl_policy.set(initiators=[], initiator_groups=[], tenant=lab_tenant)
    c = raw_nbd(lv.ips[0], topology.DATERA_NBD_PORT)
    rtype, msg = c.go(lun.export)[-1]
    assert rtype == dpm.REP_ERR_POLICY and b"no longer allowed" in msg


def _open(lv: LabVolume, raw_nbd) -> RawNbd:
    (lun,) = lv.login(HOST)
    c = raw_nbd(lv.ips[0], topology.DATERA_NBD_PORT)
    assert c.go(lun.export)[-1][0] == dpm.REP_ACK
    return c


def test_e2e_deleting_a_volume_closes_its_connection_cleanly(lab_api, lab_tenant, raw_nbd):
    lv = make_lab_volume(lab_api, lab_tenant, initiators=[HOST])
    c = _open(lv, raw_nbd)
    c.send(dpm.CMD_WRITE, 1, 0, 4096, os.urandom(4096))
    assert c.reply()[0] == 0
    lv.ai.delete(force=True, tenant=lab_tenant)   # online: the delete itself closes it
    assert c.at_eof()
    with pytest.raises(LoginError, match="unknown target"):
        lv.login(HOST)


def test_e2e_offline_refuses_io(lab_api, lab_tenant, raw_nbd):
    lv = make_lab_volume(lab_api, lab_tenant, initiators=[HOST])
    c = _open(lv, raw_nbd)
    (lun,) = lv.login(HOST)
    lv.ai.set(admin_state="offline", force=True, tenant=lab_tenant)
    assert c.at_eof()
    with pytest.raises(LoginError, match="offline"):
        lv.login(HOST)
    c = raw_nbd(lv.ips[0], topology.DATERA_NBD_PORT)
    rtype, msg = c.go(lun.export)[-1]
    assert rtype == dpm.REP_ERR_UNKNOWN and b"revoked since (volume offline" in msg
    lv.ai.set(admin_state="online", tenant=lab_tenant)
    c = _open(lv, raw_nbd)
    c.send(dpm.CMD_READ, 9, 0, 512)
    assert c.reply(512)[0] == 0
