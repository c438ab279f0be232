"""Volumes: the API half of create (from nothing, an image, a snapshot or another volume),
show/list/update, bootable, delete, extend and reset-status; the scheduler's backend choice;
the VolumeRef a driver sees. The work that follows each request is in manager.py."""
import math
import uuid

from lab.openstack import errors
from lab.openstack.caller import Caller
from lab.openstack.microversion import Microversion
from lab.openstack.cinder.backends import VolumeRef
from lab.openstack.ports import ImageData

from .helpers import _boolish, _positive_int
from .records import DELETABLE, GiB, Volume, VolumeType

# os-reset_status's lists (cinder/api/contrib/admin_actions.py, 8.0.0-11.0.0).
RESET_STATUSES = ("creating", "available", "deleting", "error", "error_deleting",
                  "error_managing", "managing", "attaching", "in-use", "detaching",
                  "maintenance")
RESET_MIGSTATS = ("migrating", "error", "success", "completing", "none", "starting")


class VolumesMixin:
    def _volume(self, caller: Caller, volume_id: str) -> Volume:
        v = self.volumes.get(volume_id)
        if v is None or (v.project_id != caller.project_id and not caller.is_admin):
            raise errors.NotFound(f"Volume {volume_id} could not be found.",
                                  kind="VolumeNotFound")
        return v

    def get_volume(self, caller: Caller, volume_id: str) -> Volume:
        with self.lock:
            return self._volume(caller, volume_id)

    def list_volumes(self, caller: Caller, *, all_tenants: bool = False,
                     filters: dict | None = None) -> list[Volume]:
        with self.lock:
            vols = [v for v in self.volumes.values()
                    if v.project_id == caller.project_id or (caller.is_admin and all_tenants)]
            for k, want in (filters or {}).items():
                if k == "name":
                    vols = [v for v in vols if v.name == want]
                elif k == "status":
                    vols = [v for v in vols if v.status == want]
                elif k == "project_id":
                    vols = [v for v in vols if v.project_id == want]
            return sorted(vols, key=lambda v: v.created_at, reverse=True)

    def volume_type_of(self, volume: Volume) -> VolumeType | None:
        return self.types.get(volume.volume_type_id) if volume.volume_type_id else None

    def _ref(self, v: Volume, *, type_id: str | None = None, backend_id: str | None = None
             ) -> VolumeRef:
        specs, qos, _ = self._specs_of(type_id if type_id is not None else v.volume_type_id)
        return VolumeRef(id=backend_id or v.backend_id, size_gib=v.size, project_id=v.project_id,
                         display_name=v.name or "", extra_specs=specs, qos_specs=qos,
                         provider_auth=v.provider_auth, provider_location=v.provider_location)

    def create_volume(self, caller: Caller, *, size=None, name=None, description=None,
                      volume_type=None, image_id=None, snapshot_id=None, source_volid=None,
                      metadata=None, availability_zone=None, multiattach=False) -> Volume:
        if sum(x is not None for x in (image_id, snapshot_id, source_volid)) > 1:
            raise errors.BadRequest("Invalid input received: only one of imageRef, snapshot_id "
                                    "and source_volid may be given", kind="InvalidInput")
        if metadata is not None and not isinstance(metadata, dict):
            raise errors.BadRequest("Invalid input received: metadata must be a dict",
                                    kind="InvalidInput")
        if availability_zone not in (None, "nova"):
            raise errors.BadRequest(f"Invalid input received: Availability zone "
                                    f"'{availability_zone}' is invalid.",
                                    kind="InvalidAvailabilityZone")
        image = None
        with self.lock:
            source = snap = None
            if snapshot_id is not None:
                snap = self._snapshot(caller, snapshot_id)
                if snap.status != "available":
                    raise errors.BadRequest(f"Invalid snapshot: Originating snapshot status "
                                            f"must be one of 'available' values",
                                            kind="InvalidSnapshot")
                source = self.volumes.get(snap.volume_id)
            if source_volid is not None:
                source = self._volume(caller, source_volid)
                if source.status not in ("available", "in-use"):
                    raise errors.BadRequest("Invalid volume: Unable to clone volumes that are "
                                            f"in a {source.status} state.",
                                            kind="InvalidVolume")
        if image_id is not None:
            image = self._image(caller, image_id)
        if size is None:
            if image is not None:
                size = max(1, math.ceil((image.size or 0) / GiB), image.min_disk)
            elif snap is not None:
                size = snap.size
            elif source is not None:
                size = source.size
        size = _positive_int(size)
        with self.lock:
            if volume_type is not None:
                vt = self._type(caller, volume_type)
                self._check_source_type(vt, snap, source if source_volid else None)
            elif snap is not None:
                vt = self.types.get(snap.volume_type_id) if snap.volume_type_id else None
            elif source is not None:
                vt = self.volume_type_of(source)   # clones keep the source's type
            else:
                vt = None
            if snap is not None and size < snap.size:
                raise errors.BadRequest(f"Invalid input received: Volume size '{size}'GB cannot "
                                        f"be smaller than the snapshot size {snap.size}GB. They "
                                        "must be >= original snapshot size.",
                                        kind="InvalidInput")
            if source is not None and source_volid is not None and size < source.size:
                raise errors.BadRequest(f"Invalid input received: Volume size '{size}'GB cannot "
                                        f"be smaller than original volume size {source.size}GB. "
                                        "They must be >= original volume size.",
                                        kind="InvalidInput")
            if image is not None:
                image_gib = math.ceil((image.size or 0) / GiB)
                if image_gib > size:
                    raise errors.BadRequest(f"Invalid input received: Size of specified image "
                                            f"{image_gib}GB is larger than volume size {size}GB.",
                                            kind="InvalidInput")
                if image.min_disk > size:
                    raise errors.BadRequest(f"Invalid input received: Volume size {size}GB cannot "
                                            f"be smaller than the image minDisk size "
                                            f"{image.min_disk}GB.", kind="InvalidInput")
            self._check_quota(caller.project_id, vt, size)
            vol = Volume(id=str(uuid.uuid4()), project_id=caller.project_id,
                         user_id=caller.user_id, name=name, description=description, size=size,
                         volume_type_id=vt.id if vt else None, metadata=dict(metadata or {}),
                         snapshot_id=snapshot_id, source_volid=source_volid,
                         multiattach=bool(multiattach))
            self.volumes[vol.id] = vol
            self._submit(self._create_worker, vol.id, image, snap.id if snap else None,
                         source.id if source is not None and source_volid else None,
                         on_crash=self._crashed(vol, "error"))
            return vol

    def _check_source_type(self, vt: VolumeType, snap, source) -> None:
        """A type other than the source's must name the same volume_backend_name
        (cinder/volume/api.py create, _retype_is_possible; the same in 8.0.0-11.0.0)."""
        def same_backend(old_type_id):
            old = self.types.get(old_type_id) if old_type_id else None
            a = (old.extra_specs if old else {}).get("volume_backend_name")
            b = vt.extra_specs.get("volume_backend_name")
            return len(self.drivers) == 1 or bool(a and b and a == b)
        if source is not None and vt.id != source.volume_type_id \
                and not same_backend(source.volume_type_id):
            raise errors.BadRequest(f"Invalid input received: Invalid volume_type provided: "
                                    f"{vt.id} (requested type is not compatible; either match "
                                    "source volume, or omit type argument).",
                                    kind="InvalidInput")
        if snap is not None and vt.id != snap.volume_type_id \
                and not same_backend(snap.volume_type_id):
            raise errors.BadRequest(f"Invalid input received: Invalid volume_type provided: "
                                    f"{vt.id} (requested type is not compatible; recommend "
                                    "omitting the type argument).", kind="InvalidInput")

    def _image(self, caller: Caller, image_id: str) -> ImageData:
        if self.images is None:
            raise errors.BadRequest("Invalid image identifier or unable to access requested "
                                    "image.", kind="InvalidInput")
        try:
            image = self.images.image(caller, image_id)
        except KeyError:
            raise errors.BadRequest("Invalid image identifier or unable to access requested "
                                    "image.", kind="InvalidInput") from None
        if image.status != "active" or not image.path:
            raise errors.BadRequest(f"Invalid input received: Image {image_id} is not active.",
                                    kind="InvalidInput")
        return image

    def update_volume(self, caller: Caller, volume_id: str, *, name=None, description=None,
                      metadata=None) -> Volume:
        with self.lock:
            v = self._volume(caller, volume_id)
            if name is not None:
                v.name = name
            if description is not None:
                v.description = description
            if metadata is not None:
                if not isinstance(metadata, dict):
                    raise errors.BadRequest("Invalid input received: metadata must be a dict",
                                            kind="InvalidInput")
                v.metadata = dict(metadata)
            self._touch(v)
            return v

    def update_readonly_flag(self, caller: Caller, volume_id: str, readonly) -> None:
        """os-update_readonly_flag (cinder/volume/api.py update_readonly_flag): available
        volumes only; a read-only volume attaches only with mode ro."""
        if isinstance(readonly, str) and readonly.lower() in ("true", "false", "1", "0", "yes",
                                                               "no", "on", "off", "t", "f",
                                                               "y", "n"):
            readonly = readonly.lower() in ("true", "1", "yes", "on", "t", "y")
        if not isinstance(readonly, bool):
            raise errors.BadRequest("Bad value for 'readonly'")
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.status != "available":
                raise errors.BadRequest(f"Invalid volume: Volume {v.id} status must be available "
                                        f"to update readonly flag, but current status is: "
                                        f"{v.status}.", kind="InvalidVolume")
            v.readonly = readonly
            self._touch(v)

    def set_bootable(self, caller: Caller, volume_id: str, bootable) -> None:
        with self.lock:
            v = self._volume(caller, volume_id)
            v.bootable = _boolish(bootable, "bootable")
            self._touch(v)

    def delete_volume(self, caller: Caller, volume_id: str, *, cascade: bool = False,
                      force: bool = False) -> None:
        with self.lock:
            v = self._volume(caller, volume_id)
            if force and not caller.is_admin:
                raise errors.policy_forbids("volume_extension:volume_admin_actions:force_delete")
            snaps = [s for s in self.snapshots.values() if s.volume_id == v.id]
            mv = self.profile.cinder_max
            # Error_managing is deletable from Ocata (3.16+); groups replace consistency
            # groups in Newton's words (cinder/volume/api.py delete, 8.0.0/9.0.0/11.0.0).
            deletable = DELETABLE if mv >= Microversion(3, 16) else DELETABLE[:-1]
            ok_state = v.status in deletable or (force and v.status != "deleting")
            undeletable_snaps = [s for s in snaps if s.status not in ("available", "error")]
            if (not ok_state or v.attachments or v.migration_status in ("migrating", "starting",
                                                                         "completing")
                    or (snaps and not cascade) or (cascade and not force and undeletable_snaps)):
                status = "" if force else "status must be %s and" % " or ".join(deletable)
                tail = ("belong to a group, have snapshots or be disassociated from snapshots "
                        "after volume transfer." if mv >= Microversion(3, 16) else
                        "belong to a group or have snapshots." if mv > Microversion(3, 0) else
                        "belong to a consistency group or have snapshots.")
                raise errors.BadRequest(f"Invalid volume: Volume {status} must not be "
                                        f"migrating, attached, {tail}", kind="InvalidVolume")
            for s in snaps:
                s.status = "deleting"
            v.status = "deleting"
            self._touch(v)
            self._submit(self._delete_worker, v.id, [s.id for s in snaps],
                         on_crash=self._crashed(v, "error_deleting", *snaps))

    def extend_volume(self, caller: Caller, volume_id: str, new_size) -> None:
        """os-extend: an available volume grows to new_size GiB (extending -> available)."""
        new_size = _positive_int(new_size)
        with self.lock:
            v = self._volume(caller, volume_id)
            mv = self.profile.cinder_max
            # Mitaka checks the status first; Newton on check the size first, and word the
            # status failure each its own way (cinder/volume/api.py extend/_extend).
            if mv == Microversion(3, 0) and v.status != "available":
                raise errors.BadRequest(f"Invalid volume: Volume {v.id} status must be "
                                        f"available to extend, but current status is: "
                                        f"{v.status}.", kind="InvalidVolume")
            if new_size <= v.size:
                raise errors.BadRequest(f"Invalid input received: New size for extend must be "
                                        f"greater than current size. (current: {v.size}, "
                                        f"extended: {new_size}).", kind="InvalidInput")
            if v.status != "available":
                raise errors.BadRequest(
                    f"Invalid volume: Volume {v.id} status must be available to extend."
                    if mv < Microversion(3, 16) else
                    f"Invalid volume: Volume {v.id} status must be '{{'status': 'available'}}' "
                    f"to extend, currently {v.status}.", kind="InvalidVolume")
            self._check_quota(v.project_id, self.volume_type_of(v), new_size - v.size,
                              count_volume=False)
            v.status = "extending"
            self._touch(v)
            self._submit(self._extend_worker, v.id, new_size,
                         on_crash=self._crashed(v, "error_extending"))

    def reset_status(self, caller: Caller, volume_id: str, *, status=None,
                     attach_status=None, migration_status=None) -> None:
        """Admin os-reset_status: any of status, attach_status, migration_status, each from
        Cinder's list (cinder/api/contrib/admin_actions.py VolumeAdminController)."""
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:volume_admin_actions:reset_status")
        status, attach_status, migration_status = (
            x.lower() if isinstance(x, str) else x
            for x in (status, attach_status, migration_status))
        if status and status not in RESET_STATUSES:
            raise errors.BadRequest("Must specify a valid status")
        if attach_status and attach_status not in ("attached", "detached"):
            raise errors.BadRequest("Must specify a valid attach status")
        if migration_status and migration_status not in RESET_MIGSTATS:
            raise errors.BadRequest("Must specify a valid migration status")
        if not (status or attach_status or migration_status):
            raise errors.BadRequest("Must specify 'status', 'attach_status' or "
                                    "'migration_status' for update.")
        with self.lock:
            v = self._volume(caller, volume_id)
            if status:
                v.status = status
            if migration_status:
                v.migration_status = None if migration_status == "none" else migration_status
            if attach_status == "detached":
                v.attachments.clear()
            self._touch(v)

    # ---- for Nova (the Volumes port, lab/openstack/ports.py) --------------------------------
    def driver_ref(self, volume_id: str) -> tuple[object, VolumeRef]:
        """(driver, VolumeRef) of a volume: Nova's guests reach the bytes through it."""
        with self.lock:
            v = self.volumes[volume_id]
            return self.drivers[v.backend], self._ref(v)

    def wait_for_volume(self, volume_id: str, statuses: tuple, timeout: float) -> str:
        """Blocks until the volume's status is in `statuses` or `timeout` s pass; its status."""
        self.wait_for(lambda: self.volumes[volume_id].status in statuses, timeout)
        with self.lock:
            return self.volumes[volume_id].status
