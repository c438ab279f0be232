"""fixtures/endless/stop.py: how an endless run stops. Ctrl-C, SIGTERM and SIGHUP (timeout,
CI runners, service managers) behave like the first Ctrl-C: the running iterations finish,
everything is torn down, status 0, the proof is written. A second signal of any kind aborts,
cuts the running iterations (recorded as "aborted") and still tears everything down, status 2
and no traceback, wherever it lands (worker start-up, pytest_unconfigure, after --duration).
Issue 8 item 1: SIGTERM used to kill the run without a report.

Each test writes a small scenario suite into a tmp dir and runs pytest on it in a subprocess
(tests/support/endless_suite.py), sending signals at points it waits for.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from fixtures.endless.stop import REPEAT_S
from tests.support.endless_suite import (CONFTEST, Watched, assert_balanced,
                                         assert_no_self_overlap, assert_proof, events, finish,
                                         make_suite, results, runs_by_item, start, wait_for)
from tests.support.inner_run import env

# Inner runs stopped by signals at wall-clock points: run alone (make test).
pytestmark = pytest.mark.serial


# --------------------------------------------------------------------------- Ctrl-C

def test_sigint_to_controller_stops_gracefully(tmp_path):
    make_suite(tmp_path, {"a": dict(n=4, sleep=1.0)})
    proc = start(tmp_path, "-n", "2", "--count=0")
    try:
        wait_for(proc, lambda: sum(e[0] == "start" for e in events(tmp_path)) >= 3, 20, "tests to run")
        proc.send_signal(signal.SIGINT)  # the controller only, as `kill -INT <pid>`
        out = finish(proc, 30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    assert "Ctrl-C: stopping: waiting for" in out
    evts = events(tmp_path)
    assert_balanced(evts)  # the running iterations finished, every fixture was torn down
    assert_no_self_overlap(runs_by_item(evts))
    assert list((tmp_path / "reports").glob("report-*-0001.html"))  # endless: rotated parts


UNCONFIGURE_HOLD = """

