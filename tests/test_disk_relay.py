"""The compute host's disk relay (lab/openstack/nova/disk_relay.py) on its own, with nbdkit's
memory plugin as the two exports and fio's nbd engine as the guest: requests pass through with
crc32c verify intact, and a pivot while fio writes moves its I/O to the new export without an
error (the live blockRebase swap_volume relies on)."""
import json
import os
import subprocess
import threading

import pytest

from fixtures.waiters import wait_until
from lab.openstack.nova.disk_relay import DiskRelay, RelayError, nbdcopy, open_export

SIZE = "64M"


@pytest.fixture
def export(tmp_path):
    """A function starting an nbdkit memory export; returns its nbd+unix URI."""
    procs = []

    def start(name: str) -> str:
        sock = tmp_path / f"{name}.sock"
        procs.append(subprocess.Popen(["nbdkit", "-f", "-U", str(sock), "memory", SIZE]))
        wait_until(sock.exists, 10, f"nbdkit {name} to listen", 0.05, error=AssertionError)
        return f"nbd+unix:///?socket={sock}"
    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def _fio(uri: str, *extra: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(["fio", "--name=relay", "--ioengine=nbd", f"--uri={uri}",
                             "--rw=randwrite", "--bs=4k", "--size=16m", "--iodepth=8",
                             "--verify=crc32c", "--verify_state_save=0",
                             "--output-format=json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _written(uri: str) -> int:
    """Bytes of the export that hold data (nbdinfo --map: what fio wrote)."""
    out = subprocess.run(["nbdinfo", "--map", "--json", uri], capture_output=True, text=True,
                         check=True).stdout
    return sum(e["length"] for e in json.loads(out) if e["type"] == 0)


def test_fio_verify_passes_through_the_relay(export, tmp_path):
    relay = DiskRelay(tmp_path / "vdb.sock", export("a"))
    try:
        p = _fio(relay.uri)
        out, err = p.communicate(timeout=120)
        job = json.loads(out[out.index("{"):])["jobs"][0]
        assert p.returncode == 0 and job["error"] == 0, err
        assert job["write"]["io_bytes"] == 16 * 2**20
    finally:
        relay.close()


def test_pivot_while_fio_writes_moves_its_io_to_the_new_export(export, tmp_path):
    old, new = export("old"), export("new")
    relay = DiskRelay(tmp_path / "vdb.sock", old)
    try:
        # time_based: fio keeps writing (and verifying what it wrote) across the pivot
        p = _fio(relay.uri, "--time_based", "--runtime=4", "--verify_backlog=64")
        wait_until(lambda: _written(old) > 0 or p.poll() is not None, 30,
                   "fio to write through the relay", 0.05, error=AssertionError)
        assert p.poll() is None, p.communicate()[1]
        copied = []
        relay.pivot(new, copy=lambda a, b: (copied.append((a, b)), nbdcopy(a, b)))
        assert copied == [(old, new)] and relay.backend_uri == new
        before = _written(new)
        out, err = p.communicate(timeout=120)
        job = json.loads(out[out.index("{"):])["jobs"][0]
        assert p.returncode == 0 and job["error"] == 0, err
        assert "verify: bad" not in err, err
        assert _written(new) >= before > 0
    finally:
        relay.close()


def test_a_refused_pivot_leaves_the_guest_on_the_old_export(export, tmp_path):
    old = export("old")
    relay = DiskRelay(tmp_path / "vdb.sock", old)
    try:
        def copy_fails(a, b):
            raise RelayError("nbdcopy failed: no such export")
        with pytest.raises(RelayError, match="no such export"):
            relay.pivot(export("new"), copy=copy_fails)
        assert relay.backend_uri == old and not relay.paused
        sock, size, _flags = open_export(relay.uri)
        sock.close()
        assert size == 64 * 2**20
    finally:
        relay.close()


def test_close_ends_the_guest_connection(export, tmp_path):
    relay = DiskRelay(tmp_path / "vdb.sock", export("a"))
    sock, _size, _flags = open_export(relay.uri)
    done = threading.Event()

    def reader():
        try:
            sock.recv(1)
        finally:
            done.set()
    threading.Thread(target=reader, daemon=True).start()
    wait_until(lambda: relay.links, 10, "the link", 0.02, error=AssertionError)
    relay.close()
    assert done.wait(10)
    assert not (tmp_path / "vdb.sock").exists()
    sock.close()


def test_without_the_copy_the_guests_verify_catches_the_lost_writes(export, tmp_path):
    """The check above bites: a pivot that skips the copy makes fio's crc32c verify fail."""
    old, new = export("old"), export("new")
    relay = DiskRelay(tmp_path / "vdb.sock", old)
    try:
        p = _fio(relay.uri, "--time_based", "--runtime=3", "--verify_backlog=64")
        wait_until(lambda: _written(old) > 2**20 or p.poll() is not None, 30,
                   "fio to write through the relay", 0.05, error=AssertionError)
        relay.pivot(new, copy=lambda a, b: None)
        _out, err = p.communicate(timeout=120)
        assert p.returncode != 0 and "verify: bad magic header" in err
    finally:
        relay.close()


def test_a_lost_backend_is_recovered_and_unanswered_requests_resent(tmp_path):
    """The target drops the connection (the Datera driver's create_export offlines the app
    instance during Cinder's copy): the relay logs in again and re-sends, fio sees no error."""
    disk, sock = tmp_path / "disk.img", tmp_path / "target.sock"
    disk.write_bytes(b"")
    os.truncate(disk, 64 * 2**20)

    def target() -> subprocess.Popen:
        p = subprocess.Popen(["nbdkit", "-f", "-U", str(sock), "file", str(disk)])
        wait_until(sock.exists, 10, "nbdkit to listen", 0.05, error=AssertionError)
        return p
    server = target()
    uri = f"nbd+unix:///?socket={sock}"
    relay = DiskRelay(tmp_path / "vdb.sock", uri)
    try:
        p = _fio(relay.uri, "--time_based", "--runtime=3", "--verify_backlog=64")
        wait_until(lambda: _written(uri) > 2**20 or p.poll() is not None, 30,
                   "fio to write through the relay", 0.05, error=AssertionError)
        server.kill()
        server.wait(10)
        sock.unlink()
        server = target()
        out, err = p.communicate(timeout=120)
        job = json.loads(out[out.index("{"):])["jobs"][0]
        assert p.returncode == 0 and job["error"] == 0 and "verify: bad" not in err, err
    finally:
        relay.close()
        server.kill()
        server.wait(10)


def test_a_path_lost_as_the_guest_connects_is_retried_and_a_refused_login_is_not(export,
                                                                                 tmp_path):
    """The login answered through VIP1 but VIP1's export stopped answering before the relay
    connected (a VM's fio starting as VIP1 goes down, CI's test_chaos): the relay logs in
    again, here through the next portal, and fio runs. A refused login (an OSError nowhere in
    its chain: ACL, CHAP) refuses the guest at once."""
    good, gone = export("b"), f"nbd+unix:///?socket={tmp_path / 'vip1-down.sock'}"
    logins = []

    def login() -> str:   # the relay's own first login answers; the guest's meets the lost
        logins.append(1)  # path; the next login answers again
        return gone if len(logins) == 2 else good
    relay = DiskRelay(tmp_path / "vdb.sock", login)
    try:
        p = _fio(relay.uri)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and json.loads(out[out.index("{"):])["jobs"][0]["error"] == 0, err
        assert len(logins) >= 3
    finally:
        relay.close()

    refusals = iter([good])   # the relay's own first login answers, the guest's is refused

    def refused() -> str:
        return next(refusals, None) or _refuse()

    def _refuse():
        raise RuntimeError("initiator not in the ACL")
    relay = DiskRelay(tmp_path / "vdc.sock", refused)
    try:
        p = _fio(relay.uri, "--size=1m")
        out, err = p.communicate(timeout=20)   # not RECOVERY_TIMEOUT: no retry
        assert p.returncode != 0, out
    finally:
        relay.close()
