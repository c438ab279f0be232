"""configMap and secret volumes of running pods follow their objects, as kubelet's volume
manager keeps them (lab/kubernetes/podrefresh.py, atomicwriter.py): changed with kubectl,
the running pod's `cat` shows the new value and `readlink ..data` the swapped timestamped
directory; a subPath mount keeps what the container started with; kubelet's AtomicWriter
layout and its rules, without a cluster. A deleted object empties an optional volume and
leaves a required one as it was (kubelet's SetUp fails: the files stay)."""
import os
import re
import subprocess

import pytest
from kubernetes import client

from fixtures import kubernetes as k8s
from fixtures.waiters import wait_until
from lab.kubernetes import atomicwriter
from tests.support.kubernetes_fixtures import cluster, ns  # noqa: F401  (fixtures)

TIMEOUT = 60
TS_DIR = re.compile(r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+$")


def kubectl(cluster, *args: str, stdin: str | None = None) -> str:
    return subprocess.run([cluster.kubectl or "kubectl", f"--kubeconfig={cluster.kubeconfig}",
                           *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
                          check=True).stdout


def create_object(cluster, ns: str, kind: str, value: str) -> None:
    """`kubectl create configmap|secret generic cfg --from-literal=level=<value>`, or with
    --dry-run=client -o yaml | kubectl apply, its change to <value>."""
    what = ["configmap"] if kind == "configMap" else ["secret", "generic"]
    manifest = kubectl(cluster, "create", *what, "cfg", "-n", ns, f"--from-literal=level={value}",
                       "--dry-run=client", "-o", "yaml")
    kubectl(cluster, "apply", "-n", ns, "-f", "-", stdin=manifest)


# Each round: the file through the volume, the ..data target, the subPath copy.
WATCHER = ("while :; do echo \"round $(cat /etc/cfg/level) $(readlink /etc/cfg/..data) "
           "$(cat /etc/level.conf)\"; sleep 0.2; done")


def rounds(cluster, ns: str) -> list[list[str]]:
    return [line.split()[1:] for line in kubectl(cluster, "logs", "watcher", "-n", ns)
            .splitlines() if line.startswith("round ") and len(line.split()) == 4]


@pytest.mark.parametrize("kind", ["configMap", "secret"])
def test_a_running_pod_sees_the_changed_object_but_not_through_a_subpath(cluster, ns, kind):
    create_object(cluster, ns, kind, "one")
    src = {"configMap": {"name": "cfg"}} if kind == "configMap" \
        else {"secret": {"secretName": "cfg"}}
    cluster.core.create_namespaced_pod(ns, client.V1Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "watcher", "labels": {k8s.DEMO_LABEL: "true"}},
        "spec": {"restartPolicy": "Never", "volumes": [{"name": "cfg", **src}],
                 "containers": [{"name": "app", "image": "vancouver/guest",
                                 "command": ["sh", "-c", WATCHER], "volumeMounts": [
                                     {"name": "cfg", "mountPath": "/etc/cfg"},
                                     {"name": "cfg", "mountPath": "/etc/level.conf",
                                      "subPath": "level"}]}]}}))
    first = wait_until(lambda: rounds(cluster, ns), TIMEOUT, "the pod's first round")[0]
    assert first[0] == "one" and first[2] == "one"
    assert TS_DIR.match(first[1]), first
    create_object(cluster, ns, kind, "two")
    seen = wait_until(lambda: [r for r in rounds(cluster, ns) if r[0] == "two"], TIMEOUT,
                      f"the running pod to read the changed {kind}")[0]
    assert TS_DIR.match(seen[1]) and seen[1] != first[1], \
        f"..data still points at {seen[1]}: not swapped"
    assert seen[2] == "one", "a subPath mount is refreshed; kubelet never refreshes those"


def test_items_follow_a_change_and_a_deleted_object_empties_only_an_optional_volume(
        cluster, ns):
    for name in ("opt", "req"):
        cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name), data={"k": "one"}))
    script = ("while :; do echo \"round $(cat /etc/opt/sub/renamed 2>/dev/null || echo none) "
              "$(cat /etc/req/k)\"; sleep 0.2; done")
    cluster.core.create_namespaced_pod(ns, client.V1Pod.from_dict({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "watcher", "labels": {k8s.DEMO_LABEL: "true"}},
        "spec": {"restartPolicy": "Never", "volumes": [
            {"name": "opt", "configMap": {"name": "opt", "optional": True,
                                          "items": [{"key": "k", "path": "sub/renamed"}]}},
            {"name": "req", "configMap": {"name": "req"}}],
            "containers": [{"name": "app", "image": "vancouver/guest",
                            "command": ["sh", "-c", script], "volumeMounts": [
                                {"name": "opt", "mountPath": "/etc/opt"},
                                {"name": "req", "mountPath": "/etc/req"}]}]}}))

    def seen(want):
        return lambda: [r for r in (line.split()[1:] for line in kubectl(
            cluster, "logs", "watcher", "-n", ns).splitlines() if line.startswith("round "))
            if r == want]

    wait_until(seen(["one", "one"]), TIMEOUT, "the pod's first round")
    cluster.core.patch_namespaced_config_map("opt", ns, {"data": {"k": "two"}})
    wait_until(seen(["two", "one"]), TIMEOUT, "the renamed item to follow the change")
    kubectl(cluster, "delete", "configmap", "opt", "req", "-n", ns)
    wait_until(seen(["none", "one"]), TIMEOUT,
               "the optional volume emptied and the required one kept")


def test_an_immutable_config_map_cannot_change_under_a_pod(cluster, ns):
    cluster.core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="frozen"), data={"k": "v"}, immutable=True))
    with pytest.raises(subprocess.CalledProcessError) as e:
        kubectl(cluster, "patch", "configmap", "frozen", "-n", ns, "-p", '{"data":{"k":"w"}}')
    assert "field is immutable when `immutable` is set" in e.value.stderr


# ---- the AtomicWriter layout, no cluster ----------------------------------------------------

def test_the_atomic_writer_swaps_data_and_keeps_one_symlink_per_top_level_name(tmp_path):
    root = tmp_path / "vol"
    assert atomicwriter.write(root, {"a": (b"1", 0o644), "conf/b.conf": (b"2", 0o600)})
    first = os.readlink(root / "..data")
    assert TS_DIR.match(first)
    assert os.readlink(root / "a") == "..data/a"
    assert os.readlink(root / "conf") == "..data/conf"
    assert (root / "conf" / "b.conf").read_bytes() == b"2"
    assert oct(os.stat(root / "conf" / "b.conf").st_mode & 0o777) == "0o600"
    assert not atomicwriter.write(root, {"a": (b"1", 0o644), "conf/b.conf": (b"2", 0o600)})
    assert os.readlink(root / "..data") == first, "an equal payload is written again"

    assert atomicwriter.write(root, {"a": (b"changed", 0o644)})
    second = os.readlink(root / "..data")
    assert second != first and not (root / first).exists(), "the old directory stays"
    assert (root / "a").read_bytes() == b"changed"
    assert not os.path.lexists(root / "conf"), "a dropped name keeps its symlink"
    assert sorted(p.name for p in root.iterdir()) == sorted(["..data", "a", second])


@pytest.mark.parametrize("path", ["/etc/passwd", "../up", "a/../../up", "..hidden"])
def test_the_atomic_writer_refuses_paths_kubelet_refuses(tmp_path, path):
    with pytest.raises(atomicwriter.PayloadError):
        atomicwriter.write(tmp_path / "vol", {path: (b"x", 0o644)})
    assert not (tmp_path / "vol").exists()
