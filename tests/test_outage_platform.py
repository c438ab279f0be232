"""Which platform an outage is credited to: the address the failing request went to, even
when the client's message names none; else the platform the watcher saw down meanwhile.
(Found by tests/test_kill9_e2e.py: a Datera kill's connection resets were credited to
"the target", platform unknown, once the directory's probe made the target two probes.)"""
import socket
import threading
import time

import requests

from clients.dfs_compat import dexc
from fixtures.outage import classify
from fixtures.outage.classify import Unreachable
from fixtures.outage.plugin import OutageWorker
from fixtures.outage.probes import Probe
from fixtures.outage.watch import Watch


def _reset_mid_request() -> requests.ConnectionError:
    """A server that reads the request and resets the connection (a process killed while it
    handled it): requests' message is "('Connection aborted.', ConnectionResetError(104,
    ...))", naming no address."""
    import struct
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def reset_one():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()   # linger 0: RST, not FIN
    t = threading.Thread(target=reset_one, daemon=True)
    t.start()
    try:
        requests.put(f"http://127.0.0.1:{srv.getsockname()[1]}/v2.2/app_instances/x",
                     json={"a": 1}, timeout=5)
    except requests.ConnectionError as e:
        return e
    finally:
        t.join(5)
        srv.close()
    raise AssertionError("the reset request was answered")


def test_a_reset_mid_request_names_the_address_the_request_went_to():
    err = _reset_mid_request()
    assert "127.0.0.1" not in str(err)   # what made this a defect: the message names none
    for exc in (err, dexc.ApiConnectionError(err, "")):   # dfs_sdk's wrapper too
        found = classify(exc)
        assert found.reason == "connection reset"
        assert found.addresses and found.addresses[0][0] == "127.0.0.1"


def _worker(probes: list[Probe]) -> OutageWorker:
    """An OutageWorker without a pytest config: the probes given, a watch not running."""
    worker = OutageWorker.__new__(OutageWorker)
    worker._probes = probes
    worker.watch = Watch(lambda: probes, lambda down: None, lambda down: None)
    return worker


def test_an_addressless_outage_is_credited_to_the_platform_the_watcher_saw_down():
    datera = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None)
    ldap = Probe("ldap", "LDAP directory", "ldap://127.0.7.20:389", lambda: None)
    worker = _worker([datera, ldap])
    since = time.time() - 10
    worker.watch.announce_down(datera, "connection refused", since + 1)
    worker.watch.announce_up(datera)   # killed and restarted before the error reached us
    probe, healthy = worker._probe_for(Unreachable("connection reset"), since)
    assert probe is datera and healthy
    # Nothing seen down since: two platforms, no address, no guess.
    assert worker._probe_for(Unreachable("connection reset"), time.time() + 1) == (None, True)


def test_a_restart_between_the_watchers_checks_is_a_down_interval_of_that_moment():
    """kill -9 and the supervisor's restart within one WATCH_S: no check saw it down, but a
    measurement across it fell short. The platform's own start time tells."""
    started = {"at": time.time() - 3600.0}
    datera = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None,
                   restarted_at=lambda: started["at"])
    ldap = Probe("ldap", "LDAP directory", "ldap://127.0.7.20:389", lambda: None)
    worker = _worker([ldap, datera])
    t0 = time.time()
    assert worker.watch.restarted_during(t0, t0 + 5) is None   # started long before
    started["at"] = int(t0) + 2
    down = worker.watch.restarted_during(t0, t0 + 5)
    assert down.probe is datera and down.reason == "restarted"
    assert down.start == down.end == int(t0) + 2
    assert worker.watch.down_during(t0, t0 + 5) is down   # the outage's record finds it


def test_a_platform_that_cannot_say_when_it_started_makes_no_claim():
    def no_answer():
        raise ConnectionRefusedError(111, "Connection refused")
    datera = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None,
                   restarted_at=no_answer)
    assert _worker([datera]).watch.restarted_during(time.time() - 5, time.time()) is None


