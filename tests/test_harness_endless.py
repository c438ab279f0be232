"""fixtures/endless/: --count=0 / --duration under xdist and in one process, Ctrl-C, pacing.

Each test writes a small scenario suite into a tmp dir and runs pytest on it in a subprocess
(VANCOUVER_TARGET points at a dummy so no lab ever starts). The generated tests append
"<event> <what> <worker> <time>" lines to events.log, from which overlaps, rounds and
setup/teardown balance are checked. The scheduler itself is also driven by a simulation.
"""
from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from fixtures.endless import EndlessScheduling, Pacer, parse_duration
from fixtures.endless.stop import REPEAT_S
from tests.support.inner_run import demo_yaml, env

# Inner runs bounded by --duration and paced by wall-clock intervals: run alone (make test).
pytestmark = pytest.mark.serial
# The waits of finish() and wait_for() guard against hangs; they are not what a test measures.
# An inner pytest run's start and exit take tens of seconds on a loaded 2-core machine (CI
# beside other work), so every guard is stretched by this factor.
GUARD_SLACK = 4



CONFTEST = """\
import os, time, pytest
pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting.plugin"]

def event(kind, what):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    line = f"{kind} {what} {worker} {time.time():.6f}\\n"
    fd = os.open(os.path.join(os.path.dirname(__file__), "events.log"),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())
    os.close(fd)

@pytest.fixture(scope="session")
def sess():
    event("setup", "session")
    yield
    event("teardown", "session")

@pytest.fixture(scope="module")
def mod(sess):
    event("setup", "module")
    yield
    event("teardown", "module")

@pytest.fixture
def func(mod, request):
    event("setup", "function")
    event("start", request.node.nodeid)
    yield
    event("end", request.node.nodeid)
    event("teardown", "function")
"""

SCENARIO = """\
import time, pytest

@pytest.mark.parametrize("n", range(%(n)d))
def test_step(n, func):
    time.sleep(%(sleep)s)
"""


def make_suite(tmp: Path, modules: dict[str, dict]) -> Path:
    """scenarios/test_<name>.py per module; its key <name> in demo.yaml with the module's
    `interval` (default 0)."""
    (tmp / "conftest.py").write_text(CONFTEST)
    (tmp / "demo.yaml").write_text(
        demo_yaml({name: spec.get("interval", 0) for name, spec in modules.items()}))
    (tmp / "scenarios").mkdir(exist_ok=True)
    for name, spec in modules.items():
        (tmp / "scenarios" / f"test_{name}.py").write_text(SCENARIO % spec)
    return tmp


def start(tmp: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--demo-config",
           "demo.yaml", "--demo-profile", "ci", *args]
    return subprocess.Popen(cmd, cwd=tmp, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 40) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout * GUARD_SLACK)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"pytest did not finish in {timeout * GUARD_SLACK}s:\n{out[-3000:]}")
    return out


def run(tmp: Path, *args: str, timeout: float = 40) -> tuple[int, str]:
    proc = start(tmp, *args)
    out = finish(proc, timeout)
    return proc.returncode, out


def events(tmp: Path) -> list[tuple[str, str, str, float]]:
    path = tmp / "events.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        kind, what, worker, ts = line.rsplit(" ", 3)
        out.append((kind, what, worker, float(ts)))
    return out


