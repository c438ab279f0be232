"""The run rides out an outage (issue 13 item 3): the classifier, the pause, deferred
deletions and the outage results, without a lab; the end-to-end run against a lab whose
Datera process is stopped lives in tests/test_outage_e2e.py."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from clients.dfs_compat import dexc
from fixtures.outage import classify
from fixtures.outage.deferred import DeferredTeardown
from fixtures.outage.pause import BACKOFF_CAP_S, backoff, wait_until_healthy
from fixtures.outage.probes import Probe, probe_for_error
from fixtures.reporting import events as ev
from fixtures.reporting.results import JsonlWriter, TestResults
from fixtures.waiters import wait_until
from tests.support import inner_run
from tests.support.outage_probe import (REFUSED, closed_port, refused_request,
                                       scripted_probe, watching)


def _silent_server():
    """A listening socket that accepts and never answers (a hung process)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    return srv


# -- the classifier: every client library's way of saying "no answer" -------------------------

def test_requests_refused_names_reason_and_address():
    found = classify(refused_request())
    assert found.reason == "connection refused"
    assert found.addresses[0][0] == "127.0.0.1"


def test_a_teardown_group_is_an_outage_only_when_each_error_is_one():
    # pytest 8+ raises the errors of several finalizers of one teardown as one group (the
    # VMware scenario's VM, datastore and volume finalizers meeting a killed vCenter: seen
    # as ERROR, not outage, in tests/test_kill9_platforms_e2e.py's vsphere crash loop)
    err = refused_request()
    group = BaseExceptionGroup("errors while tearing down <Function test_vmware>",
                               [err, ConnectionResetError(104, "reset")])
    assert classify(group) == classify(err)
    nested = BaseExceptionGroup("outer", [group, ConnectionRefusedError(111, "refused")])
    assert classify(nested) == classify(err)
    assert classify(BaseExceptionGroup("mixed", [err, AssertionError("a real failure")])) \
        is None


def test_requests_read_timeout_is_an_outage():
    srv = _silent_server()
    try:
        with pytest.raises(requests.Timeout) as err:
            requests.get(f"http://127.0.0.1:{srv.getsockname()[1]}/", timeout=0.3)
    finally:
        srv.close()
    assert classify(err.value).reason == "timed out"


def test_dfs_sdk_wrappers_are_outages():
    # dfs_sdk 1.2.27 connection.py: ApiConnectionError(e, '') / ApiTimeoutError(e, '')
    assert classify(dexc.ApiConnectionError(refused_request(), "")).reason == "connection refused"
    assert classify(dexc.ApiTimeoutError(requests.ReadTimeout("read timed out"), "")).reason \
        == "timed out"
    assert classify(dexc.Api503RetryError("busy", {})).reason == "HTTP 503"


@pytest.mark.filterwarnings("ignore:The 'http_status' parameter")
def test_keystoneauth_and_openstacksdk_are_outages():
    from keystoneauth1 import exceptions as ksa
    from openstack import exceptions as osx
    assert classify(ksa.ConnectFailure("Unable to establish connection to "
                                       "http://127.0.0.9:5000/v3/auth/tokens")) is not None
    assert classify(ksa.ConnectTimeout("timed out")).reason == "timed out"
    assert classify(ksa.ServiceUnavailable()).reason == "HTTP 503"
    gateway = osx.HttpException("bad gateway", http_status=502)
    assert classify(gateway).reason == "HTTP 502"
    assert classify(osx.NotFoundException("no such volume", http_status=404)) is None


def test_kubernetes_client_is_an_outage():
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import MaxRetryError, NewConnectionError
    refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] "
                                       "Connection refused")
    assert classify(MaxRetryError(None, "/readyz", refused)) is not None
    assert classify(ApiException(status=503, reason="Service Unavailable")).reason == "HTTP 503"
    assert classify(ApiException(status=409, reason="Conflict")) is None



def _apiserver_500(message: str):
    """kube-apiserver's HTTP 500 with its Status body, as the kubernetes client raises it."""
    from kubernetes.client.exceptions import ApiException
    e = ApiException(status=500, reason="Internal Server Error")
    e.body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Failure", "message": message, "code": 500})
    return e


