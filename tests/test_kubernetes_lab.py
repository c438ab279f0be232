"""The lab's Kubernetes against real clients: Debian's kubectl and the official Python client
on the real control plane, and the Datera CSI controller side checked through dfs_sdk
(reference kubernetes.md §8.2, §9.1, §10).

Each test works in a namespace of its own; its PVCs, PVs and Datera volumes are gone after.
"""
import json
import subprocess
import uuid
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fixtures import kubernetes as k8s
from fixtures.waiters import wait_until
from tests.support.kubernetes_fixtures import cluster, dtenant, ns, storage_class  # noqa: F401

EXAMPLES = Path(__file__).resolve().parent.parent / "lab" / "kubernetes" / "examples"
DRIVER = "dsp.csi.daterainc.io"
TIMEOUT = 60


def kubectl(cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = cluster.kubectl or "kubectl"
    return subprocess.run([exe, f"--kubeconfig={cluster.kubeconfig}", *args],
                          capture_output=True, text=True, timeout=TIMEOUT, check=check)


def app_instances(lab_api, tenant: str) -> dict:
    return {ai["name"]: ai for ai in lab_api.app_instances.list(tenant=tenant)}


def bound_pvc(cluster, ns: str, name: str):
    return k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, name,
                        k8s.pvc_bound, TIMEOUT, f"PVC {ns}/{name} Bound", namespace=ns)


def delete_pvc_and_wait_volume_gone(cluster, lab_api, tenant, ns, name, pv_name, handle):
    cluster.core.delete_namespaced_persistent_volume_claim(name, ns)
    k8s.wait_for(cluster.core.list_persistent_volume, pv_name, k8s.gone, TIMEOUT,
                 f"PV {pv_name} deleted")
    assert handle not in app_instances(lab_api, tenant)


# ---- control plane ---------------------------------------------------------------------

