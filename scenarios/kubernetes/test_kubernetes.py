"""Kubernetes under its own Datera tenant (Vancouver-KU): the plan's five steps, endlessly.

Create a volume (a PVC on the StorageClass of a QoS tier: the Datera CSI driver makes app
instance CSI-pvc-<uid>), create a pod that attaches it and writes data, prove the data (a
second pod reads it back, checksums equal) and run fio in a pod, delete the volume (the claim
stays while a pod uses it: kubernetes.io/pvc-protection), delete the pods, and see the PV and
the Datera volume go.

Iterations cycle through the volume modes (MODES): a raw block PVC (`volumeDevices`: the pods
write and read the device) and filesystem PVCs formatted ext4 or xfs by the driver's NodeStage
(the StorageClass's `csi.storage.k8s.io/fstype`; `volumeMounts`: the pods write files and
check them). The report names the mode that ran ("Volume mode"). Every wait is a watch; the namespace (and so everything in it) is deleted
on success, failure and Ctrl-C. Runs unchanged on a real cluster with the real driver.

While the fio pod runs, the Datera cluster's own metrics (dfs_sdk) show the volume's IOPS in
tenant Vancouver-KU: never above the StorageClass's total_iops_max (nor the tenant cap), and
at that cap when it runs alone in the tenant, in every mode (one check: on a filesystem fio
runs O_DIRECT through libaio, as kubestr's check runs it); the report charts both series. The fio step
runs inside a QoS measurement window (fixtures/headroom.py), never beside the performance
piece.
"""
import itertools
import os
import time
import uuid

import pytest
from kubernetes import client

from fixtures import metrics
from fixtures import kubernetes as k8s
from fixtures.datera import tenant_path
from fixtures.headroom import judge_reach
from fixtures.outage import deferrable
from fixtures.target import get_target
from fixtures.workload import DirectionResult, FioJob, FioResult, parse_output

DEV = "/dev/xvda"
MOUNT = "/data"
TIMEOUT = 120
# One per iteration, in turn (each xdist worker starts at another): raw block, then the two
# filesystems the Datera driver formats (reference kubernetes.md §10.3).
MODES = ("block", "ext4", "xfs")
FIO_FILE_SIZE = "64M"      # fio's file on a filesystem volume (a device needs no size)
# On a filesystem, fio as kubestr's storage check runs it: O_DIRECT (the page cache would
# absorb the I/O before the volume sees it) through libaio (psync ignores iodepth: one
# request in flight, short of the cap on a slow path). Without both, the volume's rate is
# no measure of the class's cap.
FS_FIO = ("--ioengine=libaio", "--direct=1")
_iterations = itertools.count()
# The cluster's steady IOPS must be within this fraction of the cap that binds (as the tenancy
# scenario: the lab holds ±1%; the margin is for short runs on a loaded machine).
TOLERANCE = 0.10


@pytest.fixture(scope="session")
def cluster(pytestconfig) -> k8s.Cluster:
    target = get_target(pytestconfig)
    if target is None or "kubernetes" not in target.doc:
        pytest.skip("the target has no kubernetes section")
    return k8s.connect(target)


@pytest.fixture(scope="session")
def classes(request, cluster, demo, run_prefix) -> dict[tuple[str, str], str]:
    """(QoS tier, mode) -> StorageClass: the target's class of the tier for every mode (a
    filesystem PVC gets that class's fstype), or on the lab this worker's own class per
    demo.yaml tier and filesystem, deleted when the worker ends (so no worker deletes a class
    another one provisions from); block PVCs use the tier's plain class."""
    if cluster.storage_classes:
        return {(t, m): sc for t, sc in cluster.storage_classes.items() for m in MODES}
    out = {}
    for name, tier in demo.tiers.items():
        for mode in MODES:
            params = {"total_iops_max": tier.total_iops_max}
            sc = f"{run_prefix}-{name}"
            if mode != "block":
                params["csi.storage.k8s.io/fstype"] = mode
                sc += f"-{mode}"
            k8s.ensure_storage_class(cluster.storage, k8s.storage_class_body(
                sc, cluster.provisioner, params))
            request.addfinalizer(deferrable(
                request.config, lambda sc=sc: k8s.delete_storage_class(cluster.storage, sc),
                f"StorageClass {sc}", ("kubernetes",)))
            out[(name, mode)] = sc
    return out


