"""The lab's Datera clients under injected API errors (issue 13: at 5% API errors no scenario
fails for a reason other than the fault): every CSI call turns a transient error into gRPC
Unavailable, which the lab's kubelet and external-provisioner retry; no dfs_sdk error text
(it carries the request body: the login password, a CHAP secret) reaches a message or a log.
"""
import threading
import types

import pytest
import requests

from clients.dfs_compat import dexc, error_summary, is_transient
from lab.kubernetes import datera_csi as dc
from lab.kubernetes.config import DateraAccess

PASSWORD = "pw-secret-7f3a"
CHAP = "chap-secret-91bc"
BODY = (f"[REQUEST]: POST /app_instances\n{{'name': 'CSI-pvc-1', 'storage_instances': "
        f"[{{'auth': {{'type': 'chap', 'target_user_name': 'u', 'target_pswd': '{CHAP}'}}}}], "
        f"'password': '{PASSWORD}'}}\n")


def _errors():
    """(error, transient) pairs: what dfs_sdk raises for the chaos switch's faults and more."""
    return [
        (dexc.Api503RetryError(BODY + "503 Service Unavailable", {"http": 503}), True),
        (dexc.ApiInternalError(BODY + "500 Internal Server Error", {"http": 500}), True),
        (dexc.ApiError(BODY + "502 Bad Gateway", {}), True),
        (dexc.ApiError(BODY + "504 Gateway Timeout", {}), True),
        (dexc.ApiConnectionError(requests.ConnectionError("Connection reset by peer"), ""), True),
        (dexc.ApiTimeoutError(requests.Timeout("read timed out"), ""), True),
        (requests.exceptions.ChunkedEncodingError("connection broken"), True),
        (requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0), True),
        (dexc.ApiInvalidRequestError(BODY + "400 Bad Request",
                                     {"http": 400, "message": "bad size"}), False),
    ]


class _Failing:
    """A dfs_sdk API whose every call (api.x.y(...), any depth) raises `error`."""

    def __init__(self, error):
        self.error = error

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        raise self.error


def _csi(monkeypatch, api) -> dc.DateraCsi:
    monkeypatch.setattr(dc.dfs_sdk, "get_api", lambda *a, **k: api)
    return dc.DateraCsi(DateraAccess("127.0.7.10", 7717, "admin", PASSWORD, "/root/Vancouver-KU"))


RPCS = {
    "ensure_tenant": lambda c: c.ensure_tenant(),
    "create_volume": lambda c: c.create_volume("pvc-1", 1 << 30, 0, {}, {
        "node.session.auth.username": "u", "node.session.auth.password": CHAP}, {}),
    "delete_volume": lambda c: c.delete_volume("CSI-pvc-1"),
    "get_metadata": lambda c: c.get_metadata("CSI-pvc-1"),
    "set_metadata": lambda c: c.set_metadata("CSI-pvc-1", formatted="true"),
    "node_stage": lambda c: c.node_stage("CSI-pvc-1", "iqn.1993-08.org.debian:01:n", "node",
                                         None, lambda *a, **k: "nbd://x"),
    "node_unstage": lambda c: c.node_unstage("CSI-pvc-1", "iqn.1993-08.org.debian:01:n"),
}


@pytest.mark.parametrize("rpc", sorted(RPCS))
@pytest.mark.parametrize("error,transient", _errors(), ids=lambda v: type(v).__name__
                         if isinstance(v, Exception) else str(v))
def test_every_csi_call_turns_a_datera_error_into_a_secret_free_csi_error(monkeypatch, rpc,
                                                                          error, transient):
    csi = _csi(monkeypatch, _Failing(error))
    with pytest.raises(dc.CsiError) as e:
        RPCS[rpc](csi)
    assert e.value.code == ("Unavailable" if transient else "Unknown"), e.value
    assert PASSWORD not in str(e.value) and CHAP not in str(e.value)
    assert type(error).__name__ in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__   # no body in a traceback


def test_the_csi_session_retries_503_with_the_sdks_backoff(monkeypatch):
    seen = {}

    def get_api(*args, **kwargs):
        seen.update(kwargs)
        return _Failing(AssertionError("unused"))
    monkeypatch.setattr(dc.dfs_sdk, "get_api", get_api)
    dc.DateraCsi(DateraAccess("127.0.7.10", 7717, "admin", PASSWORD, "/root/T"))._api()
    assert seen["retry_503_type"] == "backoff"          # as the driver's session does
    assert seen["retry_connection_type"] is None        # a dead endpoint: Unavailable at once


@pytest.mark.parametrize("error,transient", _errors(), ids=lambda v: type(v).__name__
                         if isinstance(v, Exception) else str(v))
