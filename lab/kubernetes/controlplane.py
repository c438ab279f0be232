"""Files and command lines of the real control plane: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler (flags measured in reference/kubernetes.md §1.3).

Everything binds to the Kubernetes node's loopback address. 1.20 has no insecure port, so the
apiserver serves HTTPS with the lab CA's certificate and authenticates a static bearer token;
the controller-manager and scheduler serve nothing (--port=0 --secure-port=0).
"""
import shutil
from pathlib import Path

from .config import Config

ADMIN_USER = "vancouver-admin"
# etcd's raft timing (milliseconds) for a one-member cluster; etcd_argv says why.
ETCD_HEARTBEAT_MS = 10
ETCD_ELECTION_MS = 100
SERVICE_CIDR = "10.0.0.0/24"
# The API groups the lab serves: what the node agent, the CSI controller, the controller-manager
# (namespace deletion, PV binding, pvc/pv-protection, garbage collection), the scheduler (its
# informers list apps/v1 workloads and policy PodDisruptionBudgets and never sync without them),
# kubectl and the scenarios use. The rest (RBAC: AlwaysAllow anyway; scheduling, batch,
# networking, certificates, flowcontrol, autoscaling, node, discovery) is off.
RUNTIME_CONFIG = ("api/all=false", "api/v1=true", "storage.k8s.io/v1=true",
                  "coordination.k8s.io/v1=true", "events.k8s.io/v1=true", "apps/v1=true",
                  "policy/v1beta1=true", "authentication.k8s.io/v1=true",
                  "authorization.k8s.io/v1=true", "apiregistration.k8s.io/v1=true",
                  "apiextensions.k8s.io/v1=true")
# The controllers the lab's storage story uses: namespace deletion, PV binding and the
# pv/pvc-protection finalizers, garbage collection, the node lifecycle (NotReady without a
# Lease), pod GC and the `default` ServiceAccount of each namespace. Workload controllers
# serve APIs that are off; CSR signing needs a signer CA and cloud/service need a cloud.
CONTROLLERS = ("namespace", "garbagecollector", "persistentvolume-binder", "pv-protection",
               "pvc-protection", "nodelifecycle", "podgc", "serviceaccount", "attachdetach",
               "ttl")
# 1.20's default admission plugins that the lab does not need (ServiceAccount: pods need no
# token; the others guard APIs that are off or features the lab has no use for). Left on:
# NamespaceLifecycle, DefaultStorageClass and StorageObjectInUseProtection (the
# kubernetes.io/pvc-protection finalizer the demo shows).
DISABLED_ADMISSION = ("ServiceAccount", "LimitRanger", "TaintNodesByCondition", "Priority",
                      "DefaultTolerationSeconds", "RuntimeClass", "DefaultIngressClass",
                      "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook",
                      "PersistentVolumeClaimResize", "CertificateApproval",
                      "CertificateSigning", "CertificateSubjectRestriction", "ResourceQuota")


def kubeconfig_doc(server: str, ca_pem: str, token: str, name: str = "vancouver-lab") -> dict:
    """A kubeconfig for kubectl and the Python client: HTTPS, the lab CA, a bearer token."""
    import base64
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}}],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": ADMIN_USER,
                                                 "namespace": "default"}}],
    }


def write_kubeconfig(path: Path, doc: dict) -> None:
    import os

    import yaml   # here: the node process imports this module first thing, before its etcd
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(yaml.safe_dump(doc, sort_keys=False))


def token_csv(token: str) -> str:
    # token,user,uid,"group1,group2": system:masters may do anything (AlwaysAllow anyway).
    return f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'


def etcd_argv(c: Config) -> list[str]:
    client = f"http://{c.address}:{c.etcd_port}"
    peer = f"http://{c.address}:{c.etcd_peer_port}"
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    return [etcd, "--name", "default", "--data-dir", str(c.work_dir / "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"default={peer}",
            # Restart time: a member restarted on its data dir is a follower until an election
            # timeout passes without a leader's heartbeat (1000 ms by default, plus the tick
            # jitter); /health fails meanwhile and the apiserver waits. A one-member cluster
            # has no peer to hear from, so a short timeout costs nothing (the ratio 1:10 of
            # etcd's tuning guide kept): 1.6 s -> 0.2 s from exec to /health on existing data
            # (bench/bench_lab_restart.py).
            "--heartbeat-interval", str(ETCD_HEARTBEAT_MS),
            "--election-timeout", str(ETCD_ELECTION_MS),
            "--logger", "zap", "--log-level", "warn"]


def apiserver_argv(c: Config) -> list[str]:
    return [str(c.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://{c.address}:{c.etcd_port}",
            f"--bind-address={c.address}", f"--advertise-address={c.address}",
            f"--secure-port={c.apiserver_port}",
            f"--tls-cert-file={c.tls_cert}", f"--tls-private-key-file={c.tls_key}",
            f"--cert-dir={c.work_dir / 'certs'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={c.sa_pub}",
            f"--service-account-signing-key-file={c.sa_key}",
            "--authorization-mode=AlwaysAllow", f"--token-auth-file={c.token_file}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Start time (bench/bench_lab_up.py): every API group served costs OpenAPI spec
            # building, storage and watch caches; every admission plugin with informers and
            # every post-start hook (RBAC roles, priority classes: a fixed 1 s poll) delays
            # /readyz. Half the CPU to ready with only these.
            f"--runtime-config={','.join(RUNTIME_CONFIG)}",
            f"--disable-admission-plugins={','.join(DISABLED_ADMISSION)}",
            # API Priority and Fairness (flowcontrol.apiserver.k8s.io) is off with its group.
            "--enable-priority-and-fairness=false",
            "--feature-gates=APIPriorityAndFairness=false",
            # The node's name does not resolve; reach its log endpoint by address.
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false", "--v=0"]


def controller_manager_argv(c: Config) -> list[str]:
    return [str(c.bin_dir / "kube-controller-manager"), f"--kubeconfig={c.kubeconfig}",
            "--leader-elect=false", "--port=0", "--secure-port=0",
            f"--service-account-private-key-file={c.sa_key}",
            "--use-service-account-credentials=false",
            f"--controllers={','.join(CONTROLLERS)}",
            "--profiling=false", "--v=0"]


def scheduler_argv(c: Config) -> list[str]:
    return [str(c.bin_dir / "kube-scheduler"), f"--kubeconfig={c.kubeconfig}",
            "--leader-elect=false", "--port=0", "--secure-port=0", "--profiling=false",
            "--v=0"]


def readyz(server: str, ca_file: str, token: str, timeout: float = 1.0) -> bool:
    """True when the apiserver's /readyz answers 200 (etcd reached, post-start hooks done)."""
    import ssl
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"{server}/readyz", headers={"Authorization": f"Bearer {token}"})
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False
