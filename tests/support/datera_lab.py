"""The session lab's Datera as the data-plane and QoS tests use it, through the unmodified
dfs_sdk (fixtures `lab_api` and `lab_tenant` are in tests/conftest.py): app instances made
straight through the API, seen from a host that logs in with clients.initiator.
"""
import uuid
from dataclasses import dataclass

from clients.initiator import login
from lab import topology
from tests.support.dsdk import errors

POOL = "/access_network_ip_pools/default"


def drop_tenant(api, path: str):
    """Delete tenant `path` with its app instances and subtenants; a gone tenant is no error."""
    for ai in api.app_instances.list(tenant=path):
        ai.set(admin_state="offline", force=True, tenant=path)
        ai.delete(force=True, tenant=path)
    for sub in api.tenants.list(tenant=path):
        if sub["path"] != path:
            drop_tenant(api, sub["path"])
    try:
        api.tenants.get(path.lstrip("/")).delete(tenant="/root")
    except errors.ApiNotFoundError:
        pass


@dataclass
class LabVolume:
    """One app instance with one volume, as the lab's API made it, seen from a host."""
    api: object
    tenant: str
    ai: object
    si: object
    vol: object
    iqn: str
    ips: list

    @property
    def uuid(self) -> str:
        return self.vol["uuid"]

    def login(self, initiator: str, portal: int = 0, **chap):
        return login(self.ips[portal], topology.DATERA_LOGIN_PORT, initiator, self.iqn, **chap)

    def points(self, metric: str, since: str = "1m") -> list[dict]:
        return getattr(self.api.metrics.io, metric).get(uuid=self.uuid, since=since,
                                                        tenant=self.tenant)[0]["points"]


def make_lab_volume(api, tenant: str, *, initiators=(), chap=None, qos=None,
                    size_gb: int = 1) -> LabVolume:
    """An app instance whose ACL admits `initiators`, with CHAP (user, secret) and a
    performance policy when given, online."""
    ai = api.app_instances.create(
        tenant=tenant, name=f"vdp-{uuid.uuid4().hex[:8]}", access_control_mode="deny_all",
        storage_instances=[{"name": "storage-1", "ip_pool": {"path": POOL}, "volumes": [{
            "name": "volume-1", "size": size_gb, "replica_count": 1}]}])
    si = ai.storage_instances.list(tenant=tenant)[0]
    paths = []
    for iqn in initiators:
        try:
            api.initiators.create(id=iqn, name=f"host-{uuid.uuid4().hex[:6]}", force=True,
                                  tenant=tenant)
        except errors.ApiConflictError:
            pass
        paths.append({"path": f"/initiators/{iqn}"})
    si.acl_policy.set(initiators=paths, initiator_groups=[], tenant=tenant)
    if chap:
        si.auth.set(type="chap", target_user_name=chap[0], target_pswd=chap[1], tenant=tenant)
    vol = si.volumes.list(tenant=tenant)[0]
    if qos:
        vol.performance_policy.create(tenant=tenant, **qos)
    si = si.reload(tenant=tenant)
    return LabVolume(api, tenant, ai, si, vol, si["access"]["iqn"], list(si["access"]["ips"]))


HOST = "iqn.1993-08.org.debian:01:vdp-host"
