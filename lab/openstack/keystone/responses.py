"""Keystone v3 handlers: parse the request, call the identity model, serialize as Keystone does.

Policy is the era's default policy.json: identity administration needs the admin role;
a user may read itself, list its own projects and validate its own tokens.
"""
from ..errors import BadRequest, Forbidden, NotFound, Unauthorized
from ..api import Reply, Rq, created, no_content, ok
from .credentials import Credential
from .models import Domain, IdentityModel, Project, Role, Token, User, iso


def _model(rq: Rq) -> IdentityModel:
    return rq.model


def _admin(rq: Rq, action: str) -> None:
    if not rq.auth.is_admin:
        raise Forbidden(f"You are not authorized to perform the requested action: {action}.",
                        kind="ForbiddenAction")


def _self_link(rq: Rq, *parts: str) -> dict:
    return {"self": "/".join([rq.base_url, "v3", *parts])}


def _list_links(rq: Rq) -> dict:
    return {"self": f"{rq.base_url}{rq.path}", "previous": None, "next": None}


def _filtered(items, rq: Rq, *keys: str):
    out = list(items)
    for key in keys:
        want = rq.query.get(key)
        if want is None:
            continue
        if key == "enabled":
            flag = want.lower() not in ("0", "false", "no", "off")
            out = [x for x in out if x.enabled == flag]
        else:
            out = [x for x in out if getattr(x, key) == want]
    return out


# ---- views ---------------------------------------------------------------------------------

def domain_view(rq: Rq, d: Domain) -> dict:
    return {"id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled,
            "links": _self_link(rq, "domains", d.id)}


def project_view(rq: Rq, p: Project) -> dict:
    return {"id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description,
            "enabled": p.enabled, "parent_id": p.parent_id or p.domain_id, "is_domain": False,
            "links": _self_link(rq, "projects", p.id)}


def user_view(rq: Rq, u: User) -> dict:
    view = {"id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
            "links": _self_link(rq, "users", u.id)}
    if rq.profile.keystone_v3_id >= "v3.7":
        view["password_expires_at"] = None
    for key in ("default_project_id", "email", "description"):
        if getattr(u, key) is not None:
            view[key] = getattr(u, key)
    return view


def role_view(rq: Rq, r: Role) -> dict:
    return {"id": r.id, "name": r.name, "domain_id": None, "links": _self_link(rq, "roles", r.id)}


def token_view(rq: Rq, t: Token, *, catalog: bool = True) -> dict:
    m = _model(rq)
    user = m.get_user(t.user_id)
    user_domain = m.get_domain(user.domain_id)
    user_doc = {"id": user.id, "name": user.name,
                "domain": {"id": user_domain.id, "name": user_domain.name}}
    if rq.profile.keystone_v3_id >= "v3.7":
        user_doc["password_expires_at"] = None
    body = {"methods": list(t.methods), "user": user_doc, "audit_ids": list(t.audit_ids),
            "expires_at": iso(t.expires_at), "issued_at": iso(t.issued_at)}
    if t.project_id:
        p = m.get_project(t.project_id)
        d = m.get_domain(p.domain_id)
        body["project"] = {"id": p.id, "name": p.name, "domain": {"id": d.id, "name": d.name}}
        body["is_domain"] = False
    elif t.domain_id:
        d = m.get_domain(t.domain_id)
        body["domain"] = {"id": d.id, "name": d.name}
    if t.project_id or t.domain_id:
        body["roles"] = [{"id": r.id, "name": r.name} for r in m.token_roles(t)]
        if catalog:
            body["catalog"] = _model(rq).catalog_for(t.project_id)
    return {"token": body}


# ---- discovery -----------------------------------------------------------------------------

def root(rq: Rq) -> Reply:
    return Reply(300, rq.profile.keystone_root(rq.base_url))


def v3(rq: Rq) -> Reply:
    return ok({"version": rq.profile.keystone_v3_entry(rq.base_url)})


# ---- tokens --------------------------------------------------------------------------------

def issue_token(rq: Rq) -> Reply:
    body = rq.json_object()
    if "auth" not in body:
        raise BadRequest("Expecting to find auth in request body - the server could not comply "
                         "with the request since it is either malformed or otherwise incorrect. "
                         "The client is assumed to be in error.", kind="ValidationError")
    token_id, token = _model(rq).authenticate(body["auth"])
    return created(token_view(rq, token, catalog="nocatalog" not in rq.query),
                   {"X-Subject-Token": token_id})


def _subject(rq: Rq) -> tuple[str, Token]:
    subject = rq.headers.get("X-Subject-Token")
    if not subject:
        raise NotFound("Could not find token: the X-Subject-Token header is missing.",
                       kind="TokenNotFound")
    token = _model(rq).token(subject)
    if not rq.auth.is_admin and token.user_id != rq.auth.user_id:
        raise Forbidden("You are not authorized to perform the requested action: "
                        "identity:validate_token.", kind="ForbiddenAction")
    return subject, token


