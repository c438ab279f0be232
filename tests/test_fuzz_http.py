"""Fuzzed bad input to every route of the lab's Datera and OpenStack APIs (issue 13 item 5).

The routes come from the lab's own tables (lab.datera.urls, each OpenStack service's routes()),
never from a list kept here. Each Hypothesis example sends one wrong request (tests/support/
fuzz.py: KINDS) and asserts a 4xx in the API's own error body, never a 5xx or a dropped
connection, and that a normal request works right after. The apps are the lab's, served in this
process (no shared lab touched). The "ci" profile bounds and derandomizes the run; bench/
bench_fuzz.py runs the "long" one and prints the counts.

Below the properties, one named regression test per kind of fault the fuzzing found.
"""
import json
import os

import pytest
from hypothesis import given, settings

from tests.support import fuzz
from tests.support.fuzz_apis import datera_api, openstack_apis, LoopThread

PROFILE = os.environ.get("VANCOUVER_FUZZ_PROFILE", "ci")
OPENSTACK = ("keystone", "cinder", "nova", "glance", "neutron")


@pytest.fixture(scope="module")
def lt():
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def datera(lt, tmp_path_factory):
    api, served = datera_api(lt, tmp_path_factory.mktemp("datera"))
    yield api
    served.close()


@pytest.fixture(scope="module", params=["mitaka", "pike"])
def clouds(request, lt, tmp_path_factory):
    apis, served = openstack_apis(lt, tmp_path_factory.mktemp(request.param), request.param)
    yield apis
    served.close()


def test_fuzz_datera_routes(datera):
    @settings(settings.get_profile(PROFILE))
    @given(req=fuzz.requests(datera))
    def prop(req):
        fuzz.exercise(datera, req)
    prop()


@pytest.mark.parametrize("service", OPENSTACK)
def test_fuzz_openstack_routes(clouds, service):
    api = clouds[service]

    @settings(settings.get_profile(PROFILE))
    @given(req=fuzz.requests(api))
    def prop(req):
        fuzz.exercise(api, req)
    prop()


# ---- the kinds of fault the fuzzing found, one regression test each ---------------------------

def _all_apis(datera, clouds):
    return [datera, *(clouds[s] for s in OPENSTACK)]


def _a_body_route(api):
    """A create route of the API's table that reads its body (fixed: the first POST)."""
    method, template, _public, _fields = next(r for r in api.routes if r[0] == "POST"
                                              and "{" not in r[1].replace("{project_id}", ""))
    return method, fuzz.fill(template, {p: api.known[p] for p in fuzz.params(template)})


def test_deeply_nested_json_is_a_400_in_each_apis_own_error_body(datera, clouds):
    """Found: `[` * 100000 as a body was a 500 in every API (json.loads raises RecursionError,
    not ValueError); now lab/http/body.loads makes it each API's 400."""
    for api in _all_apis(datera, clouds):
        method, path = _a_body_route(api)
        req = fuzz.Req("syntax", method, path, api.auth + [(b"Content-Type", b"application/json")],
                       b"[" * 100000)
        ans = fuzz.exercise(api, req)
        assert ans.status == 400, (api.name, ans.status, ans.body[:200])


def test_a_body_over_the_size_limit_is_a_413_in_each_apis_own_error_body(datera, clouds):
    """Found: a body over client_max_size was a 500 (aiohttp's HTTPRequestEntityTooLarge went
    to the renderers as an unknown exception); now each API answers 413 in its own style."""
    for api in _all_apis(datera, clouds):
        method, path = _a_body_route(api)
        limit = 4 << 20 if api.name == "datera" else 16 << 20
        req = fuzz.Req("syntax", method, path, api.auth + [(b"Content-Type", b"application/json")],
                       b'{"name": "' + b"a" * limit + b'"}')
        ans = fuzz.exercise(api, req)
        assert ans.status == 413, (api.name, ans.status, ans.body[:200])
        assert b"larger than" in ans.body


