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
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from lab import topology
from lab.ldap import directory, slapd

REPO_ROOT = Path(__file__).resolve().parent.parent
DATERA_SW_VERSION = "3.3.5.0"
DATERA_ADMIN = "admin"
DATERA_SESSION_TTL_S = 900


class LabError(Exception):
    """A one-line, user-facing reason the lab cannot do what was asked."""


@dataclass
class LabRun:
    """One lab run: its directory and the secrets generated for it (empty for `status`)."""
    run_dir: Path
    secrets: dict[str, str] = field(default_factory=dict)
    # The names of the components this run starts, so one can configure itself for another
    # (Datera pushes its LUNs to the vCenter's fabric only when the lab has one).
    components: tuple[str, ...] = ()

    def dir(self, component: str) -> Path:
        return self.run_dir / component

    @property
    def target_dir(self) -> Path:
        return self.run_dir / "target"


@dataclass(frozen=True)
class Component:
    name: str
    address: str                                  # shown by `status`
    binds: tuple[tuple[str, int], ...]            # every (address, port) it listens on
    depends_on: tuple[str, ...]                   # healthy before this one starts (*)
    binaries: tuple[str, ...]                     # system programs (Debian packages) it needs
    prepare: Callable[[LabRun], None]             # writes its config under run.dir(name)
    argv: Callable[[LabRun], list[str]]
    healthy: Callable[[LabRun], bool]             # quick, never raises
    contribute: Callable[[LabRun, dict], None]    # adds files and a section to the target dir
    # (*) False: the component uses its dependencies only while serving requests, never while it
    # starts, so the supervisor starts it as soon as they are started instead of waiting for
    # them to be healthy (its Python start overlaps theirs). The lab is still reported ready
    # only when every component is healthy, and stops in reverse start order.
    needs_deps_to_start: bool = True
    # Seconds it may take to become healthy (None: the supervisor's default). Kubernetes'
    # apiserver starts in ~3 s on an idle machine but takes minutes on a loaded one.
    health_timeout_s: float | None = None


def new_password() -> str:
    # Starts with a letter and uses only [A-Za-z0-9_-]: Datera's login schema rejects others.
    return "p" + secrets.token_urlsafe(18)


def new_secrets() -> dict[str, str]:
    s = {uid: new_password() for uid in directory.all_uids()}
    s["datera-admin"] = new_password()
    return s


def find_binary(name: str) -> str | None:
    """Looks on PATH and in the sbin next to each bin on it: Debian puts slapd in /usr/sbin,
    which an ordinary user's PATH lacks."""
    dirs = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d:
            dirs.append(d)
            if Path(d).name == "bin":
                dirs.append(str(Path(d).parent / "sbin"))
    return shutil.which(name, path=os.pathsep.join(dirs))


def _binary(name: str) -> str:
    path = find_binary(name)
    if path is None:
        raise LabError(f"{name} is not installed: run make setup")
    return path


def write_private(path: Path, text: str) -> None:
    """Writes a file only its owner can read (configs and anything holding a secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _python_module(module: str, config: Path) -> list[str]:
    return [sys.executable, "-m", module, "--config", str(config)]


# ---- ldap: Debian's slapd --------------------------------------------------------------

def _ldap_users(run: LabRun) -> list[directory.LdapUser]:
    return directory.lab_users(run.secrets)


def _ldap_prepare(run: LabRun) -> None:
    slapd.prepare(run.dir("ldap"), _ldap_users(run), _binary("slapadd"))


def _ldap_argv(run: LabRun) -> list[str]:
    return slapd.argv(_binary("slapd"), run.dir("ldap") / "slapd.conf", topology.LDAP.address)


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
    tls = issue_server_cert(run.run_dir / "tls", topology.DATERA_MGT1.address,
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
    url = f"http://{topology.DATERA_MGT1.address}:{topology.DATERA_HTTP_PORT}/api_versions"
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _datera_contribute(run: LabRun, doc: dict) -> None:
    shutil.copyfile(run.run_dir / "tls" / "ca.pem", run.target_dir / "datera-ca.pem")
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



# ---- openstack-<cloud>: one process per cloud, every service in it (python -m lab.openstack) --

@dataclass(frozen=True)
class OpenStackCloud:
    cloud: str              # clouds.yaml entry names: <cloud> (tenant) and <cloud>-admin
    node: topology.Node     # the controller: every API binds here
    project: str            # the tenant project, named as the cloud's Datera tenant
    compute: tuple = ()     # extra compute nodes (hypervisors Nova lists)
    # Cinder's Datera backend logs in as the tenant's directory user (datera_ldap_server),
    # with datera_tenant_id unset: the user's own tenant is where its volumes land.
    datera_ldap: bool = False

    @property
    def component(self) -> str:
        return f"openstack-{self.cloud}"

    @property
    def tenant_user(self) -> str:
        return self.project.lower()


OPENSTACK_CLOUDS = (
    OpenStackCloud("mitaka", topology.OPENSTACK_MITAKA,
                   topology.OPENSTACK_TENANTS["mitaka"]),
    OpenStackCloud("newton", topology.OPENSTACK_NEWTON,
                   topology.OPENSTACK_TENANTS["newton"],
                   compute=topology.OPENSTACK_NEWTON_COMPUTE),
    OpenStackCloud("pike", topology.OPENSTACK_PIKE,
                   topology.OPENSTACK_TENANTS["pike"], datera_ldap=True),
)
# Every API port of a cloud (one home: lab/topology.py).
OPENSTACK_PORTS = topology.OPENSTACK_PORTS
OPENSTACK_ADMIN = "admin"


def _os_config_path(run: LabRun, oc: OpenStackCloud) -> Path:
    return run.dir(oc.component) / "config.json"


def _os_secret(run: LabRun, oc: OpenStackCloud, who: str) -> str:
    # Generated on first use: the supervisor's secrets dict lives for the whole run.
    return run.secrets.setdefault(f"{oc.component}-{who}", new_password())


def _os_datera_login(run: LabRun, oc: OpenStackCloud) -> dict:
    """cinder.conf's san_login/san_password/datera_tenant_id/datera_ldap_server."""
    if oc.datera_ldap:
        uid = directory.uid_for_tenant(oc.project)
        return {"username": uid, "password": run.secrets[uid], "tenant": "",
                "ldap_server": topology.LDAP_SERVER_NAME}
    return {"username": DATERA_ADMIN, "password": run.secrets["datera-admin"],
            "tenant": f"/root/{oc.project}"}


