"""Attachments: the legacy flow Nova's compute manager drives (reserve ->
initialize_connection -> attach; begin_detaching -> terminate_connection -> detach) and the
attachments API of 3.27+ (Pike; reference §a.3). Exports block on the driver, off the lock."""
import uuid

from lab.openstack import errors
from lab.openstack.caller import Caller

from .helpers import _expand_per_gb, _reason
from .records import Attachment, now_iso


class AttachmentsMixin:
    def reserve(self, caller: Caller, volume_id: str) -> None:
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.status != "available" and not (v.multiattach and v.status == "in-use"):
                raise errors.BadRequest(f"Invalid volume: Volume status must be available to "
                                        f"reserve, but the current status is {v.status}.",
                                        kind="InvalidVolume")
            v.previous_status, v.status = v.status, "attaching"
            self._touch(v)

    def unreserve(self, caller: Caller, volume_id: str) -> None:
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.status == "attaching":
                v.status = "in-use" if v.attachments else "available"
                self._touch(v)

    def begin_detaching(self, caller: Caller, volume_id: str) -> None:
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.status != "in-use":
                raise errors.BadRequest(f"Invalid volume: Unable to detach volume. Volume status "
                                        f"must be 'in-use' and attach_status must be 'attached' "
                                        f"to detach.", kind="InvalidVolume")
            v.status = "detaching"
            self._touch(v)

    def roll_detaching(self, caller: Caller, volume_id: str) -> None:
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.status == "detaching":
                v.status = "in-use"
                self._touch(v)

    def initialize_connection(self, caller: Caller, volume_id: str, connector) -> dict:
        """create_export, then initialize_connection (manager order); blocks on the driver."""
        if not isinstance(connector, dict):
            raise errors.BadRequest("Must specify 'connector'", kind="InvalidInput")
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.backend is None or v.status in ("creating", "error", "deleting"):
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be "
                                        f"available or in-use, but is {v.status}.",
                                        kind="InvalidVolume")
            driver, ref = self.drivers[v.backend], self._ref(v)
            qos = self.front_end_qos(v.volume_type_id)
            readonly = v.readonly
        try:
            driver.create_export(ref, connector)
            info = driver.initialize_connection(ref, connector)
        except Exception as e:
            raise errors.ApiError(f"Bad or unexpected response from the storage volume backend "
                                  f"API: Unable to create export: {_reason(e)}",
                                  kind="VolumeBackendAPIException") from None
        data = info["data"]
        if qos:
            data["qos_specs"] = _expand_per_gb(qos, ref.size_gib)
        else:
            data["qos_specs"] = None
        # a read-only volume is exported ro, and Nova attaches it with that mode
        data["access_mode"] = "ro" if readonly else data.get("access_mode", "rw")
        data.setdefault("encrypted", False)
        return info

    def terminate_connection(self, caller: Caller, volume_id: str, connector) -> None:
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.backend is None:
                return
            driver, ref = self.drivers[v.backend], self._ref(v)
        try:
            driver.detach_volume(ref, connector if isinstance(connector, dict) else None)
        except Exception as e:
            raise errors.ApiError(f"Bad or unexpected response from the storage volume backend "
                                  f"API: {_reason(e)}", kind="VolumeBackendAPIException") from None

    def attach(self, caller: Caller, volume_id: str, *, instance_uuid=None, host_name=None,
               mountpoint=None, mode="rw") -> Attachment:
        if mode not in ("rw", "ro"):
            raise errors.BadRequest("Invalid attaching mode '%s' for volume." % mode)
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.status not in ("attaching", "available") and not (
                    v.multiattach and v.status == "in-use"):
                raise errors.BadRequest(f"Invalid volume: Volume status must be available or "
                                        f"attaching, but is {v.status}.", kind="InvalidVolume")
            if not v.multiattach and any(a.instance_uuid for a in v.attachments):
                raise errors.BadRequest("Invalid volume: volume already attached",
                                        kind="InvalidVolume")
            if v.readonly and mode != "ro":    # volume/manager.py attach_volume
                raise errors.BadRequest(f"Invalid attaching mode '{mode}' for volume {v.id}.",
                                        kind="InvalidVolumeAttachMode")
            a = Attachment(id=str(uuid.uuid4()), volume_id=v.id, instance_uuid=instance_uuid,
                           attached_host=host_name, mountpoint=mountpoint,
                           attach_status="attached", attach_mode=mode, attached_at=now_iso())
            v.attachments.append(a)
            self.attachments[a.id] = a
            v.status = "in-use"
            self._touch(v)
            return a

    def detach(self, caller: Caller, volume_id: str, attachment_id: str | None = None) -> None:
        with self.lock:
            v = self._volume(caller, volume_id)
            if not v.attachments:
                raise errors.BadRequest("Invalid volume: Volume must be attached in order to "
                                        "detach.", kind="InvalidVolume")
            if attachment_id is None:
                if len(v.attachments) > 1:
                    raise errors.BadRequest("Invalid volume: Detach volume failed: More than one "
                                            "attachment, but no attachment_id provided.",
                                            kind="InvalidVolume")
                a = v.attachments[0]
            else:
                a = next((x for x in v.attachments if x.id == attachment_id), None)
                if a is None:
                    raise errors.NotFound(f"Volume attachment could not be found with filter: "
                                          f"attachment_id = {attachment_id}.",
                                          kind="VolumeAttachmentNotFound")
            v.attachments.remove(a)
            a.attach_status, a.detached_at = "detached", now_iso()
            self.attachments.pop(a.id, None)
            v.status = "in-use" if v.attachments else "available"
            self._touch(v)

    # ==== the attachments API (3.27+, Pike; reference §a.3) ====================================
    # An attachment lives in self.attachments from create on; it joins the volume's
    # attachments (what the volume view and Nova's bookkeeping see) once it is complete.
    def _attachment(self, caller: Caller, attachment_id: str) -> Attachment:
        a = self.attachments.get(attachment_id)
        v = self.volumes.get(a.volume_id) if a is not None else None
        if v is None or (v.project_id != caller.project_id and not caller.is_admin):
            raise errors.NotFound(f"Volume attachment could not be found with filter: "
                                  f"attachment_id = {attachment_id}.",
                                  kind="VolumeAttachmentNotFound")
        return a

    def attachment_create(self, caller: Caller, volume_id: str, instance_uuid: str | None,
                          connector: dict | None = None) -> tuple[Attachment, dict | None]:
        """Reserves the volume; with a connector, also exports it (attachment_update)."""
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.status != "available" and not (v.multiattach and v.status == "in-use"):
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be "
                                        f"available or downloading to reserve, but the "
                                        f"current status is {v.status}.", kind="InvalidVolume")
            a = Attachment(id=str(uuid.uuid4()), volume_id=v.id, instance_uuid=instance_uuid,
                           attached_host=None, mountpoint=None, attach_status="reserved")
            self.attachments[a.id] = a
            v.previous_status, v.status = v.status, "reserved"
            self._touch(v)
        if connector is None:
            return a, None
        try:
            return a, self.attachment_update(caller, a.id, connector)
        except errors.ApiError:
            self.attachment_delete(caller, a.id)
            raise

    def attachment_update(self, caller: Caller, attachment_id: str, connector) -> dict:
        """The connector is known: create the export, return connection_info."""
        if not isinstance(connector, dict):
            raise errors.BadRequest("Invalid input received: Must specify 'connector'",
                                    kind="InvalidInput")
        with self.lock:
            a = self._attachment(caller, attachment_id)
            if a.attach_status != "reserved":
                raise errors.BadRequest(f"Invalid volume: Attachment {attachment_id} status "
                                        f"must be reserved to update, but is "
                                        f"{a.attach_status}.", kind="InvalidVolume")
        info = self.initialize_connection(caller, a.volume_id, connector)
        with self.lock:
            v = self.volumes[a.volume_id]
            a.connector, a.attach_status = dict(connector), "attaching"
            a.attached_host = connector.get("host")
            a.mountpoint = connector.get("mountpoint")
            a.connection_info = info
            v.status = "attaching" if not v.attachments else v.status
            self._touch(v)
        return info

    def attachment_complete(self, caller: Caller, attachment_id: str) -> None:
        with self.lock:
            a = self._attachment(caller, attachment_id)
            if a.attach_status != "attaching":
                raise errors.BadRequest(f"Invalid volume: Attachment {attachment_id} has no "
                                        f"connection yet (status {a.attach_status}).",
                                        kind="InvalidVolume")
            v = self.volumes[a.volume_id]
            a.attach_status, a.attached_at = "attached", now_iso()
            v.attachments.append(a)
            v.status = "in-use"
            self._touch(v)

    def attachment_delete(self, caller: Caller, attachment_id: str) -> None:
        """Removes the export if there was one, then the attachment; the volume follows."""
        with self.lock:
            a = self._attachment(caller, attachment_id)
            connector = a.connector
        if connector is not None:
            self.terminate_connection(caller, a.volume_id, connector)
        with self.lock:
            v = self.volumes.get(a.volume_id)
            self.attachments.pop(a.id, None)
            a.attach_status, a.detached_at = "detached", now_iso()
            if v is not None:
                if a in v.attachments:
                    v.attachments.remove(a)
                v.status = "in-use" if v.attachments else "available"
                self._touch(v)

    def list_attachments(self, caller: Caller) -> list[Attachment]:
        with self.lock:
            return [a for a in self.attachments.values()
                    if (v := self.volumes.get(a.volume_id)) is not None
                    and (caller.is_admin or v.project_id == caller.project_id)]
