"""Zeros cost nothing (issue 9 item 6): NBD WRITE_ZEROES, structured replies and
BLOCK_STATUS for `base:allocation` on the lab's data plane (authority: the NBD protocol
document, doc/proto.md of NetworkBlockDevice/nbd).

First what the server says, byte for byte (a raw client on an in-process data plane), then
clients nobody here wrote: nbdinfo, qemu-img (convert, compare, map), qemu-io, nbdcopy, on the
in-process data plane and end to end on the session lab through dfs_sdk and the initiator login.
"""
import json
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest

from fixtures import waiters
from lab.datera import nbd_proto as P
from lab.datera import volume_file
from lab.datera.contract import Scope
from tests.support.datera_lab import HOST, make_lab_volume
from tests.support.nbd import GiB, RawNbd, inproc, raw_nbd  # noqa: F401,F811 (fixtures)

MiB = 1 << 20
HOLE = P.STATE_HOLE | P.STATE_ZERO


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    return waiters.wait_until(predicate, timeout, what, 0.02, error=AssertionError)


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(argv)}: {r.stderr.strip()[-500:]}"
    return r


def opened(inproc, raw_nbd, size: int, *, structured: bool, meta: tuple = ()) -> tuple:
    """(client in transmission, volume handle, export name, volume file)."""
    target, (vol,) = inproc.add_target(size=size)
    export = inproc.login(target)[0].export
    c: RawNbd = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    if structured:
        assert c.option(P.OPT_STRUCTURED_REPLY) == [(P.REP_ACK, b"")]
    if meta:
        assert c.meta_context(P.OPT_SET_META_CONTEXT, export, *meta)[-1][0] == P.REP_ACK
    assert c.go(export)[-1][0] == P.REP_ACK
    return c, vol, export, inproc.dp.data_dir / "volumes" / f"{vol.uuid}.img"


def error_chunk(chunks) -> tuple[int, str]:
    ((flags, rtype, _, payload),) = chunks
    assert flags & P.REPLY_FLAG_DONE and rtype == P.REPLY_TYPE_ERROR
    err, n = struct.unpack_from(">IH", payload)
    return err, payload[6:6 + n].decode()


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


# ==== the protocol, byte for byte ===============================================================

def test_negotiation_structured_replies_and_meta_contexts(inproc, raw_nbd):
    target, _ = inproc.add_target(size=MiB)
    export = inproc.login(target)[0].export
    c = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    info = c.go(export, opt=P.OPT_INFO)
    flags = struct.unpack(">HQH", info[0][1])[2]
    assert flags & P.TFLAG_SEND_WRITE_ZEROES and flags & P.TFLAG_SEND_FAST_ZERO
    assert flags & P.TFLAG_SEND_TRIM and flags & P.TFLAG_SEND_FLUSH
    # SET before STRUCTURED_REPLY: refused; STRUCTURED_REPLY with data: refused
    assert c.meta_context(P.OPT_SET_META_CONTEXT, export, "base:allocation")[-1][0] == \
        P.REP_ERR_INVALID
    assert c.option(P.OPT_STRUCTURED_REPLY, b"x")[-1][0] == P.REP_ERR_INVALID
    assert c.option(P.OPT_STRUCTURED_REPLY) == [(P.REP_ACK, b"")]
    ctx = (P.REP_META_CONTEXT, b"\0\0\0\0base:allocation")   # LIST: the id is reserved, 0
    assert c.meta_context(P.OPT_LIST_META_CONTEXT, export) == [ctx, (P.REP_ACK, b"")]
    assert c.meta_context(P.OPT_LIST_META_CONTEXT, export, "base:") == [ctx, (P.REP_ACK, b"")]
    # unknown namespaces and leaf names are ignored, not errors
    assert c.meta_context(P.OPT_LIST_META_CONTEXT, export, "qemu:dirty-bitmap:b",
                          "base:nope") == [(P.REP_ACK, b"")]
    assert c.meta_context(P.OPT_SET_META_CONTEXT, export, "base:") == [(P.REP_ACK, b"")]
    chosen = c.meta_context(P.OPT_SET_META_CONTEXT, export, "x-lab:thing", "base:allocation")
    assert len(chosen) == 2 and chosen[0][0] == P.REP_META_CONTEXT
    assert chosen[0][1][4:] == b"base:allocation" and chosen[0][1][:4] != b"\0\0\0\0"
    # an export nobody logged in to, and a query whose length runs past the option
    assert c.meta_context(P.OPT_LIST_META_CONTEXT, "iqn.x:lun0:" + "0" * 32)[-1][0] == \
        P.REP_ERR_UNKNOWN
    bad = struct.pack(">I", len(export)) + export.encode() + struct.pack(">II", 1, 99) + b"base:"
    rtype, msg = c.option(P.OPT_SET_META_CONTEXT, bad)[-1]
    assert rtype == P.REP_ERR_INVALID and b"query 1" in msg
    assert c.option(P.OPT_ABORT)[-1][0] == P.REP_ACK