def _os_datera_login_doc(run: LabRun, oc: OpenStackCloud) -> dict:
    """target.yaml's datera_user / datera_ldap_server of the cloud (no secret)."""
    login = _os_datera_login(run, oc)
    doc = {"datera_user": login["username"]}
    if login.get("ldap_server"):
        doc["datera_ldap_server"] = login["ldap_server"]
    return doc


def _os_prepare(oc: OpenStackCloud) -> Callable[[LabRun], None]:
    def prepare(run: LabRun) -> None:
        work = run.dir(oc.component)
        (work / "data").mkdir(parents=True, exist_ok=True)
        hosts = (oc.node, *oc.compute)
        config = {
            "cloud": oc.cloud,
            "release": oc.cloud,
            "address": oc.node.address,
            "data_dir": str(work / "data"),
            "admin": {"user": OPENSTACK_ADMIN, "password": _os_secret(run, oc, "admin"),
                      "project": "admin"},
            "tenant": {"user": oc.tenant_user, "password": _os_secret(run, oc, "tenant"),
                       "project": oc.project},
            "compute_nodes": [{"name": n.name, "address": n.address} for n in hosts],
            # Cinder's backends: the Datera lab (as the cloud's Datera tenant) and Ceph.
            "services": {"cinder": {
                "datera": {"mgmt_ip": topology.DATERA_MGT1.address,
                           "http_port": topology.DATERA_HTTP_PORT, **_os_datera_login(run, oc)},
                "ceph": {"address": topology.CEPH.address}}},
        }
        write_private(_os_config_path(run, oc), json.dumps(config, indent=2) + "\n")
    return prepare


def _os_healthy(oc: OpenStackCloud) -> Callable[[LabRun], bool]:
    """Keystone's /v3 answers 200; the cloud's process starts Keystone after every other
    service, so that means the whole cloud serves."""
    def healthy(run: LabRun) -> bool:
        url = f"http://{oc.node.address}:{OPENSTACK_PORTS['keystone']}/v3"
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False
    return healthy


def _os_contribute(oc: OpenStackCloud) -> Callable[[LabRun, dict], None]:
    def contribute(run: LabRun, doc: dict) -> None:
        path = run.target_dir / "clouds.yaml"
        clouds = yaml.safe_load(path.read_text()) if path.exists() else {"clouds": {}}
        auth_url = f"http://{oc.node.address}:{OPENSTACK_PORTS['keystone']}/v3"
        for entry, user, project, who in ((oc.cloud, oc.tenant_user, oc.project, "tenant"),
                                          (f"{oc.cloud}-admin", OPENSTACK_ADMIN, "admin", "admin")):
            clouds["clouds"][entry] = {
                "auth": {"auth_url": auth_url, "username": user,
                         "password": _os_secret(run, oc, who), "project_name": project,
                         "user_domain_name": "Default", "project_domain_name": "Default"},
                "region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}
        write_private(path, yaml.safe_dump(clouds, sort_keys=False))
        section = doc.setdefault("openstack", {"clouds_yaml": "clouds.yaml", "clouds": {}})
        section["clouds"][oc.cloud] = {"release": oc.cloud, "tenant_cloud": oc.cloud,
                                       "admin_cloud": f"{oc.cloud}-admin",
                                       "project": oc.project, "datera_tenant": oc.project,
                                       "controller": oc.node.address,
                                       "compute_nodes": [n.address for n in (oc.node, *oc.compute)],
                                       **_os_datera_login_doc(run, oc)}
    return contribute


def _openstack_component(oc: OpenStackCloud) -> Component:
    return Component(
        name=oc.component,
        address=f"{oc.node.address}:{OPENSTACK_PORTS['keystone']}",
        binds=tuple((oc.node.address, port) for port in OPENSTACK_PORTS.values()),
        # Cinder's datera backend drives the Datera lab.
        depends_on=("datera",),
        binaries=(),
        prepare=_os_prepare(oc),
        argv=lambda run: _python_module("lab.openstack", _os_config_path(run, oc)),
        healthy=_os_healthy(oc),
        contribute=_os_contribute(oc),
    )


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
    """The node process wrote `ready` (apiserver ready, CSIDriver and Node registered) and the
    apiserver still answers /readyz."""
    from lab.kubernetes import controlplane
    work = run.dir("kubernetes")
    if not (work / "ready").exists():
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
        with urllib.request.urlopen(vsphere_url("/about"), timeout=1, context=ctx) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


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
        argv=lambda run: _python_module("lab.datera", _datera_config_path(run)),
        healthy=_datera_healthy,
        contribute=_datera_contribute,
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
        argv=lambda run: _python_module("lab.kubernetes", _k8s_config_path(run)),
        healthy=_k8s_healthy,
        contribute=_k8s_contribute,
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
