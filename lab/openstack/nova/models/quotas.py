"""Nova's quota sets: defaults, per-project overrides, usage (instances, cores, ram)."""
from lab.openstack import errors
from lab.openstack.caller import Caller

from lab.openstack.microversion import Microversion

from .records import DEFAULT_QUOTAS, NETWORK_QUOTA_KEYS, integer_from_minus_one


class QuotasMixin:
    # -- quotas ----------------------------------------------------------------------------
    def quota_keys(self, version) -> list[str]:
        keys = list(DEFAULT_QUOTAS)
        if version is not None and version >= Microversion(2, 36):
            keys = [k for k in keys if k not in NETWORK_QUOTA_KEYS]
        return keys

    def limits_of(self, project_id: str) -> dict:
        return {**DEFAULT_QUOTAS, **self.quotas.get(project_id, {})}

    def usage_of(self, project_id: str) -> dict:
        with self.lock:
            mine = [s for s in self.servers.values() if s.project_id == project_id]
            return {"instances": len(mine), "cores": sum(s.flavor.vcpus for s in mine),
                    "ram": sum(s.flavor.ram for s in mine)}

    def update_quota(self, caller: Caller, project_id: str, values: dict, version) -> dict:
        if not caller.is_admin:
            raise errors.policy_forbids("os_compute_api:os-quota-sets:update")
        allowed = set(self.quota_keys(version))
        force = values.pop("force", None)
        if force is not None and not self.profile.nova_quota_force_accepted:
            allowed.discard("force")
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise errors.BadRequest(
                f"Invalid input for field/attribute quota_set. Value: {values}. Additional "
                f"properties are not allowed ('{unknown[0]}' was unexpected)")
        clean = {}
        for k, v in values.items():
            clean[k] = integer_from_minus_one(k, v)
        with self.lock:
            self.quotas.setdefault(project_id, {}).update(clean)
        return self.limits_of(project_id)

    def reset_quota(self, project_id: str) -> None:
        with self.lock:
            self.quotas.pop(project_id, None)
