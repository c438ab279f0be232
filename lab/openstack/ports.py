"""The ports between one cloud's services: what each model needs of another, declared by the
one that needs it. A model is given its ports at construction (the services' make_service
factories pass the other model, or an adapter over the cloud when the other is built later);
no model assigns a function onto another.

    Cinder -> Glance   ImageSource     read an image's record and bytes (create from image)
    Cinder -> Glance   ImageStore      create an image and upload its bytes (upload to image)
    Cinder -> Nova     Compute         swap an attached volume during a migration
    Nova   -> Cinder   Volumes         the attach/detach flow, boot volumes, their bytes
"""
import abc
from dataclasses import dataclass
from typing import Protocol

from lab.openstack.caller import Caller


@dataclass(frozen=True)
class ImageData:
    """What Cinder needs of a Glance image: its record's fields and where its bytes are."""
    id: str
    name: str | None
    status: str
    size: int | None
    checksum: str | None
    disk_format: str | None
    container_format: str | None
    min_disk: int
    min_ram: int
    properties: dict
    path: str | None             # local file holding the image's bytes


class ImageSource(abc.ABC):
    """How Cinder reads images: the cloud's Glance model (adapted in cinder/__init__.py)."""

    @abc.abstractmethod
    def image(self, caller: Caller, image_id: str) -> ImageData:
        """KeyError when the image does not exist or the caller may not see it."""


class ImageStore(Protocol):
    """How Cinder writes images (os-volume_upload_image); the same adapter as ImageSource."""

    def create_image(self, caller: Caller, meta: dict) -> dict:
        """A queued image from {name, disk_format, container_format, [visibility, protected],
        properties}; its {id, name, disk_format, container_format, visibility, protected,
        status}. Raises errors.ApiError as Glance answers."""

    def upload_image(self, image_id: str, path: str) -> None:
        """The file's bytes become the image's data; the image ends active."""

    def delete_queued_image(self, image_id: str) -> None:
        """Deletes the image if it is still queued or saving (a failed upload)."""


class Compute(Protocol):
    """What Cinder needs of Nova: the swap of reference openstack-api §c.2 step 5."""

    def swap_volume(self, server_id: str, old_volume_id: str, new_volume_id: str) -> None:
        """Exports new_volume_id to the server's host and moves its device there (Cinder has
        copied the bytes; a running guest's writes since then are copied by Nova's pivot; the
        device keeps old_volume_id). Raises errors.ApiError or
        cinder.backends.BackendError when it cannot; the migration then fails."""


class Volumes(Protocol):
    """What Nova needs of Cinder (a CinderModel). Every call takes the Caller Nova was given;
    each raises errors.ApiError subclasses as Cinder's API would answer."""

    def get_volume(self, caller: Caller, volume_id: str): ...

    def create_volume(self, caller: Caller, **kwargs): ...

    def wait_for_volume(self, volume_id: str, statuses: tuple, timeout: float) -> str:
        """Blocks until the volume's status is one of `statuses` or `timeout` seconds pass;
        returns its status then."""

    def delete_volume(self, caller: Caller, volume_id: str) -> None: ...

    # the attach flow Nova's compute manager drives (reference openstack-api §c.3)
    def reserve(self, caller: Caller, volume_id: str) -> None: ...

    def unreserve(self, caller: Caller, volume_id: str) -> None: ...

    def initialize_connection(self, caller: Caller, volume_id: str, connector: dict) -> dict:
        """connection_info ({"driver_volume_type", "data"}); blocks on the backend."""

    def terminate_connection(self, caller: Caller, volume_id: str, connector: dict) -> None: ...

    def attach(self, caller: Caller, volume_id: str, *, instance_uuid=None, host_name=None,
               mountpoint=None, mode="rw"): ...

    def begin_detaching(self, caller: Caller, volume_id: str) -> None: ...

    def roll_detaching(self, caller: Caller, volume_id: str) -> None: ...

    def detach(self, caller: Caller, volume_id: str, attachment_id: str | None = None) -> None: ...

    def driver_ref(self, volume_id: str) -> tuple:
        """(driver, VolumeRef): how a guest reaches an RBD volume's bytes (local_access)."""
