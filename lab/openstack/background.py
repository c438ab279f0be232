"""Background work for a service model: the thread pool that stands in for cinder-volume or
nova-compute, and the condition that API calls and tests wait on for a state change."""
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor


class BackgroundWork:
    """Mixed into a model: `self.lock` guards its state, `self.changed` is notified on every
    state change, `_submit` runs slow work (driver calls, byte copies) off the API's loop."""

    def _init_background(self, name: str, workers: int, log: logging.Logger) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._worker_name, self._worker_log = name, log

    def _submit(self, fn, *args, on_crash=None) -> Future:
        """Runs fn(*args) on a worker. A worker models its failures itself; an exception that
        escapes it is a lab bug: logged with its traceback, and `on_crash()` (called under the
        lock) puts the resource in the error state the real service would, so nothing is left
        in a transitional state that no API call can clear."""
        def run():
            try:
                fn(*args)
            except Exception:
                self._worker_log.exception("%s task %s failed", self._worker_name,
                                           getattr(fn, "__name__", fn))
                if on_crash is not None:
                    with self.changed:
                        try:
                            on_crash()
                        except Exception:
                            self._worker_log.exception("could not mark the failed resource")
                        self.changed.notify_all()
        return self.pool.submit(run)

    def wait_for(self, predicate, timeout: float) -> bool:
        """Blocks until predicate() (called under the lock) is true; False at the deadline."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True
