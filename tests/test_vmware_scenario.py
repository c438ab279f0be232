"""The VMware piece of the demo (issue 11 items 4-5) against the lab's vCenter (the Go main in
lab/vsphere) and Datera, through pyvmomi 9 and dfs_sdk as the scenario does: the host
preparation (idempotent, Datera's best practice), the refusals the demo depends on (a CHAP
LUN stays hidden with the wrong secret; RemoveDatastore with a VM on it is ResourceInUse; a
revoked ACL hides the LUN at the next rescan), the cleanup command on vSphere leftovers (VM,
datastore, then the Datera volume), and a bounded endless pass of the scenario that leaves
nothing behind.
"""
import re
import subprocess
import sys
import uuid

import pytest
import requests
from pyVmomi import vim

from fixtures import datera, vmware
from fixtures.waiters import wait_until
from tests.support import inner_run
from tests.support.labcli import REPO

TENANT = "/root/Vancouver-VM"
# Every test here sets the one ESXi host's adapter CHAP: never beside another one.
pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def vs_target(target):
    if "vsphere" not in target.doc:
        pytest.skip("the target has no vsphere section (lab without the vsphere component)")
    if not target.is_lab:
        pytest.skip("sweeps and refusal set-ups change the host: lab only")
    return target


@pytest.fixture(scope="module")
def vs(vs_target):
    v = vmware.connect(vmware.settings_from_target(vs_target))
    yield v
    v.close()


@pytest.fixture(scope="module")
def dapi(vs_target):
    api = datera.connect(datera.settings_from_target(vs_target))
    datera.ensure_tenants(api, ["Vancouver-VM"], 1000, "lab-extension")
    return api


@pytest.fixture
def prefix():
    return f"vancouver-t{uuid.uuid4().hex[:6]}"


@pytest.fixture
def volumes(dapi, prefix):
    """make(chap) -> a Datera volume in Vancouver-VM; deleted after the test."""
    made = []

    def make(chap, label="v"):
        vol = datera.create_volume(dapi, TENANT, f"{prefix}-{label}{len(made)}", 1, chap=chap)
        made.append(vol)
        return vol
    yield make
    for vol in made:
        datera.delete_volume(vol)


def _chap():
    return (f"chap_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:16])


def test_host_preparation_is_idempotent_best_practice(vs, volumes):
    vol = volumes(None)
    chap = _chap()
    first = vmware.prepare_host(vs, vol.portals, chap)
    again = vmware.prepare_host(vs, vol.portals, chap)
    assert first == again
    hba = vmware.iscsi_hba(vs)
    assert vs.storage.storageDeviceInfo.softwareInternetScsiEnabled
    assert hba.model == vmware.SOFTWARE_ADAPTER and first["iqn"] == hba.iScsiName
    targets = sorted((t.address, t.port) for t in hba.configuredSendTarget)
    assert targets == sorted((ip, 3260) for ip in vol.portals), targets   # no duplicates
    auth = hba.authenticationProperties
    assert auth.chapAuthEnabled and auth.chapName == chap[0]
    assert auth.chapAuthenticationType == "chapRequired"
    assert first["delayed_ack"] == "off" and first["ats_heartbeat"] == "off"
    ats = vs.host.configManager.advancedOption.QueryOptions("VMFS3.UseATSForHBOnVMFS5")
    assert [int(o.value) for o in ats] == [0]


def test_chap_lun_hidden_with_wrong_secret_and_acl_revocation_hides(vs, vs_target, volumes,
                                                                  prefix):
    chap = _chap()
    vol = volumes(chap)
    iqn = vmware.prepare_host(vs, vol.portals, (chap[0], "wrongsecret00000"))["iqn"]
    datera.allow_initiator(vol, iqn, label=f"{prefix}-esxi")
    naa = vmware.lun_of(vol.uuid)
    wait_until(lambda: naa in _fabric(vs_target), 15, "the LUN on the fabric", 0.1)
    vs.storage.RescanAllHba()
    assert naa not in vmware.visible_luns(vs)      # on the fabric, hidden by the wrong secret
    vmware.prepare_host(vs, vol.portals, chap)
    lun = vmware.rescan_until(vs, [naa], present=True, timeout=30)[naa]
    assert lun.vendor.strip() == "DATERA" and lun.model.strip() == "IBLOCK"
    datera.revoke_initiator(vol, iqn)
    wait_until(lambda: naa not in _fabric(vs_target), 15, "the LUN off the fabric", 0.1)
    vmware.rescan_until(vs, [naa], present=False, timeout=30)


def _fabric(target) -> dict:
    """The vCenter's fabric table (GET /datera/luns), naa -> entry."""
    s = vmware.settings_from_target(target)
    r = requests.get(f"https://{s.host}:{s.port}/datera/luns", auth=(s.user, s.password),
                     verify=s.ca_file if not s.insecure else False, timeout=10)
    r.raise_for_status()
    body = r.json()
    rows = body.get("luns", body) if isinstance(body, dict) else body
    return {e["naa"]: e for e in rows or []}


def test_remove_datastore_with_a_vm_is_resource_in_use(vs, volumes, prefix):
    chap = _chap()
    vol = volumes(chap)
    iqn = vmware.prepare_host(vs, vol.portals, chap)["iqn"]
    datera.allow_initiator(vol, iqn, label=f"{prefix}-esxi")
    naa = vmware.lun_of(vol.uuid)
    vmware.rescan_until(vs, [naa], present=True, timeout=30)
    ds_name, vm_name = f"{prefix}-ds", f"{prefix}-vm"
    try:
        ds = vmware.create_vmfs_datastore(vs, ds_name, naa)
        assert ds.summary.type == "VMFS" and ds.summary.capacity == 1 << 30
        assert naa not in {d.canonicalName for d in vs.datastores.QueryAvailableDisksForVmfs()}
        vmware.create_vm(vs, vmware.vm_spec(vm_name, [ds_name], 0.25, "true\n"))
        with pytest.raises(vim.fault.ResourceInUse):
            vmware.remove_datastore(vs, ds_name)
        assert vmware.destroy_vm(vs, vm_name) and not vmware.destroy_vm(vs, vm_name)
        assert vmware.remove_datastore(vs, ds_name) and not vmware.remove_datastore(vs, ds_name)
    finally:
        vmware.destroy_vm(vs, vm_name)
        vmware.remove_datastore(vs, ds_name)


def _cleanup(target, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--target",
                           str(target.path), *args], cwd=REPO, env=inner_run.env(str(target.path)),
                          capture_output=True, text=True, timeout=300)


