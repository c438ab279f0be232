"""Upload a volume to an image (`os-volume_upload_image`), both halves.

API half, as cinder/api/contrib/volume_actions.py _volume_upload_image and
cinder/volume/api.py copy_volume_to_image (8.0.0-11.0.0):
    image_name required                400 "No image_name was specified in request."
    force a strict boolean             400 "Invalid value for 'force': ..."
    disk_format one of Cinder's        400 "Invalid disk-format '<f>' is specified. ..."
    3.1+: visibility (default private) and protected (default False); `public` needs the
          admin-only policy volume_extension:volume_actions:upload_public (403)
    status: `available`, or `in-use` with force (the lab's cinder.conf sets
          enable_force_upload = True; with Cinder's default False, force is ignored).
          Mitaka words it as _check_volume_availability (in-use without force:
          "Volume <v> is still attached, detach volume first."); Newton and Pike as the
          conditional update ("Volume <v> status must be available[ or in-use]").
then the image is created in Glance (queued, owned by the caller's project, the volume's
non-core image properties copied), the volume goes `uploading`, and the answer is
{"os-volume_upload_image": {id, updated_at, status, display_description, size, volume_type,
image_id, container_format, disk_format, image_name, protected, is_public|visibility}}:
`is_public` where Cinder talks Glance v1 (glance_api_version 1: Mitaka, Newton), `visibility`
where it talks v2 (Pike).

Manager half (volume/manager.py copy_volume_to_image, image_utils.upload_volume): the volume
attached on the host (backend local_access), `qemu-img convert -O <format>` to a temporary
file, the file uploaded as the image's data (Glance computes size and checksum: `active`).
Either way the volume ends `in-use` or `available` by its attachments
(volume_update_status_based_on_attachment); on failure a queued/saving image is deleted and
the reason logged and left as a user message.
"""
import os
import subprocess
import tempfile

from lab.openstack import errors
from lab.openstack.caller import Caller
from lab.openstack.cinder.backends import BackendError
from lab.openstack.microversion import Microversion

from .helpers import _reason
from .manager import log

# image_utils.VALID_DISK_FORMATS (11.0.0) -> qemu-img's output format
VALID_DISK_FORMATS = {"raw": "raw", "vmdk": "vmdk", "vdi": "vdi", "qcow2": "qcow2",
                      "vhd": "vpc", "vhdx": "vhdx", "ploop": "parallels"}
# CONF.glance_core_properties' default: the image properties never copied to a new image
GLANCE_CORE_PROPERTIES = ("checksum", "container_format", "disk_format", "image_name",
                          "image_id", "min_disk", "min_ram", "name", "size")
QEMU_IMG_TIMEOUT_S = 900
_BOOL_STRS = ("0", "1", "f", "false", "n", "no", "off", "on", "t", "true", "y", "yes")


