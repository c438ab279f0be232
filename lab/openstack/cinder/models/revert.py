"""Revert a volume to its latest snapshot (the `revert` action, microversion 3.40, Pike).

API half, as cinder/api/v3/volumes.py `revert` and cinder/volume/api.py `revert_to_snapshot`
(11.0.0) check it, in their order:
    the volume has snapshots            else 400 "Volume <v> doesn't have any snapshots."
    snapshot_id names the latest one    else 400 "Specified snapshot <s> is None or not the
                                             latest one of volume <v>."
    the sizes are equal                 else 400 "Can't revert volume ... must be equal ..."
    volume `available`                  else 409 (InvalidVolume -> HTTPConflict)
    snapshot `available`                else 409 (InvalidSnapshot -> HTTPConflict)
then volume `reverting`, snapshot `restoring`, 202. The lab checks both states before changing
either, so a refused revert never leaves the volume `reverting` with no work behind it.

Manager half (cinder/volume/manager.py revert_to_snapshot): the driver's revert_to_snapshot
(Datera: the volume's `restore_point` set to the snapshot, backends/datera.py; Ceph: the RBD
image rolled back to the snapshot); success -> both `available`; failure -> volume `error`,
snapshot `available`, the reason logged.
"""
from lab.openstack import errors
from lab.openstack.caller import Caller

from .helpers import _reason
from .manager import log


class RevertMixin:
    def _latest_snapshot(self, volume_id: str):
        """Cinder's snapshot_get_latest_for_volume: the newest by created_at (seconds, as the
        DB column), ties broken by creation order."""
        snaps = [s for s in self.snapshots.values() if s.volume_id == volume_id]
        if not snaps:
            return None
        order = {sid: i for i, sid in enumerate(self.snapshots)}
        return max(snaps, key=lambda s: (s.created_at, order[s.id]))

    def revert_to_snapshot(self, caller: Caller, volume_id: str, snapshot_id) -> None:
        with self.lock:
            v = self._volume(caller, volume_id)
            latest = self._latest_snapshot(v.id)
            if latest is None:
                raise errors.BadRequest(f"Volume {v.id} doesn't have any snapshots.")
            if snapshot_id is None or snapshot_id != latest.id:
                raise errors.BadRequest(f"Specified snapshot {snapshot_id} is None or not the "
                                        f"latest one of volume {v.id}.")
            if v.size != latest.size:
                raise errors.BadRequest(f"Can't revert volume {v.id} to its latest snapshot "
                                        f"{latest.id}. The volume size must be equal to the "
                                        "snapshot size.")
            if v.status != "available":
                raise errors.Conflict(f"Invalid volume: Can't revert volume {v.id} to its "
                                      "latest snapshot. Volume's status must be 'available'.",
                                      kind="InvalidVolume")
            if latest.status != "available":
                # Cinder formats the snapshot's id into this message (11.0.0 as shipped)
                raise errors.Conflict(f"Invalid snapshot: Can't revert volume {latest.id} to "
                                      "its latest snapshot. Snapshot's status must be "
                                      "'available'.", kind="InvalidSnapshot")
            v.status, latest.status = "reverting", "restoring"
            self._touch(v)
            self._touch(latest)

            def crashed():
                v.status, latest.status = "error", "available"
                v.error_reason = "An unknown error occurred."
                self._touch(v)
                self._touch(latest)
            self._submit(self._revert_worker, v.id, latest.id, on_crash=crashed)

    def _revert_worker(self, vol_id: str, snap_id: str) -> None:
        with self.lock:
            vol, snap = self.volumes[vol_id], self.snapshots[snap_id]
            driver, sref, ref = self._snap_target(snap)
        try:
            if driver is None:
                raise RuntimeError("the volume has no backend")
            driver.revert_to_snapshot(ref, sref)
        except Exception as e:
            reason = _reason(e, log)
            with self.lock:
                log.warning("Volume %s revert to snapshot %s failed with %s.", vol_id, snap_id,
                            reason)
                vol.status, vol.error_reason = "error", reason
                snap.status = "available"
                self._touch(vol)
                self._touch(snap)
            return
        with self.lock:
            vol.status, snap.status = "available", "available"
            self._touch(vol)
            self._touch(snap)
