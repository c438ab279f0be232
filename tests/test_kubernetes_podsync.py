"""A restarted node agent's sync of a pod it does not run, without a cluster: the containers
the API says were running are lost (terminated, 137, ContainerStatusUnknown), restarted under
Always/OnFailure with restartCount + 1 and the lost run as lastState, left terminated under
Never so the pod is Failed; containers that had already ended keep their state
(lab/kubernetes/podsync.py; kubelet 1.20 syncPod + convertToAPIContainerStatuses)."""
import datetime

from kubernetes import client

from lab.kubernetes import podsync
from lab.kubernetes.podstatus import phase, pod_status

T0 = datetime.datetime(2026, 12, 1, 3, 0, 0, tzinfo=datetime.timezone.utc)


def pod(policy: str, statuses: list[dict], init_statuses: list[dict] | None = None):
    inits = [{"name": s["name"], "image": "img"} for s in init_statuses or []]
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="p", namespace="ns", uid="u"),
        spec=client.V1PodSpec(restart_policy=policy,
                              init_containers=[client.V1Container(**c) for c in inits] or None,
                              containers=[client.V1Container(name=s["name"], image="img")
                                          for s in statuses]),
        status=client.V1PodStatus(
            phase="Running", start_time=T0,
            container_statuses=[_status(**s) for s in statuses],
            init_container_statuses=[_status(**s) for s in init_statuses or []] or None))


def _status(name, state, restarts=0, code=None):
    if state == "running":
        st = client.V1ContainerState(running=client.V1ContainerStateRunning(started_at=T0))
    else:
        st = client.V1ContainerState(terminated=client.V1ContainerStateTerminated(
            exit_code=code, reason="Completed" if code == 0 else "Error", started_at=T0,
            finished_at=T0, container_id="vancouver://old"))
    return client.V1ContainerStatus(name=name, image="img", image_id="", ready=state == "running",
                                    restart_count=restarts, state=st,
                                    container_id="vancouver://old")


def test_under_never_a_lost_container_is_terminated_137_and_the_pod_failed():
    inits, cs, started = podsync.states(pod("Never", [{"name": "a", "state": "running"}]))
    assert podsync.restart_lost(cs, "Never") == []
    status = pod_status(inits, cs, "127.0.0.1", started, "Never")
    assert status["phase"] == "Failed"
    assert status["startTime"] == "2026-12-01T03:00:00Z"
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (137, "ContainerStatusUnknown")
    assert term["startedAt"] == "2026-12-01T03:00:00Z" and term["message"]
    assert not podsync.to_run(cs[0], "Never")


def test_under_always_and_on_failure_a_lost_container_restarts_with_its_count():
    for policy in ("Always", "OnFailure"):
        inits, cs, started = podsync.states(
            pod(policy, [{"name": "a", "state": "running", "restarts": 2}]))
        assert podsync.restart_lost(cs, policy) == cs
        st = cs[0]
        assert (st.state, st.restart_count) == ("waiting", 3)
        assert (st.last["exitCode"], st.last["reason"]) == (137, "ContainerStatusUnknown")
        assert podsync.to_run(st, policy)
        # waiting with a lastState is "stopped, will restart": the pod stays Running
        assert phase(inits, cs, policy) == "Running"


def test_containers_that_had_ended_keep_their_state():
    inits, cs, _ = podsync.states(pod("OnFailure", [{"name": "done", "state": "terminated",
                                                     "code": 0},
                                                    {"name": "b", "state": "running"}],
                                      init_statuses=[{"name": "i", "state": "terminated",
                                                      "code": 0}]))
    assert inits[0].succeeded and not podsync.lost(inits[0])
    assert podsync.restart_lost(cs, "OnFailure") == [cs[1]]
    assert not podsync.to_run(cs[0], "OnFailure") and podsync.to_run(cs[1], "OnFailure")
    assert cs[0].container_id == "vancouver://old" and cs[0].exit_code == 0


def test_a_failed_container_under_never_stays_as_it_ended():
    _, cs, _ = podsync.states(pod("Never", [{"name": "a", "state": "terminated", "code": 3},
                                            {"name": "b", "state": "running"}]))
    assert (cs[0].exit_code, cs[0].reason) == (3, "Error") and not podsync.lost(cs[0])
    assert podsync.lost(cs[1]) and podsync.restart_lost(cs, "Never") == []
    assert phase([], cs, "Never") == "Failed"