def test_write_zeroes_punches_or_provisions_and_fast_zero(inproc, raw_nbd, monkeypatch):
    c, vol, _, path = opened(inproc, raw_nbd, 8 * MiB, structured=False)
    data = os.urandom(2 * MiB)
    c.send(P.CMD_WRITE, 1, MiB, len(data), data)
    assert c.reply()[0] == 0
    assert allocated(path) >= 2 * MiB
    # without NO_HOLE: the range becomes a hole and reads back zero
    c.send(P.CMD_WRITE_ZEROES, 2, MiB, MiB)
    assert c.reply() == (0, 2, b"")
    assert allocated(path) < 2 * MiB
    c.send(P.CMD_READ, 3, MiB, 2 * MiB)
    assert c.reply(2 * MiB)[2] == bytes(MiB) + data[MiB:]
    # NO_HOLE: reads zero, stays provisioned
    before = allocated(path)
    c.send(P.CMD_WRITE_ZEROES, 4, 4 * MiB, 2 * MiB, flags=P.CMD_FLAG_NO_HOLE)
    assert c.reply() == (0, 4, b"")
    assert allocated(path) >= before + 2 * MiB
    c.send(P.CMD_READ, 5, 4 * MiB, 2 * MiB)
    assert c.reply(2 * MiB)[2] == bytes(2 * MiB)
    c.send(P.CMD_WRITE_ZEROES, 6, 2 * MiB, MiB, flags=P.CMD_FLAG_FAST_ZERO)
    assert c.reply()[0] == 0
    c.send(P.CMD_READ, 7, MiB, 2 * MiB)
    assert c.reply(2 * MiB)[2] == bytes(2 * MiB)
    # the spec's refusals: past the end ENOSPC, a flag that is not WRITE_ZEROES' EINVAL
    c.send(P.CMD_WRITE_ZEROES, 8, 8 * MiB - 512, 1024)
    assert c.reply()[0] == P.ENOSPC
    c.send(P.CMD_WRITE_ZEROES, 9, 0, 512, flags=P.CMD_FLAG_REQ_ONE)
    assert c.reply()[0] == P.EINVAL
    # a file system that cannot zero by metadata: FAST_ZERO fails fast, contents untouched;
    # without FAST_ZERO the zeros are written
    c.send(P.CMD_WRITE, 10, 0, 4, b"keep")
    assert c.reply()[0] == 0

    def no_fallocate(fd, mode, offset, length):
        raise OSError(95, "Operation not supported")
    monkeypatch.setattr(volume_file, "fallocate", no_fallocate)
    c.send(P.CMD_WRITE_ZEROES, 11, 0, 4096, flags=P.CMD_FLAG_FAST_ZERO)
    assert c.reply()[0] == P.ENOTSUP
    c.send(P.CMD_READ, 12, 0, 4)
    assert c.reply(4)[2] == b"keep"
    c.send(P.CMD_WRITE_ZEROES, 13, 0, 4096, flags=P.CMD_FLAG_NO_HOLE)
    assert c.reply()[0] == 0
    c.send(P.CMD_READ, 14, 0, 4)
    assert c.reply(4)[2] == bytes(4)


