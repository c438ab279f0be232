"""Snapshots: the API half of create, show/list, update and delete; the driver work that
follows is in manager.py."""
import uuid

from lab.openstack import errors
from lab.openstack.caller import Caller

from .helpers import _boolish
from .records import RETYPE_MIGSTATS, Snapshot

# fields.SnapshotStatus.ALL in 11.0.0
SNAPSHOT_STATUSES = ("error", "available", "creating", "deleting", "deleted", "updating",
                     "error_deleting", "unmanaging", "backing-up", "restoring")


class SnapshotsMixin:
    def _snapshot(self, caller: Caller, snapshot_id: str) -> Snapshot:
        s = self.snapshots.get(snapshot_id)
        if s is None or (s.project_id != caller.project_id and not caller.is_admin):
            raise errors.NotFound(f"Snapshot {snapshot_id} could not be found.",
                                  kind="SnapshotNotFound")
        return s

    def get_snapshot(self, caller: Caller, snapshot_id: str) -> Snapshot:
        with self.lock:
            return self._snapshot(caller, snapshot_id)

    def list_snapshots(self, caller: Caller, *, all_tenants=False, filters=None) -> list:
        with self.lock:
            snaps = [s for s in self.snapshots.values()
                     if s.project_id == caller.project_id or (caller.is_admin and all_tenants)]
            for k, want in (filters or {}).items():
                if k in ("name", "status", "volume_id"):
                    snaps = [s for s in snaps if getattr(s, k) == want]
            return sorted(snaps, key=lambda s: s.created_at, reverse=True)

    def create_snapshot(self, caller: Caller, volume_id, *, name=None, description=None,
                        force=False, metadata=None) -> Snapshot:
        if not isinstance(volume_id, str):
            raise errors.BadRequest("Invalid input received: 'volume_id' must be specified",
                                    kind="InvalidInput")
        force = _boolish(force, "force")
        with self.lock:
            v = self._volume(caller, volume_id)
            # cinder/volume/api.py _create_snapshot, in its order (8.0.0-11.0.0); force lets
            # any status through (an in-use volume is the case Nova uses).
            if not v.host:
                raise errors.BadRequest("Invalid volume: The snapshot cannot be created because "
                                        "volume has not been scheduled to any host.",
                                        kind="InvalidVolume")
            if v.status == "maintenance":
                raise errors.BadRequest("Invalid volume: The snapshot cannot be created when the "
                                        "volume is in maintenance mode.", kind="InvalidVolume")
            if v.migration_status not in RETYPE_MIGSTATS:
                raise errors.BadRequest("Invalid volume: Snapshot cannot be created while volume "
                                        "is migrating.", kind="InvalidVolume")
            if not force and v.status != "available":
                raise errors.BadRequest(f"Invalid volume: Volume {v.id} status must be "
                                        f"available, but current status is: {v.status}.",
                                        kind="InvalidVolume")
            limits, used = self._limits(v.project_id), self._usage(v.project_id)
            if limits["snapshots"] >= 0 and used["snapshots"] + 1 > limits["snapshots"]:
                raise errors.OverLimit(f"SnapshotLimitExceeded: Maximum number of snapshots "
                                       f"allowed ({limits['snapshots']}) exceeded",
                                       kind="SnapshotLimitExceeded")
            self._check_quota(v.project_id, None, v.size, count_volume=False)
            s = Snapshot(id=str(uuid.uuid4()), volume_id=v.id, project_id=v.project_id,
                         user_id=caller.user_id, name=name, description=description,
                         size=v.size, metadata=dict(metadata or {}),
                         volume_type_id=v.volume_type_id, host=v.host,
                         backend_volume_id=v.backend_id)
            self.snapshots[s.id] = s
            self._submit(self._snapshot_worker, s.id, on_crash=self._crashed(s, "error"))
            return s

    def update_snapshot(self, caller: Caller, snapshot_id: str, *, name=None,
                        description=None) -> Snapshot:
        with self.lock:
            s = self._snapshot(caller, snapshot_id)
            if name is not None:
                s.name = name
            if description is not None:
                s.description = description
            self._touch(s)
            return s

    def delete_snapshot(self, caller: Caller, snapshot_id: str) -> None:
        with self.lock:
            s = self._snapshot(caller, snapshot_id)
            if s.status not in ("available", "error"):
                raise errors.BadRequest("Invalid snapshot: Volume Snapshot status must be "
                                        "available or error.", kind="InvalidSnapshot")
            if any(v.snapshot_id == s.id and v.status == "creating"
                   for v in self.volumes.values()):
                raise errors.BadRequest("Invalid snapshot: a volume is being created from it",
                                        kind="InvalidSnapshot")
            s.status = "deleting"
            self._touch(s)
            self._submit(self._delete_snapshot_worker, s.id,
                         on_crash=self._crashed(s, "error_deleting"))

    # ---- admin actions (cinder/api/contrib/admin_actions.py SnapshotAdminController) -------
    def reset_snapshot_status(self, caller: Caller, snapshot_id: str, status) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:snapshot_admin_actions:reset_status")
        if not isinstance(status, str):
            raise errors.BadRequest("Must specify 'status'")
        if status.lower() not in SNAPSHOT_STATUSES:
            raise errors.BadRequest("Must specify a valid status")
        with self.lock:
            s = self._snapshot(caller, snapshot_id)
            s.status = status.lower()
            self._touch(s)

    def force_delete_snapshot(self, caller: Caller, snapshot_id: str) -> None:
        """os-force_delete: the delete whatever the status (an error_deleting one too)."""
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:snapshot_admin_actions:force_delete")
        with self.lock:
            s = self._snapshot(caller, snapshot_id)
            s.status = "deleting"
            self._touch(s)
            self._submit(self._delete_snapshot_worker, s.id,
                         on_crash=self._crashed(s, "error_deleting"))