def test_kubectl_talks_to_the_real_apiserver(cluster):
    version = json.loads(kubectl(cluster, "version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.20.2"
    nodes = kubectl(cluster, "get", "nodes", "--no-headers").stdout.split()
    assert nodes[:2] == ["kubernetes", "Ready"]


def test_python_client_sees_the_node_lease_csinode_and_csidriver(cluster):
    node = cluster.core.read_node("kubernetes")
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready["Ready"] == "True"
    lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease("kubernetes",
                                                                        "kube-node-lease")
    assert lease.spec.holder_identity == "kubernetes" and lease.spec.lease_duration_seconds == 40
    csinode = cluster.storage.read_csi_node("kubernetes")
    assert [d.name for d in csinode.spec.drivers] == [DRIVER]
    drv = cluster.storage.read_csi_driver(DRIVER)
    assert drv.spec.attach_required is False and drv.spec.pod_info_on_mount is True
    namespaces = {n.metadata.name for n in cluster.core.list_namespace().items}
    assert {"default", "kube-system", "kube-node-lease"} <= namespaces


# ---- provisioning --------------------------------------------------------------------

def test_kubectl_apply_of_the_example_manifests_runs_a_pod_on_a_datera_volume(
        cluster, ns, lab_api, dtenant):
    manifests = [str(EXAMPLES / f) for f in ("datera-storageclass.yaml", "datera-pvc.yaml",
                                             "datera-pod.yaml")]
    kubectl(cluster, "apply", "-n", ns, *(a for m in manifests for a in ("-f", m)))
    try:
        pvc = bound_pvc(cluster, ns, "demo-pvc")
        shown = kubectl(cluster, "get", "pvc", "demo-pvc", "-n", ns, "--no-headers").stdout.split()
        assert shown[:2] == ["demo-pvc", "Bound"] and shown[3] == "1Gi"
        handle = f"CSI-pvc-{pvc.metadata.uid}"
        assert handle in app_instances(lab_api, dtenant)
        pod = k8s.wait_for(cluster.core.list_namespaced_pod, "demo-pod",
                           lambda p: p is not k8s.GONE and p.status.phase in ("Succeeded", "Failed"),
                           TIMEOUT, "the example pod finished", namespace=ns)
        logs = kubectl(cluster, "logs", "demo-pod", "-n", ns).stdout
        assert pod.status.phase == "Succeeded", logs
        assert logs == "hello from datera"
        kubectl(cluster, "delete", "-n", ns, "-f", manifests[2], "-f", manifests[1])
        k8s.wait_for(cluster.core.list_persistent_volume, pvc.spec.volume_name, k8s.gone,
                     TIMEOUT, "the example PV deleted")
        assert handle not in app_instances(lab_api, dtenant)
    finally:
        kubectl(cluster, "delete", "-f", manifests[0], "--ignore-not-found", check=False)


def test_pvc_becomes_a_datera_app_instance_with_all_eight_qos_parameters(
        cluster, ns, storage_class, lab_api, dtenant):
    params = {"read_iops_max": "300", "write_iops_max": "400", "total_iops_max": "5000",
              "read_bandwidth_max": "3000", "write_bandwidth_max": "4000",
              "total_bandwidth_max": "9000", "iops_per_gb": "250", "bandwidth_per_gb": "1000"}
    sc = storage_class(params)
    cluster.core.create_namespaced_persistent_volume_claim(ns, k8s.pvc_body("data", sc, "2Gi"))
    pvc = bound_pvc(cluster, ns, "data")
    handle = f"CSI-pvc-{pvc.metadata.uid}"
    ai = app_instances(lab_api, dtenant)[handle]
    assert ai["create_mode"] == "kubernetes"
    si = ai["storage_instances"][0]
    vol = si["volumes"][0]
    assert (si["name"], vol["name"], vol["size"]) == ("storage-1", "volume-1", 2)
    pol = lab_api.app_instances.get(handle, tenant=dtenant).storage_instances.get(
        "storage-1", tenant=dtenant).volumes.get("volume-1", tenant=dtenant) \
        .performance_policy.get(tenant=dtenant)
    assert {k: pol[k] for k in ("read_iops_max", "write_iops_max", "total_iops_max",
                                "read_bandwidth_max", "write_bandwidth_max",
                                "total_bandwidth_max")} == {
        "read_iops_max": 300, "write_iops_max": 400, "total_iops_max": 500,      # 250/GiB x 2
        "read_bandwidth_max": 3000, "write_bandwidth_max": 4000,
        "total_bandwidth_max": 2000}                                           # 1000/GiB x 2
    delete_pvc_and_wait_volume_gone(cluster, lab_api, dtenant, ns, "data", pvc.spec.volume_name,
                                    handle)


def test_provisioned_pv_carries_the_fields_csi_provisioner_sets(cluster, ns, storage_class,
                                                                 lab_api, dtenant):
    sc = storage_class({"total_iops_max": "1000", "csi.storage.k8s.io/fstype": "xfs"})
    cluster.core.create_namespaced_persistent_volume_claim(ns, k8s.pvc_body("small", sc, "500Mi"))
    pvc = bound_pvc(cluster, ns, "small")
    pv = cluster.core.read_persistent_volume(pvc.spec.volume_name)
    assert pv.metadata.name == f"pvc-{pvc.metadata.uid}"
    assert pv.metadata.annotations["pv.kubernetes.io/provisioned-by"] == DRIVER
    assert "kubernetes.io/pv-protection" in pv.metadata.finalizers
    assert pv.spec.capacity["storage"] == "16Gi"            # under 1 GiB: DefaultSize
    assert pvc.status.capacity["storage"] == "16Gi"
    assert pv.spec.access_modes == ["ReadWriteOnce"]
    assert pv.spec.persistent_volume_reclaim_policy == "Delete"
    assert pv.spec.storage_class_name == sc and pv.spec.volume_mode == "Filesystem"
    ref = pv.spec.claim_ref
    assert (ref.kind, ref.namespace, ref.name, ref.uid) == ("PersistentVolumeClaim", ns, "small",
                                                            pvc.metadata.uid)
    assert pv.spec.csi.driver == DRIVER and pv.spec.csi.fs_type == "xfs"
    assert pv.spec.csi.volume_handle == f"CSI-pvc-{pvc.metadata.uid}"
    ident = pv.spec.csi.volume_attributes["storage.kubernetes.io/csiProvisionerIdentity"]
    assert ident.endswith(f"-{DRIVER}")
    assert pv.status.phase == "Bound"
    reasons = [e.reason for e in k8s.events_for(cluster.core, ns, "small")]
    assert "Provisioning" in reasons and "ProvisioningSucceeded" in reasons
    assert app_instances(lab_api, dtenant)[pv.spec.csi.volume_handle][
        "storage_instances"][0]["volumes"][0]["size"] == 16
    delete_pvc_and_wait_volume_gone(cluster, lab_api, dtenant, ns, "small", pv.metadata.name,
                                    pv.spec.csi.volume_handle)


def test_malformed_parameter_is_refused_as_the_driver_refuses_it(cluster, ns, storage_class,
                                                                 lab_api, dtenant):
    sc = storage_class({"total_iops_max": "lots"})
    cluster.core.create_namespaced_persistent_volume_claim(ns, k8s.pvc_body("bad", sc, "1Gi"))
    want = (f'failed to provision volume with StorageClass "{sc}": rpc error: code = '
            'InvalidArgument desc = strconv.ParseInt: parsing "lots": invalid syntax')
    # Events have no watchable name of their own here: poll the PVC's events.
    failed = wait_until(lambda: [e for e in k8s.events_for(cluster.core, ns, "bad")
                                 if e.reason == "ProvisioningFailed"], TIMEOUT,
                        "a ProvisioningFailed event", interval=0.3)
    assert failed[0].type == "Warning" and failed[0].message == want
    pvc = cluster.core.read_namespaced_persistent_volume_claim("bad", ns)
    assert pvc.status.phase == "Pending" and not pvc.spec.volume_name
    assert not [n for n in app_instances(lab_api, dtenant) if pvc.metadata.uid in n]


def test_deleting_a_pvc_in_use_waits_for_the_pod(cluster, ns, storage_class, lab_api, dtenant):
    """kubernetes.io/pvc-protection (the real controller-manager) holds the claim while a pod
    that uses it exists; its removal then deletes PV and Datera volume."""
    sc = storage_class({})
    cluster.core.create_namespaced_persistent_volume_claim(ns, k8s.pvc_body("used", sc, "1Gi"))
    pvc = bound_pvc(cluster, ns, "used")
    cluster.core.create_namespaced_pod(ns, client.V1Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "used"}}]}}))
    k8s.wait_for(cluster.core.list_namespaced_pod, "user",
                 lambda p: p is not k8s.GONE and p.spec.node_name == "kubernetes", TIMEOUT,
                 "pod scheduled", namespace=ns)
    cluster.core.delete_namespaced_persistent_volume_claim("used", ns)
    held = cluster.core.read_namespaced_persistent_volume_claim("used", ns)
    assert held.metadata.deletion_timestamp is not None
    assert k8s.PVC_PROTECTION in held.metadata.finalizers and held.status.phase == "Bound"
    handle = f"CSI-pvc-{pvc.metadata.uid}"
    assert handle in app_instances(lab_api, dtenant)
    cluster.core.delete_namespaced_pod("user", ns, body=client.V1DeleteOptions(
        grace_period_seconds=0))
    k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, "used", k8s.gone,
                 TIMEOUT, "PVC gone after the pod", namespace=ns)
    k8s.wait_for(cluster.core.list_persistent_volume, pvc.spec.volume_name, k8s.gone, TIMEOUT,
                 "PV deleted")
    assert handle not in app_instances(lab_api, dtenant)
