"""Durable state of one lab cloud (issue 13 item 1): one SQLite database per service
(<data_dir>/<service>.db, lab/store.py), written through after every state-changing request
and within a second of a change the services' workers made, read back when the process starts.

What each service keeps is its Service.durable: the names of its model's attributes (keystone:
domains, projects, users, roles, assignments, groups, credentials, catalog additions; glance:
images, whose bytes are files under data_dir/glance; neutron: networks, subnets, ports; cinder:
volumes, snapshots, types, QoS specs, quotas, attachments, messages, whose bytes live on the
backends; nova: servers, flavors, quotas). A service's attributes are saved together, in one
pickle, so objects shared between them (a Cinder volume and its attachments) stay shared.
Keystone tokens are not kept: they lapse on a restart and clients authenticate again
(keystoneauth does on the 401).

After loading, each model's `restored(cloud)` (where it has one) re-links objects of other
services and settles work that was in flight when the process died, as the real service's
start does (cinder-volume's and nova-compute's init_host): see CinderModel.restored and
ComputeModel.restored. Glance has nothing to settle: an image whose upload the death cut off
stays `saving`, as Glance leaves it, and is deleted like any other.
"""
import contextlib
import logging
import threading

from lab.store import Store, enabled

log = logging.getLogger("lab.openstack.durable")

KIND, KEY = "state", "model"


class CloudState:
    """The stores of one cloud's services."""

    def __init__(self, cloud, stores: dict):
        self.cloud = cloud
        self.stores = stores   # service name -> Store
        # sync() runs on the event loop and in workers (write_ahead): one at a time, as a
        # Store's connection and its record of what it wrote are not for two threads. Taken
        # before any model's lock; never call sync() holding one.
        self._syncing = threading.Lock()

    @classmethod
    def open(cls, cloud) -> "CloudState | None":
        """None when VANCOUVER_LAB_STORE=off: the in-memory path."""
        if not enabled():
            return None
        state = cls(cloud, {name: Store(cloud.config.data_dir / f"{name}.db")
                            for name, svc in cloud.services.items() if svc.durable})
        for svc in cloud.services.values():
            if hasattr(svc.model, "write_ahead"):   # a worker's write before a backend change
                svc.model.write_ahead = state.sync
        return state

    def load(self) -> dict[str, int]:
        """Restores every service's saved attributes; {service: objects restored}."""
        counts = {}
        for name, store in self.stores.items():
            saved = store.load().get(KIND, {}).get(KEY)
            if not saved:
                continue
            model = self.cloud.model(name)
            for attr in self.cloud.services[name].durable:
                if attr in saved:
                    setattr(model, attr, saved[attr])
            counts[name] = sum(len(v) for v in saved.values() if hasattr(v, "__len__"))
        if counts:
            for svc in self.cloud.services.values():
                restored = getattr(svc.model, "restored", None)
                if restored is not None:
                    restored(self.cloud)
            self.sync()   # what restored() settled is the state now
        return counts

    def sync(self) -> int:
        """Writes every service whose state changed; returns the rows written."""
        written = 0
        with self._syncing:
            for name, store in self.stores.items():
                svc = self.cloud.services[name]
                lock = getattr(svc.model, "lock", None) or contextlib.nullcontext()
                with lock:   # a consistent picture: the workers change state under this lock
                    state = {attr: getattr(svc.model, attr) for attr in svc.durable}
                    written += store.sync({KIND: {KEY: state}})
        return written

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
