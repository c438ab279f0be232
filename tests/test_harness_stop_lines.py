"""fixtures/endless/farewell.py: the last line of a run a signal stopped is ours. An aborted
xdist run ended on "!!! xdist.dsession.Interrupted: aborted: second stop signal !!!" (pytest's
summary of the exception xdist's DSession raised); the words now say who stopped the run and
what the stop cut and cleaned. The inner runs that show it: tests/test_harness_endless_stop.py.
"""
from __future__ import annotations

from types import SimpleNamespace

from fixtures.endless.farewell import StopTally, interrupted_text, stopped_by
from fixtures.endless.stop import STOP_ABORT, STOP_GRACEFUL


def test_who_stopped_the_run_in_the_operators_terms():
    assert stopped_by(STOP_GRACEFUL, "Ctrl-C") == "run stopped by the user (Ctrl-C)"
    assert stopped_by(STOP_GRACEFUL, "SIGTERM") == "run stopped by SIGTERM"
    assert stopped_by(STOP_GRACEFUL, "duration reached") is None   # no signal: no line
    assert stopped_by(STOP_ABORT, "second signal (Ctrl-C)") == \
        "run aborted by the user (second Ctrl-C)"
    assert stopped_by(STOP_ABORT, "second signal (SIGTERM)") == \
        "run aborted by SIGTERM (a second stop signal)"
    assert stopped_by(STOP_ABORT, "signal after the duration (SIGHUP)") == \
        "run aborted by SIGHUP after --duration"


def test_the_interrupted_text_is_ours_and_keeps_what_else_it_said():
    ours = "run aborted by the user (second Ctrl-C)"
    for xdist_said in ("aborted: second stop signal", "<WorkerController gw0> received "
                       "keyboard-interrupt", ""):
        text = interrupted_text(STOP_ABORT, "second signal (Ctrl-C)", xdist_said)
        assert text == ours and "xdist" not in text
    # Something else than our abort is not hidden.
    assert interrupted_text(STOP_ABORT, "second signal (Ctrl-C)", "stopping after 3 failures") \
        == f"{ours}; stopping after 3 failures"


def _report(when="teardown", failed=False, cut=None, longrepr="", deleted=0):
    events = [{"kind": "resource_deleted", "kind_of": "volume", "id": str(i)}
              for i in range(deleted)] + [{"kind": "step_end"}]
    r = SimpleNamespace(when=when, failed=failed, longrepr=longrepr, vancouver_events=events)
    if cut:
        r.vancouver_cut = cut
    return r


def test_the_last_line_says_what_the_stop_cut_and_cleaned():
    tally = StopTally()
    tally.note(_report("call", deleted=2))
    tally.note(_report(cut="second signal (Ctrl-C)", failed=True, deleted=3,
                       longrepr="aborted: second signal (Ctrl-C)"))
    tally.note(_report(cut="second signal (Ctrl-C)", failed=True,
                       longrepr="aborted: x; teardown: DateraError: HTTP 409"))
    assert tally.last_line(STOP_ABORT, "second signal (Ctrl-C)") == (
        "[vancouver] run aborted by the user (second Ctrl-C): 2 running iterations cut "
        "(recorded as aborted), torn down with 1 teardown error (see the report); "
        "5 resources deleted since the stop")
    calm = StopTally()
    calm.note(_report(deleted=1))
    assert calm.last_line(STOP_GRACEFUL, "SIGTERM") == (
        "[vancouver] run stopped by SIGTERM: running iterations finished, torn down; "
        "1 resource deleted since the stop")
    assert calm.last_line(STOP_GRACEFUL, "duration reached") is None
    calm.gave_up = True
    assert "teardown perhaps cut" in calm.last_line(STOP_ABORT, "second signal (SIGTERM)")
