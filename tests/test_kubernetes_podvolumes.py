"""Pod volumes beside PVCs and emptyDir on the lab's node agent, through the real apiserver:
configMap and secret volumes as kubelet's plugins lay them out (keys as files, items, modes,
a missing object keeps the pod ContainerCreating until it exists), and a volume type the
node has no plugin for refused as kubelet refuses it (lab/kubernetes/podvolumes.py)."""
import base64
import uuid

import pytest
from kubernetes import client

from fixtures import kubernetes as k8s
from fixtures.waiters import wait_until
from tests.support.kubernetes_fixtures import cluster  # noqa: F401  (fixtures)

TIMEOUT = 90


@pytest.fixture
def ns(cluster):
    name = f"vkv-{uuid.uuid4().hex[:8]}"
    k8s.ensure_namespace(cluster.core, name)
    yield name
    k8s.delete_namespace(cluster.core, name)


def pod(name: str, script: str, volumes: list[dict], mounts: dict[str, str]) -> client.V1Pod:
    return client.V1Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {k8s.DEMO_LABEL: "true"}},
        "spec": {"restartPolicy": "Never", "volumes": volumes, "containers": [{
            "name": "app", "image": "vancouver/guest", "command": ["sh", "-c", script],
            "volumeMounts": [{"name": v, "mountPath": p} for v, p in mounts.items()]}]}})


def finished(p) -> bool:
    return p is not k8s.GONE and p.status.phase in ("Succeeded", "Failed")


def failed_mounts(cluster, ns, name) -> list[str]:
    return [e.message for e in k8s.events_for(cluster.core, ns, name)
            if e.reason == "FailedMount"]


def wait_failed_mount(cluster, ns, name) -> str:
    wait_until(lambda: failed_mounts(cluster, ns, name), TIMEOUT, "a FailedMount event",
               interval=0.2)
    return failed_mounts(cluster, ns, name)[0]


def test_config_map_and_secret_keys_become_files_with_items_and_modes(cluster, ns):
    cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cfg"),
        data={"app.conf": "level=debug\n", "other": "x"},
        binary_data={"blob.bin": base64.b64encode(b"\x00\x01").decode()}))
    cluster.core.create_namespaced_secret(ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="creds"),
        data={"password": base64.b64encode(b"s3cret").decode()}))
    volumes = [{"name": "cfg", "configMap": {"name": "cfg"}},
               {"name": "picked", "configMap": {"name": "cfg", "items": [
                   {"key": "app.conf", "path": "conf/renamed.conf", "mode": 0o600}]}},
               {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}}]
    script = ("cat /etc/cfg/app.conf; ls /etc/cfg | sort | tr '\\n' ' '; echo; "
              "od -An -tx1 /etc/cfg/blob.bin; cat /etc/picked/conf/renamed.conf; "
              "ls /etc/picked; stat -L -c %a /etc/picked/conf/renamed.conf /etc/creds/password; "
              "cat /etc/creds/password; echo")
    cluster.core.create_namespaced_pod(ns, pod("reader", script, volumes, {
        "cfg": "/etc/cfg", "picked": "/etc/picked", "creds": "/etc/creds"}))
    done = k8s.wait_for(cluster.core.list_namespaced_pod, "reader", finished, TIMEOUT,
                        "pod finished", namespace=ns)
    out = cluster.core.read_namespaced_pod_log("reader", ns)
    assert done.status.phase == "Succeeded", out
    assert out.splitlines() == ["level=debug", "app.conf blob.bin other ", " 00 01",
                                "level=debug", "conf", "600", "400", "s3cret"]


@pytest.mark.parametrize("kind", ["configMap", "secret"])
def test_a_missing_object_keeps_the_pod_creating_until_it_exists(cluster, ns, kind):
    src = {"configMap": {"name": "late"}} if kind == "configMap" \
        else {"secret": {"secretName": "late"}}
    cluster.core.create_namespaced_pod(ns, pod("waiter", "cat /etc/late/k", [
        {"name": "late", **src}], {"late": "/etc/late"}))
    msg = wait_failed_mount(cluster, ns, "waiter")
    noun = "configmap" if kind == "configMap" else "secret"
    assert msg == f'MountVolume.SetUp failed for volume "late" : {noun} "late" not found'
    p = cluster.core.read_namespaced_pod("waiter", ns)
    assert p.status.phase == "Pending"
    assert p.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    meta = client.V1ObjectMeta(name="late")
    if kind == "configMap":
        cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=meta, data={"k": "here"}))
    else:
        cluster.core.create_namespaced_secret(ns, client.V1Secret(
            metadata=meta, data={"k": base64.b64encode(b"here").decode()}))
    done = k8s.wait_for(cluster.core.list_namespaced_pod, "waiter", finished, TIMEOUT,
                        "pod finished once the object exists", namespace=ns)
    assert done.status.phase == "Succeeded"
    assert cluster.core.read_namespaced_pod_log("waiter", ns) == "here"


def test_a_missing_key_in_items_fails_the_mount_as_kubelet_says(cluster, ns):
    cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cfg"), data={"a": "1"}))
    cluster.core.create_namespaced_pod(ns, pod("picky", "true", [
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "b", "path": "b"}]}}],
        {"cfg": "/etc/cfg"}))
    assert wait_failed_mount(cluster, ns, "picky") == (
        'MountVolume.SetUp failed for volume "cfg" : configmap references non-existent '
        'config key: b')


def test_a_volume_type_without_a_plugin_is_refused_and_the_pod_stays_creating(cluster, ns):
    cluster.core.create_namespaced_pod(ns, pod("host", "ls /host", [
        {"name": "host", "hostPath": {"path": "/etc"}}], {"host": "/host"}))
    assert wait_failed_mount(cluster, ns, "host") == (
        "Unable to attach or mount volumes: unmounted volumes=[host], unattached "
        'volumes=[host]: failed to get Plugin from volumeSpec for volume "host" '
        "err=no volume plugin matched")
    p = cluster.core.read_namespaced_pod("host", ns)
    assert p.status.phase == "Pending"
    assert p.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
