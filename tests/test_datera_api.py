"""The Datera lab's REST API, driven by the unmodified dfs_sdk 1.2.27 the way its consumers drive
it: the Cinder driver's flows (reference datera-api §3.3-3.11), the CSI driver's (§3.13),
tenancy, paging, session expiry, LDAP logins and the lab's tenant QoS extension."""
import asyncio
import json
import os
import threading
import uuid

import pytest
import requests

from clients import ports
from fixtures.waiters import poll_until
from tests.support.dsdk import Udc, connect, errors

POOL = "/access_network_ip_pools/default"
IQN_RE = r"^iqn\.2013-05\.com\.daterainc:tc:01:sn:[0-9a-f]{16}$"


# ---- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def udc(target) -> Udc:
    return Udc.load(target.file("datera", "udc"), target.file("datera", "ca_file"))


@pytest.fixture(scope="module")
def api(udc):
    return connect(udc)


@pytest.fixture(scope="module")
def ldap_users(target) -> dict:
    if "ldap" not in target.doc:
        pytest.skip("the target has no ldap section: no directory to log in against")
    return json.loads(target.file("ldap", "users").read_text())


@pytest.fixture(scope="module")
def ldap_server(target) -> str:
    return target.section("datera").get("ldap_server", "vancouver-ldap")


def _drop_tenant(api, path: str) -> None:
    for ai in api.app_instances.list(tenant=path):
        ai.set(admin_state="offline", force=True, tenant=path)
        ai.delete(force=True, tenant=path)
    for sub in api.tenants.list(tenant=path):
        if sub["path"] != path:
            _drop_tenant(api, sub["path"])
    try:
        api.tenants.get(path.lstrip("/")).delete(tenant="/root")
    except errors.ApiNotFoundError:
        pass


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
        _drop_tenant(api, path)


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


# ---- session, discovery, schema ------------------------------------------------------------

def test_login_reads_system_with_sw_version_and_capacities(api):
    system = api.system.get()
    assert system["sw_version"] == "3.3.5.0"
    for key in ("total_capacity", "available_capacity", "total_provisioned_capacity",
                "all_flash_total_capacity", "hybrid_total_capacity", "uuid", "l3_enabled",
                "compression_enabled", "compression_ratio"):
        assert key in system
    assert system["total_capacity"] >= system["available_capacity"] > 0
    assert api.healthcheck() is True
    assert api.storage_nodes.list()[0]["op_state"] == "running"


def test_api_schema_is_what_dfs_sdk_and_cinder_read(api, udc):
    # Reached the way a consumer would: the reader the SDK parsed, and the raw document.
    names = api.context.reader._ep_name_set
    for name in ("storage_instances", "volumes", "performance_policy", "snapshots", "acl_policy",
                 "auth", "metadata", "int_ecosystem_data", "metrics", "io", "hw", "latest",
                 "iops_write", "cpu_usage", "tenant_qos", "initiator_groups", "members"):
        assert name in names
    for forbidden in ("access", "tenant", "uuid", "size", "op_state"):
        assert forbidden not in names
    url = f"https://{udc.mgmt_ip}:{ports.DATERA_HTTPS}/v2.2/api"
    doc = requests.get(url, verify=udc.ca_file, timeout=10).json()
    assert "name" in doc["/app_instances"]["create"]["bodyParamSchema"]["properties"]
    assert "iops_write" in doc["/metrics/io/:metric"]["read"]["urlParamSchema"]["metric"]["enum"]
    assert doc["/metrics/hw/:metric"]["read"]["urlParamSchema"]["metric"]["enum"] == ["cpu_usage"]
    assert "lab extension" in doc["/tenant_qos"]["description"].lower()
    assert "not in the real datera" in doc["/tenant_qos"]["description"].lower()


def test_userinfo_users_roles(api, udc):
    me = api.userinfo.get()
    assert me["user_id"] == udc.username and me["admin"] is True
    assert udc.username in [u["user_id"] for u in api.users.list()]
    assert {r["role_id"] for r in api.roles.list()} >= {"admin"}


def test_expired_key_gets_401_and_the_sdk_logs_in_again(api, udc):
    api.system.get()
    old_key = api.context.connection.auth_key
    # End the session behind the SDK's back: to the server the key is now unknown.
    r = requests.put(f"https://{udc.mgmt_ip}:{ports.DATERA_HTTPS}/v2.2/logout", headers={"auth-token": old_key},
                     verify=udc.ca_file, timeout=10)
    assert r.status_code == 200
    r = requests.get(f"https://{udc.mgmt_ip}:{ports.DATERA_HTTPS}/v2.2/system",
                     headers={"Auth-Token": old_key, "tenant": "/root"}, verify=udc.ca_file, timeout=10)
    assert r.status_code == 401
    assert r.json()["name"] == "AuthFailedError"
    assert r.json()["message"] == ("The key provided with the request does not correspond to a "
                                   "valid session.")
    assert api.system.get()["sw_version"] == "3.3.5.0"      # one 401, one re-login, one retry
    assert api.context.connection.auth_key != old_key


