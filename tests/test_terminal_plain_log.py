"""The plain console for CI logs (fixtures/reporting/terminal.py, PlainLog): [event] lines in
the order they happened, the [live] block only when it changed, on captured output."""
from __future__ import annotations

import threading

from fixtures.dashboard.state import RunState
from fixtures.reporting import events as ev
from fixtures.reporting.terminal import PlainLog, TerminalView

NID = "scenarios/openstack/test_image_rotation.py::test_rotate[Vancouver-ON]"
T0 = 1_790_000_000.0


def _happening(subject: str, ts: float, worker: str) -> ev.Happening:
    return ev.Happening(what="image_created", subject=subject, nodeid=NID, worker=worker, ts=ts)


def test_events_print_in_the_order_they_happened_not_of_arrival():
    state = RunState()
    # gw1's live event arrives first; gw0's two, earlier, arrive with its phase report.
    state(_happening("img-c", T0 + 3, "gw1"))
    state(_happening("img-a", T0 + 1, "gw0"))
    state(_happening("img-b", T0 + 2, "gw0"))
    out: list[str] = []
    log = PlainLog(out.append)
    log.flush(state.snapshot())
    events = [line for line in out if line.startswith("[event]")]
    assert [e.rsplit(" ", 1)[1] for e in events] == ["img-a", "img-b", "img-c"], events
    stamps = [e.split()[1] for e in events]
    assert stamps == sorted(stamps)
    out.clear()
    log.flush(state.snapshot())
    assert not [line for line in out if line.startswith("[event]")]   # nothing twice


def test_live_block_only_when_counters_or_steps_change():
    state = RunState()
    state(ev.StepStart(name="upload image", step=0, nodeid=NID, worker="gw0"))
    out: list[str] = []
    log = PlainLog(out.append)
    log.flush(state.snapshot())
    first = [line for line in out if line.startswith("[live]")]
    assert any("gw0" in line and "upload image" in line for line in first), first
    out.clear()
    log.flush(state.snapshot())          # the step's seconds moved on; nothing else
    assert out == []
    state(ev.TestResult(outcome="passed", duration_s=2.0, nodeid=NID, worker="gw0"))
    log.flush(state.snapshot())
    assert any(line.startswith("[live] image_rotation: 1 iterations, 1 passed") for line in out)
    out.clear()
    log.flush(state.snapshot(), final=True)   # the end of the run: the last figures, always
    assert any(line.startswith("[live] image_rotation: 1 iterations") for line in out)


class _Tr:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def test_plain_view_of_an_unchanging_run_prints_the_block_twice_start_and_end():
    """Many flushes of the same figures (a long step): the block at the first and at the
    end, none between."""
    state = RunState()
    state(ev.StepStart(name="long step", step=0, nodeid=NID, worker="gw0"))
    calls, enough = [0], threading.Event()

    def snapshot() -> dict:
        calls[0] += 1
        if calls[0] >= 5:
            enough.set()
        return state.snapshot()

    tr = _Tr()
    view = TerminalView(snapshot, "Vancouver demo: reports x", tr, rich=False,
                        plain_every_s=0.01).start()
    assert enough.wait(30)
    view.stop()
    blocks = [line for line in tr.lines if line.startswith("[live] gw0")]
    assert len(blocks) == 2, tr.lines


def test_an_iteration_cut_by_the_stop_counts_as_aborted_not_failed():
    """results.jsonl and index.html call an iteration the stop cut short "aborted"; the live
    counters say the same (a new user saw "0 passed, 1 failed" for it)."""
    state = RunState()
    state(ev.TestResult(outcome="aborted", duration_s=5.0, nodeid=NID, worker="gw0"))
    state(ev.TestResult(outcome="failed", duration_s=5.0, nodeid=NID, worker="gw1"))
    (sc,) = state.snapshot()["scenarios"]
    assert (sc["iterations"], sc["failed"], sc["aborted"]) == (2, 1, 1)
    out: list[str] = []
    PlainLog(out.append).flush(state.snapshot(), final=True)
    assert any(line.startswith("[live] image_rotation: 2 iterations, 0 passed, 1 failed, "
                               "0 outage, 1 aborted, ") for line in out), out