import gc
def pytest_unconfigure(config):
    # The controller reports reaching pytest_unconfigure and stays there (collecting garbage,
    # as the unraisable-exception plugin does) until the test has sent its signal.
    if hasattr(config, "workerinput"):
        return
    event("unconfigure", "controller")
    go = os.path.join(os.path.dirname(__file__), "go")
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        gc.collect()
"""


def _started(tmp: Path, n: int):
    return lambda: sum(e[0] == "start" for e in events(tmp)) >= n


def _in_unconfigure(tmp: Path):
    return lambda: any(e[0] == "unconfigure" for e in events(tmp))


def assert_interrupted_cleanly(proc, out: str, tmp: Path) -> None:
    assert proc.returncode == 2, out[-3000:]  # interrupted, never -2
    assert "Traceback" not in out, out[-3000:]
    evts = events(tmp)
    teardowns = Counter((w, what) for kind, what, w, _ in evts if kind == "teardown")
    setups = Counter((w, what) for kind, what, w, _ in evts if kind == "setup")
    assert setups == teardowns, (setups, teardowns)
    assert list((tmp / "reports").glob("report-*-0001.html"))  # endless: rotated parts


def test_sigint_to_process_group_thrice_still_tears_down_and_reports(tmp_path):
    """Terminal Ctrl-C three times, each sent once the run has visibly taken the previous
    one: the first stops gracefully, the second aborts, the third lands in teardown (P11).
    Both workers are inside long iterations, so the second finds the run still going."""
    _long_suite(tmp_path)
    (tmp_path / "slow").write_text("")
    with Watched(start(tmp_path, "-n", "2", "--count=0")) as run:
        run.wait_for(lambda: _long_running(tmp_path) == 2, "two long iterations running")
        os.killpg(run.proc.pid, signal.SIGINT)   # terminal Ctrl-C: controller and workers
        run.wait_for(run.saw("Ctrl-C: stopping"), "the graceful stop")
        os.killpg(run.proc.pid, signal.SIGINT)   # the operator's second Ctrl-C
        run.wait_for(run.saw("second signal (Ctrl-C): aborting"), "the abort")
        os.killpg(run.proc.pid, signal.SIGINT)   # and a third, impatient one during teardown
        out = run.finish(30)
    assert_interrupted_cleanly(run.proc, out, tmp_path)


@pytest.mark.parametrize("before", [1, 2])
def test_sigint_landing_in_unconfigure_is_no_traceback(tmp_path, before):
    """After the first Ctrl-C, one more landing in pytest_unconfigure (where the original
    failure met gc.collect of the unraisable-exception plugin) ends the run with status 2 and
    no traceback, whether the run was stopping (before=1) or already aborted (before=2)."""
    make_suite(tmp_path, {"a": dict(n=2, sleep=0.2)})
    (tmp_path / "conftest.py").write_text(CONFTEST + UNCONFIGURE_HOLD)
    with Watched(start(tmp_path, "-n", "2", "--count=0")) as run:
        run.wait_for(_started(tmp_path, 2), "tests to run")
        os.killpg(run.proc.pid, signal.SIGINT)
        run.wait_for(run.saw("Ctrl-C: stopping"), "the graceful stop")
        if before == 2:
            os.killpg(run.proc.pid, signal.SIGINT)
            run.wait_for(run.saw("second signal (Ctrl-C): aborting"), "the abort")
        run.wait_for(_in_unconfigure(tmp_path), "pytest_unconfigure")
        os.killpg(run.proc.pid, signal.SIGINT)
        run.wait_for(lambda: run.out.count("[vancouver]") == 2 or before == 2,
                     "the late Ctrl-C to be taken")
        (tmp_path / "go").write_text("")
        out = run.finish(30)
    assert_interrupted_cleanly(run.proc, out, tmp_path)


def test_signal_after_the_duration_deadline_aborts_and_says_so(tmp_path):
    """Once --duration has asked the run to end, the operator's first signal is already the
    second stop request: it aborts, and the line says why rather than "second signal"."""
    # One worker, so the duration's clock (from the first worker's collection) and the first
    # iteration start together: with two, xdist schedules nothing until both have collected,
    # and a loaded machine could let the deadline pass with no iteration running (the run then
    # ends by itself before the signal). 3 s of duration, 10 s iterations: one is running.
    make_suite(tmp_path, {"a": dict(n=2, sleep=10.0)})
    with Watched(start(tmp_path, "-n", "1", "--count=0", "--duration", "3s")) as run:
        run.wait_for(run.saw("duration reached: stopping"), "the deadline")
        os.killpg(run.proc.pid, signal.SIGTERM)
        run.wait_for(run.saw("signal after the duration (SIGTERM): aborting"), "the abort")
        out = run.finish(30)
    assert "second signal (SIGTERM)" not in out, out[-3000:]
    assert_interrupted_cleanly(run.proc, out, tmp_path)
    assert "aborted: signal after the duration (SIGTERM)" in (tmp_path / "reports" /
                                                             "index.html").read_text()


# --------------------------------------------------------------------------- any stop signal

SIGNALS = {"TERM": signal.SIGTERM, "HUP": signal.SIGHUP, "INT": signal.SIGINT}


SHOWN = {"TERM": "SIGTERM", "HUP": "SIGHUP", "INT": "Ctrl-C"}


@pytest.mark.parametrize("sig", list(SIGNALS))
def test_first_signal_to_process_group_stops_gracefully(tmp_path, sig):
    """kill -<sig> to the process group after 4 results (as `timeout`, a CI runner or a
    terminal does): the running iterations finish, everything is torn down, status 0, and
    the proof is written."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.5), "b": dict(n=1, sleep=0.5)})
    with Watched(start(tmp_path, "-n", "2", "--count=0", "--timeout=120")) as run:
        run.wait_for(lambda: len(results(tmp_path)) >= 4, "4 results")
        os.killpg(run.proc.pid, SIGNALS[sig])
        out = run.finish(40)
    assert run.proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    # One line at once, saying what happens and how to abort.
    assert re.search(rf"\[vancouver\] {SHOWN[sig]}: stopping: waiting for [0-2] running "
                     r"iterations? to finish \(at most \d+s; iterations waiting for a QoS window end "
                     r"now\); "
                     + ("press Ctrl-C again to abort" if SHOWN[sig] == "Ctrl-C" else
                        r"press Ctrl-C \(or send a second signal\) to abort"),
                     out), out[-3000:]
    counts = assert_proof(tmp_path, f"stopped by {SHOWN[sig]}")
    assert set(counts) == {"passed"}, counts
    who = "the user (Ctrl-C)" if sig == "INT" else SHOWN[sig]
    assert re.fullmatch(rf"\[vancouver\] run stopped by {re.escape(who)}: running iterations "
                        r"finished, torn down; \d+ resources? deleted since the stop",
                        last_line(out)), out[-3000:]


