"""Durable lab state (issue 13 item 1): lab/store.py, and each lab service killed with
SIGKILL right after a write answered and restarted by the lab's supervisor on the same run dir,
still holding every object (same ids, same relations).

The process tests start labs of their own on fixed nets (tests/support/labcli.py): Datera on
127.212, the OpenStack clouds on 127.213 (Mitaka), 127.214 (Newton) and 127.215 (Pike),
Kubernetes on 127.216.
"""
import os
import signal
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from clients import ports
from clients.initiator import login
from fixtures.waiters import process_alive, wait_until
from lab import store as store_mod
from lab.store import Store
from tests.support.dsdk import Udc, connect
from tests.support.labcli import LabCli

POOL = "/access_network_ip_pools/default"


# ---- the store itself --------------------------------------------------------------------------

def test_store_writes_only_changes_and_keeps_order(tmp_path):
    s = Store(tmp_path / "x.db")
    assert s.sync({"vols": {"a": {"size": 1}, "b": {"size": 2}}}) == 2
    assert s.sync({"vols": {"a": {"size": 1}, "b": {"size": 2}}}) == 0   # nothing changed
    assert s.sync({"vols": {"a": {"size": 5}, "b": {"size": 2}, "c": {}}}) == 2
    assert s.sync({"vols": {"a": {"size": 5}, "c": {}}}) == 1             # b deleted
    s.close()
    again = Store(tmp_path / "x.db")
    loaded = again.load()
    assert loaded == {"vols": {"a": {"size": 5}, "c": {}}}
    assert list(loaded["vols"]) == ["a", "c"]    # an update keeps its object's place
    assert again.sync(loaded) == 0                # load primes the change detection


def test_store_append_only_kinds_write_new_rows_and_drop_below_the_floor(tmp_path):
    s = Store(tmp_path / "x.db")
    s.sync({}, {"events": ({"0001": "e1", "0002": "e2"}, "")})
    s.sync({}, {"events": ({"0003": "e3"}, "0002")})   # e1 fell out of the bounded log
    assert Store(tmp_path / "x.db").load() == {"events": {"0002": "e2", "0003": "e3"}}


def test_store_is_wal_private_and_can_be_switched_off(tmp_path, monkeypatch):
    s = Store(tmp_path / "x.db")
    s.sync({"users": {"u": {"chap": "secret"}}})
    for f in ("x.db", "x.db-wal"):
        assert stat.S_IMODE((tmp_path / f).stat().st_mode) == 0o600, f
    assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._db.execute("PRAGMA synchronous").fetchone()[0] == 1   # NORMAL
    monkeypatch.setenv("VANCOUVER_LAB_STORE_SYNC", "full")
    assert Store(tmp_path / "y.db")._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    monkeypatch.setenv("VANCOUVER_LAB_STORE_SYNC", "sometimes")
    with pytest.raises(ValueError, match="VANCOUVER_LAB_STORE_SYNC=sometimes"):
        Store(tmp_path / "z.db")
    monkeypatch.setenv("VANCOUVER_LAB_STORE", "off")
    assert not store_mod.enabled() and Store.open(tmp_path / "w.db") is None
    assert not (tmp_path / "w.db").exists()


# ---- a lab process killed and started again ----------------------------------------------------

