"""Keystone's state and behaviour: domains, projects, users, roles, role assignments, tokens.

No HTTP here. The framework validates every request's token through `validate()`; the catalog
comes from the cloud (every service it runs). Seeded from the cloud's config: the default
domain, the projects `admin`, `service` and the tenant project (Vancouver-OM/-ON/-OP), the roles
of that era (`admin`, `_member_`, devstack's `Member`), the admin user (admin on `admin` and on
the tenant project) and the tenant user (`_member_` on the tenant project).
"""
import hashlib
import hmac
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field

from ..errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from ..cloud import AuthContext
from ..config import CloudConfig

DEFAULT_DOMAIN_ID = "default"
TOKEN_TTL_S = 3600.0                 # Keystone's default [token] expiration
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


@dataclass(frozen=True)
class Assignment:
    role_id: str
    user_id: str
    project_id: str | None = None
    domain_id: str | None = None


@dataclass
class Token:
    user_id: str
    project_id: str | None
    domain_id: str | None
    methods: tuple
    issued_at: float
    expires_at: float
    audit_ids: list = field(default_factory=list)


def _hash(salt: bytes, password: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)


class IdentityModel:
    def __init__(self, config: CloudConfig):
        self.config = config
        self.domains: dict[str, Domain] = {}
        self.projects: dict[str, Project] = {}
        self.users: dict[str, User] = {}
        self.roles: dict[str, Role] = {}
        self.assignments: set[Assignment] = set()
        self.tokens: dict[str, Token] = {}
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
    def _name(body: dict, kind: str) -> str:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise BadRequest(f"Invalid input for field 'name': {name!r} is not a valid {kind} "
                             "name.", kind="ValidationError")
        return name

    def create_domain(self, body: dict) -> Domain:
        name = self._name(body, "domain")
        self._unique("domain", name, self.domains.values())
        d = Domain(new_id(), name, body.get("description") or "", bool(body.get("enabled", True)))
        self.domains[d.id] = d
        return d

    def update_domain(self, domain_id: str, body: dict) -> Domain:
        d = self.get_domain(domain_id)
        for key in ("name", "description", "enabled"):
            if key in body:
                setattr(d, key, body[key])
        return d

    def delete_domain(self, domain_id: str) -> None:
        d = self.get_domain(domain_id)
        if d.enabled:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.",
                            kind="ForbiddenAction")
        if any(p.domain_id == d.id for p in self.projects.values()):
            raise Forbidden("Cannot delete a domain that still holds projects.", kind="ForbiddenAction")
        del self.domains[domain_id]

    def create_project(self, body: dict) -> Project:
        name = self._name(body, "project")
        domain_id = body.get("domain_id") or DEFAULT_DOMAIN_ID
        self.get_domain(domain_id)
        self._unique("project", name,
                     [p for p in self.projects.values() if p.domain_id == domain_id])
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise BadRequest(f"Invalid input for field 'enabled': {enabled!r} is not of type "
                             "'boolean'", kind="ValidationError")
        p = Project(new_id(), name, domain_id, body.get("description") or "", enabled)
        self.projects[p.id] = p
        return p

    def update_project(self, project_id: str, body: dict) -> Project:
        p = self.get_project(project_id)
        if "name" in body and body["name"] != p.name:
            self._unique("project", self._name(body, "project"),
                         [x for x in self.projects.values() if x.domain_id == p.domain_id])
        for key in ("name", "description", "enabled"):
            if key in body:
                setattr(p, key, body[key])
        return p

    def delete_project(self, project_id: str) -> None:
        self.get_project(project_id)
        del self.projects[project_id]
        self.assignments = {a for a in self.assignments if a.project_id != project_id}
        self.tokens = {k: t for k, t in self.tokens.items() if t.project_id != project_id}

    def create_user(self, body: dict) -> User:
        name = self._name(body, "user")
        domain_id = body.get("domain_id") or DEFAULT_DOMAIN_ID
        self.get_domain(domain_id)
        self._unique("user", name, [u for u in self.users.values() if u.domain_id == domain_id])
        default_project = body.get("default_project_id")
        if default_project:
            self.get_project(default_project)
        password = body.get("password")
        if password is not None and not isinstance(password, str):
            raise BadRequest("Invalid input for field 'password': not a string.",
                             kind="ValidationError")
        salt = os.urandom(16)
        u = User(new_id(), name, domain_id, salt,
                 _hash(salt, password) if password is not None else None,
                 default_project, bool(body.get("enabled", True)), body.get("email"),
                 body.get("description"))
        self.users[u.id] = u
        return u

    def update_user(self, user_id: str, body: dict) -> User:
        u = self.get_user(user_id)
        for key in ("name", "enabled", "email", "description", "default_project_id"):
            if key in body:
                setattr(u, key, body[key])
        if "password" in body:
            u.salt = os.urandom(16)
            u.password_hash = _hash(u.salt, body["password"])
            self.tokens = {k: t for k, t in self.tokens.items() if t.user_id != user_id}
        return u

    def delete_user(self, user_id: str) -> None:
        self.get_user(user_id)
        del self.users[user_id]
        self.assignments = {a for a in self.assignments if a.user_id != user_id}
        self.tokens = {k: t for k, t in self.tokens.items() if t.user_id != user_id}

    def create_role(self, body: dict) -> Role:
        name = self._name(body, "role")
        self._unique("role", name, self.roles.values())
        r = Role(new_id(), name)
        self.roles[r.id] = r
        return r

    def delete_role(self, role_id: str) -> None:
        self.get_role(role_id)
        del self.roles[role_id]
        self.assignments = {a for a in self.assignments if a.role_id != role_id}

    # -- role assignments ----------------------------------------------------------------

    def _assignment(self, role_id: str, user_id: str, project_id=None, domain_id=None):
        self.get_role(role_id)
        self.get_user(user_id)
        if project_id is not None:
            self.get_project(project_id)
        if domain_id is not None:
            self.get_domain(domain_id)
        return Assignment(role_id, user_id, project_id, domain_id)

    def grant(self, role_id: str, user_id: str, *, project_id=None, domain_id=None) -> None:
        self.assignments.add(self._assignment(role_id, user_id, project_id, domain_id))

    def has_grant(self, role_id: str, user_id: str, *, project_id=None, domain_id=None) -> bool:
        a = self._assignment(role_id, user_id, project_id, domain_id)
        if a not in self.assignments:
            raise NotFound(f"Could not find role assignment with role: {role_id}, user or "
                           f"group: {user_id}, project, domain, or system: "
                           f"{project_id or domain_id}.", kind="RoleAssignmentNotFound")
        return True

    def revoke(self, role_id: str, user_id: str, *, project_id=None, domain_id=None) -> None:
        self.has_grant(role_id, user_id, project_id=project_id, domain_id=domain_id)
        self.assignments.discard(Assignment(role_id, user_id, project_id, domain_id))

    def roles_for(self, user_id: str, *, project_id=None, domain_id=None) -> list[Role]:
        return sorted((self.roles[a.role_id] for a in self.assignments
                       if a.user_id == user_id and a.project_id == project_id
                       and a.domain_id == domain_id and a.role_id in self.roles),
                      key=lambda r: r.name)

    def user_projects(self, user_id: str) -> list[Project]:
        ids = {a.project_id for a in self.assignments if a.user_id == user_id and a.project_id}
        return [p for p in self.projects.values() if p.id in ids]

    def user_domains(self, user_id: str) -> list[Domain]:
        ids = {a.domain_id for a in self.assignments if a.user_id == user_id and a.domain_id}
        return [d for d in self.domains.values() if d.id in ids]

    # -- tokens --------------------------------------------------------------------------

    def authenticate(self, auth: dict) -> tuple[str, Token]:
        """POST /v3/auth/tokens: (token id, token). `auth` is the request's "auth" object."""
        if not isinstance(auth, dict):
            raise _malformed("auth")
        identity = auth.get("identity")
        if not isinstance(identity, dict):
            raise _malformed("identity")
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods:
            raise _malformed("methods")
        if methods == ["password"]:
            user = self._password_user(identity.get("password"))
            audit_ids = [_audit_id()]
        elif methods == ["token"]:
            token_id = (identity.get("token") or {}).get("id")
            old = self.tokens.get(token_id) if isinstance(token_id, str) else None
            if old is None or old.expires_at <= time.time():
                raise Unauthorized("The request you have made requires authentication.")
            user = self.get_user(old.user_id)
            audit_ids = [_audit_id(), old.audit_ids[0]]
        else:
            raise Unauthorized(f"Attempted to authenticate with an unsupported method.",
                               kind="AuthMethodNotSupported")
        project_id, domain_id = self._scope(user, auth.get("scope"))
        now = time.time()
        token = Token(user.id, project_id, domain_id, tuple(methods), now, now + TOKEN_TTL_S,
                      audit_ids)
        self._prune(now)
        token_id = "gAAAAAB" + secrets.token_urlsafe(96)   # the length of a fernet token
        self.tokens[token_id] = token
        return token_id, token

    def _password_user(self, password: dict) -> User:
        if not isinstance(password, dict) or not isinstance(password.get("user"), dict):
            raise _malformed("user")
        spec = password["user"]
        if not isinstance(spec.get("password"), str):
            raise _malformed("password")
        user = None
        if spec.get("id"):
            user = self.users.get(spec["id"])
        elif spec.get("name"):
            domain = spec.get("domain")
            if not isinstance(domain, dict) or not (domain.get("id") or domain.get("name")):
                raise _malformed("domain")
            try:
                d = (self.get_domain(domain["id"]) if domain.get("id")
                     else self.domain_by_name(domain["name"]))
            except NotFound:
                raise Unauthorized("The request you have made requires authentication.") from None
            user = next((u for u in self.users.values()
                         if u.name == spec["name"] and u.domain_id == d.id), None)
        else:
            raise _malformed("id or name")
        # One answer for a wrong user and a wrong password: do not reveal which users exist.
        if user is None or not user.enabled or not user.check(spec["password"]):
            raise Unauthorized("The request you have made requires authentication.")
        return user

    def _scope(self, user: User, scope) -> tuple[str | None, str | None]:
        if scope is None:
            dp = user.default_project_id
            if dp and dp in self.projects and self.roles_for(user.id, project_id=dp):
                return dp, None
            return None, None
        if scope == "unscoped":
            return None, None
        if not isinstance(scope, dict):
            raise _malformed("scope")
        if isinstance(scope.get("project"), dict):
            spec = scope["project"]
            if spec.get("id"):
                project = self.projects.get(spec["id"])
            elif spec.get("name"):
                domain = spec.get("domain")
                if not isinstance(domain, dict) or not (domain.get("id") or domain.get("name")):
                    raise _malformed("domain")
                try:
                    d = (self.get_domain(domain["id"]) if domain.get("id")
                         else self.domain_by_name(domain["name"]))
                except NotFound:
                    raise Unauthorized(f"Project {spec['name']} not found.") from None
                project = next((p for p in self.projects.values()
                                if p.name == spec["name"] and p.domain_id == d.id), None)
            else:
                raise _malformed("id or name")
            if project is None:
                raise Unauthorized(f"Could not find project: {spec.get('id') or spec.get('name')}.")
            if not project.enabled:
                raise Unauthorized(f"Project {project.id} is disabled.")
            if not self.roles_for(user.id, project_id=project.id):
                raise Unauthorized(f"User {user.id} has no access to project {project.id}")
            return project.id, None
        if isinstance(scope.get("domain"), dict):
            spec = scope["domain"]
            try:
                d = (self.get_domain(spec["id"]) if spec.get("id")
                     else self.domain_by_name(spec.get("name") or ""))
            except NotFound:
                raise Unauthorized(f"Could not find domain: {spec.get('id') or spec.get('name')}.") \
                    from None
            if not self.roles_for(user.id, domain_id=d.id):
                raise Unauthorized(f"User {user.id} has no access to domain {d.id}")
            return None, d.id
        raise _malformed("project or domain")

    def _prune(self, now: float) -> None:
        for k in [k for k, t in self.tokens.items() if t.expires_at <= now]:
            del self.tokens[k]

    def token(self, token_id: str) -> Token:
        """The live token (for GET /v3/auth/tokens): NotFound when unknown, revoked, expired."""
        t = self.tokens.get(token_id)
        if t is None or t.expires_at <= time.time():
            raise NotFound("Failed to validate token", kind="TokenNotFound")
        return t

    def revoke_token(self, token_id: str) -> None:
        self.token(token_id)
        del self.tokens[token_id]

    def token_roles(self, t: Token) -> list[Role]:
        if t.project_id is None and t.domain_id is None:
            return []
        return self.roles_for(t.user_id, project_id=t.project_id, domain_id=t.domain_id)

    def validate(self, token_id: str) -> AuthContext:
        """The framework's hook: the AuthContext of a live token, or Unauthorized."""
        t = self.tokens.get(token_id)
        if t is None or t.expires_at <= time.time():
            raise Unauthorized("The request you have made requires authentication.")
        user = self.users[t.user_id]
        roles = tuple(r.name for r in self.token_roles(t))
        project = self.projects.get(t.project_id) if t.project_id else None
        return AuthContext(user_id=user.id, user_name=user.name, user_domain_id=user.domain_id,
                           project_id=t.project_id, project_name=project.name if project else None,
                           domain_id=t.domain_id, roles=roles, is_admin="admin" in roles,
                           audit_id=t.audit_ids[0])


def _audit_id() -> str:
    return secrets.token_urlsafe(16)[:22]


def _malformed(what: str) -> BadRequest:
    return BadRequest(f"Expecting to find {what} in auth - the server could not comply with the "
                      "request since it is either malformed or otherwise incorrect. The client "
                      "is assumed to be in error.", kind="ValidationError")

