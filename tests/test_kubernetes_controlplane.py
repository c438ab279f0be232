"""The lab's Kubernetes control plane restarts a dead program by itself, on a lab of this
module's own (net 127.227, tests/support/labcli.py): `kill -9` of kube-apiserver is not a
restart of the whole component: the node process starts the apiserver again against the etcd
that kept running, the objects are all there, and the node agent's watches reconnect (a new
pod runs). The same for the controller-manager. (lab/kubernetes/processes.py)

etcd and the control plane run in sessions of their own (lab/detached.py), as a node's units
outlive a kubelet crash: `kill -9` of the component's process group (the node agent) leaves
them serving and the restarted node adopts them; `chaos kill kubernetes --all` kills them too,
and etcd's data survives that. The pods the killed agent ran are synced by the restarted one
as a restarted kubelet syncs them: failed (137) under Never, restarted under Always.
"""
import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from fixtures.outage.probes import probes_of
from fixtures.target import Target
from fixtures.waiters import wait_until
from tests.support.labcli import LabCli

# A lab of its own on a fixed net, killed on purpose: run alone (make test's second phase).
pytestmark = pytest.mark.serial

NET = "127.227"
TIMEOUT = 120


def pids(name: str, run_dir) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"{name} .*{run_dir}"], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture(scope="module")
def k8s_lab(tmp_path_factory):
    lab = LabCli(NET, tmp_path_factory.mktemp("k8s-cp") / "lab")
    lab.up_kubernetes()
    yield lab
    lab.run("down")


@pytest.fixture(scope="module")
def cluster(k8s_lab):
    from fixtures import kubernetes as k8s
    from fixtures.target import Target
    return k8s.connect(Target.load(k8s_lab.target))


def run_pod(cluster, ns: str, name: str) -> str:
    from kubernetes import client

    from fixtures import kubernetes as k8s
    cluster.core.create_namespaced_pod(ns, client.V1Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "app", "image": "vancouver/guest", "command": ["echo", name]}]}}))
    k8s.wait_for(cluster.core.list_namespaced_pod, name,
                 lambda p: p is not k8s.GONE and p.status.phase == "Succeeded", TIMEOUT,
                 f"pod {name} Succeeded", namespace=ns)
    return cluster.core.read_namespaced_pod_log(name, ns)


@pytest.mark.parametrize("program", ["kube-apiserver", "kube-controller-manager"])
def test_a_killed_control_plane_program_is_restarted_alone_and_etcd_keeps_the_state(
        k8s_lab, cluster, program):
    from kubernetes import client

    from fixtures import kubernetes as k8s
    run_dir = k8s_lab.run_dir / "kubernetes"
    ns = f"vkc-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, ns)
    try:
        cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="before"), data={"k": "v"}))
        etcd, before = pids("etcd", run_dir), k8s_lab.component("kubernetes")
        [victim] = pids(program, run_dir)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: (p := pids(program, run_dir)) and p != [victim], TIMEOUT,
                   f"{program} started again", interval=0.05)
        # the objects survived (etcd kept), through an apiserver that answers again
        cm = wait_until(lambda: _read(cluster, ns), TIMEOUT, "the apiserver answering",
                        interval=0.1)
        assert cm.data == {"k": "v"}
        assert pids("etcd", run_dir) == etcd
        after = k8s_lab.component("kubernetes")
        assert (after["pid"], after["restarts"]) == (before["pid"], before["restarts"])
        # the scheduler, the node agent's pod watch and the log endpoint all work again
        assert run_pod(cluster, ns, f"after-{program}") == f"after-{program}\n"
        log = (k8s_lab.run_dir / "logs" / "kubernetes.log").read_text()
        assert f"{program} exited with status -9; restarting it" in log
    finally:
        k8s.delete_namespace(cluster.core, ns, timeout=TIMEOUT)


def _read(cluster, ns):
    try:
        return cluster.core.read_namespaced_config_map("before", ns)
    except Exception:   # connection refused / 503 while the apiserver starts
        return None


def _programs(run_dir) -> dict[str, list[int]]:
    return {n: pids(n, run_dir) for n in ("etcd", "kube-apiserver", "kube-controller-manager",
                                          "kube-scheduler")}


