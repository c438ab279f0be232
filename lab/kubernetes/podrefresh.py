"""configMap and secret volumes kept up to date while their pods run, as kubelet's volume
manager does (reference kubernetes.md §9.1; kubelet 1.20 pkg/kubelet/configmap and secret
managers with the Watch change-detection strategy, pkg/volume/configmap SetUpAt on every pod
sync): when the object changes, the volume is written again through the AtomicWriter, so a
running container's `cat` of the file shows the new value and `readlink ..data` shows the
swap. kubelet gets there within its sync period plus the cache TTL (about a minute); the lab's
node writes on the watch event, so within a second.

What kubelet does not refresh, the lab does not either:
- subPath mounts: kubelet bind-mounts the file as it was when the container started
  (pods.py gives such a container its own copy);
- immutable objects (`immutable: true`): kubelet stops watching them; they cannot change;
- a deleted object that is not `optional`: SetUp fails ("configmap \"x\" not found") and the
  files stay as they were; an optional one becomes an empty volume.
"""
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client

from . import atomicwriter, podvolumes
from .podvolumes import MountError
from .watchloop import watch_forever

log = logging.getLogger(__name__)


def _rv(obj) -> int:
    """An object's resourceVersion as a number (etcd's revision; 0 when absent)."""
    try:
        return int(obj.metadata.resource_version)
    except (AttributeError, TypeError, ValueError):
        return 0


@dataclass
class _Volume:
    namespace: str
    volume: object                 # V1Volume with configMap or secret
    dest: Path
    rv: int = -1                   # resourceVersion of what was written last
    lock: threading.Lock = field(default_factory=threading.Lock)


class VolumeRefresher:
    """Sets up configMap/secret volumes and refreshes them from one watch per kind (started
    with the first such volume, so the node's start does not wait on it)."""

    def __init__(self, core: client.CoreV1Api):
        self.core = core
        self.stop = threading.Event()
        self._lock = threading.Lock()
        # (kind, namespace, object name) -> {(pod uid, volume name): _Volume}
        self._vols: dict[tuple[str, str, str], dict[tuple[str, str], _Volume]] = {}
        self._watching = False

    def set_up(self, uid: str, namespace: str, volume, dest: Path) -> None:
        """MountVolume.SetUp of a configMap/secret volume; later changes of the object are
        written too until forget(uid). Raises MountError, ApiException."""
        kind, name, _src = podvolumes.source(volume)
        v = _Volume(namespace, volume, dest)
        with self._lock:   # registered before the read: no change between them is lost
            self._vols.setdefault((kind, namespace, name), {})[(uid, volume.name)] = v
        self._watch()
        with v.lock:
            obj = podvolumes.read(self.core, namespace, volume)
            self._write(v, obj, _rv(obj) if obj is not None else 0)

    def forget(self, uid: str) -> None:
        """The pod's volumes are torn down: no more refreshes for them."""
        with self._lock:
            for key in list(self._vols):
                vols = self._vols[key]
                for k in [k for k in vols if k[0] == uid]:
                    del vols[k]
                if not vols:
                    del self._vols[key]

    def shutdown(self) -> None:
        self.stop.set()

    @staticmethod
    def _write(v: _Volume, obj, rv: int) -> None:
        if rv < v.rv:
            return   # older than what the volume shows (a watch event overtaken by a read)
        if atomicwriter.write(v.dest, podvolumes.payload(v.volume, obj)):
            log.info("volume %s of a pod in %s written from %s", v.volume.name, v.namespace,
                     "nothing (optional, missing)" if obj is None else
                     f"resourceVersion {obj.metadata.resource_version}")
        v.rv = rv

    def _watch(self) -> None:
        with self._lock:
            if self._watching:
                return
            self._watching = True
        for kind, list_fn in (("configmap", self.core.list_config_map_for_all_namespaces),
                              ("secret", self.core.list_secret_for_all_namespaces)):
            threading.Thread(target=watch_forever, name=f"node-{kind}s", daemon=True,
                             args=(f"{kind}s", list_fn,
                                   lambda t, o, k=kind: self._on_event(k, t, o), self.stop)
                             ).start()

    def _on_event(self, kind: str, event: str, obj) -> None:
        with self._lock:
            vols = list(self._vols.get((kind, obj.metadata.namespace, obj.metadata.name),
                                       {}).values())
        for v in vols:
            _kind, _name, src = podvolumes.source(v.volume)
            if event == "DELETED":
                if not src.optional:
                    log.warning('volume %s in %s: %s "%s" not found; keeping its files',
                                v.volume.name, v.namespace, kind, obj.metadata.name)
                    continue
                obj_now, rv = None, _rv(obj)   # the event carries the deletion's revision
            elif obj.immutable:
                continue
            else:
                obj_now, rv = obj, _rv(obj)
            try:
                with v.lock:
                    if v.dest.is_dir():   # not a pod's volume being torn down
                        self._write(v, obj_now, rv)
            except (MountError, OSError) as e:   # kubelet: a failed SetUp keeps the old files
                log.warning("refresh of volume %s in %s: %s", v.volume.name, v.namespace, e)
