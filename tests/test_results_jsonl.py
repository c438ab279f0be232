"""fixtures/reporting/results.py: what results.jsonl says of an iteration that did not pass
(its reason), and of a step name that came more than once (their total). Found by a booth
trial: a skipped iteration had no reason in the file (only in the HTML), and of two waits of
20.5 s and 15.0 s under one name the file kept 15.0."""
from __future__ import annotations

import json

import pytest

from fixtures.reporting import events as ev
from fixtures.reporting.results import REASON_MAX, JsonlWriter, TestResults

NID = "scenarios/test_tenancy.py::test_tenancy[Vancouver-OM]"


def _report(when: str, outcome: str, longrepr=None) -> pytest.TestReport:
    rep = pytest.TestReport(nodeid=NID, location=("", None, ""), keywords={},
                            outcome=outcome, longrepr=longrepr, when=when, duration=1.0)
    rep.worker_id = "gw0"
    return rep


def _written(tmp_path, reports, events=()) -> dict:
    writer, results = JsonlWriter(tmp_path, "run-1"), TestResults()
    for event in events:
        writer(event)
    for report in reports:
        result = results.add(report)
        if result is not None:
            writer(result)
    writer.close()
    (line,) = (tmp_path / "results.jsonl").read_text().splitlines()
    return json.loads(line)


def test_a_skip_says_why(tmp_path):
    why = "stop requested while waiting 4s for the QoS window of /root/Vancouver-OM"
    record = _written(tmp_path, [
        _report("setup", "passed"),
        _report("call", "skipped", ("fixtures/window_wait.py", 155, f"Skipped: {why}")),
        _report("teardown", "passed")])
    assert record["outcome"] == "skipped" and record["reason"] == why


def test_a_failure_says_its_first_error_line_bounded(tmp_path):
    long = "x" * (REASON_MAX + 50)
    text = f"def test():\n>       assert volume.iops > 900\nE       AssertionError: {long}\n" \
           "E       assert 512 > 900\n"
    record = _written(tmp_path, [_report("setup", "passed"), _report("call", "failed", text),
                                 _report("teardown", "passed")])
    assert record["outcome"] == "failed"
    assert record["reason"] == f"AssertionError: {long}"[:REASON_MAX]


def test_a_pass_has_no_reason(tmp_path):
    record = _written(tmp_path, [_report(w, "passed") for w in ("setup", "call", "teardown")])
    assert "reason" not in record


def test_a_step_name_that_came_again_is_their_total(tmp_path):
    wait = "waiting for the QoS window of /root/Vancouver-ON"
    steps = [ev.StepEnd(nodeid=NID, worker="gw0", name=wait, step=1, duration_s=20.52,
                        outcome="waited"),
             ev.StepEnd(nodeid=NID, worker="gw0", name="create volumes", step=2,
                        duration_s=3.0, outcome="passed"),
             ev.StepEnd(nodeid=NID, worker="gw0", name=wait, step=3, duration_s=15.04,
                        outcome="waited")]
    record = _written(tmp_path, [_report(w, "passed") for w in ("setup", "call", "teardown")],
                      steps)
    assert record["steps"] == {wait: 35.56, "create volumes": 3.0}
