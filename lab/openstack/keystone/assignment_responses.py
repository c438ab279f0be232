"""Keystone v3 handlers for groups, grants (users and groups on projects and domains,
OS-INHERIT inherited grants) and GET /v3/role_assignments.

Policy is the era's default policy.json: admin for all of it, except that a user may list its
own groups and its own role assignments. Shapes: the Identity v3 API reference (Pike) and
keystone 12.0.0 keystone/assignment/controllers.py (RoleAssignmentV3 links).
"""
from ..api import Reply, Rq, created, no_content, ok
from .assignments import Assignment, Effective, Group
from .responses import _admin, _filtered, _list_links, _model, _self_link, role_view, user_view


def group_view(rq: Rq, g: Group) -> dict:
    return {"id": g.id, "name": g.name, "domain_id": g.domain_id,
            "description": g.description, "links": _self_link(rq, "groups", g.id)}


# ---- groups --------------------------------------------------------------------------------

def list_groups(rq: Rq) -> Reply:
    _admin(rq, "identity:list_groups")
    groups = _filtered(_model(rq).groups.values(), rq, "name", "domain_id")
    return ok({"groups": [group_view(rq, g) for g in groups], "links": _list_links(rq)})


def create_group(rq: Rq) -> Reply:
    _admin(rq, "identity:create_group")
    return created({"group": group_view(rq, _model(rq).create_group(rq.json_object("group")))})


def get_group(rq: Rq) -> Reply:
    _admin(rq, "identity:get_group")
    return ok({"group": group_view(rq, _model(rq).get_group(rq.p("group_id")))})


def update_group(rq: Rq) -> Reply:
    _admin(rq, "identity:update_group")
    g = _model(rq).update_group(rq.p("group_id"), rq.json_object("group"))
    return ok({"group": group_view(rq, g)})


