"""The lab's vCenter keeps its state across a kill -9 (issue 13 Build 1, lab/vsphere/durable.go):
what pyvmomi and govc made (software iSCSI with send and static targets and CHAP, a Datera
LUN on the fabric, a VMFS datastore on it, VMs with disks there, a folder) is there after the
restart with the same managed object ids and properties, read back through both clients; a new
object never gets the id of one that existed; guests of powered-on VMs run on (the agent is
adopted) or start again when their agent died unfinished (lab/vsphere/guest_resume.go).
Each kill comes right after the last acknowledged call: nothing acknowledged may be lost."""
import os
import re
import signal
import sys
import textwrap

import pytest
from pyVmomi import vim

from tests.support.vsphere import Vcsim, create_vm, lun_doc, wait_for, wait_task

HBA = "vmhba65"
VIP1, VIP2 = "127.0.7.11", "127.0.7.12"
CHAP_USER, CHAP_SECRET = "vancouver-vm", "chap-" + os.urandom(6).hex()

# A stand-in guest agent (as tests/test_vsphere_guest.py): records its pid, publishes
# guestinfo.state=running, and runs until the VM powers off.
AGENT = textwrap.dedent("""\
    import json, os, ssl, sys, time, base64, urllib.request
    doc = json.load(sys.stdin)
    with open(os.path.join(os.environ["GUEST_OUT"], doc["vm"] + ".pids"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    body = json.dumps({"guestinfo.state": "running"}).encode()
    req = urllib.request.Request(doc["guestinfo_url"], data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    auth = base64.b64encode((doc["auth"]["user"] + ":" + doc["auth"]["password"]).encode())
    req.add_header("Authorization", "Basic " + auth.decode())
    urllib.request.urlopen(req, context=ssl.create_default_context(cafile=doc["ca_file"])).read()
    with open(os.path.join(os.environ["GUEST_OUT"], doc["vm"] + ".posted"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(3600)
""")


@pytest.fixture
def guest_out(tmp_path):
    d = tmp_path / "guests"
    d.mkdir()
    return d


@pytest.fixture
def vc(tmp_path, guest_out):
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    env = {"VANCOUVER_VSPHERE_GUEST": f"{sys.executable} {agent}", "GUEST_OUT": str(guest_out)}
    sims = [Vcsim(tmp_path / "vcsim", env=env).start()]
    yield sims
    sims[-1].stop()


def kill9_and_restart(sims: list[Vcsim]) -> Vcsim:
    """kill -9, then a new process on the same data dir (as the lab's supervisor does)."""
    old = sims[-1]
    old.proc.send_signal(signal.SIGKILL)
    old.proc.wait()
    old.log.close()
    old._si = None
    (old.work / "url").unlink()   # a killed process leaves it; the new one writes its own
    os.replace(old.work / "vcsim.log", old.work / f"vcsim.{len(sims)}.log")
    new = Vcsim(old.work, env=old.env, password=old.password).start()
    sims.append(new)
    return new


def storage(vc):
    return vc.host().configManager.storageSystem


def adapter(ss):
    return next(h for h in ss.storageDeviceInfo.hostBusAdapter
                if isinstance(h, vim.host.InternetScsiHba))