def validate_token(rq: Rq) -> Reply:
    subject, token = _subject(rq)
    reply = ok(token_view(rq, token, catalog="nocatalog" not in rq.query))
    reply.headers["X-Subject-Token"] = subject
    return reply


def check_token(rq: Rq) -> Reply:
    subject, _ = _subject(rq)
    return Reply(200, None, {"X-Subject-Token": subject})


def revoke_token(rq: Rq) -> Reply:
    subject, _ = _subject(rq)
    _model(rq).revoke_token(subject)
    return no_content()


def auth_catalog(rq: Rq) -> Reply:
    if rq.auth.project_id is None and rq.auth.domain_id is None:
        raise Unauthorized("The service catalog is empty.")
    return ok({"catalog": _model(rq).catalog_for(rq.auth.project_id), "links": _list_links(rq)})


def auth_projects(rq: Rq) -> Reply:
    projects = _model(rq).user_projects(rq.auth.user_id)
    return ok({"projects": [project_view(rq, p) for p in projects], "links": _list_links(rq)})


def auth_domains(rq: Rq) -> Reply:
    domains = _model(rq).user_domains(rq.auth.user_id)
    return ok({"domains": [domain_view(rq, d) for d in domains], "links": _list_links(rq)})


# ---- domains -------------------------------------------------------------------------------

def list_domains(rq: Rq) -> Reply:
    _admin(rq, "identity:list_domains")
    domains = _filtered(_model(rq).domains.values(), rq, "name", "enabled")
    return ok({"domains": [domain_view(rq, d) for d in domains], "links": _list_links(rq)})


def get_domain(rq: Rq) -> Reply:
    d = _model(rq).get_domain(rq.p("domain_id"))
    if not rq.auth.is_admin and rq.auth.user_domain_id != d.id:
        _admin(rq, "identity:get_domain")
    return ok({"domain": domain_view(rq, d)})


def create_domain(rq: Rq) -> Reply:
    _admin(rq, "identity:create_domain")
    return created({"domain": domain_view(rq, _model(rq).create_domain(rq.json_object("domain")))})


def update_domain(rq: Rq) -> Reply:
    _admin(rq, "identity:update_domain")
    d = _model(rq).update_domain(rq.p("domain_id"), rq.json_object("domain"))
    return ok({"domain": domain_view(rq, d)})


