"""The lab's vCenter storage (issue 11 item 2, reference vsphere.md §3.2): the fabric endpoint,
the iSCSI software adapter (send/static targets, CHAP at adapter and target level, advanced
options), rescans that reveal exactly the LUNs the host may see, LUN identity as Datera
presents it, and VMFS datastores on those LUNs, refusals included. Clients: pyvmomi 9, govc."""
import pytest
from pyVmomi import vim

from tests.support.vsphere import Vcsim, create_vm, lun_doc, wait_task

HBA = "vmhba65"
VIP1, VIP2 = "127.0.7.11", "127.0.7.12"


@pytest.fixture
def vc(tmp_path):
    """A fresh simulator per test: each one reconfigures the host's adapter from scratch."""
    sim = Vcsim(tmp_path / "vcsim").start()
    yield sim
    sim.stop()


def storage(vc):
    return vc.host().configManager.storageSystem


def datera_luns(ss) -> dict:
    return {lun.canonicalName: lun for lun in ss.storageDeviceInfo.scsiLun
            if lun.vendor == "DATERA"}


def enable_iscsi(vc):
    ss = storage(vc)
    ss.UpdateSoftwareInternetScsiEnabled(True)
    return ss, adapter(ss)


def adapter(ss):
    return next(h for h in ss.storageDeviceInfo.hostBusAdapter
                if isinstance(h, vim.host.InternetScsiHba))


def send_target(address=VIP1, port=3260):
    return vim.host.InternetScsiHba.SendTarget(address=address, port=port)


def chap(user, secret, **kw):
    return vim.host.InternetScsiHba.AuthenticationProperties(
        chapAuthEnabled=True, chapName=user, chapSecret=secret,
        chapAuthenticationType="chapRequired", **kw)


# ---- fabric endpoint ---------------------------------------------------------------------

def test_fabric_upserts_lists_without_secrets_and_deletes(vc):
    doc = lun_doc(1, chap_user="u1", chap_secret="s3cret-chap")
    r = vc.fabric_put(doc)
    assert r.status_code == 201 and "chap_secret" not in r.json()
    assert vc.fabric_put({**doc, "capacity_bytes": 2 << 30}).status_code == 200
    listed = vc.http("GET", "/datera/luns").json()
    assert [(x["naa"], x["capacity_bytes"]) for x in listed] == [(doc["naa"], 2 << 30)]
    assert "s3cret-chap" not in vc.http("GET", "/datera/luns").text
    assert vc.http("DELETE", f"/datera/luns?naa={doc['naa']}").status_code == 204
    r = vc.http("DELETE", f"/datera/luns?naa={doc['naa']}")
    assert r.status_code == 404 and r.json() == {"error": f"no LUN {doc['naa']} on the fabric"}


@pytest.mark.parametrize("field,value,message", [
    ("naa", "naa.123", 'naa: "naa.123" is not naa.<32 hex digits>'),
    ("capacity_bytes", 1000, "capacity_bytes: 1000 must be a positive multiple of 512"),
    ("target_iqn", "nope", 'target_iqn: "nope" is not an iSCSI name (iqn.yyyy-mm.…)'),
    ("portals", [], 'portals: at least one "ip:port" is required'),
    ("portals", ["vip1:3260"], 'portals[0]: "vip1:3260" is not "ip:port"'),
    ("chap_secret", "s", "chap_user and chap_secret go together"),
])
def test_fabric_rejects_bad_luns_with_one_line(vc, field, value, message):
    r = vc.fabric_put(lun_doc(2, **{field: value}))
    assert r.status_code == 400 and r.json() == {"error": message}


def test_fabric_needs_the_vcenter_login(vc):
    r = vc.http("GET", "/datera/luns", auth=False)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    r = vc.http("PUT", "/datera/luns", auth=False, json=lun_doc(3))
    assert r.status_code == 401


# ---- the iSCSI adapter and rescans ---------------------------------------------------------

def test_software_iscsi_adapter_appears_with_the_host_iqn(vc):
    ss = storage(vc)
    assert ss.storageDeviceInfo.softwareInternetScsiEnabled is False
    ss, hba = enable_iscsi(vc)
    assert (hba.device, hba.model, hba.driver, hba.isSoftwareBased) == (
        HBA, "iSCSI Software Adapter", "iscsi_vmk", True)
    assert hba.iScsiName.startswith("iqn.1998-01.com.vmware:dc0-c0-h0-")
    host = vc.host()
    assert host.config.storageDevice.softwareInternetScsiEnabled is True
    assert HBA in [h.device for h in host.config.storageDevice.hostBusAdapter]
    ss.UpdateSoftwareInternetScsiEnabled(False)
    assert HBA not in [h.device for h in storage(vc).storageDeviceInfo.hostBusAdapter]


