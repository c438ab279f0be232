"""lab/kubernetes/processes.py on plain processes: a control-plane program that keeps dying is
restarted within the supervisor's restart limits (lab/restart.py, from the environment, so a
bench or test can shorten them as it does the supervisor's), then the node process gives up."""
import time

import pytest

from lab.kubernetes.processes import GaveUp, Processes

DEADLINE_S = 30


def _check_until_gave_up(procs: Processes) -> tuple[str, int]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            procs.check()
        except GaveUp as e:
            return str(e), len(procs.programs["dies"].restarts)
        time.sleep(0.02)
    raise AssertionError(f"no GaveUp within {DEADLINE_S}s")


@pytest.mark.parametrize("burst", [1, 2])
def test_a_program_that_keeps_dying_gives_up_past_the_environments_burst(
        tmp_path, monkeypatch, burst):
    monkeypatch.setenv("VANCOUVER_LAB_RESTART_BURST", str(burst))
    monkeypatch.setenv("VANCOUVER_LAB_RESTART_INTERVAL_S", "60")
    procs = Processes(tmp_path / "logs", tmp_path)
    procs.start("dies", ["sh", "-c", "exit 3"])
    try:
        why, restarts = _check_until_gave_up(procs)
    finally:
        procs.stop(5)
    assert restarts == burst
    assert why.startswith(f"dies exited with status 3 {burst + 1} times within 60s "), why


def test_a_bad_restart_limit_in_the_environment_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("VANCOUVER_LAB_RESTART_INTERVAL_S", "soon")
    with pytest.raises(ValueError, match=r"^VANCOUVER_LAB_RESTART_INTERVAL_S='soon': "
                                         r"expected a number$"):
        Processes(tmp_path / "logs", tmp_path)