def test_a_credential_blob_nested_deeply_is_not_a_500():
    """The same kind inside a value: an ec2 credential's blob is JSON the model parses."""
    from lab.openstack.keystone.credentials import Credential
    blob = Credential(id="x", user_id="u", project_id=None, type="ec2", blob="[" * 100000)
    assert blob.ec2() == {}


# ---- requests the HTTP parser refuses before any route (lab/http/rejects.py) ------------------

def _raw(port: int, data: bytes) -> tuple[bytes, dict, bytes]:
    """Sends raw bytes, reads until the server closes: (status line, headers, body)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines)}
    return status, headers, body


def _unparsable(path: bytes) -> dict[str, bytes]:
    """One request per kind aiohttp's parser refuses (each closes the connection)."""
    return {
        "header line over 8 KiB": b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Big: "
                                  + b"a" * 9000 + b"\r\n\r\n",
        "bad request line": b"HELLO\r\n\r\n",
        "unknown method": b"FOOBAR " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "bad chunked encoding": b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                                b"chunked\r\nContent-Type: application/json\r\n\r\nZZ\r\n{}\r\n"
                                b"0\r\n\r\n",
        "bad HTTP version": b"GET " + path + b" HTTP/9.9\r\nHost: x\r\n\r\n",
        "bytes outside ASCII in the path": b"GET " + path + b"/\xff\xfe HTTP/1.1\r\n"
                                           b"Host: x\r\n\r\n",
    }


def test_unparsable_requests_get_the_datera_error_object(datera):
    """Was aiohttp's text/plain 400 naming its parser's complaint; the DSP answers every bad
    request with its JSON error object."""
    for kind, data in _unparsable(b"/v2.2/app_instances").items():
        status, headers, body = _raw(datera.port, data)
        assert status.split()[1] == b"400", (kind, status, body[:200])
        assert headers[b"content-type"].startswith(b"application/json"), (kind, headers)
        err = json.loads(body)
        assert err["http"] == 400 and err["name"] == "InvalidRequestError", (kind, err)
        assert err["message"].startswith("Bad request: "), (kind, err)
        assert datera.served().status == 200


def test_unparsable_requests_get_eventlets_answers_in_openstack(clouds):
    """As eventlet.wsgi (the APIs' server in Mitaka..Pike) answers: its bare 400 for a long
    header line, http.server's error page for a line it cannot parse, 505 for HTTP/2+; a
    method name and a chunked body reach the API, which answers in its own fault style."""
    for service in OPENSTACK:
        api = clouds[service]
        path = api.health[1]
        wrong_method = fuzz.send(api.port, "PATCH" if service != "keystone" else "DELETE",
                                 b"/", api.auth)   # the API's usual 4xx style
        for kind, data in _unparsable(path).items():
            status, headers, body = _raw(api.port, data)
            where = (service, kind, status, body[:200])
            if kind == "header line over 8 KiB":
                assert status == b"HTTP/1.0 400 Header Line Too Long" and not body, where
                assert headers[b"content-length"] == b"0", where
            elif kind == "bad request line":
                assert status.split()[1] == b"400" and b"Error code: 400" in body, where
                assert headers[b"content-type"].startswith(b"text/html"), where
            elif kind == "bad HTTP version":
                assert status.split()[1] == b"505" and b"Error code: 505" in body, where
            elif kind == "bytes outside ASCII in the path":   # routed: no route matches
                assert status.split()[1] == b"404", where
                assert headers[b"content-type"].split(b";")[0].strip() == \
                    wrong_method.content_type.encode(), where
            elif kind == "unknown method":
                assert status.split()[1] == b"405" and b"FOOBAR" in body, where
                assert headers[b"content-type"].split(b";")[0].strip() == \
                    wrong_method.content_type.encode(), where
            else:
                assert status.split()[1] == b"400" and b"chunked" in body, where
            assert headers.get(b"connection", b"").lower() == b"close", where
            assert api.served().status < 300, where