def test_iscsi_methods_refuse_an_unknown_adapter(vc):
    ss = storage(vc)
    with pytest.raises(vim.fault.NotFound):      # software iSCSI not enabled yet
        ss.AddInternetScsiSendTargets(iScsiHbaDevice=HBA, targets=[send_target()])
    enable_iscsi(vc)
    with pytest.raises(vim.fault.NotFound):
        ss.AddInternetScsiSendTargets(iScsiHbaDevice="vmhba99", targets=[send_target()])
    with pytest.raises(vim.fault.NotFound):
        ss.RemoveInternetScsiSendTargets(iScsiHbaDevice=HBA, targets=[send_target(VIP2)])
    with pytest.raises(vim.fault.NotFound):
        ss.RescanHba("vmhba99")


def test_rescan_without_a_send_target_sees_nothing(vc):
    ss, hba = enable_iscsi(vc)
    assert vc.fabric_put(lun_doc(1, initiators=[hba.iScsiName])).status_code == 201
    ss.RescanAllHba()
    assert datera_luns(storage(vc)) == {}


def test_rescan_reveals_only_luns_whose_acl_lists_the_host(vc):
    ss, hba = enable_iscsi(vc)
    mine, other, anyone = (lun_doc(1, initiators=[hba.iScsiName]),
                           lun_doc(2, initiators=["iqn.1998-01.com.vmware:someone-else"]),
                           lun_doc(3))
    for d in (mine, other, anyone):
        vc.fabric_put(d)
    ss.AddInternetScsiSendTargets(iScsiHbaDevice=HBA, targets=[send_target()])
    assert datera_luns(storage(vc)) == {}        # nothing changes until a rescan
    ss.RescanAllHba()
    assert sorted(datera_luns(storage(vc))) == sorted([mine["naa"], anyone["naa"]])
    # Withdrawn from the fabric: gone after the next rescan, on the host's view too.
    vc.http("DELETE", f"/datera/luns?naa={mine['naa']}")
    ss.RescanHba(HBA)
    assert list(datera_luns(storage(vc))) == [anyone["naa"]]
    assert [l.canonicalName for l in vc.host().config.storageDevice.scsiLun
            if l.vendor == "DATERA"] == [anyone["naa"]]


def test_lun_identity_two_paths_round_robin(vc):
    ss, hba = enable_iscsi(vc)
    doc = lun_doc(7, initiators=[hba.iScsiName], lun_id=0, capacity_bytes=10 << 30)
    vc.fabric_put(doc)
    ss.AddInternetScsiSendTargets(iScsiHbaDevice=HBA, targets=[send_target()])
    ss.RescanAllHba()
    info = storage(vc).storageDeviceInfo
    lun = datera_luns(storage(vc))[doc["naa"]]
    assert isinstance(lun, vim.host.ScsiDisk)
    assert lun.canonicalName.startswith("naa.6001405") and len(lun.canonicalName) == 36
    assert (lun.vendor, lun.model, lun.lunType) == ("DATERA", "IBLOCK", "disk")
    assert lun.devicePath == f"/vmfs/devices/disks/{doc['naa']}"
    assert lun.capacity.blockSize * lun.capacity.block == 10 << 30
    assert lun.displayName == f"DATERA iSCSI Disk ({doc['naa']})"
    [mp] = [m for m in info.multipathInfo.lun if m.lun == lun.key]
    assert mp.policy.policy == "VMW_PSP_RR"
    assert mp.storageArrayTypePolicy.policy == "VMW_SATP_ALUA"
    assert sorted(p.transport.address[0] for p in mp.path) == [f"{VIP1}:3260", f"{VIP2}:3260"]
    assert all(p.name.startswith(f"{HBA}:C0:T") and p.name.endswith(":L0") for p in mp.path)
    assert {p.transport.iScsiName for p in mp.path} == {doc["target_iqn"]}
    [iface] = [a for a in info.scsiTopology.adapter if a.adapter.endswith(HBA)]
    assert len(iface.target) == 2 and {t.lun[0].scsiLun for t in iface.target} == {lun.key}


