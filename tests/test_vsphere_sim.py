"""The lab's vCenter (lab/vsphere, issue 11 item 1): HTTPS with the lab CA, the inventory,
login, pyvmomi 9's Fetch of unset properties, the task janitor, clean shutdown, and the lab
component (`lab up --only vsphere` writes vsphere.env). Clients: pyvmomi 9 and govc."""
import json
import signal
import socket
import ssl
import subprocess

import pytest
from pyVmomi import vim, vmodl

from tests.support.vsphere import USER, Vcsim, binaries, create_vm, wait_for, wait_task

# `lab up --only vsphere` on a net no other test module uses (tests/support/labcli.py lists them).
LAB_NET = "127.228"


@pytest.fixture(scope="module")
def vc(tmp_path_factory):
    sim = Vcsim(tmp_path_factory.mktemp("vcsim"), task_gc_s=0.2).start()
    yield sim
    sim.stop()


def test_pyvmomi_logs_in_over_verified_tls_to_one_dc_cluster_host(vc):
    content = vc.si.RetrieveContent()
    assert content.about.apiType == "VirtualCenter"
    [dc] = content.rootFolder.childEntity
    [cluster] = dc.hostFolder.childEntity
    assert isinstance(cluster, vim.ClusterComputeResource)
    assert [h.name for h in cluster.host] == ["DC0_C0_H0"]
    assert [ds.name for ds in dc.datastore] == ["LocalDS_0"]
    assert dc.vmFolder.childEntity == []           # no model VMs: the demo makes its own


def test_certificate_is_the_lab_cas_and_unverified_clients_are_refused(vc):
    ctx = ssl.create_default_context()              # system CAs only: the lab CA is unknown
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", vc.port), timeout=5) as s:
            ctx.wrap_socket(s, server_hostname="127.0.0.1")


def test_wrong_password_is_invalid_login(vc):
    with pytest.raises(vim.fault.InvalidLogin):
        vc.connect(password="not-" + vc.password)


def test_fetch_of_unset_properties_reads_none(vc):
    """pyvmomi 9 reads properties with Fetch; stock vcsim panics on unset ones (§2.8.1)."""
    host = vc.host()
    assert host.configManager.storageSystem.multipathStateInfo is None
    vm = create_vm(vc.si, "fetch-vm", "LocalDS_0")
    try:
        assert vm.snapshot is None
        wait_task(vm.CreateSnapshot_Task(name="s1", memory=False, quiesce=False))
        assert vm.snapshot.rootSnapshotList[0].name == "s1"
    finally:
        wait_task(vm.Destroy_Task())
    assert "Fetch of an unset property answered empty" in vc.log_text()


def test_task_janitor_removes_finished_tasks(vc):
    """Finished tasks leave the registry once older than task_gc_s and out of
    TaskManager.recentTask (200 long), so memory stays flat over an endless demo (§4)."""
    vm = create_vm(vc.si, "janitor-vm", "LocalDS_0")
    first = vm.PowerOnVM_Task()
    wait_task(first)
    wait_task(vm.PowerOffVM_Task())
    tm = vc.si.RetrieveContent().taskManager
    for _ in range(101):     # 202 newer tasks push `first` out of recentTask
        wait_task(vm.PowerOnVM_Task())
        wait_task(vm.PowerOffVM_Task())
    assert first._moId not in [t._moId for t in tm.recentTask]

    def first_gone():
        try:
            first.info.state
        except vmodl.fault.ManagedObjectNotFound:
            return True
        return False
    wait_for(first_gone, 10, "the janitor to remove the old task")
    # The newest tasks stay: TaskManager still lists them and they still read.
    assert all(t.info.state == "success" for t in tm.recentTask[-5:])
    wait_task(vm.Destroy_Task())


def _start_alone(tmp_path) -> Vcsim:
    return Vcsim(tmp_path / "alone").start()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_removes_datastore_dirs(tmp_path, sig):
    sim = _start_alone(tmp_path)
    vm = create_vm(sim.si, "doomed", "LocalDS_0")
    assert vm.name == "doomed"
    tmp_dirs = list((sim.data_dir / "tmp").iterdir())
    assert tmp_dirs and any(d.name.startswith("govcsim-") for d in tmp_dirs)
    assert sim.stop(sig) == 0
    assert not (sim.data_dir / "tmp").exists() and not (sim.data_dir / "vmfs").exists()
    assert not (sim.work / "url").exists()
    assert "stopping" in sim.log_text()


def test_bad_config_is_one_line(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"address": "10.0.0.1", "port": 1, "user": "u", "password": "p",
                               "tls_cert": "c", "tls_key": "k", "data_dir": str(tmp_path)}))
    r = subprocess.run([str(binaries() / "vancouver-vcsim"), "-config", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"vancouver-vcsim: {cfg}: address \"10.0.0.1\" must be a loopback IP "
        "(the lab binds loopback only)"]


def test_govc_lists_the_inventory(vc):
    """govc, built from the same Debian govmomi source, is a client nobody here wrote."""
    out = vc.govc("ls", "/DC0/host/DC0_C0").stdout.split()
    assert "/DC0/host/DC0_C0/DC0_C0_H0" in out
    about = vc.govc("about").stdout
    assert "VMware vCenter Server" in about


def test_lab_component_writes_vsphere_env(make_lab, tmp_path):
    lab = make_lab(LAB_NET)
    r = lab.up("vsphere")
    assert r.returncode == 0, r.stderr
    target = lab.run_dir / "target"
    env = dict(line.split("=", 1) for line in (target / "vsphere.env").read_text().splitlines())
    assert env["VSPHERE_URL"] == f"https://{LAB_NET}.5.1:8989/sdk"
    assert env["VSPHERE_USER"] == USER and env["VSPHERE_PASSWORD"]
    assert (target / "vsphere.env").stat().st_mode & 0o077 == 0     # holds the password
    ctx = ssl.create_default_context(cafile=env["VSPHERE_CA_FILE"])
    from pyVim.connect import Disconnect, SmartConnect
    si = SmartConnect(host=f"{LAB_NET}.5.1", port=8989, user=env["VSPHERE_USER"],
                      pwd=env["VSPHERE_PASSWORD"], sslContext=ctx)
    try:
        assert si.RetrieveContent().about.apiType == "VirtualCenter"
    finally:
        Disconnect(si)
    govc = subprocess.run([str(binaries() / "govc"), "ls", "/"], capture_output=True, text=True,
                          env={**env, "PATH": "/usr/bin:/bin", "GOVMOMI_HOME": str(tmp_path)}, timeout=60)
    assert govc.stdout.split() == ["/DC0"], govc.stderr
    import yaml
    doc = yaml.safe_load((target / "target.yaml").read_text())
    assert doc["vsphere"]["ca_file"] == "vsphere-ca.pem" and doc["vsphere"]["host"] == "DC0_C0_H0"
    assert lab.run("down").returncode == 0
