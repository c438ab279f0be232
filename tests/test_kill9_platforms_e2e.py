"""kill -9 of the LDAP directory, an OpenStack cloud, the Kubernetes control plane and the
vCenter during a bounded endless run, and a stopped vCenter (issue 13's Show; Datera's own
case is tests/test_kill9_e2e.py): one lab of this module's own (net 127.229: ldap, datera,
openstack-pike, kubernetes, vsphere), and per case a `-n 2 --count=0 --duration` run (short:
the module's whole time stays near 4 minutes, inside CI's budget) of the
scenarios that use the component, the fault made so that a request of a step meets it. Then:
the supervisor restarted it (the time is printed), what existed before the kill is still
there (through the platform's own client: ldap3, openstacksdk, the kubernetes client,
pyVmomi), the run exits 0 with only passed and outage results, the report and index.html
show the outage, the cleanup command finds nothing.

A component back within a second (slapd, an OpenStack cloud) restarts between two requests
of a worker, and a bare kill -9 then meets nothing. Two faults make sure one does:
- "stop, then kill" (LDAP, OpenStack): SIGSTOP, and once a request of the run waits on the
  stopped process (unread bytes on one of its sockets, outage_run.unanswered_requests),
  kill -9 while stopped: that request's connection is reset. The directory is asked only at
  each worker's first login per tenant (tenancy caches the session), so it is stopped as the
  run starts; the cloud once a worker is inside a scenario step (the terminal's live lines
  come every few seconds only, too coarse to aim at one step). A client that retries the
  reset request after the restart rides the kill out (good behaviour): the OpenStack case
  accepts that, the waiting request being the proof that the kill met one; an outage counted
  must still be shown.
- crash loop (Kubernetes, vSphere; tests/support/outage_run.crash_loop): kill -9 again
  CRASH_UP_S after the supervisor has it healthy, until an iteration met it (its result is
  `outage`), at most CRASH_LOOP_S; the supervisor's
  backoff doubles per restart (lab/restart.py), so the outage grows until a request meets
  it. The first restart's time is the figure printed.

One OpenStack release is enough: the three clouds are one code path (lab/openstack/server.py
serves each from its release profile; one supervisor entry each, made by one function in
lab/components.py), and the outage probe is one Keystone probe per cloud (probes.py).
Fixed net: run under the lock of tests/support/labcli.py's nets."""
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from fixtures.target import Target
from fixtures.waiters import poll_until
from tests.support.lab_evidence import evidence_on_failure
from tests.support.labcli import LabCli
from tests.support.outage_run import (CRASH_LOOP_LAB_ENV, assert_nothing_left, assert_rode_out,
                                      crash_loop, kill9_and_time_restart, noticed, own_lab,
                                      run_with_fault, stopped, unanswered_requests)

