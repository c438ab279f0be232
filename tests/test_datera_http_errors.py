"""Bad requests to the Datera lab over raw HTTP: every one gets the right status and a JSON
object with name, http, code and message, and the lab keeps serving afterwards."""
import json
import uuid

import pytest
import requests

from clients import ports
from tests.support.dsdk import Udc

CAP = 30000


@pytest.fixture(scope="module")
def udc(target) -> Udc:
    return Udc.load(target.file("datera", "udc"), target.file("datera", "ca_file"))


def _with_verify(request, ca_file):
    def call(*args, **kwargs):
        kwargs.setdefault("verify", ca_file)
        return request(*args, **kwargs)
    return call


class Http:
    def __init__(self, udc: Udc, version: str = "v2.2"):
        self.udc = udc
        self.base = f"https://{udc.mgmt_ip}:{ports.DATERA_HTTPS}"
        self.version = version
        self.session = requests.Session()
        # Given per request too: requests lets REQUESTS_CA_BUNDLE override a Session's verify.
        self.session.verify = udc.ca_file
        self.session.request = _with_verify(self.session.request, udc.ca_file)
        self.key = None

    def call(self, method, path, *, token=True, tenant="/root", raw=None, body=None, headers=None,
             prefix=True):
        h = {"content-type": "application/json"}
        if token and self.key:
            h["Auth-Token"] = self.key
        if tenant is not None:
            h["tenant"] = tenant
        h.update(headers or {})
        url = f"{self.base}/{self.version}{path}" if prefix else f"{self.base}{path}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return self.session.request(method, url, data=data, headers=h, timeout=10)

    def login(self):
        r = self.call("PUT", "/login", token=False, tenant=None,
                      body={"name": self.udc.username, "password": self.udc.password})
        assert r.status_code == 200, r.text
        self.key = r.json()["key"]
        return r.json()


@pytest.fixture(scope="module")
def http(udc) -> Http:
    h = Http(udc)
    h.login()
    return h


@pytest.fixture
def tenant(http):
    name = f"verr-{uuid.uuid4().hex[:8]}"
    assert http.call("POST", "/tenants", body={"name": name}).status_code == 200
    yield f"/root/{name}"
    for ai in http.call("GET", "/app_instances", tenant=f"/root/{name}").json()["data"]:
        http.call("DELETE", ai["path"], tenant=f"/root/{name}", body={"force": True})
    http.call("DELETE", f"/tenants/root/{name}", body={})


def assert_error(r, status: int, name: str, contains: str = ""):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body, dict)
    assert body["http"] == status and body["name"] == name, body
    assert isinstance(body["code"], int) and body["message"]
    assert contains in body["message"], body["message"]
    return body


def still_serving(http):
    r = http.call("GET", "/system")
    assert r.status_code == 200 and r.json()["data"]["sw_version"]


def test_api_versions_is_public_and_login_returns_key_version_request_time(http, udc):
    r = http.call("GET", "/api_versions", token=False, tenant=None, prefix=False)
    assert r.status_code == 200 and "v2.2" in r.json()["api_versions"]
    login = Http(udc).login()
    assert login["key"] and login["version"] == "v2.2" and isinstance(login["request_time"], int)


def test_login_accepts_a_form_body_as_go_sdk_sends_it(http, udc):
    r = http.session.put(f"{http.base}/v2.2/login", timeout=10,
                         data={"name": udc.username, "password": udc.password})
    assert r.status_code == 200 and r.json()["key"]


def test_bad_credentials(http, udc):
    r = http.call("PUT", "/login", token=False, tenant=None,
                  body={"name": udc.username, "password": "wrong-password"})
    body = assert_error(r, 401, "AuthFailedError")
    assert "wrong-password" not in json.dumps(body)
    assert_error(http.call("PUT", "/login", token=False, tenant=None, body={"name": "x"}),
                 400, "InvalidRequestError")
    still_serving(http)


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "\"string\"", "{\"a\": "])
def test_malformed_json_bodies(http, raw):
    assert_error(http.call("POST", "/tenants", raw=raw), 400, "InvalidRequestError")
    still_serving(http)


def test_unknown_paths_and_versions(http):
    assert_error(http.call("GET", "/no_such_thing"), 404, "NotFoundError", "No data at /no_such_thing")
    assert_error(http.call("GET", "/app_instances/" + str(uuid.uuid4())), 404, "NotFoundError",
                 "No data at /app_instances/")
    r = http.session.get(f"{http.base}/v9.9/system", timeout=10)
    assert assert_error(r, 404, "NotFoundError")["code"] == 99
    assert_error(http.session.get(f"{http.base}/nothing", timeout=10), 404, "NotFoundError")
    still_serving(http)


def test_missing_unknown_and_expired_tokens(http):
    assert_error(http.call("GET", "/system", token=False), 401, "AuthFailedError")
    r = http.call("GET", "/system", headers={"Auth-Token": "0" * 32})
    assert_error(r, 401, "AuthFailedError",
                 "The key provided with the request does not correspond to a valid session.")
    still_serving(http)


