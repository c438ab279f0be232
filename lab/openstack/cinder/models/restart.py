"""What cinder-volume does with work in flight when it starts again (a mixin of CinderModel;
lab/openstack/durable.py calls `restored` once the saved records are back).

As cinder-volume's init_host (cinder/volume/manager.py, Mitaka): a volume being deleted is
deleted (its cascade's snapshots first), as is a snapshot being deleted; a volume that was
downloading its image goes to `error` (the copy died with the process; delete it and create
again); a volume that was uploading to an image is `in-use` or `available` by its attachments.
From Newton on, its start also cleans up what the workers table holds (cinder/volume/
manager.py _do_cleanup): a volume or snapshot `creating` goes to `error` (profile switch
cinder_cleans_creating_on_start); Mitaka leaves them `creating`. Everything else in flight
stays where it was, as the real service leaves it: `extending`, `retyping`, a `migrating`
migration_status, `attaching`/`detaching`; an admin clears those with os-reset_status (and
os-force_delete).

As cinder-backup's init_host (backup/manager.py _cleanup_incomplete_backup_operations): a
backup `creating` goes to `error` (its volume back to its previous status), one `restoring`
back to `available` with its volume `error_restoring`, one `deleting` is deleted again.
"""


class RestartMixin:
    def restored(self, cloud) -> None:
        cleans_creating = self.profile.cinder_cleans_creating_on_start
        with self.lock:
            for v in list(self.volumes.values()):
                if v.status == "creating" and cleans_creating:
                    v.status = "error"
                    v.error_reason = "cinder-volume restarted while creating the volume"
                    self._touch(v)
                elif v.status == "downloading":
                    v.status = "error"
                    v.error_reason = "cinder-volume restarted while copying the image"
                    self._touch(v)
                elif v.status == "uploading":
                    v.status = "in-use" if v.attachments else "available"
                    self._touch(v)
                elif v.status == "deleting":
                    snaps = [s for s in self.snapshots.values()
                             if s.volume_id == v.id and s.status == "deleting"]
                    self._submit(self._delete_worker, v.id, [s.id for s in snaps],
                                 on_crash=self._crashed(v, "error_deleting", *snaps))
            for b in list(getattr(self, "backups", {}).values()):
                v = self.volumes.get(b.volume_id)
                if b.status == "creating":
                    b.status, b.fail_reason = "error", "incomplete backup reset on manager restart"
                    if v is not None and v.status == "backing-up":
                        v.status = v.previous_status or "available"
                        self._touch(v)
                    self._touch(b)
                elif b.status == "restoring":
                    b.status = "available"
                    target = self.volumes.get(b.restore_volume_id or "")
                    if target is not None and target.status == "restoring-backup":
                        target.status = "error_restoring"
                        self._touch(target)
                    self._touch(b)
                elif b.status == "deleting":
                    self._submit(self._delete_backup_worker, b.id,
                                 on_crash=lambda b=b: setattr(b, "status", "error_deleting"))
            for s in list(self.snapshots.values()):
                owner = self.volumes.get(s.volume_id)
                if s.status == "creating" and cleans_creating:
                    s.status = "error"
                    self._touch(s)
                if s.status == "deleting" and (owner is None or owner.status != "deleting"):
                    self._submit(self._delete_snapshot_worker, s.id,
                                 on_crash=self._crashed(s, "error_deleting"))