def _restarted(lab: LabCli, before: dict) -> dict:
    return wait_until(lambda: (c := lab.component("kubernetes"))["pid"] != before["pid"]
                      and c["state"] == "healthy" and c["restarts"] == before["restarts"] + 1
                      and c, TIMEOUT, "kubernetes restarted by the supervisor", interval=0.05)


def _ready(lab: LabCli) -> dict:
    return json.loads((lab.run_dir / "kubernetes" / "ready").read_text())


def test_kill_9_of_the_node_leaves_the_control_plane_serving_and_its_restart_adopts_it(
        k8s_lab, cluster):
    from kubernetes import client

    from fixtures import kubernetes as k8s
    run_dir = k8s_lab.run_dir / "kubernetes"
    ns = f"vka-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, ns)
    try:
        cm = cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="before"), data={"k": "v"}))
        programs, before = _programs(run_dir), k8s_lab.component("kubernetes")
        assert all(len(p) == 1 for p in programs.values()), programs
        # The outage probe's "when did the node agent start" (its kubelet Starting event).
        probe = next(p for p in probes_of(Target.load(k8s_lab.target))
                     if p.platform == "kubernetes")
        assert probe.restarted_at() < time.time()
        killed = time.time()
        os.killpg(before["pid"], signal.SIGKILL)   # the component's whole process group
        # the API keeps serving while the node agent is down: nothing restarted it
        assert cluster.core.read_namespaced_config_map("before", ns).metadata.uid == \
            cm.metadata.uid
        _restarted(k8s_lab, before)
        assert _programs(run_dir) == programs   # the same processes, adopted
        assert sorted(_ready(k8s_lab)["adopted"]) == sorted(programs)
        # the new node agent's watches, the adopted scheduler and the log endpoint work
        assert run_pod(cluster, ns, "after-node-kill") == "after-node-kill\n"
        # The restarted agent recorded its start: a phase that ran across it can tell.
        assert int(killed) <= probe.restarted_at() <= time.time()
    finally:
        k8s.delete_namespace(cluster.core, ns, timeout=TIMEOUT)


def test_a_pod_that_ended_before_a_kill_9_of_the_node_keeps_its_log(k8s_lab, cluster):
    """A pod ended, then the node agent was killed before its log was read (the kill -9 e2e's
    race: the scenario reads a pod's log once it sees it end). While the agent is down the
    apiserver answers the read with its 500 naming the refused kubelet: the outage classifier
    takes it for the node not answering, at the kubernetes platform's address. Once the
    agent is back the log is served again, from disk, as a restarted kubelet serves a
    terminated container's log (it was a 404: the new agent knew only the pods it ran)."""
    from kubernetes.client.exceptions import ApiException

    from fixtures import kubernetes as k8s
    from fixtures.outage.classify import classify
    from fixtures.outage.probes import probe_for_error
    ns = f"vkl-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, ns)
    try:
        assert run_pod(cluster, ns, "ended") == "ended\n"
        before = k8s_lab.component("kubernetes")
        os.killpg(before["pid"], signal.SIGKILL)
        # at once: the supervisor restarts the agent after its first backoff (0.2 s)
        with pytest.raises(ApiException) as down:
            cluster.core.read_namespaced_pod_log("ended", ns)
        # refused, or reset: the apiserver's kept-alive connection to the kubelet went with it
        assert down.value.status == 500 and "10250" in down.value.body, down.value.body
        found = classify(down.value)
        assert found is not None and found.reason in ("connection refused", "connection reset")
        probe = probe_for_error(probes_of(Target.load(k8s_lab.target)), found.addresses)
        assert probe is not None and probe.platform == "kubernetes"
        _restarted(k8s_lab, before)
        assert cluster.core.read_namespaced_pod_log("ended", ns) == "ended\n"
    finally:
        k8s.delete_namespace(cluster.core, ns, timeout=TIMEOUT)

