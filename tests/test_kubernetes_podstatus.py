"""The node agent's pod status rules, without a cluster: kubelet 1.20's getPhase for
restartPolicy Never, the conditions' reasons and messages, and the order of the status lists
(lab/kubernetes/podstatus.py)."""
from lab.kubernetes.podstatus import ContainerState, conditions, phase, pod_status


def c(name, state="waiting", code=None, init=False, reason="ContainerCreating"):
    return ContainerState(name, "img", init, state=state, exit_code=code,
                          reason=reason if state != "terminated" else
                          ("Completed" if code == 0 else "Error"))


def test_phases_follow_the_containers():
    assert phase([], [c("a")]) == "Pending"
    assert phase([c("i", "running", init=True)], [c("a")]) == "Pending"
    assert phase([c("i", "terminated", 0, True)], [c("a", "running")]) == "Running"
    assert phase([], [c("a", "running"), c("b", "terminated", 0)]) == "Running"
    assert phase([], [c("a", "terminated", 0), c("b", "terminated", 0)]) == "Succeeded"
    assert phase([], [c("a", "terminated", 0), c("b", "terminated", 2)]) == "Failed"
    assert phase([c("i", "terminated", 1, True)], [c("a", reason="PodInitializing")]) == "Failed"


def test_conditions_name_the_containers_that_hold_the_pod():
    inits, cs = [c("setup", "running", init=True)], [c("b"), c("a")]
    got = {x["type"]: x for x in conditions(inits, cs, "Pending")}
    assert got["Initialized"]["reason"] == "ContainersNotInitialized"
    assert got["Initialized"]["message"] == "containers with incomplete status: [setup]"
    assert got["Ready"]["message"] == "containers with unready status: [b a]"
    done = {x["type"]: x for x in conditions([], [c("a", "terminated", 0)], "Succeeded")}
    assert done["Ready"]["status"] == "False" and done["Ready"]["reason"] == "PodCompleted"
    assert "message" not in done["Ready"]


def test_status_lists_are_ordered_as_kubelet_orders_them():
    st = pod_status([c("z-init", "terminated", 0, True), c("a-init", "terminated", 0, True)],
                    [c("web", "running"), c("app", "running")], "127.0.4.1", "2026-01-01T00:00:00Z")
    assert [x["name"] for x in st["containerStatuses"]] == ["app", "web"]     # by name
    assert [x["name"] for x in st["initContainerStatuses"]] == ["z-init", "a-init"]   # spec
    assert st["phase"] == "Running" and st["podIP"] == "127.0.4.1"
    assert all(x["ready"] and x["started"] for x in st["containerStatuses"])
    assert st["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
