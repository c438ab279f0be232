"""fixtures/headroom.py and fixtures/window_wait.py: a wait for another worker's window is off
pytest-timeout's clock, bounded, and ended by a stop request; the ledger survives signals.

Found by a booth run on a busy 2-core machine: 6 of 27 iterations failed with pytest-timeout's
`Timeout (>300.0s)` raised while they waited for other workers' QoS windows."""
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from fixtures import headroom, window_wait
from fixtures.waiters import timeout_suspended, wait_until

TENANT = "/root/Vancouver-OP"


@contextlib.contextmanager
def windows(**kw):
    """headroom.Windows on an endpoint of its own; its lock files are removed after."""
    w = headroom.Windows(f"https://test-{uuid.uuid4().hex}", **kw)
    try:
        yield w
    finally:
        for p in (w.turnstile, w.ledger):
            p.unlink(missing_ok=True)


def _waiting(w, kind: str = "qos") -> dict | None:
    """The waiting entry of `kind` in TENANT, or None."""
    with w._state() as state:
        return next((h for h in state["waiting"].values()
                     if h["kind"] == kind and h.get("tenant") == TENANT), None)


@contextlib.contextmanager
def lease_held_on_another_thread(w, until: threading.Event):
    """A lease of TENANT held by another thread (another owner) until `until` is set."""
    inside = threading.Event()

    def hold():
        with w.tenant_io(TENANT):
            inside.set()
            until.wait(60)
    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert inside.wait(10)
    try:
        yield
    finally:
        until.set()
        t.join(10)


class Alarm(Exception):
    pass


@contextlib.contextmanager
def short_timeout(seconds: float):
    """What pytest-timeout's `signal` method does: SIGALRM after `seconds` raises. The
    test's own pytest-timeout timer is put aside meanwhile and re-armed after."""
    def ring(signum, frame):
        raise Alarm(f"timed out after {seconds}s")
    with timeout_suspended():
        old = signal.signal(signal.SIGALRM, ring)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def test_a_wait_longer_than_the_timeout_does_not_time_the_iteration_out():
    """The check waits 1.5 s for a lease of its tenant under a 1 s timer: no alarm while it
    waits, and the timer runs again (with what was left) once it is in."""
    release = threading.Event()
    with windows() as w, lease_held_on_another_thread(w, release):
        def release_after_the_timeout():
            wait_until(lambda: _waiting(w), 10, "the check to wait", 0.01)
            t0 = time.monotonic()
            wait_until(lambda: time.monotonic() - t0 > 1.5, 10, "the timeout to pass", 0.05)
            release.set()
        threading.Thread(target=release_after_the_timeout, daemon=True).start()
        with short_timeout(1.0):
            with w.qos(100, tenant=TENANT) as adm:
                left = signal.getitimer(signal.ITIMER_REAL)[0]
    assert adm.waited_s > 1.5
    assert 0 < left <= 1.0


