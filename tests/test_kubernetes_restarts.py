"""Container restarts on the lab's node agent as kubelet 1.20 makes them, seen through the real
apiserver and kubectl: restartPolicy OnFailure and Always, restartCount, lastState,
CrashLoopBackOff with its "back-off 10s" message and BackOff event, and `kubectl logs
--previous` (lab/kubernetes/pods.py, podstatus.py)."""
import subprocess
import uuid

import pytest
from kubernetes import client

from fixtures import kubernetes as k8s
from tests.support.kubernetes_fixtures import cluster  # noqa: F401  (fixtures)

TIMEOUT = 90
# Counts its runs in an emptyDir (which outlives a container restart, as on a real node)
# and fails until its third run.
THIRD_TIME_LUCKY = ("n=$(cat /work/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /work/n; "
                    "echo run $n; [ $n -ge 3 ]")


@pytest.fixture
def ns(cluster):
    name = f"vkr-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, name)
    yield name
    k8s.delete_namespace(cluster.core, name)


def pod(name: str, policy: str, script: str, init: str | None = None) -> client.V1Pod:
    def container(cname, cmd):
        return {"name": cname, "image": "vancouver/guest", "command": ["sh", "-c", cmd],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}]}
    spec = {"restartPolicy": policy, "containers": [container("app", script)],
            "volumes": [{"name": "work", "emptyDir": {}}]}
    if init:
        spec["initContainers"] = [container("setup", init)]
    return client.V1Pod.from_dict({"apiVersion": "v1", "kind": "Pod",
                                   "metadata": {"name": name,
                                                "labels": {k8s.DEMO_LABEL: "true"}},
                                   "spec": spec})


def status_of(p, init=False):
    if p is k8s.GONE:
        return None
    statuses = p.status.init_container_statuses if init else p.status.container_statuses
    return statuses[0] if statuses else None


def kubectl(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([cluster.kubectl or "kubectl", f"--kubeconfig={cluster.kubeconfig}",
                           *args], capture_output=True, text=True, timeout=TIMEOUT)


def test_on_failure_restarts_a_failed_container_until_it_succeeds(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod("lucky", "OnFailure", THIRD_TIME_LUCKY))
    # run 1 fails: restarted at once; run 2 fails: CrashLoopBackOff for 10 s; run 3 succeeds
    waiting = k8s.wait_for(
        cluster.core.list_namespaced_pod, "lucky",
        lambda p: (s := status_of(p)) is not None and s.state.waiting is not None
        and s.state.waiting.reason == "CrashLoopBackOff", TIMEOUT, "CrashLoopBackOff",
        namespace=ns)
    s = status_of(waiting)
    assert waiting.status.phase == "Running"      # a restarting container keeps the pod up
    assert s.restart_count == 1 and s.last_state.terminated.exit_code == 1
    assert s.state.waiting.message.startswith("back-off 10s restarting failed container=app "
                                              f"pod=lucky_{ns}(")
    # through the backoff the log is still the run that just failed (kubelet's last container)
    assert cluster.core.read_namespaced_pod_log("lucky", ns) == "run 2\n"
    done = k8s.wait_for(cluster.core.list_namespaced_pod, "lucky",
                        lambda p: p is not k8s.GONE and p.status.phase == "Succeeded",
                        TIMEOUT, "pod Succeeded", namespace=ns)
    s = status_of(done)
    assert s.restart_count == 2 and s.state.terminated.exit_code == 0
    assert s.last_state.terminated.exit_code == 1 and s.last_state.terminated.reason == "Error"
    # the log is the current run's; --previous is the one before (kubelet keeps one)
    assert cluster.core.read_namespaced_pod_log("lucky", ns) == "run 3\n"
    prev = kubectl(cluster, "logs", "--previous", "-n", ns, "lucky")
    assert prev.returncode == 0 and prev.stdout == "run 2\n", prev.stderr
    reasons = [e.reason for e in k8s.events_for(cluster.core, ns, "lucky")]
    assert "BackOff" in reasons


def test_always_restarts_even_a_clean_exit_and_backs_off(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod("loop", "Always", "echo tick; exit 0"))
    looping = k8s.wait_for(
        cluster.core.list_namespaced_pod, "loop",
        lambda p: (s := status_of(p)) is not None and s.restart_count >= 1
        and s.state.waiting is not None and s.state.waiting.reason == "CrashLoopBackOff",
        TIMEOUT, "CrashLoopBackOff after a clean exit", namespace=ns)
    s = status_of(looping)
    assert looping.status.phase == "Running"
    assert s.last_state.terminated.exit_code == 0
    assert s.last_state.terminated.reason == "Completed"
    assert not s.ready


def test_never_leaves_a_failed_container_terminated_and_has_no_previous_log(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod("once", "Never", "echo once; exit 3"))
    done = k8s.wait_for(cluster.core.list_namespaced_pod, "once",
                        lambda p: p is not k8s.GONE and p.status.phase == "Failed", TIMEOUT,
                        "pod Failed", namespace=ns)
    s = status_of(done)
    assert s.restart_count == 0 and s.state.terminated.exit_code == 3
    assert s.last_state.terminated is None
    prev = kubectl(cluster, "logs", "--previous", "-n", ns, "once")
    assert prev.returncode != 0
    assert 'previous terminated container "app" in pod "once" not found' in prev.stderr


def test_a_failed_init_container_is_restarted_under_on_failure(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod("init", "OnFailure", "cat /work/n",
                                               init=THIRD_TIME_LUCKY))
    done = k8s.wait_for(cluster.core.list_namespaced_pod, "init",
                        lambda p: p is not k8s.GONE and p.status.phase == "Succeeded",
                        TIMEOUT, "pod Succeeded", namespace=ns)
    assert status_of(done, init=True).restart_count == 2
    assert cluster.core.read_namespaced_pod_log("init", ns) == "3\n"
