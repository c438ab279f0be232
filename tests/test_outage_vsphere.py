"""The outage machinery knows vCenter (fixtures/outage/probes.py `vsphere` entry), against a
real simulator of this test's own (tests/support/vsphere.py: lab/vsphere's Go main on
127.0.0.1 and a free port, no shared lab touched):

- the probe answers healthy while the simulator serves, through pyVmomi's SOAP stub;
- stopped (SIGSTOP, as tests/test_outage_e2e.py stops Datera): the cheap check and the full
  probe say "timed out" within their time limits, never hang;
- the pause a scenario takes (fixtures/outage/pause.py wait_until_healthy) waits while it is
  stopped and resumes once it is continued (SIGCONT);
- killed: what a pyVmomi call then meets is classified as "connection refused", and the
  plugin's probe lookup lands on the vCenter probe.
"""
import os
import signal
import threading
import time

import pytest

from fixtures.outage.classify import classify
from fixtures.outage.pause import wait_until_healthy
from fixtures.outage.probes import LIVENESS_TIMEOUT_S, PROBE_TIMEOUT_S, Probe, probes_of
from fixtures.target import Target
from tests.support.vsphere import USER, Vcsim

STOPPED_S = 3.0   # how long the simulator stays stopped: the stimulus, not a wait


@pytest.fixture
def vc(tmp_path):
    sim = Vcsim(tmp_path / "vcsim").start()
    yield sim
    if sim.proc.poll() is None:
        os.kill(sim.proc.pid, signal.SIGCONT)
    sim.stop()


@pytest.fixture
def probe(vc, tmp_path):
    (tmp_path / "target.yaml").write_text(
        f"kind: real\nvsphere:\n  url: {vc.url}\n  user: {USER}\n  password: {vc.password}\n"
        f"  ca_file: {vc.ca}\n")
    probes = [p for p in probes_of(Target.load(tmp_path / "target.yaml"))
              if p.platform == "vsphere"]
    assert len(probes) == 1
    return probes[0]


def test_vcenter_probe_is_healthy_while_the_simulator_serves(vc, probe):
    assert probe.endpoint == vc.url and probe.label == "vCenter SDK"
    assert probe.healthy() == (True, "")
    assert probe.liveness() == (True, "")


def test_a_stopped_vcenter_times_out_then_the_pause_resumes_when_it_continues(vc, probe):
    os.kill(vc.proc.pid, signal.SIGSTOP)
    resumed_at = []

    def cont():
        os.kill(vc.proc.pid, signal.SIGCONT)
        resumed_at.append(time.monotonic())
    timer = threading.Timer(STOPPED_S, cont)
    try:
        t0 = time.monotonic()
        assert probe.liveness() == (False, "timed out")
        assert time.monotonic() - t0 < LIVENESS_TIMEOUT_S + 2
        t0 = time.monotonic()
        assert probe.healthy() == (False, "timed out")
        assert time.monotonic() - t0 < PROBE_TIMEOUT_S + 2
        timer.start()
        waited = wait_until_healthy(probe, stopping=lambda: False)
    finally:
        timer.cancel()
        os.kill(vc.proc.pid, signal.SIGCONT)
    assert waited.healthy and resumed_at, waited
    assert probe.healthy() == (True, "")


def test_a_killed_vcenter_is_connection_refused_for_pyvmomi_and_the_probe(vc, probe):
    si = vc.connect()
    os.kill(vc.proc.pid, signal.SIGKILL)
    vc.proc.wait(10)
    with pytest.raises(Exception) as e:   # its pooled TLS connection: EOF
        si.RetrieveContent()
    found = classify(e.value)
    assert found is not None and found.reason in ("connection refused", "connection reset",
                                                  "connection closed without an answer"), \
        repr(e.value)
    assert probe.healthy() == (False, "connection refused")


def test_a_lost_vcenter_session_is_renewed_by_one_login(vc, tmp_path):
    """A restarted vCenter has forgotten every session: the demo's session (fixtures/vmware
    connect, fixtures/vsphere_session.py) logs in again on the first NotAuthenticated and
    repeats that call, on the same stub, so objects already held keep working."""
    from fixtures import vmware
    from pyVmomi import vim
    (tmp_path / "target.yaml").write_text(
        f"kind: real\nvsphere:\n  url: {vc.url}\n  user: {USER}\n  password: {vc.password}\n"
        f"  ca_file: {vc.ca}\n")
    vs = vmware.connect(vmware.settings_from_target(Target.load(tmp_path / "target.yaml")))
    try:
        name = vs.host.name
        admin, plain = vc.connect(), vc.connect()
        sessions = admin.content.sessionManager
        # Sessions ended on the server, as a restart ends them all: a plain pyVmomi session
        # then faults; the demo's logs in again once and repeats the call.
        key = vs.si.content.sessionManager.currentSession.key
        sessions.TerminateSession([key, plain.content.sessionManager.currentSession.key])
        with pytest.raises(vim.fault.NotAuthenticated):
            plain.content.rootFolder.name
        assert vs.logins == 0
        assert vs.host.name == name and vs.logins == 1
        assert vs.si.content.sessionManager.currentSession.key != key
    finally:
        vs.close()


