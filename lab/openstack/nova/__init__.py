"""Nova v2.1 of the OpenStack lab: models/ (flavors, servers booted from Cinder volumes,
volume attachments and swaps, quotas, the compute hosts; compute.py for the background work),
guest.py (each server's user_data run against its volumes' data plane; the output is the
console log), responses.py and urls.py.
Nova reaches Cinder through its Volumes port (lab/openstack/ports.py), given at construction;
Cinder reaches Nova's swap_volume through its own Compute port (cinder/__init__.py).
"""
import uuid

from .. import faults
from ..cloud import PORTS, CatalogEntry, Cloud, Service
from ..microversion import MicroversionSpec
from .models import ComputeHost, ComputeModel
from .urls import ROUTES

NOVA_MICROVERSIONS = MicroversionSpec(
    service_type="compute", path_prefix="/v2.1",
    bounds=lambda p: (p.nova_min, p.nova_max),
    legacy_header="X-OpenStack-Nova-API-Version",
    new_header_honoured=lambda p: p.nova_honours_new_header)


class NovaService(Service):
    name = "nova"
    durable = ("servers", "flavors", "quotas", "keypairs")
    port = PORTS["nova"]
    error_body = staticmethod(faults.fault)
    microversions = NOVA_MICROVERSIONS
    request_id_headers = ("x-openstack-request-id", "x-compute-request-id")

    def routes(self):
        return ROUTES


def _nodes(cloud: Cloud) -> tuple[str, list]:
    """(controller name, nova-compute nodes as (name, address)): the config's compute_nodes
    other than the controller, or the controller itself in an all-in-one cloud (Mitaka, Pike)."""
    config = cloud.config
    nodes = [(n.name, n.address) for n in config.compute_nodes]
    controller = next((name for name, addr in nodes if addr == config.address),
                      f"openstack-{config.cloud}")
    computes = [(name, addr) for name, addr in nodes if addr != config.address]
    return controller, computes or [(controller, config.address)]


def compute_hosts(cloud: Cloud) -> list[ComputeHost]:
    _, nodes = _nodes(cloud)
    return [ComputeHost(id=i + 1, uuid=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                      f"{cloud.config.cloud}/{name}")),
                        name=name, address=address, iqn=f"iqn.1993-08.org.debian:01:{name}")
            for i, (name, address) in enumerate(nodes)]


def make_service(cloud: Cloud) -> NovaService:
    # Cinder is built before Nova (SERVICE_PACKAGES order); its model is Nova's Volumes port.
    volumes = cloud.model("cinder") if "cinder" in cloud.services else None
    settings = cloud.config.services.get("nova") or {}
    model = ComputeModel(profile=cloud.profile, hosts=compute_hosts(cloud),
                         controller=_nodes(cloud)[0],
                         volumes=volumes, run_dir=cloud.config.data_dir / "nova" / "instances",
                         guest_timeout=float(settings.get("guest_timeout", 300)))
    service = NovaService(cloud, model)
    # Mitaka's catalog publishes the project in the compute URL (reference §b.1).
    path = "/v2.1/{project_id}" if cloud.profile.name == "mitaka" else "/v2.1"
    service.catalog = (CatalogEntry("compute", "nova", path),)
    return service