def test_an_outage_a_passed_iteration_rode_out_is_in_results_jsonl(tmp_path):
    """The console printed "waiting for LDAP directory" and "back" while an iteration ran,
    which passed (its session was cached; it never met the directory): results.jsonl keeps
    the pass and names the outage (a trial found no trace of it there)."""
    import json

    from fixtures.reporting import events as ev
    from fixtures.reporting.results import JsonlWriter
    writer = JsonlWriter(tmp_path, "run")
    item = {"nodeid": "scenarios/test_tenancy.py::test_tenancy[Vancouver-OM]", "worker": "gw0"}
    for state, took in (("down", 0.0), ("back", 2.1)):
        writer(ev.Outage(platform="ldap", label="LDAP directory", endpoint="ldap://x:3890",
                         reason="connection refused", state=state, duration_s=took, **item))
    writer(ev.TestResult(outcome="passed", duration_s=9.0, **item))
    other = {**item, "nodeid": "scenarios/test_tenancy.py::test_tenancy[Vancouver-ON]"}
    writer(ev.TestResult(outcome="passed", duration_s=9.0, **other))
    writer.close()
    rode, plain = [json.loads(ln) for ln in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert rode["outcome"] == "passed" and "outage" not in rode
    assert rode["rode_out"] == [{"platform": "ldap", "label": "LDAP directory",
                                 "reason": "connection refused", "duration_s": 2.1}]
    assert "rode_out" not in plain


def test_an_outage_nobody_saw_begin_counts_from_the_failed_request_not_the_phase_start():
    """A phase of 10 s whose last request was reset by a restart the watcher never saw: the
    outage is not the phase's 10 s (a trial's record said 11 s, the supervisor's 1.75 s)."""
    from fixtures.outage.deferred import DeferredTeardown
    datera = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None)
    worker = _worker([datera])
    worker.deferred = DeferredTeardown()
    emitted = []
    worker._emit = emitted.append
    now = time.time()
    record = worker._ride_out(Unreachable("connection reset", (("127.0.7.10", 7718),)),
                              since=now - 10, probe=None, failed_at=now - 0.5)
    assert record["platform"] == "datera" and record["resumed"]
    assert 0.5 <= record["duration_s"] < 5   # from the failed request to the probe's answer
    # Its waiting line first, then its back line, however short the outage.
    assert [e.state for e in emitted] == ["down", "back"]
    assert emitted[0].retry_s > 0 and emitted[0].duration_s == emitted[1].duration_s


def test_the_kubelet_start_event_tells_when_the_node_agent_started():
    """kill -9 of the lab's node agent leaves the apiserver answering (no down interval), yet
    the pod it ran ends Failed (137 ContainerStatusUnknown): the newest "Starting kubelet."
    Node event (source kubelet) is the restart the failed phase ran across."""
    import datetime
    from kubernetes import client
    from fixtures.outage.probes import kubelet_started_at

    def event(at: float, component: str = "kubelet"):
        ts = datetime.datetime.fromtimestamp(at, datetime.timezone.utc)
        return client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="n.1"), reason="Starting",
            message="Starting kubelet.", involved_object=client.V1ObjectReference(
                kind="Node", name="n"), source=client.V1EventSource(component=component),
            first_timestamp=ts, last_timestamp=ts)
    t0 = int(time.time())
    assert kubelet_started_at([]) is None
    assert kubelet_started_at([event(t0 - 600), event(t0 + 2), event(t0 + 9, "kube-proxy")]) \
        == t0 + 2
    kube = Probe("kubernetes", "kube-apiserver", "https://127.0.4.1:6443/readyz", lambda: None,
                 restarted_at=lambda: kubelet_started_at([event(t0 - 600), event(t0 + 2)]))
    down = _worker([kube]).watch.restarted_during(t0, t0 + 5)
    assert down.probe is kube and down.reason == "restarted"