def test_error_summary_keeps_method_path_and_status_never_the_body(error, transient):
    line = error_summary(error)
    assert is_transient(error) is transient
    assert PASSWORD not in line and CHAP not in line and "\n" not in line
    if isinstance(error, dexc.ApiError) and BODY in str(error.args[0]):
        assert "POST /app_instances" in line and "HTTP " in line


# -- the external-provisioner stand-in retries a failed DeleteVolume ---------------------------
def test_a_delete_that_met_a_503_is_retried_with_backoff(monkeypatch):
    from lab.kubernetes import csi_controller as cc
    timers = []

    class Timer:
        def __init__(self, delay, fn, args):
            timers.append((delay, fn, args))
            self.daemon = False

        def start(self):
            pass
    monkeypatch.setattr(cc.threading, "Timer", Timer)
    pv = types.SimpleNamespace(
        metadata=types.SimpleNamespace(name="pvc-1", uid="u1", deletion_timestamp=None),
        status=types.SimpleNamespace(phase="Released"),
        spec=types.SimpleNamespace(csi=types.SimpleNamespace(volume_handle="CSI-pvc-1")))
    calls = {"delete_volume": 0, "delete_pv": 0}

    def delete_volume(handle):
        calls["delete_volume"] += 1
        if calls["delete_volume"] == 1:
            raise dc.CsiError("Unavailable", "Api503RetryError: DELETE app_instances HTTP 503")
    ctl = cc.CsiController.__new__(cc.CsiController)
    ctl.core = types.SimpleNamespace(
        read_persistent_volume=lambda name: pv,
        delete_persistent_volume=lambda name, body: calls.__setitem__("delete_pv", 1))
    ctl.csi = types.SimpleNamespace(delete_volume=delete_volume)
    ctl._backoff, ctl._busy, ctl._lock, ctl.stop = {}, set(), threading.Lock(), threading.Event()
    ctl.pool = types.SimpleNamespace(submit=lambda fn: fn())
    events = []
    ctl._event_pv = lambda pv_, type_, reason, message: events.append(reason)

    ctl._delete("pvc-1")
    assert events == ["VolumeFailedDelete"] and calls["delete_pv"] == 0
    (delay, fn, args), = timers
    assert delay == cc.BACKOFF_S[0]
    fn(*args)   # the timer fires
    assert calls == {"delete_volume": 2, "delete_pv": 1}
    assert "delete:pvc-1" not in ctl._backoff


# -- the node agent: no dead pod thread --------------------------------------------------------
def _runner(tmp_path):
    from lab.kubernetes import pods
    from lab.kubernetes.podstatus import ContainerState
    r = pods.PodRunner.__new__(pods.PodRunner)
    r.events, r.statuses = [], []
    r._event = lambda g, type_, reason, message: r.events.append((reason, message))
    r._publish_status = lambda g: r.statuses.append(
        pods.podstatus.pod_status(g.inits, g.containers, "127.0.0.1", g.started, g.policy))
    r._detach = lambda g: None
    g = pods.Guest("uid-1", "default", "writer", tmp_path, [],
                   [ContainerState("main", "img", False)], policy="Always")
    return r, g


def test_an_unforeseen_volume_setup_failure_is_an_event_and_a_retry(tmp_path, monkeypatch):
    from lab.kubernetes import pods
    monkeypatch.setattr(pods, "RETRY_S", (0.0, 0.0))
    r, g = _runner(tmp_path)
    attempts = []

    def attach(g_, pod):
        attempts.append(1)
        if len(attempts) == 2:
            g_.stop.set()   # the pod is deleted meanwhile: the loop ends
        raise KeyError(f"password={PASSWORD}")
    r._attach = attach
    r._run(g, pod=None)
    assert len(attempts) == 2
    assert [reason for reason, _ in r.events] == ["FailedMount", "FailedMount"]
    assert all(PASSWORD not in m and "KeyError" in m for _, m in r.events), r.events


def test_a_pod_worker_that_fails_ends_in_a_failed_pod_not_a_dead_thread(tmp_path):
    r, g = _runner(tmp_path)
    r._attach = lambda g_, pod: {}

    def boom(*args):
        raise RuntimeError("the apiserver went away")
    r._restarting = boom   # a container thread dies: the pod's worker hears of it
    pod = types.SimpleNamespace(spec=types.SimpleNamespace(init_containers=[], containers=[
        types.SimpleNamespace(name="main")]))
    r._run(g, pod)
    assert ("Failed", "the node agent cannot run the pod: RuntimeError: the apiserver went "
                      "away") in r.events
    st = g.containers[0]
    assert (st.state, st.exit_code, st.reason) == ("terminated", 128, "Error")
    assert r.statuses[-1]["phase"] == "Failed"