@pytest.mark.parametrize("first,second", [("TERM", "INT"), ("HUP", "TERM"), ("INT", "HUP"),
                                          ("TERM", "TERM")])
def test_second_signal_aborts_cuts_and_still_tears_down(tmp_path, first, second):
    """A second signal, of any kind, while both workers are inside long iterations: they are
    cut, torn down and recorded as "aborted" with their duration; status 2, no traceback,
    and a third signal during teardown changes nothing."""
    _long_suite(tmp_path)
    with Watched(start(tmp_path, "-n", "2", "--count=0")) as run:
        run.wait_for(lambda: len(results(tmp_path)) >= 4, "4 results")
        (tmp_path / "slow").write_text("")
        run.wait_for(lambda: _long_running(tmp_path) == 2, "two long iterations running")
        os.killpg(run.proc.pid, SIGNALS[first])
        run.wait_for(run.saw(f"{SHOWN[first]}: stopping: waiting for 2 running iterations"),
                     "the graceful stop")
        if first == second != "INT":
            # A repeat within REPEAT_S is the same request (coreutils timeout signals the
            # command and its group): the test's second signal is a later, separate one.
            seen = time.monotonic()
            run.wait_for(lambda: time.monotonic() - seen > REPEAT_S, "a separate signal")
        os.killpg(run.proc.pid, SIGNALS[second])
        run.wait_for(run.saw(f"second signal ({SHOWN[second]}): aborting"), "the abort")
        os.killpg(run.proc.pid, signal.SIGINT)  # a third, impatient one
        out = run.finish(60)
    assert run.proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    counts = assert_proof(tmp_path, "aborted")
    assert counts["aborted"] == 2, counts
    cut = [r for r in results(tmp_path) if r["outcome"] == "aborted"]
    assert all(r["duration"] > 0 and r["worker"] in ("gw0", "gw1") for r in cut), cut
    assert re.search(r"ABORTED round \d+ scenarios/test_[ab]\.py", out), out[-3000:]
    assert_aborted_last_line(out, SHOWN[second], 2)


def last_line(out: str) -> str:
    return [ln for ln in out.splitlines() if ln.strip()][-1]


def assert_aborted_last_line(out: str, second: str, cut: int) -> None:
    """The run ends on our line, not on pytest's summary of xdist's Interrupted."""
    assert "xdist.dsession.Interrupted" not in out, out[-3000:]
    who = "the user (second Ctrl-C)" if second == "Ctrl-C" else \
        f"{second} (a second stop signal)"
    assert re.search(rf"!+ Interrupted: run aborted by {re.escape(who)} !+", out), out[-3000:]
    assert re.fullmatch(rf"\[vancouver\] run aborted by {re.escape(who)}: {cut} running "
                        rf"iterations? cut \(recorded as aborted\), torn down; \d+ "
                        r"resources? deleted since the stop", last_line(out)), out[-3000:]


