"""DateraModel: the whole state of the lab's Datera cluster, and every operation on it.

Operations take a Caller (who is asking, in which tenant) and plain dicts, and return plain
dicts in the API's wire form; they raise errors.ApiFailure. The data plane learns about every
change that matters to bytes or QoS through contract.DataPlaneHooks, and asks this model
whether an initiator may log in through contract.LoginAuthority.

The operations are mixins by family, as apps.py: sessions.py (sessions, users, roles),
access_ops.py (initiators, groups, IP pools, ACL, CHAP, the login authority), apps.py (app
instances and storage instances), volume_ops.py (volumes, performance policies, snapshots);
tenants, the system and metrics scopes are here.
"""
import ipaddress
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Callable

from ..contract import POLICY_FIELDS, Scope
from . import validate as v
from .access import Initiator, InitiatorGroup, IpPool
from .access_ops import AccessOps
from .apps import AppInstanceOps
from .volume_ops import VolumeOps, policy_body
from .errors import Conflict, InvalidRequest, NotFound
from .events import USER, EventLog
from .sessions import SessionOps
from .storage import AppInstance, StorageInstance, Volume
from .tenancy import ALL, ROOT, Caller, Session, Tenant, User, normalize_tenant, within


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


class DateraModel(SessionOps, AccessOps, AppInstanceOps, VolumeOps):
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
