"""A pod bound to this node that the node agent does not run: after a `kill -9` of the node
agent its guests died with it, while the API still says Running. A kubelet that restarts
lists the pods bound to its node and syncs each against what the runtime has (kubelet
syncPod; kubelet_pods.go convertToAPIContainerStatuses): a container it used to run that
the runtime no longer has is reported terminated with exit code 137 and reason
ContainerStatusUnknown; under restartPolicy Always/OnFailure the pod's sync then starts a new
container (restartCount + 1, the lost run as lastState); under Never it stays terminated and
the pod is Failed (podstatus.phase).

Pure functions over the pod's API status and podstatus.ContainerState; pods.py acts on them.
"""
import datetime

from . import podstatus
from .podstatus import ContainerState, now

LOST_EXIT = 137
LOST_REASON = "ContainerStatusUnknown"
LOST_MESSAGE = ("The container could not be located when the node agent restarted.  "
                "The container used to be Running")


def _ts(at: datetime.datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(datetime.timezone.utc).replace(microsecond=0) \
        .isoformat().replace("+00:00", "Z")


def _terminated(t) -> dict:
    """V1ContainerStateTerminated -> the dict ContainerState.last holds."""
    out = {"exitCode": t.exit_code, "reason": t.reason, "startedAt": _ts(t.started_at),
           "finishedAt": _ts(t.finished_at), "containerID": t.container_id}
    if t.message:
        out["message"] = t.message
    return out


def _state(spec, status, init: bool, default_reason: str) -> ContainerState:
    st = ContainerState(spec.name, spec.image or "", init, reason=default_reason)
    if status is None:
        return st
    st.restart_count = status.restart_count or 0
    st.container_id = status.container_id
    if status.last_state is not None and status.last_state.terminated is not None:
        st.last = _terminated(status.last_state.terminated)
    s = status.state
    if s is not None and s.terminated is not None:
        t = s.terminated
        st.state, st.exit_code, st.reason = "terminated", t.exit_code, t.reason
        st.started_at, st.finished_at = _ts(t.started_at), _ts(t.finished_at)
        st.container_id, st.message = t.container_id or st.container_id, t.message
    elif s is not None and s.running is not None:
        # the runtime has no such container any more: it died with the previous agent
        st.state, st.exit_code, st.reason = "terminated", LOST_EXIT, LOST_REASON
        st.started_at, st.finished_at = _ts(s.running.started_at), now()
        st.message = LOST_MESSAGE
    elif s is not None and s.waiting is not None:
        st.reason = s.waiting.reason or default_reason
    return st


def states(pod) -> tuple[list[ContainerState], list[ContainerState], str | None]:
    """The pod's init containers and containers as its API status last showed them, with
    every container that was running marked lost (terminated, 137, ContainerStatusUnknown)
    -> (inits, containers, startTime)."""
    status = pod.status
    by_name = {s.name: s for s in (status.container_statuses or [])}
    init_by_name = {s.name: s for s in (status.init_container_statuses or [])}
    has_inits = bool(pod.spec.init_containers)
    inits = [_state(c, init_by_name.get(c.name), True, "PodInitializing")
             for c in pod.spec.init_containers or []]
    containers = [_state(c, by_name.get(c.name), False,
                         "PodInitializing" if has_inits else "ContainerCreating")
                  for c in pod.spec.containers]
    return inits, containers, _ts(status.start_time)


def lost(st: ContainerState) -> bool:
    return st.state == "terminated" and st.reason == LOST_REASON and st.message == LOST_MESSAGE


def restart_lost(containers: list[ContainerState], policy: str) -> list[ContainerState]:
    """Containers whose restartPolicy restarts a lost run: their lost run becomes lastState,
    restartCount + 1, and they wait to be started again -> those containers."""
    out = []
    for st in containers:
        if not lost(st) or not podstatus.should_restart(policy, st.exit_code):
            continue
        st.last = st.terminated()
        st.restart_count += 1
        st.state, st.reason, st.message, st.exit_code = "waiting", "ContainerCreating", None, None
        out.append(st)
    return out


def to_run(st: ContainerState, policy: str) -> bool:
    """Whether the pod's sync (re)starts this container: not when it terminated and its
    restartPolicy keeps it so."""
    return st.state != "terminated" or podstatus.should_restart(policy, st.exit_code)
