"""Durable lab state (issue 13 item 1): lab/store.py, and each lab service killed with
SIGKILL right after a write answered, started again on the same run dir with the command the
supervisor runs it with, still holding every object (same ids, same relations).

The process tests start labs of their own on fixed nets (tests/support/labcli.py): Datera on
127.212, the OpenStack clouds on 127.213.
"""
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from clients import ports
from clients.initiator import login
from fixtures.waiters import wait_until
from lab import store as store_mod
from lab.components import LabRun, select
from lab.store import Store
from tests.support.dsdk import Udc, connect
from tests.support.labcli import REPO, LabCli

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


def test_store_is_wal_and_can_be_switched_off(tmp_path, monkeypatch):
    s = Store(tmp_path / "x.db")
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
    """One component of a test's own lab: SIGKILL it, then start it again on the same run dir
    with the argv the supervisor's table gives it (lab/components.py), as a restart does."""

    def __init__(self, lab: LabCli, name: str):
        self.lab, self.name = lab, name
        self.component = select([name])[-1]
        self.procs: list[subprocess.Popen] = []

    def kill9(self) -> None:
        pid = self.lab.component_pids()[self.name]
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 10, f"{self.name} (pid {pid}) to die", 0.05)

    def start(self, healthy_url: str, timeout: float = 60) -> None:
        run = LabRun(self.lab.run_dir)
        log = open(self.lab.run_dir / "logs" / f"{self.name}-restarted.log", "wb")
        env = self.lab.env(PYTHONPATH=str(REPO), PYDANTIC_DISABLE_PLUGINS="1")
        self.procs.append(subprocess.Popen(self.component.argv(run), cwd=run.dir(self.name),
                                           env=env, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True))
        log.close()

        def up():
            assert self.procs[-1].poll() is None, self.log_tail()
            try:
                return requests.get(healthy_url, timeout=1).status_code == 200
            except requests.RequestException:
                return False
        wait_until(up, timeout, f"{self.name} healthy after a restart", 0.1)

    def log_tail(self) -> str:
        p = self.lab.run_dir / "logs" / f"{self.name}-restarted.log"
        return p.read_text(errors="replace")[-2000:] if p.exists() else ""

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie (the supervisor reaps it a moment later) is as good as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def restartable():
    made: list[Restartable] = []

    def make(lab, name):
        r = Restartable(lab, name)
        made.append(r)
        return r
    yield make
    for r in made:
        r.stop()


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


def test_datera_objects_and_bytes_survive_kill9_and_restart(make_lab, restartable):
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
    datera = restartable(lab, "datera")
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
