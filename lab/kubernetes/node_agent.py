"""The node agent's registration duties (the kubelet's part, reference kubernetes.md §9.1):
the Node object with a Ready condition, a Lease in kube-node-lease renewed every 10 s (the
node lifecycle controller marks a node Unknown after 40 s without one), and the CSINode
node-driver-registrar would create for the Datera driver; and, at each start, the Node event
a kubelet records as it starts (reason Starting, "Starting kubelet.", source kubelet:
kubernetes pkg/kubelet/kubelet.go, events.StartingKubelet), which tells a client when the
node agent last started (a restart loses the pods it ran: podsync.py)."""
import datetime
import logging
import platform
import threading
import uuid

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .watchloop import watch_forever

log = logging.getLogger(__name__)
HEARTBEAT_S = 10
LEASE_S = 40
KUBELET_VERSION = "v1.20.2"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _now_micro() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class NodeAgent:
    def __init__(self, api: client.ApiClient, node_name: str, address: str, driver: str,
                 kubelet_port: int):
        self.core = client.CoreV1Api(api)
        self.coord = client.CoordinationV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.name = node_name
        self.address = address
        self.driver = driver
        self.kubelet_port = kubelet_port
        self.stop = threading.Event()

    def _ready_condition(self) -> dict:
        now = _now()
        return {"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now}

    def register(self) -> None:
        """Creates the Node (status kept on create), its Lease and the CSINode; idempotent."""
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        node = client.V1Node.from_dict({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name,
                         "labels": {"kubernetes.io/hostname": self.name,
                                    "kubernetes.io/os": "linux", "kubernetes.io/arch": arch},
                         "annotations": {
                             "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "status": {"capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
                       "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"},
                       "addresses": [{"type": "InternalIP", "address": self.address},
                                     {"type": "Hostname", "address": self.name}],
                       "conditions": [self._ready_condition()],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
                       "nodeInfo": {"kubeletVersion": KUBELET_VERSION,
                                    "kubeProxyVersion": KUBELET_VERSION,
                                    "operatingSystem": "linux", "architecture": arch,
                                    "containerRuntimeVersion": "vancouver-guest://1",
                                    "osImage": "Vancouver lab guest", "kernelVersion": platform.release(),
                                    "machineID": "", "systemUUID": "", "bootID": ""}}})
        try:
            self.core.create_node(node)
        except ApiException as e:
            if e.status != 409:
                raise
            self.heartbeat()
        self._renew_lease()
        csinode = client.V1CSINode.from_dict({
            "apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
            "metadata": {"name": self.name},
            "spec": {"drivers": [{"name": self.driver, "nodeID": self.name,
                                  "topologyKeys": None}]}})
        try:
            self.storage.create_csi_node(csinode)
        except ApiException as e:
            if e.status != 409:
                raise

    def record_start(self) -> None:
        """The kubelet's "Starting kubelet." event on its Node (namespace default, as the
        kubelet's node reference has none); a failure to record it is only logged."""
        now = _now()
        body = client.CoreV1Event.from_dict({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{self.name}.{uuid.uuid4().hex[:16]}", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": self.name, "uid": self.name},
            "reason": "Starting", "message": "Starting kubelet.", "type": "Normal",
            "source": {"component": "kubelet", "host": self.name}, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "reportingComponent": "",
            "reportingInstance": ""})
        try:
            self.core.create_namespaced_event("default", body)
        except ApiException as e:
            log.warning("event Starting on node %s: HTTP %s", self.name, e.status)

    def heartbeat(self) -> None:
        # status.conditions merge by `type` under strategic-merge-patch (reference §7)
        self.core.patch_node_status(self.name, {"status": {"conditions": [self._ready_condition()]}})

    def _renew_lease(self) -> None:
        body = {"metadata": {"name": self.name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_S,
                         "renewTime": _now_micro()}}
        try:
            self.coord.patch_namespaced_lease(self.name, "kube-node-lease", {"spec": body["spec"]})
        except ApiException as e:
            if e.status != 404:
                raise
            self.coord.create_namespaced_lease("kube-node-lease", client.V1Lease.from_dict(
                {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", **body}))

    def watch_pods(self, on_pod) -> None:
        """Pods bound to this node, handed to on_pod(kind, pod) (pods.PodRunner)."""
        watch_forever("pods", self.core.list_pod_for_all_namespaces, on_pod, self.stop,
                      field_selector=f"spec.nodeName={self.name}")

    def run(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                self._renew_lease()
                self.heartbeat()
            except Exception as e:   # the apiserver restarting: the next beat retries
                log.warning("node heartbeat: %s: %s", type(e).__name__, e)