@pytest.fixture
def mode() -> str:
    """This iteration's volume mode: MODES in turn, each worker starting at its own index."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = int(worker[2:]) if worker[2:].isdigit() else 0
    return MODES[(offset + next(_iterations)) % len(MODES)]


@pytest.fixture
def namespace(request, cluster):
    name = f"vancouver-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, name)
    # A deletion that meets an apiserver outage runs once it is back (fixtures/outage).
    request.addfinalizer(deferrable(
        request.config, lambda: k8s.delete_namespace(cluster.core, name, timeout=TIMEOUT),
        f"namespace {name}", ("kubernetes",)))
    return name


def _pod(name: str, claim: str, script: str, block: bool) -> client.V1Pod:
    """A pod whose one container runs `script` with the claim as device DEV (block) or mounted
    at MOUNT (filesystem)."""
    attach = {"volumeDevices": [{"name": "data", "devicePath": DEV}]} if block \
        else {"volumeMounts": [{"name": "data", "mountPath": MOUNT}]}
    return client.V1Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {k8s.DEMO_LABEL: "true"}},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "guest", "image": "vancouver/guest",
                                 "command": ["sh", "-c", script], **attach}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}})


# What the writer and reader pods run, per mode: the writer prints the sha256 of what it
# wrote, the reader the sha256 of what it reads back (block: the device's first 4 MiB;
# filesystem: the files, checked by name, so a lost or renamed file fails too).
WRITE_BLOCK = (f"head -c 4194304 /dev/urandom > blob && dd if=blob of={DEV} bs=1M "
               "conv=notrunc,fsync 2>/dev/null && sha256sum < blob")
READ_BLOCK = f"head -c 4194304 {DEV} | sha256sum"
WRITE_FILES = (f"mkdir -p {MOUNT}/demo && head -c 4194304 /dev/urandom > {MOUNT}/demo/blob && "
               f"date -u +%FT%TZ > {MOUNT}/demo/written-at && sync && "
               f"cat {MOUNT}/demo/blob {MOUNT}/demo/written-at | sha256sum")
READ_FILES = f"cat {MOUNT}/demo/blob {MOUNT}/demo/written-at | sha256sum"


def _finished(pod) -> bool:
    return pod is not k8s.GONE and pod.status.phase in ("Succeeded", "Failed")


def _why(pod) -> str:
    """How the pod's containers ended: "writer: exit 137 ContainerStatusUnknown (The
    container could not be located ...)" for one the node lost."""
    out = []
    for c in pod.status.container_statuses or []:
        t = c.state.terminated if c.state else None
        if t is not None and t.exit_code != 0:
            out.append(f"{c.name}: exit {t.exit_code} {t.reason or ''}"
                       + (f" ({t.message})" if t.message else ""))
    return "; ".join(out) or "no container failed"


def _run(cluster, ns: str, pod: client.V1Pod, timeout: float, proof=None) -> str:
    cluster.core.create_namespaced_pod(ns, pod)
    if proof is not None:
        proof.happened("pod_started", f"{ns}/{pod.metadata.name}")
    done = k8s.wait_for(cluster.core.list_namespaced_pod, pod.metadata.name, _finished, timeout,
                        f"pod {pod.metadata.name} to finish", namespace=ns)
    log = cluster.core.read_namespaced_pod_log(pod.metadata.name, ns)
    assert done.status.phase == "Succeeded", \
        f"pod {pod.metadata.name} failed ({_why(done)}): {log[-300:]}"
    return log


def _total_iops(api, start: float, end: float, uuid: str | None = None,
                tenant: str | None = None) -> list[tuple[int, float]]:
    """Per-second read+write IOPS (the quantity total_iops_max caps) of one volume or, with
    uuid None, of the whole tenant, from the cluster's metrics (fixtures.metrics)."""
    by_second: dict[int, float] = {}
    for metric in ("iops_read", "iops_write"):
        for t, v in metrics.metric_points(api, metric, uuid, since_s=300, tenant=tenant):
            if start <= t and t + 1 <= end:
                by_second[t] = by_second.get(t, 0.0) + v
    return sorted(by_second.items())