def delete_domain(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_domain")
    _model(rq).delete_domain(rq.p("domain_id"))
    return no_content()


# ---- projects ------------------------------------------------------------------------------

def list_projects(rq: Rq) -> Reply:
    _admin(rq, "identity:list_projects")
    projects = _filtered(_model(rq).projects.values(), rq, "name", "domain_id", "enabled")
    return ok({"projects": [project_view(rq, p) for p in projects], "links": _list_links(rq)})


def get_project(rq: Rq) -> Reply:
    p = _model(rq).get_project(rq.p("pid"))
    if rq.auth.project_id != p.id:
        _admin(rq, "identity:get_project")
    return ok({"project": project_view(rq, p)})


def create_project(rq: Rq) -> Reply:
    _admin(rq, "identity:create_project")
    p = _model(rq).create_project(rq.json_object("project"))
    return created({"project": project_view(rq, p)})


def update_project(rq: Rq) -> Reply:
    _admin(rq, "identity:update_project")
    p = _model(rq).update_project(rq.p("pid"), rq.json_object("project"))
    return ok({"project": project_view(rq, p)})


def delete_project(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_project")
    _model(rq).delete_project(rq.p("pid"))
    return no_content()


# ---- users ---------------------------------------------------------------------------------

def list_users(rq: Rq) -> Reply:
    _admin(rq, "identity:list_users")
    users = _filtered(_model(rq).users.values(), rq, "name", "domain_id", "enabled")
    return ok({"users": [user_view(rq, u) for u in users], "links": _list_links(rq)})


def get_user(rq: Rq) -> Reply:
    u = _model(rq).get_user(rq.p("user_id"))
    if u.id != rq.auth.user_id:
        _admin(rq, "identity:get_user")
    return ok({"user": user_view(rq, u)})


def create_user(rq: Rq) -> Reply:
    _admin(rq, "identity:create_user")
    return created({"user": user_view(rq, _model(rq).create_user(rq.json_object("user")))})


def update_user(rq: Rq) -> Reply:
    _admin(rq, "identity:update_user")
    return ok({"user": user_view(rq, _model(rq).update_user(rq.p("user_id"),
                                                           rq.json_object("user")))})


def change_password(rq: Rq) -> Reply:
    """POST /v3/users/{user_id}/password: the user itself (policy admin_or_owner)."""
    uid = rq.p("user_id")
    if uid != rq.auth.user_id:
        _admin(rq, "identity:change_password")
    body = rq.json_object("user")
    _model(rq).change_password(uid, body.get("original_password"), body.get("password"))
    return no_content()


def delete_user(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_user")
    _model(rq).delete_user(rq.p("user_id"))
    return no_content()


def user_projects(rq: Rq) -> Reply:
    uid = rq.p("user_id")
    if uid != rq.auth.user_id:
        _admin(rq, "identity:list_user_projects")
    m = _model(rq)
    m.get_user(uid)
    return ok({"projects": [project_view(rq, p) for p in m.user_projects(uid)],
               "links": _list_links(rq)})


# ---- roles and assignments -----------------------------------------------------------------

def list_roles(rq: Rq) -> Reply:
    _admin(rq, "identity:list_roles")
    roles = _filtered(_model(rq).roles.values(), rq, "name")
    return ok({"roles": [role_view(rq, r) for r in roles], "links": _list_links(rq)})


def get_role(rq: Rq) -> Reply:
    _admin(rq, "identity:get_role")
    return ok({"role": role_view(rq, _model(rq).get_role(rq.p("role_id")))})


def create_role(rq: Rq) -> Reply:
    _admin(rq, "identity:create_role")
    return created({"role": role_view(rq, _model(rq).create_role(rq.json_object("role")))})


def update_role(rq: Rq) -> Reply:
    _admin(rq, "identity:update_role")
    r = _model(rq).update_role(rq.p("role_id"), rq.json_object("role"))
    return ok({"role": role_view(rq, r)})


def delete_role(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_role")
    _model(rq).delete_role(rq.p("role_id"))
    return no_content()


# ---- credentials and OS-EC2 ----------------------------------------------------------------

def credential_view(rq: Rq, c: Credential) -> dict:
    return {"id": c.id, "user_id": c.user_id, "project_id": c.project_id, "type": c.type,
            "blob": c.blob, "links": _self_link(rq, "credentials", c.id)}


def ec2_view(rq: Rq, c: Credential) -> dict:
    blob = c.ec2()
    return {"user_id": c.user_id, "tenant_id": c.project_id, "access": blob.get("access"),
            "secret": blob.get("secret"), "trust_id": blob.get("trust_id"),
            "links": _self_link(rq, "users", c.user_id, "credentials", "OS-EC2",
                                str(blob.get("access")))}


def list_credentials(rq: Rq) -> Reply:
    _admin(rq, "identity:list_credentials")
    creds = _model(rq).list_credentials(rq.query.get("user_id"), rq.query.get("type"))
    return ok({"credentials": [credential_view(rq, c) for c in creds], "links": _list_links(rq)})


def create_credential(rq: Rq) -> Reply:
    _admin(rq, "identity:create_credential")
    c = _model(rq).create_credential(rq.json_object("credential"))
    return created({"credential": credential_view(rq, c)})


def get_credential(rq: Rq) -> Reply:
    _admin(rq, "identity:get_credential")
    return ok({"credential": credential_view(rq, _model(rq).get_credential(rq.p("cred_id")))})


def update_credential(rq: Rq) -> Reply:
    _admin(rq, "identity:update_credential")
    c = _model(rq).update_credential(rq.p("cred_id"), rq.json_object("credential"))
    return ok({"credential": credential_view(rq, c)})


def delete_credential(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_credential")
    _model(rq).delete_credential(rq.p("cred_id"))
    return no_content()


def _ec2_owner(rq: Rq, action: str) -> str:
    """Policy admin_or_owner of the OS-EC2 calls: the user itself or an admin."""
    uid = rq.p("user_id")
    if uid != rq.auth.user_id:
        _admin(rq, f"identity:{action}")
    return uid


def create_ec2(rq: Rq) -> Reply:
    uid = _ec2_owner(rq, "ec2_create_credential")
    c = _model(rq).create_ec2(uid, rq.json_object().get("tenant_id"))
    return created({"credential": ec2_view(rq, c)})


def list_ec2(rq: Rq) -> Reply:
    uid = _ec2_owner(rq, "ec2_list_credentials")
    m = _model(rq)
    m.get_user(uid)
    return ok({"credentials": [ec2_view(rq, c) for c in m.list_credentials(uid, "ec2")],
               "links": _list_links(rq)})


def get_ec2(rq: Rq) -> Reply:
    uid = _ec2_owner(rq, "ec2_get_credential")
    return ok({"credential": ec2_view(rq, _model(rq).get_ec2(uid, rq.p("access")))})


def delete_ec2(rq: Rq) -> Reply:
    uid = _ec2_owner(rq, "ec2_delete_credential")
    _model(rq).delete_ec2(uid, rq.p("access"))
    return no_content()
