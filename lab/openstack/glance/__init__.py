"""Glance v2 of one lab cloud: images with their data in sparse files under the run dir."""
from .. import faults
from ..cloud import PORTS, CatalogEntry, Cloud, Service
from .models import ImageModel
from .urls import ROUTES


class GlanceService(Service):
    name = "glance"
    durable = ("images", "members")   # the bytes are files in data_dir/glance already
    port = PORTS["glance"]
    catalog = (CatalogEntry("image", "glance", ""),)
    error_body = staticmethod(faults.glance)

    def routes(self):
        return ROUTES


def make_service(cloud: Cloud) -> GlanceService:
    return GlanceService(cloud, ImageModel(cloud.profile, cloud.config.data_dir))