def test_wrong_or_unknown_tenant_is_a_missing_object(http):
    body = assert_error(http.call("GET", "/app_instances", tenant="/root/no-such-tenant"),
                        404, "NotFoundError", "No data at /app_instances")
    assert body["message"] == "No data at /app_instances"
    still_serving(http)


def test_invalid_field_values_and_unknown_fields(http, tenant):
    bad_bodies = [
        {"name": "x"},                                              # name too short
        {"name": "ok-name", "create_mode": "bogus"},                # not an enum value
        {"name": "ok-name", "admin_state": "sideways"},
        {"name": "ok-name", "colour": "blue"},                      # unknown field
        {"name": "ok-name", "storage_instances": [{"name": "storage-1", "volumes": [
            {"name": "volume-1", "size": 0}]}]},                     # size below 1 GiB
        {"name": "ok-name", "storage_instances": [{"name": "storage-1", "volumes": [
            {"name": "volume-1", "size": 1, "replica_count": 9}]}]},
        {"name": "ok-name", "storage_instances": [{"name": "storage-1", "volumes": [
            {"name": "volume-1", "size": True}]}]},
        {"name": "ok-name", "storage_instances": "storage-1"},
        {"name": "ok-name", "snapshot_policies": [{"name": "hourly"}]},   # not implemented: said so
        {"name": "ok-name", "clone_src": {"path": "/app_instances/x"},
         "clone_volume_src": {"path": "/app_instances/y"}},          # two sources
    ]
    for body in bad_bodies:
        assert_error(http.call("POST", "/app_instances", tenant=tenant, body=body),
                     400, "InvalidRequestError")
    assert http.call("GET", "/app_instances", tenant=tenant).json()["data"] == []   # nothing half-made
    r = http.session.get(f"{http.base}/v2.2/initiators", params={"limit": 0},
                         headers={"Auth-Token": http.key, "tenant": tenant}, timeout=10)
    assert_error(r, 400, "InvalidRequestError")   # a page of 0 would loop the SDK forever
    r = http.session.get(f"{http.base}/v2.2/initiators", params={"filter": "eq(name,x)"},
                         headers={"Auth-Token": http.key, "tenant": tenant}, timeout=10)
    assert_error(r, 400, "InvalidRequestError")
    still_serving(http)


def test_duplicate_is_a_conflict(http, tenant):
    body = {"name": "dup-ai", "storage_instances": []}
    assert http.call("POST", "/app_instances", tenant=tenant, body=body).status_code == 200
    assert_error(http.call("POST", "/app_instances", tenant=tenant, body=body), 409, "ConflictError")
    assert_error(http.call("POST", "/tenants", body={"name": "root"}), 409, "ConflictError")


def test_wrong_method(http):
    body = assert_error(http.call("DELETE", "/system", body={}), 405, "MethodNotAllowedError")
    assert "GET" in body["message"]
    assert_error(http.call("POST", "/api_versions", prefix=False, tenant=None), 404, "NotFoundError")
    still_serving(http)


def test_get_bodies_are_ignored_and_double_slashes_tolerated(http, tenant):
    r = http.call("GET", "/system", raw="{this is not json")
    assert r.status_code == 200
    short = tenant.lstrip("/")
    r = http.call("GET", f"//tenants//{short}")
    assert r.status_code == 200 and r.json()["data"]["path"] == tenant


def test_every_success_is_a_json_object_with_envelope(http, tenant):
    r = http.call("POST", "/app_instances", tenant=tenant,
                  body={"name": "env-ai", "storage_instances": [{"name": "storage-1", "volumes": [
                      {"name": "volume-1", "size": 1}]}]})
    ai = r.json()
    assert set(ai) >= {"data", "tenant", "path", "version"} and ai["tenant"] == tenant
    r = http.call("DELETE", ai["data"]["path"], tenant=tenant, body={"force": True})
    assert r.status_code == 200 and isinstance(r.json()["data"], dict)
    # go-sdk's flat /metadata (the < 3.3 path) works next to dfs_sdk's int_ecosystem_data
    r = http.call("POST", "/app_instances", tenant=tenant, body={"name": "meta-ai"})
    path = r.json()["data"]["path"]
    r = http.call("PUT", f"{path}/metadata", tenant=tenant, body={"fs_type": "ext4", "formatted": True})
    assert r.json()["data"] == {"fs_type": "ext4", "formatted": True}
    assert_error(http.call("PUT", f"{path}/metadata", tenant=tenant, body={"nested": {"a": 1}}),
                 400, "InvalidRequestError")


def test_tenant_qos_validation(http, tenant):
    assert_error(http.call("PUT", "/tenant_qos", tenant=tenant, body={"total_iops_max": "lots"}),
                 400, "InvalidRequestError")
    assert_error(http.call("PUT", "/tenant_qos", tenant=tenant, body={"iops": 5}),
                 400, "InvalidRequestError")
    assert_error(http.call("PUT", "/tenant_qos", tenant="all", body={"total_iops_max": 5}),
                 400, "InvalidRequestError")
    still_serving(http)