# ---- tenants ---------------------------------------------------------------------------------

def test_tenants_nested_duplicates_and_paths(api, tenant):
    short = tenant.lstrip("/")
    assert api.tenants.get(short)["path"] == tenant
    assert api.tenants.get(tenant.rsplit("/", 1)[1])["path"] == tenant   # short form
    with pytest.raises(errors.ApiConflictError):
        api.tenants.create(name=tenant.rsplit("/", 1)[1])
    with pytest.raises(errors.ApiConflictError):
        api.tenants.create(name="root")        # Cinder's "no tenant" case: never /root/root
    sub = api.tenants.create(name="sub-a", parent_path=tenant)
    assert sub["path"] == f"{tenant}/sub-a" and sub["parent_path"] == tenant
    listed = [t["path"] for t in api.tenants.list()]
    assert "/root" in listed and tenant in listed and f"{tenant}/sub-a" in listed
    with pytest.raises(errors.ApiConflictError):
        api.tenants.get(short).delete()        # still has a subtenant
    assert api.tenants.get(f"{short}/sub-a").set(descr="a sub tenant")["descr"] == "a sub tenant"
    api.tenants.get(f"{short}/sub-a").delete()
    with pytest.raises(errors.ApiNotFoundError):
        api.tenants.get(f"{short}/sub-a")


# ---- Cinder flows ----------------------------------------------------------------------------

def test_cinder_create_volume_with_qos_and_metadata(api, tenant):
    ai, vol_id = cinder_create(api, tenant, size=2, qos={"total_iops_max": 500, "read_bandwidth_max": 2048})
    assert ai["tenant"] == tenant and ai["uuid"] == vol_id and ai["admin_state"] == "online"
    assert ai["access_control_mode"] == "deny_all"
    assert ai.app_template["path"] == ""
    vol = cinder_dvol(api, tenant, vol_id)
    assert vol["size"] == 2 and vol["replica_count"] == 3
    policy = vol.performance_policy.get(tenant=tenant)
    assert policy["total_iops_max"] == 500 and policy["read_bandwidth_max"] == 2048
    assert policy["write_iops_max"] == 0
    meta = cinder_ai(api, tenant, vol_id).metadata.get(tenant=tenant)
    assert meta["host"] == "cinder@datera"
    assert api.app_instances.get(f"OS-{vol_id}", tenant=tenant)["id"] == ai["id"]   # by name
    assert api.app_instances.get(ai["id"], tenant=tenant)["name"] == f"OS-{vol_id}"  # by id


def test_cinder_extend_offline_flip_and_grow_only(api, tenant):
    _, vol_id = cinder_create(api, tenant, size=1)
    ai = cinder_ai(api, tenant, vol_id)
    ai.set(admin_state="offline", tenant=tenant)
    vol = cinder_dvol(api, tenant, vol_id)
    assert vol.set(size=3, tenant=tenant)["size"] == 3
    with pytest.raises(errors.ApiInvalidRequestError):
        vol.set(size=2, tenant=tenant)
    assert ai.set(admin_state="online", tenant=tenant)["admin_state"] == "online"
    assert cinder_dvol(api, tenant, vol_id)["size"] == 3


def test_cinder_attach_chap_and_detach(api, tenant):
    _, vol_id = cinder_create(api, tenant)
    iqn = f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}"
    ai = cinder_ai(api, tenant, vol_id)
    # create_export
    ai.set(admin_state="offline", force=True, tenant=tenant)
    si = ai.storage_instances.list(tenant=tenant)[0]
    pools = api.access_network_ip_pools.list(tenant=tenant)
    assert "default" in [p["name"] for p in pools]
    pool = api.access_network_ip_pools.get("default", tenant=tenant)
    si.set(ip_pool={"path": pool["path"]}, tenant=tenant)
    ai.set(admin_state="online", tenant=tenant)
    with pytest.raises(errors.ApiNotFoundError):
        api.initiators.get(iqn, tenant=tenant)
    init = api.initiators.create(id=iqn, name=f"OpenStack-{uuid.uuid4().hex[:8]}", force=True,
                                 tenant=tenant)
    assert init["tenant"] == tenant and init["path"] == f"/initiators/{iqn}"
    si = ai.storage_instances.list(tenant=tenant)[0]
    acl = si.acl_policy.get(tenant=tenant)
    existing = [{"path": e["path"]} for e in acl["initiators"]]
    si.acl_policy.set(initiators=existing + [{"path": init["path"]}],
                      initiator_groups=acl["initiator_groups"], tenant=tenant)
    auth = si.auth.set(type="chap", target_user_name="chapuser", target_pswd="secret-123456",
                       tenant=tenant)
    assert auth["target_pswd"] == "(hidden)" and auth["type"] == "chap"
    si = si.reload(tenant=tenant)
    assert si["op_state"] == "available"
    assert si.access["iqn"].startswith("iqn.2013-05.com.daterainc:tc:01:sn:")
    assert len(si.access["ips"]) == 2 and len(set(si.access["ips"])) == 2
    assert [e["path"] for e in si.acl_policy.get(tenant=tenant)["initiators"]] == [init["path"]]
    # detach_volume
    acl = si.acl_policy.get(tenant=tenant)
    left = [{"path": e["path"]} for e in acl["initiators"] if e["path"].rsplit("/", 1)[1] != iqn]
    si.acl_policy.set(initiators=left, initiator_groups=acl["initiator_groups"], tenant=tenant)
    assert si.acl_policy.get(tenant=tenant)["initiators"] == []
    ai.set(admin_state="offline", force=True, tenant=tenant)
    assert si.reload(tenant=tenant)["op_state"] == "unavailable"
    # delete_volume
    ai.delete(force=True, tenant=tenant)
    assert api.app_instances.list(filter=f"match(name,.*{vol_id}.*)", tenant=tenant) == []