def test_a_log_read_proxied_to_a_node_that_does_not_answer_is_an_outage():
    """The apiserver's answer to `read_namespaced_pod_log` while the node agent is down (the
    Status of a kill -9 of the lab's node, kube-apiserver 1.20): the kubelet did not answer,
    so it is an outage at the node's address (it was a failure: a kill -9 of the node between
    a pod's end and the scenario's read of its log failed the iteration, as the restart's
    "Starting kubelet." event came after the phase). Its siblings: a reset, a dial timeout, a
    TLS handshake that never ended. A 500 of the apiserver's own stays a failure."""
    url = "https://127.229.4.1:10250/containerLogs/vancouver-0a1b2c3d/writer/guest"
    refused = classify(_apiserver_500(
        f'Get "{url}": dial tcp 127.229.4.1:10250: connect: connection refused'))
    assert refused is not None and refused.reason == "connection refused"
    assert ("127.229.4.1", 10250) in refused.addresses
    for message, reason in [
            (f'Get "{url}": read tcp 127.229.4.1:41234->127.229.4.1:10250: read: connection '
             "reset by peer", "connection reset"),
            (f'Get "{url}": dial tcp 127.229.4.1:10250: i/o timeout', "timed out"),
            (f'Get "{url}": net/http: TLS handshake timeout', "timed out")]:
        assert classify(_apiserver_500(message)).reason == reason, message
    assert classify(_apiserver_500("etcdserver: request timed out, possibly due to "
                                   "previous leader failure")) is None
    assert classify(_apiserver_500('Internal error occurred: resource quota evaluation '
                                   'timed out')) is None

@pytest.mark.filterwarnings("ignore:The 'http_status' parameter")
def test_scenario_errors_stay_failures():
    from openstack import exceptions as osx
    assert classify(AssertionError("IOPS 850 not within 10% of 1000")) is None
    assert classify(TimeoutError("timed out after 60 s waiting for volume")) is None
    assert classify(dexc.ApiNotFoundError("gone", {})) is None
    assert classify(dexc.ApiInternalError("500 with an API error body", {})) is None
    assert classify(osx.HttpException("server error", http_status=500)) is None


def test_wrapped_outage_is_found_through_the_cause_chain():
    try:
        try:
            raise refused_request()
        except requests.ConnectionError:
            raise RuntimeError("Datera connection failed (ConnectionError)") from None
    except RuntimeError as e:
        assert classify(e).reason == "connection refused"  # __context__ survives `from None`


def test_probe_matches_the_failing_address():
    a = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None)
    b = Probe("openstack-pike", "Keystone of pike", "http://127.0.3.1:5000/v3", lambda: None)
    assert probe_for_error([a, b], [("127.0.3.1", 8776)]) is b   # Cinder: the same node
    assert probe_for_error([a, b], [("127.0.7.10", 7718)]) is a
    assert probe_for_error([a, b], [("10.0.0.1", 80)]) is None


# -- the pause ---------------------------------------------------------------------------------

def test_backoff_is_capped():
    assert [backoff(i) for i in range(5)] == [1, 2, BACKOFF_CAP_S, BACKOFF_CAP_S, BACKOFF_CAP_S]


def test_pause_resumes_on_the_first_healthy_probe():
    probe, seen = scripted_probe([REFUSED, REFUSED])
    waited = wait_until_healthy(probe, lambda: False, sleep=lambda s: None,
                                clock=_fake_clock())
    assert waited.healthy and waited.probes == 3 == len(seen)


def _fake_clock(step: float = 0.05):
    now = [0.0]

    def clock():
        now[0] += step
        return now[0]
    return clock


def test_pause_ends_promptly_on_stop():
    probe = Probe("datera", "Datera REST API", "https://x:7718",
                  lambda: (_ for _ in ()).throw(ConnectionRefusedError()))
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    waited = wait_until_healthy(probe, stop.is_set)
    assert not waited.healthy
    assert time.monotonic() - started < 1.0  # sliced sleep: not a whole backoff step


def test_watch_announces_each_outage_once_per_worker():
    up = threading.Event()

    def alive():
        if not up.is_set():
            raise REFUSED
    probe = Probe("datera", "Datera REST API", "https://x:7718", alive)
    with watching(probe, item=False) as w:
        w.watch.announce_down(probe, "connection refused", time.time())  # the failing phase
        w.watch.item_started()
        time.sleep(0.1)
        w.watch.announce_down(probe, "connection refused", time.time())  # the watcher, again
        up.set()
        wait_until(lambda: w.ups, 10, "the watcher to see the platform back", 0.05)
    assert len(w.downs) == 1 and len(w.ups) == 1
    assert w.watch.down_during(w.ups[0].start, w.ups[0].end) is w.ups[0]


