"""A pod's status as kubelet 1.20 computes it from its containers' states (pkg/kubelet
kubelet_pods.go getPhase and convertToAPIContainerStatuses, pkg/kubelet/status
generate.go): the phase, the Initialized/ContainersReady/Ready conditions with their reasons
and messages, initContainerStatuses in spec order and containerStatuses sorted by name.

Pure functions of the containers' states, no API calls: pods.py patches the result.
Restarts (restartPolicy Always/OnFailure) follow kubelet's rules: `should_restart` (pkg/kubelet
/container helpers.go ShouldContainerBeRestarted) and `CrashLoopBackOff`
(kuberuntime_manager.go doBackOff over client-go's flowcontrol.Backoff: 10 s doubling to
5 min, reset once a container ran 10 min).
"""
import datetime
from dataclasses import dataclass


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) \
        .isoformat().replace("+00:00", "Z")


@dataclass
class ContainerState:
    name: str
    image: str
    init: bool
    state: str = "waiting"           # waiting | running | terminated
    reason: str = "ContainerCreating"
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str | None = None
    message: str | None = None       # of a waiting state (CrashLoopBackOff's "back-off 10s ...")
                                     # or a terminated one (podsync.LOST_MESSAGE)
    restart_count: int = 0
    last: dict | None = None         # lastState: the previous run's `terminated`

    def terminated(self) -> dict:
        out = {"exitCode": self.exit_code, "reason": self.reason,
               "startedAt": self.started_at, "finishedAt": self.finished_at,
               "containerID": self.container_id}
        if self.message:   # e.g. a container lost with a killed node agent (podsync.py)
            out["message"] = self.message
        return out

    def api(self) -> dict:
        if self.state == "running":
            st = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            st = {"terminated": self.terminated()}
        else:
            st = {"waiting": {"reason": self.reason,
                              **({"message": self.message} if self.message else {})}}
        out = {"name": self.name, "ready": self.state == "running",
               "restartCount": self.restart_count, "image": self.image, "imageID": "",
               "state": st, "lastState": {"terminated": self.last} if self.last else {},
               "started": self.state == "running"}
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    @property
    def succeeded(self) -> bool:
        return self.state == "terminated" and self.exit_code == 0


def should_restart(policy: str, exit_code: int | None) -> bool:
    """ShouldContainerBeRestarted for a container that has terminated: Never never, OnFailure
    after a non-zero exit, Always after any exit."""
    return policy == "Always" or policy == "OnFailure" and exit_code != 0


class Backoff:
    """client-go flowcontrol.Backoff as kubelet uses it per container (NewBackOff(10 s, 5 min)):
    `delay(finished)` is how long a container that terminated at `finished` (monotonic s)
    waits before its restart: 0 the first time, then 10 s, 20 s, ... 300 s; an entry not
    updated for 2 x 5 min starts over."""
    FIRST_S = 10.0
    MAX_S = 300.0

    def __init__(self):
        self.backoff: float | None = None
        self.last_update = 0.0

    def delay(self, finished: float, now: float) -> float:
        expired = self.backoff is None or finished - self.last_update > 2 * self.MAX_S
        if not expired and now - finished < self.backoff:    # IsInBackOffSince
            return self.backoff - (now - finished)
        return 0.0

    def next(self, finished: float, now: float) -> None:
        """Next(): called when the restart goes ahead."""
        if self.backoff is None or finished - self.last_update > 2 * self.MAX_S:
            self.backoff = self.FIRST_S
        else:
            self.backoff = min(self.backoff * 2, self.MAX_S)
        self.last_update = now


def phase(inits: list[ContainerState], containers: list[ContainerState],
          policy: str = "Never") -> str:
    """getPhase: a container waiting to be restarted (it has a lastState) counts as stopped;
    stopped containers that will restart keep the pod Running."""
    if policy == "Never" and any(c.state == "terminated" and not c.succeeded for c in inits):
        return "Failed"     # under the other policies a failed init container is restarted
    waiting = [c for c in containers if c.state == "waiting" and not c.last]
    if any(not c.succeeded for c in inits) or waiting:
        return "Pending"
    if any(c.state == "running" for c in containers):
        return "Running"
    stopped = len(containers)
    succeeded = sum(c.succeeded for c in containers)
    if policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if policy == "Never" else "Running"


def _condition(type_: str, ok: bool, reason: str | None = None, message: str | None = None,
               at: str | None = None) -> dict:
    c = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None,
         "lastTransitionTime": at or now()}
    if not ok and reason:
        c["reason"] = reason
        if message:
            c["message"] = message
    return c


def conditions(inits: list[ContainerState], containers: list[ContainerState],
               pod_phase: str) -> list[dict]:
    """Initialized, Ready, ContainersReady (status.conditions merge by `type`)."""
    done = pod_phase in ("Succeeded", "Failed")
    incomplete = [c.name for c in inits if not c.succeeded]
    unready = [c.name for c in containers if c.state != "running"]
    init_ok = not incomplete or done and pod_phase == "Succeeded"
    ready_reason = "PodCompleted" if done else "ContainersNotReady"
    ready_msg = None if done else f"containers with unready status: [{' '.join(unready)}]"
    return [
        _condition("Initialized", init_ok, "ContainersNotInitialized",
                   f"containers with incomplete status: [{' '.join(incomplete)}]"),
        _condition("Ready", not unready and not done, ready_reason, ready_msg),
        _condition("ContainersReady", not unready and not done, ready_reason, ready_msg),
    ]


def pod_status(inits: list[ContainerState], containers: list[ContainerState],
               host_ip: str, started: str | None, policy: str = "Never") -> dict:
    """The body of a pods/status patch (strategic merge: conditions merge by type, the status
    lists are replaced whole)."""
    p = phase(inits, containers, policy)
    status = {"phase": p, "hostIP": host_ip, "conditions": conditions(inits, containers, p),
              "containerStatuses": [c.api() for c in sorted(containers, key=lambda c: c.name)]}
    if inits:
        status["initContainerStatuses"] = [c.api() for c in inits]
    if started:
        status.update(podIP=host_ip, podIPs=[{"ip": host_ip}], startTime=started)
    return status