def _demo_left(vs, dapi) -> list[str]:
    left = [f"vm {name}" for name, _ in vmware.names(_vms(vs)) if name.startswith("vancouver-")]
    left += [f"datastore {name}" for name, _ in vmware.names(vs.host.datastore)
             if name.startswith("vancouver-")]
    left += [f"lun {naa}" for naa in vmware.visible_luns(vs) if naa.startswith("naa.6001405")]
    left += [f"app_instance {ai['name']}" for ai in dapi.app_instances.list(tenant=TENANT)
             if ai["name"].startswith("vancouver-")]
    return left


def _vms(vs):
    view = vs.content.viewManager.CreateContainerView(vs.datacenter.vmFolder,
                                                      [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


@pytest.mark.serial   # --delete sweeps every demo-prefixed resource of the session lab
def test_cleanup_sweeps_vm_then_datastore_then_volume(vs, dapi, vs_target, prefix):
    chap = _chap()
    vol = datera.create_volume(dapi, TENANT, f"{prefix}-left", 1, chap=chap)
    iqn = vmware.prepare_host(vs, vol.portals, chap)["iqn"]
    datera.allow_initiator(vol, iqn, label=f"{prefix}-esxi")
    naa = vmware.lun_of(vol.uuid)
    vmware.rescan_until(vs, [naa], present=True, timeout=30)
    vmware.create_vmfs_datastore(vs, f"{prefix}-ds", naa)
    vmware.create_vm(vs, vmware.vm_spec(f"{prefix}-vm", [f"{prefix}-ds"], 0.25, "true\n"))
    dry = _cleanup(vs_target)
    assert dry.returncode == 0, dry.stderr
    lines = [ln for ln in dry.stdout.splitlines() if ln.startswith("would delete")]
    order = [next(i for i, ln in enumerate(lines) if what in ln)
             for what in (f"vsphere vm {prefix}-vm", f"vsphere datastore {prefix}-ds",
                          "vsphere send_target", f"datera app_instance {prefix}-left")]
    assert order == sorted(order), lines
    done = _cleanup(vs_target, "--delete")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith(", 0 left"), done.stdout
    vs.storage.RescanAllHba()
    assert _demo_left(vs, dapi) == []


@pytest.mark.serial   # times its inner run (--duration) and sweeps the lab afterwards
@pytest.mark.slow
@pytest.mark.timeout(900)   # the inner run's own limit is 600 s (pytest.ini: 300 s)
def test_bounded_endless_pass_of_the_vmware_scenario(vs, dapi, vs_target, tmp_path):
    """`make test`'s bounded pass: two workers loop the scenario for 60 s (ci profile), every
    iteration passes, and no VM, datastore, LUN or Datera volume is left; nor the host's
    preparation (issue 13): the run's last worker removed the send targets and the host's
    Datera initiator, so the cleanup command finds nothing. Swept first: the tests above
    prepare the host and leave it so."""
    swept = _cleanup(vs_target, "--delete")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    cmd = [sys.executable, "-m", "pytest", "scenarios/vmware/test_vmware.py", "--target",
           str(vs_target.path), "-n", "2", "--count=0", "--duration", "60s",
           "--demo-profile", "ci", "-p", "no:cacheprovider", "--html",
           str(tmp_path / "report.html"), "-q"]
    proc = subprocess.run(cmd, cwd=REPO, env=inner_run.env(str(vs_target.path)),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    summary = [ln for ln in proc.stdout.splitlines() if ln.startswith("=") and " in " in ln][-1]
    # pytest's summary: "8 passed in 79.87s", or "8 passed, 2 warnings in ..."
    assert re.search(r" \d+ passed[ ,]", summary) and "failed" not in summary, summary
    vs.storage.RescanAllHba()
    assert _demo_left(vs, dapi) == []
    dry = _cleanup(vs_target)
    assert dry.returncode == 0, dry.stderr
    assert [ln for ln in dry.stdout.splitlines() if ln.startswith("would delete")] == []
