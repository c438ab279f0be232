"""Cinder's records (what the API shows, reference openstack-api §a.3) and the state names its
checks test. Plain dataclasses: the mixins change them under the model's lock."""
import time
from dataclasses import dataclass, field

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


@dataclass
class VolumeType:
    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    extra_specs: dict = field(default_factory=dict)
    qos_specs_id: str | None = None
    projects: set = field(default_factory=set)
    created_at: str = field(default_factory=now_iso)


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
    progress: str | None = None     # set by os-update_snapshot_status (Nova-assisted snapshots)
    volume_type_id: str | None = None   # the volume's type when the snapshot was taken
    # Where the snapshot's bytes live: the volume's host and backend object at snapshot time.
    # Cinder never moves a volume that has snapshots, so these stay the volume's own.
    host: str | None = None
    backend_volume_id: str | None = None

    @property
    def backend(self) -> str | None:
        return self.host.split("@", 1)[1].split("#", 1)[0] if self.host else None


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
    readonly: bool | None = None      # admin metadata `readonly`: None until os-update_readonly_flag
    error_reason: str | None = None   # the lab's log of why the manager set `error`

    @property
    def backend_id(self) -> str:
        """Backend objects are named after _name_id when a migration left one."""
        return self.name_id or self.id

    @property
    def backend(self) -> str | None:
        return self.host.split("@", 1)[1].split("#", 1)[0] if self.host else None

