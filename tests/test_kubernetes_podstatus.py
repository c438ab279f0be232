"""The node agent's pod status rules, without a cluster: kubelet 1.20's getPhase under each
restartPolicy, the conditions' reasons and messages, the order of the status lists, restart
counts, lastState and CrashLoopBackOff's backoff (lab/kubernetes/podstatus.py)."""
from lab.kubernetes.podstatus import (Backoff, ContainerState, conditions, phase, pod_status,
                                     should_restart)


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


def restarting(name, code, restarts=1):
    """A container waiting in CrashLoopBackOff after a run that exited `code`."""
    st = ContainerState(name, "img", False, state="waiting", reason="CrashLoopBackOff",
                        restart_count=restarts, message="back-off 10s restarting failed ...")
    st.last = {"exitCode": code, "reason": "Error" if code else "Completed"}
    return st


def test_restart_policies_decide_which_exits_restart():
    assert not should_restart("Never", 1) and not should_restart("Never", 0)
    assert should_restart("OnFailure", 1) and not should_restart("OnFailure", 0)
    assert should_restart("Always", 0) and should_restart("Always", 137)


def test_a_crashlooping_container_keeps_the_pod_running_unless_the_policy_is_never():
    # kubelet's getPhase counts a container waiting with a lastState as stopped, not waiting
    assert phase([], [restarting("a", 1)], "Always") == "Running"
    assert phase([], [restarting("a", 1)], "OnFailure") == "Running"
    assert phase([], [c("a", "terminated", 0)], "OnFailure") == "Succeeded"
    assert phase([], [c("a", "terminated", 0)], "Always") == "Running"
    assert phase([], [c("a", "terminated", 1)], "Never") == "Failed"
    # a failed init container is restarted (Pending) except under Never (Failed)
    failed_init = [c("i", "terminated", 1, True)]
    assert phase(failed_init, [c("a", reason="PodInitializing")], "OnFailure") == "Pending"
    assert phase(failed_init, [c("a", reason="PodInitializing")], "Never") == "Failed"


def test_status_carries_restart_count_last_state_and_the_backoff_message():
    st = pod_status([], [restarting("app", 2, restarts=3)], "127.0.4.1", None, "Always")
    cs = st["containerStatuses"][0]
    assert cs["restartCount"] == 3 and cs["lastState"]["terminated"]["exitCode"] == 2
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["state"]["waiting"]["message"].startswith("back-off 10s")
    assert not cs["ready"] and st["phase"] == "Running"
    fresh = pod_status([], [c("app", "running")], "127.0.4.1", None)["containerStatuses"][0]
    assert fresh["restartCount"] == 0 and fresh["lastState"] == {}


def test_backoff_is_kubelets_10s_doubling_to_5_minutes_and_resets_after_10_minutes():
    b, t, waits = Backoff(), 1000.0, []
    for _ in range(8):   # each run crashes at once: the wait before each restart
        waits.append(b.delay(t, t))
        t += waits[-1]
        b.next(t - waits[-1], t)
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300]
    assert b.delay(t, t + 5) == 295                # mid-window: what is left of it
    assert b.delay(t, t + 301) == 0                # the window has passed: restart now
    # a container that ran 10+ minutes before it crashed starts over at 10 s
    b.next(t + 700, t + 700)
    assert b.backoff == 10
