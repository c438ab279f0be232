"""Keystone's state and behaviour: domains, projects, users, roles, role assignments; tokens
are in tokens.py (revocation events in revoke.py), groups and grants in assignments.py,
credentials in credentials.py, catalog administration in catalog.py, the name rules in
schema.py.

State changes that revoke tokens record an event as Keystone's notifications do: user disabled,
deleted or given a new password; project disabled or deleted; domain disabled.

No HTTP here. The framework validates every request's token through `validate()`; the catalog
comes from the cloud (every service it runs). Seeded from the cloud's config: the default
domain, the projects `admin`, `service` and the tenant project (Vancouver-OM/-ON/-OP), the roles
of that era (`admin`, `_member_`, devstack's `Member`), the admin user (admin on `admin` and on
the tenant project) and the tenant user (`_member_` on the tenant project).
"""
import hashlib
import hmac
import os
import time
import uuid
from dataclasses import dataclass

from ..errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from ..config import CloudConfig
from . import schema
from .assignments import Assignment, AssignmentMixin  # noqa: F401  (Assignment re-exported)
from .catalog import CatalogMixin
from .credentials import CredentialMixin
from .tokens import TOKEN_TTL_S, Token, TokenMixin  # noqa: F401  (re-exported)

DEFAULT_DOMAIN_ID = "default"
MAX_PROJECT_TREE_DEPTH = 5   # keystone.conf [DEFAULT] max_project_tree_depth default
SEED_ROLES = ("admin", "_member_", "Member")


def new_id() -> str:
    return uuid.uuid4().hex


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


@dataclass
class Domain:
    id: str
    name: str
    description: str = ""
    enabled: bool = True


@dataclass
class Project:
    id: str
    name: str
    domain_id: str
    description: str = ""
    enabled: bool = True
    parent_id: str | None = None     # None: a top project (its parent is its domain)


@dataclass
class User:
    id: str
    name: str
    domain_id: str
    salt: bytes
    password_hash: bytes | None
    default_project_id: str | None = None
    enabled: bool = True
    email: str | None = None
    description: str | None = None

    def check(self, password: str) -> bool:
        if self.password_hash is None:
            return False
        return hmac.compare_digest(_hash(self.salt, password), self.password_hash)


@dataclass
class Role:
    id: str
    name: str


def _hash(salt: bytes, password: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)