def wait_for(proc: subprocess.Popen, predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout * GUARD_SLACK
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"pytest exited early:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def assert_balanced(evts) -> None:
    """Every fixture set up was torn down, per worker and scope; every start has an end."""
    per = Counter()
    for kind, what, worker, _ in evts:
        if kind in ("setup", "teardown"):
            per[(worker, what)] += 1 if kind == "setup" else -1
        elif kind in ("start", "end"):
            per[(worker, "test " + what)] += 1 if kind == "start" else -1
    unbalanced = {k: v for k, v in per.items() if v}
    assert not unbalanced, f"not torn down / not finished: {unbalanced}"


def runs_by_item(evts) -> dict[str, list[tuple[float, float, str]]]:
    open_, runs = {}, defaultdict(list)
    for kind, what, worker, ts in evts:
        if kind == "start":
            open_[(worker, what)] = ts
        elif kind == "end":
            runs[what].append((open_.pop((worker, what)), ts, worker))
    return runs


def assert_no_self_overlap(runs) -> None:
    for nodeid, spans in runs.items():
        spans = sorted(spans)
        for (s1, e1, w1), (s2, e2, w2) in zip(spans, spans[1:]):
            assert s2 >= e1, f"{nodeid} ran on {w1} and {w2} at the same time"


# --------------------------------------------------------------------------- xdist

def test_endless_xdist_round_robin_bounded(tmp_path):
    make_suite(tmp_path, {"a": dict(n=3, sleep=0.05),
                          "b": dict(n=3, sleep=0.05)})
    code, out = run(tmp_path, "-n", "3", "--count=0", "--duration", "5s")
    assert code == 0, out[-3000:]
    evts = events(tmp_path)
    runs = runs_by_item(evts)
    assert len(runs) == 6
    assert min(len(v) for v in runs.values()) >= 3, {k: len(v) for k, v in runs.items()}
    assert {w for spans in runs.values() for _, _, w in spans} == {"gw0", "gw1", "gw2"}
    assert_no_self_overlap(runs)
    assert_balanced(evts)
    # One console line per result, with the worker and the round.
    assert re.search(r"^\[gw\d\] PASSED round \d+ scenarios/test_[ab]\.py::test_step\[\d\]", out, re.M)
    passed = int(re.search(r"(\d+) passed", out).group(1))
    assert passed == sum(len(v) for v in runs.values())
    assert list((tmp_path / "reports").glob("report-*-0001.html"))  # endless: rotated parts
    assert (tmp_path / "reports" / "index.html").is_file()


@pytest.mark.parametrize("workers", [["-n", "2"], []], ids=["xdist", "single"])
def test_a_short_run_starts_every_scenario_before_any_twice(tmp_path, workers):
    """Four scenario keys of three items each: the first four starts are the four keys (in
    file order each key's items would come first), and all twelve items start before any
    item starts again."""
    make_suite(tmp_path, {k: dict(n=3, sleep=0.4) for k in "abcd"})
    code, out = run(tmp_path, *workers, "--count=0", "--duration", "7s")
    assert code == 0, out[-3000:]
    starts = sorted((ts, what) for kind, what, _, ts in events(tmp_path) if kind == "start")
    order = [what for _, what in starts]
    modules = [n.split("::")[0] for n in order]
    assert len(set(modules[:4])) == 4, order[:4]
    assert len(order) >= 12, order
    assert len(set(order[:12])) == 12, order[:12]
    if not workers:   # one process: exactly round-robin over the keys, then their items
        assert modules[:8] == modules[:4] * 2, modules[:8]


def test_sigint_to_controller_stops_gracefully(tmp_path):
    make_suite(tmp_path, {"a": dict(n=4, sleep=1.0)})
    proc = start(tmp_path, "-n", "2", "--count=0")
    try:
        wait_for(proc, lambda: sum(e[0] == "start" for e in events(tmp_path)) >= 3, 20, "tests to run")
        proc.send_signal(signal.SIGINT)  # the controller only, as `kill -INT <pid>`
        out = finish(proc, 30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    assert "Ctrl-C: stopping: waiting for" in out
    evts = events(tmp_path)
    assert_balanced(evts)  # the running iterations finished, every fixture was torn down
    assert_no_self_overlap(runs_by_item(evts))
    assert list((tmp_path / "reports").glob("report-*-0001.html"))  # endless: rotated parts


UNCONFIGURE_HOLD = """

import gc
def pytest_unconfigure(config):
    # The controller reports reaching pytest_unconfigure and stays there (collecting garbage,
    # as the unraisable-exception plugin does) until the test has sent its signal.
    if hasattr(config, "workerinput"):
        return
    event("unconfigure", "controller")
    go = os.path.join(os.path.dirname(__file__), "go")
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        gc.collect()
"""


class Watched:
    """A pytest run whose output lines are read as they come, to send signals at known points."""

    def __init__(self, proc: subprocess.Popen):
        import threading
        self.proc, self.lines = proc, []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def out(self) -> str:
        return "".join(self.lines)

    def wait_for(self, predicate, what: str, timeout: float = 120) -> None:
        # A condition, not a sleep: generous for worker start-up on a loaded machine.
        deadline = time.monotonic() + timeout * GUARD_SLACK
        while not predicate():
            if self.proc.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"pytest exited before {what}:\n{self.out[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.out[-3000:]}")
            time.sleep(0.02)

    def saw(self, text: str):
        return lambda: text in self.out

    def finish(self, timeout: float = 40) -> str:
        try:
            self.proc.wait(timeout * GUARD_SLACK)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            pytest.fail(f"pytest did not finish in {timeout * GUARD_SLACK}s:\n{self.out[-3000:]}")
        self._reader.join(5)
        return self.out


def _started(tmp: Path, n: int):
    return lambda: sum(e[0] == "start" for e in events(tmp)) >= n


def _in_unconfigure(tmp: Path):
    return lambda: any(e[0] == "unconfigure" for e in events(tmp))


def assert_interrupted_cleanly(proc, out: str, tmp: Path) -> None:
    assert proc.returncode == 2, out[-3000:]  # interrupted, never -2
    assert "Traceback" not in out, out[-3000:]
    evts = events(tmp)
    teardowns = Counter((w, what) for kind, what, w, _ in evts if kind == "teardown")
    setups = Counter((w, what) for kind, what, w, _ in evts if kind == "setup")
    assert setups == teardowns, (setups, teardowns)
    assert list((tmp / "reports").glob("report-*-0001.html"))  # endless: rotated parts


def test_sigint_to_process_group_thrice_still_tears_down_and_reports(tmp_path):
    """Terminal Ctrl-C three times, each sent once the run has visibly taken the previous
    one: the first stops gracefully, the second aborts, the third lands in teardown (P11)."""
    make_suite(tmp_path, {"a": dict(n=4, sleep=5.0)})
    run = Watched(start(tmp_path, "-n", "2", "--count=0"))
    try:
        run.wait_for(_started(tmp_path, 2), "tests to run")
        os.killpg(run.proc.pid, signal.SIGINT)   # terminal Ctrl-C: controller and workers
        run.wait_for(run.saw("Ctrl-C: stopping"), "the graceful stop")
        os.killpg(run.proc.pid, signal.SIGINT)   # the operator's second Ctrl-C
        run.wait_for(run.saw("second signal (Ctrl-C): aborting"), "the abort")
        os.killpg(run.proc.pid, signal.SIGINT)   # and a third, impatient one during teardown
        out = run.finish(30)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
    assert_interrupted_cleanly(run.proc, out, tmp_path)


@pytest.mark.parametrize("before", [1, 2])
def test_sigint_landing_in_unconfigure_is_no_traceback(tmp_path, before):
    """After the first Ctrl-C, one more landing in pytest_unconfigure (where the original
    failure met gc.collect of the unraisable-exception plugin) ends the run with status 2 and
    no traceback, whether the run was stopping (before=1) or already aborted (before=2)."""
    make_suite(tmp_path, {"a": dict(n=2, sleep=0.2)})
    (tmp_path / "conftest.py").write_text(CONFTEST + UNCONFIGURE_HOLD)
    run = Watched(start(tmp_path, "-n", "2", "--count=0"))
    try:
        run.wait_for(_started(tmp_path, 2), "tests to run")
        os.killpg(run.proc.pid, signal.SIGINT)
        run.wait_for(run.saw("Ctrl-C: stopping"), "the graceful stop")
        if before == 2:
            os.killpg(run.proc.pid, signal.SIGINT)
            run.wait_for(run.saw("second signal (Ctrl-C): aborting"), "the abort")
        run.wait_for(_in_unconfigure(tmp_path), "pytest_unconfigure")
        os.killpg(run.proc.pid, signal.SIGINT)
        run.wait_for(lambda: run.out.count("[vancouver]") == 2 or before == 2,
                     "the late Ctrl-C to be taken")
        (tmp_path / "go").write_text("")
        out = run.finish(30)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
    assert_interrupted_cleanly(run.proc, out, tmp_path)



def test_signal_after_the_duration_deadline_aborts_and_says_so(tmp_path):
    """Once --duration has asked the run to end, the operator's first signal is already the
    second stop request: it aborts, and the line says why rather than "second signal"."""
    make_suite(tmp_path, {"a": dict(n=2, sleep=5.0)})
    run = Watched(start(tmp_path, "-n", "2", "--count=0", "--duration", "1s"))
    try:
        run.wait_for(run.saw("duration reached: stopping"), "the deadline")
        os.killpg(run.proc.pid, signal.SIGTERM)
        run.wait_for(run.saw("signal after the duration (SIGTERM): aborting"), "the abort")
        out = run.finish(30)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
    assert "second signal (SIGTERM)" not in out, out[-3000:]
    assert_interrupted_cleanly(run.proc, out, tmp_path)
    assert "aborted: signal after the duration (SIGTERM)" in (tmp_path / "reports" /
                                                             "index.html").read_text()

def test_one_item_repeats_on_xdist_without_p3_failure(tmp_path):
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.01)})
    code, out = run(tmp_path, "-n", "2", "--count=0", "--duration", "2s")
    assert code == 0, out[-3000:]
    runs = runs_by_item(events(tmp_path))
    assert len(runs["scenarios/test_a.py::test_step[0]"]) >= 5
    assert_balanced(events(tmp_path))


