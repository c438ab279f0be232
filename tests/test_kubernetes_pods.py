"""Pods on the lab's node agent, seen through the real apiserver: raw-block PVCs reached through
the Datera data plane, output through `pods/log` (kubectl logs and read_namespaced_pod_log),
phases as a kubelet moves them, CHAP from the node-stage secret (reference kubernetes.md §8.2,
§9.1, §10.5)."""
import base64
import subprocess
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fixtures import kubernetes as k8s
from fixtures.waiters import wait_until
from tests.support.kubernetes_fixtures import cluster, ns, storage_class  # noqa: F401

TIMEOUT = 90
DEV = "/dev/xvda"


def block_pod(name: str, claim: str, script: str, mount: bool = False) -> client.V1Pod:
    c = {"name": "guest", "image": "vancouver/guest", "command": ["sh", "-c", script]}
    if mount:
        c["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    else:
        c["volumeDevices"] = [{"name": "data", "devicePath": DEV}]
    return client.V1Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name,
                                                        "labels": {k8s.DEMO_LABEL: "true"}},
        "spec": {"restartPolicy": "Never", "containers": [c],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}})


def finished(pod) -> bool:
    return pod is not k8s.GONE and pod.status.phase in ("Succeeded", "Failed")


def run_pod(cluster, ns, pod) -> client.V1Pod:
    cluster.core.create_namespaced_pod(ns, pod)
    return k8s.wait_for(cluster.core.list_namespaced_pod, pod.metadata.name, finished, TIMEOUT,
                        f"pod {pod.metadata.name} finished", namespace=ns)


def block_claim(cluster, ns, sc_name, name="vol") -> None:
    cluster.core.create_namespaced_persistent_volume_claim(
        ns, k8s.pvc_body(name, sc_name, "1Gi", block=True))
    k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, name, k8s.pvc_bound,
                 TIMEOUT, f"PVC {name} Bound", namespace=ns)


def test_a_second_pod_reads_back_what_the_first_wrote(cluster, ns, storage_class):
    block_claim(cluster, ns, storage_class({}))
    writer = run_pod(cluster, ns, block_pod("writer", "vol", (
        f"head -c 1048576 /dev/urandom > blob && dd if=blob of={DEV} bs=64k conv=notrunc,fsync "
        f"2>/dev/null && sha256sum < blob")))
    assert writer.status.phase == "Succeeded", cluster.core.read_namespaced_pod_log("writer", ns)
    term = writer.status.container_statuses[0].state.terminated
    assert term.exit_code == 0 and term.reason == "Completed"
    wrote = cluster.core.read_namespaced_pod_log("writer", ns).split()[0]
    cluster.core.delete_namespaced_pod("writer", ns)
    reader = run_pod(cluster, ns, block_pod("reader", "vol", f"head -c 1048576 {DEV} | sha256sum"))
    assert reader.status.phase == "Succeeded"
    read = cluster.core.read_namespaced_pod_log("reader", ns).split()[0]
    assert len(wrote) == 64 and read == wrote


def test_fio_runs_on_the_volume_and_kubectl_logs_shows_it(cluster, ns, storage_class):
    block_claim(cluster, ns, storage_class({"total_iops_max": "500"}))
    pod = run_pod(cluster, ns, block_pod("fio", "vol", (
        f"fio --name=w --filename={DEV} --rw=randwrite --bs=4k --size=8m --runtime=1 "
        "--time_based --ioengine=libaio --output-format=terse --terse-version=3 | cut -d';' -f1-3")))
    assert pod.status.phase == "Succeeded", cluster.core.read_namespaced_pod_log("fio", ns)
    out = subprocess.run([cluster.kubectl or "kubectl", f"--kubeconfig={cluster.kubeconfig}",
                          "logs", "fio", "-n", ns], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    # fio's nbd engine says "fio: connected to NBD server" first: the volume was reached
    # through the Datera data plane, not a local file
    lines = out.strip().splitlines()
    assert lines[0] == "fio: connected to NBD server"
    assert lines[-1].startswith("3;fio-") and lines[-1].endswith(";w")


def test_wrong_chap_secret_keeps_the_pod_creating_with_a_login_failure_event(cluster, ns,
                                                                             storage_class):
    def secret(name, password):
        cluster.core.create_namespaced_secret(ns, client.V1Secret.from_dict({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/iscsi-chap",
            "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in {
                "node.session.auth.username": "ku-chap",
                "node.session.auth.password": password}.items()}}))
    secret("chap-right", "right-secret-123")
    secret("chap-wrong", "wrong-secret-456")
    name = storage_class({"csi.storage.k8s.io/provisioner-secret-name": "chap-right",
               "csi.storage.k8s.io/provisioner-secret-namespace": ns,
               "csi.storage.k8s.io/node-stage-secret-name": "chap-wrong",
               "csi.storage.k8s.io/node-stage-secret-namespace": ns})
    block_claim(cluster, ns, name)
    cluster.core.create_namespaced_pod(ns, block_pod("locked", "vol", "true"))
    failed = wait_until(lambda: [e for e in k8s.events_for(cluster.core, ns, "locked")
                                 if e.reason == "FailedMount"], TIMEOUT, "a FailedMount event",
                        interval=0.3)
    assert failed[0].type == "Warning" and "login" in failed[0].message
    assert "wrong-secret" not in failed[0].message
    pod = cluster.core.read_namespaced_pod("locked", ns)
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.reason == "ContainerCreating"


def test_deleting_a_running_pod_stops_it_and_the_kubelet_removes_it(cluster, ns, storage_class):
    block_claim(cluster, ns, storage_class({}))
    cluster.core.create_namespaced_pod(ns, block_pod("sleeper", "vol", "sleep 300"))
    k8s.wait_for(cluster.core.list_namespaced_pod, "sleeper",
                 lambda p: p is not k8s.GONE and p.status.phase == "Running", TIMEOUT,
                 "pod Running", namespace=ns)
    cluster.core.delete_namespaced_pod("sleeper", ns)   # graceful: the kubelet finishes it
    k8s.wait_for(cluster.core.list_namespaced_pod, "sleeper", k8s.gone, TIMEOUT,
                 "the pod removed", namespace=ns)
