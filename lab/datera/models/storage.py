"""App instances, storage instances, volumes, performance policies and snapshots.

Plain objects and their wire form; the rules that span objects live in the operation mixins
(apps.py, volume_ops.py, access_ops.py, sessions.py) and backend.py.
"""
import secrets
import uuid as uuidlib
from dataclasses import dataclass, field

from ..contract import POLICY_FIELDS, VolumeHandle
from .access import AclPolicy, Auth

GIB = 1 << 30
PLACEMENT_MODES = ("hybrid", "single_flash", "all_flash")
CREATE_MODES = ("normal", "openstack", "internal", "docker", "cloudstack", "kubernetes",
                "mesos", "vmware_vro", "vmware_vcenter", "docker_swarm")
ACCESS_MODES = ("allow_all", "deny_all")
ADMIN_STATES = ("online", "offline")
EMPTY_REF = {"path": "", "resolved_path": "", "resolved_tenant": ""}


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def new_iqn() -> str:
    return f"iqn.2013-05.com.daterainc:tc:01:sn:{secrets.token_hex(8)}"


def ref(path: str, resolved_tenant: str) -> dict:
    return {"path": path, "resolved_path": path if path else "", "resolved_tenant": resolved_tenant}


@dataclass
class Snapshot:
    timestamp: str          # the id in the URL: "<unix seconds>.<fraction>"
    uuid: str
    parent_path: str        # the volume's path
    op_state: str = "available"

    @property
    def path(self) -> str:
        return f"{self.parent_path}/snapshots/{self.timestamp}"

    def to_dict(self) -> dict:
        return {"path": self.path, "timestamp": self.timestamp, "uuid": self.uuid,
                "utc_ts": self.timestamp, "op_state": self.op_state, "type": "local",
                "local": True, "remote_providers": []}


@dataclass
class Volume:
    name: str
    size: int               # GiB
    parent: "StorageInstance"
    replica_count: int = 3
    placement_mode: str = "hybrid"
    placement_policy: str = "/placement_policies/default"
    uuid: str = field(default_factory=new_uuid)
    policy: dict | None = None            # performance_policy: POLICY_FIELDS -> int
    snapshots: dict = field(default_factory=dict)   # timestamp -> Snapshot
    restore_point: str = ""

    @property
    def path(self) -> str:
        return f"{self.parent.path}/volumes/{self.name}"

    def handle(self) -> VolumeHandle:
        ai = self.parent.parent
        return VolumeHandle(uuid=self.uuid, tenant=ai.tenant, app_instance=ai.id,
                            size_bytes=self.size * GIB)

    def policy_dict(self) -> dict:
        return {"path": f"{self.path}/performance_policy", **{f: self.policy.get(f, 0) for f in POLICY_FIELDS}}

    def to_dict(self) -> dict:
        online = self.parent.parent.admin_state == "online"
        d = {"path": self.path, "name": self.name, "uuid": self.uuid, "id": self.uuid,
             "size": self.size, "replica_count": self.replica_count,
             "placement_mode": self.placement_mode,
             "placement_policy": ref(self.placement_policy, "/root"),
             "capacity_in_use": 0, "restore_point": self.restore_point,
             "op_state": "available", "op_status": "none",
             "availability_state": "available" if online else "unavailable",
             "deployment_state": "deployed", "health": "ok", "causes": [],
             "recovery_state": "", "storage_state": "",
             "snapshots": [s.to_dict() for s in self.snapshots.values()],
             "snapshot_policies": [], "active_storage_nodes": [],
             "logical_size": self.size * GIB, "effective_size": self.size * GIB}
        if self.policy is not None:
            d["performance_policy"] = self.policy_dict()
        return d


@dataclass
class StorageInstance:
    name: str
    parent: "AppInstance"
    iqn: str = field(default_factory=new_iqn)
    uuid: str = field(default_factory=new_uuid)
    admin_state: str = "online"
    access_control_mode: str = "deny_all"
    ip_pool: tuple[str, str] = ("/root", "default")      # (tenant, name)
    volumes: dict = field(default_factory=dict)           # name -> Volume
    acl: AclPolicy | None = None
    auth: Auth | None = None

    def __post_init__(self):
        self.acl = self.acl or AclPolicy(owner_path="")
        self.auth = self.auth or Auth(owner_path="")

    @property
    def path(self) -> str:
        return f"{self.parent.path}/storage_instances/{self.name}"

    @property
    def online(self) -> bool:
        return self.admin_state == "online" and self.parent.admin_state == "online"

    def to_dict(self, ips: list[str]) -> dict:
        # ACL and auth paths follow the SI's (possibly renamed) parent.
        self.acl.owner_path = self.auth.owner_path = self.path
        pool_tenant, pool_name = self.ip_pool
        return {"path": self.path, "name": self.name, "uuid": self.uuid, "id": self.uuid,
                "admin_state": self.admin_state,
                "op_state": "available" if self.online else "unavailable",
                "deployment_state": "deployed", "health": "ok", "causes": [],
                "access_control_mode": self.access_control_mode,
                "ip_pool": ref(f"/access_network_ip_pools/{pool_name}", pool_tenant),
                "access": {"path": f"{self.path}/access", "iqn": self.iqn, "ips": list(ips)},
                "acl_policy": self.acl.to_dict(), "auth": self.auth.to_dict(),
                "active_initiators": [], "active_storage_nodes": [],
                "volumes": [vol.to_dict() for vol in self.volumes.values()]}


@dataclass
class AppInstance:
    name: str
    tenant: str
    id: str = field(default_factory=new_uuid)
    uuid: str = "00000000-0000-0000-0000-000000000000"
    descr: str | None = None
    create_mode: str = "normal"
    admin_state: str = "online"
    access_control_mode: str = "deny_all"
    storage_instances: dict = field(default_factory=dict)  # name -> StorageInstance
    metadata: dict = field(default_factory=dict)
    restore_point: str = ""

    @property
    def path(self) -> str:
        return f"/app_instances/{self.id}"

    def volumes(self):
        for si in self.storage_instances.values():
            yield from si.volumes.values()

    def to_dict(self, ips: list[str]) -> dict:
        return {"path": self.path, "id": self.id, "name": self.name, "uuid": self.uuid,
                "tenant": self.tenant, "descr": self.descr, "create_mode": self.create_mode,
                "admin_state": self.admin_state, "op_state": "available",
                "deployment_state": "deployed", "health": "ok", "causes": [],
                "access_control_mode": self.access_control_mode,
                "app_template": dict(EMPTY_REF), "restore_point": self.restore_point,
                "storage_instances": [si.to_dict(ips) for si in self.storage_instances.values()],
                "snapshots": [], "snapshot_policies": [], "repair_priority": "medium"}
