"""Cinder v3 of one lab cloud: models/ (one module per family: types and QoS, quotas, volumes,
attachments, snapshots, retype and migration, and manager.py for the background work),
backends/ (datera through dfs_sdk, ceph as sparse files), responses/ and urls.py (the HTTP
layer). make_service builds both backends from config.services["cinder"]:

    {"datera": {"mgmt_ip", "http_port", "username", "password", "tenant": "/root/<name>"},
     "ceph": {"address"}}

Cinder reaches Glance and Nova through the ports it declares (lab/openstack/ports.py), given
at construction: GlanceImages and NovaCompute below adapt the cloud's other models. Nova is
built after Cinder, so NovaCompute looks it up when a migration needs it. Nova reaches this
model as its Volumes port (nova/__init__.py).

(CinderSettings below: a bad key is one ConfigError line naming services.cinder.<key>.)
"""
from pydantic import Field

from lab.config_file import ConfigModel, Port, parse

from ..errors import NotFound
from .. import faults
from ..cloud import PORTS, CatalogEntry, Cloud, Service
from ..config import ConfigError
from ..microversion import MicroversionSpec
from .backends.ceph import CephDriver
from .backends.datera import DateraConfig, DateraDriver
from ..ports import Compute, ImageData, ImageSource
from .backends import BackendError
from .backup_posix import PosixBackupDriver
from .models import Caller, CinderModel
from .urls import ROUTES


# The Datera driver each release shipped (cinder/volume/drivers/datera*: VERSION).
DATERA_DRIVER_VERSIONS = {"mitaka": "2.0", "newton": "2.2", "pike": "2.4.0"}


class CinderService(Service):
    name = "cinder"
    durable = ("volumes", "snapshots", "types", "qos", "quotas", "attachments", "messages",
               "backups")
    port = PORTS["cinder"]
    catalog = (CatalogEntry("volumev3", "cinderv3", "/v3/{project_id}"),)
    error_body = staticmethod(faults.fault)
    # Cinder reads `OpenStack-API-Version: volume X.Y` on /v3 URLs only.
    microversions = MicroversionSpec("volume", "/v3", lambda p: (p.cinder_min, p.cinder_max))

    def routes(self):
        return ROUTES


class GlanceImages(ImageSource):
    """Cinder's view of the cloud's Glance model: the record's fields and its data file."""

    def __init__(self, cloud: Cloud):
        self.cloud = cloud

    def image(self, caller: Caller, image_id: str) -> ImageData:
        glance = self.cloud.model("glance")
        try:
            img = glance.get(image_id, caller.project_id, caller.is_admin)
        except NotFound:
            raise KeyError(image_id) from None
        path = glance.data_path(img.id)
        return ImageData(id=img.id, name=img.name, status=img.status, size=img.size,
                         checksum=img.checksum, disk_format=img.disk_format,
                         container_format=img.container_format, min_disk=img.min_disk,
                         min_ram=img.min_ram, properties=dict(img.properties),
                         path=str(path) if path.exists() else None)


    # -- the ImageStore half (ports.py): os-volume_upload_image ------------------------------
    def create_image(self, caller: Caller, meta: dict) -> dict:
        """A queued image as Cinder's image_service.create makes it; errors.ApiError (Glance's
        answer) when Glance refuses the record."""
        glance = self.cloud.model("glance")
        body = {k: v for k, v in meta.items() if k != "properties"}
        body.update(meta.get("properties") or {})
        img = glance.create(body, caller.project_id, caller.is_admin)
        return {"id": img.id, "name": img.name, "disk_format": img.disk_format,
                "container_format": img.container_format, "visibility": img.visibility,
                "protected": img.protected, "status": img.status}

    def upload_image(self, image_id: str, path: str) -> None:
        """The file's bytes as the image's data (queued -> saving -> active)."""
        glance = self.cloud.model("glance")
        upload = glance.begin_upload(glance.get(image_id))
        try:
            with open(path, "rb") as f:
                while chunk := f.read(4 << 20):
                    upload.write(chunk)
        except BaseException:
            upload.fail()
            raise
        upload.finish()

    def delete_queued_image(self, image_id: str) -> None:
        """Cinder's _delete_image after a failed upload: only a queued or saving image."""
        glance = self.cloud.model("glance")
        try:
            img = glance.get(image_id)
        except NotFound:
            return
        if img.status in ("queued", "saving"):
            img.protected = False
            glance.delete(img)