def _strict_bool(value) -> bool:
    """oslo strutils.bool_from_string(strict=True); ValueError with its message."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _BOOL_STRS:
        raise ValueError(f"Unrecognized value '{value}', acceptable values are: "
                         + ", ".join(f"'{s}'" for s in _BOOL_STRS))
    return text in ("1", "on", "t", "true", "y", "yes")


class UploadMixin:
    enable_force_upload = True        # the lab's cinder.conf (Cinder's default is False)

    def upload_to_image(self, caller: Caller, volume_id: str, params: dict,
                        version: Microversion | None) -> dict:
        if not params.get("image_name"):
            raise errors.BadRequest("No image_name was specified in request.")
        try:
            force = _strict_bool(params.get("force", "False"))
        except ValueError as e:
            raise errors.BadRequest(f"Invalid value for 'force': {e}") from None
        v = self.get_volume(caller, volume_id)
        disk_format = params.get("disk_format", "raw")
        if disk_format not in VALID_DISK_FORMATS:
            raise errors.BadRequest(f"Invalid disk-format '{disk_format}' is specified. "
                                    f"Allowed disk-formats are "
                                    f"{', '.join(VALID_DISK_FORMATS)}.")
        meta = {"container_format": params.get("container_format", "bare"),
                "disk_format": disk_format, "name": params["image_name"]}
        if version is not None and version >= Microversion(3, 1):
            meta["visibility"] = params.get("visibility", "private")
            if meta["visibility"] == "public" and not caller.is_admin:
                raise errors.policy_forbids("volume_extension:volume_actions:upload_public")
            protected = params.get("protected", "False")
            try:
                meta["protected"] = _strict_bool(protected)
            except ValueError:
                raise errors.BadRequest(f"Value '{protected}' for 'protected' is not a "
                                        "boolean.", kind="InvalidParameterValue") from None
        store = self.images
        if store is None or not hasattr(store, "create_image"):
            raise errors.BadRequest("Invalid input received: no image service to upload to",
                                    kind="InvalidInput")
        force = force and self.enable_force_upload
        with self.lock:
            v = self._volume(caller, volume_id)
            self._check_uploadable(v, force)
            meta["properties"] = {k: val for k, val in (v.image_metadata or {}).items()
                                  if k not in GLANCE_CORE_PROPERTIES}
            updated_at = v.updated_at
            v.previous_status, v.status = v.status, "uploading"
            self._touch(v)
        try:
            image = store.create_image(caller, meta)
        except Exception as e:   # Cinder rolls the status back and answers 400 with the error
            with self.lock:
                v.status, v.previous_status = v.previous_status or "available", None
                self._touch(v)
            if isinstance(e, errors.ApiError):
                raise errors.BadRequest(e.message) from None
            log.error("image create for volume %s failed", v.id, exc_info=e)
            raise errors.BadRequest("An unknown error occurred.") from None
        with self.lock:
            self._submit(self._upload_worker, v.id, image["id"], disk_format,
                         on_crash=self._upload_crashed(v, image["id"]))
            vt = self.volume_type_of(v)
        answer = {"id": v.id, "updated_at": updated_at, "status": "uploading",
                  "display_description": v.description, "size": v.size,
                  "volume_type": self._upload_type_view(vt), "image_id": image["id"],
                  "container_format": image["container_format"],
                  "disk_format": image["disk_format"], "image_name": image["name"],
                  "protected": image["protected"]}
        if self.profile.cinder_max >= Microversion(3, 27):    # Pike: Glance v2
            answer["visibility"] = image["visibility"]
        else:
            answer["is_public"] = image["visibility"] == "public"
        return answer

    def _check_uploadable(self, v, force: bool) -> None:
        if self.profile.cinder_max == Microversion(3, 0):    # Mitaka's two checks
            if v.status not in ("available", "in-use"):
                raise errors.BadRequest(f"Invalid volume: Volume {v.id} status must be "
                                        f"available or in-use, but current status is: "
                                        f"{v.status}.", kind="InvalidVolume")
            if v.status == "in-use" and not force:
                raise errors.BadRequest(f"Volume {v.id} is still attached, detach volume "
                                        "first.", kind="VolumeInUse")
            return
        allowed = ("available", "in-use") if force else ("available",)
        if v.status not in allowed:
            raise errors.BadRequest(f"Invalid volume: Volume {v.id} status must be "
                                    f"{' or '.join(allowed)}", kind="InvalidVolume")

    @staticmethod
    def _upload_type_view(vt) -> dict | None:
        """The volume's VolumeType object as Cinder serialises it into this answer."""
        if vt is None:
            return None
        return {"id": vt.id, "name": vt.name, "description": vt.description,
                "is_public": vt.is_public, "extra_specs": dict(vt.extra_specs),
                "qos_specs_id": vt.qos_specs_id, "deleted": False, "deleted_at": None,
                "created_at": getattr(vt, "created_at", None), "updated_at": None}

    def _settle_after_upload(self, v) -> None:
        v.status = "in-use" if v.attachments else "available"
        v.previous_status = None
        self._touch(v)

    def _upload_crashed(self, v, image_id: str):
        def mark():
            self.images.delete_queued_image(image_id)
            self._settle_after_upload(v)
        return mark

    def _upload_worker(self, vol_id: str, image_id: str, disk_format: str) -> None:
        with self.lock:
            vol = self.volumes[vol_id]
            driver, ref = self.drivers[vol.backend], self._ref(vol)
        fd, tmp = tempfile.mkstemp(prefix=f"upload-{vol_id}-", suffix=f".{disk_format}")
        os.close(fd)
        try:
            with driver.local_access(ref) as src:
                proc = subprocess.run(
                    ["qemu-img", "convert", "-f", "raw", "-O", VALID_DISK_FORMATS[disk_format],
                     src, tmp], capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT_S)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
                raise BackendError(f"Failed to convert the volume to {disk_format}: {last}")
            self.images.upload_image(image_id, tmp)
        except Exception as e:
            reason = _reason(e, log)
            log.warning("Upload volume to image encountered an error (image-id: %s): %s",
                        image_id, reason)
            self.images.delete_queued_image(image_id)
            with self.lock:
                vol = self.volumes[vol_id]
                self._user_message(vol.project_id, vol.id, "upload_failed")
                self._settle_after_upload(vol)
            return
        finally:
            os.unlink(tmp)
        with self.lock:
            self._settle_after_upload(self.volumes[vol_id])
