"""The endless run rides out a Datera outage (issue 13 item 3), end to end: a bounded
`-n 2 --count=0 --duration` run of the tenancy scenario (ci profile) against a lab of its own
(net 127.225) whose Datera process is stopped (SIGSTOP) for 10 s while both workers are
inside scenario steps. Fixed net: run under the lock of tests/support/labcli.py's nets."""
import time

import pytest

from tests.support.outage_run import (BACK, WAITING, datera_pid, leftovers, own_lab,
                                      run_with_fault, stopped)

# timeout: the inner run's own limit is 600 s (pytest.ini: 300 s)
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.timeout(900)]
NET = "127.225"
OUTAGE_S = 10.0   # the outage itself: the stimulus, not a wait for a condition


@pytest.fixture(scope="module")
def outage_lab(tmp_path_factory):
    with own_lab(tmp_path_factory, NET, "datera") as lab:
        yield lab


def test_datera_stopped_mid_run_pauses_resumes_and_exits_0(outage_lab, tmp_path):
    def stop(_lines):
        with stopped(datera_pid(outage_lab)):
            time.sleep(OUTAGE_S)
    run = run_with_fault(outage_lab, tmp_path, stop, duration="75s")
    lines, out = run.lines, run.text
    assert run.returncode == 0, out[-6000:]

    waiting = [m for ln in lines if (m := WAITING.match(ln))]
    per_worker = {w: sum(1 for m in waiting if m.group(1) == w) for w in ("gw0", "gw1")}
    # Each worker inside an iteration saw the outage, and said so once (not once per retry).
    assert per_worker == {"gw0": 1, "gw1": 1}, out[-6000:]
    assert all(m.group(3) in ("timed out", "connection refused", "connection reset")
               for m in waiting), waiting
    assert {m.group(1) for ln in lines if (m := BACK.match(ln))} == {"gw0", "gw1"}

    results = run.results
    assert results and not [r for r in results if r["outcome"] not in ("passed", "outage")]
    for r in run.outages:
        assert r["outage"]["platform"] == "datera" and r["outage"]["resumed"]
        assert 0 < r["outage"]["duration_s"] < 60
    outages = [e for e in run.events if e["kind"] == "outage"]
    assert {e["state"] for e in outages} == {"down", "back"}, outages
    back = max(e["ts"] for e in outages if e["state"] == "back")
    # It resumed: iterations went on after the platform was back.
    assert [e for e in run.events if e["kind"] == "step_start" and e["ts"] > back]
    if run.outages:  # endless runs write report parts
        assert any("Outage (not a failure" in p.read_text()
                   for p in tmp_path.glob("report*.html"))
        assert ">outage<" in (tmp_path / "index.html").read_text()
    assert leftovers(outage_lab) == []
