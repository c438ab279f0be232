"""A stop by a signal ends waits for other workers' QoS windows and leases; --duration lets
them finish (fixtures/endless/stop.py is_signal_stop, fixtures/endless/plugin.py waits_end).

Found by a booth trial: after one Ctrl-C the line said "at most 250s, plus any wait for a QoS
window" and the run took 10 min 40 s to stop, its iterations queued behind others' windows
(a service manager's TimeoutStopSec would have killed it and leaked what they made). Inner
runs (tests/support/endless_suite.py): one worker holds a tenant lease until released, the
other waits for a QoS window in the same tenant.
"""
from __future__ import annotations

import json
import os
import re
import signal
import threading

import pytest

from fixtures.endless.stop import (DURATION_REASON, STOP_ABORT, STOP_GRACEFUL, WorkerSignals,
                                   is_signal_stop, stop_line, write_atomic)
from fixtures.window_wait import peek_state
from tests.support.endless_suite import Watched, make_suite, results, start

pytestmark = pytest.mark.serial

SCENARIO = '''\
import json, os, time
from pathlib import Path
from fixtures import headroom
from fixtures.endless import waits_end, get_plugin

HERE = Path(__file__).resolve().parent.parent
TENANT = "/root/Vancouver-OP"

def windows(config):
    def stopping():
        ends = waits_end(config)
        with open(HERE / "checks", "a") as f:
            f.write(json.dumps([get_plugin(config).stop_state()[0], ends]) + "\\n")
        return ends
    return headroom.Windows("https://stop-ends-waits", directory=HERE, stopping=stopping)
'''
HOLD = SCENARIO + '''
def test_hold(request):
    if (HERE / "held").exists():
        return   # one hold per run
    with windows(request.config).tenant_io(TENANT):
        (HERE / "held").write_text("")
        deadline = time.monotonic() + 60
        while not (HERE / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
'''
WAIT = SCENARIO + '''
def test_wait(request):
    deadline = time.monotonic() + 60
    while not (HERE / "held").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if (HERE / "waited").exists():
        return
    (HERE / "waited").write_text("")
    with windows(request.config).qos(100, tenant=TENANT):
        pass
'''


def _suite(tmp):
    make_suite(tmp, {"hold": {"n": 1, "sleep": 0}, "wait": {"n": 1, "sleep": 0}})
    (tmp / "scenarios" / "test_hold.py").write_text(HOLD)
    (tmp / "scenarios" / "test_wait.py").write_text(WAIT)


def _waiting(tmp) -> bool:
    ledger = next(tmp.glob("*ledger*"), None)
    return ledger is not None and bool(peek_state(ledger).get("waiting"))


def _checked_after_stop(tmp):
    """Whether the waiter asked `stopping()` once the stop reached it; its answer."""
    try:
        lines = (tmp / "checks").read_text().splitlines()
    except OSError:
        return None
    after = [json.loads(x)[1] for x in lines if json.loads(x)[0] >= STOP_GRACEFUL]
    return after[0] if after else None


def _outcomes(tmp) -> dict[str, set]:
    seen: dict[str, set] = {}
    for r in results(tmp):
        seen.setdefault(r["nodeid"].split("::")[-1].split("[")[0], set()).add(r["outcome"])
    return seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_signal_stop_ends_a_wait_at_once(tmp_path, sig):
    _suite(tmp_path)
    with Watched(start(tmp_path, "-n", "2", "--count=0", "--timeout=120", "-rs")) as run:
        run.wait_for(lambda: _waiting(tmp_path), "a worker waiting for the QoS window")
        os.killpg(run.proc.pid, sig)
        # The waiter gives up while the holder still holds: its wait ended, not the hold.
        run.wait_for(lambda: "test_wait" in _outcomes(tmp_path), "the wait to end")
        assert not (tmp_path / "release").exists()
        (tmp_path / "release").write_text("")
        out = run.finish(60)
    assert run.proc.returncode == 0, out[-3000:]
    assert "iterations waiting for a QoS window end now" in out, out[-3000:]
    outcomes = _outcomes(tmp_path)
    assert outcomes["test_wait"] == {"skipped"} and "passed" in outcomes["test_hold"], outcomes
    assert re.search(r"SKIPPED .*stop requested while waiting \d+s for the QoS window", out), \
        out[-3000:]


def test_the_duration_deadline_lets_a_wait_finish(tmp_path):
    _suite(tmp_path)
    with Watched(start(tmp_path, "-n", "2", "--count=0", "--timeout=120",
                       "--duration", "4s")) as run:
        run.wait_for(lambda: _waiting(tmp_path), "a worker waiting for the QoS window")
        run.wait_for(run.saw("duration reached: stopping"), "the deadline")
        run.wait_for(lambda: _checked_after_stop(tmp_path) is not None,
                     "the waiter to see the stop")
        assert _checked_after_stop(tmp_path) is False   # it waits on
        (tmp_path / "release").write_text("")
        out = run.finish(60)
    assert run.proc.returncode == 0, out[-3000:]
    assert "plus any wait for a QoS window" in out, out[-3000:]
    assert _outcomes(tmp_path)["test_wait"] == {"passed"}


def test_which_stops_end_waits():
    assert not is_signal_stop(0, "")
    assert not is_signal_stop(STOP_GRACEFUL, DURATION_REASON)
    assert is_signal_stop(STOP_GRACEFUL, "Ctrl-C") and is_signal_stop(STOP_GRACEFUL, "SIGTERM")
    assert is_signal_stop(STOP_ABORT, "signal after the duration (SIGTERM)")
    assert "end now" in stop_line(STOP_GRACEFUL, "SIGTERM", 2, 250.0)
    assert "plus any wait" in stop_line(STOP_GRACEFUL, DURATION_REASON, 2, 250.0)


def test_a_worker_knows_why_the_controller_stopped(tmp_path, monkeypatch):
    """The stop file carries the reason: a signal to the controller alone, or the deadline,
    reaches a worker that saw no signal itself."""
    made = []
    thread = threading.Thread(target=lambda: made.append(WorkerSignals(tmp_path)))
    thread.start()
    thread.join()
    worker = made[0]
    assert worker.state() == (0, "")
    write_atomic(tmp_path / "stop", f"{STOP_GRACEFUL}\n{DURATION_REASON}")
    assert worker.state() == (STOP_GRACEFUL, DURATION_REASON)
    write_atomic(tmp_path / "stop", f"{STOP_GRACEFUL}\nSIGTERM")
    assert worker.state() == (STOP_GRACEFUL, "SIGTERM")