@pytest.mark.parametrize("one_process,sig", [("-p no:xdist", "INT"), ("-n 0", "TERM")])
def test_an_abort_without_xdist_ends_on_our_line(tmp_path, one_process, sig):
    """The only process (no xdist, or -n 0): a second signal cuts the running iteration;
    status 2, no traceback, and the last line is ours."""
    _long_suite(tmp_path)
    with Watched(start(tmp_path, *one_process.split(), "--count=0")) as run:
        run.wait_for(lambda: len(results(tmp_path)) >= 2, "2 results")
        (tmp_path / "slow").write_text("")
        run.wait_for(lambda: _long_running(tmp_path) == 1, "a long iteration running")
        os.killpg(run.proc.pid, SIGNALS[sig])
        run.wait_for(run.saw(f"{SHOWN[sig]}: stopping"), "the graceful stop")
        seen = time.monotonic()   # a separate request, not the same one sent twice
        run.wait_for(lambda: time.monotonic() - seen > REPEAT_S, "a separate signal")
        os.killpg(run.proc.pid, SIGNALS[sig])
        run.wait_for(run.saw(f"second signal ({SHOWN[sig]}): aborting"), "the abort")
        out = run.finish(60)
    assert run.proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert assert_proof(tmp_path, "aborted")["aborted"] == 1
    assert_aborted_last_line(out, SHOWN[sig], 1)


# An iteration whose body finds the file "slow" is long, and says so ("long" in events.log)
# before it sleeps: the tests count only those, so a short one that started as the file was
# being written (its body ran before the file existed) never passes for long. Long means
# far longer than the few steps a test takes between seeing it and its last signal.
SCENARIO_SLOW_AFTER = """\
import os, time

def test_step(func, note, request):
    if os.path.exists(os.path.join(os.path.dirname(__file__), os.pardir, "slow")):
        note("long", request.node.nodeid)
        time.sleep(30)
    else:
        time.sleep(0.3)
"""


def _long_suite(tmp: Path) -> None:
    """Two scenarios a and b (one per worker: an item never runs on two at once), each
    short (0.3 s) until the file "slow" exists, long after."""
    make_suite(tmp, {"a": dict(n=1, sleep=0.3), "b": dict(n=1, sleep=0.3)})
    (tmp / "scenarios" / "test_a.py").write_text(SCENARIO_SLOW_AFTER)
    (tmp / "scenarios" / "test_b.py").write_text(SCENARIO_SLOW_AFTER)


def _long_running(tmp: Path) -> int:
    """Workers inside an iteration that said it is long (and has not ended)."""
    long_ = {}
    for kind, what, worker, ts in events(tmp):
        if kind == "start":
            long_[worker] = False
        elif kind == "long":
            long_[worker] = True
        elif kind == "end":
            long_.pop(worker, None)
    return sum(long_.values())


STARTUP_HOLD = """

# Each xdist worker, while importing this conftest (before any plugin of ours is configured
# in it), says so and waits for the test's go.
if os.environ.get("PYTEST_XDIST_WORKER"):
    here = os.path.dirname(__file__)
    open(os.path.join(here, "starting-" + os.environ["PYTEST_XDIST_WORKER"]), "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(here, "go")) and time.monotonic() < deadline:
        time.sleep(0.02)
"""


