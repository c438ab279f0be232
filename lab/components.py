"""The lab's components, declared in one table (COMPONENTS).

Each entry says what the component binds, what it needs before it starts (other components,
Debian programs), how to write its config, how to run it, how to tell it is healthy and what
it adds to the target directory. The supervisor knows nothing else about any of them, so
OpenStack, Kubernetes and vSphere plug in later as one entry each.
"""
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import yaml

from lab import topology
from lab.component_base import (DATERA_ADMIN, DATERA_SESSION_TTL_S, DATERA_SW_VERSION,
                                REPO_ROOT, Component, LabError, LabRun, answers_200,
                                new_password, python_module, require_binary, write_private)
from lab.components_openstack import OPENSTACK_CLOUDS, _openstack_component
from lab.ldap import directory, slapd

# ---- ldap: Debian's slapd --------------------------------------------------------------

def _ldap_users(run: LabRun) -> list[directory.LdapUser]:
    return directory.lab_users(run.secrets)


def _ldap_prepare(run: LabRun) -> None:
    slapd.prepare(run.dir("ldap"), _ldap_users(run), require_binary("slapadd"))


def _ldap_argv(run: LabRun) -> list[str]:
    return slapd.argv(require_binary("slapd"), run.dir("ldap") / "slapd.conf", topology.LDAP.address)


def _ldap_contribute(run: LabRun, doc: dict) -> None:
    users = {u.uid: {"password": u.password, "tenant": u.tenant, "dn": u.dn}
             for u in _ldap_users(run)}
    write_private(run.target_dir / "ldap-users.json", json.dumps(users, indent=2) + "\n")
    doc["ldap"] = {"url": slapd.url(topology.LDAP.address),
                   "base_dn": topology.LDAP_BASE_DN,
                   "users": "ldap-users.json"}


# ---- datera: the Datera DSP model (python -m lab.datera) --------------------------------

def _datera_config_path(run: LabRun) -> Path:
    return run.dir("datera") / "config.json"


def _datera_prepare(run: LabRun) -> None:
    work = run.dir("datera")
    (work / "data").mkdir(parents=True, exist_ok=True)
    from lab.tls import issue_server_cert   # cryptography: only the supervisor needs it
    # In the component's dir, as Kubernetes' and the vCenter's: `down` removes it with the
    # rest of the component's state (the key is a secret).
    tls = issue_server_cert(work / "tls", topology.DATERA_MGT1.address,
                            topology.DATERA_MGT1.name)
    config = {
        "mgmt_ip": topology.DATERA_MGT1.address,
        "http_port": topology.DATERA_HTTP_PORT,
        "https_port": topology.DATERA_HTTPS_PORT,
        "tls_cert": str(tls.cert),
        "tls_key": str(tls.key),
        "vips": [topology.DATERA_VIP1.address, topology.DATERA_VIP2.address],
        "nbd_port": topology.DATERA_NBD_PORT,
        "login_port": topology.DATERA_LOGIN_PORT,
        "data_dir": str(work / "data"),
        "sw_version": DATERA_SW_VERSION,
        "admin_user": DATERA_ADMIN,
        "admin_password": run.secrets["datera-admin"],
        "session_ttl_s": DATERA_SESSION_TTL_S,
        "ldap": {topology.LDAP_SERVER_NAME: {"url": slapd.url(topology.LDAP.address),
                                             "base_dn": topology.LDAP_BASE_DN}},
    }
    if "vsphere" in run.components:   # lab/datera/fabric.py presents LUNs to the vCenter
        config["vsphere"] = vsphere_fabric(run)
    write_private(_datera_config_path(run), json.dumps(config, indent=2) + "\n")


def _datera_healthy(run: LabRun) -> bool:
    return answers_200(
        f"http://{topology.DATERA_MGT1.address}:{topology.DATERA_HTTP_PORT}/api_versions")


def _datera_contribute(run: LabRun, doc: dict) -> None:
    shutil.copyfile(run.dir("datera") / "tls" / "ca.pem", run.target_dir / "datera-ca.pem")
    udc = {"mgmt_ip": topology.DATERA_MGT1.address, "username": DATERA_ADMIN,
           "password": run.secrets["datera-admin"], "tenant": "/root",
           "api_version": "2.2", "ldap": ""}
    write_private(run.target_dir / "datera.json", json.dumps(udc, indent=2) + "\n")
    doc["datera"] = {"udc": "datera.json", "ca_file": "datera-ca.pem", "secure": True,
                     "ldap_server": topology.LDAP_SERVER_NAME,
                     # Hosts reach volumes through the lab's initiator login + NBD.
                     "transport": "lab",
                     # The lab has an explicit per-tenant IOPS cap (DESIGN §3.1).
                     "tenant_qos": "lab-extension"}