def test_watch_confirms_a_timed_out_probe_before_announcing_an_outage():
    """One slow answer on a loaded machine is not an outage; two in a row are."""
    slow = TimeoutError("timed out")
    probe, seen = scripted_probe([slow, None, slow, slow])
    with watching(probe) as w:
        wait_until(lambda: w.downs, 30, "the confirmed outage", 0.05)
    assert len(seen) >= 4 and len(w.downs) == 1, (seen, w.downs)


def test_a_phase_that_failed_as_its_platform_went_down_finds_the_outage_at_its_report():
    """A kill -9 of Datera and the fio failure it caused ('nbd_connect_uri: recv: server
    disconnected unexpectedly', no classified error) both fell between two of the watcher's
    checks, and Datera was still restarting when the phase's report was made: the iteration
    counted a failure (the kill -9 e2e under load). At the report a platform that refuses
    now is down from the phase's end (its waiting line once); a single slow answer is not."""
    refused, _ = scripted_probe([REFUSED, REFUSED])
    with watching(refused, item=False) as w:
        down = w.watch.down_now(123.0)
        assert down is not None and (down.reason, down.start) == ("connection refused", 123.0)
        assert w.downs == [down] and w.watch.down_now(124.0) is None   # announced once
    slow, _ = scripted_probe([TimeoutError("timed out")])
    with watching(slow, item=False) as w:
        assert w.watch.down_now(123.0) is None and not w.downs
    fine, _ = scripted_probe([])
    with watching(fine, item=False) as w:
        assert w.watch.down_now(123.0) is None

def test_watch_needs_three_503s_in_a_row_before_an_outage(monkeypatch):
    """An API shedding a share of its requests with 503 (the chaos switch's 5%) is up: its
    clients retry such answers. Three 503 answers in a row are an outage, from the first."""
    from fixtures.outage import watch as watch_mod
    from fixtures.outage.probes import GatewayError
    monkeypatch.setattr(watch_mod, "WATCH_S", 0.02)
    gw = GatewayError("https://x:7718/", 503)
    probe, seen = scripted_probe([gw, None, gw, gw, None, gw, gw, gw])
    with watching(probe) as w:
        wait_until(lambda: w.ups, 30, "the confirmed outage to end", 0.02)
    assert len(w.downs) == 1 and w.downs[0].reason == "HTTP 503", w.downs
    assert seen[4] < w.downs[0].start <= seen[5], (w.downs[0].start, seen)   # the first of three

# -- deferred deletions ------------------------------------------------------------------------

def test_deletion_that_meets_an_outage_is_queued_and_drained():
    queue = DeferredTeardown()
    back = threading.Event()
    deleted = []

    def delete():
        if not back.is_set():
            raise dexc.ApiConnectionError(refused_request(), "")
        deleted.append("vol-1")
    queue.wrap(delete, "app_instance vol-1")()  # does not raise: queued
    assert [p.what for p in queue.pending] == ["app_instance vol-1"]
    assert queue.noted[0].reason == "connection refused"
    assert queue.drain() == ([], queue.pending)  # still down: kept
    back.set()
    done, left = queue.drain()
    assert done == ["app_instance vol-1"] and left == [] and deleted == ["vol-1"]


def test_a_deletion_after_a_queued_one_waits_behind_it():
    """The volume's deletion met the outage; the initiator in its ACL, deleted next, must not
    run before it (the API would refuse it: 409 in use): it is queued behind, and both run
    in their order once the platform is back."""
    queue = DeferredTeardown()
    back = threading.Event()
    deleted = []

    def delete(what):
        def fn():
            if not back.is_set():
                raise dexc.ApiConnectionError(refused_request(), "")
            deleted.append(what)
        return fn
    queue.wrap(delete("volume"), "app_instance vol-1")()
    back.set()   # back between the two deletions of one teardown
    assert queue.wrap(delete("initiator"), "initiator iqn-1")() is False
    assert deleted == [] and [p.what for p in queue.pending] == ["app_instance vol-1",
                                                                 "initiator iqn-1"]
    assert queue.drain()[0] == ["app_instance vol-1", "initiator iqn-1"]
    assert deleted == ["volume", "initiator"]