def prepare_host(vc) -> dict:
    """pyvmomi: software iSCSI with CHAP, a send target (VIP1), a static target (VIP2), a
    CHAP LUN for this host, a rescan, a VMFS datastore on the LUN."""
    ss = storage(vc)
    ss.UpdateSoftwareInternetScsiEnabled(True)
    hba = adapter(ss)
    doc = lun_doc(7, initiators=[hba.iScsiName], chap_user=CHAP_USER, chap_secret=CHAP_SECRET,
                  capacity_bytes=8 << 30)
    assert vc.fabric_put(doc).status_code == 201
    ss.UpdateInternetScsiAuthenticationProperties(
        iScsiHbaDevice=HBA, authenticationProperties=vim.host.InternetScsiHba.AuthenticationProperties(
            chapAuthEnabled=True, chapName=CHAP_USER, chapSecret=CHAP_SECRET,
            chapAuthenticationType="chapRequired"))
    ss.AddInternetScsiSendTargets(iScsiHbaDevice=HBA, targets=[
        vim.host.InternetScsiHba.SendTarget(address=VIP1, port=3260)])
    ss.AddInternetScsiStaticTargets(iScsiHbaDevice=HBA, targets=[
        vim.host.InternetScsiHba.StaticTarget(address=VIP2, port=3260, iScsiName=doc["target_iqn"])])
    ss.RescanAllHba()
    dss = vc.host().configManager.datastoreSystem
    [opt] = dss.QueryVmfsDatastoreCreateOptions(devicePath=f"/vmfs/devices/disks/{doc['naa']}")
    opt.spec.vmfs.volumeName = "vancouver-vmfs"
    dss.CreateVmfsDatastore(spec=opt.spec)
    return doc


def host_view(vc) -> dict:
    """The host's storage as pyvmomi reads it: adapter, targets, LUNs, paths, datastores."""
    ss = storage(vc)
    hba = adapter(ss)
    lun = next(x for x in ss.storageDeviceInfo.scsiLun if x.vendor == "DATERA")
    return {
        "host": vc.host()._moId, "iqn": hba.iScsiName,
        "chap": (hba.authenticationProperties.chapAuthEnabled, hba.authenticationProperties.chapName),
        "send": [(t.address, t.port) for t in hba.configuredSendTarget],
        "static": [(t.address, t.port, t.iScsiName) for t in hba.configuredStaticTarget],
        "lun": (lun.canonicalName, lun.uuid, lun.capacity.block, lun.key),
        "paths": sorted(p.name for u in ss.storageDeviceInfo.multipathInfo.lun for p in u.path),
        "datastores": sorted((d._moId, d.name, d.summary.type, d.summary.capacity)
                             for d in vc.host().datastore),
    }


