"""The volume manager: every piece of Cinder's work that happens off the request (the
cinder-volume service). The API mixins validate, set the transitional state (`creating`,
`deleting`, `extending`, `retyping`, ...) and `_submit` one of these workers; each worker calls
the drivers outside the lock and moves the record to its final state (reference
openstack-api §c.1, §c.2). A worker never raises: a driver failure becomes the record's error
state, with the reason logged.

    _create_worker            create, from an image (byte copy), a snapshot or a volume
    _delete_worker            delete a volume (and, with cascade, its snapshots)
    _extend_worker            extend
    _snapshot_worker          create a snapshot;  _delete_snapshot_worker: delete one
    _retype_worker, _migrate  retype, and the generic migration (the Ceph-to-Datera migration)
"""
import logging
import uuid
from dataclasses import replace

from lab.openstack.background import BackgroundWork
from lab.openstack.cinder.backends import BackendError, SnapshotRef, VolumeRef
from lab.openstack.cinder import image_convert
from lab.openstack.cinder.backends.copy import copy_bytes
from lab.openstack.ports import ImageData

from .helpers import _reason
from .scheduler import satisfies
from .records import GiB, Volume, now_iso

log = logging.getLogger("lab.openstack.cinder")


class VolumeManager(BackgroundWork):
    # ---- volumes ---------------------------------------------------------------------------
    def _create_worker(self, vol_id: str, image: ImageData | None, snap_id: str | None,
                       source_id: str | None) -> None:
        with self.lock:
            vol = self.volumes[vol_id]
            snap = self.snapshots.get(snap_id) if snap_id else None
            src = self.volumes.get(source_id) if source_id else None
            if (snap_id and snap is None) or (source_id and src is None):
                return self._fail(vol, "the source was deleted before the volume was created")
            # A snapshot's or a clone's volume lands on its source's backend (Cinder sends
            # those requests to the source's host), if that backend passes the filters.
            only = snap.backend if snap else (src.backend if src else None)
            backend = self._schedule(self.volume_type_of(vol), vol.size, only=only)
            if backend is None:
                self._user_message(vol.project_id, vol.id, "no_valid_backend")
                return self._fail(vol, "No valid backend was found. No weighed backends "
                                       "available")
            vol.host = self.host_of(backend)
            ref = self._ref(vol)
            src_ref = self._ref(src) if src else None
            snap_ref = (SnapshotRef(snap.id, snap.backend_volume_id, snap.size,
                                    snap.provider_location) if snap else None)
            self._touch(vol)
        self.write_ahead()   # the host, before the backend object exists
        driver = self.drivers[backend]
        try:
            if image is not None:
                update = driver.create_volume(ref)
                ref = replace(ref, provider_auth=update.provider_auth)
                with self.lock:
                    vol.provider_auth = update.provider_auth
                    vol.status = "downloading"
                    self._touch(vol)
                with driver.local_access(ref) as dst:
                    if image_convert.needs_conversion(image.disk_format):
                        image_convert.convert_to_volume(image.id, image.path, image.disk_format,
                                                        dst, vol.size)
                    else:
                        copy_bytes(image.path, dst, vol.size * GiB)
            elif snap_ref is not None:
                update = driver.create_volume_from_snapshot(ref, snap_ref)
            elif src_ref is not None:
                update = driver.create_cloned_volume(ref, src_ref)
            else:
                update = driver.create_volume(ref)
        except Exception as e:   # the manager marks the volume, never crashes
            with self.lock:
                return self._fail(vol, _reason(e, log))
        with self.lock:
            vol.provider_auth = update.provider_auth
            vol.provider_location = update.provider_location
            if image is not None:
                vol.bootable = True
                vol.image_metadata = {
                    "image_id": image.id, "image_name": image.name or "",
                    "checksum": image.checksum or "", "container_format": image.container_format,
                    "disk_format": image.disk_format, "min_disk": str(image.min_disk),
                    "min_ram": str(image.min_ram), "size": str(image.size or 0),
                    **{k: str(v) for k, v in image.properties.items()}}
            elif src is not None:
                vol.bootable = src.bootable
                vol.image_metadata = dict(src.image_metadata) if src.image_metadata else None
            vol.status = "available"
            vol.launched_at = now_iso()
            self._touch(vol)

    def _crashed(self, record, state: str, *more):
        """on_crash for a worker: the record (and `more`) in the error state `state`."""
        def mark():
            for r in (record, *more):
                r.status = state
                if hasattr(r, "error_reason"):
                    r.error_reason = "An unknown error occurred."
                self._touch(r)
        return mark

    def _crashed_migration(self, vol: Volume):
        """on_crash for retype and migration: Cinder's _retype_error/_migrate_volume_set_error:
        the previous status back, migration_status error, type and host unchanged."""
        def mark():
            for tmp in [t for t in self.volumes.values()
                        if t.migration_status == f"target:{vol.id}"]:
                tmp.status = "error"                  # the temporary volume, for the admin
            self._end_retype(vol, "error", "An unknown error occurred.")
        return mark

    def _migrate_to_host(self, vol_id: str, backend: str) -> None:
        """os-migrate_volume's scheduler step (migrate_volume_to_host): the destination must
        pass the volume type's filters; else migration_status error, status back."""
        with self.lock:
            vol = self.volumes[vol_id]
            vt = self.volume_type_of(vol)
            if not satisfies(self.capabilities(backend), vt.extra_specs if vt else {}):
                return self._end_retype(vol, "error", f"No valid host was found. Cannot place "
                                                      f"volume {vol.id} on {backend}")
        self._migrate(vol_id, backend, vol.volume_type_id)

    def _copy_between(self, src_backend: str, src_ref: VolumeRef, dst_backend: str,
                      dst_ref: VolumeRef, size_gib: int) -> None:
        with self.drivers[src_backend].local_access(src_ref) as src, \
                self.drivers[dst_backend].local_access(dst_ref) as dst:
            copy_bytes(src, dst, size_gib * GiB)

    def _fail(self, vol: Volume, reason: str) -> None:
        log.warning("volume %s: %s", vol.id, reason)
        vol.status = "error"
        vol.error_reason = reason
        self._touch(vol)

    def _delete_worker(self, vol_id: str, snap_ids: list) -> None:
        """Deletes the cascade's snapshots (each on the backend holding it), then the volume.
        A failure leaves error_deleting on what is left, which reset-status and force-delete
        clear, as in Cinder."""
        with self.lock:
            vol = self.volumes[vol_id]
            ref, backend = self._ref(vol), vol.backend
            snaps = [(s, self._snap_target(s)) for s in
                     (self.snapshots[i] for i in snap_ids if i in self.snapshots)]
        failed = None
        for s, (driver, sref, vref) in snaps:
            try:
                if driver is not None:
                    driver.delete_snapshot(sref, vref)
            except Exception as e:
                failed = _reason(e, log)
                with self.lock:
                    log.warning("snapshot %s: delete failed: %s", s.id, failed)
                    s.status = "error_deleting"
                    self._touch(s)
                continue
            with self.lock:
                self.snapshots.pop(s.id, None)
                self.changed.notify_all()
        try:
            if failed is None and backend is not None:
                self.drivers[backend].delete_volume(ref)
        except Exception as e:
            failed = _reason(e, log)
        if failed is not None:
            with self.lock:
                log.warning("volume %s: delete failed: %s", vol_id, failed)
                vol.status, vol.error_reason = "error_deleting", failed
                self._touch(vol)
            return
        with self.lock:
            self.volumes.pop(vol_id, None)
            self.changed.notify_all()

    def _snap_target(self, s) -> tuple:
        """(driver, SnapshotRef, VolumeRef) for the backend that holds a snapshot's bytes."""
        vol = self.volumes.get(s.volume_id)
        if s.backend is None or vol is None:
            return None, None, None
        vref = replace(self._ref(vol), id=s.backend_volume_id or vol.backend_id)
        return (self.drivers[s.backend],
                SnapshotRef(s.id, vref.id, s.size, s.provider_location), vref)

    def _extend_worker(self, vol_id: str, new_size: int) -> None:
        with self.lock:
            vol = self.volumes[vol_id]
            driver, ref = self.drivers[vol.backend], self._ref(vol)
        try:
            driver.extend_volume(ref, new_size)
        except Exception as e:
            with self.lock:
                log.warning("volume %s: extend failed: %s", vol_id, _reason(e, log))
                vol.status = "error_extending"
                self._touch(vol)
            return
        with self.lock:
            vol.size = new_size
            vol.status = "available"
            self._touch(vol)

    # ---- snapshots -------------------------------------------------------------------------
    def _snapshot_worker(self, snap_id: str) -> None:
        with self.lock:
            s = self.snapshots[snap_id]
            driver, sref, ref = self._snap_target(s)
        try:
            if driver is None:
                raise BackendError("the volume has no backend")
            update = driver.create_snapshot(sref, ref)
        except Exception as e:
            with self.lock:
                log.warning("snapshot %s: %s", s.id, _reason(e, log))
                s.status = "error"
                self._touch(s)
            return
        with self.lock:
            s.provider_location = update.provider_location
            s.status = "available"
            self._touch(s)

    def _delete_snapshot_worker(self, snap_id: str) -> None:
        with self.lock:
            s = self.snapshots[snap_id]
            driver, sref, ref = self._snap_target(s)
        try:
            if driver is not None:
                driver.delete_snapshot(sref, ref)
        except Exception as e:
            with self.lock:
                log.warning("snapshot %s: delete failed: %s", s.id, _reason(e, log))
                s.status = "error_deleting"
                self._touch(s)
            return
        with self.lock:
            self.snapshots.pop(snap_id, None)
            self.changed.notify_all()

    # ---- retype and the Ceph-to-Datera migration (migration.py has the steps) --------------
    def _retype_worker(self, vol_id: str, type_id: str, policy: str) -> None:
        """cinder/scheduler/manager.py retype + volume/manager.py retype (8.0.0-11.0.0)."""
        with self.lock:
            vol = self.volumes[vol_id]
            vt = self.types.get(type_id)
            if vt is None or vol.backend is None:
                return self._end_retype(vol, None, "the volume or its new type is gone")
            # find_retype_backend: the current backend when it passes the new type's filters;
            # another one only when the policy allows a migration.
            if satisfies(self.capabilities(vol.backend), vt.extra_specs):
                target = vol.backend
            elif policy == "on-demand":
                target = self._schedule(vt, vol.size)
            else:
                target = None
            if target is None:
                return self._end_retype(vol, None, f"Could not find a host for volume "
                                                   f"{vol.id} with type {vt.id}.")
            old = self._specs_of(vol.volume_type_id)[:2], self._qos_of(vol.volume_type_id)
            new_specs, new_qos, _ = self._specs_of(type_id)
            all_equal = old == ((new_specs, new_qos), self._qos_of(type_id))
            ref = self._ref(vol)
            has_snapshots = any(s.volume_id == vol.id for s in self.snapshots.values())
        retyped = all_equal
        if not retyped and target == vol.backend:
            try:
                retyped = bool(self.drivers[target].retype(ref, new_specs, new_qos, {}))
            except Exception as e:   # Cinder falls back to the generic mechanism
                log.warning("volume %s: driver error when trying to retype, falling back to "
                            "generic mechanism: %s", vol_id, _reason(e, log))
        if retyped:
            with self.lock:
                vol.volume_type_id = type_id
                return self._end_retype(vol, None, None)
        with self.lock:
            if policy == "never":
                return self._end_retype(vol, None, "Retype requires migration but is not "
                                                   "allowed.")
            if has_snapshots:
                return self._end_retype(vol, None, "Volume must not have snapshots.")
        self._migrate(vol_id, target, type_id)

    def _end_retype(self, vol: Volume, migstat: str | None, failure: str | None) -> None:
        if failure:
            log.warning("retype of %s did not happen: %s", vol.id, failure)
        vol.status = vol.previous_status or "available"
        if migstat is not None:
            vol.migration_status = migstat
        self._touch(vol)

    def _migrate(self, vol_id: str, target: str, type_id: str | None) -> None:
        """Generic migration (reference §c.2): a temporary volume on the target, the bytes
        copied through the host, then the ids swapped so the original id survives."""
        with self.lock:
            vol = self.volumes[vol_id]
            vol.migration_status = "starting"
            self._touch(vol)
            vol.migration_status = "migrating"
            tmp = Volume(id=str(uuid.uuid4()), project_id=vol.project_id, user_id=vol.user_id,
                         name=vol.name, description=vol.description, size=vol.size,
                         volume_type_id=type_id, host=self.host_of(target),
                         migration_status=f"target:{vol.id}", metadata=dict(vol.metadata))
            self.volumes[tmp.id] = tmp
            self._touch(tmp)
            src_backend, src_ref = vol.backend, self._ref(vol)
            tmp_ref = self._ref(tmp)
            attached = [a.instance_uuid for a in vol.attachments if a.instance_uuid]
        self.write_ahead()   # the temporary volume and its host, before its backend object
        dst = self.drivers[target]
        try:
            update = dst.create_volume(tmp_ref)
            tmp_ref = replace(tmp_ref, provider_auth=update.provider_auth)
            with self.lock:
                tmp.provider_auth, tmp.provider_location = (update.provider_auth,
                                                            update.provider_location)
                tmp.status = "available"
                self._touch(tmp)
            if not attached:
                # an attached volume's bytes are Nova's to copy (swap_volume: libvirt's
                # blockRebase), as in Cinder's migrate_volume_generic
                self._copy_between(src_backend, src_ref, target, tmp_ref, vol.size)
            if attached:
                if self.compute is None:
                    raise BackendError("the volume is attached and no compute service can swap "
                                       "it")
                for server in attached:
                    self.compute.swap_volume(server, vol.id, tmp.id)
            with self.lock:
                vol.migration_status = "completing"
                self._touch(vol)
            self.drivers[src_backend].delete_volume(src_ref)
            final = dst.update_migrated_volume(replace(src_ref, id=vol.id), tmp_ref)
        except Exception as e:
            reason = _reason(e, log)
            with self.lock:
                tmp.status = "deleting"
                self._touch(tmp)
            try:
                dst.delete_volume(tmp_ref)
            except Exception:   # the migration already failed; say so, do not mask that
                log.exception("could not delete the temporary volume of a failed migration")
            with self.lock:
                self.volumes.pop(tmp.id, None)
                return self._end_retype(vol, "error", f"migration failed: {reason}")
        with self.lock:
            vol.host = tmp.host
            vol.volume_type_id = type_id
            vol.provider_auth, vol.provider_location = tmp.provider_auth, tmp.provider_location
            vol.name_id = final.extra.get("name_id", tmp.id)
            tmp.status, tmp.migration_status = "deleting", None
            self._touch(tmp)
            self.volumes.pop(tmp.id, None)
            self._end_retype(vol, "success", None)
