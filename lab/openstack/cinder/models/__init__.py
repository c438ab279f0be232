"""Cinder's state and behaviour, one instance per cloud; no HTTP here (DESIGN §5).

Requests are answered at once with the state Cinder's API leaves (`creating`, `retyping`,
`deleting`, ...); the volume manager's work (driver calls, byte copies, migrations) runs on the
model's worker threads, which move each record through the state machines of reference
openstack-api §c.1 and §c.2. One lock guards every record; drivers run outside it.

Who may do what follows Cinder's default policy of these releases: types, extra specs, QoS
specs, quota updates, migrate and reset-status are admin only; a tenant sees only its own
volumes and snapshots (others' are 404), and never the `os-vol-*` admin attributes
(responses/volumes.py).

One module per family, composed into CinderModel as moto composes its EC2 backend:

    records.py        the records and state names          volume_types.py  types, QoS specs
    quotas.py         quota sets, usage, limit checks      volumes.py       volumes (API half)
    attachments.py    attach flow, attachments API         snapshots.py     snapshots (API half)
    migration.py      retype, migrate (the Ceph-to-Datera migration's steps)
    revert.py         revert to the latest snapshot (3.40), API and manager halves
    upload.py         upload a volume to a Glance image (os-volume_upload_image)
    backups.py        volume backups (cinder-backup; bytes in ../backup_posix.py)
    scheduler.py      the backend choice (CapabilitiesFilter)   messages.py  user messages
    manager.py        every background worker: the only place state changes off the request
    restart.py        work in flight when the process died, settled on start (init_host)
"""
from typing import Callable

from lab.openstack.caller import Caller
from lab.openstack.ports import Compute, ImageData, ImageSource

from .attachments import AttachmentsMixin
from .backups import Backup, BackupsMixin
from .helpers import _boolish
from .manager import VolumeManager, log
from .messages import MessagesMixin
from .migration import MigrationMixin
from .quotas import QuotasMixin
from .scheduler import SchedulerMixin
from .restart import RestartMixin
from .revert import RevertMixin
from .upload import UploadMixin
from .records import Attachment, QosSpec, Snapshot, Volume, VolumeType, now_iso
from .snapshots import SnapshotsMixin
from .volume_types import TypesMixin
from .volumes import VolumesMixin

__all__ = ["Attachment", "Backup", "Caller", "CinderModel", "Compute", "ImageData", "ImageSource",
           "QosSpec", "Snapshot", "Volume", "VolumeType", "_boolish"]


class CinderModel(TypesMixin, QuotasMixin, VolumesMixin, AttachmentsMixin, SnapshotsMixin,
                  MigrationMixin, RevertMixin, UploadMixin,
                  BackupsMixin, SchedulerMixin, MessagesMixin, RestartMixin, VolumeManager):
    """Cinder of one cloud. `drivers` maps a backend name to its driver (backends/); `images`
    is the Glance port and `compute` the Nova port (ports.py), None where the cloud has none:
    then creating from an image is refused and an attached volume cannot be migrated."""

    def __init__(self, *, profile, host: str, drivers: dict, default_backend: str,
                 images: ImageSource | None = None, compute: Compute | None = None,
                 workers: int = 4, backup_driver=None):
        self.profile = profile
        self.host = host                          # the cinder-volume host name
        self.drivers = drivers                    # backend name -> driver
        self.default_backend = default_backend
        self.images = images
        self.compute = compute
        self._init_background("cinder-volume", workers, log)
        self.volumes: dict[str, Volume] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.types: dict[str, VolumeType] = {}
        self.qos: dict[str, QosSpec] = {}
        self.quotas: dict[str, dict] = {}
        self.attachments: dict[str, Attachment] = {}
        self.messages: dict[str, dict] = {}
        self.backups: dict[str, Backup] = {}
        self.backup_driver = backup_driver        # None: the cloud runs no cinder-backup
        # Writes the cloud's state now (lab/openstack/durable.py sets it; in memory: nothing).
        # A worker calls it, outside the lock, before a backend change a restart must know
        # of: the volume's host before the driver creates its object, as Cinder's scheduler
        # saves volume.host before cinder-volume runs; else a kill -9 in between leaves an
        # app instance on Datera that the restarted cloud's delete never removes.
        self.write_ahead: Callable[[], object] = lambda: None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _touch(self, obj) -> None:
        obj.updated_at = now_iso()
        self.changed.notify_all()

    def host_of(self, backend: str) -> str:
        return f"{self.host}@{backend}#{self.drivers[backend].pool}"