def test_the_inner_timeout_of_a_pytest_run_does_not_count_the_wait(tmp_path):
    """The same with pytest-timeout itself: an inner pytest with `--timeout 2`, whose
    iteration waits 3 s for another thread's lease, passes."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(f"""
        import threading, uuid
        from fixtures import headroom

        def test_waits():
            w = headroom.Windows(f"https://inner-{{uuid.uuid4().hex}}",
                                 directory={str(tmp_path)!r})
            held, release = threading.Event(), threading.Event()

            def hold():
                with w.tenant_io("/root/T"):
                    held.set()
                    release.wait(30)
            threading.Thread(target=hold, daemon=True).start()
            assert held.wait(10)
            threading.Timer(3.0, release.set).start()   # the holder's own work: 3 s
            with w.qos(100, tenant="/root/T") as adm:
                assert adm.waited_s > 2.5
    """))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "test_inner.py", "--timeout", "2", "-q",
         "-p", "no:randomly", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": root}, capture_output=True,
        text=True, timeout=120)
    assert inner.returncode == 0, inner.stdout[-3000:] + inner.stderr[-2000:]
    assert "1 passed" in inner.stdout


def test_a_stop_request_ends_a_wait_and_its_wait_is_reported():
    stop, release, seen = threading.Event(), threading.Event(), []
    with windows(stopping=stop.is_set, on_release=lambda *a: seen.append(a)) as w, \
            lease_held_on_another_thread(w, release):
        threading.Thread(target=lambda: wait_until(lambda: _waiting(w), 10, "a waiter", 0.01)
                         and stop.set(), daemon=True).start()
        with pytest.raises(pytest.skip.Exception, match="stop requested while waiting"):
            with w.qos(100, tenant=TENANT):
                pass
        assert _waiting(w) is None      # its place in the queue is gone
    assert [(k, t) for k, t, _, _ in seen if k == "qos"] == [("qos", TENANT)]
    waited, held = next((wt, h) for k, _, wt, h in seen if k == "qos")
    assert waited > 0 and held == 0


def test_a_stuck_holder_ends_the_wait_with_a_line_naming_it():
    release, seen = threading.Event(), []
    with windows(max_wait_s=0.3, on_release=lambda *a: seen.append(a)) as w, \
            lease_held_on_another_thread(w, release):
        with pytest.raises(window_wait.WaitTooLong) as err:
            with w.tenant_io("/root/other"), w.qos(100, tenant=TENANT):
                pass
    line = str(err.value)
    assert f"for the QoS window of {TENANT}: held by io of " in line
    assert "test_a_stuck_holder_ends_the_wait_with_a_line_naming_it" in line   # its scenario
    assert f"in {TENANT} for " in line and "waited " in line and "\n" not in line
    assert any(k == "qos" and waited >= 0.3 and held == 0 for k, _, waited, held in seen)


def test_a_lease_waiting_on_the_turnstile_is_bounded_too():
    """The saturation run waits on the turnstile's lock, not in the ledger: bounded all the
    same (a check inside holds the turnstile while it waits for its tenant's lease)."""
    release = threading.Event()
    with windows(max_wait_s=0.3) as w, lease_held_on_another_thread(w, release):
        with w.qos(100):            # a measuring check: the saturation run waits for it
            with pytest.raises(window_wait.WaitTooLong, match="saturation window"):
                with w.saturation():
                    pass


def _other_worker(w) -> dict:
    """A claim of another live worker in the ledger."""
    entry = {"pid": os.getpid(), "owner": "other:1", "demand": 100, "kind": "qos",
             "tenant": "/root/Vancouver-ON", "scenario": "test_tenancy[x]"}
    with w._state() as state:
        state["holders"]["other"] = entry
        state["waiting"].update({f"pad{i}": dict(entry, kind="io") for i in range(20)})
    return entry


def test_an_error_between_the_ledger_write_and_its_cut_leaves_a_valid_ledger(monkeypatch):
    with windows() as w:
        entry = _other_worker(w)
        long = w.ledger.stat().st_size

        def interrupted(fd, length):
            raise KeyboardInterrupt
        monkeypatch.setattr(window_wait.os, "ftruncate", interrupted)
        with pytest.raises(KeyboardInterrupt):
            with w._state() as state:
                state["waiting"].clear()                # a shorter document
        monkeypatch.undo()
        assert w.ledger.stat().st_size == long          # the old one's tail is still there
        with w._state() as state:
            assert state["holders"]["other"] == entry and state["waiting"] == {}
        assert w.ledger.stat().st_size < long


INTERRUPTS, INTERRUPTS_AT_LEAST, DEADLINE_S = 300, 20, 20.0


def test_signals_during_ledger_writes_never_lose_a_claim():
    """SIGALRM every 2 ms, its handler raising (once per update, as pytest-timeout's does),
    while this worker rewrites the ledger (a short and a long document in turn): after each
    interruption the other worker's claim is there and the ledger's lock is free.

    Bounded by INTERRUPTS and a deadline: the test owns SIGALRM meanwhile, so pytest-timeout's
    timer is suspended and re-armed after (timeout_suspended), and a loaded machine (a 0.3 ms
    timer once kept the update's /proc reads restarting for 8 minutes in a CI rehearsal)
    ends at the deadline with the interruptions it saw."""
    with windows() as w, timeout_suspended():
        entry = _other_worker(w)
        armed, interrupted = [False], [0]

        def ring(signum, frame):
            if armed[0]:
                armed[0] = False
                raise Alarm
        old = signal.signal(signal.SIGALRM, ring)
        signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
        deadline = time.monotonic() + DEADLINE_S
        try:
            while interrupted[0] < INTERRUPTS and time.monotonic() < deadline:
                try:
                    armed[0] = True
                    with w._state() as state:
                        if state["waiting"]:
                            state["waiting"].clear()
                        else:
                            state["waiting"].update(
                                {f"pad{i}": dict(entry, kind="io") for i in range(20)})
                    armed[0] = False
                except Alarm:
                    interrupted[0] += 1
                    state = window_wait.read_state(w.ledger.read_bytes())
                    assert state.get("holders", {}).get("other") == entry
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        print(f"{interrupted[0]} interruptions")
        assert interrupted[0] >= INTERRUPTS_AT_LEAST, interrupted[0]
        fd = os.open(w.ledger, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # no descriptor kept it
        finally:
            os.close(fd)