def test_static_target_reaches_only_its_portal(vc):
    ss, hba = enable_iscsi(vc)
    doc = lun_doc(4, initiators=[hba.iScsiName])
    vc.fabric_put(doc)
    wrong = vim.host.InternetScsiHba.StaticTarget(address=VIP2, port=3260,
                                                  iScsiName=doc["target_iqn"] + "x")
    ss.AddInternetScsiStaticTargets(iScsiHbaDevice=HBA, targets=[wrong])
    ss.RescanAllHba()
    assert datera_luns(storage(vc)) == {}
    right = vim.host.InternetScsiHba.StaticTarget(address=VIP2, port=3260,
                                                  iScsiName=doc["target_iqn"])
    ss.AddInternetScsiStaticTargets(iScsiHbaDevice=HBA, targets=[right])
    ss.RescanAllHba()
    info = storage(vc).storageDeviceInfo
    lun = datera_luns(storage(vc))[doc["naa"]]
    [mp] = [m for m in info.multipathInfo.lun if m.lun == lun.key]
    assert [p.transport.address[0] for p in mp.path] == [f"{VIP2}:3260"]
    ss.RemoveInternetScsiStaticTargets(iScsiHbaDevice=HBA, targets=[right])
    ss.RescanAllHba()
    assert datera_luns(storage(vc)) == {}


def test_chap_lun_stays_hidden_without_the_secret_adapter_level(vc):
    ss, hba = enable_iscsi(vc)
    doc = lun_doc(5, initiators=[hba.iScsiName], chap_user="vancouver", chap_secret="right-one")
    vc.fabric_put(doc)
    ss.AddInternetScsiSendTargets(iScsiHbaDevice=HBA, targets=[send_target()])
    ss.RescanAllHba()
    assert datera_luns(storage(vc)) == {}
    ss.UpdateInternetScsiAuthenticationProperties(
        iScsiHbaDevice=HBA, authenticationProperties=chap("vancouver", "wrong-one"))
    ss.RescanAllHba()
    assert datera_luns(storage(vc)) == {}
    ss.UpdateInternetScsiAuthenticationProperties(
        iScsiHbaDevice=HBA, authenticationProperties=chap("vancouver", "right-one"))
    ss.RescanAllHba()
    assert list(datera_luns(storage(vc))) == [doc["naa"]]
    # The API never returns the secret.
    published = adapter(storage(vc)).authenticationProperties
    assert published.chapName == "vancouver" and not published.chapSecret


def test_chap_at_target_level_overrides_the_adapter(vc):
    ss, hba = enable_iscsi(vc)
    doc = lun_doc(6, initiators=[hba.iScsiName], chap_user="tgt", chap_secret="tgt-secret")
    vc.fabric_put(doc)
    ss.AddInternetScsiSendTargets(iScsiHbaDevice=HBA, targets=[send_target()])
    ss.UpdateInternetScsiAuthenticationProperties(
        iScsiHbaDevice=HBA, authenticationProperties=chap("adapter", "adapter-secret"))
    ss.RescanAllHba()
    assert datera_luns(storage(vc)) == {}
    ss.UpdateInternetScsiAuthenticationProperties(
        iScsiHbaDevice=HBA, authenticationProperties=chap("tgt", "tgt-secret", chapInherited=False),
        targetSet=vim.host.InternetScsiHba.TargetSet(sendTargets=[send_target()]))
    ss.RescanAllHba()
    assert list(datera_luns(storage(vc))) == [doc["naa"]]
    [st] = adapter(storage(vc)).configuredSendTarget
    assert st.authenticationProperties.chapName == "tgt"
    assert not st.authenticationProperties.chapSecret
    with pytest.raises(vim.fault.NotFound):
        ss.UpdateInternetScsiAuthenticationProperties(
            iScsiHbaDevice=HBA, authenticationProperties=chap("x", "y"),
            targetSet=vim.host.InternetScsiHba.TargetSet(sendTargets=[send_target(VIP2)]))


def test_advanced_options_delayed_ack_off(vc):
    """Datera's VMware best practice turns DelayedAck off on the software adapter."""
    ss, _ = enable_iscsi(vc)
    opt = vim.host.InternetScsiHba.ParamValue(key="DelayedAck", value=False)
    ss.UpdateInternetScsiAdvancedOptions(iScsiHbaDevice=HBA, options=[opt])
    [o] = [o for o in adapter(storage(vc)).advancedOptions if o.key == "DelayedAck"]
    assert o.value is False
    with pytest.raises(vmodl_invalid_argument()):
        ss.UpdateInternetScsiAdvancedOptions(
            iScsiHbaDevice=HBA, options=[vim.host.InternetScsiHba.ParamValue(key="Nope", value=1)])


def vmodl_invalid_argument():
    from pyVmomi import vmodl
    return vmodl.fault.InvalidArgument


# ---- VMFS ----------------------------------------------------------------------------------

def visible_lun(vc, n=1, **over):
    ss, hba = enable_iscsi(vc)
    doc = lun_doc(n, initiators=[hba.iScsiName], **over)
    vc.fabric_put(doc)
    if not adapter(storage(vc)).configuredSendTarget:
        ss.AddInternetScsiSendTargets(iScsiHbaDevice=HBA, targets=[send_target()])
    ss.RescanAllHba()
    return doc


