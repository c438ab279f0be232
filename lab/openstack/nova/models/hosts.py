"""Flavors, the compute hosts and the scheduler's choice of host."""
from lab.openstack import errors
from lab.openstack.caller import Caller

from .records import ComputeHost, Flavor


class HostsMixin:
    # -- flavors ---------------------------------------------------------------------------
    def get_flavor(self, flavor_id: str) -> Flavor:
        f = self.flavors.get(flavor_id)
        if f is None:
            raise errors.NotFound(f"Flavor {flavor_id} could not be found.",
                                  kind="FlavorNotFound")
        return f

    def list_flavors(self) -> list[Flavor]:
        return sorted(self.flavors.values(), key=lambda f: int(f.id))

    # -- the scheduler ---------------------------------------------------------------------
    def pick_host(self, zone: str | None, caller: Caller) -> ComputeHost:
        """The scheduler: a forced `nova:<host>` (admin), else the least busy host."""
        if zone and ":" in zone:
            if not caller.is_admin:
                raise errors.policy_forbids("os_compute_api:servers:create:forced_host")
            name = zone.split(":", 1)[1]
            host = next((h for h in self.hosts if h.name == name), None)
            if host is None:
                raise errors.BadRequest(f"No valid host was found. Compute host {name} could "
                                        "not be found.")
            return host
        if zone not in (None, "", "nova"):
            raise errors.BadRequest(f"The requested availability zone is not available")
        with self.lock:
            load = {h.name: 0 for h in self.hosts}
            for s in self.servers.values():
                load[s.host.name] = load.get(s.host.name, 0) + 1
        return min(self.hosts, key=lambda h: (load[h.name], h.id))

    # -- hosts -----------------------------------------------------------------------------
    def host_usage(self, host: ComputeHost) -> dict:
        with self.lock:
            mine = [s for s in self.servers.values() if s.host is host]
        return {"vcpus_used": sum(s.flavor.vcpus for s in mine),
                "memory_mb_used": 512 + sum(s.flavor.ram for s in mine),
                "local_gb_used": 0, "running_vms": len(mine)}

    def host(self, ref: str) -> ComputeHost:
        h = next((h for h in self.hosts if ref in (str(h.id), h.uuid)), None)
        if h is None:
            raise errors.NotFound(f"Hypervisor with ID '{ref}' could not be found.",
                                  kind="HypervisorNotFound")
        return h
