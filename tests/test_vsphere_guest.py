"""Guests of the lab's vCenter (issue 11 item 3, DESIGN §3.5): a VM that powers on with
guestinfo.userdata starts the guest agent (here a tiny stand-in named by
VANCOUVER_VSPHERE_GUEST) with the VM's document on stdin; what the agent POSTs to
guestinfo_url comes back through the vSphere API as config.extraConfig guestinfo.* values;
power-off ends the agent's process group. The real agent is lab/vsphere/guest.py."""
import json
import os
import sys
import textwrap

import pytest
from pyVmomi import vim

from tests.support.vsphere import Vcsim, create_vm, lun_doc, wait_for, wait_task

AGENT = textwrap.dedent("""\
    import json, os, ssl, sys, time, base64, urllib.request
    doc = json.load(sys.stdin)
    out = os.environ["GUEST_OUT"]
    with open(os.path.join(out, doc["vm"] + ".json"), "w") as f:
        json.dump({"doc": doc, "pid": os.getpid(), "pgid": os.getpgid(0)}, f)
    body = json.dumps({"guestinfo.result": "ran " + doc["userdata"],
                       "guestinfo.state": "done"}).encode()
    req = urllib.request.Request(doc["guestinfo_url"], data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    auth = base64.b64encode((doc["auth"]["user"] + ":" + doc["auth"]["password"]).encode())
    req.add_header("Authorization", "Basic " + auth.decode())
    urllib.request.urlopen(req, context=ssl.create_default_context(cafile=doc["ca_file"])).read()
    time.sleep(3600)      # a guest runs until the VM powers off
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
    sim = Vcsim(tmp_path / "vcsim", env={"VANCOUVER_VSPHERE_GUEST": f"{sys.executable} {agent}",
                                         "GUEST_OUT": str(guest_out)}).start()
    yield sim
    sim.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose (its parent reaps it)
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


def guestinfo(vm) -> dict:
    return {o.key: o.value for o in vm.config.extraConfig if o.key.startswith("guestinfo.")}


def vmfs_datastore(vc, n=1):
    """Software iSCSI with adapter CHAP, one LUN on both VIPs, VMFS on it."""
    ss = vc.host().configManager.storageSystem
    ss.UpdateSoftwareInternetScsiEnabled(True)
    hba = next(h for h in ss.storageDeviceInfo.hostBusAdapter
               if isinstance(h, vim.host.InternetScsiHba))
    doc = lun_doc(n, initiators=[hba.iScsiName], chap_user="vm-chap", chap_secret="vm-secret",
                  capacity_bytes=4 << 30)
    vc.fabric_put(doc)
    ss.AddInternetScsiSendTargets(iScsiHbaDevice=hba.device, targets=[
        vim.host.InternetScsiHba.SendTarget(address="127.0.7.11", port=3260)])
    ss.UpdateInternetScsiAuthenticationProperties(
        iScsiHbaDevice=hba.device, authenticationProperties=vim.host.InternetScsiHba
        .AuthenticationProperties(chapAuthEnabled=True, chapName="vm-chap",
                                  chapSecret="vm-secret", chapAuthenticationType="chapRequired"))
    ss.RescanAllHba()
    dss = vc.host().configManager.datastoreSystem
    [opt] = dss.QueryVmfsDatastoreCreateOptions(devicePath=f"/vmfs/devices/disks/{doc['naa']}")
    opt.spec.vmfs.volumeName = "vancouver-guest-ds"
    dss.CreateVmfsDatastore(spec=opt.spec)
    return doc, hba.iScsiName


def test_power_on_runs_the_job_and_guestinfo_comes_back(vc, guest_out):
    lun, iqn = vmfs_datastore(vc)
    vm = create_vm(vc.si, "vancouver-guest", "vancouver-guest-ds",
                   extra={"guestinfo.userdata": "echo hello"})
    wait_task(vm.PowerOnVM_Task())
    record = guest_out / f"{vm._moId}.json"
    wait_for(record.exists, 20, "the guest agent to start")
    wait_for(lambda: guestinfo(vm).get("guestinfo.state") == "done", 20, "guestinfo.state")
    assert guestinfo(vm)["guestinfo.result"] == "ran echo hello"
    got = json.loads(record.read_text())
    doc = got["doc"]
    assert (doc["vm"], doc["name"], doc["userdata"]) == (vm._moId, "vancouver-guest", "echo hello")
    assert doc["host"] == {"iqn": iqn, "chap_user": "vm-chap", "chap_secret": "vm-secret"}
    assert doc["guestinfo_url"].endswith(f"/guestinfo?vm={vm._moId}")
    [disk] = doc["disks"]
    assert disk["naa"] == lun["naa"] and disk["target_iqn"] == lun["target_iqn"]
    assert sorted(disk["portals"]) == sorted(lun["portals"]) and disk["lun_id"] == 0
    assert disk["capacity_bytes"] == 1 << 30 and disk["lun_capacity_bytes"] == 4 << 30
    assert disk["datastore"] == "vancouver-guest-ds"
    assert disk["vmdk_path"] == "[vancouver-guest-ds] vancouver-guest/vancouver-guest.vmdk"
    assert os.path.exists(disk["flat_path"])
    assert got["pgid"] == got["pid"]                       # its own process group
    # Power-off ends the agent; the API then refuses late guestinfo.
    wait_task(vm.PowerOffVM_Task())
    wait_for(lambda: not alive(got["pid"]), 10, "the agent to end on power-off")
    r = vc.http("POST", f"/guestinfo?vm={vm._moId}", json={"guestinfo.late": "x"})
    assert r.status_code == 409 and r.json() == {"error": f"VM {vm._moId} is poweredOff"}
    wait_task(vm.Destroy_Task())


def test_vm_without_userdata_starts_no_agent(vc, guest_out):
    vm = create_vm(vc.si, "vancouver-plain", "LocalDS_0")
    wait_task(vm.PowerOnVM_Task())
    # The launcher decides inside the power-on call: by now an agent would have been forked.
    assert "agent pid" not in vc.log_text()
    assert list(guest_out.iterdir()) == []
    wait_task(vm.PowerOffVM_Task())
    wait_task(vm.Destroy_Task())


def test_guestinfo_endpoint_refusals(vc):
    vm = create_vm(vc.si, "vancouver-refusals", "LocalDS_0")
    wait_task(vm.PowerOnVM_Task())
    url = f"/guestinfo?vm={vm._moId}"
    assert vc.http("POST", url, auth=False, json={"guestinfo.a": "b"}).status_code == 401
    r = vc.http("POST", url, json={"annotation": "b"})
    assert r.status_code == 400 and r.json() == {
        "error": "key annotation: only guestinfo.<name> keys can be published"}
    r = vc.http("POST", url, data="not json")
    assert r.status_code == 400 and r.json()["error"].startswith("body: not a JSON object")
    r = vc.http("POST", "/guestinfo?vm=vm-999999", json={"guestinfo.a": "b"})
    assert r.status_code == 404 and r.json() == {"error": "no VM vm-999999"}
    r = vc.http("POST", url, json={"guestinfo.a": "b"})
    assert r.status_code == 200 and guestinfo(vm) == {"guestinfo.a": "b"}
    assert vc.http("GET", url).json() == {"guestinfo.a": "b"}
    wait_task(vm.PowerOffVM_Task())
    wait_task(vm.Destroy_Task())
