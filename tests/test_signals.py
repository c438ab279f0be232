"""clients/signals.py: what a signal handler may do, checked by calling handlers the way
CPython does (inside the code they interrupt, inside each other), off the main thread so this
process's own handlers stay untouched."""
from __future__ import annotations

import threading

import pytest

from clients.signals import OneAtATime, Relay, StopFlag


def _returns(fn, timeout: float = 10.0) -> bool:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


def test_a_handler_landing_inside_another_runs_after_it():
    seen = []

    def body(signum):
        seen.append(("start", signum))
        if signum == 1:
            handler(2, None)   # the second signal, between two bytecodes of the first body
        seen.append(("end", signum))
    handler = OneAtATime(body)
    handler(1, None)
    assert seen == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]


def test_a_handler_landing_after_a_body_runs_at_once():
    seen = []
    handler = OneAtATime(seen.append)
    handler(1, None)
    handler(2, None)
    assert seen == [1, 2]


def test_a_body_that_raises_drops_what_landed_behind_it():
    seen = []

    def body(signum):
        seen.append(signum)
        if signum == 1:
            handler(2, None)
            raise KeyboardInterrupt   # the abort: later stop signals are ignored
    handler = OneAtATime(body)
    with pytest.raises(KeyboardInterrupt):
        handler(1, None)
    handler(3, None)   # the handler is free again
    assert seen == [1, 3]


def test_a_stop_request_landing_while_the_event_lock_is_held_does_not_hang():
    """threading.Event.wait holds the Event's plain Lock around its check: a handler that
    set the Event itself, landing there, would wait for its own thread for ever."""
    flag = StopFlag()
    with flag._event._cond:   # the interrupted main thread, inside Event.wait
        assert _returns(flag.request), "the handler hung on the Event's lock"
    assert flag.wait(10)


def test_relay_jobs_run_in_order_and_an_error_does_not_stop_them():
    errors, seen, done = [], [], threading.Event()
    relay = Relay(on_error=errors.append)
    relay.put(lambda: seen.append(1))
    relay.put(lambda: 1 / 0)
    relay.put(lambda: seen.append(2))
    relay.put(done.set)
    assert done.wait(10)
    relay.stop()
    relay.put(lambda: seen.append(3))   # after stop: at once, in the caller
    assert seen == [1, 2, 3] and [type(e) for e in errors] == [ZeroDivisionError]
