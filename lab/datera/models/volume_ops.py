"""Operations on volumes, their performance policies and snapshots (a mixin of DateraModel).

Rules from reference datera-api §2.5-2.7: size grows only (at most 32768 GiB), replica_count
only increases, restore needs the app instance offline, a performance policy is one per volume
(POST twice is 409), snapshot uuids are unique per volume (the duplicate code Cinder reads).
Every change that matters to bytes or QoS reaches the data plane through self._hook.
"""
import uuid as uuidlib

from ..contract import POLICY_FIELDS
from . import validate as v
from .errors import CODE_DUPLICATE_SNAPSHOT, Conflict, InvalidRequest, NotFound
from .events import USER
from .storage import PLACEMENT_MODES, Snapshot, StorageInstance, Volume

# Fields the lab implements; any other field is refused (400), never silently ignored.
VOL_CREATE = ("name", "size", "replica_count", "placement_mode", "placement_policy",
              "snapshot_policies", "performance_policy", "force")
VOL_UPDATE = ("size", "replica_count", "restore_point", "placement_mode", "placement_policy",
              "force")
MAX_SIZE_GIB = 32768


def no_snapshot_policies(body: dict, where: str) -> None:
    """Cinder always sends snapshot_policies: []; the lab schedules no snapshots."""
    if body.get("snapshot_policies") not in (None, []):
        raise InvalidRequest(f"{where}.snapshot_policies: the lab has no snapshot schedules; send []")


def policy_body(body: dict, where: str, *, partial: bool = False, base: dict | None = None) -> dict:
    """A performance_policy body (also the tenant QoS extension's) -> every POLICY_FIELDS key
    as an int: IOPS up to 10,000,000, bandwidth (KB/s) up to 10,240,000; fields not given keep
    `base` (an update) or are 0 (unlimited). Raises InvalidRequest naming the field."""
    v.only(body, POLICY_FIELDS + ("force", "path"), where)
    out = dict(base or {f: 0 for f in POLICY_FIELDS})
    for f in POLICY_FIELDS:
        if f in body:
            hi = 10_000_000 if "iops" in f else 10_240_000
            out[f] = v.integer(body[f], f, 0, hi)
    return out


