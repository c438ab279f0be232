"""The ESXi host's undo at a run's end survives a vCenter outage (issue 13): the last worker's
undo (scenarios/vmware/conftest.py `Esxi.undo`, through fixtures/shared_host.py's `step`)
meets a vCenter that refuses connections (killed); the send-target removal is queued on the
worker's deferred teardown (platform "vsphere") and the registration keeps its notes; the
session's final drain (fixtures/outage/plugin.py `drain_at_end`) waits for the vCenter, which
a restart on its data dir brings back with the host's state (lab/vsphere durable state), and
removes the send targets (govc shows none). One that stays down past the bound is named in one
line, and its notes stay for the next run. A vCenter of this test's own
(tests/support/vsphere_restart.py: a fixed port, kill -9 and restart), no lab."""
import json
import threading
from types import SimpleNamespace

import pytest

from fixtures import vmware
from fixtures.outage import plugin
from fixtures.outage.deferred import DeferredTeardown
from fixtures.outage.probes import probes_of
from fixtures.outage.watch import Watch
from fixtures.shared_host import HostUsers
from fixtures.target import Target
from scenarios.vmware.conftest import Esxi
from tests.support.vsphere import USER
from tests.support.vsphere_restart import Lab

PORTALS = ["127.0.7.11", "127.0.7.12"]
DOWN_S = 3.0          # how long the vCenter stays down after the undo met it: the stimulus
HOST = "/DC0/host/DC0_C0/DC0_C0_H0"


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path, publish_s=0.2)
    yield lab
    if lab.sim.proc.poll() is None:
        lab.sim.stop()


def send_targets(sim) -> list[str]:
    """The host's configured send targets, as govc shows them (object.collect)."""
    out = sim.govc("object.collect", "-json", HOST, "config.storageDevice.hostBusAdapter").stdout
    hbas = json.loads(out)[0]["Val"]["HostHostBusAdapter"]
    return sorted(t["Address"] for h in hbas for t in h.get("ConfiguredSendTarget") or [])


class Worker:
    """The outage plugin's part in one worker: its deferred teardown, watcher and probes, as
    `deferrable(config, ...)` finds them (config.stash)."""

    def __init__(self, target):
        self.probes = [p for p in probes_of(target) if p.platform == "vsphere"]
        self.watch = Watch(lambda: self.probes, lambda d: None, lambda d: None)
        self.deferred = DeferredTeardown(blocked=self.watch.open_reason)
        stash = pytest.Stash()
        stash[plugin._worker_key] = self
        self.config = SimpleNamespace(stash=stash)

    def end(self, wait_s: float) -> list:
        return plugin.drain_at_end(self.deferred, self.watch, self.probes, "gw0",
                                   aborting=lambda: False, wait_s=wait_s)


def prepared_host(lab, tmp_path):
    (tmp_path / "target.yaml").write_text(
        f"kind: real\nvsphere:\n  url: {lab.sim.url}\n  user: {USER}\n"
        f"  password: {lab.sim.password}\n  ca_file: {lab.sim.ca}\n")
    target = Target.load(tmp_path / "target.yaml")
    vs = vmware.connect(vmware.settings_from_target(target))
    users = HostUsers("esxi-test", "beef", tmp_path / "reg")
    (tmp_path / "reg").mkdir()
    users.join()
    host = Esxi(vs, ("vancouver_beef", "0123456789abcdef"), users)
    host.ensure([f"{ip}:3260" for ip in PORTALS])
    assert send_targets(lab.sim) == PORTALS
    return target, vs, users, host


def undo_while_down(lab, target, users, host) -> Worker:
    """kill -9 of the vCenter, then the last worker's leave: the removal is queued."""
    worker = Worker(target)
    lab.kill()
    problems = []
    assert users.leave(lambda noted: problems.extend(host.undo(noted, None, worker.config)))
    assert problems == []
    assert [p.what for p in worker.deferred.pending] == \
        [f"send targets {', '.join(PORTALS)} of ESXi host DC0_C0_H0"]
    # refused, or a kept-alive connection closed under the call: no answer either way
    assert worker.deferred.pending[0].reason in ("connection refused", "connection reset",
                                                 "connection closed without an answer")
    kept = users.path.read_text()          # kept for the next run, should this one die
    assert all(f"send_target {ip}\n" in kept for ip in PORTALS)
    return worker


def test_send_targets_are_removed_once_the_vcenter_is_back_at_the_final_drain(
        lab, tmp_path, capsys):
    target, vs, users, host = prepared_host(lab, tmp_path)
    worker = undo_while_down(lab, target, users, host)
    restarted = threading.Timer(DOWN_S, lab.restart)
    restarted.start()
    try:
        left = worker.end(wait_s=120)
    finally:
        restarted.join()
        vs.close()
    err = capsys.readouterr().err
    assert left == [] and worker.deferred.pending == [], err
    assert "waiting up to 120s for vCenter SDK" in err
    assert "ran 1 deletion(s) left by the outage: send targets" in err
    assert send_targets(lab.sim) == []
    assert not users.path.exists()          # nothing left for the next run


def test_a_vcenter_that_stays_down_is_named_in_one_line_and_kept_for_the_next_run(
        lab, tmp_path, capsys):
    target, vs, users, host = prepared_host(lab, tmp_path)
    worker = undo_while_down(lab, target, users, host)
    try:
        left = worker.end(wait_s=1.0)
    finally:
        vs.close()
    err = capsys.readouterr().err
    assert [p.what for p in left] == [f"send targets {', '.join(PORTALS)} of ESXi host DC0_C0_H0"]
    lines = [ln for ln in err.splitlines() if "could not run" in ln]
    assert len(lines) == 1 and "python -m fixtures.cleanup" in lines[0], err
    assert "send_target 127.0.7.11" in users.path.read_text()
    lab.restart()
    assert send_targets(lab.sim) == PORTALS   # the durable host kept them: the next run's
