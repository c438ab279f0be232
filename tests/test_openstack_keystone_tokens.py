"""Keystone token validity on every lab cloud (all three run Keystone v3), through real clients:
keystoneauth1 sessions, openstacksdk for the administration and the openstack CLI.

Each revocation Keystone 9/10/12 applies (keystone/revoke/core.py, token/provider.py,
token/providers/common.py) is made by an admin after the user took a project-scoped token;
afterwards Keystone refuses the token (404 at GET and HEAD /v3/auth/tokens) and every other
service of the cloud answers 401 to it. Re-scoping keeps the expiry and the audit chain; names
follow Keystone's schemas (identity/resource/assignment schema.py).
"""
import os
import subprocess
import uuid
from dataclasses import dataclass

import openstack
import pytest
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.support.openstack import CLOUDS, OPENSTACK_CLI

# service type -> a read-only list call under its catalog URL
SERVICE_LISTS = {"volumev3": "/volumes", "compute": "/servers", "image": "/v2/images",
                 "network": "/v2.0/networks"}


@dataclass
class Tenant:
    """A fresh domain with one project and one user holding _member_ on it."""
    conn: openstack.connection.Connection    # the cloud's admin
    auth_url: str
    domain: object
    project: object
    user: object
    password: str

    def session(self, password: str | None = None, scoped: bool = True) -> ks_session.Session:
        kw = {"project_id": self.project.id} if scoped else {}
        return ks_session.Session(auth=v3.Password(
            auth_url=self.auth_url, user_id=self.user.id, password=password or self.password,
            **kw))

    def validate(self, token: str) -> int:
        """GET /v3/auth/tokens as the admin: the status."""
        return self.conn.session.get(f"{self.auth_url}/auth/tokens", raise_exc=False,
                                     headers={"X-Subject-Token": token}).status_code

    def check(self, token: str) -> int:
        return self.conn.session.head(f"{self.auth_url}/auth/tokens", raise_exc=False,
                                      headers={"X-Subject-Token": token}).status_code


@pytest.fixture
def tenant(ost, request):
    cloud = request.node.callspec.params["cloud"]
    conn = ost.connect(cloud, admin=True)
    suffix = uuid.uuid4().hex[:8]
    password = "pw-" + uuid.uuid4().hex
    domain = conn.identity.create_domain(name=f"vancouver-test-{suffix}")
    try:
        project = conn.identity.create_project(name=f"vancouver-test-{suffix}",
                                               domain_id=domain.id)
        user = conn.identity.create_user(name=f"vancouver-test-{suffix}", password=password,
                                         domain_id=domain.id)
        conn.identity.assign_project_role_to_user(project, user,
                                                  conn.identity.find_role("_member_"))
        yield Tenant(conn, ost.auth(cloud, admin=True)["auth_url"], domain, project, user,
                     password)
    finally:
        # Keystone deletes a disabled domain with its projects and users.
        conn.identity.update_domain(domain, enabled=False)
        conn.identity.delete_domain(domain)


def service_statuses(sess: ks_session.Session, token: str) -> dict:
    """Each service of the token's catalog, asked with the raw token: {type: status}."""
    catalog = sess.auth.get_access(sess).service_catalog
    out = {}
    for service_type, path in SERVICE_LISTS.items():
        url = catalog.url_for(service_type=service_type, interface="public")
        out[service_type] = ks_session.Session().get(
            url.rstrip("/") + path, headers={"X-Auth-Token": token},
            raise_exc=False).status_code
    return out


