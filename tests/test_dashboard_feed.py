"""fixtures/dashboard/state.py: the event feed's lines per happening (images created and
rotated, volumes migrated from Ceph and retyped, pods and VMs started and removed), QoS
changes kept at the scenario's API call time for the volume charts' markers, and the
performance piece's fio results apart from every other scenario's."""
import pytest

from fixtures.dashboard.state import HAPPENING_TEXT, QOS_CHANGES_MAX, RunState
from fixtures.reporting import events as ev
from fixtures.reporting.bus import Outbox, unpack

NID = "scenarios/openstack/test_server_lifecycle.py::test_server_lifecycle[pike]"


def test_every_happening_has_its_feed_line():
    state = RunState()
    for what in ev.HAPPENINGS:
        state(ev.Happening(what=what, subject=f"thing-{what}", detail="pike", nodeid=NID,
                           worker="gw1"))
    lines = {e["kind"]: e["text"] for e in state.snapshot()["feed"]}
    assert set(lines) == set(ev.HAPPENINGS) == set(HAPPENING_TEXT)
    assert lines["volume_migrated"] == \
        "volume migrated from Ceph to Datera: thing-volume_migrated (pike)"
    assert lines["image_rotated"].startswith("image rotated out: ")


def test_an_unknown_happening_is_refused_with_one_line():
    with pytest.raises(ValueError, match="happening: unknown kind 'volume_exploded'"):
        ev.Happening(what="volume_exploded", subject="v")


def test_happening_and_qos_change_cross_the_channel_unchanged():
    class Report:   # what Outbox.pack writes onto (a TestReport stand-in)
        pass
    outbox, report = Outbox("gw0"), Report()
    sent = [ev.Happening(what="pod_started", subject="ns/fio", nodeid=NID),
            ev.QosChange(volume="u-1", tenant="/root/Vancouver-OP", before=500, after=2000,
                         ts=1000.5, nodeid=NID)]
    for e in sent:
        outbox.emit(e)
    outbox.pack(report)
    got = unpack(report)
    assert [type(e) for e in got] == [ev.Happening, ev.QosChange]
    assert got[1].ts == 1000.5 and (got[1].before, got[1].after) == (500, 2000)
    assert got[0].worker == "gw0" and got[0].subject == "ns/fio"


def test_qos_change_marks_the_api_call_time_and_stays_bounded():
    state = RunState()
    state(ev.QosChange(volume="vol-a", tenant="/root/Vancouver-OM", before=500, after=2000,
                       ts=1234.25, nodeid=NID, worker="gw3"))
    snap = state.snapshot()
    assert snap["qos_changes"]["vol-a"] == [{"t": 1234.25, "from": 500.0, "to": 2000.0}]
    assert snap["feed"][-1]["kind"] == "qos" and "500 -> 2000 IOPS" in snap["feed"][-1]["text"]
    for i in range(QOS_CHANGES_MAX + 20):
        state(ev.QosChange(volume=f"v{i}", before=1, after=2, nodeid=NID, worker="gw3"))
    assert len(state.snapshot()["qos_changes"]) == QOS_CHANGES_MAX


def test_the_performance_piece_has_its_own_panel():
    state = RunState()
    perf = "scenarios/test_performance.py::test_performance"
    state(ev.FioResult(name="4k randread", row={"iops": 9000}, nodeid=perf, worker="gw0"))
    state(ev.FioResult(name="guest data", row={"iops": 480}, nodeid=NID, worker="gw1"))
    snap = state.snapshot()
    assert snap["performance"] == {"4k randread": [{"ts": snap["performance"]["4k randread"][0]
                                                    ["ts"], "param": "", "iops": 9000}]}
    assert "performance" not in snap["fio"] and "server_lifecycle" in snap["fio"]


@pytest.mark.parametrize("state, text", [
    ("down", "OpenStack Pike (Keystone) at http://127.0.3.1:5000/v3 not answering: timed out"),
    ("back", "OpenStack Pike (Keystone) back after 7.5 s"),
    ("stopped", "OpenStack Pike (Keystone) still not answering when the run stopped "
                "(8 s down, timed out)")])
def test_every_outage_state_has_its_feed_line(state, text):
    """The outage plugin's three states (events.py): a stop while waiting is a line too."""
    run = RunState()
    run(ev.Outage(platform="openstack-pike", label="OpenStack Pike (Keystone)",
                  endpoint="http://127.0.3.1:5000/v3", reason="timed out", state=state,
                  duration_s=7.5, nodeid=NID, worker="gw2"))
    line = run.snapshot()["feed"][-1]
    assert (line["kind"], line["text"], line["worker"]) == ("outage", text, "gw2")