# timeout: each inner run's own limit is 600 s (pytest.ini: 300 s)
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.timeout(900)]
NET = "127.229"
COMPONENTS = "ldap,datera,openstack-pike,kubernetes,vsphere"
RESTART_DEADLINE_S = 15.0   # "promptly" on a loaded machine: see tests/test_kill9_e2e.py
STOPPED_S = 10.0            # how long the vCenter stays stopped: the stimulus, not a wait
STOPPED_RUN_S = 35.0        # the --duration of that case's run
# How long a stopped component waits for a request of the run to reach it: the directory is
# asked at each worker's first tenant login, in its first item's first step.
REQUEST_WAIT_S = 120.0
# How long a crash loop waits for its case's moment (Case.armed).
ARM_WAIT_S = 120.0
# How long after the kill the iteration that met it may take to report (its pause included).
NOTICED_WAIT_S = 120.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with own_lab(tmp_path_factory, NET, COMPONENTS, **CRASH_LOOP_LAB_ENV) as lab:
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
    """A VM made through pyVmomi before the run (a disk, its job in guestinfo.userdata,
    powered off: no guest runs) and the inventory the demo stands on (datacenter, ESXi host,
    the local datastore), through pyVmomi after the kills: the same managed object ids, names,
    disks and extraConfig. The lab's vCenter saves its state before each change is answered
    (lab/vsphere/durable.go), so the running iteration's VM, datastore and host set-up are kept
    too, and the iteration goes on after the restart."""
    from fixtures import vmware
    settings = vmware.settings_from_target(Target.load(lab.target))
    name = f"kill9-kept-{uuid.uuid4().hex[:8]}"   # not the demo's prefix: cleanup ignores it
    vs = vmware.connect(settings)
    try:
        vmware.create_vm(vs, vmware.vm_spec(name, ["LocalDS_0"], 0.5, "echo kept"))
    finally:
        vs.close()

    def inventory():
        vs = vmware.connect(settings)
        try:
            vm = vmware.find_vm(vs, name)
            disks = [(d.key, d.backing.fileName, d.capacityInKB)
                     for d in vm.config.hardware.device if hasattr(d.backing, "fileName")
                     and d.backing.fileName.endswith(".vmdk")]
            return {"inventory": [(o._moId, o.name) for o in (vs.datacenter, vs.host)]
                    + sorted((d._moId, d.name) for d in vs.host.datastore if d.name == "LocalDS_0"),
                    "vm": (vm._moId, vm.name, vm.config.uuid, vm.runtime.powerState, disks,
                           vmware.guestinfo(vm).get("guestinfo.userdata"))}
        finally:
            vs.close()
    before = inventory()
    assert before["vm"][4], before

    def check():
        assert inventory() == before
        return f"datacenter, ESXi host, LocalDS_0 and VM {before['vm'][0]} with its disk"

    def drop():
        vs = vmware.connect(settings)
        try:
            vmware.destroy_vm(vs, name)
        finally:
            vs.close()
    return check, drop


def _run_pod_running(lab: LabCli) -> Callable[[], bool]:
    """Whether a pod of the run (namespace vancouver-<hex>) is Running on the node: the
    moment a kill of the node process loses one (the terminal's live lines come every 30 s,
    too coarse to aim at a pod of a 12 s iteration)."""
    from fixtures import kubernetes as k8s
    cluster = k8s.connect(Target.load(lab.target))

    def running() -> bool:
        pods = cluster.core.list_pod_for_all_namespaces(field_selector="status.phase=Running")
        return any(p.metadata.namespace.startswith("vancouver-") for p in pods.items)
    return running


@dataclass(frozen=True)
class Case:
    component: str
    label: str              # the outage probe's label (fixtures/outage/probes.py)
    scenarios: tuple[str, ...]
    in_step: str            # regex of the live line the fault waits for (outage_run.LIVE)
    survivors: Callable
    # The runs are short: a case's fault comes in its first iterations. A run ends once its
    # iterations in flight end after `duration`.
    duration: str = "30s"
    workers: int = 2
    restart_deadline_s: float = RESTART_DEADLINE_S
    # "crash loop" (_crash_loop) or "stop, then kill" (_stop_then_kill)
    fault: str = "crash loop"
    # With "stop, then kill": an iteration that met the kill may pass (its client retried
    # after the restart): then the kill having met a waiting request is the proof.
    may_ride_out: bool = False
    # armed(lab) -> condition (polled) the first kill waits for instead of `in_step` (None:
    # the live lines' `in_step`)
    armed: Callable | None = None
    # Other components whose log a failure prints too (the vSphere guests' I/O goes to Datera)
    also_logs: tuple[str, ...] = ()


