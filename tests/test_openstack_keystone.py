"""The lab's OpenStack clouds, identity side: Keystone v3 through openstacksdk 4.22 and the
openstack CLI (python-openstackclient) against Mitaka, Newton and Pike, plus the framework's
shared behaviour (tokens, microversions, error bodies) that every service relies on.

The shared helpers (clouds, connect, osc, raw) live in tests/support/openstack.py and the
`ost` fixture in tests/conftest.py.
"""
import uuid

import openstack
import openstack.config
import pytest
import requests

from tests.support.openstack import CLOUDS, password_auth

KEYSTONE_V3_ID = {"mitaka": "v3.6", "newton": "v3.7", "pike": "v3.8"}


# ---- discovery ---------------------------------------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_version_documents_are_served_without_a_token(ost, cloud):
    base = ost.auth(cloud)["auth_url"].rsplit("/v3", 1)[0]
    root = requests.get(base + "/", timeout=10)
    assert root.status_code == 300
    values = root.json()["versions"]["values"]
    assert values[0]["id"] == KEYSTONE_V3_ID[cloud] and values[0]["status"] == "stable"
    assert values[1]["id"] == "v2.0"
    assert values[1]["status"] == ("stable" if cloud == "mitaka" else "deprecated")
    for path in ("/v3", "/v3/"):
        v3 = requests.get(base + path, timeout=10)
        assert v3.status_code == 200
        assert v3.json()["version"]["id"] == KEYSTONE_V3_ID[cloud]
        assert v3.json()["version"]["links"][0]["href"] == base + "/v3/"


# ---- tokens and catalog through openstacksdk ---------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_sdk_tenant_token_is_scoped_to_the_cloud_project(ost, cloud):
    conn = ost.connect(cloud)
    access = conn.session.auth.get_access(conn.session)
    assert access.project_name == ost.cloud(cloud)["project"]
    assert access.role_names == ["_member_"]
    types = {s["type"] for s in access.service_catalog.catalog}
    assert {"identity", "image", "network"} <= types
    # the tenant may read its own project but not list all of them
    assert conn.identity.get_project(access.project_id).name == ost.cloud(cloud)["project"]
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(conn.identity.projects())


@pytest.mark.parametrize("cloud", CLOUDS)
def test_sdk_admin_manages_projects_users_and_roles(ost, cloud):
    conn = ost.connect(cloud, admin=True)
    suffix = uuid.uuid4().hex[:8]
    domain = conn.identity.find_domain("Default")
    assert domain.id == "default"
    project = conn.identity.create_project(name=f"vancouver-test-{suffix}", domain_id=domain.id)
    try:
        user = conn.identity.create_user(name=f"vancouver-test-{suffix}", password="pw-" + suffix,
                                         domain_id=domain.id, default_project_id=project.id)
        try:
            role = conn.identity.find_role("_member_")
            assert not conn.identity.validate_user_has_project_role(project, user, role)
            conn.identity.assign_project_role_to_user(project, user, role)
            assert conn.identity.validate_user_has_project_role(project, user, role)
            assert conn.identity.find_project(project.name).id == project.id
            assert conn.identity.find_user(user.name).id == user.id
            # the new user logs in, scoped to the new project
            other = openstack.connect(auth_url=ost.auth(cloud, admin=True)["auth_url"],
                                      username=user.name, password="pw-" + suffix,
                                      project_name=project.name, user_domain_name="Default",
                                      project_domain_name="Default")
            assert other.session.auth.get_project_id(other.session) == project.id
        finally:
            conn.identity.delete_user(user)
    finally:
        conn.identity.delete_project(project)
    assert conn.identity.find_project(project.name) is None


