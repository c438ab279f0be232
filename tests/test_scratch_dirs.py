"""/tmp/vancouver-* scratch never outlives its owner (clients/scratch.py): the endless run's
shared directory, the relays' socket directories (fixtures/transport.py, the guests, the CSI
node), the tests' dfs_sdk schema cache. Each run lists the temp directory (TMPDIR, private to
the test) before and after: a run that ends, is stopped by SIGTERM or Ctrl-C, leaves nothing;
one killed with SIGKILL leaves its directory, which the next owner of that kind removes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from clients import scratch
from lab.openstack.nova.disk_relay import DiskRelay
from tests.support.inner_run import demo_yaml, env

CONFTEST = 'pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting"]\n'
SUITE = """\
import pytest

@pytest.mark.parametrize("n", range(2))
def test_step(n, proof):
    with proof.step("work"):
        proof.figure("n", n)
"""


def _listing(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("vancouver-*"))


def _start(tmp: Path, scratch_tmp: Path, *args: str) -> subprocess.Popen:
    (tmp / "conftest.py").write_text(CONFTEST)
    (tmp / "demo.yaml").write_text(demo_yaml({"demo": 0}))
    (tmp / "test_demo.py").write_text(SUITE)
    e = env()
    e["TMPDIR"] = str(scratch_tmp)
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--demo-config", "demo.yaml", "--demo-profile", "ci",
                             "--basetemp", str(tmp / "basetemp"), *args],
                            cwd=tmp, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _wait_for(cond, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _results(tmp: Path) -> int:
    path = tmp / "reports" / "results.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def private_tmp(tmp_path):
    d = tmp_path / "t"
    d.mkdir()
    return d


def test_an_ended_run_leaves_no_scratch(tmp_path, private_tmp):
    assert _listing(private_tmp) == []
    proc = _start(tmp_path, private_tmp, "-n", "2", "--count=0", "--duration", "2s")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert _listing(private_tmp) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_endless_run_leaves_no_scratch(tmp_path, private_tmp, sig):
    proc = _start(tmp_path, private_tmp, "-n", "2", "--count=0")
    try:
        _wait_for(lambda: _results(tmp_path) >= 2, "results")
        assert [n for n in _listing(private_tmp) if n.startswith("vancouver-endless-")]
        os.killpg(proc.pid, sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert _listing(private_tmp) == [], out[-3000:]


def test_a_killed_runs_scratch_goes_with_the_next_run(tmp_path, private_tmp):
    proc = _start(tmp_path, private_tmp, "-n", "2", "--count=0")
    try:
        _wait_for(lambda: _results(tmp_path) >= 2, "results")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    left = _listing(private_tmp)
    assert left and all(n.startswith(f"vancouver-endless-{proc.pid}-") for n in left), left
    proc = _start(tmp_path, private_tmp, "--count=0", "--duration", "1s")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert _listing(private_tmp) == []


def test_sweep_spares_live_owners_and_other_kinds(tmp_path):
    mine = scratch.make_dir("endless", tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f"vancouver-endless-{dead}-abcdefgh").mkdir()
    (tmp_path / f"vancouver-relay-{dead}-abcdefgh").mkdir()   # another kind: its own sweep
    (tmp_path / "vancouver-endless-legacy01").mkdir()          # pid-less, fresh: kept
    old = tmp_path / "vancouver-endless-legacy02"
    old.mkdir()
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    gone = scratch.sweep("endless", tmp_path)
    assert sorted(p.name for p in gone) == sorted([f"vancouver-endless-{dead}-abcdefgh",
                                                   "vancouver-endless-legacy02"])
    assert mine.is_dir() and (tmp_path / f"vancouver-relay-{dead}-abcdefgh").is_dir()
    scratch.remove(mine)
    assert not mine.exists()


def test_process_exit_removes_its_scratch_a_forked_child_does_not(tmp_path):
    code = ("import os, sys; from pathlib import Path; from clients import scratch; "
            f"d = scratch.make_dir('relay', Path({str(tmp_path)!r})); print(d, flush=True); "
            "pid = os.fork()\n"
            "if pid == 0: sys.exit(0)\n"   # a forked child's exit leaves the parent's dir
            "os.waitpid(pid, 0); assert d.is_dir(), 'the child removed it'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not Path(proc.stdout.strip()).exists()
    assert _listing(tmp_path) == []


def test_relay_with_a_long_or_no_socket_path_removes_its_own_directory(tmp_path):
    long_dir = tmp_path / ("x" * 120)
    long_dir.mkdir()
    for where in (long_dir / "vdb.sock", None):
        relay = DiskRelay(where, "nbd://127.0.0.1:1/unused")
        sock = Path(relay.sock_path)
        assert sock.exists() and len(str(sock)) <= 100
        assert sock.parent.name.startswith(f"vancouver-relay-{os.getpid()}-")
        relay.close()
        assert not sock.parent.exists()


def test_relay_under_a_deep_temp_dir_binds_its_socket_under_tmp(tmp_path, monkeypatch):
    """A TMPDIR too deep for a socket path (the lab's vCenter gives its guests one under its
    data dir: 73 bytes under pytest-xdist) puts the relay's own directory under /tmp; under
    it the bind failed ('AF_UNIX path too long') and the vSphere guest died (issue 13)."""
    deep = tmp_path / ("d" * max(1, 80 - len(str(tmp_path)) - 1))
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    relay = DiskRelay(deep / "vancouver-vm-1234567-abcdefgh" / "sda.sock", "nbd://127.0.0.1:1/x")
    sock = Path(relay.sock_path)
    try:
        assert sock.exists() and len(str(sock)) <= 100 and sock.name == "sda.sock"
        assert sock.parent.parent == Path("/tmp")
    finally:
        relay.close()
    assert not sock.parent.exists()


def test_the_demo_s_dfs_sdk_schema_cache_goes_with_its_process_and_old_files_of_dead_ones(
        tmp_path):
    """clients/dfs_compat.schema_file: a process's cache dir is gone after it exits; the older
    per-uid folder (a file per process, kept forever) loses the files of dead processes."""
    legacy = tmp_path / f"vancouver-dsdk-{os.getuid()}"
    legacy.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (legacy / f"schema-{dead}.json").write_text("{}")
    (legacy / f"schema-{os.getpid()}.json").write_text("{}")   # a live process's: kept
    (legacy / "schema-139876543210123.json").write_text("{}")  # a thread ident's (the CSI's)
    code = ("from clients.dfs_compat import schema_file; from pathlib import Path; "
            "p = Path(schema_file('dsdk')); p.write_text('{}'); print(p)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(env(), TMPDIR=str(tmp_path)), timeout=60)
    assert out.returncode == 0, out.stderr
    used = Path(out.stdout.strip())
    assert used.parent.parent == tmp_path and used.parent.name.startswith("vancouver-schema-")
    assert not used.parent.exists()
    assert sorted(p.name for p in legacy.iterdir()) == [f"schema-{os.getpid()}.json"]


def test_a_number_too_big_for_a_pid_is_no_live_process():
    """The CSI controller's legacy schema files were named by thread ident (2**47 and more):
    os.kill raised OverflowError, and the CSI controller never came up."""
    assert not scratch.pid_alive(139_876_543_210_123)
