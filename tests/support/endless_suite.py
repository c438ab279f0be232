"""Inner endless runs for the harness tests (tests/test_harness_endless*.py): a small scenario
suite written into a tmp dir and run by pytest in a subprocess (VANCOUVER_TARGET points at a
dummy so no lab ever starts). The generated tests append "<event> <what> <worker> <time>" lines
to events.log, from which overlaps, rounds and setup/teardown balance are checked; an ended
run's proof (report parts, index.html, results.jsonl) is checked against them.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests.support.inner_run import demo_yaml, env

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

@pytest.fixture
def note():
    # event() for a test body, to say what the iteration is doing
    return event

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


class Watched:
    """A pytest run whose output lines are read as they come, to send signals at known points.
    As a context manager: a run still going when the block ends (a failed wait) is killed with
    its process group, so no test leaves an endless run behind."""

    def __init__(self, proc: subprocess.Popen):
        import threading
        self.proc, self.lines = proc, []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def __enter__(self) -> "Watched":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)

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