class NovaCompute(Compute):
    """Cinder's view of the cloud's Nova model: the swap of an attached volume."""

    def __init__(self, cloud: Cloud):
        self.cloud = cloud

    def swap_volume(self, server_id: str, old_volume_id: str, new_volume_id: str) -> None:
        if "nova" not in self.cloud.services:
            raise BackendError("the volume is attached and no compute service can swap it")
        self.cloud.model("nova").swap_volume(server_id, old_volume_id, new_volume_id)


class DateraBackend(ConfigModel):
    """services.cinder.datera: the Datera lab as this cloud's Datera tenant."""
    mgmt_ip: str
    username: str
    password: str = Field(repr=False)
    tenant: str                       # "/root/<name>", "<name>", or "" (datera_tenant_id unset)
    http_port: Port | None = None     # set: plain HTTP on the REST port; unset: https
    ca_file: str | None = None
    ldap_server: str | None = None    # datera_ldap_server: `username` is a directory user


class CephBackend(ConfigModel):
    """services.cinder.ceph: the RBD-like pool of sparse files."""
    address: str | None = None        # the monitor; default: the cloud's address


class CinderSettings(ConfigModel):
    datera: DateraBackend | None = None
    ceph: CephBackend | None = None


def _drivers(cloud: Cloud) -> dict:
    cfg = cloud.config
    settings = parse(cfg.services.get("cinder") or {}, CinderSettings, ("services", "cinder"))
    drivers = {}
    datera = settings.datera
    if datera:
        tenant = datera.tenant
        drivers["datera"] = DateraDriver(DateraConfig(
            san_ip=datera.mgmt_ip, san_login=datera.username,
            san_password=datera.password,
            tenant=tenant.removeprefix("/root").strip("/"),
            fast_retype=cloud.profile.datera_fast_retype,
            host_iqn=f"iqn.2010-10.org.openstack:{cfg.cloud}-cinder", host_ip=cfg.address,
            # The lab's config names the plain-HTTP REST port; dfs_sdk uses 7717 unsecured.
            secure=datera.http_port is None, ca_file=datera.ca_file,
            ldap_server=datera.ldap_server,
            driver_version=DATERA_DRIVER_VERSIONS.get(cloud.profile.name, "2.4.0")))
    ceph = settings.ceph
    if ceph is not None:
        drivers["ceph"] = CephDriver(pool_dir=cfg.data_dir / "ceph",
                                     monitor=ceph.address or cfg.address)
    if not drivers:
        raise ConfigError("services.cinder: no backend configured (datera and/or ceph)")
    return drivers


def host_name(cloud: Cloud) -> str:
    """The cinder-volume host: the cloud's controller node."""
    nodes = cloud.config.compute_nodes
    return nodes[0].name if nodes else cloud.config.cloud


def make_service(cloud: Cloud) -> CinderService:
    drivers = _drivers(cloud)
    # An untyped volume lands on ceph, as the demo's "volume on ceph" step expects.
    default = "ceph" if "ceph" in drivers else next(iter(drivers))
    model = CinderModel(profile=cloud.profile, host=host_name(cloud), drivers=drivers,
                        default_backend=default, images=GlanceImages(cloud),
                        compute=NovaCompute(cloud),
                        backup_driver=PosixBackupDriver(cloud.config.data_dir / "backup"))
    return CinderService(cloud, model)
