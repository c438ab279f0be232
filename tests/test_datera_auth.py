"""Who may do what on the Datera lab's API: session keys (401 and the SDK's re-login, the
session ttl), the admin's tenant header, LDAP users confined to their tenant (reference
datera-api §0.8, §1), an unreachable directory, and the initiator login authority (ACL, CHAP,
admin state). The in-process tests run an API of their own on a spare lab address, so they can
shorten the ttl or reach the model.
"""
import asyncio
import json
import os
import threading
import uuid

import pytest
import requests

from clients import ports
from fixtures.waiters import poll_until
from tests.support.datera_api import (api, cinder_create, make_tenant, tenant,  # noqa: F401
                                      udc)
from tests.support.dsdk import Udc, connect, errors


# ---- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ldap_users(target) -> dict:
    if "ldap" not in target.doc:
        pytest.skip("the target has no ldap section: no directory to log in against")
    return json.loads(target.file("ldap", "users").read_text())


@pytest.fixture(scope="module")
def ldap_server(target) -> str:
    return target.section("datera").get("ldap_server", "vancouver-ldap")


# ---- session keys ---------------------------------------------------------------------------

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


# ---- tenancy and LDAP logins ----------------------------------------------------------------

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
