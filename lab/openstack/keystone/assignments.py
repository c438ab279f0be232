"""Keystone's groups and role assignments (direct, through groups, inherited), state only.

Source: keystone 12.0.0 (Pike) keystone/assignment/core.py (grants, and
_list_effective_role_assignments: group assignments expand to the group's members, an
inherited assignment on a domain applies to every project of the domain, one on a project to
every project below it, never to the project or domain itself) and keystone/identity/core.py
(removing a user from a group, and deleting a group, revoke the members' tokens).

A token's roles are the effective roles on its scope (roles_for), computed at each validation.
"""
import uuid
from dataclasses import dataclass

from ..errors import Conflict, NotFound
from . import schema


@dataclass(frozen=True)
class Assignment:
    """One grant: a role for a user or a group on a project or a domain; `inherited` grants
    apply to the projects below the target (OS-INHERIT), not to the target itself."""
    role_id: str
    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    group_id: str | None = None
    inherited: bool = False


@dataclass(frozen=True)
class Effective:
    """An effective assignment of a user: the role on a project or domain, and the grant it
    comes from (`source`, a group or inherited grant, or the grant itself)."""
    role_id: str
    user_id: str
    project_id: str | None
    domain_id: str | None
    source: Assignment


@dataclass
class Group:
    id: str
    name: str
    domain_id: str
    description: str = ""


