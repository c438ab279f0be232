"""A vCenter of its own (lab/vsphere) for the guest kill -9 tests
(tests/test_vsphere_guest_kill9.py, tests/test_vsphere_guest_after_restart.py): one process
on a fixed port, killed and restarted on its data dir as the lab's supervisor does, and a
guest job that waits on a gate file."""
import os
import re
import signal
import socket
import sys

from tests.support.vsphere import Vcsim

EXIT_CODE = "7"


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
