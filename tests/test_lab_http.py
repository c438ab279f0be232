"""The lab's one HTTP core (lab/http) in process: every API answers an unknown path (404) and
a wrong method (405) in its own error body, tolerates "//" and a trailing "/", and its route
table is the one source of Datera's /api document and of OpenStack's per-route microversion
bounds. No lab processes: the apps run on aiohttp's test server."""
import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import lab.http as core


def run(app: web.Application, calls):
    """Runs `await calls(client)` against `app` on a test server; returns its result."""
    async def go():
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            return await calls(client)
    return asyncio.run(go())


# ---- the core alone ---------------------------------------------------------------------------

def test_core_routes_a_table_renders_misses_and_tolerates_slashes():
    def render(request, e):
        return web.json_response({"miss": type(e).__name__}, status=getattr(e, "status", 500))

    routes = [core.Route("GET", "/things/{id}", lambda rq: {"id": rq["id"]}),
              core.Route("GET", "/things/detail", lambda rq: {"detail": True})]

    def endpoint(route):
        async def handle(request):
            return web.json_response(route.handler(request.match_info))
        return handle

    app = core.build_app(render_error=render)
    core.register(app, routes, endpoint, prefix="/v1")

    async def calls(c):
        out = []
        for method, path in [("GET", "/v1/things/7"), ("GET", "/v1/things/detail"),
                             ("GET", "/v1//things//8/"), ("GET", "/v1/nothing"),
                             ("POST", "/v1/things/7")]:
            resp = await c.request(method, path)
            out.append((resp.status, await resp.json()))
        return out

    assert run(app, calls) == [(200, {"id": "7"}), (200, {"detail": True}), (200, {"id": "8"}),
                               (404, {"miss": "HTTPNotFound"}),
                               (405, {"miss": "HTTPMethodNotAllowed"})]


# ---- Datera -----------------------------------------------------------------------------------

@pytest.fixture
def datera_app(tmp_path):
    from lab.datera import responses, server, urls
    from lab.datera.ldapauth import Directory
    from lab.datera.metrics import Metrics
    from lab.datera.models import DateraModel, ModelConfig

    model = DateraModel(ModelConfig(vips=["127.0.0.11", "127.0.0.12"], mgmt_ip="127.0.0.10",
                                    admin_user="admin", admin_password="pw-12345678"))
    services = responses.Services(model=model, metrics=Metrics(), directory=Directory({}),
                                  cpu=server.CpuSampler(), routes=urls.ROUTES)
    return server.build_app(services)


def test_datera_misses_answer_in_datera_error_objects(datera_app):
    async def calls(c):
        out = {}
        for key, method, path in [("path", "GET", "/v2.2/no_such_thing"),
                                  ("method", "POST", "/v2.2/system"),
                                  ("version", "GET", "/v9.9/system"),
                                  ("unversioned", "GET", "/nothing")]:
            resp = await c.request(method, path, headers={"tenant": "/root"})
            out[key] = (resp.status, await resp.json())
        resp = await c.get("/api_versions")
        out["versions"] = (resp.status, await resp.json())
        resp = await c.get("/v2.2//api/")
        out["slashes"] = resp.status
        return out

    out = run(datera_app, calls)
    status, body = out["path"]
    assert status == 404 and body["name"] == "NotFoundError"
    assert body["message"] == "No data at /no_such_thing" and body["version"] == "v2.2"
    assert body["tenant"] == "/root" and body["path"] == "/no_such_thing"
    status, body = out["method"]
    assert status == 405 and body["name"] == "MethodNotAllowedError"
    assert body["message"] == "POST is not allowed on /system; allowed: GET"
    status, body = out["version"]
    assert status == 404 and body["code"] == 99 and "API versions are" in body["message"]
    assert out["unversioned"][0] == 404 and out["unversioned"][1]["name"] == "NotFoundError"
    assert out["versions"] == (200, {"api_versions": ["v2", "v2.1", "v2.2"]})
    assert out["slashes"] == 200


