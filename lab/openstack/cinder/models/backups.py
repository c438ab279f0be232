"""Volume backups (the cinder-backup service): create (full, incremental, from a snapshot,
forced for in-use volumes), show/list, update (3.9), delete (and admin force-delete), restore
(to a new or an existing volume), export/import of the record, admin reset-status.

API half as cinder/backup/api.py and cinder/api/contrib/backups.py check it (8.0.0-11.0.0),
each failure 400 with its exception's words (InvalidVolume "Invalid volume: ...",
InvalidBackup "Invalid backup: ...", InvalidSnapshot "Invalid snapshot: ..."), quota 413.
Manager half as cinder/backup/manager.py: create_backup (volume back to its previous status,
backup `available` or `error` with fail_reason), restore_backup (volume `available`, or
`error_restoring` and the backup `available`), delete_backup. The bytes go through the posix
driver (../backup_posix.py) under the lab's run dir.
"""
import base64
import json
import uuid
from dataclasses import asdict, dataclass, field, fields, replace

from lab.openstack import errors
from lab.openstack.caller import Caller

from .helpers import _boolish, _reason
from .manager import log
from .records import GiB, now_iso

BACKUP_STATUSES = ("creating", "available", "deleting", "error", "restoring",
                   "error_deleting", "deleted")


@dataclass
class Backup:
    id: str
    project_id: str
    user_id: str
    volume_id: str
    name: str | None
    description: str | None
    size: int
    status: str = "creating"
    container: str | None = None
    prefix: str | None = None                # the driver's object name prefix
    parent_id: str | None = None
    snapshot_id: str | None = None
    data_timestamp: str | None = None
    object_count: int = 0
    fail_reason: str | None = None
    availability_zone: str = "nova"
    created_at: str = field(default_factory=now_iso)
    updated_at: str | None = None
    metadata: dict = field(default_factory=dict)
    restore_volume_id: str | None = None
    service: str = "cinder.backup.drivers.posix.PosixBackupDriver"


def _invalid(kind: str, reason: str) -> errors.BadRequest:
    words = {"InvalidVolume": "Invalid volume", "InvalidBackup": "Invalid backup",
             "InvalidSnapshot": "Invalid snapshot"}[kind]
    return errors.BadRequest(f"{words}: {reason}", kind=kind)


