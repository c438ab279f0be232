"""The control-plane programs of the node process: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, each in a session of its own and recorded in
<work dir>/detached/ (lab/detached.py), as a real node runs them as systemd units or static
pods that outlive a kubelet crash.

- A `kill -9` of the node process leaves them serving; the restarted node process adopts each
  one that is still the recorded process (pid, start time, command line) and healthy, and
  starts the others again on the same data dir.
- While the node process runs, a dead program is restarted alone, as a unit per program would
  be: a dead kube-apiserver against the etcd that kept running (its data, watches'
  resourceVersions and the node agent's objects survive), a dead etcd on its data dir (the
  apiserver reconnects by itself). Backoff: 0.2 s doubling to 5 s; more than `burst` restarts
  of one program within `interval_s` (the supervisor's limits, lab/restart.py: 5 in 60 s
  unless the environment says otherwise) and the node process gives up (exit 1, stopping them
  all) so the lab supervisor restarts the whole component.
- The node process stopping (SIGTERM: `lab down`, a component stop) stops them all; what a
  killed node process leaves, the supervisor stops (lab/supervisor.py).
"""
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab import detached
from lab.restart import limits

log = logging.getLogger(__name__)
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
POLL_S = 0.05
ADOPT_PROBE_S = 3.0     # how long an adopted program may take to answer its health probe


class GaveUp(Exception):
    """A program died more than `burst` times within `interval_s` (one line: which and why)."""


@dataclass
class Program:
    name: str
    argv: list[str]
    rec: detached.Record | None
    proc: subprocess.Popen | None   # None for an adopted program (not our child)
    restarts: list[float]           # monotonic times of recent restarts
    restart_at: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else self.rec.pid

    def exit_status(self) -> str | None:
        """None while it runs; else how it ended ('status -9'; an adopted program's status
        went to whoever reaps it)."""
        if self.proc is not None:
            rc = self.proc.poll()
            return None if rc is None else f"status {rc}"
        return None if self.rec is not None and self.rec.live() else "status unknown (adopted)"


class Processes:
    """Starts or adopts programs with their output appended to <logs>/<name>.log; `check()`
    restarts the dead."""

    def __init__(self, logs: Path, work: Path, on_restart: Callable[[str], None] = lambda n: None):
        self.logs, self.work, self.on_restart = logs, work, on_restart
        self.programs: dict[str, Program] = {}
        self.burst, self.interval_s = limits()
        logs.mkdir(parents=True, exist_ok=True)

    def _popen(self, name: str, argv: list[str]) -> tuple[subprocess.Popen, detached.Record | None]:
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=self.work,
                                    start_new_session=True)
        return proc, detached.record(self.work, name, proc.pid, argv)

    def start(self, name: str, argv: list[str]) -> None:
        proc, rec = self._popen(name, argv)
        self.programs[name] = Program(name, argv, rec, proc, [])

    def adopt_or_start(self, name: str, argv: list[str],
                       healthy: Callable[[], bool] = lambda: True) -> bool:
        """Adopts the recorded program when it is still that process, with this command line,
        and answers healthy() within ADOPT_PROBE_S; otherwise stops what is left of it and
        starts it afresh. True when adopted."""
        rec = next((r for r in detached.read(self.work) if r.name == name), None)
        if rec is not None and rec.live() and rec.argv == tuple(argv):
            deadline = time.monotonic() + ADOPT_PROBE_S
            while rec.live():
                if healthy():
                    self.programs[name] = Program(name, argv, rec, None, [])
                    log.info("adopted %s (pid %d), still serving", name, rec.pid)
                    return True
                if time.monotonic() > deadline:
                    break
                time.sleep(POLL_S)
            log.warning("%s (pid %d) is running but not healthy: starting it again", name, rec.pid)
        if rec is not None:
            self._stop_record(rec)
        self.start(name, argv)
        return False

    def _stop_record(self, rec: detached.Record, timeout: float = 5.0) -> None:
        if rec.live():
            os.kill(rec.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while rec.live() and time.monotonic() < deadline:
                time.sleep(POLL_S)
            if rec.live():
                os.kill(rec.pid, signal.SIGKILL)
        detached.forget(self.work, rec.name)

    def dead(self) -> list[tuple[str, str]]:
        """(name, how it ended) of each program that has exited and awaits no restart."""
        return [(p.name, st) for p in self.programs.values()
                if p.restart_at is None and (st := p.exit_status()) is not None]

    def check(self) -> None:
        """Schedules a restart for each newly dead program and starts those that are due.
        Raises GaveUp past the burst limit."""
        now = time.monotonic()
        for p in self.programs.values():
            if p.restart_at is None:
                status = p.exit_status()
                if status is None:
                    continue
                p.restarts = [t for t in p.restarts if now - t < self.interval_s]
                if len(p.restarts) >= self.burst:
                    raise GaveUp(f"{p.name} exited with {status} {len(p.restarts) + 1} "
                                 f"times within {self.interval_s:.0f}s "
                                 f"(see {self.logs}/{p.name}.log)")
                delay = min(BACKOFF_FIRST_S * 2 ** len(p.restarts), BACKOFF_MAX_S)
                p.restart_at = now + delay
                log.error("%s exited with %s; restarting it in %.1fs", p.name, status, delay)
            elif now >= p.restart_at:
                p.proc, p.rec = self._popen(p.name, p.argv)
                p.restarts.append(now)
                p.restart_at = None
                log.info("restarted %s (pid %d)", p.name, p.proc.pid)
                self.on_restart(p.name)

    def stop(self, timeout: float) -> None:
        """SIGTERM in reverse start order (etcd last), each once the one before it is gone
        (detached.terminate_in_order), then SIGKILL what is left; the records go with
        them."""
        progs = list(self.programs.values())
        detached.terminate_in_order(progs[::-1], lambda p: p.exit_status() is None,
                                    lambda p, sig: os.kill(p.pid, sig), timeout)
        for p in progs:
            if p.proc is not None:
                p.proc.wait()
            while p.exit_status() is None:   # an adopted one: SIGKILL takes a moment
                time.sleep(POLL_S)
            detached.forget(self.work, p.name)
