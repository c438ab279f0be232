"""lab/detached.py on plain processes (`sleep` in a session of its own): a record names its
program only while pid, start time and command line all match, so a reused pid or another
program is never adopted nor signalled; stop() ends the live ones and drops the records;
kill() leaves the records for the restarted component to find dead."""
import json
import os
import shutil
import subprocess
import sys

import psutil
import pytest

from fixtures.waiters import wait_until
from lab import detached
from lab.users import process_start_time


@pytest.fixture
def sleeper(tmp_path):
    argv = ["sleep", "300"]
    proc = subprocess.Popen(argv, start_new_session=True)
    rec = detached.record(tmp_path, "sleeper", proc.pid, argv)
    yield proc, rec
    proc.kill()
    proc.wait()


def gone(proc: subprocess.Popen) -> bool:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_a_record_is_live_while_its_process_runs_and_is_read_back(tmp_path, sleeper):
    proc, rec = sleeper
    assert rec.live()
    [back] = detached.read(tmp_path)
    assert back == rec and back.argv == ("sleep", "300")


def test_a_reused_pid_or_another_command_line_is_not_the_recorded_program(tmp_path, sleeper):
    proc, rec = sleeper
    path = tmp_path / "detached" / "sleeper.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "start_time": "1.0"}))   # same pid, another process
    [reused] = detached.read(tmp_path)
    assert not reused.live()
    assert detached.stop(tmp_path) == [] and proc.poll() is None   # never signalled
    detached.record(tmp_path, "sleeper", proc.pid, ["sleep", "301"])
    [other] = detached.read(tmp_path)
    assert not other.live()
    assert detached.kill(tmp_path) == [] and proc.poll() is None


def test_our_own_pid_under_a_recorded_name_is_never_signalled(tmp_path):
    me = psutil.Process(os.getpid())
    d = tmp_path / "detached"
    d.mkdir()
    (d / "etcd.json").write_text(json.dumps({"pid": os.getpid(), "start_time": "12.5",
                                             "argv": [sys.executable]}))
    assert detached.stop(tmp_path) == []
    assert me.is_running()


def test_stop_ends_the_live_programs_and_drops_their_records(tmp_path, sleeper):
    proc, rec = sleeper
    assert [r.name for r in detached.stop(tmp_path, timeout=5)] == ["sleeper"]
    assert gone(proc) and proc.returncode == -15   # SIGTERM was enough
    assert detached.read(tmp_path) == []


def test_stop_all_covers_every_component_dir_of_a_run_dir(tmp_path):
    procs = []
    for name in ("kubernetes", "other"):
        p = subprocess.Popen(["sleep", "300"], start_new_session=True)
        detached.record(tmp_path / name, "prog", p.pid, ["sleep", "300"])
        procs.append(p)
    try:
        assert len(detached.stop_all(tmp_path, timeout=5)) == 2
        assert all(gone(p) for p in procs)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_kill_sigkills_and_keeps_the_record_for_the_restarted_component(tmp_path, sleeper):
    proc, rec = sleeper
    assert [r.name for r in detached.kill(tmp_path)] == ["sleeper"]
    assert gone(proc) and proc.returncode == -9
    [left] = detached.read(tmp_path)
    assert left == rec and not left.live()


class _Program:
    """A program for terminate_in_order: ends on SIGTERM unless it ignores it (as
    kube-apiserver 1.20 seems to while a client holds a watch), always on SIGKILL."""

    def __init__(self, name: str, ignores_term: bool = False):
        self.name, self.ignores_term, self.running = name, ignores_term, True


def test_terminate_in_order_signals_the_next_only_once_the_one_before_is_gone():
    """etcd is signalled after the kube-apiserver that stores in it is gone: signalled at
    once, etcd ended first and the apiserver's shutdown waited on it until SIGKILL (every
    `lab down` took the supervisor's whole 5 s). One that ignores SIGTERM is SIGKILLed after
    its grace, and the rest go on."""
    import signal
    sent = []

    def send(p, sig):
        sent.append((p.name, sig))
        if sig == signal.SIGKILL or not p.ignores_term:
            p.running = False
    progs = [_Program("kube-scheduler"), _Program("kube-apiserver", ignores_term=True),
             _Program("etcd")]
    detached.terminate_in_order(progs, lambda p: p.running, send, timeout=10, grace=0.05)
    assert sent == [("kube-scheduler", signal.SIGTERM), ("kube-apiserver", signal.SIGTERM),
                    ("kube-apiserver", signal.SIGKILL), ("etcd", signal.SIGTERM)]
    assert not any(p.running for p in progs)


def test_a_start_time_is_the_kernels_tick_count_whatever_the_program_is_called(tmp_path):
    """process_start_time() is /proc/<pid>/stat's `starttime` (ticks after boot: the wall
    clock, which moves psutil's create_time with /proc/stat's btime, plays no part), read past
    a command name holding ") " and spaces; a zombie has none."""
    odd = tmp_path / "a) b (c"
    odd.symlink_to(shutil.which("sleep"))
    proc = subprocess.Popen([str(odd), "300"])
    try:
        assert psutil.Process(proc.pid).name() == "a) b (c"
        ticks = int(process_start_time(proc.pid))
        since_boot = psutil.Process(proc.pid).create_time() - psutil.boot_time()
        assert abs(ticks / os.sysconf("SC_CLK_TCK") - since_boot) < 2, (ticks, since_boot)
        assert process_start_time(proc.pid) == str(ticks)
    finally:
        proc.kill()
    wait_until(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE, 10, "a zombie")
    assert process_start_time(proc.pid) is None
    proc.wait()
