"""The lab's OpenStack components: one process per cloud (Mitaka, Newton, Pike), every service
in it (python -m lab.openstack), each an entry of lab/components.py's table."""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from lab import topology
from lab.component_base import (DATERA_ADMIN, Component, LabRun, answers_200, new_password,
                                python_module, write_private)
from lab.ldap import directory

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
        return answers_200(f"http://{oc.node.address}:{OPENSTACK_PORTS['keystone']}/v3")
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
        argv=lambda run: python_module("lab.openstack", _os_config_path(run, oc)),
        healthy=_os_healthy(oc),
        contribute=_os_contribute(oc),
        # Clients need only Keystone: its catalog names the other services.
        endpoints=((f"Keystone ({oc.cloud})",
                    f"http://{oc.node.address}:{OPENSTACK_PORTS['keystone']}/v3"),),
    )
