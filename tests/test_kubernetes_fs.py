"""Filesystem PVCs and multi-container pods on the lab's node agent, through the real apiserver
(reference kubernetes.md §9.1, §10.3-10.5; the Datera driver's NodeStage formats with mkfs
and mounts, NodePublish bind-mounts; kubelet's getPhase and container statuses).

Files a pod writes are checked on the Datera volume itself: after the pods are done, a test
initiator logs in to the volume's target and reads it through the data plane (nbdfuse, then
blkid and debugfs, Debian's e2fsprogs), not through the node agent.
"""
import shutil
import subprocess
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from clients import initiator, ports
from fixtures import kubernetes as k8s
from fixtures.waiters import wait_until
from tests.support.kubernetes_fixtures import cluster, dtenant, ns, storage_class  # noqa: F401

TIMEOUT = 120
NODE_IQN = "iqn.1993-08.org.debian:01:vancouver-kubernetes"


def pod_body(name: str, containers: list[dict], volumes: list[dict],
             init: list[dict] | None = None) -> client.V1Pod:
    spec = {"restartPolicy": "Never", "containers": containers, "volumes": volumes}
    if init:
        spec["initContainers"] = init
    return client.V1Pod.from_dict({"apiVersion": "v1", "kind": "Pod",
                                   "metadata": {"name": name, "labels": {k8s.DEMO_LABEL: "true"}},
                                   "spec": spec})


def sh(name: str, script: str, mounts: dict[str, str] | None = None) -> dict:
    c = {"name": name, "image": "vancouver/guest", "command": ["sh", "-c", script]}
    if mounts:
        c["volumeMounts"] = [{"name": v, "mountPath": p} for v, p in mounts.items()]
    return c


def claim_volume(claim: str) -> dict:
    return {"name": "data", "persistentVolumeClaim": {"claimName": claim}}


def finished(pod) -> bool:
    return pod is not k8s.GONE and pod.status.phase in ("Succeeded", "Failed")


def run_pod(cluster, ns, pod) -> client.V1Pod:
    cluster.core.create_namespaced_pod(ns, pod)
    return k8s.wait_for(cluster.core.list_namespaced_pod, pod.metadata.name, finished, TIMEOUT,
                        f"pod {pod.metadata.name} finished", namespace=ns)


def log(cluster, ns, pod, container=None) -> str:
    kw = {"container": container} if container else {}
    return cluster.core.read_namespaced_pod_log(pod, ns, **kw)


def fs_claim(cluster, ns, sc_name, name="vol"):
    cluster.core.create_namespaced_persistent_volume_claim(
        ns, k8s.pvc_body(name, sc_name, "1Gi"))
    pvc = k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, name,
                       k8s.pvc_bound, TIMEOUT, f"PVC {name} Bound", namespace=ns)
    return cluster.core.read_persistent_volume(pvc.spec.volume_name)


def read_through_data_plane(lab_api, tenant: str, handle: str, tmp_path, fn):
    """Waits until the node has unstaged the volume (its initiator left the ACL), logs in as a
    test initiator, exposes the LUN as a file with nbdfuse and returns fn(path)."""
    ai = lab_api.app_instances.get(handle, tenant=tenant)
    si = ai.storage_instances.list(tenant=tenant)[0]
    wait_until(lambda: not any(i["path"].endswith(NODE_IQN) for i in
                               si.reload(tenant=tenant)["acl_policy"]["initiators"]),
               TIMEOUT, "the node to unstage the volume", interval=0.2)
    iqn = f"iqn.2026-11.test:{uuid.uuid4().hex[:12]}"
    lab_api.initiators.create(id=iqn, name=f"vkf-{iqn[-12:]}", force=True, tenant=tenant)
    si.acl_policy.set(tenant=tenant, initiators=[{"path": f"/initiators/{iqn}"}])
    si = si.reload(tenant=tenant)
    lun = initiator.login(si["access"]["ips"][0], ports.ISCSI, iqn, si["access"]["iqn"])[0]
    mnt = tmp_path / "lun"
    mnt.mkdir()
    pidfile = tmp_path / "nbdfuse.pid"
    proc = subprocess.Popen(["nbdfuse", "-P", str(pidfile), str(mnt), lun.uri],
                            stderr=subprocess.PIPE)
    try:
        wait_until(lambda: pidfile.exists() or proc.poll() is not None, 30, "nbdfuse mounted",
                   interval=0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        return fn(mnt / "nbd")
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)
        proc.wait(10)
        si.acl_policy.set(tenant=tenant, initiators=[])
        lab_api.initiators.get(iqn, tenant=tenant).delete(tenant=tenant)


