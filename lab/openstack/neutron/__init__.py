"""The minimal Neutron of one lab cloud: one network and subnet per project, ports with a
fixed address, quotas."""
from .. import faults
from ..cloud import PORTS, CatalogEntry, Cloud, Service
from .models import NetworkModel
from .urls import ROUTES


class NeutronService(Service):
    name = "neutron"
    durable = ("networks", "subnets", "ports", "quotas", "_macs")
    port = PORTS["neutron"]
    catalog = (CatalogEntry("network", "neutron", ""),)
    error_body = staticmethod(faults.neutron)

    def routes(self):
        return ROUTES


def network_name(project_name: str) -> str:
    return f"{project_name.lower()}-net"


def make_service(cloud: Cloud) -> NeutronService:
    """Seeds one network per project of the cloud's config: the tenant's and admin's
    (10.0.0.0/24 and 10.0.1.0/24; each cloud is its own address space)."""
    model = NetworkModel()
    identity = cloud.identity
    for i, name in enumerate((cloud.config.tenant.project, cloud.config.admin.project)):
        project = identity.project_by_name(name)
        model.create_network(project.id, network_name(name), f"10.0.{i}.0/24")
    return NeutronService(cloud, model)