def test_a_login_no_portal_answered_is_an_outage_and_a_refused_one_is_not():
    """Both portals of a restarting cluster reset the login: AccessRefused chained to the
    connection error, an outage (the kill -9 e2e counted it a failure); the target refusing
    a login (an ACL, CHAP) stays the scenario's failure."""
    import pytest

    from clients.initiator import LoginError
    from fixtures import transport
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = [s.getsockname()[1]]
    tp = transport.LabTransport(login_port=closed[0])
    with pytest.raises(transport.AccessRefused) as down:
        tp._login(["127.0.0.1", "127.0.0.1"], "iqn.x:host", "iqn.x:target", None)
    found = classify(down.value)
    assert found is not None and found.reason == "connection refused"
    refused = transport.AccessRefused("login refused: not in the ACL")
    try:
        raise refused from LoginError("initiator iqn.x:host is not in the ACL")
    except transport.AccessRefused as e:
        assert classify(e) is None


def _announcing_worker(probes: list[Probe]):
    """A worker whose watch and _emit both record the outage events' states, in order."""
    from fixtures.outage.deferred import DeferredTeardown
    worker = _worker(probes)
    states: list[str] = []
    worker.watch = Watch(lambda: probes, lambda down: states.append("down"),
                         lambda down: states.append("back"))
    worker.deferred = DeferredTeardown()
    worker._emit = lambda event: states.append(event.state)
    return worker, states


def test_a_restart_nobody_saw_prints_its_waiting_line_before_its_back_line_once():
    """A kill -9 and a restart between two of the watcher's checks (restarted_during): the
    phase's outage result came with a back line only. Now: waiting line, back line, once,
    however many phases of the item meet the same restart."""
    t0 = int(time.time()) - 3   # the restart is over: 2 s ago
    datera = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None,
                   restarted_at=lambda: t0 + 1)
    worker, states = _announcing_worker([datera])
    down = worker.watch.restarted_during(t0, t0 + 5)
    for _ in range(2):   # call, then teardown meet it
        record = worker._ride_out(Unreachable(down.reason), down.start, down.probe)
        assert record["platform"] == "datera" and record["resumed"]
    assert states == ["down", "back"]


def test_an_outage_the_watcher_printed_is_not_printed_again_at_the_report():
    """The watcher printed the waiting and back lines while the phase ran; the phase's report
    finds that interval: no second back line (it came without a waiting line before it)."""
    datera = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None)
    worker, states = _announcing_worker([datera])
    since = time.time() - 5
    worker.watch.announce_down(datera, "connection refused", since + 1)
    worker.watch.announce_up(datera)
    record = worker._ride_out(Unreachable("connection refused", (("127.0.7.10", 7718),)),
                              since, None, failed_at=since + 2)
    assert record["platform"] == "datera" and record["resumed"]
    assert states == ["down", "back"]


def test_a_pause_over_within_its_first_retry_prints_its_waiting_line_first():
    """The platform answers at the pause's first retry (1 s): waiting line, then back."""
    answers = [ConnectionRefusedError(111, "Connection refused")]   # the report's check

    def check():
        if answers:
            raise answers.pop()
    datera = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", check)
    worker, states = _announcing_worker([datera])
    worker._stopping = lambda: False
    record = worker._ride_out(Unreachable("connection refused", (("127.0.7.10", 7718),)),
                              time.time(), None, failed_at=time.time())
    assert record["resumed"] and states == ["down", "back"]


def test_an_interval_closed_while_its_waiting_line_goes_out_is_announced_in_order():
    """The watcher thread opens an interval and, before its down event went out, a phase's
    report (another thread) found the platform healthy and closed it: the back event went
    out first. The state change and its event now go together."""
    datera = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None)
    states: list[str] = []
    opened = threading.Event()

    def on_down(down):
        opened.set()
        # The old order: the closing thread's event would land here, before ours.
        deadline = time.monotonic() + 1.0
        while "back" not in states and time.monotonic() < deadline:
            time.sleep(0.01)
        states.append("down")
    watch = Watch(lambda: [datera], on_down, lambda down: states.append("back"))
    opener = threading.Thread(target=watch.announce_down,
                              args=(datera, "connection refused", time.time()))
    opener.start()
    assert opened.wait(5)
    assert watch.announce_up(datera) is not None
    opener.join(5)
    assert states == ["down", "back"]