def test_the_demo_session_names_the_killed_vcenter_so_its_probe_is_found(vc, probe, tmp_path):
    """pyVmomi's error for a vCenter gone names no address; the demo's session raises it as
    VcenterUnreachable naming the SDK URL, so the outage is the vCenter's, not "the target"."""
    from fixtures import vmware
    from fixtures.outage.probes import probe_for_error
    from fixtures.vsphere_session import VcenterUnreachable
    (tmp_path / "target.yaml").write_text(
        f"kind: real\nvsphere:\n  url: {vc.url}\n  user: {USER}\n  password: {vc.password}\n"
        f"  ca_file: {vc.ca}\n")
    vs = vmware.connect(vmware.settings_from_target(Target.load(tmp_path / "target.yaml")))
    os.kill(vc.proc.pid, signal.SIGKILL)
    vc.proc.wait(10)
    with pytest.raises(VcenterUnreachable) as e:
        vs.host.name
    found = classify(e.value)
    assert found is not None and found.reason in ("connection refused", "connection reset",
                                                  "connection closed without an answer"), \
        repr(e.value)
    other = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None)
    assert probe_for_error([other, probe], found.addresses) is probe


def test_a_login_to_a_killed_vcenter_is_its_outage_not_a_stop(vc, probe, tmp_path):
    """A worker whose first vSphere scenario starts while the vCenter is down meets it in the
    `esxi` session fixture's login (scenarios/vmware/conftest.py): VsphereError naming the
    SDK URL and "unreachable", which the outage plugin classifies and pauses on (the run's
    start check, in the controller, is fixtures/platform_checks.py: a worker never stops the
    run with pytest.exit, which xdist reported as an INTERNALERROR)."""
    from fixtures import vmware
    from fixtures.outage.probes import probe_for_error
    (tmp_path / "target.yaml").write_text(
        f"kind: real\nvsphere:\n  url: {vc.url}\n  user: {USER}\n  password: {vc.password}\n"
        f"  ca_file: {vc.ca}\n")
    settings = vmware.settings_from_target(Target.load(tmp_path / "target.yaml"))
    os.kill(vc.proc.pid, signal.SIGKILL)
    vc.proc.wait(10)
    with pytest.raises(vmware.VsphereError) as e:
        vmware.connect(settings)
    assert str(e.value) == (f"vSphere vCenter {vmware.endpoint(settings)}: unreachable "
                            "(connection refused)")
    found = classify(e.value)
    assert found is not None and found.reason == "connection refused", repr(e.value)
    other = Probe("datera", "Datera REST API", "https://127.0.7.10:7718", lambda: None)
    assert probe_for_error([other, probe], found.addresses) is probe


def test_a_frozen_vcenter_ends_a_demo_call_timed_out_never_hangs(vc, probe, tmp_path):
    """SIGSTOP of the vCenter mid-session: the demo session's next call ends "timed out"
    after its call timeout (pyVmomi's own default waits forever: a frozen vCenter hung the
    ESXi host's undo at a run's end) and names the vCenter, so its probe is found; after
    SIGCONT the same session works again."""
    from fixtures import vmware
    from fixtures.outage.probes import probe_for_error
    from fixtures.vsphere_session import VcenterUnreachable
    (tmp_path / "target.yaml").write_text(
        f"kind: real\nvsphere:\n  url: {vc.url}\n  user: {USER}\n  password: {vc.password}\n"
        f"  ca_file: {vc.ca}\n")
    vs = vmware.connect(vmware.settings_from_target(Target.load(tmp_path / "target.yaml")),
                        call_timeout_s=2)
    try:
        name = vs.host.name
        os.kill(vc.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(VcenterUnreachable) as e:   # pytest-timeout: a hang fails
                vs.host.summary.runtime
        finally:
            os.kill(vc.proc.pid, signal.SIGCONT)
        found = classify(e.value)
        assert found is not None and found.reason == "timed out", repr(e.value)
        assert probe_for_error([probe], found.addresses) is probe
        assert vs.host.name == name
    finally:
        vs.close()