# --------------------------------------------------------------------------- stop signals
# SIGTERM and SIGHUP (timeout, CI runners, service managers) behave like the first Ctrl-C; a
# second signal of any kind aborts, cuts the running iterations (recorded as "aborted") and
# still tears everything down. Issue 8 item 1: SIGTERM used to kill the run without report.

def results(tmp: Path) -> list[dict]:
    import json
    path = tmp / "reports" / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_proof(tmp: Path, state: str) -> dict:
    """The report parts, index.html and results.jsonl of an ended run: every started
    iteration finished its teardown and has one result line; index.html names the end
    `state`, links only files that exist and counts what results.jsonl holds."""
    evts = events(tmp)
    assert_balanced(evts)  # every iteration and fixture that started was torn down
    lines = results(tmp)
    starts = sum(1 for e in evts if e[0] == "start")
    assert len(lines) == starts, (len(lines), starts)
    reports = tmp / "reports"
    assert list(reports.glob("report-*.html")), sorted(p.name for p in reports.iterdir())
    index = (reports / "index.html").read_text()
    assert re.search(r"<p class='state'>" + state, index), index[:600]
    assert "running" not in index and 'http-equiv="refresh"' not in index
    for href in re.findall(r'href="([^"]+)"', index):
        assert (reports / href).is_file(), f"index.html links {href}, never written"
    counts = Counter(r["outcome"] for r in lines)
    header = re.findall(r"<th>(\w+)</th>", index)
    outcomes = header[header.index("to") + 1:-1]
    row = re.search(r"<tr class='all'.*?</tr>", index, re.S).group(0)
    shown = [int(x) for x in re.findall(r"<td><b>(\d+)</b></td>", row)]
    assert dict(zip(outcomes, shown[:-1])) == {k: counts.get(k, 0) for k in outcomes}
    assert shown[-1] == len(lines)
    return counts


