"""fixtures/endless/stop.py, the signal handlers' decisions, called as a signal would call
them (on objects built off the main thread, so this process's own handlers stay untouched).

Workers (WorkerSignals): which stop signal makes one abort on its own. A signal to the
process group reaches the controller and every worker; the controller takes the first
SIGTERM/SIGHUP again within REPEAT_S as the same request (coreutils timeout sends it twice),
so a worker must not cut its iteration on that repeat: it waits for the controller's abort
(the stop file says 2, then a SIGINT). A Ctrl-C, or a signal of another kind than the first,
is a second request wherever it lands.

Controller (Stopper): Python runs a handler between any two bytecodes of the main thread,
also inside the previous signal's handler; a handler that waits for a lock the interrupted
code holds waits for ever.
"""
from __future__ import annotations

import contextlib
import inspect
import queue
import signal
import sys
import threading

import pytest

from fixtures.endless import stop
from fixtures.endless.stop import STOP_ABORT, STOP_GRACEFUL, WorkerSignals, write_atomic

TERM, HUP, INT = signal.SIGTERM, signal.SIGHUP, signal.SIGINT


@pytest.fixture
def worker(tmp_path, monkeypatch):
    monkeypatch.setattr(stop, "_ignore_for_good", lambda: None)  # no SIG_IGN at our exit
    made = []
    thread = threading.Thread(target=lambda: made.append(WorkerSignals(tmp_path)))
    thread.start()
    thread.join()
    return made[0]


def controller_level(worker: WorkerSignals, level: int) -> None:
    write_atomic(worker.shared / "stop", str(level))


@pytest.mark.parametrize("sig", [TERM, HUP], ids=["TERM", "HUP"])
def test_the_first_signal_again_waits_for_the_controllers_abort(worker, sig):
    worker._on_signal(sig, None)
    controller_level(worker, STOP_GRACEFUL)
    worker._on_signal(sig, None)  # the controller may take it as the same request
    assert (worker.stopping, worker.aborted, worker.level()) == (True, False, STOP_GRACEFUL)
    controller_level(worker, STOP_ABORT)  # it took it as a second one, and passes it on
    worker.phase.in_item = True
    with pytest.raises(KeyboardInterrupt):
        worker._on_signal(INT, None)
    assert worker.aborted and worker.level() == STOP_ABORT


@pytest.mark.parametrize("first,second", [(INT, INT), (TERM, INT), (HUP, TERM), (INT, HUP),
                                          (TERM, HUP)],
                         ids=["INT-INT", "TERM-INT", "HUP-TERM", "INT-HUP", "TERM-HUP"])
def test_a_ctrl_c_or_another_kind_aborts_at_once(worker, first, second):
    worker._on_signal(first, None)
    assert worker.stopping and not worker.aborted
    worker.phase.in_item = True  # the running iteration is cut at once
    with pytest.raises(KeyboardInterrupt):
        worker._on_signal(second, None)
    assert worker.aborted
    worker._on_signal(INT, None)  # a third changes nothing


def test_any_signal_aborts_once_the_controller_said_abort(worker):
    """A signal to the controller alone: the worker learns of the abort from the stop file
    and the controller's SIGINT, even if it never saw the first signal."""
    controller_level(worker, STOP_ABORT)
    worker._on_signal(INT, None)  # not in an iteration: marks the abort, raises nothing
    assert worker.aborted and worker.level() == STOP_ABORT


# --------------------------------------------------------------------------- the controller

@pytest.fixture
def stopper(tmp_path, monkeypatch):
    monkeypatch.setattr(stop, "_ignore_for_good", lambda: None)
    (tmp_path / "pids").mkdir()
    lines = []
    made = stop.Stopper(tmp_path, lambda level, reason: lines.append((level, reason)),
                        raise_in_item=False)
    made.lines = lines
    yield made
    made.close()


