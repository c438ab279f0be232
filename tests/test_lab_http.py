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

def core_answers(routes: list, requests: list[tuple[str, str]]) -> list[tuple[int, dict]]:
    """(status, JSON body) of each (method, path) against an app of the core alone serving
    `routes` under /v1: a handler's body is handler(match_info), a miss's {"miss": <error>}."""
    def render(request, e):
        return web.json_response({"miss": type(e).__name__}, status=getattr(e, "status", 500))

    def endpoint(route):
        async def handle(request):
            return web.json_response(route.handler(request.match_info))
        return handle

    app = core.build_app(render_error=render)
    core.register(app, routes, endpoint, prefix="/v1")

    async def calls(c):
        out = []
        for method, path in requests:
            resp = await c.request(method, path)
            out.append((resp.status, await resp.json()))
        return out
    return run(app, calls)


def test_core_routes_a_table_renders_misses_and_tolerates_slashes():
    routes = [core.Route("GET", "/things/{id}", lambda rq: {"id": rq["id"]}),
              core.Route("GET", "/things/detail", lambda rq: {"detail": True})]
    got = core_answers(routes, [("GET", "/v1/things/7"), ("GET", "/v1/things/detail"),
                                ("GET", "/v1//things//8/"), ("GET", "/v1/nothing"),
                                ("POST", "/v1/things/7")])
    assert got == [(200, {"id": "7"}), (200, {"detail": True}), (200, {"id": "8"}),
                   (404, {"miss": "HTTPNotFound"}), (405, {"miss": "HTTPMethodNotAllowed"})]


def test_core_empty_id_is_404_but_a_trailing_slash_still_serves_a_list_or_version():
    """`GET /v3/{p}/volumes/` is a show of volume "" (404) in the real services, not the list;
    "/v1/" and "/v1/things/detail/" still serve (no parameter stands where the slash is)."""
    routes = [core.Route("GET", "", lambda rq: {"version": 1}),
              core.Route("GET", "/things", lambda rq: {"list": True}),
              core.Route("GET", "/things/detail", lambda rq: {"detail": True}),
              core.Route("GET", "/things/{id}", lambda rq: {"id": rq["id"]}),
              core.Route("POST", "/things/{id}/action", lambda rq: {"acted": rq["id"]})]
    got = core_answers(routes, [("GET", "/v1/things/"), ("GET", "/v1/things//"),
                                ("GET", "/v1//things//7"), ("GET", "/v1/"),
                                ("GET", "/v1/things/detail/"), ("GET", "/v1/things")])
    assert got == [(404, {"miss": "HTTPNotFound"}), (404, {"miss": "HTTPNotFound"}),
                   (200, {"id": "7"}), (200, {"version": 1}),
                   (200, {"detail": True}), (200, {"list": True})]


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


# ---- the services' config files: pydantic models, one line naming the key path ---------------

def _datera_config(tmp_path) -> dict:
    return {"mgmt_ip": "127.0.0.10", "http_port": 7717, "https_port": 7718,
            "tls_cert": str(tmp_path / "c.pem"), "tls_key": str(tmp_path / "k.pem"),
            "vips": ["127.0.0.11", "127.0.0.12"], "nbd_port": 10809, "login_port": 3260,
            "data_dir": str(tmp_path), "admin_user": "admin", "admin_password": "pw",
            "ldap": {"ldap-1": {"url": "ldap://127.0.0.8", "base_dn": "dc=lab"}}}


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("nbd_port"), "missing key 'nbd_port'"),
    (lambda d: d.update(colour="red"), "unknown key 'colour'"),
    (lambda d: d.update(vips=["127.0.0.11"]), "vips: List should have at least 2 items"),
    (lambda d: d["vips"].__setitem__(1, "10.1.1.1"),
     "vips[1]: 10.1.1.1 is not in 127.0.0.0/8 (the lab binds to loopback only)"),
    (lambda d: d.update(https_port=70000), "https_port: Input should be less than or equal"),
    (lambda d: d["ldap"]["ldap-1"].pop("base_dn"), "missing key 'ldap.ldap-1.base_dn'"),
])
def test_datera_config_errors_are_one_line_naming_the_key(tmp_path, change, message):
    from lab.datera.config import Config, ConfigError

    doc = _datera_config(tmp_path)
    change(doc)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as e:
        Config.load(path)
    assert str(e.value).startswith(f"{path}: {message}") and "\n" not in str(e.value)
    assert "pw" not in repr(Config.model_validate(_datera_config(tmp_path)))


def test_cloud_config_errors_are_one_line_naming_the_key(tmp_path):
    from lab.openstack.config import CloudConfig, ConfigError

    doc = {"cloud": "pike", "release": "pike", "address": "127.0.3.1", "data_dir": str(tmp_path),
           "admin": {"user": "admin", "password": "pw-a", "project": "admin"},
           "tenant": {"user": "t", "password": "pw-t", "project": "Vancouver-OP"},
           "compute_nodes": [{"name": "c1", "address": "127.0.3.1"},
                             {"name": "c2", "address": "192.168.0.2"}]}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"compute_nodes\[1\]\.address: 192.168.0.2 is not in "
                                          r"127.0.0.0/8"):
        CloudConfig.load(path)
    doc["compute_nodes"].pop()
    del doc["tenant"]["project"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"missing key 'tenant.project'$"):
        CloudConfig.load(path)
    doc["tenant"]["project"] = "Vancouver-OP"
    path.write_text(json.dumps(doc))
    config = CloudConfig.load(path)
    assert config.compute_nodes[0].name == "c1" and "pw-t" not in repr(config)


def test_the_configs_components_write_load_with_their_models(tmp_path):
    """lab/components.py writes each service's config as a plain dict (the supervisor stays
    free of pydantic's import time on the boot path); the service's model accepts it."""
    from lab import component_base, components, components_openstack
    from lab.datera.config import Config
    from lab.openstack.cinder import CinderSettings
    from lab.openstack.config import CloudConfig

    run = component_base.LabRun(tmp_path, component_base.new_secrets())
    components.BY_NAME["datera"].prepare(run)
    assert Config.load(components._datera_config_path(run)).ldap
    for oc in components_openstack.OPENSTACK_CLOUDS:
        components.BY_NAME[oc.component].prepare(run)
        config = CloudConfig.load(components_openstack._os_config_path(run, oc))
        assert CinderSettings.model_validate(config.services["cinder"]).datera.http_port