SIGNALS = {"TERM": signal.SIGTERM, "HUP": signal.SIGHUP, "INT": signal.SIGINT}
SHOWN = {"TERM": "SIGTERM", "HUP": "SIGHUP", "INT": "Ctrl-C"}


@pytest.mark.parametrize("sig", list(SIGNALS))
def test_first_signal_to_process_group_stops_gracefully(tmp_path, sig):
    """kill -<sig> to the process group after 4 results (as `timeout`, a CI runner or a
    terminal does): the running iterations finish, everything is torn down, status 0, and
    the proof is written."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.5), "b": dict(n=1, sleep=0.5)})
    run = Watched(start(tmp_path, "-n", "2", "--count=0", "--timeout=120"))
    try:
        run.wait_for(lambda: len(results(tmp_path)) >= 4, "4 results")
        os.killpg(run.proc.pid, SIGNALS[sig])
        out = run.finish(40)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
    assert run.proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    # One line at once, saying what happens and how to abort.
    assert re.search(rf"\[vancouver\] {SHOWN[sig]}: stopping: waiting for [0-2] running "
                     r"iterations? to finish \(at most \d+s\); "
                     + ("press Ctrl-C again to abort" if SHOWN[sig] == "Ctrl-C" else
                        r"press Ctrl-C \(or send a second signal\) to abort"),
                     out), out[-3000:]
    counts = assert_proof(tmp_path, f"stopped by {SHOWN[sig]}")
    assert set(counts) == {"passed"}, counts


@pytest.mark.parametrize("first,second", [("TERM", "INT"), ("HUP", "TERM"), ("INT", "HUP"),
                                          ("TERM", "TERM")])
def test_second_signal_aborts_cuts_and_still_tears_down(tmp_path, first, second):
    """A second signal, of any kind, while both workers are inside long iterations: they are
    cut, torn down and recorded as "aborted" with their duration; status 2, no traceback,
    and a third signal during teardown changes nothing."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.3), "b": dict(n=1, sleep=0.3)})
    # Iterations starting once the file "slow" exists last long: the stop finds them running.
    (tmp_path / "scenarios" / "test_a.py").write_text(SCENARIO_SLOW_AFTER)
    (tmp_path / "scenarios" / "test_b.py").write_text(SCENARIO_SLOW_AFTER)
    run = Watched(start(tmp_path, "-n", "2", "--count=0"))
    try:
        run.wait_for(lambda: len(results(tmp_path)) >= 4, "4 results")
        slow_from = time.time()
        (tmp_path / "slow").write_text("")
        run.wait_for(lambda: _running(tmp_path, since=slow_from) == 2,
                     "two long iterations running")
        os.killpg(run.proc.pid, SIGNALS[first])
        run.wait_for(run.saw(f"{SHOWN[first]}: stopping: waiting for 2 running iterations"),
                     "the graceful stop")
        if first == second != "INT":
            # A repeat within REPEAT_S is the same request (coreutils timeout signals the
            # command and its group): the test's second signal is a later, separate one.
            seen = time.monotonic()
            run.wait_for(lambda: time.monotonic() - seen > REPEAT_S, "a separate signal")
        os.killpg(run.proc.pid, SIGNALS[second])
        run.wait_for(run.saw(f"second signal ({SHOWN[second]}): aborting"), "the abort")
        os.killpg(run.proc.pid, signal.SIGINT)  # a third, impatient one
        out = run.finish(60)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
    assert run.proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    counts = assert_proof(tmp_path, "aborted")
    assert counts["aborted"] == 2, counts
    cut = [r for r in results(tmp_path) if r["outcome"] == "aborted"]
    assert all(r["duration"] > 0 and r["worker"] in ("gw0", "gw1") for r in cut), cut
    assert re.search(r"ABORTED round \d+ scenarios/test_[ab]\.py", out), out[-3000:]


SCENARIO_SLOW_AFTER = """\
import os, time

def test_step(func):
    slow = os.path.exists(os.path.join(os.path.dirname(__file__), os.pardir, "slow"))
    time.sleep(30 if slow else 0.3)
"""


def _running(tmp: Path, since: float) -> int:
    """Workers inside an iteration that started after `since`."""
    open_ = {}
    for kind, what, worker, ts in events(tmp):
        if kind == "start":
            open_[worker] = ts
        elif kind == "end":
            open_.pop(worker, None)
    return sum(1 for ts in open_.values() if ts > since)


STARTUP_HOLD = """

# Each xdist worker, while importing this conftest (before any plugin of ours is configured
# in it), says so and waits for the test's go.
if os.environ.get("PYTEST_XDIST_WORKER"):
    here = os.path.dirname(__file__)
    open(os.path.join(here, "starting-" + os.environ["PYTEST_XDIST_WORKER"]), "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(here, "go")) and time.monotonic() < deadline:
        time.sleep(0.02)
"""