def _node(name: str, ready: str = "True", reason: str = "KubeletReady",
          unschedulable: bool = False):
    from kubernetes import client
    return client.V1Node(metadata=client.V1ObjectMeta(name=name),
                         spec=client.V1NodeSpec(unschedulable=unschedulable),
                         status=client.V1NodeStatus(conditions=[client.V1NodeCondition(
                             type="Ready", status=ready, reason=reason)]))


def _lease(name: str, renewed: float, duration: int = 40):
    import datetime
    from kubernetes import client
    at = datetime.datetime.fromtimestamp(renewed, datetime.timezone.utc)
    return client.V1Lease(metadata=client.V1ObjectMeta(name=name, namespace="kube-node-lease"),
                          spec=client.V1LeaseSpec(holder_identity=name, renew_time=at,
                                                  lease_duration_seconds=duration))


def test_no_ready_node_is_judged_as_the_node_lifecycle_controller_does():
    """The kubelet stand-in down while the apiserver answers: the node's Lease stops being
    renewed (leaseDurationSeconds 40), then the controller marks it NotReady/Unknown. One
    Ready node among several is no outage (the scheduler uses it)."""
    from fixtures.outage.probes import no_ready_node
    now = time.time()
    assert no_ready_node([_node("n1")], [_lease("n1", now - 5)], now) is None
    assert no_ready_node([_node("n1")], [], now) is None   # no Lease: the condition decides
    silent = no_ready_node([_node("n1")], [_lease("n1", now - 52)], now)
    assert silent == "node n1: Lease not renewed for 52s"
    unknown = no_ready_node([_node("n1", "Unknown", "NodeStatusUnknown")],
                            [_lease("n1", now - 60)], now)
    assert unknown == "node n1 NotReady (NodeStatusUnknown)"
    assert no_ready_node([_node("n1", unschedulable=True), _node("n2", "False", "KubeletDown")],
                         [], now) == "node n1 cordoned; node n2 NotReady (KubeletDown)"
    assert no_ready_node([], [], now) == "no node registered"
    assert no_ready_node([_node("n1", "False"), _node("n2")],
                         [_lease("n1", now - 90), _lease("n2", now)], now) is None


def test_a_node_outage_is_an_outage_and_names_the_node():
    from fixtures.outage.probes import NodeNotReady
    found = classify(NodeNotReady("node n1 NotReady (NodeStatusUnknown)"))
    assert found.reason == "node n1 NotReady (NodeStatusUnknown)"
    def cordoned():
        raise NodeNotReady("node n1 cordoned")
    probe = Probe("kubernetes-node", "a Ready Kubernetes node",
                  "https://127.0.4.1:6443/api/v1/nodes", cordoned)
    assert probe.healthy() == (False, "node n1 cordoned")


def test_a_failure_at_an_answering_apiserver_goes_to_its_node_the_watcher_sees_down():
    """A pod's log read the apiserver proxied to a NotReady node ('dial tcp
    127.0.4.1:10250: connect: connection refused'): the apiserver answers, its node does
    not; the worker pauses for the node."""
    kube = Probe("kubernetes", "kube-apiserver", "https://127.0.4.1:6443/readyz", lambda: None)
    node_up = threading.Event()

    def nodes():
        if not node_up.is_set():
            from fixtures.outage.probes import NodeNotReady
            raise NodeNotReady("node n1 NotReady (NodeStatusUnknown)")
    node = Probe("kubernetes-node", "a Ready Kubernetes node",
                 "https://127.0.4.1:6443/api/v1/nodes", nodes)
    worker = _worker([kube, node])
    found = Unreachable("connection refused", (("127.0.4.1", 10250),))
    assert worker._probe_for(found, time.time()) == (kube, True)   # nobody saw it down
    worker.watch.announce_down(node, "node n1 NotReady (NodeStatusUnknown)", time.time())
    assert worker._probe_for(found, time.time()) == (node, False)
    node_up.set()
    assert worker._probe_for(found, time.time()) == (node, True)


