"""Cinder volume drivers of the lab, one module per backend (datera, ceph).

A driver is what Cinder's volume manager calls; it sees volumes only through `VolumeRef`
(never the model's records) and answers with `ModelUpdate`s the model applies. Every method
may block (REST calls, byte copies): the model calls them from its worker threads only.

Driver protocol (the names are those of cinder.volume.driver.VolumeDriver):
    backend_name: str                     the cinder.conf section, routed by `volume_backend_name`
    pool: str
    create_volume(ref) -> ModelUpdate
    create_cloned_volume(ref, src_ref) -> ModelUpdate
    create_volume_from_snapshot(ref, snap_ref) -> ModelUpdate
    delete_volume(ref)
    create_snapshot(snap_ref, ref) -> ModelUpdate      (provider_location)
    delete_snapshot(snap_ref, ref)
    create_export(ref, connector); initialize_connection(ref, connector) -> connection_info
    detach_volume(ref, connector)
    retype(ref, new_specs, new_qos, diff) -> bool      False: Cinder must migrate
    revert_to_snapshot(ref, snap_ref)                  the volume's bytes become the snapshot's
    update_migrated_volume(original_ref, new_ref) -> ModelUpdate
    local_access(ref) -> context manager yielding a path or nbd:// URI the lab host can
                         read and write (for image copies and generic migration)
"""
from dataclasses import dataclass, field


class BackendError(Exception):
    """A driver could not do what was asked; str(e) is a secret-free one-line reason. The
    model turns it into the volume's `error` status, as Cinder's volume manager does."""


@dataclass(frozen=True)
class VolumeRef:
    """What a driver knows of one Cinder volume."""
    id: str                 # the id the backend object is named after (Cinder's name_id or id)
    size_gib: int
    project_id: str
    display_name: str
    extra_specs: dict       # the volume type's extra specs ({} without a type)
    qos_specs: dict         # the associated back-end QoS spec's keys ({} when none)
    provider_auth: str | None = None       # "CHAP <user> <secret>"
    provider_location: str | None = None


@dataclass(frozen=True)
class SnapshotRef:
    id: str
    volume_id: str
    size_gib: int
    provider_location: str | None = None


@dataclass
class ModelUpdate:
    provider_auth: str | None = None
    provider_location: str | None = None
    extra: dict = field(default_factory=dict)


def as_bool(value) -> bool:
    """Extra-spec booleans: True/False, 'True'/'False', '<is> True' (Cinder's capability form)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower().startswith("<is>"):
        text = text[4:].strip()
    return text.lower() in ("true", "1", "yes", "on")
