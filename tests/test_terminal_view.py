"""fixtures/reporting/terminal.py: the operator's live table (rich) and its plain-line form
for logs, rendered from the run state; inner runs show where it goes on screen."""
from __future__ import annotations

import io

from rich.console import Console

from fixtures.dashboard.state import RunState
from fixtures.reporting import events as ev
from fixtures.reporting.terminal import plain_lines, scenario_table, worker_table
from tests.support.inner_run import release_all, start as _inner

NID = "scenarios/openstack/test_image_rotation.py::test_rotate[Vancouver-ON]"


def _state() -> RunState:
    state = RunState()
    state(ev.TestResult(outcome="passed", duration_s=12.5, nodeid=NID, worker="gw0"))
    state(ev.TestResult(outcome="failed", duration_s=3.0, nodeid=NID, worker="gw0"))
    state(ev.StepStart(name="upload image", step=0, nodeid=NID, worker="gw1"))
    return state


def test_rich_tables_show_counts_rate_last_duration_and_current_step():
    snap = _state().snapshot()
    out = io.StringIO()
    console = Console(file=out, width=140, color_system=None)
    console.print(scenario_table(snap))
    console.print(worker_table(snap))
    text = out.getvalue()
    row = next(line for line in text.splitlines() if "image_rotation" in line)
    assert row.split()[1:5] == ["│", "openstack", "│", "2"], row
    assert "3.0" in row and "Vancouver-ON" in row
    worker = next(line for line in text.splitlines() if "gw1" in line)
    assert "test_rotate[Vancouver-ON]" in worker and "upload image" in worker


def test_plain_lines_name_scenario_figures_and_worker_steps():
    lines = plain_lines(_state().snapshot())
    assert lines[0].startswith("[live] image_rotation: 2 iterations, 1 passed, 1 failed, ")
    assert lines[0].endswith("last 3.0 s")
    assert any(line.startswith(f"[live] gw1: {NID} > upload image (") for line in lines)


def test_not_a_terminal_gives_plain_lines_after_the_where_line(tmp_path):
    release_all(tmp_path)
    proc = _inner(tmp_path, "-n", "2", "--live-view", "plain")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("Vancouver demo: reports "), lines[0]
    assert lines[0].endswith("reports/index.html")
    assert "[live] live: 2 iterations, 2 passed, 0 failed, " in out
    assert "\x1b[" not in out  # nothing redrawn in a log


def test_rich_view_draws_the_table_on_a_terminal(tmp_path):
    release_all(tmp_path)
    proc = _inner(tmp_path, "-n", "2", "--live-view", "rich")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert out.splitlines()[0].startswith("Vancouver demo: reports ")
    assert "current step" in out and "iterations" in out and "rate/min" in out
    assert "2 passed" in out  # pytest's own summary still comes after the table