@pytest.mark.parametrize("fs", ["ext4", "xfs"])
def test_a_filesystem_pvc_is_formatted_mounted_and_its_files_land_on_the_datera_volume(
        cluster, ns, storage_class, lab_api, dtenant, tmp_path, fs):
    if not shutil.which(f"mkfs.{fs}"):
        pytest.skip(f"mkfs.{fs} is not installed (make setup installs it)")
    pv = fs_claim(cluster, ns, storage_class({"csi.storage.k8s.io/fstype": fs}))
    assert pv.spec.csi.fs_type == fs and pv.spec.volume_mode == "Filesystem"
    handle = pv.spec.csi.volume_handle
    writer = run_pod(cluster, ns, pod_body("writer", [sh("app", (
        "echo hello from datera > /data/hello.txt && mkdir -p /data/d && "
        "head -c 1048576 /dev/urandom > /data/d/blob && sync && sha256sum /data/d/blob "
        "| cut -c1-64"), {"data": "/data"})], [claim_volume("vol")]))
    assert writer.status.phase == "Succeeded", log(cluster, ns, "writer")
    wrote = log(cluster, ns, "writer").split()[0]
    md = lab_api.app_instances.get(handle, tenant=dtenant).metadata.get(tenant=dtenant)
    assert md["formatted"] == "true" and md["fs_type"] == fs
    # a second pod mounts the same filesystem (NodeStage must not format it again)
    reader = run_pod(cluster, ns, pod_body("reader", [sh("app", (
        "cat /data/hello.txt && sha256sum /data/d/blob | cut -c1-64"), {"data": "/data"})],
        [claim_volume("vol")]))
    assert reader.status.phase == "Succeeded", log(cluster, ns, "reader")
    assert log(cluster, ns, "reader").split("\n")[:2] == ["hello from datera", wrote]

    def inspect(path):
        blkid = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", str(path)],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        cat = None
        if fs == "ext4":
            cat = subprocess.run(["debugfs", "-R", "cat /hello.txt", str(path)],
                                 capture_output=True, text=True, timeout=60).stdout
        return blkid, cat

    blkid, cat = read_through_data_plane(lab_api, dtenant, handle, tmp_path, inspect)
    assert blkid == fs
    if fs == "ext4":
        assert cat == "hello from datera\n"


def test_an_unsupported_fstype_fails_provisioning_as_the_driver_refuses_it(cluster, ns,
                                                                           storage_class):
    name = storage_class({"csi.storage.k8s.io/fstype": "btrfs"})
    cluster.core.create_namespaced_persistent_volume_claim(ns, k8s.pvc_body("fsvol", name, "1Gi"))
    failed = wait_until(lambda: [e for e in k8s.events_for(cluster.core, ns, "fsvol")
                                 if e.reason == "ProvisioningFailed"], TIMEOUT,
                        "a ProvisioningFailed event", interval=0.3)
    assert failed[0].message == (
        f'failed to provision volume with StorageClass "{name}": rpc error: code = '
        "InvalidArgument desc = Unsupported filesystem type: btrfs, supported types :re "
        "[ext4 xfs]")
    assert cluster.core.read_namespaced_persistent_volume_claim("fsvol", ns).status.phase == "Pending"
    # a raw block claim on the same class has no filesystem to refuse
    cluster.core.create_namespaced_persistent_volume_claim(
        ns, k8s.pvc_body("blockvol", name, "1Gi", block=True))
    k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, "blockvol", k8s.pvc_bound,
                 TIMEOUT, "the block PVC Bound", namespace=ns)


def test_an_unsupported_fstype_on_a_pv_gives_the_failed_mount_event(cluster, ns, lab_api,
                                                                    dtenant):
    """A pre-provisioned PV (an existing Datera volume) whose fsType the driver does not
    support: NodeStage's RegisterVolumeCapability refuses it, the pod stays ContainerCreating."""
    handle = f"CSI-static-{uuid.uuid4().hex[:8]}"
    lab_api.app_instances.create(tenant=dtenant, name=handle, create_mode="kubernetes",
                                 storage_instances=[{"name": "storage-1", "volumes": [
                                     {"name": "volume-1", "size": 1, "replica_count": 1}]}])
    pv_name = f"vkf-static-{handle[-8:]}"
    try:
        cluster.core.create_persistent_volume(client.V1PersistentVolume.from_dict({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "labels": {k8s.DEMO_LABEL: "true"}},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                     "volumeMode": "Filesystem",
                     "claimRef": {"namespace": ns, "name": "static"},
                     "csi": {"driver": cluster.provisioner, "volumeHandle": handle,
                             "fsType": "vfat"}}}))
        cluster.core.create_namespaced_persistent_volume_claim(ns, client.V1PersistentVolumeClaim.from_dict({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "static"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "volumeName": pv_name, "resources": {"requests": {"storage": "1Gi"}}}}))
        k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, "static",
                     k8s.pvc_bound, TIMEOUT, "the static PVC Bound", namespace=ns)
        cluster.core.create_namespaced_pod(ns, pod_body("stuck", [sh("app", "true",
                                                                     {"data": "/data"})],
                                                        [claim_volume("static")]))
        failed = wait_until(lambda: [e for e in k8s.events_for(cluster.core, ns, "stuck")
                                     if e.reason == "FailedMount"], TIMEOUT,
                            "a FailedMount event", interval=0.3)
        assert failed[0].type == "Warning"
        assert failed[0].message == (
            f'MountVolume.MountDevice failed for volume "{pv_name}" : rpc error: code = '
            "InvalidArgument desc = Unsupported filesystem type: vfat, supported types :re "
            "[ext4 xfs]")
        pod = cluster.core.read_namespaced_pod("stuck", ns)
        assert pod.status.phase == "Pending"
        assert pod.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    finally:
        k8s.delete_namespace(cluster.core, ns, timeout=TIMEOUT)
        try:
            cluster.core.delete_persistent_volume(pv_name)
        except ApiException:
            pass
        lab_api.app_instances.get(handle, tenant=dtenant).delete(tenant=dtenant, force=True)


