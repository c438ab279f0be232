"""What nova-compute does when it starts again on a host whose guests died with it (a mixin
of ComputeModel; lab/openstack/durable.py calls `restored` once the saved servers are back).

The lab's guests are processes of the cloud's process: a restart is a compute host that
rebooted. As nova-compute's init_host (nova/compute/manager.py _init_instance) and the power
state sync decide then: a server still building goes to ERROR, a server being deleted finishes
its delete, a running server is SHUTOFF (its guest is gone; Nova does not restart it unless
resume_guests_state_on_host_boot is set, which the lab does not do), and any other task is
cleared. Its volumes stay attached, so a delete detaches them as usual.
"""
from lab.openstack.caller import Caller

from .records import now_iso

POWER_SHUTDOWN = 4   # nova.compute.power_state.SHUTDOWN


class RestartMixin:
    def restored(self, cloud) -> None:
        neutron = cloud.model("neutron") if "neutron" in cloud.services else None
        hosts = {h.name: h for h in self.hosts}
        with self.lock:
            for server in list(self.servers.values()):
                # Shared objects of other parts of the cloud: the host table and Neutron's ports.
                server.host = hosts.get(server.host.name, server.host)
                if neutron is not None:
                    server.ports = [(net, neutron.ports.get(port.id, port))
                                    for net, port in server.ports]
                server.built.set()   # no build runs any more
                if server.deleting:
                    self._submit(self._delete, Caller(server.project_id, server.user_id, True),
                                 server)
                elif server.vm_state == "building":
                    server.status, server.vm_state, server.task_state = "ERROR", "error", None
                    server.fault = {"code": 500, "created": now_iso(),
                                    "message": "nova-compute restarted while the server was "
                                               "building"}
                elif server.status == "ACTIVE":
                    server.status, server.vm_state = "SHUTOFF", "stopped"
                    server.power_state, server.task_state = POWER_SHUTDOWN, None
                else:
                    server.task_state = None
                self._touch(server)
