"""Kubernetes under its own Datera tenant (Vancouver-KU): the plan's five steps, endlessly.

Create a volume (a raw-block PVC on the StorageClass of a QoS tier: the Datera CSI driver makes
app instance CSI-pvc-<uid>), create a pod that attaches it and writes data, prove the data (a
second pod reads it back, checksums equal) and run fio in a pod, delete the volume (the claim
stays while a pod uses it: kubernetes.io/pvc-protection), delete the pods, and see the PV and
the Datera volume go. Every wait is a watch; the namespace (and so everything in it) is deleted
on success, failure and Ctrl-C. Runs unchanged on a real cluster with the real driver.
"""
import time
import uuid

import pytest
from kubernetes import client

from fixtures import kubernetes as k8s
from fixtures.target import get_target
from fixtures.workload import DirectionResult, FioJob, FioResult, parse_output

DEV = "/dev/xvda"
TIMEOUT = 120


@pytest.fixture(scope="module")
def cluster(pytestconfig) -> k8s.Cluster:
    target = get_target(pytestconfig)
    if target is None or "kubernetes" not in target.doc:
        pytest.skip("the target has no kubernetes section")
    return k8s.connect(target)


@pytest.fixture(scope="module")
def classes(cluster, demo) -> dict[str, str]:
    """QoS tier -> StorageClass: the target's, or one per demo.yaml tier (idempotent)."""
    if cluster.storage_classes:
        return dict(cluster.storage_classes)
    out = {}
    for name, tier in demo.tiers.items():
        sc = f"vancouver-{name}"
        k8s.ensure_storage_class(cluster.storage, k8s.storage_class_body(
            sc, cluster.provisioner, {"total_iops_max": tier.total_iops_max}))
        out[name] = sc
    return out


@pytest.fixture
def namespace(cluster):
    name = f"vancouver-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, name)
    try:
        yield name
    finally:
        k8s.delete_namespace(cluster.core, name, timeout=TIMEOUT)


def _pod(name: str, claim: str, script: str) -> client.V1Pod:
    return client.V1Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {k8s.DEMO_LABEL: "true"}},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "guest", "image": "vancouver/guest",
                                 "command": ["sh", "-c", script],
                                 "volumeDevices": [{"name": "data", "devicePath": DEV}]}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}})


def _finished(pod) -> bool:
    return pod is not k8s.GONE and pod.status.phase in ("Succeeded", "Failed")


def _run(cluster, ns: str, pod: client.V1Pod, timeout: float, proof=None) -> str:
    cluster.core.create_namespaced_pod(ns, pod)
    if proof is not None:
        proof.happened("pod_started", f"{ns}/{pod.metadata.name}")
    done = k8s.wait_for(cluster.core.list_namespaced_pod, pod.metadata.name, _finished, timeout,
                        f"pod {pod.metadata.name} to finish", namespace=ns)
    log = cluster.core.read_namespaced_pod_log(pod.metadata.name, ns)
    assert done.status.phase == "Succeeded", f"pod {pod.metadata.name} failed: {log[-300:]}"
    return log


def test_kubernetes(cluster, classes, namespace, demo, qos_windows, proof):
    ns = namespace
    tier = sorted(demo.tiers, key=lambda t: demo.tiers[t].total_iops_max)[0]
    proof.figure("Datera tenant", f"/root/{cluster.datera_tenant}")
    proof.figure("StorageClass", f"{classes[tier]} ({tier})")

    with proof.step("create a volume (PVC -> Datera app instance)"):
        cluster.core.create_namespaced_persistent_volume_claim(
            ns, k8s.pvc_body("data", classes[tier], f"{demo.volumes.size_gib}Gi", block=True))
        pvc = k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, "data",
                           k8s.pvc_bound, TIMEOUT, "the PVC Bound", namespace=ns)
        pv = cluster.core.read_persistent_volume(pvc.spec.volume_name)
        proof.figure("Datera volume", pv.spec.csi.volume_handle)

    with proof.step("create a pod with the volume attached; it writes data"):
        wrote = _run(cluster, ns, _pod("writer", "data", (
            f"head -c 4194304 /dev/urandom > blob && dd if=blob of={DEV} bs=1M conv=notrunc,fsync"
            " 2>/dev/null && sha256sum < blob")), TIMEOUT, proof).split()[0]

    with proof.step("a second pod reads the data back"):
        read = _run(cluster, ns, _pod("reader", "data", f"head -c 4194304 {DEV} | sha256sum"),
                    TIMEOUT, proof).split()[0]
        assert read == wrote, f"read back {read[:12]}…, wrote {wrote[:12]}…"
        proof.figure("sha256 (written = read)", wrote[:16])

    # the pod's fio shares the tenant's cap: it takes its turn with the QoS checks measuring
    # there (fixtures/headroom.py)
    with qos_windows.qos(demo.tiers[tier].total_iops_max,
                         tenant=f"/root/{cluster.datera_tenant}"):
        with proof.step("fio in a pod on the volume"):
            job = FioJob(rw=demo.fio.rw, bs=demo.fio.block_size, iodepth=demo.fio.iodepth,
                         runtime_s=demo.fio.runtime_s)
            started = time.time()
            out = _run(cluster, ns, _pod("fio", "data", "fio --name=vancouver --filename="
                                         + DEV + " " + " ".join(job.args())),
                       TIMEOUT + demo.fio.runtime_s, proof)
            j = parse_output(out)["jobs"][0]
            proof.fio(f"pod fio ({tier})", FioResult(
                device=pv.spec.csi.volume_handle, job=job,
                read=DirectionResult.parse(j.get("read", {})),
                write=DirectionResult.parse(j.get("write", {})), error=int(j.get("error", 0)),
                runtime_ms=int(j.get("job_runtime", 0)), exit_code=0, started=started,
                ended=time.time()))

    with proof.step("delete the volume (held while pods use it)"):
        cluster.core.delete_namespaced_persistent_volume_claim("data", ns)
        held = cluster.core.read_namespaced_persistent_volume_claim("data", ns)
        assert held.metadata.deletion_timestamp is not None

    with proof.step("delete the pods; PV and Datera volume go"):
        for name in ("writer", "reader", "fio"):
            cluster.core.delete_namespaced_pod(name, ns)
            proof.happened("pod_removed", f"{ns}/{name}")
        k8s.wait_for(cluster.core.list_persistent_volume, pv.metadata.name, k8s.gone, TIMEOUT,
                     f"PV {pv.metadata.name} deleted")
