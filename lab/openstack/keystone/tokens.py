"""Keystone's tokens: issue (password or token method), validate, revoke.

Behaviour of keystone 12.0.0 (Pike, fernet provider; Mitaka and Newton behave the same here):
- validation (keystone/token/provider.py validate_token) fails with TokenNotFound (404 at
  GET /v3/auth/tokens, 401 at every other service) when the token expired, a revocation event
  matches it (revoke.py), its user or project is gone, or a scoped token's user has no role
  left on the scope (roles are recomputed at each validation: providers/common.py
  _populate_roles);
- a project or domain scope is only issued when the user holds a role there (401 otherwise);
- the token method (keystone/auth/plugins/token.py) keeps the parent's expiry and methods
  (plus "token") and puts the parent's audit chain id second:
  audit_ids = [new, parent.audit_ids[-1]].
"""
import secrets
import time
from dataclasses import dataclass, field

from ..cloud import AuthContext
from ..errors import BadRequest, NotFound, Unauthorized
from .revoke import RevocationList, RevokeEvent, TokenValues

TOKEN_TTL_S = 3600.0                 # Keystone's default [token] expiration
UNAUTHENTICATED = "The request you have made requires authentication."
_clock = time.time                   # epoch seconds; tests move it to reach expiry


@dataclass
class Token:
    user_id: str
    project_id: str | None
    domain_id: str | None
    methods: tuple
    issued_at: float
    expires_at: float
    audit_ids: list = field(default_factory=list)


class InvalidToken(Exception):
    """Why a token does not validate (logged by nobody: Keystone answers one line for all)."""


