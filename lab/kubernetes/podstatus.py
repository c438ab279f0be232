"""A pod's status as kubelet 1.20 computes it from its containers' states (pkg/kubelet
kubelet_pods.go getPhase and convertToAPIContainerStatuses, pkg/kubelet/status
generate.go): the phase, the Initialized/ContainersReady/Ready conditions with their reasons
and messages, initContainerStatuses in spec order and containerStatuses sorted by name.

Pure functions of the containers' states, no API calls: pods.py patches the result.
Restart policy: the lab never restarts a container, so it decides phases as for `Never`.
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

    def api(self) -> dict:
        if self.state == "running":
            st = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            st = {"terminated": {"exitCode": self.exit_code, "reason": self.reason,
                                 "startedAt": self.started_at, "finishedAt": self.finished_at,
                                 "containerID": self.container_id}}
        else:
            st = {"waiting": {"reason": self.reason}}
        out = {"name": self.name, "ready": self.state == "running", "restartCount": 0,
               "image": self.image, "imageID": "", "state": st,
               "started": self.state == "running"}
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    @property
    def succeeded(self) -> bool:
        return self.state == "terminated" and self.exit_code == 0


def phase(inits: list[ContainerState], containers: list[ContainerState]) -> str:
    """getPhase for restartPolicy Never."""
    if any(c.state == "terminated" and not c.succeeded for c in inits):
        return "Failed"
    if any(not c.succeeded for c in inits) or any(c.state == "waiting" for c in containers):
        return "Pending"
    if any(c.state == "running" for c in containers):
        return "Running"
    return "Succeeded" if all(c.succeeded for c in containers) else "Failed"


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
               host_ip: str, started: str | None) -> dict:
    """The body of a pods/status patch (strategic merge: conditions merge by type, the status
    lists are replaced whole)."""
    p = phase(inits, containers)
    status = {"phase": p, "hostIP": host_ip, "conditions": conditions(inits, containers, p),
              "containerStatuses": [c.api() for c in sorted(containers, key=lambda c: c.name)]}
    if inits:
        status["initContainerStatuses"] = [c.api() for c in inits]
    if started:
        status.update(podIP=host_ip, podIPs=[{"ip": host_ip}], startTime=started)
    return status
