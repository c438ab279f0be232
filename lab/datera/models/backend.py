"""DateraModel: the whole state of the lab's Datera cluster, and every operation on it.

Operations take a Caller (who is asking, in which tenant) and plain dicts, and return plain
dicts in the API's wire form; they raise errors.ApiFailure. The data plane learns about every
change that matters to bytes or QoS through contract.DataPlaneHooks, and asks this model
whether an initiator may log in through contract.LoginAuthority.
"""
import hmac
import ipaddress
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Callable

from .. import contract
from ..contract import POLICY_FIELDS, LoginRefused, Scope, VolumeHandle
from . import validate as v
from .access import Initiator, InitiatorGroup, IpPool, network_path
from .apps import AppInstanceOps, policy_body
from .errors import SESSION_EXPIRED, AuthFailed, Conflict, InvalidRequest, NotFound, PermissionDenied
from .events import SYSTEM, USER, EventLog
from .storage import AppInstance, StorageInstance, Volume
from .tenancy import ALL, ROOT, Caller, Session, Tenant, User, ancestry, normalize_tenant, within

ROLES = {"admin": ["all"], "tenant_admin": ["tenant"]}
# A login without CHAP to a CHAP target: the login service answers it with a challenge. Until
# the contract names this subclass, any refusal of a CHAP-less login is treated that way.
ChapRequired = contract.ChapRequired


@dataclass
class ModelConfig:
    vips: list[str]
    mgmt_ip: str
    admin_user: str
    admin_password: str
    sw_version: str = "3.3.5.0"
    session_ttl_s: float = 900.0
    # (total, free) bytes of the storage behind the data plane, for /system's capacities.
    capacity: Callable[[], tuple[int, int]] = field(default=lambda: (1 << 40, 1 << 40))