def _returns(fn, timeout: float = 10.0) -> bool:
    """fn() run in a thread of its own (the role of the interrupted main thread): whether it
    returned within `timeout` seconds, rather than waiting on a lock for ever."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def test_a_signal_landing_inside_a_stop_request_does_not_hang(stopper):
    """Python runs a second signal's handler inside the first's, e.g. while request() holds
    its lock: the second is still taken (no deadlock)."""
    def first_interrupted_by_second():
        stopper._on_signal(TERM, None)
        with stopper._lock:  # the first signal's request() of this thread, interrupted
            stopper._on_signal(INT, None)
    assert _returns(first_interrupted_by_second), "the second signal's handler hung"
    assert stopper.level == STOP_ABORT
    assert [level for level, _ in stopper.lines] == [STOP_GRACEFUL, STOP_ABORT]


def test_a_signal_landing_while_xdist_holds_its_event_queue_does_not_hang(stopper):
    """The controller's main thread holds the mutex of xdist's event queue (DSession.queue,
    a queue.Queue) between taking an event and returning it; a stop signal landing there
    posts its wake-up without waiting for that mutex, which its own thread holds."""
    events = queue.Queue()
    stopper.on_request(lambda: events.put(("vancouver_wake", {})))
    with events.mutex:  # inside Queue.get of the interrupted thread
        assert _returns(lambda: stopper._on_signal(TERM, None)), "the handler hung"
    assert events.get(timeout=10) == ("vancouver_wake", {})  # posted once the mutex is free


class _StderrMidWrite:
    """sys.stderr as a signal handler finds it when the main thread was inside its own write:
    io refuses the reentrant call (the message is CPython's, Modules/_io/bufferedio.c)."""

    def write(self, text):
        raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")

    def flush(self):
        raise AssertionError("not reached")

    def fileno(self):
        return 2


def test_a_stop_line_written_inside_the_main_threads_stderr_write_still_arrives(monkeypatch,
                                                                                 capfd):
    monkeypatch.setattr("sys.stderr", _StderrMidWrite())
    stop.write_line("[vancouver] SIGTERM: stopping")      # neither raises nor is lost
    monkeypatch.undo()
    assert capfd.readouterr().err == "\n[vancouver] SIGTERM: stopping\n"



@contextlib.contextmanager
def landing_before(code: str, handler):
    """Calls handler() once, as CPython calls a signal handler between two bytecodes of the
    main thread, just before the line of stop.py that holds `code` runs (sys.settrace in
    this thread: the lines a monkeypatch cannot reach)."""
    lines = inspect.getsource(stop).splitlines()
    target = next(n for n, text in enumerate(lines, 1) if code in text)
    landed = []

    def line(frame, event, arg):
        if event == "line" and frame.f_lineno == target and not landed:
            landed.append(True)
            handler()
        return line

    def call(frame, event, arg):
        return line if frame.f_code.co_filename == stop.__file__ else None
    sys.settrace(call)
    try:
        yield landed
    finally:
        sys.settrace(None)


def test_a_second_signal_at_the_exact_start_of_the_first_request_aborts(stopper):
    """The second Ctrl-C's handler runs after the first's request() read the level and
    before it raised it: it is still the second signal (an abort), and each stop line is
    printed once. Before, it was taken for the first: the abort was lost."""
    with landing_before("self.level, self.reason = level, reason",
                        lambda: stopper._on_signal(INT, None)) as landed:
        stopper._on_signal(INT, None)
    assert landed and stopper.level == STOP_ABORT
    assert [level for level, _ in stopper.lines] == [STOP_GRACEFUL, STOP_ABORT]


def test_a_worker_takes_a_signal_inside_its_first_handler_as_the_second(worker):
    """The same for a worker: a Ctrl-C landing after the first signal's handler found no
    stop yet, before it noted one, is the second request and cuts the running iteration."""
    worker.phase.in_item = True
    with landing_before("self.stopping, self._first = True, signum",
                        lambda: worker._on_signal(INT, None)) as landed:
        with pytest.raises(KeyboardInterrupt):
            worker._on_signal(TERM, None)
    assert landed and worker.stopping and worker.aborted
