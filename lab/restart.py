"""When the supervisor restarts a component, after how long, and when it gives up.

Modelled on systemd.service(5) and systemd.unit(5):
- `Restart=on-failure`: restart after a non-zero exit status or a signal, except a clean exit
  (status 0) and the four "clean" signals SIGHUP, SIGINT, SIGTERM and SIGPIPE;
- `RestartSec` with `RestartSteps`/`RestartMaxDelaySec` (systemd 254): the delay grows from
  BACKOFF_FIRST_S, doubling, to BACKOFF_MAX_S;
- `StartLimitBurst`/`StartLimitIntervalSec`: more than `burst` restarts within `interval_s`
  and the component stays down ("failed"), as systemd's start-limit-hit.
A component that has stayed up for `interval_s` starts again from the first delay.

Environment (read by `lab up`'s supervisor, and by the components it starts, which inherit
it): VANCOUVER_LAB_RESTART_BURST (default 5) and VANCOUVER_LAB_RESTART_INTERVAL_S (default 60).
"""
import os
import signal
from collections import deque
from dataclasses import dataclass, field

BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
DEFAULT_BURST = 5
DEFAULT_INTERVAL_S = 60.0
CLEAN_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})


def exit_reason(returncode: int) -> str:
    """subprocess's returncode as a person says it: 'exited with status 1',
    'killed by SIGKILL'."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with status {returncode}"


def is_failure(returncode: int) -> bool:
    """Restart=on-failure's test."""
    if returncode == 0:
        return False
    if returncode < 0:
        return -returncode not in {int(s) for s in CLEAN_SIGNALS}
    return True


def _env_number(name: str, default: float, cast=float):
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = cast(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a number") from None
    if value <= 0:
        raise ValueError(f"{name}={text!r}: expected a positive number")
    return value


def limits() -> tuple[int, float]:
    """(burst, interval_s) from the environment (the defaults without it); ValueError names
    the variable. The Kubernetes node's per-program restarts (lab/kubernetes/processes.py)
    use the same limits."""
    return (_env_number("VANCOUVER_LAB_RESTART_BURST", DEFAULT_BURST, int),
            _env_number("VANCOUVER_LAB_RESTART_INTERVAL_S", DEFAULT_INTERVAL_S))


@dataclass
class RestartPolicy:
    """One component's restart bookkeeping (monotonic seconds throughout)."""
    burst: int = field(default_factory=lambda: _env_number(
        "VANCOUVER_LAB_RESTART_BURST", DEFAULT_BURST, int))
    interval_s: float = field(default_factory=lambda: _env_number(
        "VANCOUVER_LAB_RESTART_INTERVAL_S", DEFAULT_INTERVAL_S))
    restarts: int = 0                    # in the lab's life, for `status`
    last_exit: str = ""                  # exit_reason() of the last death
    _recent: deque = field(default_factory=deque)   # times of restarts within interval_s

    def on_death(self, returncode: int, now: float) -> float | None:
        """Records a death; the delay before the restart, or None to stay down (a clean stop,
        or the start limit hit)."""
        self.last_exit = exit_reason(returncode)
        if not is_failure(returncode):
            return None
        while self._recent and now - self._recent[0] > self.interval_s:
            self._recent.popleft()
        if len(self._recent) >= self.burst:
            return None
        delay = min(BACKOFF_FIRST_S * 2 ** len(self._recent), BACKOFF_MAX_S)
        self._recent.append(now)
        self.restarts += 1
        return delay

    def gave_up(self) -> str:
        return (f"gave up after {len(self._recent)} restarts within {self.interval_s:.0f}s "
                f"(last: {self.last_exit})")
