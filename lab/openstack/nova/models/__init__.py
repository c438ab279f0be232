"""Nova's state and behaviour, one instance per cloud; no HTTP here (DESIGN §5).

A POST answers at once with the server in BUILD; the compute host's work (attaching the boot
volume through Cinder's reserve -> initialize_connection -> initiator login -> attach flow,
then spawning the guest) runs on the model's worker threads, which move the server through
reference openstack-api §c.3: BUILD -> ACTIVE (or ERROR with a `fault`), delete -> ACTIVE with
task_state `deleting` -> gone. Volume attachments follow the same flow synchronously on a worker
thread, so a refused initiator login is the request's answer. One lock guards every record;
Cinder, the data plane and the guests run outside it.

Neutron's model is not thread-safe (it lives on the event loop), so ports are made and released
by the request handlers' thread, never by the workers.

One module per family, composed into ComputeModel as moto composes its backends:
records.py (flavors, hosts, servers, block devices), hosts.py (flavors, hosts, the scheduler),
quotas.py, keypairs.py, servers.py (the API half), attachments.py (os-volume_attachments), compute.py (the
compute host's work: every change off the request), restart.py (a restart's init_host).
"""
import logging

from lab.openstack import errors
from lab.openstack.caller import Caller
from lab.openstack.ports import Volumes

from .attachments import AttachmentsMixin
from .compute import ComputeManager
from .hosts import HostsMixin
from .keypairs import KeypairsMixin
from .quotas import QuotasMixin
from .records import (DEFAULT_FLAVORS, DEFAULT_QUOTAS, BlockDevice, ComputeHost, Flavor, Server,
                      now_iso)
from .restart import RestartMixin
from .servers import ServersMixin

__all__ = ["BlockDevice", "Caller", "ComputeHost", "ComputeModel", "DEFAULT_QUOTAS", "Flavor",
           "Server"]

log = logging.getLogger("lab.openstack.nova")


class ComputeModel(HostsMixin, QuotasMixin, KeypairsMixin, ServersMixin, AttachmentsMixin,
                   RestartMixin, ComputeManager):
    """Nova of one cloud. `volumes` is the Volumes port (ports.py: Cinder's model), None when
    the cloud has no Cinder; `hosts` are the cloud's compute nodes; `run_dir` holds the
    guests' files."""

    def __init__(self, *, profile, hosts: list[ComputeHost], controller: str,
                 volumes: Volumes | None, run_dir, guest_timeout: float = 300,
                 workers: int = 4):
        self.profile = profile
        self.hosts = hosts
        self.controller = controller
        self._volumes = volumes
        self.run_dir = run_dir
        self.guest_timeout = guest_timeout
        self.flavors = {f.id: f for f in DEFAULT_FLAVORS}
        self.servers: dict[str, Server] = {}
        self.quotas: dict[str, dict] = {}
        self.keypairs: dict[tuple, object] = {}   # (user id, name) -> keypairs.Keypair
        self._init_background("nova-compute", workers, log)
        self.started = now_iso()
        # Writes the cloud's state now (lab/openstack/durable.py sets it): a build saves each
        # block device's volume id before attaching it, as Nova's bdm.save() does
        # (virt/block_device.py), so a delete after a restart finds what the dead build held.
        self.write_ahead = lambda: None

    def close(self) -> None:
        with self.lock:
            guests = [s.guest for s in self.servers.values() if s.guest]
        for g in guests:
            g.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- helpers ---------------------------------------------------------------------------
    def cinder(self) -> Volumes:
        model = self._volumes
        if model is None:
            raise errors.BadRequest("Block Device Mapping is Invalid: this cloud has no volume "
                                    "service.")
        return model

    def _touch(self, server: Server) -> None:
        server.updated = now_iso()
        self.changed.notify_all()