class VolumeOps:
    """Volumes under a storage instance, their performance_policy and snapshots. Lookups
    (_si, _vol) are AppInstanceOps'; the state is DateraModel's (backend.py)."""

    # -- building and registering ---------------------------------------------------------
    def _build_volume(self, body: dict, si: StorageInstance, where: str) -> Volume:
        v.only(body, VOL_CREATE, where)
        no_snapshot_policies(body, where)
        vol = Volume(name=v.name(body.get("name"), f"{where}.name"),
                     size=v.integer(body.get("size"), f"{where}.size", 1, MAX_SIZE_GIB),
                     parent=si)
        if "replica_count" in body:
            vol.replica_count = v.integer(body["replica_count"], f"{where}.replica_count", 1, 5)
        if "placement_mode" in body:
            vol.placement_mode = v.choice(body["placement_mode"], f"{where}.placement_mode",
                                          PLACEMENT_MODES)
        if "placement_policy" in body:
            vol.placement_policy = v.ref_path(body["placement_policy"], f"{where}.placement_policy",
                                              "/placement_policies/")
        if body.get("performance_policy") is not None:
            vol.policy = policy_body(body["performance_policy"], f"{where}.performance_policy")
        return vol

    def _add_volume(self, vol: Volume, source=None) -> None:
        """Tells the data plane about a new volume: bytes first (a clone's copy), then its
        state and QoS, so no host ever sees a half-made volume."""
        self._volumes[vol.uuid] = vol
        self._hook("volume_created", vol.handle())
        if isinstance(source, Snapshot):
            self._hook("clone_bytes", self._snapshot_key(source), vol.uuid)
        elif source is not None:
            self._hook("clone_bytes", source.uuid, vol.uuid)
        self._hook("volume_online", vol.uuid, vol.parent.online)
        if vol.policy is not None:
            self._hook("volume_qos", vol.uuid, dict(vol.policy))

    def _drop_volume(self, vol: Volume) -> None:
        for snap in vol.snapshots.values():
            self._hook("drop_snapshot", vol.uuid, snap.timestamp)
        self._volumes.pop(vol.uuid, None)
        self._hook("volume_deleted", vol.uuid)


    # -- volumes --------------------------------------------------------------------------
    def list_volumes(self, c, ai_id, si_name) -> list[dict]:
        return [vol.to_dict() for vol in self._si(c, ai_id, si_name).volumes.values()]

    def get_volume(self, c, ai_id, si_name, vol_name) -> dict:
        return self._vol(c, ai_id, si_name, vol_name).to_dict()

    def create_volume(self, c, ai_id, si_name, body) -> dict:
        si = self._si(c, ai_id, si_name)
        vol = self._build_volume(body, si, "volume")
        if vol.name in si.volumes:
            raise Conflict(f"volume {vol.name} already exists")
        si.volumes[vol.name] = vol
        self._add_volume(vol)
        return vol.to_dict()

    def update_volume(self, c, ai_id, si_name, vol_name, body) -> dict:
        vol = self._vol(c, ai_id, si_name, vol_name)
        v.only(body, VOL_UPDATE, "volume")
        size = vol.size
        if "size" in body:
            size = v.integer(body["size"], "size", 1, MAX_SIZE_GIB)
            if size < vol.size:
                raise InvalidRequest(f"size: volumes only grow ({vol.size} GiB now)")
        replicas = vol.replica_count
        if "replica_count" in body:
            replicas = v.integer(body["replica_count"], "replica_count", 1, 5)
            if replicas < vol.replica_count:
                raise InvalidRequest("replica_count: can only increase, never decrease")
        mode = v.choice(body.get("placement_mode", vol.placement_mode), "placement_mode",
                        PLACEMENT_MODES)
        policy = vol.placement_policy
        if "placement_policy" in body:
            policy = v.ref_path(body["placement_policy"], "placement_policy", "/placement_policies/")
        restore = None
        if body.get("restore_point"):
            restore = body["restore_point"]
            if restore not in vol.snapshots:
                raise NotFound(f"{vol.path}/snapshots/{restore}")
            if vol.parent.parent.admin_state != "offline":
                raise InvalidRequest("restore_point: set the app_instance offline first")
        vol.replica_count, vol.placement_mode, vol.placement_policy = replicas, mode, policy
        if size != vol.size:
            vol.size = size
            self._hook("volume_resized", vol.handle())
        if restore:
            self._hook("restore_bytes", vol.uuid, restore)
            vol.restore_point = restore
            self.events.record(USER, "volume_restored", f"volume {vol.name} restored to {restore}",
                               tenant=vol.parent.parent.tenant, object_path=vol.path)
        return vol.to_dict()

    def delete_volume(self, c, ai_id, si_name, vol_name, body) -> dict:
        vol = self._vol(c, ai_id, si_name, vol_name)
        v.only(body, ("force",), "delete")
        if vol.parent.online and not body.get("force"):
            raise InvalidRequest(f"volume {vol.name} is online: set it offline or pass force")
        out = vol.to_dict()
        self._drop_volume(vol)
        del vol.parent.volumes[vol.name]
        return out

    # -- performance_policy -------------------------------------------------------------
    def get_performance_policy(self, c, ai_id, si_name, vol_name) -> dict:
        vol = self._vol(c, ai_id, si_name, vol_name)
        if vol.policy is None:
            raise NotFound()
        return vol.policy_dict()

    def create_performance_policy(self, c, ai_id, si_name, vol_name, body) -> dict:
        vol = self._vol(c, ai_id, si_name, vol_name)
        if vol.policy is not None:
            raise Conflict(f"{vol.path}/performance_policy already exists")
        vol.policy = policy_body(body, "performance_policy")
        self._hook("volume_qos", vol.uuid, dict(vol.policy))
        return vol.policy_dict()

    def update_performance_policy(self, c, ai_id, si_name, vol_name, body) -> dict:
        vol = self._vol(c, ai_id, si_name, vol_name)
        if vol.policy is None:
            raise NotFound()
        vol.policy = policy_body(body, "performance_policy", base=vol.policy)
        self._hook("volume_qos", vol.uuid, dict(vol.policy))
        return vol.policy_dict()

    def delete_performance_policy(self, c, ai_id, si_name, vol_name, body) -> dict:
        vol = self._vol(c, ai_id, si_name, vol_name)
        v.only(body, ("force",), "delete")
        if vol.policy is None:
            raise NotFound()
        out = vol.policy_dict()
        vol.policy = None
        self._hook("volume_qos", vol.uuid, {f: 0 for f in POLICY_FIELDS})
        return out

    # -- snapshots ------------------------------------------------------------------------
    def _snapshot_volume(self, snap: Snapshot) -> Volume:
        return next(vol for vol in self._volumes.values() if vol.path == snap.parent_path)

    def _snapshot_key(self, snap: Snapshot) -> str:
        """The id clone_bytes takes for a snapshot source: its timestamp, unique lab-wide
        (see _next_timestamp), as the data plane finds snapshot bytes by id alone."""
        return snap.timestamp

    def list_snapshots(self, c, ai_id, si_name, vol_name) -> list[dict]:
        return [s.to_dict() for s in self._vol(c, ai_id, si_name, vol_name).snapshots.values()]

    def get_snapshot(self, c, ai_id, si_name, vol_name, ts) -> dict:
        snap = self._vol(c, ai_id, si_name, vol_name).snapshots.get(ts)
        if not snap:
            raise NotFound()
        return snap.to_dict()

    def create_snapshot(self, c, ai_id, si_name, vol_name, body) -> dict:
        vol = self._vol(c, ai_id, si_name, vol_name)
        v.only(body, ("uuid", "remote_provider_uuid", "type", "force"), "snapshot")
        snap_uuid = body.get("uuid") or str(uuidlib.uuid4())
        if not isinstance(snap_uuid, str) or not v.UUID_RE.match(snap_uuid):
            raise InvalidRequest("uuid: expected a UUID")
        if any(s.uuid == snap_uuid for s in vol.snapshots.values()):
            raise InvalidRequest(f"snapshot with uuid {snap_uuid} already exists",
                                 code=CODE_DUPLICATE_SNAPSHOT)
        ts = self._next_timestamp()
        snap = Snapshot(timestamp=ts, uuid=snap_uuid, parent_path=vol.path)
        self._hook("snapshot_bytes", vol.uuid, ts)
        vol.snapshots[ts] = snap
        self.events.record(USER, "snapshot_created", f"snapshot {ts} of volume {vol.name} created",
                           tenant=vol.parent.parent.tenant, object_path=snap.path)
        return snap.to_dict()

    def _next_timestamp(self) -> str:
        # Unique and increasing across the lab, so a timestamp alone names one snapshot.
        now = max(self.clock(), self._last_ts + 1e-6)
        self._last_ts = now
        return f"{now:.6f}"

    def delete_snapshot(self, c, ai_id, si_name, vol_name, ts, body) -> dict:
        vol = self._vol(c, ai_id, si_name, vol_name)
        v.only(body, ("force",), "delete")
        snap = vol.snapshots.get(ts)
        if not snap:
            raise NotFound()
        self._hook("drop_snapshot", vol.uuid, ts)
        del vol.snapshots[ts]
        self.events.record(USER, "snapshot_deleted", f"snapshot {ts} of volume {vol.name} deleted",
                           tenant=vol.parent.parent.tenant, object_path=snap.path)
        return snap.to_dict()
