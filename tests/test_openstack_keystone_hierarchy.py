"""Keystone's project hierarchy rules on enable/disable (keystone/resource/core.py at 9.0.0 -
12.0.0), through openstacksdk as an admin, and what they mean for tokens:
- a parent is disabled only once its whole subtree is (403 otherwise: the REST API of these
  releases has no `cascade`, a `?cascade` query changes nothing); a child is enabled only
  under enabled parents (403); no project is created under a disabled one (400);
  `parent_id` never changes (403); deleting a non-leaf is 403;
- so a token scoped to a child never outlives its parent's disabling: the child is disabled
  first, which revokes its tokens, and a new one is refused (401).
"""
import pytest
import requests

from tests.support.openstack import unique_name


class Identity:
    def __init__(self, ost, cloud):
        self.auth = ost.auth(cloud, admin=True)
        self.url = self.auth["auth_url"].rstrip("/")
        self.token, _ = ost.token(cloud, admin=True)
        self.made = []

    def __call__(self, method, path, **kw):
        return requests.request(method, self.url + path, timeout=30,
                                headers={"X-Auth-Token": self.token}, **kw)

    def project(self, parent=None, **extra) -> dict:
        body = {"name": unique_name("hier"), **extra}
        if parent:
            body["parent_id"] = parent
        r = self("POST", "/projects", json={"project": body})
        assert r.status_code == 201, r.text
        self.made.append(r.json()["project"]["id"])
        return r.json()["project"]

    def patch(self, pid, query="", **body):
        return self("PATCH", f"/projects/{pid}{query}", json={"project": body})

    def cleanup(self):
        for pid in reversed(self.made):
            self.patch(pid, enabled=False)
            self("DELETE", f"/projects/{pid}")


@pytest.fixture
def ks(ost, request):
    k = Identity(ost, request.param)
    yield k
    k.cleanup()


@pytest.mark.parametrize("ks", ["pike", "mitaka"], indirect=True)
def test_disable_needs_a_disabled_subtree_and_enable_enabled_parents(ks):
    parent = ks.project()
    child = ks.project(parent["id"])
    grandchild = ks.project(child["id"])
    for query in ("", "?cascade", "?cascade=true"):
        r = ks.patch(parent["id"], query, enabled=False)
        assert r.status_code == 403, (query, r.text)
        assert "subtree contains enabled projects" in r.json()["error"]["message"]
    assert ks("GET", f"/projects/{parent['id']}").json()["project"]["enabled"] is True
    for pid in (grandchild["id"], child["id"], parent["id"]):   # bottom up: allowed
        assert ks.patch(pid, enabled=False).status_code == 200
    r = ks.patch(child["id"], enabled=True)
    assert r.status_code == 403 and "has disabled parents" in r.json()["error"]["message"]
    r = ks("POST", "/projects", json={"project": {"name": unique_name("hier"),
                                                  "parent_id": child["id"]}})
    assert r.status_code == 400 and "disabled project" in r.json()["error"]["message"]
    assert ks.patch(parent["id"], enabled=True).status_code == 200    # top down: allowed
    assert ks.patch(child["id"], enabled=True).status_code == 200
    assert ks.patch(child["id"], parent_id=grandchild["id"]).status_code == 403
    assert ks("DELETE", f"/projects/{parent['id']}").status_code == 403   # not a leaf


@pytest.mark.parametrize("ks", ["pike"], indirect=True)
def test_child_scoped_token_ends_with_the_branch(ks, ost):
    """A user's token on a child project: disabling the branch (child first, as Keystone
    demands) revokes it; a new token on the child is refused while it is disabled."""
    parent = ks.project()
    child = ks.project(parent["id"])
    name, password = unique_name("hieruser"), "pw-hier-1"
    r = ks("POST", "/users", json={"user": {"name": name, "password": password}})
    assert r.status_code == 201, r.text
    uid = r.json()["user"]["id"]
    try:
        role = ks("GET", "/roles?name=_member_").json()["roles"][0]["id"]
        assert ks("PUT", f"/projects/{child['id']}/users/{uid}/roles/{role}").status_code == 204
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "id": uid, "password": password}}}, "scope": {"project": {"id": child["id"]}}}}
        r = requests.post(ks.url + "/auth/tokens", json=auth, timeout=30)
        assert r.status_code == 201, r.text
        user_token = r.headers["X-Subject-Token"]
        check = {"X-Auth-Token": ks.token, "X-Subject-Token": user_token}
        assert requests.get(ks.url + "/auth/tokens", headers=check, timeout=30).status_code == 200
        assert ks.patch(parent["id"], enabled=False).status_code == 403
        assert ks.patch(child["id"], enabled=False).status_code == 200
        assert ks.patch(parent["id"], enabled=False).status_code == 200
        assert requests.get(ks.url + "/auth/tokens", headers=check, timeout=30).status_code == 404
        assert requests.post(ks.url + "/auth/tokens", json=auth, timeout=30).status_code == 401
    finally:
        ks("DELETE", f"/users/{uid}")