def osc_as_user(t: Tenant, *args: str, password: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_URL=t.auth_url, OS_USER_ID=t.user.id, OS_IDENTITY_API_VERSION="3",
               OS_PASSWORD=password or t.password, OS_PROJECT_ID=t.project.id,
               OS_CLIENT_CONFIG_FILE="/dev/null")
    return subprocess.run([OPENSTACK_CLI, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def revoke_role(t: Tenant, token: str):
    t.conn.identity.unassign_project_role_from_user(t.project, t.user,
                                                    t.conn.identity.find_role("_member_"))


def disable_user(t: Tenant, token: str):
    t.conn.identity.update_user(t.user, enabled=False)


def delete_user(t: Tenant, token: str):
    t.conn.identity.delete_user(t.user)


def admin_sets_password(t: Tenant, token: str):
    t.conn.identity.update_user(t.user, password="new-" + uuid.uuid4().hex)


def user_changes_password(t: Tenant, token: str):
    new = "new-" + uuid.uuid4().hex
    proc = osc_as_user(t, "user", "password", "set", "--original-password", t.password,
                       "--password", new)
    assert proc.returncode == 0, proc.stderr
    t.password = new


def disable_project(t: Tenant, token: str):
    t.conn.identity.update_project(t.project, enabled=False)


def delete_project(t: Tenant, token: str):
    t.conn.identity.delete_project(t.project)


def disable_domain(t: Tenant, token: str):
    t.conn.identity.update_domain(t.domain, enabled=False)


def cli_token_revoke(t: Tenant, token: str):
    proc = osc_as_user(t, "token", "revoke", token)
    assert proc.returncode == 0, proc.stderr


REVOCATIONS = [revoke_role, disable_user, delete_user, admin_sets_password,
               user_changes_password, disable_project, delete_project, disable_domain,
               cli_token_revoke]


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("revocation", REVOCATIONS, ids=lambda f: f.__name__)
def test_revocation_invalidates_the_token_everywhere(tenant, cloud, revocation):
    sess = tenant.session()
    token = sess.get_token()
    assert tenant.validate(token) == 200
    assert set(service_statuses(sess, token).values()) == {200}

    revocation(tenant, token)

    assert tenant.validate(token) == 404
    assert tenant.check(token) == 404
    assert service_statuses(sess, token) == dict.fromkeys(SERVICE_LISTS, 401)
    # nor can the dead token be re-scoped into a new one
    with pytest.raises(ks_exc.Unauthorized):
        ks_session.Session(auth=v3.Token(auth_url=tenant.auth_url, token=token,
                                         project_id=tenant.project.id)).get_token()


@pytest.mark.parametrize("cloud", CLOUDS)
def test_no_project_token_without_a_role_but_a_new_password_logs_in(tenant, cloud):
    """Keystone never issues a project scope without a role (401); after a password change the
    user logs in again at once with the new password (the event spares later tokens)."""
    admin_sets_password(tenant, "")
    with pytest.raises(ks_exc.Unauthorized):
        tenant.session().get_token()
    tenant.conn.identity.update_user(tenant.user, password=tenant.password)
    fresh = tenant.session()
    assert tenant.validate(fresh.get_token()) == 200
    revoke_role(tenant, "")
    with pytest.raises(ks_exc.Unauthorized):
        tenant.session().get_token()
    # an unscoped token needs no role and still works
    assert tenant.validate(tenant.session(scoped=False).get_token()) == 200


@pytest.mark.parametrize("cloud", CLOUDS)
def test_role_removal_leaves_tokens_of_other_projects_and_remaining_roles(tenant, cloud):
    conn = tenant.conn
    other = conn.identity.create_project(name=f"{tenant.project.name}-b",
                                         domain_id=tenant.domain.id)
    member, admin_role = conn.identity.find_role("_member_"), conn.identity.find_role("Member")
    conn.identity.assign_project_role_to_user(other, tenant.user, member)
    conn.identity.assign_project_role_to_user(tenant.project, tenant.user, admin_role)
    here = tenant.session().get_token()
    there = ks_session.Session(auth=v3.Password(auth_url=tenant.auth_url, user_id=tenant.user.id,
                                                password=tenant.password,
                                                project_id=other.id)).get_token()
    revoke_role(tenant, here)
    # one role left on the project: valid, with that role only
    body = conn.session.get(f"{tenant.auth_url}/auth/tokens",
                            headers={"X-Subject-Token": here}).json()["token"]
    assert [r["name"] for r in body["roles"]] == ["Member"]
    conn.identity.unassign_project_role_from_user(tenant.project, tenant.user, admin_role)
    assert tenant.validate(here) == 404
    assert tenant.validate(there) == 200


@pytest.mark.parametrize("cloud", CLOUDS)
def test_rescoped_token_keeps_expiry_and_audit_chain(tenant, cloud):
    unscoped = tenant.session(scoped=False)
    first = unscoped.auth.get_access(unscoped)
    scoped = ks_session.Session(auth=v3.Token(auth_url=tenant.auth_url,
                                              token=first.auth_token,
                                              project_id=tenant.project.id))
    second = scoped.auth.get_access(scoped)
    assert second.project_id == tenant.project.id
    assert second.expires == first.expires
    assert set(second._data["token"]["methods"]) == {"password", "token"}
    assert second.audit_id != first.audit_id and second.audit_chain_id == first.audit_id
    again = ks_session.Session(auth=v3.Token(auth_url=tenant.auth_url, token=second.auth_token,
                                             project_id=tenant.project.id))
    third = again.auth.get_access(again)
    assert third.expires == first.expires and third.audit_chain_id == first.audit_id
    # DELETE /v3/auth/tokens revokes that token only (revoke_chain=False), not its re-scopes
    assert tenant.conn.session.delete(f"{tenant.auth_url}/auth/tokens",
                                      headers={"X-Subject-Token": first.auth_token}
                                      ).status_code == 204
    assert tenant.validate(first.auth_token) == 404
    assert tenant.validate(second.auth_token) == 200
    assert tenant.validate(third.auth_token) == 200


@pytest.mark.parametrize("cloud", CLOUDS)
def test_names_follow_keystone_schemas(ost, cloud):
    conn = ost.connect(cloud, admin=True)
    long_user = "u" * 255
    user = conn.identity.create_user(name=long_user, password="pw", domain_id="default")
    try:
        assert conn.identity.get_user(user.id).name == long_user
        renamed = conn.identity.update_user(user, name="ü" + "v" * 68)
        assert renamed.name == "ü" + "v" * 68
    finally:
        conn.identity.delete_user(user)
    role = conn.identity.create_role(name="r" * 255)
    conn.identity.delete_role(role)
    project = conn.identity.create_project(name="p" * 64, domain_id="default")
    conn.identity.delete_project(project)
    bad = [(conn.identity.create_user, {"name": "u" * 256, "domain_id": "default"}),
           (conn.identity.create_user, {"name": "   ", "domain_id": "default"}),
           (conn.identity.create_user, {"name": "", "domain_id": "default"}),
           (conn.identity.create_project, {"name": "p" * 65, "domain_id": "default"}),
           (conn.identity.create_domain, {"name": "d" * 65}),
           (conn.identity.create_role, {"name": "r" * 256}),
           (conn.identity.create_project, {"name": "ok", "enabled": "yes"})]
    for create, attrs in bad:
        with pytest.raises(openstack.exceptions.BadRequestException):
            create(**attrs)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_roles_through_groups_and_inheritance_count_and_their_removal_revokes(tenant, cloud):
    """A role held through a group, or inherited from the domain (OS-INHERIT), scopes a token;
    removing the user from the group (Keystone revokes the user's tokens) or the inherited
    grant (roles recomputed) leaves the token invalid everywhere."""
    conn, auth_url = tenant.conn, tenant.auth_url
    revoke_role(tenant, "")          # no direct role left
    member = conn.identity.find_role("_member_")
    group = conn.identity.create_group(name=f"{tenant.project.name}-g", domain_id=tenant.domain.id)
    conn.identity.add_user_to_group(tenant.user, group)
    conn.identity.assign_project_role_to_group(tenant.project, group, member)
    sess = tenant.session()
    token = sess.get_token()
    assert tenant.validate(token) == 200
    assert set(service_statuses(sess, token).values()) == {200}
    conn.identity.remove_user_from_group(tenant.user, group)
    assert tenant.validate(token) == 404
    assert service_statuses(sess, token) == dict.fromkeys(SERVICE_LISTS, 401)

    # inherited from the domain to its projects (not to the domain itself)
    path = (f"{auth_url}/OS-INHERIT/domains/{tenant.domain.id}/users/{tenant.user.id}"
            f"/roles/{member.id}/inherited_to_projects")
    assert conn.session.put(path).status_code == 204
    sess = tenant.session()
    token = sess.get_token()
    assert tenant.validate(token) == 200
    assigned = conn.session.get(f"{auth_url}/role_assignments", params={
        "effective": "", "user.id": tenant.user.id}).json()["role_assignments"]
    assert [a["scope"] for a in assigned] == [{"project": {"id": tenant.project.id}}]
    assert assigned[0]["links"]["assignment"].endswith("/inherited_to_projects")
    assert conn.session.delete(path).status_code == 204
    assert tenant.validate(token) == 404
    assert service_statuses(sess, token) == dict.fromkeys(SERVICE_LISTS, 401)


def test_expiry_ends_a_token_and_its_rescopes_in_the_model(tmp_path, monkeypatch):
    """Expiry needs an hour of waiting on a live cloud, so the model's clock is moved instead:
    at expires_at a token and every token re-scoped from it (same expiry) stop validating, for
    Keystone's GET (404) and for every service (401), and cannot be re-scoped again."""
    from lab.openstack import errors
    from lab.openstack.config import CloudConfig, Credentials
    from lab.openstack.keystone import revoke, tokens
    from lab.openstack.keystone.models import IdentityModel

    config = CloudConfig(cloud="pike", release="pike", address="127.0.0.1", data_dir=tmp_path,
                         admin=Credentials("admin", "pw-a", "admin"),
                         tenant=Credentials("tenant", "pw-t", "Vancouver-OP"))
    model = IdentityModel(config)
    now = [1_000_000.0]
    monkeypatch.setattr(tokens, "_clock", lambda: now[0])
    password = {"identity": {"methods": ["password"], "password": {"user": {
        "name": "tenant", "password": "pw-t", "domain": {"id": "default"}}}}}
    first_id, first = model.authenticate(password)          # default project scope
    now[0] += 1800
    child_id, child = model.authenticate({"identity": {"methods": ["token"],
                                                       "token": {"id": first_id}}})
    assert child.expires_at == first.expires_at == int(1_000_000 + tokens.TOKEN_TTL_S)
    assert model.validate(child_id).project_name == "Vancouver-OP"
    now[0] = first.expires_at
    for token_id in (first_id, child_id):
        with pytest.raises(errors.NotFound):
            model.token(token_id)
        with pytest.raises(errors.Unauthorized):
            model.validate(token_id)
    with pytest.raises(errors.Unauthorized):
        model.authenticate({"identity": {"methods": ["token"], "token": {"id": child_id}}})
    # events older than a token lifetime are forgotten: nothing they match is alive
    model.revoke_by(user_id="nobody")
    now[0] += tokens.TOKEN_TTL_S + 1
    model.revoke_by(user_id="nobody-else")
    assert [e.user_id for e in model.revocations.events] == ["nobody-else"]
    assert isinstance(model.revocations.events[0], revoke.RevokeEvent)
