"""Cleanup learns Kubernetes: orphaned Datera CSI volumes (CSI-pvc-* in Vancouver-KU that no PV
or PVC owns) are found and deleted, live ones are left alone; and a kill -9 of an endless
`-n 2 --count=0` Kubernetes run, then `python -m fixtures.cleanup --delete`, leaves no demo
namespace, pod, PVC, PV or CSI-pvc volume (checked with the kubernetes client and dfs_sdk)."""
import os
import signal
import subprocess
import sys
import uuid

import pytest
from kubernetes.client.exceptions import ApiException

from fixtures import kubernetes as k8s
from fixtures.waiters import wait_until
from tests.support import inner_run
from tests.support.labcli import REPO
from tests.support.kubernetes_fixtures import cluster, dtenant  # noqa: F401  (fixtures)

TIMEOUT = 120


def _make_ai(lab_api, tenant: str, name: str) -> None:
    lab_api.app_instances.create(tenant=tenant, name=name, create_mode="kubernetes",
                                 storage_instances=[{"name": "storage-1", "volumes": [
                                     {"name": "volume-1", "size": 1, "replica_count": 1}]}])


def test_orphaned_csi_volumes_are_swept_and_owned_ones_kept(cluster, target, lab_api, dtenant):
    ns = f"vkc-{uuid.uuid4().hex[:8]}"
    sc = f"vkc-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, ns)
    orphan = f"CSI-pvc-{uuid.uuid4()}"
    pending = None
    try:
        k8s.ensure_storage_class(cluster.storage, k8s.storage_class_body(
            sc, cluster.provisioner, {}))
        k8s.ensure_storage_class(cluster.storage, k8s.storage_class_body(
            sc + "-bad", cluster.provisioner, {"replica_count": "three"}))
        cluster.core.create_namespaced_persistent_volume_claim(
            ns, k8s.pvc_body("live", sc, "1Gi", block=True))
        live = k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, "live",
                            k8s.pvc_bound, TIMEOUT, "PVC live Bound", namespace=ns)
        owned = cluster.core.read_persistent_volume(live.spec.volume_name).spec.csi.volume_handle
        # a claim still Pending: its volume may exist before its PV (mid-provisioning)
        cluster.core.create_namespaced_persistent_volume_claim(
            ns, k8s.pvc_body("pending", sc + "-bad", "1Gi", block=True))
        uid = cluster.core.read_namespaced_persistent_volume_claim("pending", ns).metadata.uid
        pending = f"CSI-pvc-{uid}"
        _make_ai(lab_api, dtenant, orphan)
        _make_ai(lab_api, dtenant, pending)
        sweeper = k8s.KubernetesSweeper(target)
        found = {i.name: i for i in sweeper.find() if i.kind == "orphaned_csi_volume"}
        assert orphan in found and found[orphan].where == dtenant
        assert owned not in found and pending not in found
        sweeper.delete(found[orphan])
        names = {ai["name"] for ai in lab_api.app_instances.list(tenant=dtenant)}
        assert orphan not in names and owned in names and pending in names
    finally:
        k8s.delete_namespace(cluster.core, ns, timeout=TIMEOUT)
        for name in (sc, sc + "-bad"):
            try:
                cluster.storage.delete_storage_class(name)
            except ApiException:
                pass
        for name in (orphan, pending):
            if name:
                k8s_left = [ai for ai in lab_api.app_instances.list(tenant=dtenant)
                            if ai["name"] == name]
                for ai in k8s_left:
                    ai.delete(tenant=dtenant, force=True)


def _demo_left(cluster, lab_api, dtenant) -> list[str]:
    """Demo namespaces, the pods and PVCs in them, PVs claimed from them, and CSI volumes in the
    cluster's Datera tenant."""
    left = []
    demo_ns = [n.metadata.name for n in cluster.core.list_namespace().items
               if n.metadata.name.startswith("vancouver-")]
    left += [f"namespace {n}" for n in demo_ns]
    left += [f"pod {p.metadata.namespace}/{p.metadata.name}"
             for p in cluster.core.list_pod_for_all_namespaces().items
             if p.metadata.namespace in demo_ns]
    left += [f"pvc {p.metadata.namespace}/{p.metadata.name}"
             for p in cluster.core.list_persistent_volume_claim_for_all_namespaces().items
             if p.metadata.namespace in demo_ns]
    left += [f"pv {pv.metadata.name}" for pv in cluster.core.list_persistent_volume().items
             if pv.spec.claim_ref and pv.spec.claim_ref.namespace.startswith("vancouver-")]
    left += [f"app_instance {ai['name']}" for ai in lab_api.app_instances.list(tenant=dtenant)
             if ai["name"].startswith(k8s.CSI_VOLUME_PREFIX)]
    return left


@pytest.mark.serial   # --delete sweeps every demo namespace of the session lab
@pytest.mark.slow
@pytest.mark.timeout(900)   # the sweep's own limit is 600 s (pytest.ini: 300 s)
def test_kill_9_of_an_endless_kubernetes_run_then_cleanup_leaves_nothing(cluster, target,
                                                                         lab_api, dtenant,
                                                                         tmp_path):
    cmd = [sys.executable, "-m", "pytest", "scenarios/kubernetes/test_kubernetes.py",
           "--target", str(target.path), "-n", "2", "--count=0", "--demo-profile", "ci",
           "-p", "no:cacheprovider", "--html", str(tmp_path / "report.html")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=inner_run.env(str(target.path)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:   # killed while pods and their volumes exist
        wait_until(lambda: any(x.startswith("pod ") for x in
                               _demo_left(cluster, lab_api, dtenant)),
                   180, "the run to create a pod", 0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    left = _demo_left(cluster, lab_api, dtenant)
    assert any(x.startswith("pvc ") for x in left) and \
        any(x.startswith("app_instance ") for x in left), left
    done = subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--target",
                           str(target.path), "--delete"], cwd=REPO,
                          env=inner_run.env(str(target.path)), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith(", 0 left"), done.stdout
    # a claim the killed run was provisioning may get its PV only now; the driver then
    # deletes PV and volume on its own within seconds
    wait_until(lambda: _demo_left(cluster, lab_api, dtenant) == [], 60,
               "the CSI driver to delete the last volumes", 0.2)


def _demo_classes(cluster) -> set[str]:
    return {sc.metadata.name for sc in cluster.storage.list_storage_class().items
            if (sc.metadata.labels or {}).get(k8s.DEMO_LABEL)}


@pytest.mark.serial   # a bounded run on the session lab, then "nothing of it is left"
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_bounded_kubernetes_run_leaves_nothing_not_even_its_storage_classes(
        cluster, target, lab_api, dtenant, tmp_path):
    """The scenario's StorageClasses are its workers' own and go with them: the new-user trial
    found nine `vancouver-*` classes after every run (shared names, never deleted)."""
    before = _demo_classes(cluster)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios/kubernetes/test_kubernetes.py",
         "--target", str(target.path), "-n", "2", "--count=0", "--duration", "30s",
         "--demo-profile", "ci", "-p", "no:cacheprovider", "--html",
         str(tmp_path / "report.html")],
        cwd=REPO, env=inner_run.env(str(target.path)), capture_output=True, text=True,
        timeout=540)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "passed" in proc.stdout, proc.stdout[-3000:]
    assert _demo_classes(cluster) - before == set()
    wait_until(lambda: _demo_left(cluster, lab_api, dtenant) == [], 60,
               "the CSI driver to delete the run's last volumes", 0.2)
