"""How the node agent reports a pod's failures (pods.py), so none ends in a dead thread:

- a volume that cannot be set up (NodeStage/NodePublish, a configMap, the apiserver): the
  kubelet operation executor's FailedMount message, then a retry with backoff while the pod
  stays ContainerCreating. A Datera error arrives as a CsiError (gRPC Unavailable for a 503,
  datera_csi.py); anything unforeseen is reported the same way and retried too, as a kubelet
  retries any failed MountDevice;
- a failure of the pod's worker outside that (a bug, a lost apiserver while a container runs):
  the pod is given up: a Warning `Failed` event, its unfinished containers terminated with
  exit code 128 and the pod Failed, as a kubelet fails a pod it cannot run.
Messages are masked (clients/masking.py): an exception's text may hold a request body.
"""
from kubernetes.client.exceptions import ApiException

from clients.masking import mask_text

from .datera_csi import CsiError
from .podstatus import ContainerState, now
from .podvolumes import MountError

GIVE_UP_EXIT_CODE = 128


def _text(e: BaseException) -> str:
    """One masked line: the exception's first line, at most 300 characters."""
    lines = str(e).strip().splitlines()
    return mask_text(f"{type(e).__name__}: {lines[0] if lines else 'no detail'}")[:300]


def mount_failed(e: BaseException) -> str:
    """The FailedMount event's message for an error of the pod's volume setup."""
    if isinstance(e, MountError):
        return mask_text(str(e))
    if isinstance(e, CsiError):   # kubelet: `<op> failed for volume "<pv>" : <error>`
        return mask_text(f'MountVolume.MountDevice failed for volume '
                         f'"{getattr(e, "volume", "")}" : {e}')
    if isinstance(e, ApiException):
        return f"Unable to attach or mount volumes: HTTP {e.status} {e.reason}"
    return f"Unable to attach or mount volumes: {_text(e)}"


def give_up(states: list[ContainerState], e: BaseException) -> str:
    """Terminates every container of `states` that has not ended (exit 128, reason Error) ->
    the Failed event's message."""
    at = now()
    for st in states:
        if st.state != "terminated":
            st.state, st.reason, st.exit_code = "terminated", "Error", GIVE_UP_EXIT_CODE
            st.started_at, st.finished_at, st.message = st.started_at or at, at, None
    return f"the node agent cannot run the pod: {_text(e)}"
