"""A VM's guest reports done across a kill -9 of the vCenter, whatever the moment (issue 13:
a guest running across the kill never reported done once under CI load).

The real agent (lab/vsphere/guest.py) runs a job that waits on a gate file; the vCenter
(lab/vsphere, its own process on a fixed port, so the agent's guestinfo URL stays valid as
with the lab's supervisor) is killed at each risky moment of the guest's life: right after the
power-on answer (before its first report), between two info-sets, while the job ends and the
agent posts its result to a dead vCenter, and after the agent's own retries gave up and it
exited, and while the new process loads its state and resumes its guests. Each time the final guestinfo (state done, the job's exit code and its own info-set
values) arrives through pyvmomi, and the job ran once: a guest whose result was merely
undelivered is not started again "as HA would" (that would run its fio and writes twice and
take a whole job's time more than the demo waits)."""
import os
import signal

import pytest

from tests.support.vsphere import create_vm, wait_for, wait_task
from tests.support.vsphere_restart import EXIT_CODE, Lab, alive, guestinfo, job

DONE_S = 60.0


MOMENTS = {
    # kill -> what happens while it is down -> restart
    "before its first report": 60.0,
    "between two info-sets": 60.0,
    "as the job ends (the result posted to a dead vCenter)": 60.0,
    "after the agent's retries gave up": 2.0,
    # no wait: the job's end races the new process's load and Resume
    "as the vCenter comes back": 60.0,
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_the_guest_result_arrives_once_whatever_the_moment_of_the_kill(tmp_path, moment):
    lab = Lab(tmp_path, publish_s=MOMENTS[moment])
    try:
        vm = create_vm(lab.sim.si, "vancouver-kill9-guest", "LocalDS_0",
                       extra={"guestinfo.userdata": job(lab.runs, lab.gate)})
        wait_task(vm.PowerOnVM_Task())
        if moment != "before its first report":
            wait_for(lambda: guestinfo(vm).get("guestinfo.state") == "running", 30,
                     "the guest's first report")
            wait_for(lambda: lab.runs_seen() == ["start"], 30, "the job to start")
        [pid] = lab.agent_pids()
        lab.kill()
        if moment == "as the job ends (the result posted to a dead vCenter)":
            lab.gate.touch()
            wait_for(lambda: lab.runs_seen() == ["start", "end"], 30, "the job to end")
        elif moment == "as the vCenter comes back":
            lab.gate.touch()
        elif moment == "after the agent's retries gave up":
            lab.gate.touch()
            wait_for(lambda: not alive(pid), 30, "the agent to give up and exit")
        lab.restart()
        lab.gate.touch()
        info = wait_for(lambda: (i := guestinfo(lab.vm("vancouver-kill9-guest")))
                        .get("guestinfo.state") == "done" and i, DONE_S, "guestinfo.state done")
        assert info.get("guestinfo.exitcode") == EXIT_CODE, info
        assert info.get("guestinfo.step") == "two", info
        assert lab.runs_seen() == ["start", "end"], (lab.runs_seen(), lab.logs()[-3000:])
    finally:
        for p in lab.agent_pids():
            if alive(p):
                os.killpg(p, signal.SIGKILL)
        lab.sim.stop()