def vm_view(vm) -> dict:
    disks = [(d.key, d.backing.fileName, d.capacityInKB, d.backing.datastore._moId)
             for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
    return {"id": vm._moId, "name": vm.name, "power": vm.runtime.powerState,
            "uuid": vm.config.uuid, "instance": vm.config.instanceUuid, "disks": disks,
            "datastores": sorted(d._moId for d in vm.datastore), "parent": vm.parent._moId,
            "pool": vm.resourcePool._moId, "host": vm.runtime.host._moId}


def vms(vc) -> dict:
    view = vc.si.content.viewManager.CreateContainerView(vc.si.content.rootFolder,
                                                         [vim.VirtualMachine], True)
    try:
        return {vm.name: vm_view(vm) for vm in view.view}
    finally:
        view.Destroy()


def govc_inventory(vc) -> list[str]:
    """govc's view: every inventory path and every managed object id (find, find -i)."""
    out = vc.govc("find", "/").stdout + vc.govc("find", "-i", "/").stdout
    return sorted(ln for ln in out.splitlines() if ln.strip())


def test_kill_9_keeps_what_pyvmomi_and_govc_made_with_the_same_ids(vc):
    sim = vc[-1]
    lun = prepare_host(sim)
    vm1 = create_vm(sim.si, "vancouver-vm1", "vancouver-vmfs", disk_gb=2)
    # a second disk on the VMFS datastore (ReconfigVM), then power on
    disk = vim.vm.device.VirtualDeviceSpec(
        operation="add", fileOperation="create", device=vim.vm.device.VirtualDisk(
            key=-2, controllerKey=1000, unitNumber=1, capacityInKB=1 << 20,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", thinProvisioned=True, fileName="[vancouver-vmfs]")))
    wait_task(vm1.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[disk])))
    wait_task(vm1.PowerOnVM_Task())
    # govc: a folder and a VM with a disk on the VMFS datastore, in it
    sim.govc("folder.create", "/DC0/vm/vancouver-kept")
    sim.govc("vm.create", "-ds", "vancouver-vmfs", "-disk", "1G", "-on=false",
             "-folder", "/DC0/vm/vancouver-kept", "vancouver-vm2")
    doomed = create_vm(sim.si, "vancouver-gone", "LocalDS_0")
    gone_id = doomed._moId
    wait_task(doomed.Destroy_Task())
    before = {"host": host_view(sim), "vms": vms(sim), "govc": govc_inventory(sim),
              "devices": sim.govc("device.ls", "-vm", "/DC0/vm/vancouver-kept/vancouver-vm2").stdout,
              "fabric": sim.http("GET", "/datera/luns").json()}
    assert len(before["vms"]) == 2 and before["vms"]["vancouver-vm1"]["power"] == "poweredOn"
    assert len(before["vms"]["vancouver-vm1"]["disks"]) == 2

    sim = kill9_and_restart(vc)

    after = {"host": host_view(sim), "vms": vms(sim), "govc": govc_inventory(sim),
             "devices": sim.govc("device.ls", "-vm", "/DC0/vm/vancouver-kept/vancouver-vm2").stdout,
             "fabric": sim.http("GET", "/datera/luns").json()}
    for part in before:
        assert after[part] == before[part], part
    assert "ready with the saved inventory" in sim.log_text()
    # The CHAP secret (never shown by the API) came back too: a rescan still logs in to the LUN.
    storage(sim).RescanAllHba()
    assert host_view(sim)["lun"] == before["host"]["lun"]
    # The VMFS datastore still knows its LUN (no second VMFS on it), and still holds the VMs.
    dss = sim.host().configManager.datastoreSystem
    assert lun["naa"] not in [d.canonicalName for d in dss.QueryAvailableDisksForVmfs()]
    ds = next(d for d in sim.host().datastore if d.name == "vancouver-vmfs")
    assert ds.info.vmfs.extent[0].diskName == lun["naa"]
    with pytest.raises(vim.fault.ResourceInUse):
        dss.RemoveDatastore(datastore=ds)
    # New objects get ids never handed out before the kill.
    new = create_vm(sim.si, "vancouver-vm3", "vancouver-vmfs")
    number = lambda moid: int(re.search(r"(\d+)$", moid).group(1))  # noqa: E731
    assert new._moId != gone_id
    assert number(new._moId) > max(number(v["id"]) for v in before["vms"].values())
    assert number(new._moId) > number(gone_id)
    # What was kept works as before: power off, destroy, remove the datastore, all acknowledged
    # right before a second kill, which then loses none of it.
    vm1 = next(v for v in sim.si.content.rootFolder.childEntity[0].vmFolder.childEntity
               if v.name == "vancouver-vm1")
    vmx_log = sim.data_dir / "vmfs" / lun["naa"] / "vancouver-vm1" / "vmware.log"
    logged = vmx_log.read_text()
    wait_task(vm1.PowerOffVM_Task())
    # the loaded VM still writes its vmware.log (the simulator's per-VM log, lab/vsphere/restore.go)
    assert len(vmx_log.read_text()) > len(logged)
    assert "no such file" not in sim.log_text()
    wait_task(vm1.Destroy_Task())
    sim.govc("vm.destroy", "/DC0/vm/vancouver-kept/vancouver-vm2")
    wait_task(new.Destroy_Task())
    dss.RemoveDatastore(datastore=ds)

    sim = kill9_and_restart(vc)

    assert vms(sim) == {}
    assert [d.name for d in sim.host().datastore] == ["LocalDS_0"]
    assert lun["naa"] in [d.canonicalName for d in
                          sim.host().configManager.datastoreSystem.QueryAvailableDisksForVmfs()]
    assert "/DC0/vm/vancouver-kept" in "\n".join(govc_inventory(sim))


def _pids(guest_out, vm) -> list[int]:
    f = guest_out / f"{vm._moId}.pids"
    return [int(x) for x in f.read_text().split()] if f.exists() else []


def _state(vm) -> str | None:
    return next((o.value for o in vm.config.extraConfig if o.key == "guestinfo.state"), None)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_guests_run_on_through_the_restart_or_start_again(vc, guest_out):
    """A powered-on VM's agent outlives the crash (its own process group) and the new process
    adopts it: power off still ends it. A VM whose agent died meanwhile, its job unfinished,
    starts its guest again (as HA restarts the VMs of a failed host)."""
    sim = vc[-1]
    kept = create_vm(sim.si, "vancouver-kept", "LocalDS_0", extra={"guestinfo.userdata": "a"})
    lost = create_vm(sim.si, "vancouver-lost", "LocalDS_0", extra={"guestinfo.userdata": "b"})
    for vm in (kept, lost):
        wait_task(vm.PowerOnVM_Task())
    wait_for(lambda: _pids(guest_out, kept) and _pids(guest_out, lost), 30, "both agents")
    # (the stand-in agent does not retry its post, as guest.py does: let it be answered)
    wait_for(lambda: all((guest_out / f"{vm._moId}.posted").exists() for vm in (kept, lost)),
             30, "both agents' guestinfo posts to be answered")
    assert all(_state(vm) == "running" for vm in (kept, lost))
    [kept_pid], [lost_pid] = _pids(guest_out, kept), _pids(guest_out, lost)
    sim.proc.send_signal(signal.SIGKILL)
    sim.proc.wait()
    os.killpg(lost_pid, signal.SIGKILL)     # this VM's guest dies while the vCenter is down
    wait_for(lambda: not _alive(lost_pid), 10, "the lost agent to die")
    assert _alive(kept_pid)
    # restart (the kill is done: kill9_and_restart's own kill finds the process gone)
    sim = kill9_and_restart(vc)
    log = sim.log_text()
    assert f"adopted agent pid {kept_pid}" in log
    wait_for(lambda: len(_pids(guest_out, lost)) == 2, 30, "the lost VM's guest to start again")
    assert _pids(guest_out, kept) == [kept_pid]
    by_name = {v.name: v for v in sim.si.content.rootFolder.childEntity[0].vmFolder.childEntity}
    assert by_name["vancouver-kept"].runtime.powerState == "poweredOn"
    wait_task(by_name["vancouver-kept"].PowerOffVM_Task())
    wait_for(lambda: not _alive(kept_pid), 10, "the adopted agent to end at power-off")
    new_pid = _pids(guest_out, lost)[-1]
    wait_task(by_name["vancouver-lost"].PowerOffVM_Task())
    wait_for(lambda: not _alive(new_pid), 10, "the restarted agent to end at power-off")


def test_state_file_is_private_and_holds_no_secret_in_the_log(vc):
    sim = vc[-1]
    prepare_host(sim)
    state = sim.data_dir / "state.xml"
    for p in (state, sim.data_dir / "state-static.xml"):
        assert p.stat().st_mode & 0o777 == 0o600, p
    assert CHAP_SECRET in state.read_text()        # it must survive the restart (see above)
    assert CHAP_SECRET not in sim.log_text() and sim.password not in sim.log_text()


def test_clean_stop_removes_the_state(vc):
    sim = vc[-1]
    create_vm(sim.si, "vancouver-vm", "LocalDS_0")
    saved = [sim.data_dir / "state.xml", sim.data_dir / "state-static.xml"]
    assert all(p.exists() for p in saved)
    assert sim.stop() == 0
    assert not any(p.exists() for p in saved)
    vc.append(Vcsim(sim.work, env=sim.env, password=sim.password).start())
    assert vms(vc[-1]) == {}
    assert "ready with a new inventory" in vc[-1].log_text()
