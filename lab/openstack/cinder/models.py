"""Cinder's state and behaviour, one instance per cloud; no HTTP here (DESIGN §5).

Requests are answered at once with the state Cinder's API leaves (`creating`, `retyping`,
`deleting`, ...); the volume manager's work (driver calls, byte copies, migrations) runs on the
model's worker threads, which move each record through the state machines of reference
openstack-api §c.1 and §c.2. One lock guards every record; drivers run outside it.

Who may do what follows Cinder's default policy of these releases: types, extra specs, QoS
specs, quota updates, migrate and reset-status are admin only; a tenant sees only its own
volumes and snapshots (others' are 404), and never the `os-vol-*` admin attributes
(views.volume).
"""
import abc
import logging
import math
import time
import uuid
from dataclasses import dataclass, field, replace

from lab.openstack import errors
from lab.openstack.background import BackgroundWork
from lab.openstack.caller import Caller  # noqa: F401 (re-exported for the HTTP layer)
from lab.openstack.cinder.backends import BackendError, SnapshotRef, VolumeRef
from lab.openstack.cinder.backends.copy import copy_bytes

log = logging.getLogger("lab.openstack.cinder")

GiB = 1 << 30
# States from which a volume may be deleted (cinder/volume/api.py delete).
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
RETYPE_MIGSTATS = (None, "deleting", "error", "success")
MIGRATION_POLICIES = ("never", "on-demand")
QOS_CONSUMERS = ("front-end", "back-end", "both")
DEFAULT_QUOTAS = {"volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10,
                  "backup_gigabytes": 1000, "per_volume_gigabytes": -1,
                  "consistencygroups": 10, "groups": 10}
PER_TYPE_QUOTAS = ("volumes", "gigabytes", "snapshots")


def now_iso(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime(t or time.time()))


# ---- records ------------------------------------------------------------------------------

@dataclass
class VolumeType:
    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    extra_specs: dict = field(default_factory=dict)
    qos_specs_id: str | None = None
    projects: set = field(default_factory=set)


@dataclass
class QosSpec:
    id: str
    name: str
    consumer: str = "back-end"
    specs: dict = field(default_factory=dict)


@dataclass
class Attachment:
    id: str
    volume_id: str
    instance_uuid: str | None
    attached_host: str | None
    mountpoint: str | None
    attach_status: str               # attaching, attached, detaching, detached, reserved
    attach_mode: str = "rw"
    connector: dict | None = None
    attached_at: str | None = None
    detached_at: str | None = None
    connection_info: dict | None = None    # the attachments API's, once a connector is set


@dataclass
class Snapshot:
    id: str
    volume_id: str
    project_id: str
    user_id: str
    name: str | None
    description: str | None
    size: int
    status: str = "creating"
    created_at: str = field(default_factory=now_iso)
    updated_at: str | None = None
    metadata: dict = field(default_factory=dict)
    provider_location: str | None = None


@dataclass
class Volume:
    id: str
    project_id: str
    user_id: str
    name: str | None
    description: str | None
    size: int
    volume_type_id: str | None
    host: str | None = None
    status: str = "creating"
    previous_status: str | None = None
    migration_status: str | None = None
    name_id: str | None = None
    availability_zone: str = "nova"
    created_at: str = field(default_factory=now_iso)
    updated_at: str | None = None
    launched_at: str | None = None
    snapshot_id: str | None = None
    source_volid: str | None = None
    metadata: dict = field(default_factory=dict)
    bootable: bool = False
    image_metadata: dict | None = None
    provider_auth: str | None = None
    provider_location: str | None = None
    attachments: list = field(default_factory=list)
    multiattach: bool = False
    error_reason: str | None = None   # the lab's log of why the manager set `error`

    @property
    def backend_id(self) -> str:
        """Backend objects are named after _name_id when a migration left one."""
        return self.name_id or self.id

    @property
    def backend(self) -> str | None:
        return self.host.split("@", 1)[1].split("#", 1)[0] if self.host else None


@dataclass(frozen=True)
class ImageData:
    """What Cinder needs of a Glance image: its record's fields and where its bytes are."""
    id: str
    name: str | None
    status: str
    size: int | None
    checksum: str | None
    disk_format: str | None
    container_format: str | None
    min_disk: int
    min_ram: int
    properties: dict
    path: str | None             # local file holding the image's bytes


