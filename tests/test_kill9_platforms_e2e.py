"""kill -9 of each lab component but Datera during a bounded endless run, and a stopped
vCenter (issue 13's Show; Datera's own case is tests/test_kill9_e2e.py): one lab of this
module's own (net 127.229: ldap, datera, openstack-pike, kubernetes, vsphere), and per case a
`-n 2 --count=0 --duration` run of the scenarios that use the component, the fault made while
a worker is inside a step that uses it. Then: the supervisor restarted it (the time is
printed), what existed before the kill is still there (through the platform's own client:
ldap3, openstacksdk, the kubernetes client, pyVmomi), the run exits 0 with only passed and
outage results, the report and index.html show the outage, the cleanup command finds nothing.

One OpenStack release is enough: the three clouds are one code path (lab/openstack/server.py
serves each from its release profile; one supervisor entry each, made by one function in
lab/components.py), and the outage probe is one Keystone probe per cloud (probes.py).
Fixed net: run under the lock of tests/support/labcli.py's nets."""
import json
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from fixtures.target import Target
from tests.support.labcli import LabCli
from tests.support.outage_run import (assert_rode_out, component, kill9_and_time_restart,
                                      leftovers, own_lab, run_with_fault, stopped)

# timeout: each inner run's own limit is 600 s (pytest.ini: 300 s)
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.timeout(900)]
NET = "127.229"
COMPONENTS = "ldap,datera,openstack-pike,kubernetes,vsphere"
RESTART_DEADLINE_S = 15.0   # "promptly" on a loaded machine: see tests/test_kill9_e2e.py
STOPPED_S = 10.0            # how long the vCenter stays stopped: the stimulus, not a wait


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with own_lab(tmp_path_factory, NET, COMPONENTS) as lab:
        yield lab


# -- what exists before the fault, checked after it (each: make(lab) -> check() -> drop())

def _ldap_survivors(lab: LabCli):
    """The directory's users (lab/ldap: one per tenant and the admin): found by anonymous
    search and bound with their passwords through ldap3, as Datera's login does."""
    import ldap3
    target = Target.load(lab.target)
    sec = target.section("ldap")
    users = json.loads(target.file("ldap", "users").read_text())

    def check():
        server = ldap3.Server(sec["url"], get_info=ldap3.NONE, connect_timeout=5)
        with ldap3.Connection(server, auto_bind=True) as anon:
            anon.search(sec["base_dn"], "(uid=*)", attributes=["uid"])
            assert {e.entry_dn for e in anon.entries} >= {u["dn"] for u in users.values()}
        for u in users.values():
            conn = ldap3.Connection(server, user=u["dn"], password=u["password"])
            assert conn.bind(), u["dn"]
            conn.unbind()
        return f"{len(users)} users found and bound"
    return check, lambda: None


def _openstack_survivors(lab: LabCli):
    """A Cinder volume and a Glance image of Pike made through openstacksdk: same ids,
    available/active, after the cloud's restart."""
    from tests.support.openstack import OpenStackTarget
    conn = OpenStackTarget(Target.load(lab.target)).connect("pike")
    name = f"survivor-{uuid.uuid4().hex[:6]}"
    vol = conn.block_storage.create_volume(name=name, size=1)
    conn.block_storage.wait_for_status(vol, "available", wait=120)
    image = conn.image.create_image(name=name, data=b"\0" * 4096, disk_format="raw",
                                    container_format="bare")

    def check():
        again = conn.block_storage.get_volume(vol.id)
        assert (again.name, again.status) == (name, "available"), again
        img = conn.image.get_image(image.id)
        assert (img.name, img.status) == (name, "active"), img
        return "a Cinder volume and a Glance image"

    def drop():
        conn.block_storage.delete_volume(vol.id, ignore_missing=True)
        conn.image.delete_image(image.id, ignore_missing=True)
    return check, drop