def test_chaos_kill_all_kills_the_control_plane_too_and_etcd_keeps_its_data(k8s_lab, cluster):
    from kubernetes import client

    from fixtures import kubernetes as k8s
    run_dir = k8s_lab.run_dir / "kubernetes"
    ns = f"vkk-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, ns)
    try:
        cm = cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="kept"), data={"answer": "42"}))
        programs, before = _programs(run_dir), k8s_lab.component("kubernetes")
        out = k8s_lab.run("chaos", "kill", "kubernetes", "--all")
        assert out.returncode == 0, out.stderr
        assert "etcd" in out.stdout and "kube-apiserver" in out.stdout, out.stdout
        _restarted(k8s_lab, before)
        after = _programs(run_dir)
        assert all(len(after[n]) == 1 and after[n] != programs[n] for n in programs), \
            (programs, after)
        assert _ready(k8s_lab)["adopted"] == []
        kept = wait_until(lambda: _read_named(cluster, ns, "kept"), TIMEOUT,
                          "the apiserver answering", interval=0.1)
        assert (kept.metadata.uid, kept.data) == (cm.metadata.uid, {"answer": "42"})
        assert run_pod(cluster, ns, "after-kill-all") == "after-kill-all\n"
    finally:
        k8s.delete_namespace(cluster.core, ns, timeout=TIMEOUT)


def _read_named(cluster, ns, name):
    try:
        return cluster.core.read_namespaced_config_map(name, ns)
    except Exception:   # connection refused / 503 while the apiserver starts
        return None


def _sleeper(cluster, ns: str, name: str, policy: str) -> None:
    from kubernetes import client
    cluster.core.create_namespaced_pod(ns, client.V1Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": policy, "containers": [{
            "name": "app", "image": "vancouver/guest",
            "command": ["sh", "-c", f"echo run of {name}; exec sleep 600"]}]}}))


def _running(p) -> bool:
    from fixtures import kubernetes as k8s
    return p is not k8s.GONE and p.status.phase == "Running" and \
        bool(p.status.container_statuses) and p.status.container_statuses[0].state.running


def test_pods_of_a_killed_node_agent_are_restarted_or_failed_per_restart_policy(
        k8s_lab, cluster):
    """kill -9 of the node agent kills its pods' containers; the restarted agent syncs them as
    a restarted kubelet does: Never -> terminated 137 ContainerStatusUnknown, pod Failed;
    Always -> a new container, restartCount 1, lastState the lost run (lab/kubernetes/
    podsync.py)."""
    from fixtures import kubernetes as k8s
    ns = f"vkp-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, ns)
    try:
        _sleeper(cluster, ns, "never", "Never")
        _sleeper(cluster, ns, "always", "Always")
        for name in ("never", "always"):
            k8s.wait_for(cluster.core.list_namespaced_pod, name, _running, TIMEOUT,
                         f"pod {name} Running", namespace=ns)
            wait_until(lambda: cluster.core.read_namespaced_pod_log(name, ns) != "", TIMEOUT,
                       f"pod {name}'s output", interval=0.05)
        before = k8s_lab.component("kubernetes")
        os.killpg(before["pid"], signal.SIGKILL)
        _restarted(k8s_lab, before)
        failed = k8s.wait_for(cluster.core.list_namespaced_pod, "never",
                              lambda p: p is not k8s.GONE and p.status.phase == "Failed",
                              TIMEOUT, "pod never Failed", namespace=ns)
        cs = failed.status.container_statuses[0]
        assert cs.state.terminated.exit_code == 137
        assert cs.state.terminated.reason == "ContainerStatusUnknown"
        assert cs.restart_count == 0 and not cs.ready
        # the lost run's output stays readable, as the container's log on a real node
        assert cluster.core.read_namespaced_pod_log("never", ns) == "run of never\n"
        again = k8s.wait_for(cluster.core.list_namespaced_pod, "always",
                             lambda p: _running(p) and
                             p.status.container_statuses[0].restart_count == 1,
                             TIMEOUT, "pod always Running again", namespace=ns)
        cs = again.status.container_statuses[0]
        assert cs.last_state.terminated.exit_code == 137
        assert cs.last_state.terminated.reason == "ContainerStatusUnknown"
        assert cs.ready
        assert cluster.core.read_namespaced_pod_log("always", ns, previous=True) == \
            "run of always\n"
        # kubelet's events of the new container (before its Running status)
        started = [e for e in k8s.events_for(cluster.core, ns, "always") if e.reason == "Started"]
        assert len(started) == 2, [(e.reason, e.message) for e in started]
    finally:
        k8s.delete_namespace(cluster.core, ns, timeout=TIMEOUT)