class IdentityModel(TokenMixin, CredentialMixin, AssignmentMixin, CatalogMixin):
    def __init__(self, config: CloudConfig):
        self.config = config
        self.domains: dict[str, Domain] = {}
        self.projects: dict[str, Project] = {}
        self.users: dict[str, User] = {}
        self.roles: dict[str, Role] = {}
        self._init_assignments()
        self._init_tokens()
        self._init_credentials()
        self._init_catalog(config.region)
        self._seed()

    # -- seed ----------------------------------------------------------------------------

    def _seed(self) -> None:
        self.domains[DEFAULT_DOMAIN_ID] = Domain(DEFAULT_DOMAIN_ID, "Default",
                                                 "The default domain")
        for name in SEED_ROLES:
            self.create_role({"name": name})
        admin_project = self.create_project({"name": self.config.admin.project,
                                             "description": "Bootstrap project"})
        self.create_project({"name": "service", "description": "Service project"})
        tenant_project = self.create_project({"name": self.config.tenant.project,
                                              "description": f"Datera tenant {self.config.tenant.project} "
                                                             f"of the {self.config.cloud} cloud"})
        admin_role, member_role = self.find_role("admin"), self.find_role("_member_")
        admin = self.create_user({"name": self.config.admin.user,
                                  "password": self.config.admin.password,
                                  "default_project_id": admin_project.id})
        tenant = self.create_user({"name": self.config.tenant.user,
                                   "password": self.config.tenant.password,
                                   "default_project_id": tenant_project.id})
        self.grant(admin_role.id, admin.id, project_id=admin_project.id)
        self.grant(admin_role.id, admin.id, project_id=tenant_project.id)
        self.grant(admin_role.id, admin.id, domain_id=DEFAULT_DOMAIN_ID)
        self.grant(member_role.id, tenant.id, project_id=tenant_project.id)

    # -- lookups -------------------------------------------------------------------------

    def get_domain(self, domain_id: str) -> Domain:
        try:
            return self.domains[domain_id]
        except KeyError:
            raise NotFound(f"Could not find domain: {domain_id}.", kind="DomainNotFound") from None

    def domain_by_name(self, name: str) -> Domain:
        for d in self.domains.values():
            if d.name == name:
                return d
        raise NotFound(f"Could not find domain: {name}.", kind="DomainNotFound")

    def get_project(self, project_id: str) -> Project:
        try:
            return self.projects[project_id]
        except KeyError:
            raise NotFound(f"Could not find project: {project_id}.",
                           kind="ProjectNotFound") from None

    def get_user(self, user_id: str) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise NotFound(f"Could not find user: {user_id}.", kind="UserNotFound") from None

    def get_role(self, role_id: str) -> Role:
        try:
            return self.roles[role_id]
        except KeyError:
            raise NotFound(f"Could not find role: {role_id}.", kind="RoleNotFound") from None

    def find_role(self, name: str) -> Role:
        return next(r for r in self.roles.values() if r.name == name)

    def project_by_name(self, name: str) -> Project | None:
        return next((p for p in self.projects.values() if p.name == name), None)

    # -- domains, projects, users, roles -------------------------------------------------

    def _unique(self, kind: str, name: str, existing) -> None:
        if any(x.name == name for x in existing):
            raise Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry "
                           f"found with name {name}.", kind="Conflict")

    @staticmethod
    def _checked(body: dict, kind: str, *, create: bool) -> None:
        """The create/update schema of `kind` (schema.py) for the fields the lab keeps."""
        if not create:
            schema.non_empty(body)
        if create or "name" in body:
            schema.name(body.get("name"), kind)
        schema.boolean(body, "enabled")

    def create_domain(self, body: dict) -> Domain:
        self._checked(body, "domain", create=True)
        name = body["name"]
        self._unique("domain", name, self.domains.values())
        d = Domain(new_id(), name, body.get("description") or "", body.get("enabled", True))
        self.domains[d.id] = d
        return d

    def update_domain(self, domain_id: str, body: dict) -> Domain:
        d = self.get_domain(domain_id)
        self._checked(body, "domain", create=False)
        if "name" in body and body["name"] != d.name:
            self._unique("domain", body["name"], self.domains.values())
        disabling = body.get("enabled") is False and d.enabled
        for key in ("name", "description", "enabled"):
            if key in body:
                setattr(d, key, body[key])
        if disabling:   # resource/core.py: Audit.disabled(domain) -> revoke by domain
            self.revoke_by(domain_id=d.id)
        return d

    def delete_domain(self, domain_id: str) -> None:
        """Keystone deletes a disabled domain with its projects and users
        (resource/core.py _delete_domain_contents, identity users of the domain)."""
        d = self.get_domain(domain_id)
        if d.enabled:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.",
                            kind="ForbiddenAction")
        # leaves first: a project with children cannot be deleted
        for p in sorted([p for p in self.projects.values() if p.domain_id == d.id],
                        key=lambda p: -len(self._ancestry(p.id))):
            self.delete_project(p.id)
        for u in [u for u in self.users.values() if u.domain_id == d.id]:
            self.delete_user(u.id)
        for g in [g for g in self.groups.values() if g.domain_id == d.id]:
            self.delete_group(g.id)
        self.assignments = {a for a in self.assignments if a.domain_id != domain_id}
        del self.domains[domain_id]

    def create_project(self, body: dict) -> Project:
        self._checked(body, "project", create=True)
        name = body["name"]
        parent_id = body.get("parent_id")
        domain_id = body.get("domain_id")
        if parent_id:
            # resource/core.py: a child lives in its parent's domain
            parent = self.get_project(parent_id)
            if domain_id and domain_id != parent.domain_id:
                raise BadRequest("Cannot create project, since it specifies its domain_id "
                                 f"{domain_id}, but specifies a parent in a different domain "
                                 f"({parent.domain_id}).", kind="ValidationError")
            domain_id = parent.domain_id
            # resource/core.py _enforce_project_constraints: the whole branch above must be
            # enabled, and no deeper than max_project_tree_depth (5)
            branch = [parent_id, *self._ancestry(parent_id)]
            for pid in reversed(branch):
                if not self.projects[pid].enabled:
                    raise BadRequest("cannot create a project in a branch containing a "
                                     f"disabled project: {pid}", kind="ValidationError")
            if len(branch) + 1 > MAX_PROJECT_TREE_DEPTH:
                raise Forbidden(f"Max hierarchy depth reached for {parent_id} branch.",
                                kind="ForbiddenNotSecurity")
        domain_id = domain_id or DEFAULT_DOMAIN_ID
        self.get_domain(domain_id)
        self._unique("project", name,
                     [p for p in self.projects.values() if p.domain_id == domain_id])
        p = Project(new_id(), name, domain_id, body.get("description") or "",
                    body.get("enabled", True), parent_id or None)
        self.projects[p.id] = p
        return p

    def update_project(self, project_id: str, body: dict) -> Project:
        p = self.get_project(project_id)
        self._checked(body, "project", create=False)
        if "name" in body and body["name"] != p.name:
            self._unique("project", body["name"],
                         [x for x in self.projects.values() if x.domain_id == p.domain_id])
        if "parent_id" in body and body["parent_id"] != p.parent_id:
            raise Forbidden("Update of `parent_id` is not allowed.",
                            kind="ForbiddenNotSecurity")
        disabling = body.get("enabled") is False and p.enabled
        enabling = body.get("enabled") is True and not p.enabled
        # resource/core.py _update_project (Keystone 9-12; its REST API has no `cascade`):
        # a project is enabled only under enabled parents, and disabled only once its whole
        # subtree is disabled, so no enabled project ever sits below a disabled one
        if enabling and any(not self.projects[a].enabled for a in self._ancestry(p.id)):
            raise Forbidden(f"Cannot enable project {p.id} since it has disabled parents",
                            kind="ForbiddenNotSecurity")
        if disabling and any(self.projects[x].enabled for x in self._subtree(p.id)):
            raise Forbidden(f"Cannot disable project {p.id} since its subtree contains "
                            "enabled projects.", kind="ForbiddenNotSecurity")
        for key in ("name", "description", "enabled"):
            if key in body:
                setattr(p, key, body[key])
        if disabling:   # Audit.disabled(project) -> revoke by project
            self.revoke_by(project_id=p.id)
        return p

    def _ancestry(self, project_id: str) -> list[str]:
        chain, p = [], self.projects.get(project_id)
        while p is not None and p.parent_id:
            chain.append(p.parent_id)
            p = self.projects.get(p.parent_id)
        return chain

    def delete_project(self, project_id: str) -> None:
        self.get_project(project_id)
        if any(p.parent_id == project_id for p in self.projects.values()):
            raise Forbidden(f"Cannot delete the project {project_id} since it is not a leaf in "
                            "the hierarchy. Use the cascade option if you want to delete a "
                            "whole subtree.", kind="ForbiddenNotSecurity")
        del self.projects[project_id]
        self.assignments = {a for a in self.assignments if a.project_id != project_id}
        self.drop_credentials(project_id=project_id)
        self.project_endpoints = {x for x in self.project_endpoints if x[0] != project_id}
        self.project_groups = {x for x in self.project_groups if x[0] != project_id}
        self.revoke_by(project_id=project_id)

    def create_user(self, body: dict) -> User:
        self._checked(body, "user", create=True)
        name = body["name"]
        domain_id = body.get("domain_id") or DEFAULT_DOMAIN_ID
        self.get_domain(domain_id)
        self._unique("user", name, [u for u in self.users.values() if u.domain_id == domain_id])
        default_project = body.get("default_project_id")
        if default_project:
            self.get_project(default_project)
        password = _password(body)
        salt = os.urandom(16)
        u = User(new_id(), name, domain_id, salt,
                 _hash(salt, password) if password is not None else None,
                 default_project, body.get("enabled", True), body.get("email"),
                 body.get("description"))
        self.users[u.id] = u
        return u

    def update_user(self, user_id: str, body: dict) -> User:
        u = self.get_user(user_id)
        self._checked(body, "user", create=False)
        if "name" in body and body["name"] != u.name:
            self._unique("user", body["name"],
                         [x for x in self.users.values() if x.domain_id == u.domain_id])
        disabling = body.get("enabled") is False and u.enabled
        for key in ("name", "enabled", "email", "description", "default_project_id"):
            if key in body:
                setattr(u, key, body[key])
        password = _password(body)
        if password is not None:
            u.salt = os.urandom(16)
            u.password_hash = _hash(u.salt, password)
        if disabling or password is not None:   # identity/core.py update_user
            self.revoke_by(user_id=user_id)
        return u

    def change_password(self, user_id: str, original: str, password: str) -> None:
        """POST /v3/users/{id}/password (identity/core.py change_password): 401 when the
        original password is wrong; revokes the user's tokens."""
        u = self.get_user(user_id)
        if not isinstance(original, str) or not u.check(original):
            raise Unauthorized("Error when changing user password: The request you have made "
                               "requires authentication.")
        if not isinstance(password, str):
            raise BadRequest("Invalid input for field 'password': "
                             f"{password!r} is not of type 'string'", kind="ValidationError")
        u.salt = os.urandom(16)
        u.password_hash = _hash(u.salt, password)
        self.revoke_by(user_id=user_id)

    def delete_user(self, user_id: str) -> None:
        self.get_user(user_id)
        del self.users[user_id]
        self.forget_actor(user_id=user_id)
        self.drop_credentials(user_id=user_id)
        self.revoke_by(user_id=user_id)

    def create_role(self, body: dict) -> Role:
        self._checked(body, "role", create=True)
        name = body["name"]
        self._unique("role", name, self.roles.values())
        r = Role(new_id(), name)
        self.roles[r.id] = r
        return r

    def update_role(self, role_id: str, body: dict) -> Role:
        r = self.get_role(role_id)
        self._checked(body, "role", create=False)
        if "name" in body and body["name"] != r.name:
            self._unique("role", body["name"], self.roles.values())
            r.name = body["name"]
        return r

    def delete_role(self, role_id: str) -> None:
        self.get_role(role_id)
        del self.roles[role_id]
        self.assignments = {a for a in self.assignments if a.role_id != role_id}


def _password(body: dict) -> str | None:
    """identity/schema.py: password is a string or null."""
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise BadRequest(f"Invalid input for field 'password': {password!r} is not of type "
                         "'string', 'null'", kind="ValidationError")
    return password