CASES = {
    # The directory is asked once per worker and tenant (tenancy caches the tenant user's
    # session): stopped as the run starts, it is sure to hold the first login's request.
    # One worker and a run of 5 s: its first item meets the directory's outage, one more
    # passes after it (a tenancy iteration is ~40 s; two workers take turns at its QoS
    # windows, and the run would take two minutes).
    "ldap": Case("ldap", "LDAP directory", ("scenarios/test_tenancy.py",), "", _ldap_survivors,
                 fault="stop, then kill", duration="5s", workers=1),
    # The cloud answers every step of the scenario; stopped once a worker is in one, a
    # request of it waits on the cloud, and the kill resets it.
    "openstack-pike": Case("openstack-pike", "Keystone of pike",
                           ("scenarios/openstack/test_volume_features.py",),
                           "test_volume_features.* > ", _openstack_survivors,
                           fault="stop, then kill", may_ride_out=True),
    # The component's process is the node (CSI controller, node agent); the control plane
    # runs detached and the restarted node adopts it (lab/kubernetes/__main__.py): the
    # apiserver answers throughout, the pods the node ran are lost (Failed, 137
    # ContainerStatusUnknown), and the phase the restart cut is an outage through the
    # kubelet's "Starting kubelet." event (fixtures/outage/probes.py restarted_at).
    "kubernetes": Case("kubernetes", "kube-apiserver",
                       ("scenarios/kubernetes/test_kubernetes.py",), "",
                       _kubernetes_survivors, armed=_run_pod_running),
    "vsphere": Case("vsphere", "vCenter SDK", ("scenarios/vmware/test_vmware.py",),
                    "test_vmware.* > ", _vsphere_survivors, also_logs=("datera",)),
}


def _crash_loop(lab: LabCli, case: Case, restarts: list[float]):
    """The fault: a crash loop (outage_run.crash_loop), once the case is armed."""
    def fault(lines: list[str]) -> None:
        if case.armed is not None:
            ready = case.armed(lab)
            assert poll_until(ready, bool, ARM_WAIT_S, interval=0.1), \
                f"{case.component}: the run never reached the moment to kill in {ARM_WAIT_S:.0f}s"
        crash_loop(lab, case.component, lines, restarts)
    return fault


def _stop_then_kill(lab: LabCli, case: Case, restarts: list[float], waiting: list[int]):
    """The fault, made sure to meet a request: SIGSTOP; once a request of the run waits on
    the stopped component (unanswered bytes on its sockets), kill -9 while it is stopped
    (the request's connection is reset), then wait for the iteration that met it to
    report. `waiting` gets the number of requests that were waiting at the kill."""
    def fault(lines: list[str]) -> None:
        pid = lab.component(case.component)["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            found = poll_until(lambda: unanswered_requests(pid), bool, REQUEST_WAIT_S,
                               interval=0.05)
        except BaseException:
            os.kill(pid, signal.SIGCONT)
            raise
        waiting.append(found)
        if not found:
            os.kill(pid, signal.SIGCONT)
            raise AssertionError(f"no request reached the stopped {case.component} in "
                                 f"{REQUEST_WAIT_S:.0f}s")
        restarts.append(kill9_and_time_restart(lab, case.component, timeout=120))
        if not case.may_ride_out:
            poll_until(lambda: noticed(lines), bool, NOTICED_WAIT_S)
    return fault


# Cases that cannot pass yet, with the reason (none now). "vsphere" was skipped after loaded
# CI rehearsals in which a VM's guest never reported done within 128 s (cc14: the VM of the
# iteration after the one the kill cut). Run under xdist as CI's lane b runs it (-n 1), it
# failed the same way here: pytest-xdist's basetemp made the vCenter's guest TMPDIR so deep
# that the disk relay's socket path passed 108 bytes, its bind failed and the agent died
# without a result (lab/openstack/nova/disk_relay.py _own_dir_root). Without xdist the path
# fit, hence the local passes; the kill only cut the iteration before.
NOT_DURABLE: dict[str, str] = {}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.skip(reason=NOT_DURABLE[n])) if n in NOT_DURABLE else n
    for n in CASES])
def test_kill_9_mid_run_restarts_keeps_objects_and_counts_an_outage(lab, tmp_path, name):
    case = CASES[name]
    # A failure prints the component's log tail and the inner run's output (CI keeps no lab).
    with evidence_on_failure(lab, (case.component, *case.also_logs), tmp_path / "output.txt"):
        _kill_9_case(lab, tmp_path, name, case)