def delete_group(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_group")
    _model(rq).delete_group(rq.p("group_id"))
    return no_content()


def group_users(rq: Rq) -> Reply:
    _admin(rq, "identity:list_users_in_group")
    m = _model(rq)
    m.get_group(rq.p("group_id"))
    users = [m.users[u] for u in m.group_users(rq.p("group_id")) if u in m.users]
    return ok({"users": [user_view(rq, u) for u in users], "links": _list_links(rq)})


def add_member(rq: Rq) -> Reply:
    _admin(rq, "identity:add_user_to_group")
    _model(rq).add_member(rq.p("group_id"), rq.p("user_id"))
    return no_content()


def check_member(rq: Rq) -> Reply:
    _admin(rq, "identity:check_user_in_group")
    _model(rq).check_member(rq.p("group_id"), rq.p("user_id"))
    return no_content()


def remove_member(rq: Rq) -> Reply:
    _admin(rq, "identity:remove_user_from_group")
    _model(rq).remove_member(rq.p("group_id"), rq.p("user_id"))
    return no_content()


def user_groups(rq: Rq) -> Reply:
    uid = rq.p("user_id")
    if uid != rq.auth.user_id:
        _admin(rq, "identity:list_groups_for_user")
    m = _model(rq)
    m.get_user(uid)
    return ok({"groups": [group_view(rq, g) for g in m.user_groups(uid)],
               "links": _list_links(rq)})


# ---- grants --------------------------------------------------------------------------------

def _grant_target(rq: Rq) -> dict:
    """The actor and target named by the URL; OS-INHERIT paths are inherited grants."""
    target = {"inherited": rq.path.startswith("/v3/OS-INHERIT/")}
    for param, key in (("user_id", "user_id"), ("group_id", "group_id"),
                       ("pid", "project_id"), ("domain_id", "domain_id")):
        if param in rq.params:
            target[key] = rq.p(param)
    return target


def grant_role(rq: Rq) -> Reply:
    _admin(rq, "identity:create_grant")
    target = _grant_target(rq)
    _model(rq).grant(rq.p("role_id"), target.pop("user_id", None), **target)
    return no_content()


def check_grant(rq: Rq) -> Reply:
    _admin(rq, "identity:check_grant")
    target = _grant_target(rq)
    _model(rq).has_grant(rq.p("role_id"), target.pop("user_id", None), **target)
    return no_content()


def revoke_grant(rq: Rq) -> Reply:
    _admin(rq, "identity:revoke_grant")
    target = _grant_target(rq)
    _model(rq).revoke(rq.p("role_id"), target.pop("user_id", None), **target)
    return no_content()


def list_grants(rq: Rq) -> Reply:
    _admin(rq, "identity:list_grants")
    m = _model(rq)
    target = _grant_target(rq)
    if "user_id" in target:
        m.get_user(target["user_id"])
    if "group_id" in target:
        m.get_group(target["group_id"])
    if "project_id" in target:
        m.get_project(target["project_id"])
    if "domain_id" in target:
        m.get_domain(target["domain_id"])
    roles = m.grant_roles(**target)
    return ok({"roles": [role_view(rq, r) for r in roles], "links": _list_links(rq)})


# ---- role assignments ----------------------------------------------------------------------

def _grant_link(rq: Rq, a: Assignment) -> str:
    target = f"projects/{a.project_id}" if a.project_id else f"domains/{a.domain_id}"
    actor = f"users/{a.user_id}" if a.user_id else f"groups/{a.group_id}"
    if a.inherited:
        return f"{rq.base_url}/v3/OS-INHERIT/{target}/{actor}/roles/{a.role_id}/inherited_to_projects"
    return f"{rq.base_url}/v3/{target}/{actor}/roles/{a.role_id}"


def _entry(rq: Rq, a: Assignment | Effective, names: bool) -> dict:
    m = _model(rq)
    role = {"id": a.role_id}
    if isinstance(a, Effective):
        actor_key, actor, source = "user", {"id": a.user_id}, a.source
        links = {"assignment": _grant_link(rq, source)}
        if source.group_id:
            links["membership"] = f"{rq.base_url}/v3/groups/{source.group_id}/users/{a.user_id}"
    else:
        actor_key = "user" if a.user_id else "group"
        actor, links = {"id": a.user_id or a.group_id}, {"assignment": _grant_link(rq, a)}
    key = "project" if a.project_id else "domain"
    scope = {key: {"id": a.project_id or a.domain_id}}
    if isinstance(a, Assignment) and a.inherited:
        scope["OS-INHERIT:inherited_to"] = "projects"
    if names:
        role["name"] = m.roles[a.role_id].name
        who = m.users.get(actor["id"]) if actor_key == "user" else m.groups.get(actor["id"])
        if who is not None:
            actor["name"] = who.name
            actor["domain"] = {"id": who.domain_id, "name": m.domains[who.domain_id].name}
        target = m.projects.get(a.project_id) if a.project_id else m.domains.get(a.domain_id)
        if target is not None:
            scope[key]["name"] = target.name
    return {"role": role, actor_key: actor, "scope": scope, "links": links}


def list_role_assignments(rq: Rq) -> Reply:
    m, q = _model(rq), rq.query
    user_filter = q.get("user.id")
    if not (user_filter and user_filter == rq.auth.user_id):
        _admin(rq, "identity:list_role_assignments")
    if "effective" in q:
        users = [user_filter] if user_filter else list(m.users)
        rows = [e for uid in users if uid in m.users for e in m.effective(uid)]
    else:
        rows = list(m.assignments)
    inherited_only = q.get("scope.OS-INHERIT:inherited_to") == "projects"
    out = []
    for a in rows:
        if ((user_filter and a.user_id != user_filter)
                or (q.get("group.id") and getattr(a, "group_id", None) != q["group.id"])
                or (q.get("role.id") and a.role_id != q["role.id"])
                or (q.get("scope.project.id") and a.project_id != q["scope.project.id"])
                or (q.get("scope.domain.id") and a.domain_id != q["scope.domain.id"])
                or (inherited_only and not getattr(a, "inherited", False))):
            continue
        out.append(_entry(rq, a, "include_names" in q))
    out.sort(key=lambda e: (str(e.get("user", e.get("group"))), str(e["scope"]), e["role"]["id"]))
    return ok({"role_assignments": out, "links": _list_links(rq)})