def test_the_node_probe_leaves_an_apiserver_outage_to_the_apiserver_probe(tmp_path):
    """One waiting line per outage: with the apiserver down, the node probe is up (it cannot
    tell), the apiserver's probe is down."""
    import yaml
    from types import SimpleNamespace
    from fixtures.outage.probes import PROBES
    port = closed_port_of()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    target = SimpleNamespace(section=lambda name: {}, file=lambda *a: kubeconfig)
    kube, node = PROBES["kubernetes"](target)
    assert node.platform == "kubernetes-node"
    assert kube.healthy()[0] is False
    assert node.healthy() == (True, "")


def closed_port_of() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lease_freshness_is_judged_on_the_apiservers_clock():
    """A Lease's renewTime is on the cluster's clocks; this machine's may be off by more
    than the lease's 40 s: "now" is the apiserver's answer's Date, ours only without one."""
    from fixtures.outage.probes import _server_now
    assert _server_now({"Date": "Tue, 01 Dec 2026 14:37:35 GMT"}) == 1796135855.0
    assert abs(_server_now({}) - time.time()) < 5
    assert abs(_server_now({"Date": "garbage"}) - time.time()) < 5


def test_the_lab_nodes_probe_reads_a_ready_node_of_the_real_apiserver(target):
    """Against the session lab's kube-apiserver and node agent: its node is Ready, its Lease
    fresh (paged list, one Lease read, the apiserver's Date); both probes answer."""
    from kubernetes import config as kconfig
    from fixtures.outage.probes import PROBES, no_ready_node_in
    api = kconfig.new_client_from_config(config_file=str(target.file("kubernetes",
                                                                      "kubeconfig")))
    assert no_ready_node_in(api) is None
    assert [(p.platform, p.healthy()) for p in PROBES["kubernetes"](target)] == [
        ("kubernetes", (True, "")), ("kubernetes-node", (True, ""))]


def test_the_nodes_probe_pages_and_reads_only_a_candidates_lease(monkeypatch):
    """A large cluster: nodes a page at a time, a Lease read only for a node whose condition
    is Ready, judged on the apiserver's clock (its Date header); a node without a Lease is
    judged by its condition."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from fixtures.outage.probes import no_ready_node_in
    server_now = 1796135855.0
    pages = {None: ([_node("a", "Unknown", "NodeStatusUnknown")], "p2"),
             "p2": ([_node("b")], None)}
    leases = {"b": _lease("b", server_now - 60)}
    asked = []

    class Core:
        def __init__(self, api):
            pass

        def list_node(self, limit, _continue, _request_timeout):
            items, cont = pages[_continue]
            asked.append(("page", _continue, limit))
            return client.V1NodeList(items=items, metadata=client.V1ListMeta(_continue=cont))

    class Coord:
        def __init__(self, api):
            pass

        def read_namespaced_lease_with_http_info(self, name, namespace, _request_timeout):
            asked.append(("lease", name))
            if name not in leases:
                raise ApiException(status=404)
            return leases[name], 200, {"Date": "Tue, 01 Dec 2026 14:37:35 GMT"}
    monkeypatch.setattr(client, "CoreV1Api", Core)
    monkeypatch.setattr(client, "CoordinationV1Api", Coord)
    assert no_ready_node_in(None) == ("node a NotReady (NodeStatusUnknown); "
                                      "node b: Lease not renewed for 60s")
    assert asked == [("page", None, 50), ("page", "p2", 50), ("lease", "b")]
    del leases["b"]
    assert no_ready_node_in(None) is None


def test_an_outage_no_probe_knows_names_the_address_its_request_went_to():
    """No probe's endpoint is the failing request's address: the waiting and back lines
    name that address (they read "waiting for the target at : connection refused")."""
    worker, states = _announcing_worker([])
    emitted = []
    worker._emit = emitted.append
    record = worker._ride_out(Unreachable("connection refused", (("127.0.0.1", 4321),)),
                              time.time(), None, failed_at=time.time())
    assert record["endpoint"] == "127.0.0.1:4321" and record["platform"] == "unknown"
    assert [(e.state, e.endpoint) for e in emitted] == [("down", "127.0.0.1:4321"),
                                                        ("back", "127.0.0.1:4321")]
