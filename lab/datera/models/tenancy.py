"""Tenants, users and sessions: who is asking, and which part of the tenant tree they see."""
import secrets
import time
from dataclasses import dataclass, field


ROOT = "/root"
ALL = "all"   # tenant header value: an admin listing across every tenant (dfs_sdk scaffold)


def normalize_tenant(value: str | None) -> str | None:
    """'/root/x', 'root/x', 'x' and '//root/x' all name /root/x; '' and None mean 'not given'."""
    if value is None:
        return None
    parts = [p for p in value.strip().split("/") if p]
    if not parts:
        return None
    if parts == [ALL]:
        return ALL
    if parts[0] != "root":
        parts.insert(0, "root")
    return "/" + "/".join(parts)


def within(path: str, scope: str) -> bool:
    """True when tenant `path` is `scope` or below it."""
    return path == scope or path.startswith(scope + "/")


def ancestry(path: str) -> list[str]:
    """The tenant and its parents, nearest first: /root/a/b, /root/a, /root."""
    out = [path]
    while path != ROOT:
        path = path.rsplit("/", 1)[0]
        out.append(path)
    return out


@dataclass
class Tenant:
    name: str
    path: str
    parent_path: str | None
    descr: str | None = None
    # The lab's tenant QoS extension: POLICY_FIELDS -> int, 0 = unlimited.
    qos: dict = field(default_factory=dict)

    def to_dict(self, subtenants: list[str]) -> dict:
        return {"path": self.path, "name": self.name, "descr": self.descr,
                "parent_path": self.parent_path or "", "tenant": self.parent_path or ROOT,
                "subtenants": subtenants}


@dataclass
class User:
    user_id: str
    full_name: str
    password: str | None          # None for directory (LDAP) users: checked remotely
    roles: list[str]
    tenant: str = ROOT
    email: str | None = None
    enabled: bool = True
    remote_server: str | None = None

    @property
    def path(self) -> str:
        return f"/users/{self.user_id}"

    def to_dict(self) -> dict:
        return {"path": self.path, "user_id": self.user_id, "full_name": self.full_name,
                "email": self.email, "enabled": self.enabled, "version": 1,
                "roles": [{"path": f"/roles/{r}"} for r in self.roles],
                "tenants": [{"path": self.tenant}], "tenant": self.tenant}


@dataclass
class Session:
    key: str
    user: User
    home: str             # the subtree this session may see; /root for admins
    admin: bool
    expires: float
    remote_server: str | None = None

    @staticmethod
    def open(user: User, *, home: str, admin: bool, ttl: float, remote_server=None) -> "Session":
        return Session(key=secrets.token_hex(16), user=user, home=home, admin=admin,
                       expires=time.monotonic() + ttl, remote_server=remote_server)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.expires


@dataclass(frozen=True)
class Caller:
    """One request's identity: the session and the tenant the request acts in.

    `tenant` is a tenant path inside the session's subtree, or ALL (admin only)."""
    session: Session
    tenant: str

    @property
    def admin(self) -> bool:
        return self.session.admin

    def sees(self, tenant_path: str) -> bool:
        return within(tenant_path, self.session.home)

    def acts_in(self, tenant_path: str) -> bool:
        """Objects a request may name directly: its own tenant, or anywhere for ALL."""
        if self.tenant == ALL:
            return self.sees(tenant_path)
        return tenant_path == self.tenant
