"""Cinder's quota sets (defaults, per-type keys, per-project overrides) and the usage and
limit checks that volume and snapshot creation go through."""
from lab.openstack import errors
from lab.openstack.caller import Caller

from .helpers import _mv
from .records import DEFAULT_QUOTAS, PER_TYPE_QUOTAS, VolumeType


class QuotasMixin:
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
        for b in getattr(self, "backups", {}).values():
            if b.project_id == project:
                used["backups"] += 1
                used["backup_gigabytes"] += b.size
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
