"""Nothing of the Kubernetes control plane outlives its lab. etcd, kube-apiserver,
kube-controller-manager and kube-scheduler run in sessions of their own so that a `kill -9` of
the node process leaves them serving (lab/detached.py, lab/kubernetes/processes.py); every way
a lab ends must still stop them: `lab down`, a component stopped by SIGTERM, a lab whose start
fails after the programs started, and `lab up` / `lab down` after a crashed supervisor whose
node process died with it. Checked with psutil: no live process runs from the run dir.

Labs of this module's own on net 127.230 (tests/support/labcli.py), one after another.
"""
import json
import os
import signal
import subprocess

import psutil
import pytest

from fixtures.waiters import wait_until
from tests.support.labcli import REPO, LabCli

# Labs of their own on a fixed net, killed on purpose: run alone (make test's second phase).
pytestmark = pytest.mark.serial

NET = "127.230"
TIMEOUT = 120
PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def running_from(run_dir) -> list[str]:
    """'<pid> <argv0>' of each live (not zombie) process whose command line names run_dir."""
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        cmd = p.info["cmdline"] or []
        if p.info["status"] != psutil.STATUS_ZOMBIE and any(str(run_dir) in a for a in cmd):
            out.append(f"{p.info['pid']} {os.path.basename(cmd[0])}")
    return out


def detached_pids(lab: LabCli) -> dict[str, int]:
    d = lab.run_dir / "kubernetes" / "detached"
    return {f.stem: json.loads(f.read_text())["pid"] for f in d.glob("*.json")}


def node_pid(lab: LabCli) -> int:
    return lab.component_pids()["kubernetes"]


def nothing_left(lab: LabCli) -> None:
    wait_until(lambda: not running_from(lab.run_dir), 30,
               f"no process left running from {lab.run_dir}", interval=0.1)


@pytest.fixture
def lab(tmp_path):
    lab = LabCli(NET, tmp_path / "lab")
    lab.up_kubernetes()
    assert set(detached_pids(lab)) == set(PROGRAMS)
    yield lab
    lab.run("down")
    assert not running_from(lab.run_dir)


def crash(lab: LabCli) -> dict[str, int]:
    """The supervisor and the node process killed with SIGKILL, the node first (a stopped
    supervisor cannot restart it, and its death cannot SIGTERM a node already gone): the
    detached programs are all that is left, still running. Returns their pids."""
    sup, node = lab.supervisor_pid(), node_pid(lab)
    progs = detached_pids(lab)
    os.kill(sup, signal.SIGSTOP)
    os.killpg(node, signal.SIGKILL)
    os.kill(sup, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(sup) or
               psutil.Process(sup).status() == psutil.STATUS_ZOMBIE, 10, "the supervisor dead")
    assert all(psutil.pid_exists(p) for p in progs.values())   # they outlive both
    return progs


def test_lab_down_stops_the_detached_control_plane(lab):
    assert lab.run("down").returncode == 0
    nothing_left(lab)


def test_a_component_stopped_by_sigterm_stops_its_control_plane(lab):
    progs = detached_pids(lab)
    os.kill(node_pid(lab), signal.SIGTERM)   # a clean stop: the supervisor leaves it down
    wait_until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() !=
                               psutil.STATUS_ZOMBIE for p in progs.values()), 30,
               "the control plane stopped with its node")
    assert not (lab.run_dir / "kubernetes" / "detached").exists() or not detached_pids(lab)


def test_lab_up_after_a_crashed_supervisor_stops_what_it_left_and_starts_afresh(lab):
    old = crash(lab)
    lab.up_kubernetes()
    assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE
               for p in old.values())
    assert set(detached_pids(lab)) == set(PROGRAMS)
    assert not set(detached_pids(lab).values()) & set(old.values())


def test_lab_down_after_a_crashed_supervisor_stops_what_it_left(lab):
    crash(lab)
    down = lab.run("down")
    assert down.returncode == 0 and "4 detached program(s)" in down.stdout, down.stdout
    nothing_left(lab)


def test_a_lab_whose_start_fails_stops_the_control_plane_it_started(tmp_path):
    """The node process killed while the lab starts, once its programs run: the start fails
    and the failed lab stops the programs the dead node left."""
    lab = LabCli(NET, tmp_path / "lab")
    up = subprocess.Popen(lab.argv("up", "--only", "datera,kubernetes"), cwd=REPO,
                          env=lab.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True)
    try:
        detached = lab.run_dir / "kubernetes" / "detached"
        wait_until(lambda: (detached / "kube-apiserver.json").exists() or up.poll() is not None,
                   TIMEOUT, "the node process to start its programs", interval=0.02)
        if up.poll() is not None and "not built" in up.stderr.read():
            pytest.skip("the Kubernetes control plane is not built here")
        os.killpg(node_pid(lab), signal.SIGKILL)
        out, err = up.communicate(timeout=TIMEOUT)
        assert up.returncode != 0 and "kubernetes" in err, (out, err)
        nothing_left(lab)
    finally:
        if up.poll() is None:
            up.kill()
        lab.run("down")

