"""What a Python signal handler may safely do, shared by the harness's stop handlers
(fixtures/endless/stop.py) and the lab's processes (lab/supervisor.py, the Kubernetes node).

CPython runs a handler in the main thread between any two bytecodes, also inside code that
holds a lock and inside the previous signal's handler (Python docs, `signal`: "Execution of
Python signal handlers"). So a handler must neither wait for a lock the interrupted code may
hold (threading.Event.set takes the Event's plain Lock, which Event.wait holds around its
check: the handler would wait for itself for ever), nor act on state the handler it
interrupted has half changed. `Relay` moves the work to a thread of its own,
`OneAtATime` runs one handler body at a time, and `StopFlag` is a stop Event a handler sets
through a relay.
"""
from __future__ import annotations

import contextlib
import queue
import signal
import threading
from typing import Callable

# The signals whose handlers these serve; a relay thread blocks them so that the kernel
# delivers them to a thread that runs Python handlers promptly (the main one).
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class OneAtATime:
    """A signal handler whose body handles one signal at a time. A second signal landing
    after the first read some state and before it changed it was taken for the first (the
    harness lost an abort that way and printed its stop line twice). A call inside the body
    queues its signal; the outer call handles it once its own body is done, with the state
    the first left. One landing before the body starts or after it ends runs at once: the
    other call has then done nothing, or everything. A body that raises (the abort's
    KeyboardInterrupt) drops what was queued behind it."""

    def __init__(self, body: Callable[[int], None]):
        self._body = body
        self._busy = False
        self._queued: list[int] = []   # list.append and pop(0) are atomic under the GIL

    def __call__(self, signum: int, frame=None) -> None:
        if self._busy:
            self._queued.append(signum)
            return
        while True:
            self._busy = True
            try:
                self._body(signum)
            except BaseException:
                self._queued.clear()
                raise
            finally:
                self._busy = False
            if not self._queued:
                return
            signum = self._queued.pop(0)


class Relay:
    """Runs jobs in order on a thread of its own: what a signal handler must not do in the
    thread it interrupted, because that code may hold the same non-reentrant lock (xdist's
    event queue, an Event's lock, threading's lock for starting a thread). SimpleQueue.put
    is reentrant (Python docs, queue.SimpleQueue). After stop(), jobs run at once in the
    caller. on_error(exc) hears a job's exception (the next jobs still run)."""

    def __init__(self, on_error: Callable[[Exception], None] = lambda exc: None,
                 name: str = "vancouver-signal-relay"):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._on_error = on_error
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, job: Callable[[], None]) -> None:
        if self._stopped:
            job()
        else:
            self._jobs.put(job)

    def _run(self) -> None:
        try:  # never the thread a handled signal is delivered to: the main thread takes them
            signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        except (ValueError, OSError):
            pass   # no per-thread mask here: CPython still runs handlers in the main thread only
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception as exc:  # noqa: BLE001  (reported; the next jobs still run)
                self._on_error(exc)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the queued jobs (here, if the thread is gone or late), then run new ones
        at once."""
        self._stopped = True
        self._jobs.put(None)
        self._thread.join(timeout)
        with contextlib.suppress(queue.Empty):
            while True:
                job = self._jobs.get_nowait()
                if job is not None:
                    job()


class StopFlag:
    """A threading.Event for "stop requested" whose `request` is a signal handler:
    `signal.signal(signal.SIGTERM, flag.request)`. The Event is set by a relay thread, never
    in the handler (see the module docstring). wait/is_set as threading.Event's."""

    def __init__(self, name: str = "vancouver-stop-flag"):
        self._event = threading.Event()
        self._relay = Relay(name=name)

    def request(self, signum: int | None = None, frame=None) -> None:
        self._relay.put(self._event.set)

    def set(self) -> None:
        """From ordinary code (not a handler): set at once."""
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)