def test_kubernetes(cluster, classes, namespace, mode, demo, qos_windows, proof, datera_admin,
                    datera_settings, datera_tenants):
    ns = namespace
    block = mode == "block"
    tier = sorted(demo.tiers, key=lambda t: demo.tiers[t].total_iops_max)[0]
    sc = classes[(tier, mode)]
    dtenant = tenant_path(cluster.datera_tenant)
    proof.figure("Datera tenant", dtenant)
    proof.figure("StorageClass", f"{sc} ({tier})")

    with proof.step("create a volume (PVC -> Datera app instance)"):
        cluster.core.create_namespaced_persistent_volume_claim(
            ns, k8s.pvc_body("data", sc, f"{demo.volumes.size_gib}Gi", block=block))
        pvc = k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, "data",
                           k8s.pvc_bound, TIMEOUT, "the PVC Bound", namespace=ns)
        pv = cluster.core.read_persistent_volume(pvc.spec.volume_name)
        proof.figure("Datera volume", pv.spec.csi.volume_handle)
        # The mode as the PV records it: Block, or Filesystem with the fstype the provisioner
        # took from the StorageClass (the driver's default, ext4, when the class names none).
        fs = None if block else (pv.spec.csi.fs_type or "ext4")
        proof.figure("Volume mode", "raw block (volumeDevices)" if block else
                     f"filesystem {fs} (volumeMounts at {MOUNT})")
        assert pv.spec.volume_mode == ("Block" if block else "Filesystem")
        if not cluster.storage_classes:   # the lab's class names the fstype of this mode
            assert fs in (None, mode), f"PV formatted {fs}, the StorageClass says {mode}"

    # the pods' writes and reads share the tenant cap: each waits for the QoS checks
    # measuring there (fixtures/headroom.py)
    with proof.step("create a pod with the volume attached; it writes data"), \
            qos_windows.tenant_io(dtenant):
        wrote = _run(cluster, ns, _pod("writer", "data", WRITE_BLOCK if block else WRITE_FILES,
                                       block), TIMEOUT, proof).split()[0]

    with proof.step("a second pod reads the data back"), qos_windows.tenant_io(dtenant):
        read = _run(cluster, ns, _pod("reader", "data", READ_BLOCK if block else READ_FILES,
                                      block), TIMEOUT, proof).split()[0]
        assert read == wrote, f"read back {read[:12]}…, wrote {wrote[:12]}…"
        proof.figure("sha256 (written = read)", wrote[:16])

    # the pod's fio shares the tenant's cap: it takes its turn with the QoS checks measuring
    # there (fixtures/headroom.py); the admission says what this host can be expected to pace
    with qos_windows.qos(demo.tiers[tier].total_iops_max, tenant=dtenant) as admission, \
            proof.step("fio in a pod on the volume"):
        job = FioJob(rw=demo.fio.rw, bs=demo.fio.block_size, iodepth=demo.fio.iodepth,
                     runtime_s=metrics.measured_runtime(demo.fio.runtime_s),
                     size=None if block else FIO_FILE_SIZE,
                     extra=() if block else FS_FIO)
        target = DEV if block else f"{MOUNT}/fio.dat"
        started = time.time()
        out = _run(cluster, ns, _pod("fio", "data", "fio --name=vancouver --filename="
                                     + target + " " + " ".join(job.args()), block),
                   TIMEOUT + job.runtime_s, proof)
        ended = time.time()
        j = parse_output(out)["jobs"][0]
        proof.fio(f"pod fio ({tier})", FioResult(
            device=pv.spec.csi.volume_handle, job=job,
            read=DirectionResult.parse(j.get("read", {})),
            write=DirectionResult.parse(j.get("write", {})), error=int(j.get("error", 0)),
            runtime_ms=int(j.get("job_runtime", 0)), exit_code=0, started=started,
            ended=ended))
        proof.table("Measurement window", [admission.row()])

    with proof.step("Datera metrics: the pod's IOPS in the tenant, at the StorageClass cap"):
        cap = demo.tiers[tier].total_iops_max
        tenant_cap = demo.tenant_qos.total_iops_max
        binding = min(cap, tenant_cap)
        vol_uuid = datera_admin.app_instances.get(pv.spec.csi.volume_handle, tenant=dtenant)[
            "storage_instances"][0]["volumes"][0]["uuid"]
        metrics.steady_points(datera_admin, "iops_write", started, ended, uuid=vol_uuid,
                              tenant=dtenant)   # waits until the cluster rolled up `ended`
        vol = _total_iops(datera_admin, started, ended, uuid=vol_uuid, tenant=dtenant)
        whole = _total_iops(datera_admin, started, ended, tenant=dtenant)
        steady = metrics.busy_seconds(vol, started, ended)
        busy = [t for t, v in vol if v > 0]
        proof.chart(f"{pv.spec.csi.volume_handle} in {dtenant} while the fio pod runs",
                    [(t - started, v) for t, v in vol], [(t - started, v) for t, v in whole],
                    labels=("the pod's volume (read+write IOPS)",
                            f"tenant {cluster.datera_tenant} (all volumes)"),
                    limits={f"StorageClass {sc}": cap, "tenant cap": tenant_cap},
                    change_at=(busy[0] - started) if busy else None)
        vol_median = metrics.median(steady)
        tenant_median = metrics.median(metrics.busy_seconds(whole, started, ended))
        proof.table("Datera metrics (steady seconds, median)", [{
            "volume IOPS": round(vol_median), "tenant IOPS": round(tenant_median),
            "StorageClass cap": cap, "tenant cap": tenant_cap}])
        assert steady, f"no steady seconds of the pod's I/O in {dtenant}'s metrics: {vol}"
        assert vol_median <= (1 + TOLERANCE) * binding, \
            f"volume at {vol_median:.0f} IOPS, above the cap {binding}"
        # At the cap whenever nothing else decides: the volume ran alone in the tenant (the
        # endless demo's other iterations share the tenant cap with it) and the tenant cap
        # left room.
        alone = vol_median >= (1 - TOLERANCE) * tenant_median
        proof.figure("volume IOPS / StorageClass cap", round(vol_median / cap, 2))
        if alone and tenant_median < (1 - TOLERANCE) * tenant_cap:
            # at the cap, or what this host can pace (fixtures/headroom.py)
            judge_reach(admission, [(f"volume on StorageClass {sc}", vol_median, binding)],
                        TOLERANCE, proof)

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