def _kubernetes_survivors(lab: LabCli):
    """A namespace and a ConfigMap made through the kubernetes client (etcd keeps them)."""
    from kubernetes import client
    from fixtures import kubernetes as k8s
    cluster = k8s.connect(Target.load(lab.target))
    ns = f"survivor-{uuid.uuid4().hex[:6]}"
    k8s.ensure_namespace(cluster.core, ns)
    made = cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="kept"), data={"kept": "yes"}))

    def check():
        cm = cluster.core.read_namespaced_config_map("kept", ns)
        assert cm.metadata.uid == made.metadata.uid and cm.data == {"kept": "yes"}
        return "a namespace and a ConfigMap"
    return check, lambda: k8s.delete_namespace(cluster.core, ns)


def _vsphere_survivors(lab: LabCli):
    """The inventory the demo stands on (datacenter, ESXi host, its iSCSI software adapter)
    through pyVmomi, with the same managed object ids."""
    from fixtures import vmware
    settings = vmware.settings_from_target(Target.load(lab.target))
    vs = vmware.connect(settings)
    before = (vs.datacenter._moId, vs.host._moId, vmware.iscsi_hba(vs).device)
    vs.close()

    def check():
        again = vmware.connect(settings)
        try:
            assert (again.datacenter._moId, again.host._moId,
                    vmware.iscsi_hba(again).device) == before
        finally:
            again.close()
        return "datacenter, ESXi host and iSCSI adapter"
    return check, lambda: None


@dataclass(frozen=True)
class Case:
    component: str
    scenarios: tuple[str, ...]
    in_step: str            # regex of the step path the fault waits for
    survivors: Callable
    duration: str = "60s"
    workers_in_step: int = 1


CASES = {
    "ldap": Case("ldap", ("scenarios/test_tenancy.py",), "LDAP user logs in", _ldap_survivors),
    "openstack-pike": Case("openstack-pike", ("scenarios/openstack/test_volume_features.py",
                                              "scenarios/openstack/test_image_rotation.py"),
                           "", _openstack_survivors, workers_in_step=2),
    "kubernetes": Case("kubernetes", ("scenarios/kubernetes/test_kubernetes.py",),
                       "PVC|pod", _kubernetes_survivors),
    "vsphere": Case("vsphere", ("scenarios/vmware/test_vmware.py",), "", _vsphere_survivors),
}


@pytest.mark.parametrize("name", list(CASES))
def test_kill_9_mid_run_restarts_keeps_objects_and_counts_an_outage(lab, tmp_path, name):
    case = CASES[name]
    check, drop = case.survivors(lab)
    took = []
    try:
        run = run_with_fault(lab, tmp_path, lambda: took.append(
            kill9_and_time_restart(lab, case.component)), duration=case.duration,
            scenarios=case.scenarios, in_step=case.in_step,
            in_step_workers=case.workers_in_step)
        assert took and took[0] < RESTART_DEADLINE_S, f"{name} took {took}s to be healthy"
        assert component(lab, case.component)["state"] == "healthy"
        assert_rode_out(run, {case.component})
        kept = check()
    finally:
        drop()
    print(f"{name}: healthy again {took[0]:.2f}s after kill -9; kept: {kept}; outages "
          f"{[r['outage']['duration_s'] for r in run.outages]} s")
    assert leftovers(lab) == []


def test_vmware_scenario_pauses_while_the_vcenter_is_stopped(lab, tmp_path):
    """SIGSTOP of the vCenter for STOPPED_S while a worker is inside a VMware step: the
    scenario waits ("waiting for vCenter SDK ..."), resumes after SIGCONT, exits 0."""
    pid = component(lab, "vsphere")["pid"]

    def stop():
        with stopped(pid):
            time.sleep(STOPPED_S)
    run = run_with_fault(lab, tmp_path, stop, duration="60s",
                         scenarios=("scenarios/vmware/test_vmware.py",), in_step="")
    assert_rode_out(run, {"vsphere"})
    assert any("waiting for vCenter SDK" in ln for ln in run.lines), run.text[-4000:]
    assert [r for r in run.outages if r["outage"]["duration_s"] >= STOPPED_S / 2], run.outages
    print(f"vsphere stopped {STOPPED_S:.0f}s: outages "
          f"{[r['outage']['duration_s'] for r in run.outages]} s")
    assert leftovers(lab) == []
