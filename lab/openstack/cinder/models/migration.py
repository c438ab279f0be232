"""Retype and migration: the API half of the Ceph-to-Datera migration (the demo plan's
"Ceph->Datera migration" step) and of the admin's os-migrate_volume.

The Ceph-to-Datera migration, as reference openstack-api §c.2 tells it:
  1. `retype` (here): a volume on a ceph type is retyped to a datera type with
     migration_policy on-demand; status -> retyping, previous_status kept.
  2. `VolumeManager._retype_worker` (manager.py): the scheduler's backend for the new type is
     another backend, so the driver's retype is not tried (only on the same backend).
  3. `VolumeManager._migrate` (manager.py): migstat starting -> migrating; a temporary volume
     (migration_status `target:<id>`) is created on Datera; the bytes are copied through the
     host; an attached volume is swapped by Nova through the Compute port (ports.py).
  4. Completion: migstat completing; the Ceph object is deleted; the original id survives with
     the new host and type and `name_id` = the temporary volume's id; migstat success.
  On any failure: migstat error, status back to previous, type and host unchanged.
"""
import logging

from lab.openstack import errors
from lab.openstack.caller import Caller
from lab.openstack.microversion import Microversion

from .records import MIGRATION_POLICIES, RETYPE_MIGSTATS

log = logging.getLogger("lab.openstack.cinder")


class MigrationMixin:
    def retype(self, caller: Caller, volume_id: str, new_type, migration_policy=None) -> None:
        policy = migration_policy if migration_policy is not None else "never"
        if policy not in MIGRATION_POLICIES:
            raise errors.BadRequest("Invalid input received: Invalid migration_policy: "
                                    f"{migration_policy}", kind="InvalidInput")
        if not isinstance(new_type, str) or not new_type:
            raise errors.BadRequest("New volume type must be specified.", kind="InvalidInput")
        with self.lock:
            v = self._volume(caller, volume_id)
            vt = self._type(caller, new_type)
            if v.status not in ("available", "in-use"):
                raise errors.BadRequest(f"Invalid volume: Volume status must be available or "
                                        f"in-use, but is {v.status}.", kind="InvalidVolume")
            if v.migration_status not in RETYPE_MIGSTATS:
                raise errors.BadRequest(f"Invalid volume: Volume {v.id} is already part of an "
                                        "active migration.", kind="InvalidVolume")
            if vt.id == v.volume_type_id:
                raise errors.BadRequest("Invalid input received: Retype cannot change to the "
                                        "same volume type as the current one.",
                                        kind="InvalidInput")
            if v.status == "in-use":
                old_qos = self._qos_of(v.volume_type_id)
                new_qos = self._qos_of(vt.id)
                if old_qos != new_qos and any(q and q.consumer != "back-end"
                                              for q in (old_qos, new_qos)):
                    raise errors.BadRequest("Invalid volume: Retype cannot change front-end "
                                            "qos specs for in-use volume: %s." % v.id,
                                            kind="InvalidVolume")
            old_type = self.volume_type_of(v)
            old_vt = old_type.name if old_type else None
            v.previous_status, v.status = v.status, "retyping"
            self._touch(v)
            log.info("retype %s: %s -> %s (%s)", v.id, old_vt, vt.name, policy)
            self._submit(self._retype_worker, v.id, vt.id, policy,
                         on_crash=self._crashed_migration(v))

    def migrate_volume(self, caller: Caller, volume_id: str, host: str, *,
                       force_host_copy=False, lock_volume=False) -> None:
        """Admin os-migrate_volume to host@backend#pool; the type stays. The checks and their
        words are cinder/volume/api.py migrate_volume's: Mitaka (8.0.0) checks one by one;
        Newton (9.0.0) and later look the service up, then refuse in one conditional update
        (Pike's words name clusters, which arrived with 3.16)."""
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:volume_admin_actions:migrate_volume")
        mv = self.profile.cinder_max
        with self.lock:
            v = self._volume(caller, volume_id)
            backend = host.split("@", 1)[1].split("#", 1)[0] if "@" in (host or "") else None
            known = (host.split("#", 1)[0] == f"{self.host}@{backend}"
                     and backend in self.drivers)
            has_snapshots = any(s.volume_id == v.id for s in self.snapshots.values())
            migrating = v.migration_status not in RETYPE_MIGSTATS
            same_host = known and self.host_of(backend) == v.host
            if mv < Microversion(3, 1):                              # Mitaka
                if v.status not in ("available", "in-use"):
                    raise _invalid(f"Volume {v.id} status must be available or in-use, but "
                                   f"current status is: {v.status}.")
                if migrating:
                    raise _invalid(f"Volume {v.id} is already part of an active migration.")
                if has_snapshots:
                    raise _invalid(f"Volume {v.id} must not have snapshots.")
                if not known:
                    raise _invalid_host(f"No available service named {host}")
                if same_host:
                    raise _invalid_host("Destination host must be different than the current "
                                        "host.")
            else:
                if not known:
                    named = f"'{host}'" if mv >= Microversion(3, 16) else host
                    raise _invalid_host(f"No available service named {named}")
                if v.status not in ("available", "in-use") or migrating or has_snapshots \
                        or same_host:
                    # The real message formats a dict into %s: Cinder's own bug, kept.
                    who = "{'vol_id': u'%s'}" % v.id
                    tail = ("destination host/cluster must be different than the current one"
                            if mv >= Microversion(3, 16) else
                            "destination host must be different than the current host")
                    raise _invalid(f"Volume {who} status must be available or in-use, must "
                                   "not be migrating, have snapshots, be replicated, be part "
                                   f"of a group and {tail}")
            v.previous_status = v.status
            if lock_volume and v.status == "available":
                v.status = "maintenance"
            v.migration_status = "starting"
            self._touch(v)
            self._submit(self._migrate_to_host, v.id, backend,
                         on_crash=self._crashed_migration(v))


def _invalid(reason: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid volume: {reason}", kind="InvalidVolume")


def _invalid_host(reason: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid host: {reason}", kind="InvalidHost")
