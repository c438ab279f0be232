"""One cloud: its config, release profile, services (loaded from their packages) and catalog.

All services of a cloud share one asyncio loop and one `Cloud`, so services call each other's
*models* directly (Cinder reads Glance image bytes, Nova asks Neutron for a port) and never
over HTTP.

How a service plugs in
----------------------
A package `lab/openstack/<name>/` (one of SERVICE_PACKAGES) with the moto split of DESIGN §5:
`models.py` (state and behaviour, no HTTP; raises lab.openstack.errors.*), `responses.py`
(handlers: parse the Rq, call the model, return a Reply; see api.py) and `urls.py` (ROUTES,
one table of api.Route records). Its `__init__.py` defines

    def make_service(cloud: Cloud) -> Service

returning a `Service` subclass instance with:
    name            "cinder"
    port            PORTS[name]
    catalog         CatalogEntry(type, name, path) per catalog type; `path` may hold
                    "{project_id}", filled with the token's project (e.g. "/v3/{project_id}")
    error_body      the service's error renderer (faults.py: keystone, fault, neutron, glance)
    microversions   a MicroversionSpec or None (see microversion.py)
    request_id_headers  header names that carry the request id
    durable         names of the model's attributes kept across a restart (durable.py)
    model           the service's state; other services reach it as cloud.model("cinder")
    routes()        list[api.Route]
"""
import abc
import importlib
import importlib.util
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from . import faults
from .config import CloudConfig, ConfigError
from .microversion import MicroversionSpec
from .releases import PROFILES, ReleaseProfile
from lab.topology import OPENSTACK_PORTS as PORTS  # noqa: F401  (one home; services import it from here)

log = logging.getLogger("lab.openstack")

# Catalog order and start order; packages that do not exist (yet) are skipped.
SERVICE_PACKAGES = ("keystone", "glance", "neutron", "cinder", "nova")


@dataclass(frozen=True)
class CatalogEntry:
    type: str      # "volumev3"
    name: str      # "cinderv3"
    path: str      # "/v3/{project_id}"; "" for an unversioned endpoint


class Service(abc.ABC):
    """Base of every service; subclasses set the class attributes and routes()."""
    name: str = ""
    port: int = 0
    catalog: tuple = ()
    # (ApiError) -> (body bytes, content type): Nova's and Cinder's fault style by default.
    error_body: Callable = staticmethod(faults.fault)
    microversions: MicroversionSpec | None = None
    request_id_headers: tuple = ("x-openstack-request-id",)
    # The model's attributes saved in <data_dir>/<name>.db and restored on start (durable.py).
    durable: tuple = ()

    def __init__(self, cloud: "Cloud", model: Any = None):
        self.cloud = cloud
        self.model = model

    @abc.abstractmethod
    def routes(self) -> list:
        """The service's route table: a list of api.Route."""


@dataclass(frozen=True)
class AuthContext:
    """Who a validated token speaks for. project_id is None for a domain-scoped token."""
    user_id: str
    user_name: str
    user_domain_id: str
    project_id: str | None
    project_name: str | None
    domain_id: str | None          # the scope's domain (domain-scoped tokens)
    roles: tuple
    is_admin: bool
    audit_id: str


def available_services() -> list[str]:
    """The SERVICE_PACKAGES that exist in this tree."""
    return [n for n in SERVICE_PACKAGES
            if importlib.util.find_spec(f"{__package__}.{n}") is not None]


class Cloud:
    """One cloud: its config, release profile and services (by name, in catalog order)."""

    def __init__(self, config: CloudConfig):
        self.config = config
        self.profile: ReleaseProfile = PROFILES[config.release]
        self.services: dict[str, Service] = {}
        config.data_dir.mkdir(parents=True, exist_ok=True)

    def load_services(self, names=SERVICE_PACKAGES) -> None:
        for name in names:
            if name not in available_services():
                continue
            module = importlib.import_module(f"{__package__}.{name}")
            if not hasattr(module, "make_service"):
                log.warning("lab.openstack.%s has no make_service() yet: not served", name)
                continue
            self.services[name] = module.make_service(self)
        if "keystone" not in self.services:
            raise ConfigError("the keystone service is missing: every cloud needs identity")

    def model(self, name: str):
        """Another service's model, e.g. cloud.model("glance"); KeyError if not in this cloud."""
        return self.services[name].model

    @property
    def identity(self):
        """The Keystone model: .validate(token) -> AuthContext, raising errors.Unauthorized."""
        return self.services["keystone"].model

    def endpoint(self, service: str) -> str:
        return f"http://{self.config.address}:{self.services[service].port}"

    def catalog(self, project_id: str | None) -> list[dict]:
        """The token catalog. Endpoints whose path needs a project are left out of unscoped
        and domain-scoped tokens, as Keystone drops URLs it cannot substitute."""
        region = self.config.region
        out = []
        for svc in self.services.values():
            for entry in svc.catalog:
                if "{project_id}" in entry.path and project_id is None:
                    continue
                url = self.endpoint(svc.name) + entry.path.format(project_id=project_id)
                sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.config.cloud}/{entry.type}"))
                out.append({"type": entry.type, "name": entry.name, "id": sid.replace("-", ""),
                            "endpoints": [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                                f"{sid}/{iface}")).replace("-", ""),
                                           "interface": iface, "region": region,
                                           "region_id": region, "url": url}
                                          for iface in ("public", "internal", "admin")]})
        return out