class ImageSource(abc.ABC):
    """How Cinder reads images: the cloud's Glance model (adapted in __init__.py)."""

    @abc.abstractmethod
    def image(self, caller: Caller, image_id: str) -> ImageData:
        """KeyError when the image does not exist or the caller may not see it."""


# ---- the service ----------------------------------------------------------------------------

class CinderModel(BackgroundWork):
    def __init__(self, *, profile, host: str, drivers: dict, default_backend: str,
                 images: ImageSource | None = None, workers: int = 4):
        self.profile = profile
        self.host = host                          # the cinder-volume host name
        self.drivers = drivers                    # backend name -> driver
        self.default_backend = default_backend
        self.images = images
        self._init_background("cinder-volume", workers, log)
        self.volumes: dict[str, Volume] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.types: dict[str, VolumeType] = {}
        self.qos: dict[str, QosSpec] = {}
        self.quotas: dict[str, dict] = {}
        self.attachments: dict[str, Attachment] = {}
        # Nova registers swap_volume(server_id, old_volume_id, new_volume_id) for in-use
        # migrations (reference §c.2 step 5); without it an in-use migration fails.
        self.swap_volume = None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- helpers --------------------------------------------------------------------------------
    def _touch(self, obj) -> None:
        obj.updated_at = now_iso()
        self.changed.notify_all()

    def host_of(self, backend: str) -> str:
        return f"{self.host}@{backend}#{self.drivers[backend].pool}"

    # ==== volume types =========================================================================
    def _type(self, caller: Caller, ref: str) -> VolumeType:
        """By id (or, for the volume API, by name): VolumeTypeNotFound otherwise."""
        vt = self.types.get(ref) or next((t for t in self.types.values() if t.name == ref), None)
        if vt is None or not self._type_visible(caller, vt):
            raise errors.NotFound(f"Volume type {ref} could not be found.",
                                  kind="VolumeTypeNotFound")
        return vt

    def _type_visible(self, caller: Caller, vt: VolumeType) -> bool:
        return vt.is_public or caller.is_admin or caller.project_id in vt.projects

    def get_type(self, caller: Caller, type_id: str) -> VolumeType:
        with self.lock:
            vt = self.types.get(type_id)     # shown by id only (reference §a.3)
            if vt is None or not self._type_visible(caller, vt):
                raise errors.NotFound(f"Volume type {type_id} could not be found.",
                                      kind="VolumeTypeNotFound")
            return vt

    def list_types(self, caller: Caller, is_public: str | None = None) -> list[VolumeType]:
        with self.lock:
            types = [t for t in self.types.values() if self._type_visible(caller, t)]
            if caller.is_admin and is_public is not None and is_public.lower() != "none":
                want = is_public.lower() in ("true", "1", "yes")
                types = [t for t in types if t.is_public == want]
            return sorted(types, key=lambda t: t.name)

    def create_type(self, caller: Caller, name, description=None, is_public=True,
                    extra_specs=None) -> VolumeType:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_manage")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise errors.BadRequest("Invalid input received: Volume type name can not be "
                                    "empty.", kind="InvalidInput")
        specs = self._check_specs(extra_specs or {})
        with self.lock:
            if any(t.name == name for t in self.types.values()):
                raise errors.Conflict(f"Volume Type {name} already exists.",
                                      kind="VolumeTypeExists")
            vt = VolumeType(id=str(uuid.uuid4()), name=name, description=description,
                            is_public=_boolish(is_public, "is_public"), extra_specs=specs)
            self.types[vt.id] = vt
            return vt

    @staticmethod
    def _check_specs(specs) -> dict:
        if not isinstance(specs, dict):
            raise errors.BadRequest("Invalid input received: extra_specs must be a dict",
                                    kind="InvalidInput")
        for k, v in specs.items():
            if not isinstance(v, (str, int, float, bool)) or not k or len(k) > 255:
                raise errors.BadRequest(f"Invalid input received: Invalid extra_spec {k}",
                                        kind="InvalidInput")
        return {k: str(v) for k, v in specs.items()}

    def update_type(self, caller: Caller, type_id: str, name=None, description=None,
                    is_public=None) -> VolumeType:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_manage")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if name is not None:
                vt.name = name
            if description is not None:
                vt.description = description
            if is_public is not None:
                vt.is_public = _boolish(is_public, "is_public")
            return vt

    def delete_type(self, caller: Caller, type_id: str) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_manage")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if any(v.volume_type_id == vt.id for v in self.volumes.values()):
                raise errors.BadRequest("Target volume type is still in use.",
                                        kind="VolumeTypeInUse")
            del self.types[vt.id]

    def set_extra_specs(self, caller: Caller, type_id: str, specs) -> dict:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_extra_specs")
        specs = self._check_specs(specs)
        with self.lock:
            vt = self.get_type(caller, type_id)
            vt.extra_specs.update(specs)
            return dict(specs)

    def delete_extra_spec(self, caller: Caller, type_id: str, key: str) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:types_extra_specs")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if key not in vt.extra_specs:
                raise errors.NotFound(f"Volume Type {type_id} has no extra specs with key "
                                      f"{key}.", kind="VolumeTypeExtraSpecsNotFound")
            del vt.extra_specs[key]

    def add_type_access(self, caller: Caller, type_id: str, project: str, add: bool) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:volume_type_access:addProjectAccess")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if vt.is_public:
                raise errors.BadRequest("Invalid volume type: Type access modification is not "
                                        "applicable to public volume type.",
                                        kind="InvalidVolumeType")
            if add:
                if project in vt.projects:
                    raise errors.Conflict(f"Volume type access for {type_id} / {project} "
                                          "combination already exists.")
                vt.projects.add(project)
            else:
                if project not in vt.projects:
                    raise errors.NotFound(f"Volume type access not found for {type_id} / "
                                          f"{project} combination.")
                vt.projects.discard(project)

    # ==== QoS specs ===========================================================================
    def _admin_qos(self, caller: Caller) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:qos_specs_manage")

    def get_qos(self, caller: Caller, qos_id: str) -> QosSpec:
        self._admin_qos(caller)
        with self.lock:
            q = self.qos.get(qos_id)
            if q is None:
                raise errors.NotFound(f"Quality of service specification {qos_id} could not "
                                      "be found.", kind="QoSSpecsNotFound")
            return q

    def list_qos(self, caller: Caller) -> list[QosSpec]:
        self._admin_qos(caller)
        with self.lock:
            return sorted(self.qos.values(), key=lambda q: q.name)

    def create_qos(self, caller: Caller, body: dict) -> QosSpec:
        """The flat body of POST /qos-specs: every key but name and consumer is a spec."""
        self._admin_qos(caller)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise errors.BadRequest("Please specify a name for QoS specs.", kind="InvalidInput")
        consumer = body.get("consumer", "back-end")
        if consumer not in QOS_CONSUMERS:
            raise errors.BadRequest(f"Invalid input received: Valid consumer of QoS specs are: "
                                    f"{list(QOS_CONSUMERS)}", kind="InvalidQoSSpecs")
        specs = {k: v for k, v in body.items() if k not in ("name", "consumer")}
        self._check_qos_values(specs)
        with self.lock:
            if any(q.name == name for q in self.qos.values()):
                raise errors.Conflict(f"QoS Specs {name} already exists.", kind="QoSSpecsExists")
            q = QosSpec(id=str(uuid.uuid4()), name=name, consumer=consumer, specs=specs)
            self.qos[q.id] = q
            return q

    @staticmethod
    def _check_qos_values(specs: dict) -> None:
        for k, v in specs.items():
            if not isinstance(v, str):
                raise errors.BadRequest(f"Invalid input for field/attribute {k}. Value: {v}. "
                                        f"{v!r} is not of type 'string'", kind="ValidationError")

    def set_qos_keys(self, caller: Caller, qos_id: str, specs: dict) -> dict:
        if not isinstance(specs, dict):
            raise errors.BadRequest("Missing required element 'qos_specs' in request body.")
        q = self.get_qos(caller, qos_id)
        specs = dict(specs)
        consumer = specs.pop("consumer", None)
        if consumer is not None and consumer not in QOS_CONSUMERS:
            raise errors.BadRequest(f"Invalid input received: Valid consumer of QoS specs are: "
                                    f"{list(QOS_CONSUMERS)}", kind="InvalidQoSSpecs")
        self._check_qos_values(specs)
        with self.lock:
            if consumer:
                q.consumer = consumer
            q.specs.update(specs)
        return dict(specs, **({"consumer": consumer} if consumer else {}))

    def delete_qos_keys(self, caller: Caller, qos_id: str, keys) -> None:
        q = self.get_qos(caller, qos_id)
        if not isinstance(keys, list):
            raise errors.BadRequest("Missing required element 'keys' in request body.")
        with self.lock:
            for k in keys:
                if k not in q.specs:
                    raise errors.NotFound(f"QoS spec {qos_id} has no key {k}.",
                                          kind="QoSSpecsKeyNotFound")
            for k in keys:
                del q.specs[k]

    def delete_qos(self, caller: Caller, qos_id: str, force: bool = False) -> None:
        q = self.get_qos(caller, qos_id)
        with self.lock:
            users = [t for t in self.types.values() if t.qos_specs_id == q.id]
            if users and not force:
                raise errors.BadRequest(f"QoS Specs {qos_id} is still associated with entities.",
                                        kind="QoSSpecsInUse")
            for t in users:
                t.qos_specs_id = None
            del self.qos[q.id]

    def associate_qos(self, caller: Caller, qos_id: str, type_id: str | None) -> None:
        q = self.get_qos(caller, qos_id)
        if not type_id:
            raise errors.BadRequest("Volume Type id must not be None.")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if vt.qos_specs_id and vt.qos_specs_id != q.id:
                raise errors.BadRequest(f"Type {vt.id} is already associated with another qos "
                                        f"specs: {vt.qos_specs_id}",
                                        kind="InvalidVolumeType")
            vt.qos_specs_id = q.id

    def disassociate_qos(self, caller: Caller, qos_id: str, type_id: str | None) -> None:
        q = self.get_qos(caller, qos_id)
        if not type_id:
            raise errors.BadRequest("Volume Type id must not be None.")
        with self.lock:
            vt = self.get_type(caller, type_id)
            if vt.qos_specs_id == q.id:
                vt.qos_specs_id = None

    def disassociate_all_qos(self, caller: Caller, qos_id: str) -> None:
        q = self.get_qos(caller, qos_id)
        with self.lock:
            for t in self.types.values():
                if t.qos_specs_id == q.id:
                    t.qos_specs_id = None

    def qos_associations(self, caller: Caller, qos_id: str) -> list[VolumeType]:
        q = self.get_qos(caller, qos_id)
        with self.lock:
            return [t for t in self.types.values() if t.qos_specs_id == q.id]

    def _specs_of(self, type_id: str | None) -> tuple[dict, dict, VolumeType | None]:
        """(extra specs, back-end QoS keys, type) the driver sees for a type."""
        vt = self.types.get(type_id) if type_id else None
        if vt is None:
            return {}, {}, None
        q = self.qos.get(vt.qos_specs_id) if vt.qos_specs_id else None
        qos = dict(q.specs) if q and q.consumer in ("back-end", "both") else {}
        return dict(vt.extra_specs), qos, vt

    def front_end_qos(self, type_id: str | None) -> dict | None:
        vt = self.types.get(type_id) if type_id else None
        q = self.qos.get(vt.qos_specs_id) if vt and vt.qos_specs_id else None
        return dict(q.specs) if q and q.consumer in ("front-end", "both") else None

    # ==== quotas ===============================================================================
    def _limits(self, project: str) -> dict:
        limits = dict(DEFAULT_QUOTAS)
        if self.profile.cinder_max < _mv("3.13"):   # generic groups arrived with Newton
            del limits["groups"]
        for vt in self.types.values():
            for k in PER_TYPE_QUOTAS:
                limits[f"{k}_{vt.name}"] = -1
        limits.update(self.quotas.get(project, {}))
        return limits

    def _usage(self, project: str) -> dict:
        used = {k: 0 for k in self._limits(project)}
        for v in self.volumes.values():
            if v.project_id != project or (v.migration_status or "").startswith("target:"):
                continue
            used["volumes"] += 1
            used["gigabytes"] += v.size
            vt = self.types.get(v.volume_type_id) if v.volume_type_id else None
            if vt:
                used[f"volumes_{vt.name}"] = used.get(f"volumes_{vt.name}", 0) + 1
                used[f"gigabytes_{vt.name}"] = used.get(f"gigabytes_{vt.name}", 0) + v.size
        for s in self.snapshots.values():
            if s.project_id == project:
                used["snapshots"] += 1
                used["gigabytes"] += s.size
        return used

    def get_quota(self, caller: Caller, project: str, usage: bool = False) -> dict:
        if project != caller.project_id and not caller.is_admin:
            raise errors.policy_forbids("volume_extension:quotas:show")
        with self.lock:
            limits = self._limits(project)
            if not usage:
                return limits
            used = self._usage(project)
            return {k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0, "allocated": 0}
                    for k, v in limits.items()}

    def update_quota(self, caller: Caller, project: str, values: dict) -> dict:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:quotas:update")
        if not isinstance(values, dict):
            raise errors.BadRequest("Missing required element 'quota_set' in request body.")
        with self.lock:
            known = self._limits(project)
            clean = {}
            for k, v in values.items():
                if k in ("tenant_id", "id"):
                    continue
                if k not in known:
                    raise errors.BadRequest(f"Bad key(s) in quota set: {k}",
                                            kind="InvalidInput")
                try:
                    n = int(v)
                except (TypeError, ValueError):
                    raise errors.BadRequest(f"Invalid input received: Quota value {v!r} for "
                                            f"{k} must be an integer.", kind="InvalidInput") \
                        from None
                if n < -1:
                    raise errors.BadRequest(f"Invalid input received: Quota limit {n} for {k} "
                                            "must be more than or equal to -1.",
                                            kind="InvalidInput")
                clean[k] = n
            self.quotas.setdefault(project, {}).update(clean)
            return self._limits(project)

    def _check_quota(self, project: str, vt: VolumeType | None, size: int,
                     count_volume: bool = True) -> None:
        limits, used = self._limits(project), self._usage(project)
        per_volume = limits["per_volume_gigabytes"]
        if per_volume >= 0 and size > per_volume:
            raise errors.BadRequest(f"Invalid input received: Volume size {size}G exceeds the "
                                    f"per volume quota of {per_volume}G.",
                                    kind="VolumeSizeExceedsLimit")
        keys = ["gigabytes"] + ([f"gigabytes_{vt.name}"] if vt else [])
        for k in keys:
            if limits[k] >= 0 and used.get(k, 0) + size > limits[k]:
                raise errors.OverLimit(
                    f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds "
                    f"allowed {k} quota. Requested {size}G, quota is {limits[k]}G and "
                    f"{used.get(k, 0)}G has been consumed.", kind="VolumeSizeExceedsAvailableQuota")
        if count_volume:
            for k in ["volumes"] + ([f"volumes_{vt.name}"] if vt else []):
                if limits[k] >= 0 and used.get(k, 0) + 1 > limits[k]:
                    raise errors.OverLimit(f"VolumeLimitExceeded: Maximum number of volumes "
                                           f"allowed ({limits[k]}) exceeded for quota '{k}'.",
                                           kind="VolumeLimitExceeded")

    # ==== volumes ==============================================================================
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

    def _backend_for(self, vt: VolumeType | None) -> str | None:
        """The scheduler's choice: volume_backend_name, else the default backend."""
        want = vt.extra_specs.get("volume_backend_name") if vt else None
        if want is None:
            return self.default_backend
        return next((n for n, d in self.drivers.items() if d.backend_name == want), None)

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
                         source.id if source is not None and source_volid else None)
            return vol

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

    def _create_worker(self, vol_id: str, image: ImageData | None, snap_id: str | None,
                       source_id: str | None) -> None:
        with self.lock:
            vol = self.volumes[vol_id]
            backend = self._backend_for(self.volume_type_of(vol))
            if backend is None:
                return self._fail(vol, "No valid backend was found. No weighed backends "
                                       "available")
            vol.host = self.host_of(backend)
            ref = self._ref(vol)
            snap = self.snapshots.get(snap_id) if snap_id else None
            src = self.volumes.get(source_id) if source_id else None
            src_ref = self._ref(src) if src else None
            snap_ref = (SnapshotRef(snap.id, self.volumes[snap.volume_id].backend_id, snap.size,
                                    snap.provider_location) if snap else None)
            src_backend = (src or (self.volumes.get(snap.volume_id) if snap else None))
            src_backend = src_backend.backend if src_backend else None
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
                    copy_bytes(image.path, dst, vol.size * GiB)
            elif (snap_ref or src_ref) and src_backend != backend:
                # Cross-backend clone: a fresh volume, then the bytes through the host.
                update = driver.create_volume(ref)
                ref = replace(ref, provider_auth=update.provider_auth)
                self._copy_between(src_backend, src_ref, backend, ref, vol.size)
            elif snap_ref is not None:
                update = driver.create_volume_from_snapshot(ref, snap_ref)
            elif src_ref is not None:
                update = driver.create_cloned_volume(ref, src_ref)
            else:
                update = driver.create_volume(ref)
        except (BackendError, Exception) as e:   # the manager marks the volume, never crashes
            with self.lock:
                return self._fail(vol, _reason(e))
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
            ok_state = v.status in DELETABLE or (force and v.status not in ("deleting",))
            if (not ok_state or v.attachments or v.migration_status in ("migrating", "starting",
                                                                         "completing")
                    or (snaps and not cascade)):
                raise errors.BadRequest(
                    "Invalid volume: Volume status must be available or error or "
                    "error_restoring or error_extending or error_managing and must not be "
                    "migrating, attached, belong to a group, have snapshots or be "
                    "disassociated from snapshots after volume transfer.", kind="InvalidVolume")
            for s in snaps:
                s.status = "deleting"
            v.status = "deleting"
            self._touch(v)
            self._submit(self._delete_worker, v.id, [s.id for s in snaps])

    def _delete_worker(self, vol_id: str, snap_ids: list) -> None:
        with self.lock:
            vol = self.volumes[vol_id]
            ref, backend = self._ref(vol), vol.backend
            snaps = [self.snapshots[s] for s in snap_ids if s in self.snapshots]
        try:
            if backend is not None:
                driver = self.drivers[backend]
                for s in snaps:
                    driver.delete_snapshot(SnapshotRef(s.id, ref.id, s.size, s.provider_location),
                                           ref)
                driver.delete_volume(ref)
        except Exception as e:
            with self.lock:
                log.warning("volume %s: delete failed: %s", vol_id, _reason(e))
                vol.status = "error_deleting"
                self._touch(vol)
            return
        with self.lock:
            for s in snaps:
                self.snapshots.pop(s.id, None)
            self.volumes.pop(vol_id, None)
            self.changed.notify_all()

    def extend_volume(self, caller: Caller, volume_id: str, new_size) -> None:
        """os-extend: an available volume grows to new_size GiB (extending -> available)."""
        new_size = _positive_int(new_size)
        with self.lock:
            v = self._volume(caller, volume_id)
            if v.status != "available":
                raise errors.BadRequest(f"Invalid volume: Volume status must be available to "
                                        f"extend, but current status is: {v.status}.",
                                        kind="InvalidVolume")
            if new_size <= v.size:
                raise errors.BadRequest(f"Invalid input received: New size for extend must be "
                                        f"greater than current size. (current: {v.size}, "
                                        f"extended: {new_size}).", kind="InvalidInput")
            self._check_quota(v.project_id, self.volume_type_of(v), new_size - v.size,
                              count_volume=False)
            v.status = "extending"
            self._touch(v)
            self._submit(self._extend_worker, v.id, new_size)

    def _extend_worker(self, vol_id: str, new_size: int) -> None:
        with self.lock:
            vol = self.volumes[vol_id]
            driver, ref = self.drivers[vol.backend], self._ref(vol)
        try:
            driver.extend_volume(ref, new_size)
        except Exception as e:
            with self.lock:
                log.warning("volume %s: extend failed: %s", vol_id, _reason(e))
                vol.status = "error_extending"
                self._touch(vol)
            return
        with self.lock:
            vol.size = new_size
            vol.status = "available"
            self._touch(vol)

    # ==== attach (the flow Nova 13-16 drives) ================================================
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
        data.setdefault("access_mode", "rw")
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

    # ==== retype and migration =================================================================
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
            self._submit(self._retype_worker, v.id, vt.id, policy)

    def _qos_of(self, type_id: str | None) -> QosSpec | None:
        vt = self.types.get(type_id) if type_id else None
        return self.qos.get(vt.qos_specs_id) if vt and vt.qos_specs_id else None

    def _retype_worker(self, vol_id: str, type_id: str, policy: str) -> None:
        with self.lock:
            vol = self.volumes[vol_id]
            vt = self.types.get(type_id)
            target = self._backend_for(vt)
            if vt is None or target is None:
                return self._end_retype(vol, None, "No valid backend was found")
            same = target == vol.backend
            ref = self._ref(vol)
            new_specs, new_qos, _ = self._specs_of(type_id)
        if same:
            try:
                done = self.drivers[target].retype(ref, new_specs, new_qos, {})
            except Exception as e:
                with self.lock:
                    return self._end_retype(vol, None, f"driver retype failed: {_reason(e)}")
            if done:
                with self.lock:
                    vol.volume_type_id = type_id
                    return self._end_retype(vol, None, None)
        if policy == "never":
            with self.lock:
                return self._end_retype(vol, None, "retype needs a migration and "
                                                   "migration_policy is 'never'")
        self._migrate(vol_id, target, type_id)

    def _end_retype(self, vol: Volume, migstat: str | None, failure: str | None) -> None:
        if failure:
            log.warning("retype of %s did not happen: %s", vol.id, failure)
        vol.status = vol.previous_status or "available"
        if migstat is not None:
            vol.migration_status = migstat
        self._touch(vol)

    def migrate_volume(self, caller: Caller, volume_id: str, host: str, *,
                       force_host_copy=False, lock_volume=False) -> None:
        """Admin os-migrate_volume to host@backend#pool; the type stays."""
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:volume_admin_actions:migrate_volume")
        with self.lock:
            v = self._volume(caller, volume_id)
            backend = host.split("@", 1)[1].split("#", 1)[0] if "@" in (host or "") else None
            if backend not in self.drivers:
                raise errors.BadRequest(f"Invalid host: No valid host {host}", kind="InvalidHost")
            if v.status not in ("available", "in-use") or v.migration_status not in \
                    RETYPE_MIGSTATS:
                raise errors.BadRequest(f"Invalid volume: Volume status must be available or "
                                        f"in-use, but is {v.status}.", kind="InvalidVolume")
            if self.host_of(backend) == v.host:
                raise errors.BadRequest("Invalid host: Destination host must be different than "
                                        "the current host.", kind="InvalidHost")
            v.previous_status = v.status
            if lock_volume and v.status == "available":
                v.status = "maintenance"
            v.migration_status = "starting"
            self._touch(v)
            self._submit(self._migrate, v.id, backend, v.volume_type_id)

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
        dst = self.drivers[target]
        try:
            update = dst.create_volume(tmp_ref)
            tmp_ref = replace(tmp_ref, provider_auth=update.provider_auth)
            with self.lock:
                tmp.provider_auth, tmp.provider_location = (update.provider_auth,
                                                            update.provider_location)
                tmp.status = "available"
                self._touch(tmp)
            self._copy_between(src_backend, src_ref, target, tmp_ref, vol.size)
            if attached:
                if self.swap_volume is None:
                    raise BackendError("the volume is attached and no compute service can swap "
                                       "it")
                for server in attached:
                    self.swap_volume(server, vol.id, tmp.id)
            with self.lock:
                vol.migration_status = "completing"
                self._touch(vol)
            self.drivers[src_backend].delete_volume(src_ref)
            final = dst.update_migrated_volume(replace(src_ref, id=vol.id), tmp_ref)
        except Exception as e:
            reason = _reason(e)
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

    def reset_status(self, caller: Caller, volume_id: str, *, status=None,
                     attach_status=None, migration_status=None) -> None:
        if not caller.is_admin:
            raise errors.policy_forbids("volume_extension:volume_admin_actions:reset_status")
        allowed = ("creating", "available", "deleting", "error", "error_deleting",
                   "error_managing", "managing", "attaching", "in-use", "detaching",
                   "maintenance", "reserved")
        if status is not None and status not in allowed:
            raise errors.BadRequest(f"Invalid input received: Must specify a valid status",
                                    kind="InvalidInput")
        with self.lock:
            v = self._volume(caller, volume_id)
            if status is not None:
                v.status = status
            if migration_status is not None:
                v.migration_status = None if migration_status == "none" else migration_status
            if attach_status == "detached":
                v.attachments.clear()
            self._touch(v)

    # ==== snapshots ==========================================================================
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
            if v.status != "available" and not (force and v.status == "in-use"):
                raise errors.BadRequest(f"Invalid volume: Volume {v.id} status must be "
                                        f"available, but current status is: {v.status}.",
                                        kind="InvalidVolume")
            if v.migration_status not in RETYPE_MIGSTATS:
                raise errors.BadRequest("Invalid volume: Volume is migrating.",
                                        kind="InvalidVolume")
            limits, used = self._limits(v.project_id), self._usage(v.project_id)
            if limits["snapshots"] >= 0 and used["snapshots"] + 1 > limits["snapshots"]:
                raise errors.OverLimit(f"SnapshotLimitExceeded: Maximum number of snapshots "
                                       f"allowed ({limits['snapshots']}) exceeded",
                                       kind="SnapshotLimitExceeded")
            self._check_quota(v.project_id, None, v.size, count_volume=False)
            s = Snapshot(id=str(uuid.uuid4()), volume_id=v.id, project_id=v.project_id,
                         user_id=caller.user_id, name=name, description=description,
                         size=v.size, metadata=dict(metadata or {}))
            self.snapshots[s.id] = s
            self._submit(self._snapshot_worker, s.id)
            return s

    def _snapshot_worker(self, snap_id: str) -> None:
        with self.lock:
            s = self.snapshots[snap_id]
            vol = self.volumes[s.volume_id]
            ref, driver = self._ref(vol), self.drivers[vol.backend]
        try:
            update = driver.create_snapshot(SnapshotRef(s.id, ref.id, s.size), ref)
        except Exception as e:
            with self.lock:
                log.warning("snapshot %s: %s", s.id, _reason(e))
                s.status = "error"
                self._touch(s)
            return
        with self.lock:
            s.provider_location = update.provider_location
            s.status = "available"
            self._touch(s)

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
            self._submit(self._delete_snapshot_worker, s.id)

    def _delete_snapshot_worker(self, snap_id: str) -> None:
        with self.lock:
            s = self.snapshots[snap_id]
            vol = self.volumes.get(s.volume_id)
            ref = self._ref(vol) if vol else None
            driver = self.drivers[vol.backend] if vol and vol.backend else None
        try:
            if driver is not None and s.status != "error":
                driver.delete_snapshot(SnapshotRef(s.id, ref.id, s.size, s.provider_location),
                                       ref)
        except Exception as e:
            with self.lock:
                log.warning("snapshot %s: delete failed: %s", s.id, _reason(e))
                s.status = "error_deleting"
                self._touch(s)
            return
        with self.lock:
            self.snapshots.pop(snap_id, None)
            self.changed.notify_all()

    # ==== lab hooks for the other services ==================================================
    def driver_ref(self, volume_id: str) -> tuple[object, VolumeRef]:
        """(driver, VolumeRef) of a volume: Nova's guests reach the bytes through it."""
        with self.lock:
            v = self.volumes[volume_id]
            return self.drivers[v.backend], self._ref(v)


# ---- small helpers -----------------------------------------------------------------------------

def _mv(text: str):
    from lab.openstack.microversion import Microversion
    return Microversion.parse(text)


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


def _boolish(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no",
                                                    "on", "off", "t", "f", "y", "n"):
        return value.lower() in ("true", "1", "yes", "on", "t", "y")
    raise errors.BadRequest(f"Invalid input received: {name} must be a boolean, got {value!r}",
                            kind="InvalidInput")


def _positive_int(value) -> int:
    try:
        n = int(value) if not isinstance(value, bool) and str(value).strip().lstrip("-").isdigit() \
            else None
    except (TypeError, ValueError):
        n = None
    if n is None or n <= 0:
        raise errors.BadRequest(f"Invalid input received: Volume size '{value}' must be an "
                                "integer and greater than 0", kind="InvalidInput")
    return n


def _expand_per_gb(specs: dict, size_gib: int) -> dict:
    """Front-end QoS as Nova receives it: *_per_gb keys multiplied out by the size."""
    out = {}
    for k, v in specs.items():
        if k.endswith("_per_gb"):
            try:
                out[k[:-len("_per_gb")]] = str(int(float(v) * size_gib))
            except ValueError:
                continue
        else:
            out[k] = v
    return out