class BackupsMixin:
    backup_driver = None            # PosixBackupDriver, set by make_service

    def _backup(self, caller: Caller, backup_id: str) -> Backup:
        b = self.backups.get(backup_id)
        if b is None or (b.project_id != caller.project_id and not caller.is_admin):
            raise errors.NotFound(f"Backup {backup_id} could not be found.",
                                  kind="BackupNotFound")
        return b

    def get_backup(self, caller: Caller, backup_id: str) -> Backup:
        with self.lock:
            return self._backup(caller, backup_id)

    def has_dependents(self, backup: Backup) -> bool:
        return any(b.parent_id == backup.id for b in self.backups.values())

    def list_backups(self, caller: Caller, *, all_tenants=False, filters=None) -> list:
        with self.lock:
            out = [b for b in self.backups.values()
                   if b.project_id == caller.project_id or (caller.is_admin and all_tenants)]
            for k, want in (filters or {}).items():
                if k in ("name", "status", "volume_id"):
                    out = [b for b in out if getattr(b, k) == want]
            return sorted(out, key=lambda b: b.created_at, reverse=True)

    # ---- create -------------------------------------------------------------------------
    def create_backup(self, caller: Caller, body: dict, *, with_metadata: bool) -> Backup:
        if self.backup_driver is None:
            raise errors.ApiError("Service cinder-backup could not be found.",
                                  kind="ServiceNotFound")
        volume_id = body.get("volume_id")
        if not isinstance(volume_id, str):
            raise errors.BadRequest("Incorrect request body format")
        incremental = _boolish(body.get("incremental", False), "incremental")
        force = _boolish(body.get("force", False), "force")
        snapshot_id = body.get("snapshot_id")
        metadata = body.get("metadata") if with_metadata else None
        with self.lock:
            v = self._volume(caller, volume_id)
            snap = None
            if snapshot_id:
                snap = self._snapshot(caller, snapshot_id)
                if snap.volume_id != v.id:
                    raise _invalid("InvalidVolume", f"Volume {v.id} does not match with "
                                                    f"snapshot.volume_id {snap.volume_id}.")
                if snap.status != "available":
                    raise _invalid("InvalidSnapshot", "Snapshot to be backed up must be "
                                   f"available, but the current status is \"{snap.status}\".")
            elif v.status not in ("available", "in-use"):
                raise _invalid("InvalidVolume", "Volume to be backed up must be available or "
                               f"in-use, but the current status is \"{v.status}\".")
            elif v.status == "in-use" and not force:
                raise _invalid("InvalidVolume", "Backing up an in-use volume must use the "
                                                "force flag.")
            self._check_backup_quota(v.project_id, v.size)
            parent = None
            if incremental:
                mine = [b for b in self.backups.values() if b.volume_id == v.id]
                if not mine:
                    raise _invalid("InvalidBackup", "No backups available to do an "
                                                    "incremental backup.")
                eligible = [b for b in mine if snap is None
                            or (b.data_timestamp or "") < snap.created_at]
                parent = max(eligible or mine, key=lambda b: b.data_timestamp or "")
                if parent.status != "available":
                    raise _invalid("InvalidBackup", "The parent backup must be available for "
                                                    "incremental backup.")
            b = Backup(id=str(uuid.uuid4()), project_id=v.project_id, user_id=caller.user_id,
                       volume_id=v.id, name=body.get("name"),
                       description=body.get("description"), size=v.size,
                       container=body.get("container"), snapshot_id=snapshot_id,
                       parent_id=parent.id if parent else None,
                       metadata=dict(metadata or {}))
            b.data_timestamp = snap.created_at if snap else b.created_at
            if snap is not None:
                snap.status = "backing-up"
                self._touch(snap)
                previous = None
            else:
                previous = v.status
                v.previous_status, v.status = v.status, "backing-up"
                self._touch(v)
            self.backups[b.id] = b
            self._submit(self._backup_worker, b.id, previous,
                         on_crash=self._backup_crashed(b, v, snap, previous))
            return b

    def _check_backup_quota(self, project: str, size: int) -> None:
        limits, used = self._limits(project), self._usage(project)
        if limits["backup_gigabytes"] >= 0 and \
                used["backup_gigabytes"] + size > limits["backup_gigabytes"]:
            raise errors.OverLimit(
                f"Requested backup exceeds allowed Backup gigabytes quota. Requested {size}G, "
                f"quota is {limits['backup_gigabytes']}G and {used['backup_gigabytes']}G has "
                "been consumed.", kind="VolumeBackupSizeExceedsAvailableQuota")
        if limits["backups"] >= 0 and used["backups"] + 1 > limits["backups"]:
            raise errors.OverLimit(f"Maximum number of backups allowed ({limits['backups']}) "
                                   "exceeded", kind="BackupLimitExceeded")

    def _backup_crashed(self, b, v, snap, previous):
        def mark():
            b.status, b.fail_reason = "error", "An unknown error occurred."
            if snap is not None:
                snap.status = "available"
            else:
                v.status = previous or "available"
            self._touch(b)
            self._touch(v)
        return mark

    def _backup_worker(self, backup_id: str, previous: str | None) -> None:
        driver = self.backup_driver
        with self.lock:
            b = self.backups[backup_id]
            v = self.volumes[b.volume_id]
            snap = self.snapshots.get(b.snapshot_id) if b.snapshot_id else None
            parent = self.backups.get(b.parent_id) if b.parent_id else None
            b.container = b.container or f"{b.id[0:2]}/{b.id[2:4]}/{b.id}"
            b.prefix = driver.prefix(v.id, b.id)
            vdriver, ref = self.drivers[v.backend], self._ref(v)
            snap_target = self._snap_target(snap) if snap else None
            volume_meta = dict(v.metadata)
        failure = None
        try:
            with self._backup_source(vdriver, ref, snap_target) as source:
                count = driver.backup(
                    backup_id=b.id, volume_id=v.id, container=b.container, prefix=b.prefix,
                    source=source, size_bytes=b.size * GiB,
                    parent=(parent.container, parent.prefix) if parent else None,
                    parent_id=parent.id if parent else None, volume_metadata=volume_meta)
        except Exception as e:
            failure = _reason(e, log)
        with self.lock:
            if failure:
                log.warning("backup %s failed: %s", b.id, failure)
                b.status, b.fail_reason = "error", failure
            else:
                b.status, b.object_count = "available", count
            if snap is not None:
                snap.status = "available"
                self._touch(snap)
            else:
                v.status, v.previous_status = previous or "available", "backing-up"
                self._touch(v)
            self._touch(b)

    def _backup_source(self, vdriver, ref, snap_target):
        """The bytes to back up: the volume as attached to the backup host, or a snapshot
        through a temporary volume made from it (backup_use_temp_snapshot's other half)."""
        if snap_target is None:
            return vdriver.local_access(ref)
        _, sref, _ = snap_target
        return _TempFromSnapshot(vdriver, replace(ref, id=str(uuid.uuid4())), sref)

    # ---- update, delete, reset ------------------------------------------------------------
    def update_backup(self, caller: Caller, backup_id: str, body: dict, *,
                      with_metadata: bool) -> Backup:
        with self.lock:
            b = self._backup(caller, backup_id)
            for key in ("name", "description"):
                if key in body:
                    setattr(b, key, body[key])
            if with_metadata and isinstance(body.get("metadata"), dict):
                b.metadata = dict(body["metadata"])
            self._touch(b)
            return b

    def delete_backup(self, caller: Caller, backup_id: str, force: bool = False) -> None:
        with self.lock:
            b = self._backup(caller, backup_id)
            if not force and b.status not in ("available", "error"):
                raise _invalid("InvalidBackup", "Backup status must be available or error")
            if self.has_dependents(b):
                raise _invalid("InvalidBackup", "Incremental backups exist for this backup.")
            b.status = "deleting"
            self._touch(b)
            self._submit(self._delete_backup_worker, b.id,
                         on_crash=lambda: setattr(b, "status", "error_deleting"))

    def _delete_backup_worker(self, backup_id: str) -> None:
        with self.lock:
            b = self.backups[backup_id]
            shared = any(o.id != b.id and (o.container, o.prefix) == (b.container, b.prefix)
                         for o in self.backups.values())
        try:
            if b.prefix and not shared:     # an imported copy shares the other's objects
                self.backup_driver.delete(b.container, b.prefix)
        except Exception as e:
            with self.lock:
                b.status, b.fail_reason = "error_deleting", _reason(e, log)
                self._touch(b)
            return
        with self.lock:
            self.backups.pop(backup_id, None)
            self.changed.notify_all()

    def reset_backup_status(self, caller: Caller, backup_id: str, status) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:backup_admin_actions:reset_status")
        if status not in ("available", "error"):
            raise errors.BadRequest("Must specify a valid status")
        with self.lock:
            b = self._backup(caller, backup_id)
            b.status = status
            self._touch(b)

    # ---- restore --------------------------------------------------------------------------
    def restore_backup(self, caller: Caller, backup_id: str, volume_id=None, name=None,
                       timeout: float = 300) -> dict:
        """Blocks while a new volume is created (the API waits for it, as Cinder's does)."""
        with self.lock:
            b = self._backup(caller, backup_id)
            if b.status != "available":
                raise _invalid("InvalidBackup", "Backup status must be available")
        if volume_id is None:
            vol = self.create_volume(caller, size=b.size,
                                     name=name or f"restore_backup_{backup_id}",
                                     description="auto-created_from_restore_from_backup")
            self.wait_for(lambda: self.volumes[vol.id].status != "creating", timeout)
            if vol.status == "error":
                raise _invalid("InvalidVolume", f"Error while creating volume {vol.id} for "
                                                f"restoring backup {backup_id}.")
            volume_id = vol.id
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.status != "available":
                raise _invalid("InvalidVolume", "Volume to be restored to must be available")
            if b.size > v.size:
                raise _invalid("InvalidVolume", f"volume size {v.size} is too small to restore "
                                                f"backup of size {b.size}.")
            if b.status != "available":
                raise _invalid("InvalidBackup", "Backup status must be available")
            b.status, b.restore_volume_id = "restoring", v.id
            v.status = "restoring-backup"
            self._touch(b)
            self._touch(v)

            def crashed():
                b.status, v.status = "available", "error_restoring"
                self._touch(b)
                self._touch(v)
            self._submit(self._restore_worker, b.id, v.id, on_crash=crashed)
            return {"backup_id": b.id, "volume_id": v.id, "volume_name": v.name or ""}

    def _restore_worker(self, backup_id: str, volume_id: str) -> None:
        with self.lock:
            b, v = self.backups[backup_id], self.volumes[volume_id]
            chain, at = [], b
            while at is not None:
                chain.insert(0, (at.container, at.prefix))
                at = self.backups.get(at.parent_id) if at.parent_id else None
            vdriver, ref = self.drivers[v.backend], self._ref(v)
        try:
            with vdriver.local_access(ref) as target:
                meta = self.backup_driver.restore(chain, target, v.size * GiB)
        except Exception as e:
            reason = _reason(e, log)
            with self.lock:
                log.warning("restore of backup %s to %s failed: %s", backup_id, volume_id,
                            reason)
                b.status, v.status, v.error_reason = "available", "error_restoring", reason
                self._touch(b)
                self._touch(v)
            return
        with self.lock:
            v.metadata = {**v.metadata, **meta}
            b.status, v.status = "available", "available"
            self._touch(b)
            self._touch(v)

    # ---- export / import of the record (admin) --------------------------------------------
    def export_backup(self, caller: Caller, backup_id: str) -> dict:
        if not caller.is_admin:
            raise errors.policy_forbids("backup:backup-export")
        with self.lock:
            b = self._backup(caller, backup_id)
            if b.status != "available":
                raise _invalid("InvalidBackup", f"Backup status must be available and not "
                                                f"{b.status}.")
            url = base64.b64encode(json.dumps(asdict(b)).encode()).decode()
            return {"backup_service": b.service, "backup_url": url}

    def import_backup(self, caller: Caller, service, url) -> Backup:
        if not caller.is_admin:
            raise errors.policy_forbids("backup:backup-import")
        if not isinstance(service, str) or not isinstance(url, str):
            raise errors.BadRequest("Incorrect request body format.")
        try:
            doc = json.loads(base64.b64decode(url))
            known = {f.name for f in fields(Backup)}
            b = Backup(**{k: v for k, v in doc.items() if k in known})
        except (ValueError, TypeError):
            raise errors.BadRequest("Invalid input received: Can't parse backup record.",
                                    kind="InvalidInput") from None
        if service != b.service:
            raise errors.BadRequest(f"Invalid input received: Unsupported backup service "
                                    f"{service}", kind="InvalidInput")
        with self.lock:
            if b.id in self.backups:
                raise _invalid("InvalidBackup", "Backup already exists in database.")
            b.status, b.project_id = "creating", caller.project_id
            self.backups[b.id] = b

            def verify():          # the driver's import check: its objects must be there
                ok = self.backup_driver.exists(b.container, b.prefix)
                with self.lock:
                    b.status = "available" if ok else "error"
                    b.fail_reason = None if ok else "backup objects not found"
                    self._touch(b)
            self._submit(verify, on_crash=lambda: setattr(b, "status", "error"))
            return b


class _TempFromSnapshot:
    """A context manager: a backend volume cloned from a snapshot, attached to the backup host,
    deleted afterwards."""

    def __init__(self, driver, ref, sref):
        self.driver, self.ref, self.sref, self._cm = driver, ref, sref, None

    def __enter__(self):
        self.driver.create_volume_from_snapshot(self.ref, self.sref)
        self._cm = self.driver.local_access(self.ref)
        return self._cm.__enter__()

    def __exit__(self, *exc):
        try:
            self._cm.__exit__(*exc)
        finally:
            self.driver.delete_volume(self.ref)
        return False
