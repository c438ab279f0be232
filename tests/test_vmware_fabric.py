"""The Datera lab tells the vCenter's fabric endpoint which LUNs exist and who may see them
(lab/datera/fabric.py): every kind of change that moves a LUN on or off the fabric (ACL by
initiator, by initiator group, allow_all, CHAP on/off, storage instance or app instance
offline, delete), through the unmodified dfs_sdk, against an in-process Datera API and a
receiver that speaks the endpoint's protocol (PUT/DELETE/GET /datera/luns, basic auth).
A receiver that refuses or is down never fails the Datera call, and the periodic resync
repairs a receiver that lost its table (a restarted simulator).
"""
import asyncio
import base64
import os
import threading

import pytest
from aiohttp import web

from clients import ports
from fixtures.waiters import wait_until
from lab import topology
from lab.datera import fabric as fabric_mod
from tests.support.dsdk import Udc, connect

USER, PASSWORD = "vcenter-admin", "fabric-test-password"
HOST = "iqn.1998-01.com.vmware:esxi-1"
OTHER = "iqn.1998-01.com.vmware:esxi-2"
CHAP = ("chap_vm", "chapsecret123456")
POOL = "/access_network_ip_pools/default"


class Receiver:
    """The fabric endpoint's protocol, nothing more: a table by naa."""

    def __init__(self):
        self.luns: dict[str, dict] = {}
        self.refuse = False
        self.requests = 0

    def _authorized(self, request) -> bool:
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return request.headers.get("Authorization") == want

    async def handle(self, request: web.Request):
        self.requests += 1
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.refuse:
            return web.json_response({"error": "busy"}, status=503)
        if request.method == "PUT":
            body = await request.json()
            self.luns[body["naa"]] = body
            return web.json_response(body)
        if request.method == "DELETE":
            naa = request.query.get("naa", "")
            if self.luns.pop(naa, None) is None:
                return web.json_response({"error": f"no LUN {naa}"}, status=404)
            return web.Response(status=204)
        return web.json_response([{k: v for k, v in e.items() if k != "chap_secret"}
                                  for e in self.luns.values()])


