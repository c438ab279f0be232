"""The control-plane programs as children of the node process, restarted one by one as a
systemd unit per program would be (a real node runs etcd and the apiserver as static pods or
units, so one dying never takes the others down).

A dead kube-apiserver is started again against the etcd that kept running (its data, watches'
resourceVersions and the node agent's objects survive; the agent's watches reconnect), a dead
etcd is started again on its data dir (the apiserver reconnects by itself). Backoff: 0.2 s
doubling to 5 s; more than BURST restarts of one program within INTERVAL_S and the node
process gives up (exit 1) so the lab supervisor restarts the whole component.
"""
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
BURST = 5
INTERVAL_S = 60.0


class GaveUp(Exception):
    """A program died more than BURST times within INTERVAL_S (one line: which and why)."""


@dataclass
class Program:
    name: str
    argv: list[str]
    proc: subprocess.Popen
    restarts: list[float]          # monotonic times of recent restarts
    restart_at: float | None = None


class Processes:
    """Starts programs with their output in <logs>/<name>.log; `check()` restarts the dead."""

    def __init__(self, logs: Path, cwd: Path, on_restart: Callable[[str], None] = lambda n: None):
        self.logs, self.cwd, self.on_restart = logs, cwd, on_restart
        self.programs: dict[str, Program] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def _popen(self, name: str, argv: list[str], append: bool) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "ab" if append else "wb") as out:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=self.cwd)

    def start(self, name: str, argv: list[str]) -> None:
        self.programs[name] = Program(name, argv, self._popen(name, argv, False), [])

    def dead(self) -> list[tuple[str, int]]:
        """(name, exit status) of each program that has exited and awaits no restart."""
        return [(p.name, p.proc.returncode) for p in self.programs.values()
                if p.restart_at is None and p.proc.poll() is not None]

    def check(self) -> None:
        """Schedules a restart for each newly dead program and starts those that are due.
        Raises GaveUp past the burst limit."""
        now = time.monotonic()
        for p in self.programs.values():
            if p.restart_at is None:
                rc = p.proc.poll()
                if rc is None:
                    continue
                p.restarts = [t for t in p.restarts if now - t < INTERVAL_S]
                if len(p.restarts) >= BURST:
                    raise GaveUp(f"{p.name} exited with status {rc} {len(p.restarts) + 1} "
                                 f"times within {INTERVAL_S:.0f}s (see {self.logs}/{p.name}.log)")
                delay = min(BACKOFF_FIRST_S * 2 ** len(p.restarts), BACKOFF_MAX_S)
                p.restart_at = now + delay
                log.error("%s exited with status %d; restarting it in %.1fs", p.name, rc, delay)
            elif now >= p.restart_at:
                p.proc = self._popen(p.name, p.argv, True)
                p.restarts.append(now)
                p.restart_at = None
                log.info("restarted %s (pid %d)", p.name, p.proc.pid)
                self.on_restart(p.name)

    def stop(self, timeout: float) -> None:
        """SIGTERM in reverse start order (etcd last), then SIGKILL what is left."""
        progs = list(self.programs.values())
        for p in reversed(progs):
            if p.proc.poll() is None:
                p.proc.terminate()
        for p in progs:
            try:
                p.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
