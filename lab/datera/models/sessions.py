"""Sessions, users and roles (a mixin of DateraModel): local and directory (LDAP) logins,
the Caller of each request, /userinfo, /users, /roles. Rules from reference datera-api §2.1-2.2:
an expired or unknown session is 401; a tenant outside the session's subtree is a 404."""
import hmac

from . import validate as v
from .errors import SESSION_EXPIRED, AuthFailed, NotFound, PermissionDenied
from .events import USER
from .tenancy import ALL, ROOT, Caller, Session, Tenant, User, normalize_tenant, within

ROLES = {"admin": ["all"], "tenant_admin": ["tenant"]}


class SessionOps:
    # -- sessions --------------------------------------------------------------------------
    def login_local(self, name, password) -> Session:
        user = self.users.get(name) if isinstance(name, str) else None
        ok = (user is not None and user.password is not None and isinstance(password, str)
              and hmac.compare_digest(user.password.encode(), password.encode()) and user.enabled)
        if not ok:
            self.events.record(USER, "login_failed", f"login refused for user {name!r}",
                               tenant=ROOT, severity="warning")
            raise AuthFailed("Invalid credentials: unknown user or wrong password")
        return self._open(user, home=ROOT, admin="admin" in user.roles)

    def login_directory(self, user_id: str, *, tenant_name: str | None, remote_server: str) -> Session:
        """A user the directory (LDAP) vouched for: an admin (tenant_name None) acts as root;
        a tenant user is confined to /root/<tenant_name>, created on first login."""
        home = ROOT
        if tenant_name is not None:
            home = f"{ROOT}/{v.name(tenant_name, 'tenant')}"
            if home not in self.tenants:
                self.tenants[home] = Tenant(name=tenant_name, path=home, parent_path=ROOT)
                self.events.record(USER, "tenant_created", f"tenant {home} created for {user_id}",
                                   tenant=home, object_path=home)
        user = User(user_id=user_id, full_name=user_id, password=None,
                    roles=["tenant_admin" if tenant_name else "admin"], tenant=home,
                    remote_server=remote_server)
        self.users[user_id] = user
        return self._open(user, home=home, admin=tenant_name is None, remote_server=remote_server)

    def _open(self, user: User, *, home: str, admin: bool, remote_server=None) -> Session:
        for key in [k for k, s in self.sessions.items() if s.expired]:
            del self.sessions[key]
        s = Session.open(user, home=home, admin=admin, ttl=self.config.session_ttl_s,
                         remote_server=remote_server)
        self.sessions[s.key] = s
        via = f" via {remote_server}" if remote_server else ""
        self.events.record(USER, "login", f"user {user.user_id} logged in{via}", tenant=home)
        return s

    def logout(self, key: str) -> None:
        self.sessions.pop(key, None)

    def caller(self, key: str | None, tenant_header: str | None) -> Caller:
        """The identity of one request; an unknown tenant, or one outside the session's
        subtree, is answered exactly like a missing object."""
        s = self.sessions.get(key) if key else None
        if s is None or s.expired:
            if s is not None:
                del self.sessions[key]
            raise AuthFailed(SESSION_EXPIRED)
        tenant = normalize_tenant(tenant_header)
        if tenant is None or (tenant == ROOT and not s.admin):
            tenant = s.home   # dfs_sdk sends /root when no tenant was configured
        if tenant != ALL and (tenant not in self.tenants or not within(tenant, s.home)):
            raise NotFound()
        return Caller(session=s, tenant=tenant)

    def write_tenant(self, c: Caller) -> str:
        return c.session.home if c.tenant == ALL else c.tenant

    def _admin_only(self, c: Caller, what: str) -> None:
        if not c.admin:
            raise PermissionDenied(f"{what}: only an administrator may do this")

    def userinfo(self, c: Caller) -> dict:
        u = c.session.user
        return {"path": "/userinfo", "user_id": u.user_id, "name": u.user_id,
                "tenant": c.session.home, "current_tenant": c.tenant,
                "roles": [{"path": f"/roles/{r}"} for r in u.roles],
                "remote_server": c.session.remote_server or "", "admin": c.admin}

    def list_users(self, c: Caller) -> list[dict]:
        return [u.to_dict() for u in self.users.values() if c.sees(u.tenant)]

    def get_user(self, c: Caller, user_id: str) -> dict:
        u = self.users.get(user_id)
        if u is None or not c.sees(u.tenant):
            raise NotFound()
        return u.to_dict()

    def list_roles(self, c: Caller) -> list[dict]:
        return [self.get_role(c, r) for r in ROLES]

    def get_role(self, c: Caller, role_id: str) -> dict:
        if role_id not in ROLES:
            raise NotFound()
        return {"path": f"/roles/{role_id}", "role_id": role_id, "name": role_id,
                "privileges": [{"path": f"/privileges/{p}"} for p in ROLES[role_id]]}