def test_domain_scoped_admin_token_has_no_project_endpoints(ost):
    auth = ost.auth("pike", admin=True)
    body = password_auth(auth)
    body["auth"]["scope"] = {"domain": {"name": "Default"}}
    resp = requests.post(f"{auth['auth_url']}/auth/tokens", json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    assert token["domain"]["name"] == "Default" and "project" not in token
    assert "admin" in [r["name"] for r in token["roles"]]
    # project-templated endpoints (Cinder, Mitaka Nova) cannot be filled in for a domain scope
    assert all("{project_id}" not in e["url"] for s in token["catalog"] for e in s["endpoints"])


def test_token_validate_and_revoke(ost):
    auth = ost.auth("newton")
    token, body = ost.token("newton")
    headers = {"X-Auth-Token": token, "X-Subject-Token": token}
    got = requests.get(f"{auth['auth_url']}/auth/tokens", headers=headers, timeout=10)
    assert got.status_code == 200 and got.headers["X-Subject-Token"] == token
    assert got.json()["token"]["audit_ids"] == body["audit_ids"]
    assert "password_expires_at" in got.json()["token"]["user"]   # 3.7+
    assert requests.delete(f"{auth['auth_url']}/auth/tokens", headers=headers,
                           timeout=10).status_code == 204
    # a revoked token is refused by every service of the cloud
    image = ost.endpoint("newton", "image")
    gone = requests.get(f"{image}/v2/images", headers={"X-Auth-Token": token}, timeout=10)
    assert gone.status_code == 401
    assert gone.json()["error"]["code"] == 401
    assert gone.headers["WWW-Authenticate"].startswith("Keystone uri=")


# ---- the openstack CLI -------------------------------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_osc_token_issue_catalog_and_project_list(ost, cloud):
    issued = ost.osc(cloud, "token", "issue", "-f", "json")
    assert issued["id"] and issued["project_id"] and issued["user_id"]
    catalog = ost.osc(cloud, "catalog", "list", "-f", "json")
    assert {"identity", "image", "network"} <= {c["Type"] for c in catalog}
    projects = ost.osc(cloud, "project", "list", "-f", "json", admin=True)
    assert {"admin", ost.cloud(cloud)["project"]} <= {p["Name"] for p in projects}


# ---- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_wrong_password_is_401_with_keystone_error_body(ost, cloud):
    auth = ost.auth(cloud)
    resp = requests.post(f"{auth['auth_url']}/auth/tokens",
                         json=password_auth(auth, password="not-the-password"), timeout=10)
    assert resp.status_code == 401
    assert resp.json() == {"error": {"code": 401, "title": "Unauthorized",
                                     "message": "The request you have made requires "
                                                "authentication."}}
    assert "X-Subject-Token" not in resp.headers
    with pytest.raises(openstack.exceptions.SDKException, match="HTTP 401"):
        openstack.connect(auth_url=auth["auth_url"], username=auth["username"],
                          password="wrong", project_name=auth["project_name"],
                          user_domain_name="Default", project_domain_name="Default").authorize()


def test_malformed_auth_bodies_are_400(ost):
    url = ost.auth("mitaka")["auth_url"] + "/auth/tokens"
    bad_json = requests.post(url, data=b"{not json", timeout=10,
                             headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["title"] == "Bad Request"
    no_identity = requests.post(url, json={"auth": {}}, timeout=10)
    assert no_identity.status_code == 400
    assert "Expecting to find identity" in no_identity.json()["error"]["message"]


def test_unknown_ids_are_404_and_non_admin_is_403(ost):
    auth = ost.auth("pike")
    admin_token, _ = ost.token("pike", admin=True)
    tenant_token, _ = ost.token("pike")
    missing = requests.get(f"{auth['auth_url']}/projects/{uuid.uuid4().hex}",
                           headers={"X-Auth-Token": admin_token}, timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"].startswith("Could not find project:")
    denied = requests.get(f"{auth['auth_url']}/users", headers={"X-Auth-Token": tenant_token},
                          timeout=10)
    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == ("You are not authorized to perform the "
                                                 "requested action: identity:list_users.")
    no_token = requests.get(f"{auth['auth_url']}/projects", timeout=10)
    assert no_token.status_code == 401
    dup = requests.post(f"{auth['auth_url']}/projects", headers={"X-Auth-Token": admin_token},
                        json={"project": {"name": "admin"}}, timeout=10)
    assert dup.status_code == 409
    # the cloud still serves after all of that
    assert requests.get(auth["auth_url"], timeout=10).status_code == 200


# ---- the framework: microversions, on a throwaway service of its own ---------------------

def test_framework_microversion_negotiation():
    from multidict import CIMultiDict

    from lab.openstack.microversion import MicroversionSpec, VersionNotAcceptable
    from lab.openstack.releases import PROFILES

    nova = MicroversionSpec("compute", "/v2.1", lambda p: (p.nova_min, p.nova_max),
                            legacy_header="X-OpenStack-Nova-API-Version",
                            new_header_honoured=lambda p: p.nova_honours_new_header)
    mitaka, pike = PROFILES["mitaka"], PROFILES["pike"]
    new = CIMultiDict({"OpenStack-API-Version": "compute 2.30"})
    # Mitaka reads only the legacy header: the new one alone means the minimum
    assert str(nova.negotiate(new, mitaka)) == "2.1"
    assert str(nova.negotiate(new, pike)) == "2.30"
    both = CIMultiDict({"OpenStack-API-Version": "compute 2.53",
                        "X-OpenStack-Nova-API-Version": "2.53"})
    with pytest.raises(VersionNotAcceptable, match="Minimum is 2.1 and maximum is 2.25"):
        nova.negotiate(both, mitaka)
    assert str(nova.negotiate(CIMultiDict({"X-OpenStack-Nova-API-Version": "latest"}),
                              mitaka)) == "2.25"
    with pytest.raises(ValueError, match="invalid format"):
        nova.negotiate(CIMultiDict({"OpenStack-API-Version": "compute 2.x"}), pike)
    assert nova.response_headers(nova.negotiate(both, pike), pike) == {
        "OpenStack-API-Version": "compute 2.53", "X-OpenStack-Nova-API-Version": "2.53",
        "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"}
    assert nova.response_headers(nova.negotiate(CIMultiDict(), mitaka), mitaka) == {
        "X-OpenStack-Nova-API-Version": "2.1", "Vary": "X-OpenStack-Nova-API-Version"}


def test_framework_dispatch_answers_microversions_as_cinder_does(tmp_path):
    """A throwaway Cinder-like service on the framework, in process: 406/400/404 bodies."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from lab.openstack import api, cloud as os_cloud, faults, server
    from lab.openstack.config import CloudConfig, Credentials
    from lab.openstack.microversion import MicroversionSpec

    config = CloudConfig(cloud="pike", release="pike", address="127.0.0.1",
                         data_dir=tmp_path, admin=Credentials("admin", "pw-a", "admin"),
                         tenant=Credentials("tenant", "pw-t", "Vancouver-OP"))
    cloud = os_cloud.Cloud(config)
    cloud.load_services(("keystone",))

    class Probe(os_cloud.Service):
        name, error_body = "probe", staticmethod(faults.fault)
        microversions = MicroversionSpec("volume", "/v3", lambda p: (p.cinder_min, p.cinder_max))

        def routes(self):
            return [api.Route("GET", "/v3/{project_id}/things",
                              lambda rq: api.ok({"version": str(rq.version)})),
                    api.Route("GET", "/v3/{project_id}/attachments", lambda rq: api.ok({}),
                              min_version="3.27")]

    probe = Probe(cloud)
    token, _ = cloud.identity.authenticate(password_auth(
        {"username": "tenant", "password": "pw-t", "project_name": "Vancouver-OP"})["auth"])
    project = cloud.identity.project_by_name("Vancouver-OP").id

    async def run():
        async with TestClient(TestServer(server.build_app(cloud, probe), host="127.0.0.1")) as c:
            async def get(path, version=None, tok=token):
                headers = {"X-Auth-Token": tok} if tok else {}
                if version:
                    headers["OpenStack-API-Version"] = f"volume {version}"
                resp = await c.get(path, headers=headers)
                return resp.status, resp.headers, await resp.json()

            status, headers, body = await get(f"/v3/{project}/things")
            assert (status, body) == (200, {"version": "3.0"})
            assert headers["OpenStack-API-Version"] == "volume 3.0"
            assert headers["x-openstack-request-id"].startswith("req-")
            assert (await get(f"/v3/{project}/things", "latest"))[2] == {"version": "3.43"}
            status, _, body = await get(f"/v3/{project}/things", "3.44")
            assert (status, body) == (406, {"computeFault": {"code": 406, "message":
                "Version 3.44 is not supported by the API. Minimum is 3.0 and maximum is 3.43."}})
            status, _, body = await get(f"/v3/{project}/things", "3.x")
            assert status == 400 and "invalid format" in body["badRequest"]["message"]
            status, _, body = await get(f"/v3/{project}/attachments", "3.15")
            assert (status, body) == (404, {"itemNotFound": {"code": 404, "message":
                "API version 3.15 is not supported on this method."}})
            assert (await get(f"/v3/{project}/attachments", "3.27"))[0] == 200
            status, _, body = await get(f"/v3/{'0' * 32}/things")
            assert status == 400 and "Malformed request URL" in body["badRequest"]["message"]
            status, _, body = await get(f"/v3/{project}/things", tok="gAAAAABwrong")
            assert status == 401 and body["error"]["code"] == 401
            status, _, body = await get(f"/v3/{project}/nothing")
            assert status == 404 and body["itemNotFound"]["code"] == 404

    asyncio.run(run())
