"""The live counters (the [live] lines, the terminal table, the dashboard: RunState) count an
item as soon as pytest prints its result line, not only after its teardown: a scenario's
teardown (its deletions) takes seconds, and a new user saw the [live] counters one result
behind the PASSED lines just above them. The item's test_result, after the teardown, then
takes the place of what was counted (a teardown error turns a pass into a failure)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from fixtures.dashboard.state import RunState
from fixtures.reporting import events as ev
from fixtures.reporting.results import TestResults
from fixtures.waiters import wait_until
from tests.support.inner_run import CONFTEST, DEMO_YAML, NO_HYPOTHESIS, env

NID = "scenarios/test_live.py::test_live"

# The result line is printed at the call phase; the teardown then holds until released.
HELD_TEARDOWN_TEST = """\
import pathlib, time
import pytest

@pytest.fixture
def held_teardown():
    yield
    gate = pathlib.Path("release-teardown")
    deadline = time.time() + 60
    while not gate.exists() and time.time() < deadline:
        time.sleep(0.05)

def test_live(held_teardown, proof):
    with proof.step("work"):
        pass
"""


def _report(when: str, outcome: str, worker: str = "gw0") -> pytest.TestReport:
    rep = pytest.TestReport(nodeid=NID, location=("", None, ""), keywords={},
                            outcome=outcome, longrepr=None, when=when, duration=1.0)
    rep.worker_id = worker
    return rep


def _feed(results: TestResults, state: RunState, report) -> None:
    """What the reporting plugin does with a phase report in the controller."""
    for event in (results.shown(report), results.add(report)):
        if event is not None:
            state(event)


def _counts(state: RunState) -> tuple[int, int, int]:
    (sc,) = state.snapshot()["scenarios"]
    return sc["iterations"], sc["passed"], sc["failed"]


def test_a_pass_counts_at_its_result_line_and_once_after_its_teardown():
    results, state = TestResults(), RunState()
    _feed(results, state, _report("setup", "passed"))
    assert not state.scenarios   # a passed setup prints no result line
    _feed(results, state, _report("call", "passed"))
    assert _counts(state) == (1, 1, 0)   # the teardown still runs
    _feed(results, state, _report("teardown", "passed"))
    assert _counts(state) == (1, 1, 0)


def test_a_teardown_error_turns_the_counted_pass_into_a_failure():
    results, state = TestResults(), RunState()
    for when, outcome in (("setup", "passed"), ("call", "passed")):
        _feed(results, state, _report(when, outcome))
    assert _counts(state) == (1, 1, 0)
    _feed(results, state, _report("teardown", "failed"))
    assert _counts(state) == (1, 0, 1)


@pytest.mark.parametrize("outcome,expected", [("failed", (1, 0, 1)), ("skipped", (1, 0, 0))])
def test_a_setup_that_did_not_pass_counts_at_once(outcome, expected):
    results, state = TestResults(), RunState()
    _feed(results, state, _report("setup", outcome))
    assert _counts(state) == expected
    _feed(results, state, _report("teardown", "passed"))
    assert _counts(state) == expected


def test_two_workers_on_one_scenario_are_counted_apart():
    results, state = TestResults(), RunState()
    for worker in ("gw0", "gw1"):
        _feed(results, state, _report("setup", "passed", worker))
    _feed(results, state, _report("call", "passed", "gw0"))
    _feed(results, state, _report("call", "failed", "gw1"))
    assert _counts(state) == (2, 1, 1)
    _feed(results, state, _report("teardown", "passed", "gw1"))
    _feed(results, state, _report("teardown", "passed", "gw0"))
    assert _counts(state) == (2, 1, 1)


def test_shown_changes_nothing_that_add_then_folds():
    results = TestResults()
    results.add(_report("setup", "passed"))
    call = _report("call", "passed")
    assert results.shown(call).outcome == "passed"
    results.add(call)
    result = results.add(_report("teardown", "passed"))
    assert result.duration_s == 3.0 and result.phases == {
        "setup": "passed", "call": "passed", "teardown": "passed"}


@pytest.mark.parametrize("workers", [["-n", "1"], []], ids=["xdist", "one-process"])
def test_the_dashboard_counts_a_result_already_printed_while_its_teardown_runs(
        tmp_path, workers):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "demo.yaml").write_text(DEMO_YAML)
    (tmp_path / "test_live.py").write_text(HELD_TEARDOWN_TEST)
    e = env()
    e["PYTEST_ADDOPTS"] = NO_HYPOTHESIS
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
                             "--demo-config", "demo.yaml", "--demo-profile", "ci", *workers,
                             "--dashboard", "127.0.0.1:0", "--live-view", "plain"],
                            cwd=tmp_path, env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        # Unbuffered reads: one process ends the PASSED line ("[100%]") only after teardown.
        seen = b""
        while b"PASSED" not in seen:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, seen.decode()
            seen += chunk
        first = seen.decode().splitlines()[0]
        assert first.startswith("Vancouver demo: dashboard http://127.0.0.1:"), first
        url = first.split()[3]

        def live():
            run = json.loads(urllib.request.urlopen(url + "api/state", timeout=5).read())["run"]
            return run["scenarios"][0] if run["scenarios"] else {}
        # The teardown holds: the line above is printed, the test_result not yet made.
        wait_until(lambda: live().get("passed") == 1, 10,
                   "the printed PASSED in the live counters")
        assert live()["iterations"] == 1
        (tmp_path / "release-teardown").write_text("")
        out = seen.decode() + proc.communicate(timeout=60)[0].decode()
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "[live] live: 1 iterations, 1 passed, 0 failed" in out, out
