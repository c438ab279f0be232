"""The ESXi host's send targets are removed after a run whose vCenter was down at the undo
(issue 13), against the session lab's vCenter and Datera: a bounded endless run of the VMware
scenario (-n 1), whose last worker's undo waits at a gate (tests/support/undo_gate.py) while
this test kills the vCenter (kill -9) with the lab's supervisor stopped (SIGSTOP: no restart
yet), so the undo meets connection refused and queues the removal; once the worker's final
drain says it waits for the vCenter, the supervisor continues and restarts it on its durable
state (the send targets still there), and the drain removes them. govc shows none of the
Datera portals' send targets after the run; the cleanup command finds nothing. Sweeps the
session lab first (tests/conftest.py SESSION_LAB_SWEEPERS)."""
import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from fixtures import vmware
from fixtures.waiters import wait_until
from lab.vsphere import buildhash
from tests.support import inner_run
from tests.support.labcli import REPO, LabCli

pytestmark = [pytest.mark.serial, pytest.mark.slow, pytest.mark.timeout(900)]
HOST = "/DC0/host/DC0_C0/DC0_C0_H0"


@pytest.fixture(scope="module")
def lab_target(target):
    if "vsphere" not in target.doc or not target.is_lab:
        pytest.skip("needs the embedded lab with its vCenter (kills and restarts it)")
    return target


def _govc_env(target) -> dict:
    env = dict(os.environ)
    for line in (target.path.parent / "vsphere.env").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.startswith("GOVC_"):
            env[key] = value
    return env


def send_targets(target) -> list[str]:
    """The ESXi host's send targets, through govc (object.collect of its HBAs)."""
    govc = buildhash.bin_dir() / "govc"
    r = subprocess.run([str(govc), "object.collect", "-json", HOST,
                        "config.storageDevice.hostBusAdapter"], env=_govc_env(target),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    hbas = json.loads(r.stdout)[0]["Val"]["HostHostBusAdapter"]
    return sorted(t["Address"] for h in hbas for t in h.get("ConfiguredSendTarget") or [])


def _cleanup(target, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--target",
                           str(target.path), *args], cwd=REPO, env=inner_run.env(str(target.path)),
                          capture_output=True, text=True, timeout=300)


def test_send_targets_are_gone_after_a_run_whose_vcenter_was_down_at_the_undo(
        lab_target, tmp_path):
    swept = _cleanup(lab_target, "--delete")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    vips = [p.rsplit(":", 1)[0] for p in vmware._target_vips(lab_target)]
    lab = LabCli(lab_target.doc["net"], lab_target.path.parent.parent)
    supervisor = lab.supervisor_pid()
    assert supervisor is not None, "the session lab's supervisor pid"
    env = {**inner_run.env(str(lab_target.path)), "VANCOUVER_TEST_UNDO_GATE": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "scenarios/vmware/test_vmware.py", "--target",
         str(lab_target.path), "-n", "1", "--count=0", "--duration", "20s",
         "--demo-profile", "ci", "-p", "no:cacheprovider", "-p", "tests.support.undo_gate",
         "--html", str(tmp_path / "report.html")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                     daemon=True).start()
    stopped = False
    try:
        wait_until(lambda: (tmp_path / "undo-ready").exists() or proc.poll() is not None,
                   600, "the last worker's undo", 0.1)
        assert proc.poll() is None, "".join(lines)[-4000:]
        prepared = send_targets(lab_target)
        assert prepared and set(prepared) <= set(vips), prepared   # the Datera portals
        os.kill(supervisor, signal.SIGSTOP)          # no restart until it continues
        stopped = True
        vcenter = lab.component("vsphere")["pid"]
        os.kill(vcenter, signal.SIGKILL)
        (tmp_path / "vcenter-down").touch()
        wait_until(lambda: any("waiting up to" in ln and "vCenter SDK" in ln for ln in lines)
                   or proc.poll() is not None, 300, "the final drain to wait for the vCenter",
                   0.1)
        os.kill(supervisor, signal.SIGCONT)
        stopped = False
        assert proc.wait(300) == 0, "".join(lines)[-4000:]
    finally:
        if stopped:
            os.kill(supervisor, signal.SIGCONT)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = "".join(lines)
    (tmp_path / "output.txt").write_text(out)
    assert "ran 1 deletion(s) left by the outage: send targets" in out, out[-4000:]
    assert "could not run" not in out, out[-4000:]
    wait_until(lambda: lab.component("vsphere").get("state") == "healthy" and
               lab.component("vsphere").get("pid") != vcenter, 60, "the vCenter restarted", 0.2)
    assert not set(vips) & set(send_targets(lab_target))
    dry = _cleanup(lab_target)
    assert dry.returncode == 0, dry.stderr
    assert [ln for ln in dry.stdout.splitlines() if ln.startswith("would delete")] == []