def test_signal_during_worker_start_up_is_a_graceful_stop(tmp_path):
    """SIGTERM to the group while the workers are still starting (the controller spawns them
    with the stop signals held): no worker dies of it, none is replaced, status 0."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.2), "b": dict(n=1, sleep=0.2)})
    (tmp_path / "conftest.py").write_text(CONFTEST + STARTUP_HOLD)
    run = Watched(start(tmp_path, "-n", "2", "--count=0", "--timeout=120"))
    try:
        run.wait_for(lambda: len(list(tmp_path.glob("starting-gw*"))) == 2, "workers starting")
        os.killpg(run.proc.pid, signal.SIGTERM)
        run.wait_for(run.saw("SIGTERM: stopping"), "the stop line")
        (tmp_path / "go").write_text("")
        out = run.finish(60)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
    assert run.proc.returncode == 0, out[-3000:]
    for bad in ("Traceback", "INTERNALERROR", "node down", "replacing crashed worker"):
        assert bad not in out, out[-3000:]
    assert_proof(tmp_path, "stopped by SIGTERM")


def test_sigterm_to_controller_alone_stops_gracefully(tmp_path):
    """A service manager that signals only the main process (start-stop-daemon --stop,
    systemd KillMode=mixed): the workers learn of the stop from the controller."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.5), "b": dict(n=1, sleep=0.5)})
    run = Watched(start(tmp_path, "-n", "2", "--count=0"))
    try:
        run.wait_for(lambda: len(results(tmp_path)) >= 4, "4 results")
        run.proc.send_signal(signal.SIGTERM)
        out = run.finish(40)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
    assert run.proc.returncode == 0, out[-3000:]
    assert_proof(tmp_path, "stopped by SIGTERM")