class AssignmentMixin:
    """Groups and grants of IdentityModel; needs its users, projects, domains, roles,
    get_*() lookups and revoke_by()."""

    def _init_assignments(self) -> None:
        self.assignments: set[Assignment] = set()
        self.groups: dict[str, Group] = {}
        self.memberships: set[tuple[str, str]] = set()     # (group_id, user_id)

    # -- groups --------------------------------------------------------------------------

    def get_group(self, group_id: str) -> Group:
        try:
            return self.groups[group_id]
        except KeyError:
            raise NotFound(f"Could not find group: {group_id}.", kind="GroupNotFound") from None

    def create_group(self, body: dict) -> Group:
        schema.name(body.get("name"), "group")
        domain_id = body.get("domain_id") or "default"
        self.get_domain(domain_id)
        if any(g.name == body["name"] and g.domain_id == domain_id for g in self.groups.values()):
            raise Conflict("Conflict occurred attempting to store group - Duplicate entry found "
                           f"with name {body['name']}.", kind="Conflict")
        g = Group(uuid.uuid4().hex, body["name"], domain_id, body.get("description") or "")
        self.groups[g.id] = g
        return g

    def update_group(self, group_id: str, body: dict) -> Group:
        g = self.get_group(group_id)
        schema.non_empty(body)
        if "name" in body:
            g.name = schema.name(body["name"], "group")
        if "description" in body:
            g.description = body["description"]
        return g

    def delete_group(self, group_id: str) -> None:
        self.get_group(group_id)
        members = self.group_users(group_id)
        del self.groups[group_id]
        self.assignments = {a for a in self.assignments if a.group_id != group_id}
        self.memberships = {m for m in self.memberships if m[0] != group_id}
        for uid in members:
            self.revoke_by(user_id=uid)

    def group_users(self, group_id: str) -> list[str]:
        return [u for g, u in self.memberships if g == group_id]

    def user_groups(self, user_id: str) -> list[Group]:
        return [self.groups[g] for g, u in self.memberships if u == user_id and g in self.groups]

    def add_member(self, group_id: str, user_id: str) -> None:
        self.get_group(group_id)
        self.get_user(user_id)
        self.memberships.add((group_id, user_id))

    def check_member(self, group_id: str, user_id: str) -> None:
        self.get_group(group_id)
        self.get_user(user_id)
        if (group_id, user_id) not in self.memberships:
            raise NotFound(f"Could not find user: {user_id}.", kind="UserNotFound")

    def remove_member(self, group_id: str, user_id: str) -> None:
        self.check_member(group_id, user_id)
        self.memberships.discard((group_id, user_id))
        self.revoke_by(user_id=user_id)

    def forget_actor(self, *, user_id=None, group_id=None) -> None:
        self.assignments = {a for a in self.assignments
                            if not ((user_id and a.user_id == user_id)
                                    or (group_id and a.group_id == group_id))}
        if user_id:
            self.memberships = {m for m in self.memberships if m[1] != user_id}

    # -- grants --------------------------------------------------------------------------

    def _assignment(self, role_id: str, *, user_id=None, group_id=None, project_id=None,
                    domain_id=None, inherited=False) -> Assignment:
        self.get_role(role_id)
        if user_id is not None:
            self.get_user(user_id)
        if group_id is not None:
            self.get_group(group_id)
        if project_id is not None:
            self.get_project(project_id)
        if domain_id is not None:
            self.get_domain(domain_id)
        return Assignment(role_id, user_id, project_id, domain_id, group_id, inherited)

    def grant(self, role_id: str, user_id=None, **target) -> None:
        self.assignments.add(self._assignment(role_id, user_id=user_id, **target))

    def has_grant(self, role_id: str, user_id=None, **target) -> bool:
        a = self._assignment(role_id, user_id=user_id, **target)
        if a not in self.assignments:
            raise NotFound(f"Could not find role assignment with role: {role_id}, user or "
                           f"group: {a.user_id or a.group_id}, project, domain, or system: "
                           f"{a.project_id or a.domain_id}.", kind="RoleAssignmentNotFound")
        return True

    def revoke(self, role_id: str, user_id=None, **target) -> None:
        self.has_grant(role_id, user_id, **target)
        self.assignments.discard(self._assignment(role_id, user_id=user_id, **target))

    def grant_roles(self, *, user_id=None, group_id=None, project_id=None, domain_id=None,
                    inherited=False) -> list:
        """The roles granted directly to that actor on that target (GET .../roles)."""
        ids = {a.role_id for a in self.assignments
               if a.user_id == user_id and a.group_id == group_id
               and a.project_id == project_id and a.domain_id == domain_id
               and a.inherited == inherited and a.role_id in self.roles}
        return sorted((self.roles[i] for i in ids), key=lambda r: r.name)

    # -- effective assignments -----------------------------------------------------------

    def _subtree(self, project_id: str) -> list[str]:
        """The projects below project_id (not itself)."""
        below, frontier = [], [project_id]
        while frontier:
            children = [p.id for p in self.projects.values() if p.parent_id in frontier]
            below += children
            frontier = children
        return below

    def effective(self, user_id: str) -> list[Effective]:
        groups = {g.id for g in self.user_groups(user_id)}
        out = []
        for a in self.assignments:
            if a.role_id not in self.roles:
                continue
            if not (a.user_id == user_id or (a.group_id and a.group_id in groups)):
                continue
            if not a.inherited:
                out.append(Effective(a.role_id, user_id, a.project_id, a.domain_id, a))
            elif a.domain_id:
                out += [Effective(a.role_id, user_id, p.id, None, a)
                        for p in self.projects.values() if p.domain_id == a.domain_id]
            else:
                out += [Effective(a.role_id, user_id, p, None, a) for p in self._subtree(a.project_id)]
        return out

    def roles_for(self, user_id: str, *, project_id=None, domain_id=None) -> list:
        """The user's effective roles on a project or a domain (what a token there carries)."""
        ids = {e.role_id for e in self.effective(user_id)
               if e.project_id == project_id and e.domain_id == domain_id}
        return sorted((self.roles[i] for i in ids), key=lambda r: r.name)

    def user_projects(self, user_id: str) -> list:
        ids = {e.project_id for e in self.effective(user_id) if e.project_id}
        return [p for p in self.projects.values() if p.id in ids]

    def user_domains(self, user_id: str) -> list:
        ids = {e.domain_id for e in self.effective(user_id) if e.domain_id}
        return [d for d in self.domains.values() if d.id in ids]
