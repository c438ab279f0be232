"""fixtures/dashboard/: the live channel (workers -> controller, each event once), the run
state the views read, the dashboard server (SSE to many viewers, port in use), the Datera
metrics notice. Inner runs use a dummy target (no lab); the browser test is
tests/test_dashboard_browser.py.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request

import pytest

from fixtures.dashboard import topology
from fixtures.dashboard.channel import LiveReceiver, LiveSender
from fixtures.dashboard.datera_metrics import DateraMetrics
from fixtures.dashboard.server import DashboardServer, bind, parse_address
from fixtures.dashboard.state import FEED_MAX, FIO_HISTORY, RunState, scenario_of
from fixtures.reporting import events as ev
from fixtures.reporting.bus import EventBus, Outbox, packed
from fixtures.waiters import wait_until
from tests.support.inner_run import start as _inner



class Report:  # what Outbox.pack writes onto (a TestReport stand-in)
    pass


def collect(bus: EventBus) -> list:
    seen = []
    bus.subscribe(seen.append)
    return seen


# ------------------------------------------------------------------------ the live channel
def test_each_event_published_once_whichever_channel_brings_it_first():
    bus, outbox = EventBus(), Outbox("gw0")
    seen = collect(bus)
    live = []
    outbox.tap(live.append)
    for i in range(5):
        outbox.emit(ev.Figure(name="n", value=i))
    for wire in live[:3]:          # the live channel brought the first three
        assert bus.deliver(wire)
    report = Report()
    outbox.pack(report)            # the phase report carries all five
    published = [bus.deliver(w) for w in packed(report)]
    assert published == [False, False, False, True, True]
    for wire in live[3:]:          # late live copies are dropped
        assert not bus.deliver(wire)
    assert [e.value for e in seen] == [0, 1, 2, 3, 4]


def test_next_items_live_events_wait_for_the_current_items_report():
    """Endless rounds repeat a nodeid on one worker: round 2's live events must not reach the
    consumers before round 1's report (they would join round 1's report row)."""
    bus, outbox = EventBus(), Outbox("gw0")
    seen = collect(bus)
    live = []
    outbox.tap(live.append)
    outbox.nodeid = "scenarios/test_x.py::test_x"
    outbox.emit(ev.Figure(name="round", value=1))
    teardown = Report()
    teardown.when = "teardown"
    outbox.pack(teardown)                      # round 1 ends (its report is in flight)
    outbox.emit(ev.Figure(name="round", value=2))
    assert not bus.deliver(live[1], live=True)  # round 2, live, first: held
    assert seen == []
    for wire in packed(teardown):
        bus.deliver(wire)
    bus.publish(ev.TestResult(outcome="passed", duration_s=1.0, worker="gw0"))
    bus.close_item("gw0", teardown.vancouver_item)
    assert [getattr(e, "value", e.kind) for e in seen] == [1, "test_result", 2]


def test_live_channel_streams_events_in_order_over_loopback():
    bus = EventBus()
    seen = collect(bus)
    receiver = LiveReceiver(bus).start()
    try:
        outbox, sender = Outbox("gw3"), LiveSender(receiver.address)
        outbox.tap(sender)
        outbox.nodeid = "scenarios/test_x.py::test_x"
        for i in range(300):
            outbox.emit(ev.StepStart(name=f"step {i}", step=i))
        wait_until(lambda: len(seen) == 300, 10, "300 events over the live channel")
        assert [e.step for e in seen] == list(range(300))
        assert {(e.worker, e.nodeid) for e in seen} == {("gw3", "scenarios/test_x.py::test_x")}
        report = Report()
        outbox.pack(report)
        assert not any(bus.deliver(w) for w in packed(report))  # nothing twice
        sender.close()
    finally:
        receiver.close()


def test_sender_without_listener_stops_quietly_and_reports_carry_everything():
    with socket.socket() as s:     # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outbox, sender = Outbox("gw1"), LiveSender(f"127.0.0.1:{port}")
    outbox.tap(sender)
    for i in range(50):
        outbox.emit(ev.Figure(name="n", value=i))
    wait_until(lambda: sender.stopped, 10, "the sender to give up")
    outbox.emit(ev.Figure(name="n", value=50))  # emitting after the stop never raises
    report = Report()
    outbox.pack(report)
    bus = EventBus()
    seen = collect(bus)
    for w in packed(report):
        bus.deliver(w)
    assert [e.value for e in seen] == list(range(51))


# ------------------------------------------------------------------------ run state
def test_scenario_of_names_module_and_platform():
    assert scenario_of("scenarios/test_tenancy.py::test_tenancy[Vancouver-OM]") == \
        ("tenancy", "datera")
    assert scenario_of("scenarios/kubernetes/test_pods.py::test_pods") == ("pods", "kubernetes")
    assert scenario_of("scenarios/openstack/test_image_rotation.py::t[x]") == \
        ("image_rotation", "openstack")


def test_run_state_counts_steps_failures_and_stays_bounded():
    links = []
    state = RunState(report_link=lambda nodeid: links.append(nodeid) or "/reports/r.html")
    nid = "scenarios/vmware/test_vm_lifecycle.py::test_vm[Vancouver-VM]"
    state(ev.StepStart(name="power on", step=0, nodeid=nid, worker="gw2"))
    state(ev.StepStart(name="wait for tools", step=1, depth=1, nodeid=nid, worker="gw2"))
    snap = state.snapshot()
    assert snap["workers"][0]["step"] == "wait for tools"
    assert snap["workers"][0]["path"] == "power on > wait for tools"
    assert snap["scenarios"][0]["key"] == "vm_lifecycle"
    assert snap["scenarios"][0]["platform"] == "vmware"
    assert snap["scenarios"][0]["running"] == ["Vancouver-VM"]
    state(ev.TestResult(outcome="failed", duration_s=3.0, round=4, nodeid=nid, worker="gw2"))
    state(ev.TestResult(outcome="passed", duration_s=2.5, round=5, nodeid=nid, worker="gw2"))
    sc = state.snapshot()["scenarios"][0]
    assert (sc["passed"], sc["failed"], sc["iterations"]) == (1, 1, 2)
    assert sc["last_failure"]["link"] == "/reports/r.html" and links == [nid]
    assert state.snapshot()["workers"][0]["step"] == ""
    for i in range(FIO_HISTORY + 5):
        state(ev.FioResult(name="4k randread", row={"iops": i}, nodeid=nid, worker="gw2"))
    for i in range(FEED_MAX + 50):
        state(ev.ResourceCreated(kind_of="vm", id=str(i), nodeid=nid, worker="gw2"))
    rows = state.snapshot()["fio"]["vm_lifecycle"]["4k randread"]
    assert [r["iops"] for r in rows] == list(range(5, FIO_HISTORY + 5))
    assert len(state.feed) == FEED_MAX


# ------------------------------------------------------------------------ topology
def test_topology_finds_each_platform_under_its_component_and_marks_it_busy():
    """demo.yaml says platform `vmware`; the lab component and target section are `vsphere`.
    Busy: a running scenario parametrized by the tenant, by its release, or none (the
    kubernetes and vmware pieces have no parameter)."""
    from tests.support.recorded_run import COMPONENTS, TENANTS
    run = {"scenarios": [{"key": "vmware", "platform": "vmware", "running": [""]},
                         {"key": "server_lifecycle", "platform": "openstack",
                          "running": ["newton"]},
                         {"key": "tenancy", "platform": "datera", "running": ["Vancouver-OP"]}]}
    for components, sections in ((COMPONENTS, set()), (set(), {"vsphere", "openstack",
                                                                "kubernetes", "datera"})):
        nodes = {n["id"]: n for n in topology.build(TENANTS, components, sections, None,
                                                    run)["nodes"]}
        assert {nodes[p]["health"] for p in ("openstack-mitaka", "openstack-newton",
                                             "openstack-pike", "kubernetes", "vmware")} == {"ok"}
    busy = {n["id"] for n in topology.build(TENANTS, COMPONENTS, set(), None, run)["nodes"]
            if n["busy"]}
    assert busy == {"vmware", "openstack-newton", "openstack-newton-controller",
                    "openstack-newton-compute-1", "openstack-newton-compute-2",
                    "openstack-pike"}, busy


# ------------------------------------------------------------------------ server
def _sse_first(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url + "events", timeout=timeout) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        for line in resp:
            if line.startswith(b"data: "):
                return json.loads(line[6:])
    raise AssertionError("no data line")


def test_server_pushes_the_same_state_to_twenty_viewers():
    ticks = []

    def state():
        ticks.append(1)
        return {"run": {"n": len(ticks)}}
    server = DashboardServer(bind("127.0.0.1", 0), state).start()
    try:
        results, errors = [], []

        def view():
            try:
                results.append(_sse_first(server.url))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
        threads = [threading.Thread(target=view) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert not errors and len(results) == 20
        assert all("run" in r and "viewers" in r for r in results)
        page = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert "/assets/uPlot.iife.min.js" in page and "cdn" not in page.lower()
        doc = json.loads(urllib.request.urlopen(server.url + "api/state", timeout=5).read())
        assert "run" in doc
    finally:
        server.close()


def test_port_in_use_is_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=rf"^--dashboard 127.0.0.1:{port}: cannot listen "
                                             r"\(port in use\)$"):
            bind("127.0.0.1", port)
    with pytest.raises(ValueError, match="expected \\[HOST:\\]PORT"):
        parse_address("localhost:http")
    assert parse_address("8050") == ("127.0.0.1", 8050)
    assert parse_address("0.0.0.0:8050") == ("0.0.0.0", 8050)


def test_make_demo_first_line_before_setup_and_port_in_use_is_one_line(tmp_path):
    """`make demo` runs fixtures/dashboard/where.py with the system python3 before its setup
    checks: the run's where-line, or the run's one-line error for a port in use (exit 2)."""
    import subprocess
    import sys
    from tests.support.inner_run import ROOT
    index = tmp_path / "reports" / "index.html"
    where = [sys.executable, "-m", "fixtures.dashboard.where"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([*where, f"127.0.0.1:{port}", str(index)], cwd=ROOT,
                              capture_output=True, text=True, timeout=30)
        assert (proc.returncode, proc.stdout) == (2, ""), proc
        assert proc.stderr == (f"ERROR: --dashboard 127.0.0.1:{port}: cannot listen "
                               "(port in use)\n")
    proc = subprocess.run([*where, f"127.0.0.1:{port}", str(index)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc
    assert proc.stdout == (f"Vancouver demo: dashboard http://127.0.0.1:{port}/  reports "
                           f"{index}\n")
    # Under `make test` the environment carries the outer make's MAKELEVEL and MAKEFLAGS: a
    # make of its own, so its first line is the recipe's, not "Entering directory".
    own_make = {k: v for k, v in os.environ.items()
                if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")}
    recipe = subprocess.run(["make", "--no-print-directory", "-n", "demo",
                             "DASHBOARD=127.0.0.1:8050"], cwd=ROOT, env=own_make,
                            capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert recipe[0].startswith("python3 -m fixtures.dashboard.where 127.0.0.1:8050 "), recipe


def test_make_demo_first_line_names_the_report_and_address_pytest_args_give(tmp_path):
    """PYTEST_ARGS='--html ...' (or --dashboard) changes where the run writes (listens): the
    first line names the same place the run's own line will (a trial: it named ./reports)."""
    import subprocess
    import sys
    from tests.support.inner_run import ROOT
    where = [sys.executable, "-m", "fixtures.dashboard.where", "127.0.0.1:0",
             str(tmp_path / "reports" / "index.html")]
    for extra, index in ((["--html=/x/first.html", "--html", str(tmp_path / "r" / "d.html")],
                          tmp_path / "r" / "index.html"),
                         (["--count=0", "--dashboard", "127.0.0.1:0"],
                          tmp_path / "reports" / "index.html")):
        proc = subprocess.run([*where, *extra], cwd=ROOT, capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 0, proc
        assert proc.stdout.rstrip("\n").endswith(f"reports {index}"), (extra, proc.stdout)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([*where, "--dashboard", f"127.0.0.1:{port}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and f"127.0.0.1:{port}: cannot listen" in proc.stderr, proc


def test_unreachable_datera_is_a_notice_and_polling_goes_on():
    calls = []

    def connect():
        calls.append(time.time())
        raise OSError("Datera REST API at https://192.0.2.1:7718 is unreachable: timed out")
    metrics = DateraMetrics(connect, ["/root/Vancouver-OM"], 1000, "https://192.0.2.1:7718")
    metrics.start()
    try:
        wait_until(lambda: metrics.snapshot()["problem"], 10, "the notice")
        snap = metrics.snapshot()
        assert snap["problem"].startswith("Datera metrics unavailable (https://192.0.2.1:7718)")
        assert "\n" not in snap["problem"]
        assert snap["tenants"]["/root/Vancouver-OM"]["iops"] == []
        wait_until(lambda: len(calls) >= 2, 10, "a retry")
    finally:
        metrics.close()


def test_a_slow_cluster_never_holds_the_page_push():
    """The poller waits for Datera's metrics answers outside its lock: snapshot() (what
    every push builds) returns while a metrics call is still held by the cluster."""
    held, release, calls = threading.Event(), threading.Event(), []

    class Metric:
        def get(self, **params):
            calls.append(params)
            if "uuid" in params:  # the per-volume call: the cluster keeps us waiting
                held.set()
                release.wait(30)
            return {"points": [{"time": int(time.time()), "value": 100.0}]}

    class Api:
        class metrics:
            class io:
                iops_read = iops_write = thpt_read = thpt_write = Metric()

        class app_instances:
            @staticmethod
            def list(tenant):
                return [{"name": "OS-1", "storage_instances": [{"volumes": [
                    {"uuid": "v-1", "size": 1, "capacity_in_use": 0,
                     "performance_policy": {"total_iops_max": 500}}]}]}]
    metrics = DateraMetrics(lambda: Api(), ["/root/Vancouver-OM"], 1000).start()
    try:
        assert held.wait(30), "the poller never asked for the volume's metrics"
        done = []

        def pushes():  # a second of page pushes while the answer is held
            for _ in range(20):
                done.append(metrics.snapshot())
                time.sleep(0.05)
        t = threading.Thread(target=pushes, daemon=True)
        t.start()
        t.join(10)
        assert len(done) == 20 and not release.is_set(), \
            f"snapshot() waited for the cluster's answer ({len(done)} of 20 pushes built)"
        release.set()
        wait_until(lambda: metrics.snapshot()["volumes"] and
                   metrics.snapshot()["volumes"][0]["iops"], 30, "the held answer merged")
    finally:
        release.set()
        metrics.close()


# ------------------------------------------------------------------------ inner runs
@pytest.mark.parametrize("workers", [["-n", "2"], []], ids=["xdist", "one-process"])
def test_current_step_is_live_and_every_event_counted_once(tmp_path, workers):
    proc = _inner(tmp_path, *workers, "--dashboard", "127.0.0.1:0", "--live-view", "plain")
    try:
        first = proc.stdout.readline()
        assert first.startswith("Vancouver demo: dashboard http://127.0.0.1:"), first
        url = first.split()[3]

        def state():
            return json.loads(urllib.request.urlopen(url + "api/state", timeout=5).read())["run"]

        def holding(n):
            steps = [w["step"] for w in state()["workers"]]
            return f"holding {n}" in steps
        wait_until(lambda: holding(0), 60, "worker's current step on the dashboard")
        assert state()["scenarios"][0]["iterations"] == 0  # no report has arrived yet
        feed = [f["text"] for f in state()["feed"]]
        assert "volume created: vol-0" in feed
        (tmp_path / "release-0").write_text("")
        wait_until(lambda: holding(1) and state()["scenarios"][0]["passed"] == 1, 60,
                   "the first result and the second test's step")
        # Per test: resource_created, step_start, step_end, figure, test_outcome (its
        # result line), test_result; test 1 has sent resource_created and step_start so
        # far. Each exactly once on the bus.
        wait_until(lambda: state()["events"] == 8, 10, "8 events, none twice")
        (tmp_path / "release-1").write_text("")
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    rows = [json.loads(line) for line in
            (tmp_path / "reports" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["figures"]["n"] for r in rows) == [0, 1]
    assert all(list(r["steps"]) == [f"holding {r['figures']['n']}"] for r in rows)


def test_port_in_use_stops_the_run_before_any_worker(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _inner(tmp_path, "-n", "2", "--dashboard", f"127.0.0.1:{port}")
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 4, out
    assert f"--dashboard 127.0.0.1:{port}: cannot listen (port in use)" in out
    assert "Traceback" not in out and "gw0" not in out and "created:" not in out
    assert len([line for line in out.splitlines() if line.strip()]) == 1, out
