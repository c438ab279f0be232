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
import re
import signal
import socket
import sys

import pytest

from tests.support.vsphere import Vcsim, create_vm, wait_for, wait_task

EXIT_CODE = "7"
DONE_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job(runs, gate) -> str:
    return (f"echo start >> {runs}\n"
            'vmware-rpctool "info-set guestinfo.step one"\n'
            f"while [ ! -e {gate} ]; do sleep 0.05; done\n"
            'vmware-rpctool "info-set guestinfo.step two"\n'
            f"echo end >> {runs}\n"
            f"exit {EXIT_CODE}\n")


class Lab:
    """One vCenter on a fixed port, restarted on its data dir as the supervisor does."""

    def __init__(self, tmp_path, publish_s: float, **env: str):
        """`env`: more of the vCenter's environment (VANCOUVER_VSPHERE_GUEST: another agent)."""
        env = {"VANCOUVER_PYTHON": sys.executable, "VANCOUVER_VSPHERE_GUEST_PUBLISH_S": str(publish_s),
               **env}
        self.sims = [Vcsim(tmp_path / "vcsim", env=env, listen_port=free_port()).start()]
        self.runs, self.gate = tmp_path / "runs", tmp_path / "gate"

    @property
    def sim(self) -> Vcsim:
        return self.sims[-1]

    def kill(self) -> None:
        old = self.sim
        old.proc.send_signal(signal.SIGKILL)
        old.proc.wait()
        old.log.close()
        old._si = None
        (old.work / "url").unlink()
        os.replace(old.work / "vcsim.log", old.work / f"vcsim.{len(self.sims)}.log")

    def restart(self) -> Vcsim:
        old = self.sim
        self.sims.append(Vcsim(old.work, env=old.env, password=old.password,
                               listen_port=old.listen_port).start())
        return self.sim

    def vm(self, name):
        return next(v for v in self.sim.si.content.rootFolder.childEntity[0].vmFolder.childEntity
                    if v.name == name)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.sim.work.glob("vcsim*.log")))

    def agent_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"agent pid (\d+)", self.logs())]

    def runs_seen(self) -> list[str]:
        return self.runs.read_text().split() if self.runs.exists() else []


def guestinfo(vm) -> dict:
    return {o.key: str(o.value) for o in vm.config.extraConfig or []
            if o.key.startswith("guestinfo.") and o.key != "guestinfo.userdata"}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] not in "ZX"
    except FileNotFoundError:
        return False


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
