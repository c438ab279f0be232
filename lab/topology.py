"""The lab's network plan: one loopback address per node of the demo plan (DESIGN §3).

Everything the lab serves binds to one of these addresses and nothing else, so the lab is
reachable only from this machine.
"""
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from clients import ports

# The first two octets of every lab address. VANCOUVER_LAB_NET=127.1 moves the whole lab to
# 127.1.x.y, so two labs (two developers' test runs, two CI jobs) can run side by side.
# Empty means unset, as for every VANCOUVER_* variable (VANCOUVER_TARGET, VANCOUVER_CACHE):
# `VANCOUVER_LAB_NET= make demo` is the default net, not an error.
DEFAULT_NET = "127.0"
NET = os.environ.get("VANCOUVER_LAB_NET") or DEFAULT_NET
if not re.fullmatch(r"127\.\d{1,3}", NET) or int(NET.split(".")[1]) > 255:
    raise SystemExit(f"VANCOUVER_LAB_NET {NET!r}: expected 127.N, N 0..255 (the lab binds to "
                     "loopback only)")


def _addr(suffix: str) -> str:
    return f"{NET}.{suffix}"


@dataclass(frozen=True)
class Node:
    name: str
    address: str


# OpenStack (issue 4), Kubernetes and vSphere components will use these nodes.
OPENSTACK_MITAKA = Node("openstack-mitaka", _addr("1.1"))
OPENSTACK_NEWTON = Node("openstack-newton-controller", _addr("2.1"))
OPENSTACK_NEWTON_COMPUTE = (Node("openstack-newton-compute1", _addr("2.2")),
                            Node("openstack-newton-compute2", _addr("2.3")))
OPENSTACK_PIKE = Node("openstack-pike", _addr("3.1"))
KUBERNETES = Node("kubernetes", _addr("4.1"))
VSPHERE = Node("vcenter", _addr("5.1"))
CEPH = Node("ceph", _addr("6.1"))
DATERA_MGT1 = Node("datera-mgt1", _addr("7.10"))
DATERA_VIP1 = Node("datera-vip1", _addr("7.11"))
DATERA_VIP2 = Node("datera-vip2", _addr("7.12"))
LDAP = Node("ldap", _addr("8.1"))

# Datera's REST ports are fixed by dfs_sdk (reference datera-api §0.2).
DATERA_HTTP_PORT = ports.DATERA_HTTP
DATERA_HTTPS_PORT = ports.DATERA_HTTPS
# Data plane on both VIPs: the lab's initiator login (stands in for iSCSI on 3260) and NBD.
DATERA_LOGIN_PORT = ports.ISCSI
DATERA_NBD_PORT = ports.NBD
# Kubernetes on its node: the apiserver's usual HTTPS port and Debian etcd's client/peer ports.
KUBERNETES_APISERVER_PORT = 6443
KUBERNETES_ETCD_PORT = 2379
KUBERNETES_ETCD_PEER_PORT = 2380
KUBERNETES_KUBELET_PORT = 10250      # the node agent's log endpoint (kubelet's port)
# The vCenter simulator's HTTPS (SDK, its fabric and guestinfo endpoints): vcsim's usual port.
VSPHERE_PORT = 8989
# slapd on an unprivileged port.
LDAP_PORT = 3890
# Every API of an OpenStack cloud, on the cloud's node address (OpenStack's usual ports).
OPENSTACK_PORTS = {"keystone": 5000, "glance": 9292, "cinder": 8776, "nova": 8774,
                   "neutron": 9696}

# The demo's tenants, one per platform, as demo.yaml names them (its `tenants` list is the one
# place they are written; the lab reads it as a data file, never through fixtures/).
DEMO_YAML = Path(__file__).resolve().parent.parent / "demo.yaml"


def _demo_tenants(path: Path = DEMO_YAML) -> tuple[dict, ...]:
    try:
        # libyaml's loader when PyYAML has it: the pure-Python one costs ~15 ms of every lab
        # command's start (`lab up` and its supervisor both import this module).
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        tenants = tuple(dict(t) for t in yaml.load(path.read_text(), Loader=loader)["tenants"])
        for t in tenants:
            str(t["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise SystemExit(f"{path}: cannot read the tenant list 'tenants[].name' "
                         f"({type(e).__name__})")
    if not tenants:
        raise SystemExit(f"{path}: tenants: the list is empty")
    return tenants


_TENANTS = _demo_tenants()
TENANTS = tuple(str(t["name"]) for t in _TENANTS)
# OpenStack release -> the tenant of the cloud that runs it (demo.yaml `release`).
OPENSTACK_TENANTS = {str(t["release"]): str(t["name"]) for t in _TENANTS
                     if t.get("platform") == "openstack" and t.get("release")}
# The Kubernetes cluster's Datera tenant (the CSI driver's DAT_TENANT is /root/<it>).
KUBERNETES_TENANT = next((str(t["name"]) for t in _TENANTS if t.get("platform") == "kubernetes"),
                         "Vancouver-KU")
# The name the Datera lab knows its LDAP directory by (login body field `remote_server`).
LDAP_SERVER_NAME = "vancouver-ldap"
LDAP_BASE_DN = "dc=vancouver,dc=lab"