def test_cinder_snapshots_clones_and_restore(api, tenant):
    _, vol_id = cinder_create(api, tenant, size=1)
    vol = cinder_dvol(api, tenant, vol_id)
    snap_id = str(uuid.uuid4())
    snap = vol.snapshots.create(uuid=snap_id, tenant=tenant)
    assert snap["op_state"] == "available" and snap["uuid"] == snap_id
    assert float(snap["utc_ts"]) > 1e9
    with pytest.raises(errors.ApiInvalidRequestError) as dup:
        vol.snapshots.create(uuid=snap_id, tenant=tenant)
    assert dup.value.code == 15
    assert vol.snapshots.get(snap["timestamp"], tenant=tenant)["uuid"] == snap_id
    # create_volume_from_snapshot, create_cloned_volume, and a whole-AI clone
    from_snap = api.app_instances.create(name=f"OS-{uuid.uuid4()}", create_mode="openstack",
                                         clone_snapshot_src={"path": snap["path"]}, tenant=tenant)
    from_vol = api.app_instances.create(name=f"OS-{uuid.uuid4()}", create_mode="openstack",
                                        clone_volume_src={"path": vol["path"]}, tenant=tenant)
    whole = api.app_instances.create(name=f"clone-{uuid.uuid4().hex[:8]}",
                                     clone_src={"path": cinder_ai(api, tenant, vol_id)["path"]},
                                     tenant=tenant)
    for clone in (from_snap, from_vol, whole):
        si = clone["storage_instances"][0]
        assert si["name"] == "storage-1" and si["volumes"][0]["name"] == "volume-1"
        assert si["volumes"][0]["size"] == 1 and si["volumes"][0]["uuid"] != vol["uuid"]
    # restore needs the AI offline (Cinder's backup driver flips it)
    ai = cinder_ai(api, tenant, vol_id)
    with pytest.raises(errors.ApiInvalidRequestError):
        vol.set(restore_point=snap["timestamp"], tenant=tenant)
    ai.set(admin_state="offline", force=True, tenant=tenant)
    assert vol.set(restore_point=snap["timestamp"], tenant=tenant)["restore_point"] == snap["timestamp"]
    ai.set(admin_state="online", tenant=tenant)
    vol.snapshots.get(snap["timestamp"], tenant=tenant).delete(tenant=tenant)
    assert vol.snapshots.list(tenant=tenant) == []


def test_cinder_retype_qos_replicas_placement(api, tenant):
    _, vol_id = cinder_create(api, tenant, qos={"total_iops_max": 100})
    vol = cinder_dvol(api, tenant, vol_id)
    pp = vol.performance_policy.get(tenant=tenant)
    pp.delete(tenant=tenant)
    with pytest.raises(errors.ApiNotFoundError):
        vol.performance_policy.get(tenant=tenant)
    vol.performance_policy.create(write_iops_max=250, tenant=tenant)
    with pytest.raises(errors.ApiConflictError):
        vol.performance_policy.create(write_iops_max=1, tenant=tenant)
    assert vol.performance_policy.get(tenant=tenant)["write_iops_max"] == 250
    updated = vol.performance_policy.get(tenant=tenant).set(total_iops_max=900, tenant=tenant)
    assert updated["write_iops_max"] == 250 and updated["total_iops_max"] == 900
    ai = cinder_ai(api, tenant, vol_id)
    ai.set(admin_state="offline", tenant=tenant)
    assert vol.set(replica_count=4, placement_mode="all_flash", tenant=tenant)["replica_count"] == 4
    with pytest.raises(errors.ApiInvalidRequestError):
        vol.set(replica_count=2, tenant=tenant)
    ai.set(admin_state="online", tenant=tenant)
    assert cinder_dvol(api, tenant, vol_id)["placement_mode"] == "all_flash"
    # update_migrated_volume / unmanage rename the AI
    renamed = ai.set(name=f"UNMANAGED-{vol_id}", tenant=tenant)
    assert api.app_instances.get(f"UNMANAGED-{vol_id}", tenant=tenant)["id"] == renamed["id"]