def test_deletion_failing_otherwise_still_fails():
    queue = DeferredTeardown()
    with pytest.raises(dexc.ApiConflictError):
        queue.wrap(lambda: (_ for _ in ()).throw(dexc.ApiConflictError("busy", {})), "x")()
    assert queue.pending == []


# -- results -----------------------------------------------------------------------------------

class _Report:
    def __init__(self, when, outcome, outage=None):
        self.nodeid, self.when, self.outcome, self.duration = "s.py::t", when, outcome, 1.0
        self.failed = outcome == "failed"
        if outage:
            self.vancouver_outage = outage


OUTAGE = {"platform": "datera", "label": "Datera REST API", "endpoint": "https://x:7718",
          "reason": "connection refused", "duration_s": 12.5, "resumed": True}


def test_outage_is_its_own_outcome_in_results_jsonl(tmp_path):
    results = TestResults()
    assert results.add(_Report("setup", "passed")) is None
    results.add(_Report("call", "failed", OUTAGE))
    result = results.add(_Report("teardown", "passed"))
    assert result.outcome == "outage" and result.outage == OUTAGE
    writer = JsonlWriter(tmp_path, "run")
    writer(result)
    writer.close()
    line = json.loads((tmp_path / "results.jsonl").read_text())
    assert line["outcome"] == "outage" and line["outage"]["duration_s"] == 12.5


def test_a_real_failure_beside_an_outage_stays_a_failure():
    results = TestResults()
    results.add(_Report("setup", "passed"))
    results.add(_Report("call", "failed", OUTAGE))
    assert results.add(_Report("teardown", "failed")).outcome == "failed"


def test_outage_event_round_trips():
    event = ev.Outage(platform="datera", label="Datera REST API", endpoint="https://x",
                      reason="timed out", state="back", duration_s=3.0)
    assert ev.from_dict(ev.to_dict(event)) == event


# -- an inner run: outage results, exit status 0 -----------------------------------------------

OUTAGE_TEST = """\
import socket
import requests


def test_platform_down():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_fine():
    pass
"""


@pytest.mark.serial   # a --duration inner run: under phase 1's load its 5 s could end before test_fine
@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist"])
def test_run_with_only_outages_exits_0(tmp_path, xdist):
    (tmp_path / "conftest.py").write_text(inner_run.CONFTEST.replace(
        '"fixtures.reporting",', '"fixtures.reporting", "fixtures.outage.plugin",'))
    (tmp_path / "demo.yaml").write_text(inner_run.DEMO_YAML)
    (tmp_path / "test_live.py").write_text(OUTAGE_TEST)  # demo.yaml's scenario key "live"
    # The outage plugin acts on scenarios and on endless runs: a bounded endless run here.
    args = (["-n", "2"] if xdist else []) + ["--count=0", "--duration", "5s"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--demo-config", "demo.yaml", "--demo-profile", "ci", "-v", *args,
                           "--html", str(tmp_path / "report.html")],
                          cwd=tmp_path, env=inner_run.env(), capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r"\d+ passed, \d+ outage in", out), out[-2000:]
    assert "OUTAGE" in out
    records = [json.loads(ln) for ln in (tmp_path / "results.jsonl").read_text().splitlines()]
    down = [r for r in records if "test_platform_down" in r["nodeid"]]
    fine = [r for r in records if "test_fine" in r["nodeid"]]
    assert down and fine
    assert {r["outcome"] for r in down} == {"outage"}
    assert {r["outage"]["reason"] for r in down} == {"connection refused"}
    assert {r["outcome"] for r in fine} == {"passed"}
    assert ">outage<" in (tmp_path / "index.html").read_text()
    # The platform answered again before the item paused (here: no probe knows the address):
    # the outage's table is still on its report row.
    assert any("Outage (not a failure" in p.read_text() for p in tmp_path.glob("report*.html"))


# -- a paused worker stops promptly --------------------------------------------------------------

