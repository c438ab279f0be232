"""Keystone v3 of one lab cloud: identity, tokens and the catalog of every service in it."""
from .. import faults
from ..cloud import PORTS, CatalogEntry, Cloud, Service
from .models import IdentityModel
from .urls import ROUTES


class KeystoneService(Service):
    name = "keystone"
    port = PORTS["keystone"]
    catalog = (CatalogEntry("identity", "keystone", "/v3"),)
    error_body = staticmethod(faults.keystone)
    # Tokens are left out: they lapse on a restart, clients authenticate again.
    durable = ("domains", "projects", "users", "roles", "assignments", "groups", "memberships",
               "credentials", "regions", "services_added", "endpoints_added", "endpoint_groups",
               "project_endpoints", "project_groups")

    def routes(self):
        return ROUTES


def make_service(cloud: Cloud) -> KeystoneService:
    model = IdentityModel(cloud.config)
    model.builtin = cloud.catalog      # the services the cloud runs head the catalog
    return KeystoneService(cloud, model)