def test_structured_reads_holes_errors_and_block_status(inproc, raw_nbd):
    c, vol, export, path = opened(inproc, raw_nbd, 8 * MiB, structured=True,
                                  meta=("base:allocation",))
    a, b = os.urandom(64 * 1024), os.urandom(128 * 1024)
    c.send(P.CMD_WRITE, 1, MiB, len(a), a)
    c.send(P.CMD_WRITE, 2, 4 * MiB, len(b), b)
    assert sorted(c.reply()[:2] for _ in range(2)) == [(0, 1), (0, 2)]   # writes: simple replies
    # a large read: holes as OFFSET_HOLE, data as OFFSET_DATA, DONE on the last chunk
    c.send(P.CMD_READ, 3, 0, 2 * MiB)
    chunks = c.chunks()
    assert [(t, f) for f, t, _, _ in chunks] == [
        (P.REPLY_TYPE_OFFSET_HOLE, 0), (P.REPLY_TYPE_OFFSET_DATA, 0),
        (P.REPLY_TYPE_OFFSET_HOLE, P.REPLY_FLAG_DONE)]
    assert struct.unpack(">QI", chunks[0][3]) == (0, MiB)
    assert struct.unpack_from(">Q", chunks[1][3])[0] == MiB and chunks[1][3][8:] == a
    assert struct.unpack(">QI", chunks[2][3]) == (MiB + len(a), MiB - len(a))
    # a small read: one data chunk; past the end: an ERROR chunk with a message
    c.send(P.CMD_READ, 4, 4 * MiB, 4096)
    ((flags, rtype, cookie, payload),) = c.chunks()
    assert (flags, rtype, cookie, payload) == (P.REPLY_FLAG_DONE, P.REPLY_TYPE_OFFSET_DATA, 4,
                                               struct.pack(">Q", 4 * MiB) + b[:4096])
    c.send(P.CMD_READ, 5, 8 * MiB - 512, 4096)
    err, msg = error_chunk(c.chunks())
    assert err == P.EINVAL and "past the end" in msg
    # BLOCK_STATUS: the file's real layout, holes HOLE|ZERO, data 0
    c.send(P.CMD_BLOCK_STATUS, 6, 0, 8 * MiB)
    ((flags, rtype, cookie, payload),) = c.chunks()
    assert (flags, rtype, cookie) == (P.REPLY_FLAG_DONE, P.REPLY_TYPE_BLOCK_STATUS, 6)
    ctx_id, = struct.unpack_from(">I", payload)
    extents = list(struct.iter_unpack(">II", payload[4:]))
    assert extents == [(MiB, HOLE), (len(a), 0), (3 * MiB - len(a), HOLE), (len(b), 0),
                       (4 * MiB - len(b), HOLE)]
    assert ctx_id == P.META_CONTEXT_ID
    # REQ_ONE: one extent, never past the request
    c.send(P.CMD_BLOCK_STATUS, 7, 0, MiB // 2, flags=P.CMD_FLAG_REQ_ONE)
    assert list(struct.iter_unpack(">II", c.chunks()[0][3][4:])) == [(MiB // 2, HOLE)]
    c.send(P.CMD_BLOCK_STATUS, 8, 4 * MiB, 4 * MiB, flags=P.CMD_FLAG_REQ_ONE)
    assert list(struct.iter_unpack(">II", c.chunks()[0][3][4:])) == [(len(b), 0)]
    # zeroes then trim make holes that block status sees at once
    c.send(P.CMD_WRITE_ZEROES, 9, MiB, len(a))
    c.send(P.CMD_TRIM, 10, 4 * MiB, len(b))
    assert sorted(c.reply()[:2] for _ in range(2)) == [(0, 9), (0, 10)]
    c.send(P.CMD_BLOCK_STATUS, 11, 0, 8 * MiB)
    assert list(struct.iter_unpack(">II", c.chunks()[0][3][4:])) == [(8 * MiB, HOLE)]
    c.send(P.CMD_BLOCK_STATUS, 12, 8 * MiB - 512, 1024)
    assert error_chunk(c.chunks())[0] == P.EINVAL
    c.send(P.CMD_WRITE_ZEROES, 13, 8 * MiB, 512)                    # errors: ERROR chunks
    assert error_chunk(c.chunks())[0] == P.ENOSPC
    c.send(P.CMD_DISC, 14)
    assert c.at_eof()


def test_block_status_needs_a_context_for_the_export_in_use(inproc, raw_nbd):
    c, *_ = opened(inproc, raw_nbd, MiB, structured=True)              # no context selected
    c.send(P.CMD_BLOCK_STATUS, 1, 0, 4096)
    err, msg = error_chunk(c.chunks())
    assert err == P.EINVAL and "no metadata context" in msg
    # contexts selected for one export, then GO to another: void (proto.md)
    target, _ = inproc.add_target(size=MiB)
    first, second = (inproc.login(target)[0].export for _ in range(2))
    c = raw_nbd(inproc.vips[0], inproc.dp.nbd_port)
    assert c.option(P.OPT_STRUCTURED_REPLY)[-1][0] == P.REP_ACK
    assert c.meta_context(P.OPT_SET_META_CONTEXT, first, "base:allocation")[-1][0] == P.REP_ACK
    assert c.go(second)[-1][0] == P.REP_ACK
    c.send(P.CMD_BLOCK_STATUS, 2, 0, 4096)
    assert error_chunk(c.chunks())[0] == P.EINVAL


def test_zeroes_trim_and_block_status_are_ops_counted_and_paced(inproc, raw_nbd):
    c, vol, _, _ = opened(inproc, raw_nbd, 64 * MiB, structured=True, meta=("base:allocation",))
    inproc.lt.call(inproc.dp.volume_qos, vol.uuid, {"write_iops_max": 10})
    c.sock.sendall(b"".join(c.request(P.CMD_WRITE_ZEROES if i % 2 else P.CMD_TRIM, i, i * MiB,
                                      MiB) for i in range(20)))
    wait_until(lambda: len(inproc.dp.pacer) >= 10, what="zeroing replies held by the volume's QoS")
    assert sorted(c.reply()[1] for _ in range(20)) == list(range(20))
    # the tenant's cap governs block status as read ops
    inproc.lt.call(inproc.dp.tenant_qos, "/root/T1", {"read_iops_max": 10})
    c.sock.sendall(b"".join(c.request(P.CMD_BLOCK_STATUS, 100 + i, 0, MiB) for i in range(20)))
    wait_until(lambda: len(inproc.dp.pacer) >= 10, what="block status replies held by the tenant")
    assert sorted(c.chunks()[0][2] for _ in range(20)) == [100 + i for i in range(20)]

    def total(metric):
        return sum(p["value"] for p in inproc.metrics.series(metric, Scope("volume", vol.uuid),
                                                             since=time.time() - 30))
    wait_until(lambda: total("writes") == 20 and total("reads") == 20, what="ops in the metrics")
    assert total("bytes_written") == total("bytes_read") == 0        # no payload, no bytes


# ==== real clients =============================================================================

def qcow2_with_data(path: Path, virtual: int) -> int:
    """A qcow2 of `virtual` bytes holding 1 MiB of 0xab at 0 and 2 MiB of 0xcd in the middle
    (written by qemu-io); returns the data size."""
    run("qemu-img", "create", "-q", "-f", "qcow2", str(path), str(virtual))
    middle = virtual // 2 // MiB * MiB
    run("qemu-io", "-f", "qcow2", "-c", "write -q -P 0xab 0 1M",
        "-c", f"write -q -P 0xcd {middle} 2M", str(path))
    return 3 * MiB


def data_ranges_qemu(uri: str) -> list[tuple[int, int]]:
    out = json.loads(run("qemu-img", "map", "-f", "raw", "--output=json", uri).stdout)
    return [(e["start"], e["length"]) for e in out if e["data"]]


def data_ranges_nbdinfo(uri: str) -> list[tuple[int, int]]:
    out = json.loads(run("nbdinfo", "--map", "--json", uri).stdout)
    assert {e["type"] for e in out} <= {0, HOLE}
    return [(e["offset"], e["length"]) for e in out if e["type"] == 0]


def test_nbdinfo_sees_zero_fast_zero_and_base_allocation(inproc):
    target, _ = inproc.add_target(size=MiB)
    uri = inproc.login(target)[0].uri
    for what in ("zero", "fast-zero", "trim", "flush", "multi-conn"):
        assert subprocess.run(["nbdinfo", "--can", what, uri], timeout=30).returncode == 0, what
    info = json.loads(run("nbdinfo", "--json", uri).stdout)["exports"][0]
    assert "base:allocation" in info["contexts"]
    assert info["can_zero"] and info["can_fast_zero"]


def test_qemu_img_convert_writes_only_the_data_and_map_shows_holes(inproc, tmp_path):
    size = 10 * GiB
    target, (vol,) = inproc.add_target(size=size)
    uri = inproc.login(target)[0].uri
    img = tmp_path / "image.qcow2"
    data = qcow2_with_data(img, size)
    run("qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", str(img), uri)
    run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", str(img), uri)
    middle = size // 2
    assert data_ranges_qemu(uri) == [(0, MiB), (middle, 2 * MiB)]
    assert data_ranges_nbdinfo(uri) == [(0, MiB), (middle, 2 * MiB)]
    path = inproc.dp.data_dir / "volumes" / f"{vol.uuid}.img"
    assert allocated(path) == data

    def written():
        return sum(p["value"] for p in inproc.metrics.series(
            "bytes_written", Scope("volume", vol.uuid), since=time.time() - 60))
    wait_until(lambda: written() >= data, what="the convert's bytes in the metrics")
    assert written() == data


def test_nbdcopy_to_and_from_a_volume_keeps_holes(inproc, tmp_path):
    size = 32 * MiB
    target, (vol,) = inproc.add_target(size=size)
    uri = inproc.login(target)[0].uri
    vpath = inproc.dp.data_dir / "volumes" / f"{vol.uuid}.img"
    full = tmp_path / "full.raw"
    full.write_bytes(b"\x5a" * size)
    run("nbdcopy", str(full), uri)                       # the volume starts fully written
    assert allocated(vpath) == size
    sparse = tmp_path / "sparse.raw"
    with open(sparse, "wb") as f:
        f.truncate(size)
        f.seek(3 * MiB)
        f.write(b"\x11" * MiB)
        f.seek(20 * MiB)
        f.write(b"\x22" * (2 * MiB))
    run("nbdcopy", str(sparse), uri)                     # holes become zeros, by metadata
    assert allocated(vpath) == 3 * MiB
    assert data_ranges_nbdinfo(uri) == [(3 * MiB, MiB), (20 * MiB, 2 * MiB)]
    back = tmp_path / "back.raw"
    back.touch()
    os.truncate(back, size)
    run("nbdcopy", uri, str(back))                       # and a sparse destination
    assert back.read_bytes() == sparse.read_bytes()
    assert allocated(back) == 3 * MiB


def test_e2e_qemu_img_convert_onto_a_lab_volume(lab_api, lab_tenant, tmp_path):
    """The session lab, as a new user meets it: dfs_sdk makes the app instance, the initiator
    logs in, qemu-img writes the image; the lab's metrics API counts only the data."""
    lv = make_lab_volume(lab_api, lab_tenant, initiators=[HOST], size_gb=10)
    (lun,) = lv.login(HOST)
    img = tmp_path / "image.qcow2"
    data = qcow2_with_data(img, lun.size)
    run("qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", str(img), lun.uri)
    run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", str(img), lun.uri)
    assert len(data_ranges_qemu(lun.uri)) == 2
    wait_until(lambda: sum(p["value"] for p in lv.points("bytes_written")) >= data, 15,
               "the convert's bytes in the lab's metrics")
    assert sum(p["value"] for p in lv.points("bytes_written")) == data
    assert sum(p["value"] for p in lv.points("writes")) >= 2