class TokenMixin:
    """Token behaviour of IdentityModel; needs its users, projects, domains and roles_for()."""

    def _init_tokens(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.revocations = RevocationList(TOKEN_TTL_S)

    # -- revocation events (called by the identity model when state changes) --------------

    def revoke_by(self, **fields) -> None:
        self.revocations.add(RevokeEvent(issued_before=_clock(), **fields))

    # -- issue ---------------------------------------------------------------------------

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
        now = _clock()
        if methods == ["password"]:
            user = self._password_user(identity.get("password"))
            # Keystone trims the expiry to the second (providers/common.py default_expire_time)
            audit_ids, expires_at = [_audit_id()], float(int(now + TOKEN_TTL_S))
        elif methods == ["token"]:
            token_id = (identity.get("token") or {}).get("id")
            if not isinstance(token_id, str):
                raise _malformed("token id")
            try:
                parent = self._live(token_id)
            except InvalidToken:
                raise Unauthorized(UNAUTHENTICATED) from None
            user = self.get_user(parent.user_id)
            audit_ids, expires_at = [_audit_id(), parent.audit_ids[-1]], parent.expires_at
            # the token method adds the parent's methods (plugins/token.py authenticate)
            methods = ["token"] + [m for m in parent.methods if m != "token"]
        else:
            raise Unauthorized("Attempted to authenticate with an unsupported method.",
                               kind="AuthMethodNotSupported")
        project_id, domain_id = self._scope(user, auth.get("scope"))
        token = Token(user.id, project_id, domain_id, tuple(methods), now, expires_at, audit_ids)
        self._prune(now)
        token_id = "gAAAAAB" + secrets.token_urlsafe(96)   # the length of a fernet token
        self.tokens[token_id] = token
        return token_id, token

    def _password_user(self, password: dict):
        if not isinstance(password, dict) or not isinstance(password.get("user"), dict):
            raise _malformed("user")
        spec = password["user"]
        if not isinstance(spec.get("password"), str):
            raise _malformed("password")
        user = None
        if spec.get("id"):
            user = self.users.get(spec["id"])
        elif spec.get("name"):
            d = self._qualifying_domain(spec.get("domain"), Unauthorized(UNAUTHENTICATED))
            user = next((u for u in self.users.values()
                         if u.name == spec["name"] and u.domain_id == d.id), None)
        else:
            raise _malformed("id or name")
        # One answer for a wrong user and a wrong password: do not reveal which users exist.
        if user is None or not user.enabled or not user.check(spec["password"]):
            raise Unauthorized(UNAUTHENTICATED)
        if not self.domains[user.domain_id].enabled:
            raise Unauthorized(UNAUTHENTICATED)
        return user

    def _qualifying_domain(self, domain, not_found: Unauthorized):
        """The domain that qualifies a user or project given by name: {"id": ...} or
        {"name": ...} (keystone/auth/plugins/core.py); a malformed reference is 400, an
        unknown domain raises `not_found` (401: the caller words what it may reveal)."""
        if not isinstance(domain, dict) or not (domain.get("id") or domain.get("name")):
            raise _malformed("domain")
        try:
            return (self.get_domain(domain["id"]) if domain.get("id")
                    else self.domain_by_name(domain["name"]))
        except NotFound:
            raise not_found from None

    def _scope(self, user, scope) -> tuple[str | None, str | None]:
        if scope is None:
            dp = user.default_project_id
            if (dp and dp in self.projects and self.projects[dp].enabled
                    and self.roles_for(user.id, project_id=dp)):
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
                d = self._qualifying_domain(spec.get("domain"),
                                            Unauthorized(f"Project {spec['name']} not found."))
                project = next((p for p in self.projects.values()
                                if p.name == spec["name"] and p.domain_id == d.id), None)
            else:
                raise _malformed("id or name")
            if project is None:
                raise Unauthorized(f"Could not find project: {spec.get('id') or spec.get('name')}.")
            if not project.enabled or not self.domains[project.domain_id].enabled:
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
            if not d.enabled:
                raise Unauthorized(f"Domain {d.id} is disabled.")
            if not self.roles_for(user.id, domain_id=d.id):
                raise Unauthorized(f"User {user.id} has no access to domain {d.id}")
            return None, d.id
        raise _malformed("project or domain")

    def _prune(self, now: float) -> None:
        for k in [k for k, t in self.tokens.items() if t.expires_at <= now]:
            del self.tokens[k]

    # -- validate ------------------------------------------------------------------------

    def _live(self, token_id: str) -> Token:
        """The token if it validates now, else InvalidToken (provider.validate_token)."""
        t = self.tokens.get(token_id)
        if t is None:
            raise InvalidToken("unknown token")
        if t.expires_at <= _clock():
            raise InvalidToken("expired")
        user = self.users.get(t.user_id)
        if user is None:
            raise InvalidToken("user gone")
        project = self.projects.get(t.project_id) if t.project_id else None
        if t.project_id and project is None:
            raise InvalidToken("project gone")
        values = TokenValues(issued_at=t.issued_at, user_id=t.user_id, project_id=t.project_id,
                             identity_domain_id=user.domain_id,
                             assignment_domain_id=project.domain_id if project else t.domain_id,
                             audit_id=t.audit_ids[0], audit_chain_id=t.audit_ids[-1])
        if self.revocations.is_revoked(values):
            raise InvalidToken("revoked")
        if (t.project_id or t.domain_id) and not self.token_roles(t):
            raise InvalidToken("no role on the scope")
        return t

    def token(self, token_id: str) -> Token:
        """The live token (for GET/HEAD/DELETE /v3/auth/tokens): NotFound otherwise."""
        try:
            return self._live(token_id)
        except InvalidToken:
            raise NotFound("Failed to validate token", kind="TokenNotFound") from None

    def revoke_token(self, token_id: str) -> None:
        """DELETE /v3/auth/tokens: revokes that token by its audit id (provider.revoke_token
        with revoke_chain=False), so tokens re-scoped from it stay valid."""
        t = self.token(token_id)
        self.revoke_by(audit_id=t.audit_ids[0])

    def token_roles(self, t: Token) -> list:
        if t.project_id is None and t.domain_id is None:
            return []
        return self.roles_for(t.user_id, project_id=t.project_id, domain_id=t.domain_id)

    def validate(self, token_id: str) -> AuthContext:
        """The framework's hook for every service: the AuthContext of a live token, or
        Unauthorized (what keystonemiddleware answers for a token Keystone refuses)."""
        try:
            t = self._live(token_id)
        except InvalidToken:
            raise Unauthorized(UNAUTHENTICATED) from None
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
