"""Glance's state and behaviour: images, their properties, visibility and data. No HTTP.

Image bytes live in a sparse file per image under <data_dir>/glance/ (runs of zeros are
skipped, not written). Other services read them through `data_path()`: Cinder's create-from-
image copies the file's bytes.
"""
import hashlib
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..releases import ReleaseProfile

CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker")
STATUSES = ("queued", "saving", "active", "killed", "deleted", "pending_delete", "deactivated")
# Attributes a client may not set (Glance answers 403 "Attribute 'x' is read-only.").
READ_ONLY = ("status", "size", "virtual_size", "checksum", "created_at", "updated_at", "file",
             "self", "schema", "direct_url", "locations", "location")
# Attributes Glance reserves for itself (403 "Attribute 'x' is reserved.").
RESERVED = ("owner_id", "deleted", "deleted_at", "is_public")
CORE = ("name", "visibility", "protected", "tags", "container_format", "disk_format",
        "min_disk", "min_ram", "owner", "id")
ZERO_CHUNK = bytes(1 << 16)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Image:
    id: str
    name: str | None
    owner: str
    visibility: str
    disk_format: str | None = None
    container_format: str | None = None
    status: str = "queued"
    protected: bool = False
    min_disk: int = 0
    min_ram: int = 0
    size: int | None = None
    checksum: str | None = None
    tags: list = field(default_factory=list)
    properties: dict = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    def touch(self) -> None:
        self.updated_at = now_iso()