def test_delete_of_an_online_app_instance_needs_force(api, tenant):
    ai, _ = cinder_create(api, tenant)
    with pytest.raises(errors.ApiInvalidRequestError):
        ai.delete(tenant=tenant)
    ai.delete(force=True, tenant=tenant)
    with pytest.raises(errors.ApiNotFoundError):
        api.app_instances.get(ai["id"], tenant=tenant)


# ---- CSI flows -------------------------------------------------------------------------------

def test_csi_create_stage_expand_snapshot_delete(api, tenant):
    name = f"CSI-pvc-{uuid.uuid4().hex[:12]}"
    ai = api.app_instances.create(tenant=tenant, name=name, create_mode="kubernetes", storage_instances=[{
        "name": "storage-1", "ip_pool": {"path": POOL},
        "auth": {"type": "chap", "target_user_name": "csiuser", "target_pswd": "csi-secret-0001"},
        "volumes": [{"name": "volume-1", "size": 16, "replica_count": 3, "placement_mode": "hybrid",
                     "placement_policy": {"path": "/placement_policies/default"},
                     "performance_policy": {"read_iops_max": 0, "write_iops_max": 0,
                                            "total_iops_max": 1000, "read_bandwidth_max": 0,
                                            "write_bandwidth_max": 0, "total_bandwidth_max": 0}}]}])
    si = ai["storage_instances"][0]
    assert si["auth"]["target_pswd"] == "(hidden)"
    assert si["volumes"][0]["performance_policy"]["total_iops_max"] == 1000
    ai = api.app_instances.get(name, tenant=tenant)   # CSI's volume id is the AI name
    # NodeStageVolume: initiator (create on NotFoundError), ACL without tenant-tagged entries
    iqn = f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}"
    with pytest.raises(errors.ApiNotFoundError) as nf:
        api.initiators.get(iqn, tenant=tenant)
    assert nf.value.name == "NotFoundError"
    api.initiators.create(name=f"CSI-{uuid.uuid4().hex[:6]}", id=iqn, force=True, tenant=tenant)
    si = ai.storage_instances.get("storage-1", tenant=tenant)
    si.acl_policy.set(initiators=[{"path": f"/initiators/{iqn}"}], tenant=tenant)
    ai.set(admin_state="online", tenant=tenant)
    si = ai.storage_instances.get("storage-1", tenant=tenant)
    assert si["op_state"] == "available" and si["access"]["ips"][0] != si["access"]["ips"][1]
    # ControllerExpandVolume: online resize
    vol = si.volumes.get("volume-1", tenant=tenant)
    assert vol.set(size=20, tenant=tenant)["size"] == 20
    # CreateSnapshot with a UUIDv5 uuid; duplicate -> InvalidRequestError code 15
    snap_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    snap = vol.snapshots.create(uuid=snap_uuid, tenant=tenant)
    with pytest.raises(errors.ApiInvalidRequestError) as dup:
        vol.snapshots.create(uuid=snap_uuid, tenant=tenant)
    assert (dup.value.name, dup.value.code) == ("InvalidRequestError", 15)
    found = [s for s in api.app_instances.get(name, tenant=tenant)["storage_instances"][0]
             ["volumes"][0]["snapshots"] if s["uuid"] == snap_uuid]
    assert found and found[0]["timestamp"] == snap["timestamp"]
    vol.snapshots.get(snap["timestamp"], tenant=tenant).delete(tenant=tenant)
    # DeleteVolume
    ai.set(admin_state="offline", force=True, tenant=tenant)
    ai.delete(force=True, tenant=tenant)
    with pytest.raises(errors.ApiNotFoundError):
        api.app_instances.get(name, tenant=tenant)


# ---- access objects --------------------------------------------------------------------------

def test_initiators_resolve_up_the_tenant_tree(api, tenant):
    iqn = f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}"
    api.initiators.create(id=iqn, name="root-copy", force=True, tenant="/root")
    try:
        inherited = api.initiators.get(iqn, tenant=tenant)
        assert inherited["tenant"] == "/root"          # Cinder sees it is not its own...
        local = api.initiators.create(id=iqn, name="OpenStack-abcd1234", force=True, tenant=tenant)
        assert local["tenant"] == tenant               # ...and makes a tenant-local copy
        assert api.initiators.get(iqn, tenant=tenant)["tenant"] == tenant
        with pytest.raises(errors.ApiConflictError):
            api.initiators.create(id=iqn, name="again", tenant=tenant)
        assert api.initiators.get(iqn, tenant=tenant).set(name="renamed", tenant=tenant)["name"] == "renamed"
    finally:
        api.initiators.get(iqn, tenant="/root").delete(tenant="/root")


