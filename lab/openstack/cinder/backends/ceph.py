"""The `ceph` backend: an RBD-like pool of sparse files.

The pool is a folder; an image (RBD's word) is a sparse file named as Cinder's RBD driver names
them, `volume-<id>`, and a snapshot is `volume-<id>@snapshot-<snapshot id>`. The Ceph node's
address (topology.CEPH) is only its identity: it appears in connection_info's `hosts`, as a
monitor's would. Hosts of the lab (the Nova guests, migration copies) reach the bytes through
`local_path`, the stand-in for librbd.
"""
import contextlib
import os
from pathlib import Path

from lab.openstack.cinder.backends import (BackendError, ModelUpdate, SnapshotRef, VolumeRef)
from lab.openstack.cinder.backends.copy import copy_bytes

GiB = 1 << 30
MON_PORT = "6789"


class CephDriver:
    def __init__(self, *, pool_dir: Path, monitor: str, pool: str = "volumes",
                 backend_name: str = "ceph", rbd_user: str = "cinder",
                 secret_uuid: str = "457eb676-33da-42ec-9a8c-9293d545c337"):
        self.backend_name = backend_name
        self.pool = pool
        self.monitor = monitor
        self.rbd_user = rbd_user
        self.secret_uuid = secret_uuid
        self.dir = Path(pool_dir) / pool
        self.dir.mkdir(parents=True, exist_ok=True)

    def volume_stats(self) -> dict:
        """The RBD driver's stats (cinder/volume/drivers/rbd.py _update_volume_stats): thin,
        no multiattach, capacity from the pool's filesystem."""
        st = os.statvfs(self.dir)
        total, free = st.f_blocks * st.f_frsize / GiB, st.f_bavail * st.f_frsize / GiB
        return {"volume_backend_name": self.backend_name, "vendor_name": "Open Source",
                "driver_version": "1.2.0", "storage_protocol": "ceph",
                "total_capacity_gb": round(total, 2), "free_capacity_gb": round(free, 2),
                "reserved_percentage": 0, "multiattach": False,
                "thin_provisioning_support": True, "max_over_subscription_ratio": 20.0}

    # -- names --------------------------------------------------------------------------------
    def local_path(self, volume_id: str) -> Path:
        return self.dir / f"volume-{volume_id}"

    def _snap_path(self, volume_id: str, snapshot_id: str) -> Path:
        return self.dir / f"volume-{volume_id}@snapshot-{snapshot_id}"

    # -- volumes ------------------------------------------------------------------------------
    def create_volume(self, ref: VolumeRef) -> ModelUpdate:
        path = self.local_path(ref.id)
        try:
            with open(path, "xb") as f:
                f.truncate(ref.size_gib * GiB)
        except FileExistsError:
            raise BackendError(f"rbd image volume-{ref.id} already exists in pool {self.pool}")
        return ModelUpdate()

    def create_cloned_volume(self, ref: VolumeRef, src: VolumeRef) -> ModelUpdate:
        self._copy_new(self.local_path(src.id), ref)
        return ModelUpdate()

    def create_volume_from_snapshot(self, ref: VolumeRef, snap: SnapshotRef) -> ModelUpdate:
        self._copy_new(self._snap_path(snap.volume_id, snap.id), ref)
        return ModelUpdate()

    def _copy_new(self, source: Path, ref: VolumeRef) -> None:
        if not source.exists():
            raise BackendError(f"rbd source {source.name} does not exist in pool {self.pool}")
        self.create_volume(ref)
        copy_bytes(str(source), str(self.local_path(ref.id)), ref.size_gib * GiB)

    def delete_volume(self, ref: VolumeRef) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.local_path(ref.id).unlink()

    def extend_volume(self, ref: VolumeRef, new_size_gib: int) -> None:
        os.truncate(self.local_path(ref.id), new_size_gib * GiB)

    def create_snapshot(self, snap: SnapshotRef, ref: VolumeRef) -> ModelUpdate:
        dst = self._snap_path(ref.id, snap.id)
        with open(dst, "xb") as f:
            f.truncate(ref.size_gib * GiB)
        copy_bytes(str(self.local_path(ref.id)), str(dst), ref.size_gib * GiB)
        return ModelUpdate()

    def delete_snapshot(self, snap: SnapshotRef, ref: VolumeRef) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._snap_path(ref.id, snap.id).unlink()

    def revert_to_snapshot(self, ref: VolumeRef, snap: SnapshotRef) -> None:
        """`rbd snap rollback`: the image's bytes become the snapshot's again."""
        src = self._snap_path(ref.id, snap.id)
        if not src.exists():
            raise BackendError(f"rbd snapshot {src.name} does not exist in pool {self.pool}")
        copy_bytes(str(src), str(self.local_path(ref.id)), ref.size_gib * GiB)

    # -- attach ---------------------------------------------------------------------------------
    def create_export(self, ref: VolumeRef, connector: dict) -> None:
        """RBD has no export: clients talk to the monitors and OSDs directly."""

    def initialize_connection(self, ref: VolumeRef, connector: dict) -> dict:
        return {"driver_volume_type": "rbd",
                "data": {"name": f"{self.pool}/volume-{ref.id}", "hosts": [self.monitor],
                         "ports": [MON_PORT], "cluster_name": "ceph", "auth_enabled": True,
                         "auth_username": self.rbd_user, "secret_type": "ceph",
                         "secret_uuid": self.secret_uuid, "volume_id": ref.id,
                         "discard": True}}

    def detach_volume(self, ref: VolumeRef, connector: dict | None) -> None:
        """Nothing to undo: no export, no ACL."""

    # -- retype and migration ---------------------------------------------------------------
    def retype(self, ref: VolumeRef, new_specs: dict, new_qos: dict, diff: dict) -> bool:
        """RBD images carry no type-specific state, so any retype within the pool is free."""
        return True

    def update_migrated_volume(self, original: VolumeRef, new: VolumeRef) -> ModelUpdate:
        """Renames the migrated image to the original volume's name, as the RBD driver does,
        so the volume needs no name_id afterwards."""
        os.replace(self.local_path(new.id), self.local_path(original.id))
        return ModelUpdate(extra={"name_id": None})

    @contextlib.contextmanager
    def local_access(self, ref: VolumeRef):
        path = self.local_path(ref.id)
        if not path.exists():
            raise BackendError(f"rbd image volume-{ref.id} does not exist in pool {self.pool}")
        yield str(path)