def test_a_datera_route_record_is_its_api_entry():
    from lab.datera import schema, urls

    probe = urls.Route("GET", "/widgets/{widget}/parts/{part:[^/].*}", lambda rq: {},
                       "Read a part", query=("since",), url_enums={"widget": ("a", "b")},
                       lab_extension=True)
    doc = schema.build([probe], "v2.2")
    entry = doc["/widgets/:widget/parts/:part"]
    assert entry["read"]["description"] == "Read a part"
    assert entry["read"]["urlParamSchema"]["widget"]["enum"] == ["a", "b"]
    assert set(entry["read"]["urlParamSchema"]) == {"widget", "part", "since"}
    assert entry["lab_extension"] is True and doc["version"] == "v2.2"
    # and the real table: every in-schema record is an /api path, no alias leaks in
    full = schema.build(urls.ROUTES, "v2.2")
    assert "/app_instances/:ai/storage_instances/:si" in full and "/root/:tenant_path" not in full


# ---- OpenStack: each service's own error style --------------------------------------------------

@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    from lab.openstack.cloud import Cloud
    from lab.openstack.config import CloudConfig

    config = CloudConfig.model_validate({
        "cloud": "pike", "release": "pike", "address": "127.0.0.1",
        "data_dir": str(tmp_path_factory.mktemp("cloud")),
        "admin": {"user": "admin", "password": "pw-a", "project": "admin"},
        "tenant": {"user": "tenant", "password": "pw-t", "project": "Vancouver-OP"},
        "services": {"cinder": {"ceph": {"address": "127.0.0.1"}}}})
    c = Cloud(config)
    c.load_services()
    return c


def _body(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.parametrize("service, wrong_method, expect_404, expect_405", [
    ("keystone", ("PUT", "/v3/auth/tokens"),
     lambda b: b["error"]["code"] == 404 and b["error"]["title"] == "Not Found",
     lambda b: b["error"]["code"] == 405 and b["error"]["title"] == "Method Not Allowed"),
    ("cinder", ("PATCH", "/"),
     lambda b: b == {"itemNotFound": {"code": 404,
                                      "message": "The resource could not be found."}},
     lambda b: b["badMethod"]["code"] == 405),
    ("nova", ("DELETE", "/v2.1"),
     lambda b: b["itemNotFound"]["code"] == 404, lambda b: b["badMethod"]["code"] == 405),
    ("neutron", ("POST", "/"),
     lambda b: b["NeutronError"]["type"] == "NotFound",
     lambda b: b["NeutronError"]["type"] == "MethodNotAllowed"),
    ("glance", ("DELETE", "/versions"),
     lambda b: "<h1>404 Not Found</h1>" in b, lambda b: "<h1>405 Method Not Allowed</h1>" in b),
])
def test_openstack_misses_answer_in_each_services_style(cloud, service, wrong_method,
                                                        expect_404, expect_405):
    from lab.openstack import server

    async def calls(c):
        miss = await c.get("/no/such/path")
        wrong = await c.request(*wrong_method)
        return (miss.status, _body(await miss.text()), miss.headers.copy(),
                wrong.status, _body(await wrong.text()))

    status, body, headers, wrong_status, wrong_body = run(
        server.build_app(cloud, cloud.services[service]), calls)
    assert status == 404 and expect_404(body)
    assert any(h.lower().endswith("request-id") for h in headers)
    assert wrong_status == 405 and expect_405(wrong_body)


def test_openstack_route_record_carries_its_microversion_bounds(cloud):
    from lab.openstack import api
    from lab.openstack.cinder import urls
    from lab.openstack.microversion import Microversion

    attachments = next(r for r in urls.ROUTES
                       if (r.method, r.path) == ("POST", "/v3/{project_id}/attachments"))
    assert attachments.bounds() == (Microversion(3, 27), None)
    assert api.Route("GET", "/x", None, max_version="3.5").bounds() == (None, Microversion(3, 5))
    # the handler of a route is found in the one table
    action = next(r for r in urls.ROUTES
                  if (r.method, r.path) == ("POST", "/v3/{project_id}/volumes/{volume_id}/action"))
    assert action.handler.__name__ == "volume_action"