def test_signal_during_worker_start_up_is_a_graceful_stop(tmp_path):
    """SIGTERM to the group while the workers are still starting (the controller spawns them
    with the stop signals held): no worker dies of it, none is replaced, status 0."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.2), "b": dict(n=1, sleep=0.2)})
    (tmp_path / "conftest.py").write_text(CONFTEST + STARTUP_HOLD)
    with Watched(start(tmp_path, "-n", "2", "--count=0", "--timeout=120")) as run:
        run.wait_for(lambda: len(list(tmp_path.glob("starting-gw*"))) == 2, "workers starting")
        os.killpg(run.proc.pid, signal.SIGTERM)
        run.wait_for(run.saw("SIGTERM: stopping"), "the stop line")
        (tmp_path / "go").write_text("")
        out = run.finish(60)
    assert run.proc.returncode == 0, out[-3000:]
    for bad in ("Traceback", "INTERNALERROR", "node down", "replacing crashed worker"):
        assert bad not in out, out[-3000:]
    assert_proof(tmp_path, "stopped by SIGTERM")


def test_sigterm_to_controller_alone_stops_gracefully(tmp_path):
    """A service manager that signals only the main process (start-stop-daemon --stop,
    systemd KillMode=mixed): the workers learn of the stop from the controller."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.5), "b": dict(n=1, sleep=0.5)})
    with Watched(start(tmp_path, "-n", "2", "--count=0")) as run:
        run.wait_for(lambda: len(results(tmp_path)) >= 4, "4 results")
        run.proc.send_signal(signal.SIGTERM)
        out = run.finish(40)
    assert run.proc.returncode == 0, out[-3000:]
    assert_proof(tmp_path, "stopped by SIGTERM")


def test_timeout_command_stops_gracefully(tmp_path):
    """`timeout 30 pytest -n 2 --count=0`: coreutils timeout sends SIGTERM to the run's
    process group; the proof is complete and timeout reports its own 124."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.5), "b": dict(n=1, sleep=0.5)})
    cmd = ["timeout", "30", sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
           "--demo-config", "demo.yaml", "--demo-profile", "ci", "-n", "2", "--count=0",
           "--timeout=120"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env(), capture_output=True, text=True,
                          timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 124, out[-3000:]  # timeout's "timed out"; pytest itself: 0
    assert "SIGTERM: stopping" in out and "Traceback" not in out, out[-3000:]
    assert "aborting" not in out, out[-3000:]  # timeout's two SIGTERMs are one request
    assert_proof(tmp_path, "stopped by SIGTERM")


def test_service_manager_stop_writes_the_proof(tmp_path):
    """Debian's start-stop-daemon runs the demo as a daemon and stops it the way init
    scripts do (`--stop --retry TERM/60/KILL/5`: SIGTERM to the main process, SIGKILL only
    if it is still there after 60 s): the run stops gracefully and the proof is complete."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.5), "b": dict(n=1, sleep=0.5)})
    pidfile, log = tmp_path / "demo.pid", tmp_path / "demo.log"
    subprocess.run(["start-stop-daemon", "--start", "--background", "--make-pidfile",
                    "--pidfile", str(pidfile), "--chdir", str(tmp_path), "--output", str(log),
                    "--exec", sys.executable, "--", "-m", "pytest", "-p", "no:cacheprovider",
                    "--demo-config", "demo.yaml", "--demo-profile", "ci", "-n", "2",
                    "--count=0", "--timeout=120"], env=env(), check=True, timeout=30)
    pid = int(pidfile.read_text())
    try:
        deadline = time.monotonic() + 60
        while len(results(tmp_path)) < 4:
            assert os.path.exists(f"/proc/{pid}"), log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no 4 results in 60 s"
            time.sleep(0.05)
        stop = subprocess.run(["start-stop-daemon", "--stop", "--pidfile", str(pidfile),
                               "--retry", "TERM/60/KILL/5", "--remove-pidfile"],
                              capture_output=True, text=True, timeout=90)
    finally:
        if os.path.exists(f"/proc/{pid}"):
            os.killpg(pid, signal.SIGKILL)
    assert stop.returncode == 0, stop.stderr
    out = log.read_text()
    assert "SIGTERM: stopping" in out and "Traceback" not in out, out[-3000:]
    assert re.search(r"=+ \d+ passed in ", out), out[-3000:]
    assert_proof(tmp_path, "stopped by SIGTERM")
