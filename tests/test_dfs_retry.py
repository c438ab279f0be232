"""dfs_sdk's own 503/connection retries, bounded and visible (clients/dfs_compat.py).

The unmodified SDK talks to the session lab's Datera (plain http, port 7717) through a relay
of this test's own that answers HTTP 503 with a Datera error body to the requests it is told
to fail, as an overloaded cluster (or `lab chaos errors`) would, and passes the rest on.
dfs_sdk dials its fixed REST port; the test points that port at the relay (monkeypatch).
"""
import http.server
import json
import logging
import re
import threading
import time

import pytest
import requests

from clients import dfs_compat, ports
from clients.dfs_compat import dexc, dfs_sdk
from fixtures.outage.classify import classify
from tests.support.dsdk import Udc, schema_file

RETRY_LOG = "clients.dfs_compat.retry"
BUSY = {"name": "ServiceUnavailableError", "code": 503, "http": 503,
        "message": "the cluster is busy, try again", "errors": []}


class Relay(http.server.ThreadingHTTPServer):
    """Forwards to the lab's Datera; the first `fail` requests whose "METHOD path" matches
    `pattern` get a 503 instead (fail=None: all of them). `seen` counts the matching ones."""
    daemon_threads = True

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream, self.pattern, self.fail, self.seen = upstream, None, 0, 0
        self.lock = threading.Lock()

    def should_fail(self, what: str) -> bool:
        with self.lock:
            if self.pattern is None or not re.search(self.pattern, what):
                return False
            self.seen += 1
            return self.fail is None or self.seen <= self.fail


class _Handler(http.server.BaseHTTPRequestHandler):
    def _relay(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.should_fail(f"{self.command} {self.path}"):
            data, status, ctype = json.dumps(BUSY).encode(), 503, "application/json"
        else:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            up = requests.request(self.command, self.server.upstream + self.path, data=body,
                                  headers=headers, timeout=30)
            data, status = up.content, up.status_code
            ctype = up.headers.get("Content-Type", "application/json")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = _relay

    def log_message(self, *args):
        pass


@pytest.fixture
def relay(target, monkeypatch):
    if not target.is_lab:
        pytest.skip("injects faults in front of the embedded lab's Datera")
    udc = Udc.load(target.file("datera", "udc"))
    server = Relay(f"http://{udc.mgmt_ip}:{ports.DATERA_HTTP}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(dfs_sdk.connection, "REST_PORT", server.server_address[1])
    yield server, udc
    server.shutdown()
    server.server_close()
    dfs_compat.set_retry_window(dfs_compat.RETRY_WINDOW_S)


def sdk(udc: Udc, retry: str | None = "backoff"):
    """The SDK as a user or driver would configure it: 503 retries on (its default)."""
    return dfs_sdk.get_api("127.0.0.1", udc.username, udc.password, "v2.2", tenant="/root",
                           **dfs_compat.safe_options(schema_file("retry"), retry), secure=False)


def retry_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == RETRY_LOG]


def test_a_call_retried_through_503s_succeeds_with_one_line(relay, caplog):
    server, udc = relay
    api = sdk(udc)
    server.pattern, server.fail = r"^GET /v2\.2/app_instances", 2
    caplog.set_level(logging.DEBUG)
    t0 = time.monotonic()
    assert isinstance(api.app_instances.list(), list)
    took = time.monotonic() - t0
    assert server.seen == 3                    # two 503s, then the answer
    assert 2.5 < took < 10, took               # the SDK's backoff: 1 s, then 2 s
    assert retry_lines(caplog) == [
        "dfs_sdk: GET app_instances at 127.0.0.1: HTTP 503 Service Unavailable; retrying "
        "(backoff) for up to 10 s"]
    # The SDK's own per-attempt lines are replaced by that one line.
    assert not [r for r in caplog.records if "Hit 503 Retry" in r.getMessage()]


def test_a_503_storm_gives_up_at_the_window_and_is_an_outage(relay, caplog):
    server, udc = relay
    api = sdk(udc)
    dfs_compat.set_retry_window(2)
    server.pattern, server.fail = r"^GET /v2\.2/app_instances", None
    caplog.set_level(logging.WARNING)
    t0 = time.monotonic()
    with pytest.raises(dexc.ApiTimeoutError) as info:
        api.app_instances.list()
    took = time.monotonic() - t0
    assert took < 6, took                      # attempts at 0 s and 1 s; none after 2 s
    assert server.seen == 2
    assert str(info.value.args[0]).startswith(
        "dfs_sdk: GET app_instances at 127.0.0.1: no success in ")
    assert "(2 attempts), last: HTTP 503 Service Unavailable" in str(info.value)
    assert len(retry_lines(caplog)) == 1
    assert classify(info.value) is not None    # the run pauses on it as an outage


def test_a_retried_login_never_shows_the_password(relay, caplog):
    server, udc = relay
    dfs_compat.set_retry_window(1.5)
    server.pattern, server.fail = r"^PUT /v2\.2/login", None
    caplog.set_level(logging.DEBUG)
    with pytest.raises(dexc.ApiTimeoutError) as info:
        sdk(udc)
    assert retry_lines(caplog) == [
        "dfs_sdk: login at 127.0.0.1: HTTP 503 Service Unavailable; retrying (backoff) for "
        "up to 2 s"]
    assert udc.password not in str(info.value) and udc.password not in caplog.text


def test_without_retries_a_503_fails_at_once_and_silently(relay, caplog):
    # The harness's own sessions (safe_options' default): the outage classifier decides.
    server, udc = relay
    api = sdk(udc, retry=None)
    server.pattern, server.fail = r"^GET /v2\.2/app_instances", None
    caplog.set_level(logging.WARNING)
    with pytest.raises(dexc.Api503RetryError):
        api.app_instances.list()
    assert server.seen == 1 and retry_lines(caplog) == []