PAUSE_CONFTEST = inner_run.CONFTEST.replace(
    '"fixtures.reporting",', '"fixtures.reporting", "fixtures.outage.plugin",') + '''
import pathlib
import socket

from fixtures.outage.probes import EXTRA_PROBES, Probe

PORT = int(pathlib.Path(__file__).with_name("port").read_text())


def _check():
    socket.create_connection(("127.0.0.1", PORT), 1).close()


EXTRA_PROBES.append(lambda target: [Probe("fake", "Fake API", f"http://127.0.0.1:{PORT}",
                                          _check)])
'''
PAUSE_TEST = """\
import pathlib
import pytest
import requests


@pytest.mark.parametrize("n", range(2))
def test_needs_fake_platform(n):
    port = int(pathlib.Path(__file__).with_name("port").read_text())
    requests.get(f"http://127.0.0.1:{port}/", timeout=2)
"""


@pytest.mark.parametrize("stop", ["SIGTERM", "duration"])
def test_paused_workers_stop_promptly_and_exit_0(tmp_path, stop):
    (tmp_path / "port").write_text(str(closed_port()))  # the platform is down throughout
    (tmp_path / "conftest.py").write_text(PAUSE_CONFTEST)
    (tmp_path / "demo.yaml").write_text(inner_run.DEMO_YAML)
    (tmp_path / "test_live.py").write_text(PAUSE_TEST)
    args = ["--duration", "60s"] if stop == "SIGTERM" else ["--duration", "8s"]
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--demo-config", "demo.yaml", "--demo-profile", "ci", "-n", "2",
                             "--count=0", *args], cwd=tmp_path, env=inner_run.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    seen_at: dict[str, float] = {}  # first line of each kind -> when it was read

    def read():
        for ln in iter(proc.stdout.readline, ""):
            lines.append(ln)
            if "stop requested while waiting" in ln:
                seen_at.setdefault("left pause", time.monotonic())
    threading.Thread(target=read, daemon=True).start()
    try:
        waiting = lambda: [ln for ln in lines if ": waiting for Fake API" in ln]  # noqa: E731
        wait_until(lambda: len(waiting()) >= 2 or proc.poll() is not None, 120,
                   "both workers to pause", 0.1)
        assert len(waiting()) == 2, "".join(lines)[-3000:]
        if stop == "SIGTERM":
            asked = time.monotonic()
            os.killpg(proc.pid, signal.SIGTERM)  # as `timeout` or a CI runner does
        else:
            asked = time.monotonic()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = "".join(lines)
    assert proc.returncode == 0, out[-3000:]
    assert "stop requested while waiting for Fake API" in out
    # No retry line per backoff step: one waiting line per worker for the whole outage.
    assert sorted(ln.split(":")[0] for ln in waiting()) == ["[vancouver] gw0",
                                                          "[vancouver] gw1"], out[-4000:]
    records = [json.loads(ln) for ln in
               (tmp_path / "reports" / "results.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in records] == ["outage", "outage"], records
    assert all(r["outage"]["platform"] == "fake" and not r["outage"]["resumed"]
               for r in records)
    if stop == "SIGTERM":  # the pause ends within a probe's sliced sleep, not a backoff
        took = seen_at["left pause"] - asked
        assert took < 3, f"a paused worker left its pause {took:.1f} s after SIGTERM"


def test_views_count_outages_apart_from_failures():
    import io

    from rich.console import Console

    from fixtures.dashboard.state import RunState
    from fixtures.reporting.terminal import plain_lines, scenario_table
    nid = "scenarios/test_tenancy.py::test_tenancy[Vancouver-OM]"
    state = RunState()
    state(ev.TestResult(outcome="passed", duration_s=2.0, nodeid=nid, worker="gw0"))
    state(ev.TestResult(outcome="outage", duration_s=3.0, nodeid=nid, worker="gw1",
                        outage=OUTAGE))
    sc = state.snapshot()["scenarios"][0]
    assert (sc["passed"], sc["failed"], sc["outage"], sc["iterations"]) == (1, 0, 1, 2)
    assert "1 passed, 0 failed, 1 outage" in plain_lines(state.snapshot())[0]
    out = io.StringIO()
    Console(file=out, width=140, color_system=None).print(scenario_table(state.snapshot()))
    assert "outage" in out.getvalue().splitlines()[0]
    assert any(f["kind"] == "outage" for f in state.snapshot()["feed"])