def test_initiator_groups_members_and_acl_links(api, tenant):
    ai, vol_id = cinder_create(api, tenant)
    iqns = [f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for iqn in iqns:
        api.initiators.create(id=iqn, name="member", tenant=tenant)
    group = api.initiator_groups.create(name="ig1", members=[{"path": f"/initiators/{iqns[0]}"}],
                                        tenant=tenant)
    assert [m["path"] for m in group["members"]] == [f"/initiators/{iqns[0]}"]
    api.initiator_groups.get("ig1", tenant=tenant).members.add(f"/initiators/{iqns[1]}", tenant=tenant)
    assert len(api.initiator_groups.get("ig1", tenant=tenant)["members"]) == 2
    si = cinder_ai(api, tenant, vol_id).storage_instances.list(tenant=tenant)[0]
    si.acl_policy.initiator_groups.add("/initiator_groups/ig1", tenant=tenant)
    si.acl_policy.initiators.add(f"/initiators/{iqns[1]}", tenant=tenant)
    acl = si.acl_policy.get(tenant=tenant)
    assert [g["path"] for g in acl["initiator_groups"]] == ["/initiator_groups/ig1"]
    assert [i["path"] for i in acl["initiators"]] == [f"/initiators/{iqns[1]}"]
    with pytest.raises(errors.ApiConflictError):
        api.initiator_groups.get("ig1", tenant=tenant).delete(tenant=tenant)   # in an ACL
    si.acl_policy.initiator_groups.remove("/initiator_groups/ig1", tenant=tenant)
    api.initiator_groups.get("ig1", tenant=tenant).delete(tenant=tenant)
    assert api.initiator_groups.list(tenant=tenant) == []


def test_auth_modes_and_secret_rules(api, tenant):
    ai, vol_id = cinder_create(api, tenant)
    si = cinder_ai(api, tenant, vol_id).storage_instances.list(tenant=tenant)[0]
    with pytest.raises(errors.ApiInvalidRequestError):
        si.auth.set(type="chap", target_user_name="chapuser", target_pswd="short", tenant=tenant)
    with pytest.raises(errors.ApiInvalidRequestError):
        si.auth.set(type="mchap", target_user_name="chapuser", target_pswd="secret-123456",
                    tenant=tenant)   # mutual CHAP needs the initiator half too
    auth = si.auth.set(type="mchap", target_user_name="chapuser", target_pswd="secret-123456",
                       initiator_user_name="taruser", initiator_pswd="secret-654321", tenant=tenant)
    assert auth["initiator_pswd"] == auth["target_pswd"] == "(hidden)"
    assert si.auth.get(tenant=tenant)["type"] == "mchap"
    assert si.auth.set(type="none", tenant=tenant)["target_user_name"] == ""


# ---- lists: paging, filters, sort -----------------------------------------------------------

def test_sdk_collects_every_page_and_honours_limit(api, tenant):
    base = uuid.uuid4().hex[:8]
    for i in range(205):   # more than two default pages of 100
        api.initiators.create(id=f"iqn.2020-01.lab.page:{base}-{i:03d}", name=f"n{i:03d}", tenant=tenant)
    assert len(api.initiators.list(tenant=tenant)) == 205
    assert len(api.initiators.list(limit=3, tenant=tenant)) == 3
    odd = api.initiators.list(filter=r"match(name,^n\d\d[13579]$)", tenant=tenant)
    assert len(odd) == 102
    names = [i["name"] for i in api.initiators.list(sort="name", limit=5, tenant=tenant)]
    assert names == ["n000", "n001", "n002", "n003", "n004"]


def test_raw_paging_metadata(udc, api, tenant):
    for i in range(7):
        api.initiators.create(id=f"iqn.2020-01.lab.raw:{i}", name=f"raw{i}", tenant=tenant)
    headers = {"Auth-Token": api.context.connection.auth_key, "tenant": tenant}
    url = f"https://{udc.mgmt_ip}:{ports.DATERA_HTTPS}/v2.2/initiators"
    body = requests.get(url, params={"limit": 3, "offset": 2, "sort": "name"}, headers=headers,
                        verify=udc.ca_file, timeout=10).json()
    assert body["metadata"] == {"total_count": 7, "request_count": 3, "offset": 2, "limit": 3}
    assert [i["name"] for i in body["data"]] == ["raw2", "raw3", "raw4"]
    assert body["tenant"] == tenant and body["path"] == "/initiators" and body["version"] == "v2.2"
    v21 = requests.get(url.replace("v2.2", "v2.1"), headers=headers, verify=udc.ca_file,
                       timeout=10).json()
    assert v21["metadata"] == {"total": 7} and len(v21["data"]) == 7


# ---- tenancy ---------------------------------------------------------------------------------

def test_admin_tenant_header_scopes_objects_and_all_lists_across(api, make_tenant):
    a, b = make_tenant("Vancouver-A"), make_tenant("Vancouver-B")
    ai_a, _ = cinder_create(api, a)
    with pytest.raises(errors.ApiNotFoundError):
        api.app_instances.get(ai_a["id"], tenant=b)
    assert api.app_instances.list(tenant=b) == []
    assert ai_a["id"] in [x["id"] for x in api.app_instances.list(tenant="all")]
    with pytest.raises(errors.ApiNotFoundError):
        ai_a.set(admin_state="offline")        # default tenant /root: the SDK's gotcha §0.8


def test_ldap_tenant_users_see_only_their_tenant(udc, api, ldap_users, ldap_server):
    ku, vm = ldap_users["vancouver_ku"], ldap_users["vancouver_vm"]
    api_ku = connect(udc, username="vancouver_ku", password=ku["password"], ldap=ldap_server,
                     tenant=ku["tenant"])
    api_vm = connect(udc, username="vancouver_vm", password=vm["password"], ldap=ldap_server,
                     tenant=vm["tenant"])
    name = f"CSI-iso-{uuid.uuid4().hex[:8]}"
    ai = api_ku.app_instances.create(name=name, create_mode="kubernetes", storage_instances=[
        {"name": "storage-1", "volumes": [{"name": "volume-1", "size": 1}]}], tenant=ku["tenant"])
    try:
        assert ai["tenant"] == ku["tenant"]
        assert api_ku.userinfo.get()["tenant"] == ku["tenant"]
        assert all(t["path"].startswith(ku["tenant"]) for t in api_ku.tenants.list())
        # The other tenant's user: same answers as for a missing object, however it asks.
        for ask in (lambda: api_vm.app_instances.get(name, tenant=vm["tenant"]),
                    lambda: api_vm.app_instances.get(ai["id"], tenant=vm["tenant"]),
                    lambda: api_vm.app_instances.get(ai["id"], tenant=ku["tenant"]),
                    lambda: api_vm.tenants.get(ku["tenant"].lstrip("/"))):
            with pytest.raises(errors.ApiNotFoundError) as nf:
                ask()
            assert nf.value.message.startswith("No data at ")
        assert name not in [x["name"] for x in api_vm.app_instances.list(tenant="all")]
        assert api_vm.app_instances.list(tenant=ku["tenant"]) == []   # "No data at" -> []
        with pytest.raises(errors.ApiInvalidRequestError):
            api_ku.tenant_qos.set(total_iops_max=5, tenant=ku["tenant"])   # admin only (403)
        assert api.app_instances.get(name, tenant=ku["tenant"])["id"] == ai["id"]   # admin sees
    finally:
        api_ku.app_instances.get(name, tenant=ku["tenant"]).delete(force=True, tenant=ku["tenant"])


def test_ldap_login_wrong_password_and_unknown_server(udc, ldap_users, ldap_server):
    with pytest.raises(errors.ApiAuthError):
        connect(udc, username="vancouver_ku", password="not-the-password", ldap=ldap_server,
                tenant="/root/Vancouver-KU")
    with pytest.raises(errors.ApiAuthError):
        connect(udc, username="vancouver_ku", password=ldap_users["vancouver_ku"]["password"],
                ldap="no-such-directory", tenant="/root/Vancouver-KU")


def test_ldap_admin_acts_as_root(udc, ldap_users, ldap_server):
    admin = ldap_users["vancouver_admin"]
    api_admin = connect(udc, username="vancouver_admin", password=admin["password"], ldap=ldap_server)
    me = api_admin.userinfo.get()
    assert me["admin"] is True and me["tenant"] == "/root" and me["remote_server"] == ldap_server
    assert "/root" in [t["path"] for t in api_admin.tenants.list()]


# ---- tenant QoS (lab extension), events, metrics ---------------------------------------------

def test_tenant_qos_extension(api, tenant):
    qos = api.tenant_qos.get(tenant=tenant)
    assert qos["tenant"] == tenant and qos["total_iops_max"] == 0
    set_ = api.tenant_qos.set(total_iops_max=1000, tenant=tenant)
    assert set_["total_iops_max"] == 1000 and set_["write_bandwidth_max"] == 0
    assert api.tenant_qos.get(tenant=tenant)["total_iops_max"] == 1000
    assert api.tenant_qos.get(tenant="/root")["total_iops_max"] == 0   # per tenant
    with pytest.raises(errors.ApiInvalidRequestError):
        api.tenant_qos.set(total_iops_max=-1, tenant=tenant)
    api.tenant_qos.set(total_iops_max=0, tenant=tenant)


def test_events_record_logins_and_object_changes(api, tenant):
    ai, _ = cinder_create(api, tenant)
    ai.delete(force=True, tenant=tenant)
    codes = [e["code"] for e in api.events.user.list(tenant=tenant)]
    assert "app_instance_created" in codes and "app_instance_deleted" in codes
    assert "login" in [e["code"] for e in api.events.user.list(tenant="/root")]
    assert isinstance(api.events.system.list(), list)
    assert api.alerts.list() == []


def test_metrics_io_latest_series_and_hw(api, tenant):
    ai, vol_id = cinder_create(api, tenant)
    vol = cinder_dvol(api, tenant, vol_id)
    latest = api.metrics.io.iops_write.latest.get(uuid=vol["uuid"], tenant=tenant)
    assert latest[0]["point"]["value"] >= 0 and latest[0]["entity_path"] == vol["path"]
    series = api.metrics.io.thpt_read.get(path=ai["path"], since="5m", tenant=tenant)
    assert series[0]["entity_path"] == ai["path"] and isinstance(series[0]["points"], list)
    per_tenant = api.metrics.io.iops_read.latest.get(tenant=tenant)
    assert per_tenant[0]["tenant"] == tenant
    with pytest.raises(errors.ApiNotFoundError):
        api.metrics.io.iops_write.latest.get(uuid=str(uuid.uuid4()), tenant=tenant)
    cpu = api.metrics.hw.cpu_usage.latest.get()
    assert 0 <= cpu[0]["point"]["value"]


# ---- an API of the test's own, in process: short session ttl, and the model in reach ----------

@pytest.fixture
def inproc_lab(target):
    """inproc_lab(ttl) -> (Udc, model): an API without a data plane on a spare lab address,
    so a test can shorten the session ttl or check the model's LoginAuthority directly."""
    from aiohttp import web
    from lab import topology
    from lab.datera import responses, server, urls
    from lab.datera.ldapauth import Directory
    from lab.datera.metrics import Metrics
    from lab.datera.models import DateraModel, ModelConfig

    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    address = f"{topology.NET}.7.{40 + worker}"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners = []

    def start(ttl: float = 900.0, ldap: dict | None = None):
        model = DateraModel(ModelConfig(
            vips=[topology.DATERA_VIP1.address, topology.DATERA_VIP2.address], mgmt_ip=address,
            admin_user="admin", admin_password="inproc-password", session_ttl_s=ttl))
        services = responses.Services(model=model, metrics=Metrics(), directory=Directory(ldap or {}),
                                      cpu=server.CpuSampler(), routes=urls.ROUTES)
        runner = web.AppRunner(server.build_app(services), access_log=None)

        async def up():
            await runner.setup()
            await web.TCPSite(runner, address, ports.DATERA_HTTP).start()
        asyncio.run_coroutine_threadsafe(up(), loop).result(10)
        runners.append(runner)
        return Udc(mgmt_ip=address, username="admin", password="inproc-password",
                   tenant="/root", api_version="2.2", ldap=""), model

    try:
        yield start
    finally:
        for runner in runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_session_expires_after_ttl_and_sdk_relogs_in(inproc_lab):
    udc, _ = inproc_lab(ttl=1.0)
    api = connect(udc, secure=False)
    key = api.context.connection.auth_key
    assert api.system.get()["sw_version"]
    # wait for the ttl to pass, without a fixed sleep
    r = poll_until(lambda: requests.get(f"http://{udc.mgmt_ip}:{ports.DATERA_HTTP}/v2.2/system",
                                        headers={"Auth-Token": key, "tenant": "/root"},
                                        timeout=5),
                   lambda r: r.status_code == 401, 10, 0.1)
    assert r.status_code == 401 and r.json()["message"].startswith("The key provided")
    assert api.system.get()["sw_version"] == "3.3.5.0"
    assert api.context.connection.auth_key != key


def test_login_authority_checks_acl_chap_state_and_records_events(inproc_lab):
    import hashlib
    from lab.datera.contract import LoginRefused

    udc, model = inproc_lab()
    api = connect(udc, secure=False)
    api.tenants.create(name="Vancouver-KU")
    t = "/root/Vancouver-KU"
    ai = api.app_instances.create(name="CSI-login", create_mode="kubernetes", tenant=t,
                                  storage_instances=[{"name": "storage-1", "volumes": [
                                      {"name": "volume-1", "size": 1}, {"name": "volume-2", "size": 2}]}])
    si = ai.storage_instances.get("storage-1", tenant=t)
    target, portal = si.access["iqn"], si.access["ips"][1]
    good, bad = "iqn.1993-08.org.debian:01:good", "iqn.1993-08.org.debian:01:bad"
    api.initiators.create(id=good, name="CSI-good", tenant=t)
    no_chap = dict(chap_user=None, chap_response_check=lambda secret: False)

    def refused(reason: str, **kw):
        with pytest.raises(LoginRefused, match=reason):
            model.login(**{"initiator": good, "target": target, "portal": portal, **no_chap, **kw})

    refused("not in the ACL")
    si.acl_policy.set(initiators=[{"path": f"/initiators/{good}"}], tenant=t)
    luns = model.login(initiator=good, target=target, portal=portal, **no_chap)
    assert [lun.size_bytes for lun in luns] == [1 << 30, 2 << 30]   # LUN order
    assert model.may_access(initiator=good, vol_uuid=luns[0].uuid)
    assert not model.may_access(initiator=bad, vol_uuid=luns[0].uuid)
    refused("not in the ACL", initiator=bad)
    refused("unknown target", target="iqn.2013-05.com.daterainc:tc:01:sn:0000000000000000")
    refused("not served on", portal="127.0.0.1")
    # CHAP: the secret is checked through the initiator's response, never compared in clear
    si.auth.set(type="chap", target_user_name="chapuser", target_pswd="chap-secret-01", tenant=t)
    challenge = b"0123456789abcdef"
    response = hashlib.md5(bytes([7]) + b"chap-secret-01" + challenge).hexdigest()
    check = lambda secret: hashlib.md5(bytes([7]) + secret.encode() + challenge).hexdigest() == response
    refused("requires CHAP")
    refused("CHAP authentication failed", chap_user="chapuser",
            chap_response_check=lambda secret: False)
    assert model.login(initiator=good, target=target, portal=portal, chap_user="chapuser",
                       chap_response_check=check)
    ai.set(admin_state="offline", force=True, tenant=t)
    refused("offline", chap_user="chapuser", chap_response_check=check)
    assert not model.may_access(initiator=good, vol_uuid=luns[0].uuid)
    events = api.events.system.list(tenant=t)
    codes = [e["code"] for e in events]
    assert codes.count("initiator_login") == 2 and codes.count("initiator_login_refused") >= 5
    assert "chap-secret-01" not in json.dumps([dict(e) for e in events])


def test_unreachable_directory_is_a_401_naming_it(inproc_lab):
    from lab import topology
    url = f"ldap://{topology.NET}.8.250:{topology.LDAP_PORT}"   # nothing listens there
    udc, _ = inproc_lab(ldap={"gone-ldap": {"url": url, "base_dn": topology.LDAP_BASE_DN}})
    r = requests.put(f"http://{udc.mgmt_ip}:{ports.DATERA_HTTP}/v2.2/login", timeout=15,
                     json={"name": "vancouver_ku", "password": "secret-password", "remote_server": "gone-ldap"})
    assert r.status_code == 401 and r.json()["name"] == "AuthFailedError"
    assert "gone-ldap" in r.json()["message"] and "unreachable" in r.json()["message"]
    assert "secret-password" not in r.text


# ---- the whole chain on the lab: API -> initiator login -> NBD bytes -> metrics ----------------

def _login(vip: str, port: int, initiator: str, target: str) -> dict:
    import socket
    with socket.create_connection((vip, port), timeout=10) as s:
        lines = s.makefile("rb")
        s.sendall(json.dumps({"op": "login", "initiator": initiator, "target": target}).encode() + b"\n")
        reply = json.loads(lines.readline())
        if "chap" in reply:   # no credentials to offer: decline, to hear the reason
            s.sendall(json.dumps({"chap_user": None}).encode() + b"\n")
            reply = json.loads(lines.readline())
        return reply


def test_acl_decides_the_initiator_login_and_io_shows_in_metrics(api, target, tenant, tmp_path):
    import shutil
    import subprocess
    from lab import topology

    if target.section("datera").get("transport") != "lab" or not shutil.which("nbdcopy"):
        pytest.skip("needs the lab's initiator login (transport: lab) and nbdcopy (libnbd-bin)")
    ai, vol_id = cinder_create(api, tenant, size=1)
    si = cinder_ai(api, tenant, vol_id).storage_instances.list(tenant=tenant)[0]
    iqn = f"iqn.1993-08.org.debian:01:{uuid.uuid4().hex[:12]}"
    vip = si.access["ips"][0]
    refused = _login(vip, topology.DATERA_LOGIN_PORT, iqn, si.access["iqn"])
    assert refused["ok"] is False and "ACL" in refused["reason"]
    api.initiators.create(id=iqn, name="OpenStack-e2e00001", force=True, tenant=tenant)
    si.acl_policy.set(initiators=[{"path": f"/initiators/{iqn}"}], tenant=tenant)
    ok = _login(vip, topology.DATERA_LOGIN_PORT, iqn, si.access["iqn"])
    assert ok["ok"] is True and ok["luns"][0]["size"] == 1 << 30
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(8 << 20))
    uri = f"nbd://{vip}:{ok['nbd_port']}/{ok['luns'][0]['export']}"
    copy = subprocess.run(["nbdcopy", str(src), uri], capture_output=True, text=True, timeout=60)
    assert copy.returncode == 0, copy.stderr
    vol = cinder_dvol(api, tenant, vol_id)
    written = poll_until(   # metrics roll once a second
        lambda: sum(p["value"] for p in api.metrics.io.bytes_written.get(
            uuid=vol["uuid"], since="1m", tenant=tenant)[0]["points"]),
        lambda w: w >= 8 << 20, 10)
    assert written >= 8 << 20
    codes = [e["code"] for e in api.events.system.list(tenant=tenant)]
    assert "initiator_login_refused" in codes and "initiator_login" in codes
