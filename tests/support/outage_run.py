"""A bounded demo run against a lab of one's own with a fault in the middle (a component
stopped or killed while workers are inside scenario steps), and the checks that it rode the
fault out: shared by tests/test_outage_e2e.py, tests/test_kill9_e2e.py,
tests/test_kill9_platforms_e2e.py and bench/bench_outage_resume.py.

The run's events are also written to `<out>/events.jsonl` by the plugin
tests/support/event_log.py (`-p tests.support.event_log`), so a reader can time each
worker's steps."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fixtures.waiters import poll_until, wait_until
from tests.support.labcli import REPO, LabCli

WAITING = re.compile(r"^\[vancouver\] (gw\d+): waiting for Datera REST API at (\S+): (.+), "
                     r"retrying in \d+s")
BACK = re.compile(r"^\[vancouver\] (gw\d+): Datera REST API at \S+ is back after")
# "[live] gw0: <nodeid> > <step path> (12 s)", or without " > ..." while in no step
LIVE = re.compile(r"^\[live\] (gw\d+): (\S+(?: > .*?)?)(?: \(\d+ s\))?$")


@contextmanager
def own_lab(tmp_path_factory, net: str, only: str, timeout: float = 300, **env: str):
    """`lab up --only <only>` on `net` in a tmp run dir for a module's tests (`env`: extra
    environment of the supervisor); down after. Skips (with the reason) where the Kubernetes
    control plane is not built."""
    lab = LabCli(net, tmp_path_factory.mktemp(f"lab-{net}") / "run")
    try:
        if "kubernetes" in only.split(","):
            up = lab.run("up", "--only", only, timeout=max(timeout, 400), env=lab.env(**env))
            if up.returncode != 0 and "not built" in up.stderr:
                import pytest
                pytest.skip(f"the Kubernetes control plane is not built here: "
                            f"{up.stderr.strip()}")
        else:
            up = lab.run("up", "--only", only, timeout=timeout, env=lab.env(**env))
        assert up.returncode == 0, up.stderr
        yield lab
    finally:
        lab.run("down")


def start_demo(lab: LabCli, out: Path, workers: int, duration: str,
               scenarios: tuple[str, ...] = ("scenarios/test_tenancy.py",),
               demo_config: Path | None = None) -> tuple[subprocess.Popen, list[str]]:
    """The demo running (own process group) and the list its output lines are read into:
    `scenarios` (paths under the repo) with the repo's demo.yaml or `demo_config`, ci
    profile. The output is also written to `<out>/output.txt`."""
    env = lab.env(PYTHONPATH=str(REPO))
    for k in ("VANCOUVER_TARGET", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID",
              "PYTEST_ADDOPTS"):
        env.pop(k, None)
    env["VANCOUVER_EVENT_LOG"] = str(out / "events.jsonl")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *scenarios, "-n", str(workers),
         "--count=0", "--duration", duration, "--demo-profile", "ci",
         # live lines every 2 s (30 s by default in a log): the faults aim at a step by them
         "--live-every", "2s",
         *(["--demo-config", str(demo_config)] if demo_config else []), "--target",
         str(lab.target), "--html", str(out / "report.html"), "-p", "no:cacheprovider",
         "-p", "tests.support.event_log"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines: list[str] = []

    def read():
        # also tee'd to <out>/output.txt: a failed case prints its tail (lab_evidence.py)
        with open(out / "output.txt", "w") as tee:
            for ln in iter(proc.stdout.readline, ""):
                lines.append(ln.rstrip("\n"))
                tee.write(ln)
                tee.flush()
    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def wait_workers_in_steps(proc: subprocess.Popen, lines: list[str], workers: int,
                          timeout: float = 240, step: str = " > ") -> None:
    """Until `workers` workers' live lines (the terminal view's "<nodeid> > <step path>")
    match the regex `step` (default: inside any step; "test_x" matches from the item's
    set-up on)."""
    want = re.compile(step)

    def busy():
        assert proc.poll() is None, "\n".join(lines[-60:])
        return len({m.group(1) for ln in list(lines)
                    if (m := LIVE.match(ln)) and want.search(m.group(2))}) >= workers
    wait_until(busy, timeout, f"{workers} worker(s) with a live line matching {step!r}", 0.5,
               error=AssertionError)


@dataclass
class Run:
    """A finished bounded run: its exit code, output lines, results.jsonl and events.jsonl
    records, and the output directory."""
    returncode: int
    lines: list[str]
    out: Path
    results: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def outages(self) -> list[dict]:
        return [r for r in self.results if r["outcome"] == "outage"]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def run_with_fault(lab: LabCli, out: Path, fault: Callable[[list[str]], None], *, duration: str,
                   scenarios: tuple[str, ...] = ("scenarios/test_tenancy.py",),
                   workers: int = 2, in_step: str | None = " > ",
                   in_step_workers: int | None = None, timeout: float = 600) -> Run:
    """The demo (`scenarios`, ci profile, `-n workers --count=0 --duration duration`) with
    `fault(lines)` called once `in_step_workers` (default: all) workers' live lines match
    `in_step` (wait_workers_in_steps; None: at once, as the run starts); waits for the run's
    end (killing its process group if it overruns)."""
    proc, lines = start_demo(lab, out, workers=workers, duration=duration, scenarios=scenarios)
    try:
        if in_step is not None:
            wait_workers_in_steps(proc, lines, in_step_workers or workers, step=in_step)
        fault(lines)
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    return Run(proc.returncode, lines, out, _jsonl(out / "results.jsonl"),
               _jsonl(out / "events.jsonl"))


def assert_rode_out(run: Run, platforms: set[str], outage_results: bool = True) -> None:
    """Exit 0; every result passed or an outage of one of `platforms` (no failure storm, no
    failure for the fault); at least one outage result (unless not `outage_results`); each
    paused worker resumed unless the run's end came while it waited (then that is its last
    result); the report parts and index.html show the outages as their own kind."""
    assert run.returncode == 0, run.text[-6000:]
    assert run.results, run.text[-3000:]
    assert not [r for r in run.results if r["outcome"] not in ("passed", "outage")], \
        [(r["nodeid"], r["outcome"]) for r in run.results if r["outcome"] != "passed"]
    if not outage_results and not run.outages:
        return
    assert run.outages, "no iteration counted the fault as an outage: " + run.text[-3000:]
    assert {r["outage"]["platform"] for r in run.outages} <= platforms, run.outages
    assert any(r["outage"]["resumed"] for r in run.outages), run.outages
    last = {r["worker"]: r for r in run.results}
    assert all(r["outage"]["resumed"] or r is last[r["worker"]] for r in run.outages), \
        run.outages
    assert any("Outage (not a failure" in p.read_text() for p in run.out.glob("report*.html"))
    assert ">outage<" in (run.out / "index.html").read_text()


def kill9_and_time_restart(lab: LabCli, name: str, timeout: float = 60) -> float:
    """kill -9 of the component's process; seconds until the supervisor has it healthy in a
    new process with one more restart."""
    before = lab.component(name)
    os.kill(before["pid"], signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: (c := lab.component(name))["pid"] != before["pid"]
               and c["state"] == "healthy" and c["restarts"] == before["restarts"] + 1,
               timeout=timeout, interval=0.02, what=f"{name} healthy again after its kill -9")
    return time.monotonic() - killed


def leftovers(lab: LabCli) -> list[str]:
    """What the cleanup command (dry run) would delete on the lab: its 'would delete' lines
    (the ESXi host's preparation included: the run's last worker undoes it,
    scenarios/vmware/conftest.py)."""
    proc = subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--target",
                           str(lab.target)], cwd=REPO, env=lab.env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [ln for ln in proc.stdout.splitlines() if ln.startswith("would delete")]


def assert_nothing_left(lab: LabCli) -> None:
    """Fails naming what the cleanup command finds on the lab, after deleting it with that
    command: a module's later cases share the lab, and one case's leak must fail that case
    only (CI: one leaked app instance failed every later kill -9 case)."""
    left = leftovers(lab)
    if left:
        subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--target", str(lab.target),
                        "--delete"], cwd=REPO, env=lab.env(), capture_output=True, text=True,
                       timeout=300)
    assert left == []


def datera_pid(lab: LabCli) -> int:
    return lab.component_pids()["datera"]


def unanswered_requests(pid: int) -> int:
    """Connections to the process's listening TCP sockets (accepted, or still in the accept
    queue) holding bytes it has not read: requests waiting on it, e.g. while it is stopped
    (/proc/net/tcp{,6}: local_address, st 0A listen / 01 established / 08 close-wait,
    tx_queue:rx_queue, inode; proc(5))."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        rows += [ln.split() for ln in Path(table).read_text().splitlines()[1:]]
    listening = {r[1] for r in rows if r[3] == "0A" and r[9] in inodes}
    return sum(1 for r in rows if r[1] in listening and r[3] in ("01", "08")
               and int(r[4].split(":")[1], 16) > 0)


