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