def test_timeout_command_stops_gracefully(tmp_path):
    """`timeout 30 pytest -n 2 --count=0`: coreutils timeout sends SIGTERM to the run's
    process group; the proof is complete and timeout reports its own 124."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.5), "b": dict(n=1, sleep=0.5)})
    cmd = ["timeout", "30", sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
           "--demo-config", "demo.yaml", "--demo-profile", "ci", "-n", "2", "--count=0",
           "--timeout=120"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env(), capture_output=True, text=True,
                          timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 124, out[-3000:]  # timeout's "timed out"; pytest itself: 0
    assert "SIGTERM: stopping" in out and "Traceback" not in out, out[-3000:]
    assert "aborting" not in out, out[-3000:]  # timeout's two SIGTERMs are one request
    assert_proof(tmp_path, "stopped by SIGTERM")


def test_service_manager_stop_writes_the_proof(tmp_path):
    """Debian's start-stop-daemon runs the demo as a daemon and stops it the way init
    scripts do (`--stop --retry TERM/60/KILL/5`: SIGTERM to the main process, SIGKILL only
    if it is still there after 60 s): the run stops gracefully and the proof is complete."""
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.5), "b": dict(n=1, sleep=0.5)})
    pidfile, log = tmp_path / "demo.pid", tmp_path / "demo.log"
    subprocess.run(["start-stop-daemon", "--start", "--background", "--make-pidfile",
                    "--pidfile", str(pidfile), "--chdir", str(tmp_path), "--output", str(log),
                    "--exec", sys.executable, "--", "-m", "pytest", "-p", "no:cacheprovider",
                    "--demo-config", "demo.yaml", "--demo-profile", "ci", "-n", "2",
                    "--count=0", "--timeout=120"], env=env(), check=True, timeout=30)
    pid = int(pidfile.read_text())
    try:
        deadline = time.monotonic() + 60
        while len(results(tmp_path)) < 4:
            assert os.path.exists(f"/proc/{pid}"), log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no 4 results in 60 s"
            time.sleep(0.05)
        stop = subprocess.run(["start-stop-daemon", "--stop", "--pidfile", str(pidfile),
                               "--retry", "TERM/60/KILL/5", "--remove-pidfile"],
                              capture_output=True, text=True, timeout=90)
    finally:
        if os.path.exists(f"/proc/{pid}"):
            os.killpg(pid, signal.SIGKILL)
    assert stop.returncode == 0, stop.stderr
    out = log.read_text()
    assert "SIGTERM: stopping" in out and "Traceback" not in out, out[-3000:]
    assert re.search(r"=+ \d+ passed in ", out), out[-3000:]
    assert_proof(tmp_path, "stopped by SIGTERM")


# --------------------------------------------------------------------------- fixture scopes
# Issue 8 item 2: with as many items as workers every iteration ran with nextitem=None and
# all scopes were torn down each time.

def _per_worker(evts, kind, what) -> Counter:
    return Counter(w for k, x, w, _ in evts if (k, x) == (kind, what))


@pytest.mark.parametrize("workers,items", [(2, 2), (2, 1)])
def test_session_fixture_once_per_worker(tmp_path, workers, items):
    make_suite(tmp_path, {f"m{i}": dict(n=1, sleep=0.01) for i in range(items)})
    code, out = run(tmp_path, "-n", str(workers), "--count=0", "--duration", "3s")
    assert code == 0, out[-3000:]
    evts = events(tmp_path)
    ran = Counter(w for k, _, w, _ in evts if k == "start")
    assert len(ran) == items and min(ran.values()) >= 5, ran
    assert _per_worker(evts, "setup", "session") == Counter({w: 1 for w in ran})
    assert _per_worker(evts, "teardown", "session") == Counter({w: 1 for w in ran})
    # Each worker keeps its own item (exclusive, one item per worker): one module too.
    assert _per_worker(evts, "setup", "module") == Counter({w: 1 for w in ran})
    assert_balanced(evts)


def test_session_fixture_once_in_single_process_and_modules_follow_pytest(tmp_path):
    make_suite(tmp_path, {"a": dict(n=2, sleep=0.01), "b": dict(n=1, sleep=0.01)})
    code, out = run(tmp_path, "--count=0", "--duration", "2s")
    assert code == 0, out[-3000:]
    evts = events(tmp_path)
    assert _per_worker(evts, "setup", "session") == Counter({"master": 1})
    assert _per_worker(evts, "teardown", "session") == Counter({"master": 1})
    # A module's fixture is set up again exactly when the next item is in another module.
    modules = [what.split("::")[0] for k, what, _, _ in evts if k == "start"]
    switches = 1 + sum(1 for a, b in zip(modules, modules[1:]) if a != b)
    assert _per_worker(evts, "setup", "module")["master"] == switches
    assert_balanced(evts)


def test_session_fixture_torn_down_once_on_a_signal_stop(tmp_path):
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.2)})
    run = Watched(start(tmp_path, "--count=0"))
    try:
        run.wait_for(lambda: len(results(tmp_path)) >= 3, "3 results")
        os.killpg(run.proc.pid, signal.SIGTERM)
        out = run.finish(30)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
    assert run.proc.returncode == 0, out[-3000:]
    evts = events(tmp_path)
    assert _per_worker(evts, "setup", "session") == Counter({"master": 1})
    assert _per_worker(evts, "teardown", "session") == Counter({"master": 1})
    assert_proof(tmp_path, "stopped by SIGTERM")


# --------------------------------------------------------------------------- bad options

@pytest.mark.parametrize("args,names", [
    (["--duration", "-5s"], "--duration -5s"),
    (["--duration=0"], "--duration 0"),
    (["--endless-trim-every", "abc"], "--endless-trim-every abc"),
    (["--endless-trim-every", "-1"], "--endless-trim-every -1"),
    (["--report-rotate", "-1m"], "--report-rotate -1m"),
    (["--report-rotate-results", "x"], "--report-rotate-results x"),
    (["--report-keep", "0"], "--report-keep 0"),
])
def test_bad_harness_option_is_one_line(tmp_path, args, names):
    make_suite(tmp_path, {"a": dict(n=1, sleep=0)})
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--demo-config", "demo.yaml", "--demo-profile", "ci", "--count=0",
                           *args], cwd=tmp_path, env=env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: {names}: expected"), proc.stderr
    assert "usage:" not in proc.stderr + proc.stdout


# --------------------------------------------------------------------------- one process

def test_single_process_loop(tmp_path):
    make_suite(tmp_path, {"a": dict(n=2, sleep=0.01),
                          "b": dict(n=1, sleep=0.01)})
    code, out = run(tmp_path, "--count=0", "--duration", "2s")
    assert code == 0, out[-3000:]
    evts = events(tmp_path)
    runs = runs_by_item(evts)
    assert len(runs) == 3 and min(len(v) for v in runs.values()) >= 5
    assert sum(1 for e in evts if e[:2] == ("setup", "session")) == 1
    assert_balanced(evts)
    assert re.search(r"scenarios/test_a\.py::test_step\[0\] PASSED round \d+", out)


def test_single_process_one_item(tmp_path):
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.01)})
    code, out = run(tmp_path, "--count=0", "--duration", "1s")
    assert code == 0, out[-3000:]
    assert len(runs_by_item(events(tmp_path))["scenarios/test_a.py::test_step[0]"]) >= 5


# --------------------------------------------------------------------------- pacing

def test_pacing_across_workers(tmp_path):
    interval = 1.0
    make_suite(tmp_path, {"p": dict(interval=interval, n=1, sleep=0.01),
                          "f": dict(n=3, sleep=0.05)})
    code, out = run(tmp_path, "-n", "2", "--count=0", "--duration", "4.5s")
    assert code == 0, out[-3000:]
    runs = runs_by_item(events(tmp_path))
    starts = sorted(s for s, _, _ in runs["scenarios/test_p.py::test_step[0]"])
    assert len(starts) >= 3, starts  # paced, not starved
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # The test records its start a few ms after the pacer's mark; allow that jitter.
    assert min(gaps) >= interval - 0.1, gaps
    fast = sum(len(v) for k, v in runs.items() if k.startswith("scenarios/test_f.py"))
    assert fast > 3 * len(starts)  # the paced scenario did not hold the workers up


# --------------------------------------------------------------------------- scheduler simulation

class FakeNode:
    def __init__(self, name: str, speed: float):
        self.gateway = type("GW", (), {"id": name})()
        self.speed = speed
        self.shutting_down = False
        self.queue: list[int] = []

    def send_runtest_some(self, indices):
        self.queue.extend(indices)


class FakeStopper:
    level = 0


@pytest.mark.parametrize("n_items,n_nodes", [(1, 1), (1, 3), (2, 2), (3, 3), (5, 5), (6, 5), (6, 3), (10, 5), (7, 3), (20, 5),
                                             (12, 4)])
def test_scheduler_simulation(tmp_path, n_items, n_nodes):
    """Event-driven simulation with one slow node: no stall, exclusive, every node busy when
    there are at least as many items as nodes, back to back only when nothing else is free."""
    rng = random.Random(n_items * 100 + n_nodes)
    sched = EndlessScheduling(None, None, FakeStopper(), numnodes=n_nodes)
    nodes = [FakeNode(f"gw{i}", 20.0 if i == 0 else 1.0) for i in range(n_nodes)]
    collection = [f"t::{i}" for i in range(n_items)]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    now, busy_until, runs = 0.0, {}, Counter()
    last_run_on = {}
    for _ in range(3000):
        # A node runs its head only once it also has a next index (xdist's worker loop).
        for node in nodes:
            if node not in busy_until and len(node.queue) >= 2:
                head = node.queue[0]
                if n_items > 2 * n_nodes:  # spare items: never the same one back to back
                    assert last_run_on.get(node) != head, "same index back to back"
                running_elsewhere = [o for o in nodes if o is not node and o in busy_until
                                     and o.queue and o.queue[0] == head]
                assert not running_elsewhere, "index running twice"
                busy_until[node] = now + node.speed * rng.uniform(0.5, 1.5)
        queued = Counter(i for node in nodes for i in set(node.queue))
        if n_items > 1:
            assert max(queued.values(), default=0) <= 1, "index queued on two nodes"
        if not busy_until:
            pytest.fail(f"stall: queues {[n.queue for n in nodes]}")
        if n_items >= n_nodes and sum(runs.values()) > 4 * n_nodes:
            assert len(busy_until) == n_nodes, f"idle node: queues {[n.queue for n in nodes]}"
        node = min(busy_until, key=busy_until.get)
        now = busy_until.pop(node)
        done = node.queue.pop(0)
        last_run_on[node] = done
        runs[done] += 1
        sched.mark_test_complete(node, done)
    if n_items > 2 * n_nodes:  # P15: at exactly 2 per node each node keeps its own pair
        counts = [runs[i] for i in range(n_items)]
        # Few spare items leave the scheduler little choice; with more it evens out tightly.
        slack = max(counts) // (10 if n_items >= 3 * n_nodes else 4)
        assert max(counts) - min(counts) <= max(3, slack), counts


# The demo's collection (pytest --collect-only scenarios/): 8 keys, 1 to 5 items each.
DEMO_COLLECTION = [
    "scenarios/kubernetes/test_kubernetes.py::test_kubernetes",
    *[f"scenarios/openstack/test_{k}.py::test_{k}[{c}]"
      for k in ("ceph_migration", "image_rotation", "server_lifecycle", "volume_features")
      for c in ("mitaka", "newton", "pike")],
    "scenarios/test_performance.py::test_performance",
    *[f"scenarios/test_tenancy.py::test_tenancy[Vancouver-{t}]"
      for t in ("OM", "ON", "OP", "KU", "VM")],
    "scenarios/vmware/test_vmware.py::test_vmware",
]


@pytest.mark.parametrize("n_nodes", [2, 3, 5])
def test_first_round_starts_every_scenario_key_before_any_key_twice(n_nodes):
    """A short demo must reach every scenario: starts go round-robin over the keys (modules),
    then over their tenants, so the first 8 starts are the 8 keys and every item starts once
    before any item starts twice. Iterations of one length here (each node a little slower
    than the one before): with iterations of different lengths, a node's next item is
    committed before its current one ends, which is as far as the workers allow."""
    sched = EndlessScheduling(None, None, FakeStopper(), numnodes=n_nodes)
    nodes = [FakeNode(f"gw{i}", 1.0 + 0.01 * i) for i in range(n_nodes)]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, DEMO_COLLECTION)
    sched.schedule()
    now, busy_until, order = 0.0, {}, []
    while len(order) < 3 * len(DEMO_COLLECTION):
        for node in nodes:
            if node not in busy_until and len(node.queue) >= 2:
                order.append(node.queue[0])
                busy_until[node] = now + node.speed
        node = min(busy_until, key=busy_until.get)
        now = busy_until.pop(node)
        sched.mark_test_complete(node, node.queue.pop(0))
    keys = [DEMO_COLLECTION[i].split("::")[0] for i in order]
    assert len(set(keys[:8])) == 8, keys[:8]
    first_repeat = next(n for n, i in enumerate(order) if i in order[:n])
    assert sorted(order[:first_repeat]) == list(range(len(DEMO_COLLECTION))), order


def test_pacer_hands_out_round_robin_over_keys_then_their_items():
    keys = ["a", "a", "a", "b", "c", "c"]
    pacer = Pacer([0.0] * 6, clock=Clock(), keys=keys)
    got = []
    for _ in range(6):
        i = pacer.order(range(6))[0]
        pacer.handed_out(i)
        got.append(i)
    assert [keys[i] for i in got] == ["a", "b", "c", "a", "c", "a"]
    assert sorted(got) == list(range(6))


# --------------------------------------------------------------------------- the Pacer

class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_pacer_decides_when_an_item_may_start():
    clock = Clock()
    pacer = Pacer([0.0, 10.0, 0.0], clock=clock)
    assert all(pacer.due(i) for i in range(3))           # never started: due at once
    assert pacer.handed_out(1) == 1                       # queued, round 1: not started yet
    assert pacer.due(1)
    pacer.started(1, clock.t)                             # its node starts it
    assert not pacer.due(1) and pacer.wait_s(1) == 10.0
    pacer.started(1, clock.t + 2)                         # its setup report: the real start
    clock.t += 11
    assert pacer.wait_s(1) == pytest.approx(1.0)
    pacer.started(1, clock.t - 100)                       # an older report never moves it back
    assert pacer.wait_s(1) == pytest.approx(1.0)
    assert pacer.next_due_at([1]) == pytest.approx(1012.0)
    clock.t += 1
    assert pacer.due(1)
    assert pacer.start_now(0) == 1 and pacer.due(0)       # unpaced: always due


def test_pacer_order_due_first_then_fairness():
    clock = Clock()
    pacer = Pacer([5.0, 0.0, 0.0, 0.0], clock=clock)
    pacer.start_now(0)
    pacer.start_now(1)
    # 0 is not due; among due ones: not the node's own last item, then least handed out.
    assert pacer.order(range(4), avoid=2) == [3, 1, 2, 0]
    clock.t += 5
    assert pacer.order(range(4))[:2] == [2, 3]            # 0 and 1 were handed out once
    assert pacer.round == 0
    pacer.start_now(2)
    pacer.start_now(3)
    assert pacer.round == 1


def test_pacer_wait_turn_stops_early():
    clock = Clock()
    pacer = Pacer([60.0], clock=clock)
    pacer.start_now(0)
    slept = []
    assert pacer.wait_turn(0, should_stop=lambda: len(slept) >= 3, sleep=slept.append) is False
    assert slept == [0.1, 0.1, 0.1]

    def advance(s):
        clock.t += 30
    assert pacer.wait_turn(0, should_stop=lambda: False, sleep=advance) is True


def test_scheduler_starts_paced_items_only_when_due():
    """The scheduler asks the Pacer. A worker starts its head when it receives the next index,
    so a node gets an index only when its head is due: a copy queued behind itself waits its
    interval, a wake-up is requested for then, and the waiting node is served at that time."""
    clock = Clock()
    wakes = []
    sched = EndlessScheduling(None, None, FakeStopper(), numnodes=1,
                              intervals_of=lambda ids: [10.0], wake_at=wakes.append)
    node = FakeNode("gw0", 1.0)
    sched.add_node(node)
    sched.add_node_collection(node, ["scenarios/test_p.py::t"])
    sched.schedule()
    sched.pacer.clock = clock
    sched.pacer.last_start[0] = clock.t       # the first copy starts now
    assert node.queue == [0, 0]               # alone: the first run is not delayed
    node.queue.pop(0)
    sched.mark_test_complete(node, 0)         # the copy is now the head: not due yet
    assert node.queue == [0] and wakes == [pytest.approx(clock.t + 10)]
    clock.t += 5
    sched.wake()
    assert node.queue == [0]
    clock.t += 5
    sched.wake()                              # due: the next index lets the copy start
    assert node.queue == [0, 0] and sched.pacer.last_start[0] == clock.t


def test_parse_duration():
    assert parse_duration("30s") == 30
    assert parse_duration("10m") == 600
    assert parse_duration("2h") == 7200
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90
    for bad in ("", "0s", "-5s", "10x", "m", "5m5m", "ten"):
        with pytest.raises(pytest.UsageError, match="--duration"):
            parse_duration(bad)


def test_memory_guard_prunes_finalizers_and_stats(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "demo.yaml").write_text(demo_yaml({"m": 0}))
    (tmp_path / "test_m.py").write_text(textwrap.dedent("""\
        import pytest

        @pytest.fixture
        def under_session(sess):  # pytest #4871: leaves a finalizer on `sess` every time
            yield

        @pytest.mark.parametrize("n", range(3))
        def test_m(n, under_session, request):
            tr = request.config.pluginmanager.getplugin("terminalreporter")
            finalizers = len(request._get_active_fixturedef("sess")._finalizers)
            kept = len(set(map(id, tr.stats.get("passed", []))))
            with open("sizes.log", "a") as f:
                f.write(f"{finalizers} {kept}\\n")
    """))
    sizes_log = tmp_path / "sizes.log"
    proc = start(tmp_path, "--count=0", "--endless-trim-every", "50")
    try:
        wait_for(proc, lambda: sizes_log.exists() and
                 sizes_log.read_text().count("\n") > 300, 120, "300 results")
        proc.send_signal(signal.SIGINT)
        out = finish(proc, 60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    sizes = [tuple(map(int, x.split())) for x in sizes_log.read_text().split("\n") if x]
    assert len(sizes) > 300
    assert max(f for f, _ in sizes) <= 60  # pruned every 50 results, not one per test forever
    assert max(k for _, k in sizes[-50:]) <= 60  # distinct passed reports kept stay bounded