class ImageModel:
    def __init__(self, profile: ReleaseProfile, data_dir: Path):
        self.profile = profile
        self.dir = data_dir / "glance"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.images: dict[str, Image] = {}       # in creation order
        self.members: dict[str, dict] = {}       # image id -> {project id: members.Member}

    # -- access --------------------------------------------------------------------------

    def visible(self, image: Image, project_id: str | None, is_admin: bool) -> bool:
        """Admin, owner, public and community images, and a member's (any status)."""
        return (is_admin or image.owner == project_id
                or image.visibility in ("public", "community")
                or project_id in self.members.get(image.id, {}))

    def get(self, image_id: str, project_id: str | None = None, is_admin: bool = True) -> Image:
        image = self.images.get(image_id)
        if image is None or not self.visible(image, project_id, is_admin):
            raise NotFound(f"No image found with ID {image_id}", kind="ImageNotFound")
        return image

    def data_path(self, image_id: str) -> Path:
        return self.dir / f"{image_id}.img"

    def listing(self, project_id: str | None, is_admin: bool) -> list[Image]:
        """What an image list may show the caller, newest first (Glance's default sort).
        Community images are listed only when asked for (visibility=community), as Glance
        does; the response layer applies that and the other filters."""
        return sorted((i for i in self.images.values() if self.visible(i, project_id, is_admin)),
                      key=lambda i: (i.created_at, list(self.images).index(i.id)), reverse=True)

    # -- create, update, delete ----------------------------------------------------------

    def _check_visibility(self, value, is_admin: bool) -> str:
        if value not in self.profile.glance_visibilities:
            allowed = ", ".join(repr(v) for v in self.profile.glance_visibilities)
            raise BadRequest(f"Provided object does not match schema 'image': {value!r} is not "
                             f"one of [{allowed}]", kind="SchemaValidation")
        if value == "public" and not is_admin:
            raise Forbidden("You are not authorized to complete publicize_image action.",
                            kind="Forbidden")
        return value

    def _set(self, image: Image, key: str, value, is_admin: bool) -> None:
        if key in READ_ONLY:
            raise Forbidden(f"Attribute '{key}' is read-only.", kind="Forbidden")
        if key in RESERVED:
            raise Forbidden(f"Attribute '{key}' is reserved.", kind="Forbidden")
        if key == "visibility":
            image.visibility = self._check_visibility(value, is_admin)
        elif key == "name":
            if value is not None and (not isinstance(value, str) or len(value) > 255):
                raise _schema(f"{value!r} is not of type 'string' or longer than 255")
            image.name = value
        elif key in ("disk_format", "container_format"):
            allowed = (self.profile.glance_disk_formats if key == "disk_format"
                       else CONTAINER_FORMATS)
            if value is not None and value not in allowed:
                raise BadRequest(f"Invalid value '{value}' for parameter '{key}'",
                                 kind="SchemaValidation")
            if image.status != "queued":
                raise Forbidden(f"Attribute '{key}' can be only replaced for a queued image.")
            setattr(image, key, value)
        elif key in ("min_disk", "min_ram"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _schema(f"{value!r} is not a non-negative integer ({key})")
            setattr(image, key, value)
        elif key == "protected":
            if not isinstance(value, bool):
                raise _schema(f"{value!r} is not of type 'boolean' (protected)")
            image.protected = value
        elif key == "tags":
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise _schema("tags must be a list of strings")
            image.tags = list(dict.fromkeys(value))
        elif key == "owner":
            if not is_admin and value != image.owner:
                raise Forbidden("Owner can't be updated by non admin.")
            image.owner = value
        else:
            # Extra properties are strings in Glance's v2 schema.
            if not isinstance(value, str):
                raise _schema(f"{value!r} is not of type 'string' ({key})")
            image.properties[key] = value

    def create(self, body: dict, project_id: str, is_admin: bool) -> Image:
        image_id = body.get("id") or str(uuid.uuid4())
        try:
            image_id = str(uuid.UUID(str(image_id)))
        except ValueError:
            raise _schema(f"{body.get('id')!r} does not match the uuid format") from None
        if image_id in self.images:
            raise Conflict(f"An image with identifier {image_id} already exists",
                           kind="Duplicate")
        image = Image(image_id, None, project_id, self.profile.glance_default_visibility)
        for key, value in body.items():
            if key != "id":
                self._set(image, key, value, is_admin)
        self.images[image_id] = image
        return image

    def update(self, image: Image, changes: list[tuple[str, str, object]], is_admin: bool) -> Image:
        """JSON-patch style changes: (op, attribute, value) with op add|replace|remove."""
        for op, key, value in changes:
            if op == "remove":
                if key in CORE or key in READ_ONLY:
                    raise Forbidden(f"Properties {key} must be removed only by deleting the "
                                    "whole image." if key in CORE else
                                    f"Attribute '{key}' is read-only.")
                if key not in image.properties:
                    raise Conflict(f"Property {key} does not exist.")
                del image.properties[key]
            else:
                self._set(image, key, value, is_admin)
        image.touch()
        return image

    def delete(self, image: Image) -> None:
        if image.protected:
            raise Forbidden(f"Image {image.id} is protected and cannot be deleted.")
        self.data_path(image.id).unlink(missing_ok=True)
        del self.images[image.id]
        self.members.pop(image.id, None)

    def add_tag(self, image: Image, tag: str) -> None:
        if tag not in image.tags:
            image.tags.append(tag)
        image.touch()

    def remove_tag(self, image: Image, tag: str) -> None:
        if tag not in image.tags:
            raise NotFound(f"Tag {tag} not found")
        image.tags.remove(tag)
        image.touch()

    # -- data ----------------------------------------------------------------------------

    def begin_upload(self, image: Image) -> "Upload":
        if image.status != "queued":
            raise Conflict(f"Image status transition from {image.status} to saving is not "
                           "allowed", kind="InvalidImageStatusTransition")
        # glance/domain Image.status setter: queued -> saving needs both formats (400, the
        # image stays queued)
        missing = [k for k in ("disk_format", "container_format") if not getattr(image, k)]
        if missing:
            raise BadRequest(f"Propert{'ies' if len(missing) > 1 else 'y'} "
                             f"{', '.join(missing)} must be set prior to saving data.")
        image.status = "saving"
        image.touch()
        return Upload(self, image)


class Upload:
    """Writes an image's bytes as they arrive: zero runs become holes (a sparse file)."""

    def __init__(self, model: ImageModel, image: Image):
        self.model, self.image = model, image
        self.md5 = hashlib.md5()
        self.size = 0
        self.path = model.data_path(image.id)
        self.file = open(self.path, "wb")

    def write(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        for off in range(0, len(chunk), len(ZERO_CHUNK)):
            piece = chunk[off:off + len(ZERO_CHUNK)]
            if piece == ZERO_CHUNK[:len(piece)]:
                self.file.seek(len(piece), os.SEEK_CUR)
            else:
                self.file.write(piece)
        self.size += len(chunk)

    def finish(self) -> Image:
        self.file.truncate(self.size)
        self.file.close()
        if self.image.id not in self.model.images:   # deleted while uploading
            self.path.unlink(missing_ok=True)
            raise Conflict(f"Image {self.image.id} was deleted during the upload.")
        self.image.size, self.image.checksum = self.size, self.md5.hexdigest()
        self.image.status = "active"
        self.image.touch()
        return self.image

    def fail(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)
        # Glance puts a failed upload back to queued so that it may be retried.
        self.image.status = "queued"
        self.image.touch()


def _schema(detail: str) -> BadRequest:
    return BadRequest(f"Provided object does not match schema 'image': {detail}",
                      kind="SchemaValidation")
