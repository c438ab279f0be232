"""The Datera lab's REST API surface, driven by the unmodified dfs_sdk 1.2.27 as its consumers
drive it: login and /system, the /api schema the SDK reads, users and roles, nested tenants,
access objects (initiators, groups, CHAP), paging, and the lab's tenant QoS extension, events
and metrics. The consumers' flows are test_datera_flows.py; sessions, tenancy and logins are
test_datera_auth.py.
"""
import uuid

import pytest
import requests

from clients import ports
from tests.support.datera_api import (api, cinder_ai, cinder_create, cinder_dvol,  # noqa: F401
                                      make_tenant, tenant, udc)
from tests.support.dsdk import errors


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