def test_every_container_runs_after_the_init_containers_and_reports_its_status(cluster, ns,
                                                                               storage_class):
    fs_claim(cluster, ns, storage_class({"csi.storage.k8s.io/fstype": "ext4"}))
    scratch = {"name": "scratch", "emptyDir": {}}
    pod = run_pod(cluster, ns, pod_body(
        "multi",
        init=[sh("init-a", "echo from-init > /work/seed", {"scratch": "/work"}),
              sh("init-b", "cat /work/seed > /data/seed", {"scratch": "/work", "data": "/data"})],
        containers=[sh("writer", "cp /data/seed /data/copy && sync && echo wrote",
                       {"data": "/data"}),
                    sh("reader", "cat /work/seed", {"scratch": "/work"}),
                    sh("failing", "echo bad; exit 3")],
        volumes=[claim_volume("vol"), scratch]))
    # restartPolicy Never and one container failed: the pod is Failed, the others Completed
    assert pod.status.phase == "Failed"
    assert [c.name for c in pod.status.container_statuses] == ["failing", "reader", "writer"]
    terms = {c.name: c.state.terminated for c in pod.status.container_statuses}
    assert (terms["failing"].exit_code, terms["failing"].reason) == (3, "Error")
    assert all((terms[n].exit_code, terms[n].reason) == (0, "Completed")
               for n in ("reader", "writer"))
    assert [(c.name, c.state.terminated.reason) for c in pod.status.init_container_statuses] \
        == [("init-a", "Completed"), ("init-b", "Completed")]
    conds = {c.type: c for c in pod.status.conditions}
    assert conds["Initialized"].status == "True"
    assert conds["Ready"].status == "False" and conds["Ready"].reason == "PodCompleted"
    assert log(cluster, ns, "multi", "reader") == "from-init\n"
    assert log(cluster, ns, "multi", "writer") == "wrote\n"
    assert log(cluster, ns, "multi", "failing") == "bad\n"
    with pytest.raises(ApiException) as e:   # the apiserver wants a container name
        log(cluster, ns, "multi")
    assert e.value.status == 400 and "a container name must be specified" in e.value.body


def test_containers_run_together_and_a_failed_init_container_stops_the_pod(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod_body(
        "pair", [sh("a", "sleep 300"), sh("b", "sleep 300")], []))
    running = k8s.wait_for(
        cluster.core.list_namespaced_pod, "pair",
        lambda p: p is not k8s.GONE and p.status.phase == "Running"
        and all(c.ready for c in p.status.container_statuses or []), TIMEOUT,
        "both containers running", namespace=ns)
    assert [c.name for c in running.status.container_statuses] == ["a", "b"]
    assert all(c.state.running is not None for c in running.status.container_statuses)
    assert {c.type: c.status for c in running.status.conditions}["Ready"] == "True"
    cluster.core.delete_namespaced_pod("pair", ns)
    failed = run_pod(cluster, ns, pod_body(
        "badinit", [sh("main", "echo never")], [], init=[sh("setup", "exit 1")]))
    assert failed.status.phase == "Failed"
    assert failed.status.init_container_statuses[0].state.terminated.exit_code == 1
    main = failed.status.container_statuses[0]
    assert main.state.waiting is not None and main.state.waiting.reason == "PodInitializing"
    init = {c.type: c for c in failed.status.conditions}["Initialized"]
    assert init.status == "False" and init.reason == "ContainersNotInitialized"
    assert init.message == "containers with incomplete status: [setup]"
