"""The narrow contract between the Datera lab's object model and its data plane.

The model (models.py) owns every object of the REST API. The data plane (dataplane.py) owns
sparse files, NBD connections, token buckets and I/O counters. They meet only here:

- the model tells the data plane what changed through `DataPlaneHooks`;
- the data plane asks the model whether an initiator may log in through `LoginAuthority`,
  and records what happened through it (events are a model object);
- the REST layer reads I/O history from `metrics.Metrics` with a `Scope`.

Both sides run on the same asyncio loop in one process, so no locking is needed.
"""
from dataclasses import dataclass
from typing import Protocol

# performance_policy fields (reference datera-api §2.6); 0 means unlimited; bandwidth in KiB/s.
POLICY_FIELDS = ("total_iops_max", "read_iops_max", "write_iops_max",
                 "total_bandwidth_max", "read_bandwidth_max", "write_bandwidth_max")


@dataclass(frozen=True)
class VolumeHandle:
    """What the data plane needs to know about one volume (one LUN)."""
    uuid: str
    tenant: str          # tenant path, e.g. "/root/Vancouver-KU"
    app_instance: str    # app instance id (uuid)
    size_bytes: int


@dataclass(frozen=True)
class Scope:
    """Whose I/O a metrics query is about: kind is 'volume', 'app_instance', 'tenant' or
    'system'; key is the volume uuid, app instance id, tenant path, or '' for the system."""
    kind: str
    key: str


class LoginRefused(Exception):
    """An initiator login the target refuses; str(e) is the reason told to the initiator."""


class ChapRequired(LoginRefused):
    """The target's auth is CHAP and the initiator has not answered a challenge yet: the
    login service then sends a challenge instead of a refusal."""


class DataPlaneHooks(Protocol):
    def volume_created(self, vol: VolumeHandle) -> None: ...
    def volume_resized(self, vol: VolumeHandle) -> None: ...
    def volume_deleted(self, uuid: str) -> None:
        """Closes the volume's connections cleanly and removes its bytes."""
    def volume_online(self, uuid: str, online: bool) -> None:
        """Offline volumes refuse I/O; going offline closes open connections."""
    def volume_qos(self, uuid: str, policy: dict) -> None:
        """policy maps POLICY_FIELDS to ints (missing or 0 = unlimited); applies live."""
    def tenant_qos(self, tenant: str, policy: dict) -> None:
        """The lab's per-tenant cap (same fields), across all of the tenant's volumes."""
    def clone_bytes(self, src_uuid: str, dst_uuid: str) -> None:
        """Copies a volume's (or a snapshot's) bytes into a new volume (clones, restores)."""
    def snapshot_bytes(self, vol_uuid: str, snap_id: str) -> None: ...
    def restore_bytes(self, vol_uuid: str, snap_id: str) -> None: ...
    def drop_snapshot(self, vol_uuid: str, snap_id: str) -> None: ...


class LoginAuthority(Protocol):
    def login(self, *, initiator: str, target: str, portal: str,
              chap_user: str | None, chap_response_check) -> list[VolumeHandle]:
        """Checks an initiator login against the storage instance whose IQN is `target`.

        `chap_response_check(secret) -> bool` verifies the initiator's CHAP response against a
        candidate secret, so the secret never crosses the wire. Returns the storage instance's
        volumes in LUN order, or raises LoginRefused with the reason (unknown target, offline
        target, initiator not in the ACL, CHAP required or wrong); the model records an event
        either way."""
    def may_access(self, *, initiator: str, vol_uuid: str) -> bool:
        """Re-checked when an export is opened: the ACL may have changed since the login."""