def _kill_9_case(lab: LabCli, tmp_path, name: str, case: Case) -> None:
    check, drop = case.survivors(lab)
    restarts: list[float] = []
    waiting: list[int] = []
    try:
        if case.fault == "stop, then kill":
            fault, in_step = _stop_then_kill(lab, case, restarts, waiting), case.in_step or None
        else:
            fault, in_step = _crash_loop(lab, case, restarts), case.in_step or None
        run = run_with_fault(lab, tmp_path, fault, duration=case.duration,
                             scenarios=case.scenarios, in_step=in_step, in_step_workers=1,
                             workers=case.workers)
        assert restarts and restarts[0] < case.restart_deadline_s, \
            f"{name} took {restarts[0]:.2f}s to be healthy again"
        assert lab.component(case.component)["state"] == "healthy"
        # results.jsonl counts the outages (the verbose line of an outage met in a set-up
        # or teardown phase reads differently)
        rode_out = case.may_ride_out and not run.outages
        if rode_out:
            # Its clients retried the reset request after the restart: good behaviour, and
            # the kill did meet a request (waiting); no outage was counted, none is shown.
            assert waiting and waiting[0] > 0
            assert_rode_out(run, {case.component}, outage_results=False)
        else:
            # The operator's lines name the platform by its probe (waiting / back).
            assert any(f"{case.label} at" in ln for ln in run.lines), run.text[-4000:]
            assert_rode_out(run, {case.component})
        kept = check()
    finally:
        drop()
    met = f"; {waiting[0]} request(s) waiting at the kill" if waiting else ""
    print(f"\n{name}: healthy again {restarts[0]:.2f}s after the first kill -9 "
          f"({len(restarts)} kill(s): {', '.join(f'{t:.2f}' for t in restarts)} s){met}; "
          f"kept: {kept}; outages {[r['outage']['duration_s'] for r in run.outages]} s"
          f"{' (the clients rode it out)' if rode_out else ''}")
    assert_nothing_left(lab)


def test_vmware_scenario_pauses_while_the_vcenter_is_stopped(lab, tmp_path):
    """SIGSTOP of the vCenter for STOPPED_S while a worker is inside a VMware step: the
    worker says it is waiting for the vCenter and that it is back; the run exits 0 with only
    passed and outage results (a call that was waiting on the stopped vCenter gets its
    answer after SIGCONT, so the iteration may pass; one that timed out is an outage), and
    iterations start after it is back."""
    with evidence_on_failure(lab, ("vsphere",), tmp_path / "output.txt"):
        _vcenter_stopped_case(lab, tmp_path)


def _vcenter_stopped_case(lab: LabCli, tmp_path) -> None:
    pid = lab.component("vsphere")["pid"]

    def stop(_lines):
        with stopped(pid):
            time.sleep(STOPPED_S)
    run = run_with_fault(lab, tmp_path, stop, duration=f"{STOPPED_RUN_S:.0f}s",
                         scenarios=("scenarios/vmware/test_vmware.py",),
                         in_step="test_vmware.* > ", in_step_workers=1)
    assert_rode_out(run, {"vsphere"}, outage_results=False)
    assert any("waiting for vCenter SDK at" in ln for ln in run.lines), run.text[-4000:]
    assert any("vCenter SDK at" in ln and "is back after" in ln for ln in run.lines)
    events = [e for e in run.events if e["kind"] == "outage"]
    assert {e["platform"] for e in events} == {"vsphere"}, events
    back = [e for e in events if e["state"] == "back"]
    assert back and all(e["duration_s"] >= STOPPED_S / 2 for e in back), events
    # Each worker that waited went on once the vCenter was back: a step of its iteration
    # ended, or a new one started, after its back event (the run may end before a worker
    # starts a new iteration: a VMware iteration takes a while on a loaded machine).
    # Or the run's duration was over by then (a loaded CI machine: the vCenter came back
    # after the 35 s, and no new iteration was due).
    ended_at = min(e["ts"] for e in run.events) + STOPPED_RUN_S
    for b in back:
        assert b["ts"] >= ended_at or [
            e for e in run.events if e["kind"] in ("step_start", "step_end")
            and e["worker"] == b["worker"] and e["ts"] > b["ts"]], (b, run.text[-3000:])
    print(f"\nvsphere stopped {STOPPED_S:.0f}s: outage events "
          f"{[(e['state'], e['duration_s']) for e in events]}; results "
          f"{[r['outcome'] for r in run.results]}")
    assert_nothing_left(lab)