class DateraModel(AppInstanceOps):
    def __init__(self, config: ModelConfig, hooks=None, clock=time.time):
        if len(config.vips) != 2:
            raise ValueError("the lab's Datera cluster needs exactly two VIPs")
        self.config = config
        self.vips = list(config.vips)
        self.hooks = hooks
        self.clock = clock
        self.started = clock()
        self.system_uuid = str(uuidlib.uuid4())
        self.node_uuid = str(uuidlib.uuid4())
        self.events = EventLog(clock)
        self.tenants: dict[str, Tenant] = {ROOT: Tenant(name="root", path=ROOT, parent_path=None)}
        self.users: dict[str, User] = {config.admin_user: User(
            user_id=config.admin_user, full_name="Local administrator",
            password=config.admin_password, roles=["admin"])}
        self.sessions: dict[str, Session] = {}
        self._ais: dict[str, dict[str, AppInstance]] = {}
        self._targets: dict[str, StorageInstance] = {}     # IQN -> storage instance
        self._volumes: dict[str, Volume] = {}              # uuid -> volume
        self._initiators: dict[str, dict[str, Initiator]] = {}
        self._groups: dict[str, dict[str, InitiatorGroup]] = {}
        self._pools: dict[str, dict[str, IpPool]] = {ROOT: {"default": IpPool(
            name="default", tenant=ROOT, descr="The lab's access network: both VIPs",
            network_paths=[self._vip_network_path()])}}
        self._last_ts = 0.0

    def _vip_network_path(self) -> dict:
        # The smallest network that holds both VIPs (same /24 in the lab's topology).
        a, b = (ipaddress.IPv4Address(x) for x in self.vips)
        start, end = min(a, b), max(a, b)
        net = next(ipaddress.IPv4Network(f"{start}/{p}", strict=False) for p in range(30, 7, -1)
                   if end in ipaddress.IPv4Network(f"{start}/{p}", strict=False))
        return {"name": "vips", "start_ip": str(start), "netmask": net.prefixlen, "vlan": 0,
                "range": max(6, int(end) - int(start) + 1), "mtu": 1500, "gateway": ""}

    def _hook(self, name: str, *args) -> None:
        if self.hooks is not None:
            getattr(self.hooks, name)(*args)

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

    # -- tenants -----------------------------------------------------------------------------
    def _tenant(self, c: Caller, ident: str) -> Tenant:
        path = normalize_tenant(ident)
        t = self.tenants.get(path) if path and path != ALL else None
        if t is None or not c.sees(t.path):
            raise NotFound()
        return t

    def _tenant_dict(self, t: Tenant) -> dict:
        subs = [{"path": p, "name": x.name} for p, x in self.tenants.items() if x.parent_path == t.path]
        return t.to_dict(subs)

    def list_tenants(self, c: Caller) -> list[dict]:
        scope = c.session.home if c.tenant == ALL else c.tenant
        return [self._tenant_dict(t) for p, t in self.tenants.items() if within(p, scope)]

    def get_tenant(self, c: Caller, ident: str) -> dict:
        return self._tenant_dict(self._tenant(c, ident))

    def create_tenant(self, c: Caller, body: dict) -> dict:
        v.only(body, ("name", "descr", "parent_path", "id", "force"), "tenant")
        name = v.name(body.get("name"))
        parent = self._tenant(c, body["parent_path"]) if body.get("parent_path") else \
            self.tenants[self.write_tenant(c)]
        path = f"{parent.path}/{name}"
        if name == "root" or path in self.tenants:
            raise Conflict(f"tenant {ROOT if name == 'root' else path} already exists")
        t = Tenant(name=name, path=path, parent_path=parent.path,
                   descr=v.text(body.get("descr"), "descr"))
        self.tenants[path] = t
        self.events.record(USER, "tenant_created", f"tenant {path} created", tenant=path,
                           object_path=path)
        return self._tenant_dict(t)

    def update_tenant(self, c: Caller, ident: str, body: dict) -> dict:
        t = self._tenant(c, ident)
        v.only(body, ("descr", "force"), "tenant")
        if "descr" in body:
            t.descr = v.text(body["descr"], "descr")
        return self._tenant_dict(t)

    def delete_tenant(self, c: Caller, ident: str, body: dict) -> dict:
        t = self._tenant(c, ident)
        v.only(body, ("force",), "delete")
        if t.path == ROOT or t.path == c.session.home:
            raise InvalidRequest(f"tenant {t.path} cannot be deleted by this session")
        if any(x.parent_path == t.path for x in self.tenants.values()):
            raise Conflict(f"tenant {t.path} still has subtenants")
        if self._ais.get(t.path):
            raise Conflict(f"tenant {t.path} still has app_instances")
        out = self._tenant_dict(t)
        if any(t.qos.values()):
            self._hook("tenant_qos", t.path, {f: 0 for f in POLICY_FIELDS})
        for store in (self._ais, self._initiators, self._groups, self._pools):
            store.pop(t.path, None)
        del self.tenants[t.path]
        self.events.record(USER, "tenant_deleted", f"tenant {t.path} deleted", tenant=t.parent_path,
                           object_path=t.path)
        return out

    # -- tenant QoS: the lab's extension (the real DSP has only per-volume policies) -----------
    def get_tenant_qos(self, c: Caller) -> dict:
        t = self.tenants[self.write_tenant(c)]
        return {"path": "/tenant_qos", "tenant": t.path,
                **{f: t.qos.get(f, 0) for f in POLICY_FIELDS}}

    def set_tenant_qos(self, c: Caller, body: dict) -> dict:
        self._admin_only(c, "tenant_qos")
        if c.tenant == ALL:
            raise InvalidRequest("tenant_qos: name one tenant in the tenant header, not 'all'")
        t = self.tenants[c.tenant]
        t.qos = policy_body(body, "tenant_qos", base={f: t.qos.get(f, 0) for f in POLICY_FIELDS})
        self._hook("tenant_qos", t.path, dict(t.qos))
        self.events.record(USER, "tenant_qos_set", f"tenant QoS of {t.path} set", tenant=t.path,
                           object_path="/tenant_qos")
        return self.get_tenant_qos(c)

    # -- initiators and groups (resolved up the tenant tree) -----------------------------------
    def _resolve_initiator(self, tenant: str, iqn: str) -> Initiator:
        for t in ancestry(tenant):
            ini = self._initiators.get(t, {}).get(iqn)
            if ini:
                return ini
        raise NotFound(f"/initiators/{iqn}")

    def _resolve_group(self, tenant: str, name: str) -> InitiatorGroup:
        for t in ancestry(tenant):
            grp = self._groups.get(t, {}).get(name)
            if grp:
                return grp
        raise NotFound(f"/initiator_groups/{name}")

    def _scoped(self, store: dict, c: Caller) -> list:
        if c.tenant == ALL:
            return [x for t, objs in store.items() if c.sees(t) for x in objs.values()]
        return list(store.get(c.tenant, {}).values())

    def _lookup(self, store: dict, c: Caller, key: str, resolve):
        if c.tenant == ALL:
            found = next((x for x in self._scoped(store, c) if key in (getattr(x, "id", None), x.name)), None)
            if found:
                return found
            raise NotFound()
        try:
            return resolve(c.tenant, key)
        except NotFound:
            raise NotFound() from None

    def _own(self, store: dict, c: Caller, key: str):
        obj = store.get(self.write_tenant(c), {}).get(key)
        if obj is None:
            raise NotFound()
        return obj

    def list_initiators(self, c: Caller) -> list[dict]:
        return [i.to_dict() for i in self._scoped(self._initiators, c)]

    def get_initiator(self, c: Caller, iqn: str) -> dict:
        return self._lookup(self._initiators, c, iqn, self._resolve_initiator).to_dict()

    def create_initiator(self, c: Caller, body: dict) -> dict:
        v.only(body, ("id", "name", "force"), "initiator")
        iqn = body.get("id")
        if not isinstance(iqn, str) or not v.INITIATOR_RE.match(iqn):
            raise InvalidRequest(f"id: {iqn!r} is not an iSCSI initiator name (iqn., eui. or naa.)")
        tenant = self.write_tenant(c)
        if iqn in self._initiators.get(tenant, {}):
            raise Conflict(f"initiator {iqn} already exists in {tenant}")
        ini = Initiator(id=iqn, name=v.name(body.get("name")), tenant=tenant)
        self._initiators.setdefault(tenant, {})[iqn] = ini
        self.events.record(USER, "initiator_created", f"initiator {iqn} created", tenant=tenant,
                           object_path=ini.path)
        return ini.to_dict()

    def update_initiator(self, c: Caller, iqn: str, body: dict) -> dict:
        ini = self._own(self._initiators, c, iqn)
        v.only(body, ("name", "force"), "initiator")
        if "name" in body:
            ini.name = v.name(body["name"])
        return ini.to_dict()

    def delete_initiator(self, c: Caller, iqn: str, body: dict) -> dict:
        ini = self._own(self._initiators, c, iqn)
        v.only(body, ("force",), "delete")
        users = [si for si in self._targets.values() if (ini.tenant, iqn) in si.acl.initiators]
        if users and not body.get("force"):
            raise Conflict(f"initiator {iqn} is in the ACL of {users[0].path}")
        for si in users:
            si.acl.initiators.remove((ini.tenant, iqn))
        for grp in self._groups.get(ini.tenant, {}).values():
            if (ini.tenant, iqn) in grp.members:
                grp.members.remove((ini.tenant, iqn))
        del self._initiators[ini.tenant][iqn]
        self.events.record(USER, "initiator_deleted", f"initiator {iqn} deleted",
                           tenant=ini.tenant, object_path=ini.path)
        return ini.to_dict()

    def list_initiator_groups(self, c: Caller) -> list[dict]:
        return [g.to_dict() for g in self._scoped(self._groups, c)]

    def get_initiator_group(self, c: Caller, name: str) -> dict:
        return self._lookup(self._groups, c, name, self._resolve_group).to_dict()

    def _members(self, tenant: str, body_members, where: str) -> list[tuple[str, str]]:
        out = []
        for p in v.ref_list(body_members, where, "/initiators/"):
            ini = self._resolve_initiator(tenant, p[len("/initiators/"):])
            if (ini.tenant, ini.id) not in out:
                out.append((ini.tenant, ini.id))
        return out

    def create_initiator_group(self, c: Caller, body: dict) -> dict:
        v.only(body, ("name", "members", "force"), "initiator_group")
        tenant = self.write_tenant(c)
        name = v.name(body.get("name"))
        if name in self._groups.get(tenant, {}):
            raise Conflict(f"initiator_group {name} already exists in {tenant}")
        grp = InitiatorGroup(name=name, tenant=tenant,
                             members=self._members(tenant, body.get("members", []), "members"))
        self._groups.setdefault(tenant, {})[name] = grp
        self.events.record(USER, "initiator_group_created", f"initiator_group {name} created",
                           tenant=tenant, object_path=grp.path)
        return grp.to_dict()

    def update_initiator_group(self, c: Caller, name: str, body: dict) -> dict:
        grp = self._own(self._groups, c, name)
        v.only(body, ("members", "force"), "initiator_group")
        if "members" in body:
            grp.members = self._members(grp.tenant, body["members"], "members")
        return grp.to_dict()

    def link_group_member(self, c: Caller, name: str, body: dict) -> dict:
        grp = self._own(self._groups, c, name)
        op, path = v.link_op(body, "members", "/initiators/")
        iqn = path[len("/initiators/"):]
        if op == "add":
            ini = self._resolve_initiator(grp.tenant, iqn)
            if (ini.tenant, iqn) not in grp.members:
                grp.members.append((ini.tenant, iqn))
        else:
            kept = [m for m in grp.members if m[1] != iqn]
            if len(kept) == len(grp.members):
                raise NotFound(path)
            grp.members = kept
        return grp.to_dict()

    def list_group_members(self, c: Caller, name: str) -> list[dict]:
        return self._lookup(self._groups, c, name, self._resolve_group).to_dict()["members"]

    def delete_initiator_group(self, c: Caller, name: str, body: dict) -> dict:
        grp = self._own(self._groups, c, name)
        v.only(body, ("force",), "delete")
        users = [si for si in self._targets.values() if (grp.tenant, name) in si.acl.initiator_groups]
        if users and not body.get("force"):
            raise Conflict(f"initiator_group {name} is in the ACL of {users[0].path}")
        for si in users:
            si.acl.initiator_groups.remove((grp.tenant, name))
        del self._groups[grp.tenant][name]
        return grp.to_dict()

    # -- access network IP pools -----------------------------------------------------------------
    def _resolve_pool(self, tenant: str, path: str) -> tuple[str, str]:
        name = path[len("/access_network_ip_pools/"):]
        for t in ancestry(tenant):
            if name in self._pools.get(t, {}):
                return t, name
        raise NotFound(path)

    def list_ip_pools(self, c: Caller) -> list[dict]:
        """The caller's pools and those it inherits (nearest wins), as Cinder expects when it
        looks for the pool whose network holds a connector's IP."""
        if c.tenant == ALL:
            return [p.to_dict() for p in self._scoped(self._pools, c)]
        seen = {}
        for t in ancestry(c.tenant):
            for name, pool in self._pools.get(t, {}).items():
                seen.setdefault(name, pool)
        return [p.to_dict() for p in seen.values()]

    def get_ip_pool(self, c: Caller, name: str) -> dict:
        tenant = self.write_tenant(c)
        try:
            t, name = self._resolve_pool(tenant, f"/access_network_ip_pools/{name}")
        except NotFound:
            raise NotFound() from None
        return self._pools[t][name].to_dict()

    def create_ip_pool(self, c: Caller, body: dict) -> dict:
        self._admin_only(c, "access_network_ip_pools")
        v.only(body, ("name", "descr", "network_paths", "force"), "access_network_ip_pool")
        tenant = self.write_tenant(c)
        name = v.name(body.get("name"))
        if name in self._pools.get(tenant, {}):
            raise Conflict(f"access_network_ip_pool {name} already exists in {tenant}")
        paths = body.get("network_paths", [])
        if not isinstance(paths, list) or not paths:
            raise InvalidRequest("network_paths: expected a non-empty list")
        pool = IpPool(name=name, tenant=tenant, descr=v.text(body.get("descr"), "descr"),
                      network_paths=[network_path(p, f"network_paths[{i}]") for i, p in enumerate(paths)])
        self._pools.setdefault(tenant, {})[name] = pool
        return pool.to_dict()

    def delete_ip_pool(self, c: Caller, name: str, body: dict) -> dict:
        self._admin_only(c, "access_network_ip_pools")
        pool = self._own(self._pools, c, name)
        if pool.tenant == ROOT and name == "default":
            raise InvalidRequest("the default access_network_ip_pool cannot be deleted")
        if any(si.ip_pool == (pool.tenant, name) for si in self._targets.values()):
            raise Conflict(f"access_network_ip_pool {name} is in use")
        del self._pools[pool.tenant][name]
        return pool.to_dict()

    # -- system, nodes, events --------------------------------------------------------------------
    def _provisioned(self) -> int:
        return sum(vol.size for vol in self._volumes.values()) << 30

    def system(self, c: Caller) -> dict:
        total, free = self.config.capacity()
        prov = self._provisioned()
        uptime = int(self.clock() - self.started)
        return {"path": "/system", "name": "vancouver-lab-dsp", "uuid": self.system_uuid,
                "sw_version": self.config.sw_version, "build_version": f"{self.config.sw_version}-lab",
                "health": "ok", "op_state": "running", "causes": [],
                "l3_enabled": False, "callhome_enabled": False, "compression_enabled": False,
                "compression_ratio": "1.0",
                "total_capacity": total, "available_capacity": free,
                "total_provisioned_capacity": prov,
                "all_flash_total_capacity": total, "all_flash_available_capacity": free,
                "all_flash_provisioned_capacity": prov,
                "hybrid_total_capacity": 0, "hybrid_available_capacity": 0,
                "hybrid_provisioned_capacity": 0,
                "uptime": uptime, "last_reboot_timestamp": int(self.started),
                "mgmt_ip": self.config.mgmt_ip,
                "access_interface_aggr_type": "single", "internal_interface_aggr_type": "single",
                "timezone": "UTC"}

    def system_network(self, c: Caller) -> dict:
        def paths(ips):
            return [{"name": f"path-{i + 1}", "ip": ip, "netmask": 24, "vlan": 0, "gateway": "",
                     "mtu": 1500} for i, ip in enumerate(ips)]
        return {"path": "/system/network",
                "access_vip": {"path": "/system/network/access_vip", "network_paths": paths(self.vips)},
                "mgmt_vip": {"path": "/system/network/mgmt_vip",
                             "network_paths": paths([self.config.mgmt_ip])}}

    def storage_nodes(self, c: Caller) -> list[dict]:
        total, free = self.config.capacity()
        return [{"path": f"/storage_nodes/{self.node_uuid}", "uuid": self.node_uuid,
                 "name": "lab-node-1", "admin_state": "online", "op_state": "running",
                 "op_status": "none", "health": "ok", "hw_health": "ok", "sw_health": "ok",
                 "type": "all_flash", "sw_version": self.config.sw_version,
                 "mgmt_ip_1": self.config.mgmt_ip, "mgmt_ip_2": "",
                 "total_capacity": total, "available_capacity": free,
                 "model": "vancouver-lab", "serial_no": self.node_uuid[:12], "disconnected": False,
                 "volumes": [{"path": vol.path} for vol in self._volumes.values()
                             if c.sees(vol.parent.parent.tenant)]}]

    def storage_node(self, c: Caller, node: str) -> dict:
        found = [n for n in self.storage_nodes(c) if node in (n["uuid"], n["name"])]
        if not found:
            raise NotFound()
        return found[0]

    def list_events(self, c: Caller, kind: str | None) -> list[dict]:
        scope = c.session.home if c.tenant == ALL else c.tenant
        return [e.to_dict() for e in self.events.list(kind) if within(e.tenant, scope)]

    def get_event(self, c: Caller, event_uuid: str) -> dict:
        e = self.events.find(event_uuid)
        if e is None or not c.sees(e.tenant):
            raise NotFound()
        return e.to_dict()

    def alerts(self, c: Caller) -> list[dict]:
        return []   # the lab raises no hardware or capacity alerts

    # -- metrics: which I/O a query is about --------------------------------------------------
    def metric_scope(self, c: Caller, *, uuid: str | None = None, path: str | None = None):
        """(Scope, entity_path, tenant) for a metrics query by uuid, by path, or by the tenant
        header when neither is given."""
        if uuid:
            vol = self._volumes.get(uuid)
            if vol and c.acts_in(vol.parent.parent.tenant):
                return Scope("volume", vol.uuid), vol.path, vol.parent.parent.tenant
            ai = next((a for a in self._ais_in(c) if uuid in (a.id, a.uuid)), None)
            if ai is None:
                raise NotFound(f"/metrics?uuid={uuid}")
            return Scope("app_instance", ai.id), ai.path, ai.tenant
        if path and path.rstrip("/") in ("/system", "/app_instances", "/volumes", "/storage_instances"):
            if c.admin and c.tenant in (ROOT, ALL):
                return Scope("system", ""), "/system", ROOT
            return Scope("tenant", self.write_tenant(c)), path, self.write_tenant(c)
        if path:
            obj = self._by_path(c, path)
            if isinstance(obj, Volume):
                return Scope("volume", obj.uuid), obj.path, obj.parent.parent.tenant
            if isinstance(obj, AppInstance):
                return Scope("app_instance", obj.id), obj.path, obj.tenant
            raise InvalidRequest("path: metrics are kept per volume, app_instance, tenant or system")
        if c.admin and c.tenant in (ROOT, ALL):
            return Scope("system", ""), "/system", ROOT
        return Scope("tenant", c.tenant), c.tenant, c.tenant

    # -- contract.LoginAuthority ------------------------------------------------------------------
    def _acl_allows(self, si: StorageInstance, initiator: str) -> bool:
        if si.access_control_mode == "allow_all":
            return True
        if any(iqn == initiator for _, iqn in si.acl.initiators):
            return True
        for t, name in si.acl.initiator_groups:
            grp = self._groups.get(t, {}).get(name)
            if grp and any(iqn == initiator for _, iqn in grp.members):
                return True
        return False

    def login(self, *, initiator: str, target: str, portal: str, chap_user: str | None,
              chap_response_check) -> list[VolumeHandle]:
        si = self._targets.get(target)
        tenant = si.parent.tenant if si else ROOT
        try:
            if si is None:
                raise LoginRefused(f"unknown target {target}")
            host = portal.rsplit(":", 1)[0] if portal.count(":") == 1 else portal
            if host not in self.vips:
                raise LoginRefused(f"target {target} is not served on {portal}")
            if not si.online:
                raise LoginRefused(f"target {target} is offline")
            if not self._acl_allows(si, initiator):
                raise LoginRefused(f"initiator {initiator} is not in the ACL of {target}")
            if si.auth.type in ("chap", "mchap"):
                if not chap_user:
                    raise ChapRequired(f"target {target} requires CHAP")
                if chap_user != si.auth.target_user_name or not chap_response_check(si.auth.target_pswd):
                    raise LoginRefused(f"CHAP authentication failed for {initiator}")
        except LoginRefused as e:
            self.events.record(SYSTEM, "initiator_login_refused", str(e), tenant=tenant,
                               object_path=si.path if si else "", severity="warning")
            raise
        self.events.record(SYSTEM, "initiator_login", f"initiator {initiator} logged in to {target} "
                           f"on {portal}", tenant=tenant, object_path=si.path)
        return [vol.handle() for vol in si.volumes.values()]

    def may_access(self, *, initiator: str, vol_uuid: str) -> bool:
        vol = self._volumes.get(vol_uuid)
        return bool(vol and vol.parent.online and self._acl_allows(vol.parent, initiator))
