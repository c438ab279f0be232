"""Keystone v3 administration beyond users and projects, through the openstack CLI and
openstacksdk: groups, credentials and EC2 credentials, catalog administration (services,
endpoints, regions) and OS-EP-FILTER. Keystone 9/10/12 all have these APIs and the lab serves
them from one model, so the CLI tests (ten seconds a command on a loaded machine) run on Pike
only and the SDK test on every cloud.
"""
import json

import pytest
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.support.openstack import CLOUDS, unique_name


@pytest.mark.parametrize("cloud", ["pike"])
def test_osc_groups_and_group_roles(ost, cloud):
    name = unique_name("grp")
    group = ost.osc(cloud, "group", "create", name, "-f", "json", admin=True)
    user = ost.osc(cloud, "user", "create", name, "--password", "pw", "-f", "json", admin=True)
    try:
        ost.osc(cloud, "group", "add", "user", group["id"], user["id"], admin=True)
        ok = ost.osc(cloud, "group", "contains", "user", group["id"], user["id"], admin=True)
        assert "in group" in ok
        project = ost.cloud(cloud)["project"]
        ost.osc(cloud, "role", "add", "--group", group["id"], "--project", project, "_member_",
                admin=True)
        listed = ost.osc(cloud, "role", "assignment", "list", "--effective", "--user",
                         user["id"], "--names", "-f", "json", admin=True)
        assert [(a["Role"], a["Project"].split("@")[0]) for a in listed] == [("_member_", project)]
        ost.osc(cloud, "group", "remove", "user", group["id"], user["id"], admin=True)
        assert ost.osc(cloud, "role", "assignment", "list", "--effective", "--user", user["id"],
                       "-f", "json", admin=True) == []
    finally:
        ost.osc(cloud, "user", "delete", user["id"], admin=True)
        ost.osc(cloud, "group", "delete", group["id"], admin=True)


@pytest.mark.parametrize("cloud", ["pike"])
def test_osc_credentials_and_ec2(ost, cloud):
    token, body = ost.token(cloud)
    user_id, project_id = body["user"]["id"], body["project"]["id"]
    blob = json.dumps({"access": unique_name("a"), "secret": "s"})
    cred = ost.osc(cloud, "credential", "create", "--type", "ec2", "--project", project_id,
                   user_id, blob, "-f", "json", admin=True)
    try:
        shown = ost.osc(cloud, "credential", "show", cred["id"], "-f", "json", admin=True)
        assert shown["type"] == "ec2" and json.loads(shown["blob"]) == json.loads(blob)
    finally:
        ost.osc(cloud, "credential", "delete", cred["id"], admin=True)
    # the tenant makes its own EC2 keys
    ec2 = ost.osc(cloud, "ec2", "credentials", "create", "-f", "json")
    assert ec2["access"] and ec2["secret"] and ec2["project_id"] == project_id
    listed = ost.osc(cloud, "ec2", "credentials", "list", "-f", "json")
    assert ec2["access"] in [c["Access"] for c in listed]
    ost.osc(cloud, "ec2", "credentials", "delete", ec2["access"])
    gone = ost.osc(cloud, "ec2", "credentials", "show", ec2["access"], check=False)
    assert gone.returncode != 0


@pytest.mark.parametrize("cloud", CLOUDS)
def test_catalog_administration_shows_in_tokens_and_endpoint_filter(ost, cloud):
    conn = ost.connect(cloud, admin=True)
    builtin = {s.type for s in conn.identity.services()}
    assert {"identity", "image", "network", "compute"} <= builtin
    svc = conn.identity.create_service(type="vancouver-test", name=unique_name("svc"))
    try:
        region = unique_name("region")
        endpoint = conn.identity.create_endpoint(service_id=svc.id, interface="public",
                                                 url="http://127.0.0.1:1/$(project_id)s",
                                                 region_id=region)
        assert conn.identity.get_region(region).id == region      # made on demand
        token, body = ost.token(cloud, admin=True)
        added = [s for s in body["catalog"] if s["id"] == svc.id]
        assert added[0]["endpoints"][0]["url"] == f"http://127.0.0.1:1/{body['project']['id']}"
        # a project associated with one endpoint sees only that endpoint in its tokens
        auth_url = ost.auth(cloud, admin=True)["auth_url"]
        headers = {"X-Auth-Token": token}
        project = conn.identity.create_project(name=unique_name("epf"), domain_id="default")
        try:
            conn.identity.assign_project_role_to_user(project, body["user"]["id"],
                                                      conn.identity.find_role("admin"))
            assoc = f"{auth_url}/OS-EP-FILTER/projects/{project.id}/endpoints/{endpoint.id}"
            assert requests.put(assoc, headers=headers, timeout=10).status_code == 204
            scoped = ks_session.Session(auth=v3.Password(
                auth_url=auth_url, user_id=body["user"]["id"],
                password=ost.auth(cloud, admin=True)["password"], project_id=project.id))
            catalog = scoped.auth.get_access(scoped).service_catalog.catalog
            assert [s["id"] for s in catalog] == [svc.id]
        finally:
            conn.identity.delete_project(project)
        # the lab's own services follow what runs: not deletable
        identity = next(s for s in conn.identity.services() if s.type == "identity")
        refused = requests.delete(f"{auth_url}/services/{identity.id}", headers=headers,
                                  timeout=10)
        assert refused.status_code == 403
        conn.identity.delete_endpoint(endpoint)
        conn.identity.delete_region(region)
    finally:
        conn.identity.delete_service(svc)
    assert svc.id not in [s["id"] for s in ost.token(cloud, admin=True)[1]["catalog"]]