# ---- kubernetes: etcd + the real control plane + CSI controller + node agent (lab.kubernetes) --

KUBERNETES_DRIVER = "dsp.csi.daterainc.io"


def _k8s_config_path(run: LabRun) -> Path:
    return run.dir("kubernetes") / "config.json"


def _k8s_token(run: LabRun) -> str:
    return run.secrets.setdefault("kubernetes-token", secrets.token_hex(24))


def _k8s_prepare(run: LabRun) -> None:
    from lab.kubernetes import binaries, controlplane
    from lab.tls import issue_server_cert
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    bin_dir = binaries.bin_dir()
    if bin_dir is None:
        raise LabError(f"the Kubernetes control plane is not built in {binaries.cache_dir()}: "
                       "run make setup")
    work = run.dir("kubernetes")
    node = topology.KUBERNETES
    tls = issue_server_cert(work / "tls", node.address, node.name)
    # The service-account token signing key (1.20 requires one); P-256 is instant to make.
    sa = ec.generate_private_key(ec.SECP256R1())
    write_private(work / "sa.key", sa.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode())
    (work / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    token = _k8s_token(run)
    write_private(work / "tokens.csv", controlplane.token_csv(token))
    server = f"https://{node.address}:{topology.KUBERNETES_APISERVER_PORT}"
    controlplane.write_kubeconfig(work / "kubeconfig", controlplane.kubeconfig_doc(
        server, tls.ca.read_text(), token))
    config = {
        "address": node.address, "apiserver_port": topology.KUBERNETES_APISERVER_PORT,
        "etcd_port": topology.KUBERNETES_ETCD_PORT,
        "etcd_peer_port": topology.KUBERNETES_ETCD_PEER_PORT,
        "kubelet_port": topology.KUBERNETES_KUBELET_PORT,
        "bin_dir": str(bin_dir), "work_dir": str(work), "token_file": str(work / "tokens.csv"),
        "kubeconfig": str(work / "kubeconfig"), "tls_cert": str(tls.cert),
        "tls_key": str(tls.key), "ca_file": str(tls.ca), "sa_key": str(work / "sa.key"),
        "sa_pub": str(work / "sa.pub"), "node_name": node.name, "driver": KUBERNETES_DRIVER,
        "datera": {"mgmt_ip": topology.DATERA_MGT1.address,
                   "http_port": topology.DATERA_HTTP_PORT, "username": DATERA_ADMIN,
                   "password": run.secrets["datera-admin"],
                   "tenant": f"/root/{topology.KUBERNETES_TENANT}"},
    }
    write_private(_k8s_config_path(run), json.dumps(config, indent=2) + "\n")


def _k8s_healthy(run: LabRun) -> bool:
    """The node process wrote `ready` (apiserver ready, CSIDriver and Node registered, the
    provisioner's informers listed), that process still runs (a killed node's file, with the
    control plane it left serving, must not pass for its restart), and the apiserver still
    answers /readyz."""
    from lab.kubernetes import controlplane
    from lab.users import process_start_time
    work = run.dir("kubernetes")
    try:
        pid = json.loads((work / "ready").read_text())["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if process_start_time(pid) is None:
        return False
    server = f"https://{topology.KUBERNETES.address}:{topology.KUBERNETES_APISERVER_PORT}"
    try:   # from the file: `lab status` runs without the run's secrets
        token = (work / "tokens.csv").read_text().split(",", 1)[0]
    except OSError:
        return False
    return controlplane.readyz(server, str(work / "tls" / "ca.pem"), token)


def _k8s_contribute(run: LabRun, doc: dict) -> None:
    from lab.kubernetes import binaries
    shutil.copyfile(run.dir("kubernetes") / "kubeconfig", run.target_dir / "kubeconfig")
    os.chmod(run.target_dir / "kubeconfig", 0o600)
    doc["kubernetes"] = {"kubeconfig": "kubeconfig", "provisioner": KUBERNETES_DRIVER,
                         "datera_tenant": topology.KUBERNETES_TENANT,
                         "node": topology.KUBERNETES.address,
                         "kubectl": binaries.kubectl()}


# ---- vsphere: the vCenter simulator, a Go main over govmomi's simulator (lab/vsphere) -----------

VSPHERE_USER = "administrator@vsphere.local"
# The inventory lab/vsphere/main.go builds (govmomi's VPX model: one datacenter, one cluster,
# one ESXi host).
VSPHERE_DATACENTER = "DC0"
VSPHERE_HOST = "DC0_C0_H0"
# Finished tasks older than this leave the simulator's registry (lab/vsphere/task_janitor.go).
VSPHERE_TASK_GC_S = 10


def _vsphere_password(run: LabRun) -> str:
    return run.secrets.setdefault("vsphere-admin", new_password())


def vsphere_url(path: str = "") -> str:
    return f"https://{topology.VSPHERE.address}:{topology.VSPHERE_PORT}{path}"


def vsphere_fabric(run: LabRun) -> dict:
    """Where the Datera lab pushes its LUNs: the simulator's base URL, login and CA."""
    return {"url": vsphere_url(), "user": VSPHERE_USER, "password": _vsphere_password(run),
            "ca_file": str(run.dir("vsphere") / "tls" / "ca.pem")}


def _vsphere_config_path(run: LabRun) -> Path:
    return run.dir("vsphere") / "config.json"


def _vsphere_binary() -> Path:
    from lab.vsphere import buildhash
    bin_dir = buildhash.bin_dir()
    if bin_dir is None:
        raise LabError(f"the vCenter simulator is not built for these sources in "
                       f"{buildhash.build_dir()}: run make setup (or make vsphere)")
    return bin_dir / "vancouver-vcsim"


def _vsphere_prepare(run: LabRun) -> None:
    from lab.tls import issue_server_cert
    _vsphere_binary()
    work = run.dir("vsphere")
    (work / "data").mkdir(parents=True, exist_ok=True)
    node = topology.VSPHERE
    tls = issue_server_cert(work / "tls", node.address, node.name)
    config = {"address": node.address, "port": topology.VSPHERE_PORT, "user": VSPHERE_USER,
              "password": _vsphere_password(run), "tls_cert": str(tls.cert),
              "tls_key": str(tls.key), "ca_file": str(tls.ca), "data_dir": str(work / "data"),
              "url_file": str(work / "url"), "task_gc_s": VSPHERE_TASK_GC_S,
              "python": sys.executable, "workdir": str(REPO_ROOT)}
    write_private(_vsphere_config_path(run), json.dumps(config, indent=2) + "\n")


def _vsphere_healthy(run: LabRun) -> bool:
    """The simulator wrote its URL file (it serves) and /about answers over verified TLS."""
    import ssl
    work = run.dir("vsphere")
    if not (work / "url").exists():
        return False
    try:
        ctx = ssl.create_default_context(cafile=str(work / "tls" / "ca.pem"))
    except (OSError, ValueError):
        return False
    return answers_200(vsphere_url("/about"), context=ctx)


def _vsphere_contribute(run: LabRun, doc: dict) -> None:
    target = run.target_dir
    shutil.copyfile(run.dir("vsphere") / "tls" / "ca.pem", target / "vsphere-ca.pem")
    url, password, ca = vsphere_url("/sdk"), _vsphere_password(run), target / "vsphere-ca.pem"
    # Both spellings: the suite's (VSPHERE_*) and govc's own (GOVC_*), so `govc` works after
    # `set -a; . vsphere.env`.
    env = {"VSPHERE_URL": url, "VSPHERE_USER": VSPHERE_USER, "VSPHERE_PASSWORD": password,
           "VSPHERE_CA_FILE": str(ca), "VSPHERE_DATACENTER": VSPHERE_DATACENTER,
           "VSPHERE_HOST": VSPHERE_HOST,
           "GOVC_URL": url, "GOVC_USERNAME": VSPHERE_USER, "GOVC_PASSWORD": password,
           "GOVC_TLS_CA_CERTS": str(ca), "GOVC_DATACENTER": VSPHERE_DATACENTER}
    write_private(target / "vsphere.env", "".join(f"{k}={v}\n" for k, v in env.items()))
    doc["vsphere"] = {"url": url, "user": VSPHERE_USER, "password": password,
                      "ca_file": "vsphere-ca.pem", "datacenter": VSPHERE_DATACENTER,
                      "host": VSPHERE_HOST}


_DATERA_VIPS = (topology.DATERA_VIP1.address, topology.DATERA_VIP2.address)
# dfs_sdk and the Cinder driver use https (7718); http (7717) serves the same API. The login
# port stands in for the iSCSI portal (3260); the login answers the NBD export to open.
_DATERA_ENDPOINTS = (
    ("REST API https", f"https://{topology.DATERA_MGT1.address}:{topology.DATERA_HTTPS_PORT}"),
    ("REST API http", f"http://{topology.DATERA_MGT1.address}:{topology.DATERA_HTTP_PORT}"),
    *((f"{label} login (iSCSI portal)", f"{vip.address}:{topology.DATERA_LOGIN_PORT}")
      for label, vip in (("VIP1", topology.DATERA_VIP1), ("VIP2", topology.DATERA_VIP2))),
    *((f"{label} NBD", f"nbd://{vip.address}:{topology.DATERA_NBD_PORT}")
      for label, vip in (("VIP1", topology.DATERA_VIP1), ("VIP2", topology.DATERA_VIP2))),
)

COMPONENTS: tuple[Component, ...] = (
    Component(
        name="ldap",
        address=f"{topology.LDAP.address}:{topology.LDAP_PORT}",
        binds=((topology.LDAP.address, topology.LDAP_PORT),),
        depends_on=(),
        binaries=("slapd", "slapadd"),
        prepare=_ldap_prepare,
        argv=_ldap_argv,
        healthy=lambda run: slapd.healthy(topology.LDAP.address),
        contribute=_ldap_contribute,
        endpoints=(("LDAP (slapd)", slapd.url(topology.LDAP.address)),),
    ),
    Component(
        name="datera",
        address=f"{topology.DATERA_MGT1.address}:{topology.DATERA_HTTP_PORT}",
        binds=((topology.DATERA_MGT1.address, topology.DATERA_HTTP_PORT),
               (topology.DATERA_MGT1.address, topology.DATERA_HTTPS_PORT),
               *((vip, port) for vip in _DATERA_VIPS
                 for port in (topology.DATERA_LOGIN_PORT, topology.DATERA_NBD_PORT))),
        # Datera checks LDAP logins against slapd, so the directory comes along; it connects
        # only per login, so it starts alongside slapd (the lab is ready when both are healthy).
        depends_on=("ldap",),
        binaries=(),
        prepare=_datera_prepare,
        argv=lambda run: python_module("lab.datera", _datera_config_path(run)),
        healthy=_datera_healthy,
        contribute=_datera_contribute,
        endpoints=_DATERA_ENDPOINTS,
        needs_deps_to_start=False,
    ),
    # Kubernetes before the clouds: its apiserver takes the longest to come up (etcd, then
    # several seconds of post-start hooks), so its clock starts first; nothing waits for it.
    Component(
        name="kubernetes",
        address=f"{topology.KUBERNETES.address}:{topology.KUBERNETES_APISERVER_PORT}",
        binds=tuple((topology.KUBERNETES.address, port) for port in (
            topology.KUBERNETES_APISERVER_PORT, topology.KUBERNETES_ETCD_PORT,
            topology.KUBERNETES_ETCD_PEER_PORT, topology.KUBERNETES_KUBELET_PORT)),
        # The CSI controller drives Datera, but only per PVC: start alongside it.
        depends_on=("datera",),
        binaries=("etcd",),
        prepare=_k8s_prepare,
        argv=lambda run: python_module("lab.kubernetes", _k8s_config_path(run)),
        healthy=_k8s_healthy,
        contribute=_k8s_contribute,
        endpoints=(("kube-apiserver", f"https://{topology.KUBERNETES.address}:"
                                      f"{topology.KUBERNETES_APISERVER_PORT}"),),
        needs_deps_to_start=False,
        health_timeout_s=180.0,
    ),
    Component(
        name="vsphere",
        address=f"{topology.VSPHERE.address}:{topology.VSPHERE_PORT}",
        binds=((topology.VSPHERE.address, topology.VSPHERE_PORT),),
        # Datera pushes its LUNs here (and repairs the table when either restarts); the
        # simulator itself needs nothing to start.
        depends_on=(),
        binaries=(),
        prepare=_vsphere_prepare,
        argv=lambda run: [str(_vsphere_binary()), "-config", str(_vsphere_config_path(run))],
        healthy=_vsphere_healthy,
        contribute=_vsphere_contribute,
        endpoints=(("vCenter SDK", vsphere_url("/sdk")),),
    ),
    *(_openstack_component(oc) for oc in OPENSTACK_CLOUDS),
)

BY_NAME = {c.name: c for c in COMPONENTS}


def select(only: list[str] | None) -> list[Component]:
    """The named components plus everything they depend on, in start order."""
    names = list(only) if only else [c.name for c in COMPONENTS]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise LabError(f"unknown component {unknown[0]!r}; known: {', '.join(BY_NAME)}")
    wanted: set[str] = set()

    def need(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for dep in BY_NAME[name].depends_on:
                need(dep)

    for n in names:
        need(n)
    # COMPONENTS is declared dependencies-first, so table order is a valid start order.
    return [c for c in COMPONENTS if c.name in wanted]


def write_target_dir(run: LabRun, components: list[Component]) -> Path:
    """Writes <run>/target/: target.yaml plus each component's files. Returns target.yaml."""
    target = run.target_dir
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    doc: dict = {"kind": "lab", "net": topology.NET,
                 "components": [c.name for c in components]}
    for c in components:
        c.contribute(run, doc)
    path = target / "target.yaml"
    path.write_text("# Written by `python -m lab up`; describes the embedded lab.\n"
                    + yaml.safe_dump(doc, sort_keys=False))
    return path
