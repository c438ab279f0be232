"""A bounded demo run of the tenancy scenario (ci profile) against a lab of one's own, with
the lab's Datera process stopped (SIGSTOP) for a while in the middle: shared by
tests/test_outage_e2e.py and bench/bench_outage_resume.py.

The run's events are also written to `<out>/events.jsonl` by the plugin
tests/support/event_log.py (`-p tests.support.event_log`), so a reader can time each
worker's steps."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from fixtures.waiters import wait_until
from tests.support.labcli import REPO, LabCli

WAITING = re.compile(r"^\[vancouver\] (gw\d+): waiting for Datera REST API at (\S+): (.+), "
                     r"retrying in \d+s")
BACK = re.compile(r"^\[vancouver\] (gw\d+): Datera REST API at \S+ is back after")
IN_STEP = re.compile(r"^\[live\] (gw\d+): \S+ > ")


def start_demo(lab: LabCli, out: Path, workers: int, duration: str,
               scenarios: tuple[str, ...] = ("scenarios/test_tenancy.py",),
               demo_config: Path | None = None) -> tuple[subprocess.Popen, list[str]]:
    """The demo running (own process group) and the list its output lines are read into:
    `scenarios` (paths under the repo) with the repo's demo.yaml or `demo_config`, ci
    profile."""
    env = lab.env(PYTHONPATH=str(REPO))
    for k in ("VANCOUVER_TARGET", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID",
              "PYTEST_ADDOPTS"):
        env.pop(k, None)
    env["VANCOUVER_EVENT_LOG"] = str(out / "events.jsonl")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *scenarios, "-n", str(workers),
         "--count=0", "--duration", duration, "--demo-profile", "ci",
         *(["--demo-config", str(demo_config)] if demo_config else []), "--target",
         str(lab.target), "--html", str(out / "report.html"), "-p", "no:cacheprovider",
         "-p", "tests.support.event_log"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(
        ln.rstrip("\n") for ln in iter(proc.stdout.readline, "")), daemon=True).start()
    return proc, lines


def wait_workers_in_steps(proc: subprocess.Popen, lines: list[str], workers: int,
                          timeout: float = 240) -> None:
    """Until every worker is inside a scenario step (the terminal view's live lines)."""
    def busy():
        assert proc.poll() is None, "\n".join(lines[-60:])
        return len({m.group(1) for ln in list(lines) if (m := IN_STEP.match(ln))}) >= workers
    wait_until(busy, timeout, "every worker to be inside a step", 0.5, error=AssertionError)


def leftovers(lab: LabCli) -> list[str]:
    """What the cleanup command (dry run) would delete on the lab: its 'would delete' lines."""
    proc = subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--target",
                           str(lab.target)], cwd=REPO, env=lab.env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [ln for ln in proc.stdout.splitlines() if ln.startswith("would delete")]


def datera_pid(lab: LabCli) -> int:
    return lab.component_pids()["datera"]


@contextmanager
def stopped(pid: int):
    """The process stopped (SIGSTOP) inside, continued (SIGCONT) after, whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