class Restartable:
    """One component of a test's own lab, SIGKILLed; the lab's supervisor restarts it on the
    same run dir (Restart=on-failure, lab/restart.py), as it would at the booth. The test
    never starts a copy of its own: two copies would race for the component's ports and data."""

    def __init__(self, lab: LabCli, name: str):
        self.lab, self.name = lab, name
        self.killed: int | None = None

    def kill9(self) -> None:
        pid = self.lab.component_pids()[self.name]
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: not process_alive(pid), 10, f"{self.name} (pid {pid}) to die", 0.05)
        self.killed = pid

    def start(self, healthy_url: str | None = None, timeout: float = 60, healthy=None) -> None:
        """Waits for the supervisor's restart: a new pid, state "healthy", and then
        healthy_url answering 200 or healthy() true."""
        def up():
            entry = self.lab.component(self.name)
            assert entry.get("state") != "failed", f"{self.name} gave up: {entry}"
            if entry.get("pid") in (None, self.killed) or entry.get("state") != "healthy":
                return False
            if healthy is not None:
                return healthy()
            try:
                return requests.get(healthy_url, timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_until(up, timeout, f"{self.name} restarted by the supervisor and healthy", 0.1)
        assert self.lab.component(self.name)["restarts"] >= 1


def _qemu_io(uri: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-io", "-f", "raw", "-c", command, uri], capture_output=True,
                          text=True, timeout=60)


def _datera_state(api, tenant: str) -> dict:
    """Everything the test made, as the API shows it (volatile fields left out)."""
    ais = {}
    for ai in api.app_instances.list(tenant=tenant):
        si = ai["storage_instances"][0]
        vol = si["volumes"][0]
        ais[ai["id"]] = {
            "name": ai["name"], "admin_state": ai["admin_state"], "descr": ai["descr"],
            "si": si["uuid"], "iqn": si["access"]["iqn"], "ips": si["access"]["ips"],
            "acl": si["acl_policy"], "auth_type": si["auth"]["type"],
            "vol": vol["uuid"], "size": vol["size"],
            "qos": vol.get("performance_policy"),
            "snapshots": [s["uuid"] for s in vol["snapshots"]]}
    return {
        "tenant": api.tenants.get(tenant.lstrip("/"))["path"],
        "tenant_qos": api.tenant_qos.get(tenant=tenant)["total_iops_max"],
        "events": [e["uuid"] for e in api.events.user.list(tenant=tenant)],
        "app_instances": ais,
        "initiators": sorted(i["id"] for i in api.initiators.list(tenant=tenant)),
        "groups": {g["name"]: [m["path"] for m in g["members"]]
                   for g in api.initiator_groups.list(tenant=tenant)},
    }


def test_datera_objects_and_bytes_survive_kill9_and_restart(make_lab):
    lab = make_lab("127.212")
    up = lab.up(only="datera")
    assert up.returncode == 0, up.stderr
    target = lab.target.parent
    udc = Udc.load(target / "datera.json", target / "datera-ca.pem")
    api = connect(udc)
    tenant = f"/root/durable-{uuid.uuid4().hex[:6]}"
    api.tenants.create(name=tenant.rsplit("/", 1)[1])
    host = "iqn.1993-08.org.debian:01:durable-host"
    api.initiators.create(id=host, name="durable-host", tenant=tenant)
    api.initiator_groups.create(name="durable-hosts", members=[{"path": f"/initiators/{host}"}],
                                tenant=tenant)
    ai = api.app_instances.create(
        tenant=tenant, name="durable-ai", descr="kept", access_control_mode="deny_all",
        storage_instances=[{"name": "storage-1", "ip_pool": {"path": POOL}, "volumes": [{
            "name": "volume-1", "size": 1, "replica_count": 1,
            "performance_policy": {"total_iops_max": 4000}}]}])
    si = ai.storage_instances.list(tenant=tenant)[0]
    si.acl_policy.set(initiators=[{"path": f"/initiators/{host}"}],
                      initiator_groups=[{"path": "/initiator_groups/durable-hosts"}],
                      tenant=tenant)
    si.auth.set(type="chap", target_user_name="durable", target_pswd="durable-secret-1",
                tenant=tenant)
    api.tenant_qos.set(total_iops_max=3000, tenant=tenant)
    vol = si.volumes.list(tenant=tenant)[0]
    si = si.reload(tenant=tenant)
    lun = login(si["access"]["ips"][0], ports.ISCSI, host, si["access"]["iqn"],
                chap_user="durable", chap_secret="durable-secret-1")[0]
    wrote = _qemu_io(lun.uri, "write -P 0xa5 1M 1M")
    assert wrote.returncode == 0, wrote.stderr
    vol.snapshots.create(tenant=tenant)
    before = _datera_state(api, tenant)
    # The last write: answered, then the process dies at once (no periodic sync in between).
    last = api.app_instances.create(tenant=tenant, name="killed-after-this", storage_instances=[
        {"name": "storage-1", "volumes": [{"name": "volume-1", "size": 2, "replica_count": 1}]}])
    datera = Restartable(lab, "datera")
    datera.kill9()
    datera.start(f"http://{lab.address('7.10')}:{ports.DATERA_HTTP}/api_versions")

    api = connect(udc)   # sessions lapse on a restart: a fresh login
    after = _datera_state(api, tenant)
    last_kept = after["app_instances"].pop(last["id"])
    last_si = last["storage_instances"][0]
    assert (last_kept["si"], last_kept["iqn"], last_kept["vol"], last_kept["size"]) == \
        (last_si["uuid"], last_si["access"]["iqn"], last_si["volumes"][0]["uuid"], 2)
    # The event log in order, then the last write's event.
    events = after.pop("events")
    assert events[:len(before["events"])] == before.pop("events")
    created = [e for e in api.events.user.list(tenant=tenant)
               if e["code"] == "app_instance_created" and e["object_path"] == last["path"]]
    assert len(created) == 1
    assert after == before
    kept = before["app_instances"][ai["id"]]
    assert kept["acl"]["initiators"][0]["path"] == f"/initiators/{host}"
    assert kept["auth_type"] == "chap" and kept["qos"]["total_iops_max"] == 4000
    assert len(kept["snapshots"]) == 1 and before["tenant_qos"] == 3000
    # The bytes, through the other VIP, with the same CHAP secret.
    lun = login(kept["ips"][1], ports.ISCSI, host, kept["iqn"],
                chap_user="durable", chap_secret="durable-secret-1")[0]
    read = _qemu_io(lun.uri, "read -P 0xa5 1M 1M")
    assert read.returncode == 0 and "Pattern verification failed" not in read.stdout, read.stdout


def _os_state(admin, tenant, ids: dict) -> dict:
    """What the test made in one cloud, read back through openstacksdk (ids and relations)."""
    project = admin.identity.get_project(ids["project"])
    user = admin.identity.get_user(ids["user"])
    roles = sorted(r.id for r in admin.identity.role_assignments_filter(
        project=ids["project"], user=ids["user"]))
    image = tenant.image.get_image(ids["image"])
    net = tenant.network.get_network(ids["network"])
    port = tenant.network.get_port(ids["port"])
    vtype = admin.block_storage.get_type(ids["type"])
    vol = tenant.block_storage.get_volume(ids["volume"])
    snap = tenant.block_storage.get_snapshot(ids["snapshot"])
    boot = tenant.block_storage.get_volume(ids["boot"])
    server = tenant.compute.get_server(ids["server"])
    return {
        "project": (project.id, project.name), "user": (user.id, user.name, user.default_project_id),
        "roles": roles,
        "image": (image.id, image.status, image.checksum, image.size),
        "network": (net.id, net.name), "port": (port.id, port.network_id, port.mac_address,
                                                 [ip["ip_address"] for ip in port.fixed_ips]),
        "type": (vtype.id, vtype.name, vtype.extra_specs),
        "volume": (vol.id, vol.size, vol.volume_type, vol.status),
        "snapshot": (snap.id, snap.volume_id, snap.status),
        "boot": (boot.id, boot.status, [a["server_id"] for a in boot.attachments]),
        "server": (server.id, server.name, [v["id"] for v in server.attached_volumes]),
    }


@pytest.mark.parametrize("cloud, net, controller", [
    ("mitaka", "127.213", "1.1"), ("newton", "127.214", "2.1"), ("pike", "127.215", "3.1")])
def test_openstack_cloud_objects_survive_kill9_and_restart(make_lab, cloud, net,
                                                           controller):
    import openstack
    import openstack.config
    from lab.topology import OPENSTACK_PORTS
    lab = make_lab(net)
    up = lab.up(only=f"openstack-{cloud}", timeout=240)
    assert up.returncode == 0, up.stderr
    config = openstack.config.OpenStackConfig(
        config_files=[str(lab.target.parent / "clouds.yaml")])

    def conns():
        return (openstack.connection.Connection(config=config.get_one(cloud=f"{cloud}-admin")),
                openstack.connection.Connection(config=config.get_one(cloud=cloud)))
    admin, tenant = conns()
    tag = uuid.uuid4().hex[:6]
    ids = {}
    project = admin.identity.create_project(name=f"durable-{tag}", domain_id="default")
    user = admin.identity.create_user(name=f"durable-{tag}", password="durable-pw-1",
                                      default_project_id=project.id, domain_id="default")
    member = admin.identity.find_role("_member_")
    admin.identity.assign_project_role_to_user(project, user, member)
    ids.update(project=project.id, user=user.id)
    image_bytes = os.urandom(65536)
    ids["image"] = tenant.image.create_image(name=f"durable-{tag}", data=image_bytes,
                                             disk_format="raw", container_format="bare").id
    net = next(iter(tenant.network.networks()))   # the lab's Neutron has its networks made
    ids["network"] = net.id
    ids["port"] = tenant.network.create_port(network_id=net.id, name=f"durable-{tag}").id
    ids["type"] = admin.block_storage.create_type(
        name=f"durable-{tag}", extra_specs={"volume_backend_name": "ceph"}).id
    bs = tenant.block_storage
    vol = bs.wait_for_status(bs.create_volume(name=f"durable-{tag}", size=1,
                                              volume_type=f"durable-{tag}"),
                             "available", failures=["error"], wait=120)
    ids["volume"] = vol.id
    ids["snapshot"] = bs.wait_for_status(bs.create_snapshot(volume_id=vol.id),
                                         "available", failures=["error"], wait=120).id
    boot = bs.wait_for_status(bs.create_volume(name=f"durable-boot-{tag}", size=1),
                              "available", failures=["error"], wait=120)
    ids["boot"] = boot.id
    server = tenant.compute.create_server(
        name=f"durable-{tag}", flavor_id="1", block_device_mapping=[{
            "boot_index": "0", "uuid": boot.id, "source_type": "volume",
            "destination_type": "volume", "delete_on_termination": False}],
        networks=[{"uuid": net.id}])
    ids["server"] = tenant.compute.wait_for_server(server, wait=120).id
    before = _os_state(admin, tenant, ids)
    assert before["boot"][1] == "in-use" and before["server"][2] == [boot.id]
    # The last write, answered; then the process dies at once.
    last = admin.block_storage.create_type(name=f"durable-last-{tag}")
    os_cloud = Restartable(lab, f"openstack-{cloud}")
    os_cloud.kill9()
    os_cloud.start(f"http://{lab.address(controller)}:{OPENSTACK_PORTS['keystone']}/v3",
                   timeout=120)

    admin, tenant = conns()   # tokens lapse on a restart
    after = _os_state(admin, tenant, ids)
    assert admin.block_storage.get_type(last.id).name == f"durable-last-{tag}"
    assert tenant.image.download_image(ids["image"]).content == image_bytes
    # The server's guest died with the process: nova-compute's restart marks it SHUTOFF.
    assert tenant.compute.get_server(ids["server"]).status == "SHUTOFF"
    assert after == before
    # The restored objects still work: the server is deleted and its volume detached.
    server = tenant.compute.get_server(ids["server"])
    tenant.compute.delete_server(server)
    tenant.compute.wait_for_delete(server, wait=120)
    bs = tenant.block_storage
    assert bs.wait_for_status(bs.get_volume(ids["boot"]), "available", wait=120).attachments == []


# ---- a cloud's work in flight when its process died (in-process clouds, ceph only) ----------

def _cloud(data_dir: Path, release: str = "pike"):
    from lab.openstack.cloud import Cloud
    from lab.openstack.config import CloudConfig
    config = CloudConfig.model_validate({
        "cloud": release, "release": release, "address": "127.0.0.1", "data_dir": str(data_dir),
        "admin": {"user": "admin", "password": "pw-a", "project": "admin"},
        "tenant": {"user": "tenant", "password": "pw-t", "project": "Vancouver-OP"},
        "compute_nodes": [{"name": "node-1", "address": "127.0.0.1"}],
        "services": {"cinder": {"ceph": {"address": "127.0.0.1"}}}})
    cloud = Cloud(config)
    cloud.load_services()
    return cloud


@pytest.fixture
def restart_cloud(tmp_path):
    """restart_cloud() -> (cloud, its CloudState): the first call builds a cloud; each later
    call saves the last one's state, closes it and builds a new one from the same data dir,
    as a process killed right after its last sync and started again would."""
    from lab.openstack.durable import CloudState
    made = []

    def restart(release: str = "pike"):
        if made:
            cloud, state = made[-1]
            state.sync()
            for svc in cloud.services.values():
                if hasattr(svc.model, "pool"):
                    svc.model.pool.shutdown(wait=True, cancel_futures=True)
            state.close()
        cloud = _cloud(tmp_path, release)
        state = CloudState.open(cloud)
        state.load()
        made.append((cloud, state))
        return cloud, state
    yield restart
    for cloud, state in made:
        for svc in cloud.services.values():
            close = getattr(svc.model, "close", None)
            if close:
                close()


def test_cloud_identity_and_catalog_come_back_with_the_same_ids(restart_cloud):
    cloud, _ = restart_cloud()
    ks = cloud.model("keystone")
    seeded = {p.name: p.id for p in ks.projects.values()}
    project = ks.create_project({"name": "durable-p"})
    cloud, _ = restart_cloud()
    ks = cloud.model("keystone")
    assert {p.name: p.id for p in ks.projects.values()} == {**seeded, "durable-p": project.id}
    admin = next(u for u in ks.users.values() if u.name == "admin")
    assert admin.check("pw-a")   # the seed was restored, not made again with new ids


@pytest.mark.parametrize("release", ["mitaka", "pike"])
def test_cinder_settles_work_in_flight_as_init_host_does(restart_cloud, release):
    """Mitaka's init_host leaves a volume or snapshot `creating` stuck (an admin resets it);
    from Newton on the workers-table cleanup sets them to `error` (cinder/volume/manager.py
    _do_cleanup), so a demo's teardown can delete them at once."""
    from lab.openstack.caller import Caller
    cloud, _ = restart_cloud(release)
    cinder = cloud.model("cinder")
    me = Caller(project_id="p1", user_id="u1")

    def available(name):
        vol = cinder.create_volume(me, size=1, name=name)
        assert cinder.wait_for(lambda: cinder.volumes[vol.id].status == "available", 60)
        return vol.id
    ids = {s: available(s) for s in ("deleting", "downloading", "uploading", "creating", "kept",
                                     "extending", "snapped")}
    snap = cinder.create_snapshot(me, volume_id=ids["snapped"], name="s")
    assert cinder.wait_for(lambda: cinder.snapshots[snap.id].status == "available", 60)
    with cinder.lock:   # the states the store held when the process died
        for status in ("deleting", "downloading", "uploading", "creating", "extending"):
            cinder.volumes[ids[status]].status = status
        cinder.volumes[ids["kept"]].migration_status = "migrating"
        cinder.snapshots[snap.id].status = "creating"

    cloud, _ = restart_cloud(release)
    cinder = cloud.model("cinder")
    assert cinder.wait_for(lambda: ids["deleting"] not in cinder.volumes, 60)   # delete resumed
    v = cinder.volumes
    assert v[ids["downloading"]].status == "error"
    assert v[ids["uploading"]].status == "available"
    cleaned = "error" if release != "mitaka" else "creating"   # else stuck until reset-state
    assert v[ids["creating"]].status == cleaned
    assert cinder.snapshots[snap.id].status == cleaned
    assert v[ids["extending"]].status == "extending"           # every release: stuck
    assert (v[ids["kept"]].status, v[ids["kept"]].migration_status) == ("available", "migrating")


def test_a_volume_host_is_saved_before_its_backend_object_is_made(restart_cloud, monkeypatch):
    """A kill -9 after the driver made the volume's object, before the next sync, must leave
    a record that knows where it is (the host), so the restarted cloud's delete removes it
    (CI: an app instance left on Datera). As Cinder's scheduler saves volume.host before
    cinder-volume creates anything. The same for a migration's temporary volume."""
    from lab.openstack.caller import Caller
    from lab.store import Store
    cloud, _ = restart_cloud()
    cinder = cloud.model("cinder")
    driver = cinder.drivers[cinder.default_backend]
    saved_hosts = {}

    def create_volume(ref, real=driver.create_volume):
        store = Store(cloud.config.data_dir / "cinder.db")   # what a restart would read now
        try:
            volumes = store.load()["state"]["model"]["volumes"]
        finally:
            store.close()
        saved_hosts[ref.id] = volumes[ref.id].host if ref.id in volumes else None
        return real(ref)
    monkeypatch.setattr(driver, "create_volume", create_volume)
    vol = cinder.create_volume(Caller(project_id="p1", user_id="u1"), size=1, name="wa")
    assert cinder.wait_for(lambda: cinder.volumes[vol.id].status == "available", 60)
    assert saved_hosts == {vol.id: cinder.volumes[vol.id].host}, saved_hosts


def test_nova_restart_is_a_rebooted_compute_host(restart_cloud):
    from lab.openstack.nova.models.records import DEFAULT_FLAVORS, Server
    cloud, _ = restart_cloud()
    nova = cloud.model("nova")
    host = nova.hosts[0]

    def server(name, **state):
        s = Server(id=str(uuid.uuid4()), name=name, project_id="p1", user_id="u1",
                   flavor=DEFAULT_FLAVORS[0], host=host, user_data=None, metadata={})
        for k, v in state.items():
            setattr(s, k, v)
        nova.servers[s.id] = s
        return s.id
    with nova.lock:
        building = server("building")
        active = server("active", status="ACTIVE", vm_state="active", task_state=None,
                        power_state=1)
        deleting = server("deleting", status="ACTIVE", vm_state="active",
                          task_state="deleting", deleting=True)

    cloud, _ = restart_cloud()
    nova = cloud.model("nova")
    s = nova.servers
    assert (s[building].status, s[building].vm_state) == ("ERROR", "error")
    assert "restarted" in s[building].fault["message"]
    assert (s[active].status, s[active].power_state, s[active].task_state) == ("SHUTOFF", 4, None)
    assert s[active].host is nova.hosts[0]        # re-linked to the host table
    assert nova.wait_for(lambda: deleting not in nova.servers, 30)   # the delete finished


def test_a_build_saves_each_volume_id_before_attaching_it(restart_cloud, monkeypatch):
    """What a restart would read at the moment a build reserves its volume (the first step
    of the attach) holds the BDM's volume id (nova's bdm.save() before the attach)."""
    from lab.openstack.caller import Caller
    from lab.store import Store
    cloud, _ = restart_cloud()
    nova, cinder = cloud.model("nova"), cloud.model("cinder")
    me = Caller(project_id="p1", user_id="u1")
    vol = cinder.create_volume(me, size=1, name="boot")
    assert cinder.wait_for(lambda: cinder.volumes[vol.id].status == "available", 60)
    saved = []

    def reserve(caller, volume_id):
        store = Store(cloud.config.data_dir / "nova.db")
        try:
            servers = store.load()["state"]["model"]["servers"]
        finally:
            store.close()
        saved.extend(r.get("volume_id") for s in servers.values() for r in s.pending)
        raise RuntimeError("the attach stops here: only what was saved before it matters")
    monkeypatch.setattr(cinder, "reserve", reserve)
    server = nova.create_server(me, name="s", flavor_id=next(iter(nova.flavors)),
                                user_data=None, metadata={}, zone=None,
                                devices=[{"source": "volume", "ref": vol.id, "boot_index": 0,
                                          "delete_on_termination": False}])
    nova.start_build(me, server)
    assert nova.wait_for(lambda: nova.servers[server.id].status == "ERROR", 30), \
        (nova.servers[server.id].status, nova.servers[server.id].task_state, saved)
    assert saved == [vol.id]


def test_a_server_whose_build_died_gives_back_its_volumes_when_deleted(restart_cloud):
    """nova-compute died mid-build: one block device's volume (Nova's own, from an image:
    delete_on_termination) was reserved, the user's volume already attached. After the
    restart the server is ERROR and lists neither as a device; its delete still detaches the
    user's volume and deletes Nova's (each BDM's volume id is saved before its attach, as
    Nova's bdm.save()); before, both stayed held by a server that no longer exists."""
    from lab.openstack.caller import Caller
    from lab.openstack.nova.models.records import DEFAULT_FLAVORS, Server
    cloud, _ = restart_cloud()
    nova, cinder = cloud.model("nova"), cloud.model("cinder")
    me = Caller(project_id="p1", user_id="u1")

    def available(name):
        vol = cinder.create_volume(me, size=1, name=name)
        assert cinder.wait_for(lambda: cinder.volumes[vol.id].status == "available", 60)
        return vol.id
    novas, users = available("from-image"), available("users")
    server = Server(id=str(uuid.uuid4()), name="dies", project_id="p1", user_id="u1",
                    flavor=DEFAULT_FLAVORS[0], host=nova.hosts[0], user_data=None,
                    metadata={}, pending=[
                        {"source": "image", "ref": "img", "size": 1, "boot_index": 0,
                         "delete_on_termination": True, "volume_id": novas},
                        {"source": "volume", "ref": users, "boot_index": 1,
                         "delete_on_termination": False, "volume_id": users}])
    with nova.lock:
        nova.servers[server.id] = server
    cinder.reserve(me, novas)
    cinder.reserve(me, users)
    cinder.attach(me, users, instance_uuid=server.id, host_name=server.host.name,
                  mountpoint="/dev/vdb")

    cloud, _ = restart_cloud()
    nova, cinder = cloud.model("nova"), cloud.model("cinder")
    assert nova.servers[server.id].status == "ERROR"
    nova.delete_server(Caller(project_id="p1", user_id="u1"), server.id)
    assert nova.wait_for(lambda: server.id not in nova.servers, 30)
    assert cinder.wait_for(lambda: novas not in cinder.volumes, 30)
    given = cinder.volumes[users]
    assert (given.status, given.attachments) == ("available", [])


@pytest.mark.serial   # a Kubernetes control plane of its own, started twice: minutes when loaded
def test_kubernetes_objects_survive_a_restart_of_etcd_and_the_control_plane(make_lab):
    """etcd's data dir is <run dir>/kubernetes/etcd: the whole node (etcd included) killed
    with SIGKILL and started again on the same run dir keeps every API object. etcd and the
    control plane run detached from the node's process group (lab/detached.py): they are
    killed as `chaos kill kubernetes --all` kills them."""
    from lab import detached
    from kubernetes import client, config as kconfig
    lab = make_lab("127.216")
    up = lab.up(only="kubernetes", timeout=600)
    if up.returncode != 0 and "not built" in up.stderr:
        pytest.skip(f"the Kubernetes control plane is not built: {up.stderr.strip()}")
    assert up.returncode == 0, up.stderr
    assert (lab.run_dir / "kubernetes" / "etcd" / "member").is_dir()

    def core():
        return client.CoreV1Api(kconfig.new_client_from_config(str(lab.target.parent /
                                                                   "kubeconfig")))
    name = f"durable-{uuid.uuid4().hex[:6]}"
    ns = core().create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    cm = core().create_namespaced_config_map(name, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="kept"), data={"answer": "42"}))
    k8s = Restartable(lab, "kubernetes")
    k8s.kill9()
    assert {r.name for r in detached.kill(lab.run_dir / "kubernetes")} >= {"etcd",
                                                                            "kube-apiserver"}
    def serving():
        try:
            return bool(core().read_namespace(name))
        except Exception:
            return False
    k8s.start(healthy=serving, timeout=600)
    kept = core().read_namespaced_config_map("kept", name)
    assert (kept.metadata.uid, kept.data) == (cm.metadata.uid, {"answer": "42"})
    assert core().read_namespace(name).metadata.uid == ns.metadata.uid
    core().delete_namespace(name)
