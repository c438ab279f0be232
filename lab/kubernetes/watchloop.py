"""List-then-watch loops on the real apiserver (reference kubernetes.md §6): list for the
state and resourceVersion, watch from there with a timeout, re-list after the timeout, an
ERROR (410 Expired) or a dropped connection. BOOKMARKs are skipped."""
import logging
import threading

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)
WATCH_S = 60
RETRY_S = 1.0


def watch_forever(name: str, list_fn, handle, stop: threading.Event,
                  synced: threading.Event | None = None, **list_kwargs) -> None:
    """Calls handle(event_type, obj) for every object: ADDED for each listed one, then each
    watch event. Sets `synced` once the first list is handled (an informer's HasSynced: from
    then on nothing created is missed). Returns when `stop` is set (within WATCH_S, or at once
    if idle in a retry)."""
    while not stop.is_set():
        try:
            listed = list_fn(**list_kwargs)
            for item in listed.items:
                handle("ADDED", item)
            if synced is not None:
                synced.set()
            w = watch.Watch()
            for ev in w.stream(list_fn, resource_version=listed.metadata.resource_version,
                               timeout_seconds=WATCH_S, **list_kwargs):
                if stop.is_set():
                    w.stop()
                    return
                if ev["type"] in ("BOOKMARK", "ERROR") or isinstance(ev["object"], dict):
                    continue
                handle(ev["type"], ev["object"])
        except ApiException as e:
            if e.status != 410:
                log.warning("%s watch: HTTP %s %s", name, e.status, e.reason)
            stop.wait(RETRY_S)
        except Exception as e:  # a dropped connection (the apiserver restarting, shutdown)
            if not stop.is_set():
                log.warning("%s watch: %s: %s", name, type(e).__name__, e)
            stop.wait(RETRY_S)