def create_vmfs(vc, doc, name):
    dss = vc.host().configManager.datastoreSystem
    [opt] = dss.QueryVmfsDatastoreCreateOptions(devicePath=f"/vmfs/devices/disks/{doc['naa']}")
    opt.spec.vmfs.volumeName = name
    return dss.CreateVmfsDatastore(spec=opt.spec)


def test_vmfs_lifecycle_and_remove_refused_while_a_vm_uses_it(vc):
    a, b = visible_lun(vc, 1, capacity_bytes=10 << 30), visible_lun(vc, 2, capacity_bytes=20 << 30)
    dss = vc.host().configManager.datastoreSystem
    assert sorted(d.canonicalName for d in dss.QueryAvailableDisksForVmfs()) == sorted(
        [a["naa"], b["naa"]])
    [opt] = dss.QueryVmfsDatastoreCreateOptions(devicePath=f"/vmfs/devices/disks/{a['naa']}")
    assert opt.spec.partition.partitionFormat == "gpt"
    assert opt.spec.vmfs.extent.diskName == a["naa"] and opt.spec.vmfs.majorVersion == 6
    ds = create_vmfs(vc, a, "vancouver-ds1")
    assert (ds.summary.type, ds.summary.capacity) == ("VMFS", 10 << 30)
    assert ds.info.vmfs.extent[0].diskName == a["naa"] and ds.info.vmfs.majorVersion == 6
    assert [d.canonicalName for d in dss.QueryAvailableDisksForVmfs()] == [b["naa"]]
    host = vc.host()
    assert "vancouver-ds1" in [d.name for d in host.datastore]
    vm = create_vm(vc.si, "vancouver-vm1", "vancouver-ds1")
    assert vm.config.hardware.device[-1].backing.fileName.startswith("[vancouver-ds1] vancouver-vm1/")
    with pytest.raises(vim.fault.ResourceInUse):
        dss.RemoveDatastore(datastore=ds)
    wait_task(vm.Destroy_Task())
    dss.RemoveDatastore(datastore=ds)
    assert [d.name for d in vc.host().datastore] == ["LocalDS_0"]
    assert sorted(d.canonicalName for d in dss.QueryAvailableDisksForVmfs()) == sorted(
        [a["naa"], b["naa"]])
    # Create/remove again on the same LUN: nothing stale is left behind.
    ds = create_vmfs(vc, a, "vancouver-ds1")
    dss.RemoveDatastore(datastore=ds)
    assert [d.name for d in vc.host().datastore] == ["LocalDS_0"]
    assert not any((vc.data_dir / "vmfs").iterdir())


def test_vmfs_refusals(vc):
    a = visible_lun(vc, 1)
    dss = vc.host().configManager.datastoreSystem
    with pytest.raises(vim.fault.NotFound):
        dss.QueryVmfsDatastoreCreateOptions(devicePath="/vmfs/devices/disks/naa.6001405" + "0" * 25)
    [opt] = dss.QueryVmfsDatastoreCreateOptions(devicePath=f"/vmfs/devices/disks/{a['naa']}")
    with pytest.raises(vmodl_invalid_argument()):       # no volume name
        dss.CreateVmfsDatastore(spec=opt.spec)
    opt.spec.vmfs.volumeName = "vancouver-ds1"
    ds = dss.CreateVmfsDatastore(spec=opt.spec)
    opt.spec.vmfs.volumeName = "vancouver-ds2"
    with pytest.raises(vim.fault.HostConfigFault):      # the LUN already holds VMFS
        dss.CreateVmfsDatastore(spec=opt.spec)
    with pytest.raises(vim.fault.ResourceInUse):        # adapter off under a mounted VMFS
        storage(vc).UpdateSoftwareInternetScsiEnabled(False)
    dss.RemoveDatastore(datastore=ds)
    with pytest.raises(vim.fault.NotFound):
        dss.RemoveDatastore(datastore=ds)


def test_govc_lists_the_hosts_luns_and_datastores(vc):
    a = visible_lun(vc, 9)
    create_vmfs(vc, a, "vancouver-govc-ds")
    luns = vc.govc("host.storage.info", "-host", "/DC0/host/DC0_C0/DC0_C0_H0").stdout
    assert f"/vmfs/devices/disks/{a['naa']}  disk   1.0GB     IBLOCK" in luns
    hbas = vc.govc("host.storage.info", "-host", "/DC0/host/DC0_C0/DC0_C0_H0", "-t", "hba").stdout
    assert HBA in hbas and "iSCSI Software Adapter" in hbas
    assert "vancouver-govc-ds" in vc.govc("ls", "/DC0/datastore").stdout
    info = vc.govc("datastore.info", "vancouver-govc-ds").stdout
    assert "VMFS" in info