@pytest.fixture
def fabric_lab():
    """(dfs_sdk admin session, Receiver, Fabric) on this worker's spare lab addresses."""
    from lab.datera import responses, server, urls
    from lab.datera.ldapauth import Directory
    from lab.datera.metrics import Metrics
    from lab.datera.models import DateraModel, ModelConfig

    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    address = f"{topology.NET}.7.{60 + worker}"
    vcenter = f"{topology.NET}.5.{60 + worker}"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    model = DateraModel(ModelConfig(
        vips=[topology.DATERA_VIP1.address, topology.DATERA_VIP2.address], mgmt_ip=address,
        admin_user="admin", admin_password="inproc-password"))
    services = responses.Services(model=model, metrics=Metrics(), directory=Directory({}),
                                  cpu=server.CpuSampler(), routes=urls.ROUTES)
    app = server.build_app(services)
    receiver = Receiver()
    fab = fabric_mod.Fabric(model, url=f"http://{vcenter}:18443", user=USER, password=PASSWORD,
                            ca_file=None, resync_s=0.5)
    app.on_response_prepare.append(fab.on_response_prepare)
    rapp = web.Application()
    rapp.router.add_route("*", "/datera/luns", receiver.handle)
    # A client still holding a keep-alive connection must not hold the teardown (aiohttp waits
    # up to shutdown_timeout for it; 60 s by default), or the next test finds the port taken.
    runners = [web.AppRunner(app, access_log=None, shutdown_timeout=1.0),
               web.AppRunner(rapp, access_log=None, shutdown_timeout=1.0)]

    async def up():
        await runners[0].setup()
        await web.TCPSite(runners[0], address, ports.DATERA_HTTP).start()
        await runners[1].setup()
        await web.TCPSite(runners[1], vcenter, 18443).start()
        await fab.start()
    asyncio.run_coroutine_threadsafe(up(), loop).result(10)
    api = connect(Udc(mgmt_ip=address, username="admin", password="inproc-password",
                      tenant="/root", api_version="2.2", ldap=""), secure=False)
    api.tenants.create(name="Vancouver-VM")
    try:
        yield api, receiver, fab
    finally:
        async def down():
            await fab.stop()
            for r in runners:
                await r.cleanup()
        asyncio.run_coroutine_threadsafe(down(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


T = "/root/Vancouver-VM"


def _volume(api, name: str, *, volumes: int = 1):
    ai = api.app_instances.create(tenant=T, name=name, access_control_mode="deny_all",
                                  storage_instances=[{"name": "storage-1", "ip_pool": {"path": POOL},
                                                      "volumes": [{"name": f"volume-{n}", "size": n}
                                                                  for n in range(1, volumes + 1)]}])
    si = ai.storage_instances.list(tenant=T)[0]
    return ai, si


def _initiator(api, iqn: str) -> dict:
    try:
        return api.initiators.create(tenant=T, id=iqn, name=f"vancouver-{iqn[-6:]}", force=True)
    except Exception:
        return api.initiators.get(iqn, tenant=T)


def _wait(receiver, predicate, what: str):
    wait_until(lambda: predicate(receiver.luns), 10, what, interval=0.05)


def test_naa_is_datera_lio_form_and_stable():
    naa = fabric_mod.naa_for("0f6b1c7e-8a55-4f0e-9b1d-2c3d4e5f6a7b")
    assert naa == "naa.6001405" + "0f6b1c7e8a554f0e9b1d2c3d4"
    assert len(naa) == len("naa.") + 32
    assert naa == fabric_mod.naa_for("0F6B1C7E-8A55-4F0E-9B1D-2C3D4E5F6A7B")


def test_acl_by_initiator_presents_and_revoking_withdraws(fabric_lab):
    api, receiver, _ = fabric_lab
    ai, si = _volume(api, "vancouver-fab-acl", volumes=2)
    assert receiver.luns == {}   # deny_all with an empty ACL: nobody sees it
    init = _initiator(api, HOST)
    si.acl_policy.set(tenant=T, initiators=[{"path": init["path"]}])
    _wait(receiver, lambda l: len(l) == 2, "both LUNs presented")
    vols = {v["uuid"]: v for v in si.reload(tenant=T).volumes.list(tenant=T)}
    entries = sorted(receiver.luns.values(), key=lambda e: e["lun_id"])
    iqn, ips = si.reload(tenant=T)["access"]["iqn"], si.reload(tenant=T)["access"]["ips"]
    for lun_id, e in enumerate(entries):
        assert e["naa"].startswith("naa.6001405") and e["vendor"] == "DATERA"
        assert e["model"] == "IBLOCK" and e["target_iqn"] == iqn and e["lun_id"] == lun_id
        assert e["portals"] == [f"{ip}:3260" for ip in ips] and len(e["portals"]) == 2
        assert e["initiators"] == [HOST] and e["chap_user"] == "" and e["chap_secret"] == ""
    assert {e["naa"] for e in entries} == {fabric_mod.naa_for(u) for u in vols}
    assert sorted(e["capacity_bytes"] for e in entries) == [1 << 30, 2 << 30]
    si.acl_policy.set(tenant=T, initiators=[])
    _wait(receiver, lambda l: l == {}, "LUNs withdrawn after the ACL lost the host")


def test_acl_by_group_and_allow_all(fabric_lab):
    api, receiver, _ = fabric_lab
    ai, si = _volume(api, "vancouver-fab-group")
    a, b = _initiator(api, HOST), _initiator(api, OTHER)
    grp = api.initiator_groups.create(tenant=T, name="vancouver-esx", members=[{"path": a["path"]}])
    si.acl_policy.set(tenant=T, initiator_groups=[{"path": grp["path"]}])
    _wait(receiver, lambda l: [e["initiators"] for e in l.values()] == [[HOST]], "group ACL")
    grp.set(tenant=T, members=[{"path": a["path"]}, {"path": b["path"]}])
    _wait(receiver, lambda l: [e["initiators"] for e in l.values()] == [sorted([HOST, OTHER])],
          "a new group member reaches the fabric")
    api.app_instances.create(tenant=T, name="vancouver-fab-all", storage_instances=[{
        "name": "storage-1", "access_control_mode": "allow_all", "ip_pool": {"path": POOL},
        "volumes": [{"name": "volume-1", "size": 1}]}])
    _wait(receiver, lambda l: sorted(map(len, (e["initiators"] for e in l.values()))) == [0, 2],
          "allow_all = any initiator")


def test_chap_on_and_off_reaches_the_fabric(fabric_lab):
    api, receiver, _ = fabric_lab
    ai, si = _volume(api, "vancouver-fab-chap")
    si.acl_policy.set(tenant=T, initiators=[{"path": _initiator(api, HOST)["path"]}])
    si.auth.set(tenant=T, type="chap", target_user_name=CHAP[0], target_pswd=CHAP[1])
    _wait(receiver, lambda l: [(e["chap_user"], e["chap_secret"]) for e in l.values()] == [CHAP],
          "CHAP on the fabric")
    si.auth.set(tenant=T, type="none")
    _wait(receiver, lambda l: [(e["chap_user"], e["chap_secret"]) for e in l.values()] == [("", "")],
          "CHAP off on the fabric")


def test_offline_and_delete_withdraw(fabric_lab):
    api, receiver, _ = fabric_lab
    ai, si = _volume(api, "vancouver-fab-offline")
    si.acl_policy.set(tenant=T, initiators=[{"path": _initiator(api, HOST)["path"]}])
    _wait(receiver, lambda l: len(l) == 1, "presented")
    ai.set(tenant=T, admin_state="offline", force=True)
    _wait(receiver, lambda l: l == {}, "app instance offline withdraws")
    ai.set(tenant=T, admin_state="online")
    _wait(receiver, lambda l: len(l) == 1, "online again presents")
    si.set(tenant=T, admin_state="offline", force=True)
    _wait(receiver, lambda l: l == {}, "storage instance offline withdraws")
    si.set(tenant=T, admin_state="online")
    _wait(receiver, lambda l: len(l) == 1, "storage instance online presents")
    ai.set(tenant=T, admin_state="offline", force=True)
    ai.delete(tenant=T, force=True)
    _wait(receiver, lambda l: l == {}, "deleted")


def test_refusing_receiver_never_fails_the_api_and_resync_repairs(fabric_lab):
    api, receiver, fab = fabric_lab
    receiver.refuse = True
    ai, si = _volume(api, "vancouver-fab-refuse")
    # the Datera call succeeds although every push is refused
    si.acl_policy.set(tenant=T, initiators=[{"path": _initiator(api, HOST)["path"]}])
    wait_until(lambda: fab.failures > 0, 10, "a refused push", interval=0.05)
    assert receiver.luns == {}
    receiver.refuse = False
    _wait(receiver, lambda l: len(l) == 1, "the resync pushes what was refused")
    receiver.luns.clear()   # a restarted simulator
    _wait(receiver, lambda l: len(l) == 1, "the resync repairs a lost table")
    receiver.luns["naa.6001405deadbeef"] = {"naa": "naa.6001405deadbeef"}   # not Datera's now
    _wait(receiver, lambda l: "naa.6001405deadbeef" not in l, "the resync withdraws a stale LUN")


def test_stop_ends_the_push_task_even_when_a_change_wakes_it_at_that_moment():
    """A change accepted just as the lab stops (sync() then stop() in one loop turn) must not
    keep the push task alive: on Python 3.11 asyncio.wait_for swallowed such a cancel
    (CPython gh-86296) and stop() never returned."""
    from lab.datera.models import DateraModel, ModelConfig

    async def scenario():
        model = DateraModel(ModelConfig(
            vips=[topology.DATERA_VIP1.address, topology.DATERA_VIP2.address],
            mgmt_ip=f"{topology.NET}.7.250", admin_user="admin", admin_password="x"))
        for _ in range(20):
            # port 1 refuses at once: the first resync fails, then the task waits for a wake
            fab = fabric_mod.Fabric(model, url=f"http://{topology.NET}.5.250:1", user=USER,
                                    password=PASSWORD, ca_file=None, resync_s=60)
            await fab.start()
            while fab.failures == 0:
                await asyncio.sleep(0.01)
            for _ in range(3):
                await asyncio.sleep(0)
            fab.sync()
            async with asyncio.timeout(10):
                await fab.stop()
            assert fab._task.cancelled()
    asyncio.run(scenario())
