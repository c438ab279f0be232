"""The session lab's Datera API as the test_datera_* modules reach it, through the unmodified
dfs_sdk 1.2.27: fixtures `udc`, `api`, `make_tenant`, `tenant` (import them into a test module),
and the Cinder driver's create_volume (reference datera-api §3.3) with its lookups.
"""
import uuid

import pytest

from tests.support.datera_lab import POOL, drop_tenant
from tests.support.dsdk import Udc, connect, errors


# ---- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def udc(target) -> Udc:
    return Udc.load(target.file("datera", "udc"), target.file("datera", "ca_file"))


@pytest.fixture(scope="module")
def api(udc):
    return connect(udc)


@pytest.fixture
def make_tenant(api):
    made = []

    def make(prefix: str = "vtest") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        api.tenants.create(name=name)
        made.append(f"/root/{name}")
        return made[-1]

    yield make
    for path in reversed(made):
        drop_tenant(api, path)


@pytest.fixture
def tenant(make_tenant) -> str:
    return make_tenant()


def cinder_create(api, tenant: str, *, size: int = 1, vol_id: str | None = None, qos=None):
    """create_volume as the Cinder driver does it on 3.3 (§3.3): tenant, AI, QoS, metadata."""
    vol_id = vol_id or str(uuid.uuid4())
    try:
        api.tenants.create(name=tenant.rsplit("/", 1)[1])
    except errors.ApiConflictError:
        pass   # Cinder creates the tenant every time and ignores 409
    ai = api.app_instances.create(
        tenant=tenant, create_mode="openstack", uuid=vol_id, name=f"OS-{vol_id}",
        access_control_mode="deny_all",
        storage_instances=[{"name": "storage-1", "ip_pool": {"path": POOL}, "volumes": [{
            "name": "volume-1", "size": size, "replica_count": 3, "snapshot_policies": [],
            "placement_policy": {"path": "/placement_policies/default"}}]}])
    vol = cinder_dvol(api, tenant, vol_id)
    if qos:
        try:
            vol.performance_policy.get(tenant=tenant).delete(tenant=tenant)
        except errors.ApiNotFoundError:
            pass
        vol.performance_policy.create(tenant=tenant, **qos)
    ai.metadata.set(tenant=tenant, host="cinder@datera", display_name="v", bootable=False,
                    availability_zone="nova")
    return ai, vol_id


def cinder_ai(api, tenant, vol_id):
    found = api.app_instances.list(filter=f"match(name,.*{vol_id}.*)", tenant=tenant)
    assert found, f"no app instance for {vol_id}"
    return found[0]


def cinder_dvol(api, tenant, vol_id):
    ai = cinder_ai(api, tenant, vol_id)
    si = ai.storage_instances.list(tenant=tenant)[0]
    return si.volumes.list(tenant=tenant)[0]