@contextmanager
def stopped(pid: int):
    """The process stopped (SIGSTOP) inside, continued (SIGCONT) after, whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


# An iteration counted as an outage (xdist's verbose result line).
OUTAGE_RESULT = re.compile(r"^\[gw\d+\] OUTAGE ")
# Up time between two kills of a crash loop: longer than a paused worker's probe interval (its
# backoff cap, fixtures/outage/pause.py: 3 s), so a worker that paused resumes and its result
# shows.
CRASH_UP_S = 4.0
# The longest a crash loop goes on: well inside the shortest run, so that the component is up
# for the run's end (paused workers resume, their queued deletions run).
CRASH_LOOP_S = 20.0
# A crash loop restarts a component more often than the supervisor's default give-up limit
# allows: the lab's environment for it (own_lab(..., **CRASH_LOOP_LAB_ENV)).
CRASH_LOOP_LAB_ENV = {"VANCOUVER_LAB_RESTART_BURST": "100"}


def noticed(lines: list[str]) -> bool:
    """An iteration counted as an outage: a request of the scenario met the fault. The
    watcher's waiting line alone is not enough: it also sees a component down that no step
    needed at that moment (the run then has nothing to ride out)."""
    return any(OUTAGE_RESULT.match(ln) for ln in list(lines))


def crash_loop(lab: LabCli, component: str, lines: list[str], restarts: list[float],
               up_s: float = CRASH_UP_S, loop_s: float = CRASH_LOOP_S) -> None:
    """kill -9 of `component`; once it is healthy again, kill it again unless an iteration met
    the outage within `up_s`, for at most `loop_s`. A component back within a second meets
    no request of a worker that is measuring fio or waiting for a QoS window (the data plane
    reconnects); the supervisor's backoff doubles per restart (lab/restart.py), so the outage
    grows until a request meets it. `restarts` gets each kill's seconds to healthy."""
    end = time.monotonic() + loop_s
    while True:
        restarts.append(kill9_and_time_restart(lab, component, timeout=120))
        if poll_until(lambda: noticed(lines), bool, up_s) or time.monotonic() > end:
            return
