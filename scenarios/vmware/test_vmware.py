"""VMware under its own Datera tenant (Vancouver-VM): Datera volumes written through a VM on
an ESXi host, endlessly, beside everything else.

Per iteration (issue 11 item 4): create Datera volumes with the host's initiator in their ACL
and the host's CHAP, rescan until the host sees the LUNs (naa.6001405…, DATERA), create a
VMFS datastore on each LUN, create a VM with a disk on each datastore and power it on; its
guest (guestinfo.userdata) writes and verifies data on every disk and runs fio on the first,
and publishes the results as guestinfo.* values, which are read back through the vSphere API
with the Datera metrics of the volumes; then power off and destroy the VM, remove the
datastores, delete the volumes and rescan until the LUNs are gone. Every deletion is
registered the moment its thing exists, so failure, timeout and Ctrl-C tear down alike (VM,
then datastores, then volumes, then the rescan). The host itself is prepared once per worker
and undone by the run's last worker (scenarios/vmware/conftest.py). Runs unchanged against
a real vCenter named in target.yaml.
"""
import itertools
import time

from fixtures import datera
from fixtures import vmware
from fixtures.metrics import metric_points
from fixtures.outage.deferred import deferrable
from fixtures.waiters import wait_until
from fixtures.workload import DirectionResult, FioJob, FioResult, parse_output

VOLUMES = 2                 # LUNs, datastores and VM disks per iteration
VERIFY_SIZE = "8M"          # bytes written and verified on each disk
TIMEOUT = 120
TENANT = "Vancouver-VM"
# What each deletion needs (fixtures/outage/deferred.py: the outage probes' keys)
VSPHERE = ("vsphere",)
VOLUME = ("datera", "vsphere")     # after the datastore on its LUN
RESCAN = ("vsphere", "datera")     # after the volumes
_iterations = itertools.count(1)      # names of this worker's iterations


def _tenant(demo) -> str:
    names = [t.name for t in demo.tenants_on("vmware")]
    return datera.tenant_path(names[0] if names else TENANT)


def _userdata(job: FioJob, disks: int) -> str:
    """The guest's job: write + verify each disk, then the demo's fio on the first; results
    published as VMware Tools would (vmware-rpctool info-set)."""
    lines = ["set -e"]
    for n in range(disks):
        dev = f"/dev/sd{chr(ord('a') + n)}"
        lines += [f"fio --name=verify{n} --filename={dev} --rw=write --bs=64k "
                  f"--size={VERIFY_SIZE} --verify=crc32c --do_verify=1 --output-format=json "
                  f"> verify{n}.json",
                  f"vmware-rpctool \"info-set guestinfo.verify{n} $(tr -d '\\n' < verify{n}.json)\""]
    lines += ["fio --name=vancouver --filename=/dev/sda " + " ".join(job.args()) + " > fio.json",
              "vmware-rpctool \"info-set guestinfo.fio $(tr -d '\\n' < fio.json)\""]
    return "\n".join(lines) + "\n"


def test_vmware(esxi, datera_admin, datera_tenants, make_datera_volume, run_prefix, demo,
                proof, qos_windows, request):
    vs = esxi.vs
    tenant = _tenant(demo)
    naas: list[str] = []
    vols: list[datera.DateraVolume] = []
    n = next(_iterations)
    proof.figure("Datera tenant", tenant)
    proof.figure("ESXi host", vs.host.name)

    # Finalizers run in reverse: the VM, the datastores, then the volumes and the rescan
    # (the test's run before its fixtures', e.g. make_datera_volume's deletion). Each goes
    # through the outage plugin's deferred teardown (fixtures/outage/deferred.py) with the
    # platforms it needs: a vCenter or Datera that does not answer queues it, in this
    # order, until it is back. A volume waits for the vCenter too (its datastore first),
    # the rescan for Datera too (the LUNs go with the volumes).
    def volumes_and_luns_gone():
        for vol in vols:
            deferrable(request.config, lambda vol=vol: datera.delete_volume(vol),
                       f"app_instance {vol.tenant}:{vol.name}", VOLUME)()
        if naas:
            deferrable(request.config,
                       lambda: vmware.rescan_until(vs, naas, present=False, timeout=TIMEOUT),
                       f"rescan of ESXi host {vs.host._moId} until {', '.join(naas)} are gone",
                       RESCAN)()
    request.addfinalizer(volumes_and_luns_gone)

    with proof.step("create Datera volumes with the host in their ACL (CHAP)"):
        for i in range(VOLUMES):
            vol = make_datera_volume(datera_admin, tenant, chap=esxi.chap, label=f"vm{n}")
            vols.append(vol)
            naas.append(vmware.lun_of(vol.uuid))
            prepared = esxi.ensure(vol.portals)
            esxi.allow(vol, label=f"{run_prefix}-esxi")
        proof.figure("host IQN", esxi.iqn)
        proof.figure("send targets", prepared["send_targets"])
        proof.figure("DelayedAck", prepared["delayed_ack"])
        proof.figure("ATS heartbeat", prepared["ats_heartbeat"])

    with proof.step("rescan: the host sees the LUNs"):
        luns = vmware.rescan_until(vs, naas, present=True, timeout=TIMEOUT)
        for naa in naas:
            assert luns[naa].vendor.strip() == "DATERA", luns[naa].vendor
            proof.resource("lun", naa)
        proof.figure("LUNs", ", ".join(naas))

    datastores = [f"{run_prefix}-ds{n}-{i}" for i in range(VOLUMES)]
    with proof.step("create a VMFS datastore on each LUN"):
        for name, naa in zip(datastores, naas):
            request.addfinalizer(deferrable(
                request.config, lambda name=name: vmware.remove_datastore(vs, name),
                f"datastore {name}", VSPHERE))
            ds = vmware.create_vmfs_datastore(vs, name, naa)
            assert ds.summary.type == "VMFS", ds.summary.type
            proof.resource("datastore", name)

    vm_name = f"{run_prefix}-vm{n}"
    size_gib = min(vol.volume["size"] for vol in vols)
    disk_gib = max(0.25, size_gib / 2)
    job = FioJob(rw=demo.fio.rw, bs=demo.fio.block_size, iodepth=demo.fio.iodepth,
                 runtime_s=demo.fio.runtime_s)
    # the guest's writes share the tenant cap from power-on until it reports done: they wait
    # for the QoS checks measuring there (fixtures/headroom.py)
    with qos_windows.tenant_io(tenant):
        with proof.step("create and power on a VM with a disk on each datastore"):
            request.addfinalizer(deferrable(request.config, lambda: vmware.destroy_vm(vs, vm_name),
                                            f"vm {vm_name}", VSPHERE))
            spec = vmware.vm_spec(vm_name, datastores, disk_gib, _userdata(job, VOLUMES))
            vm = vmware.create_vm(vs, spec)
            proof.resource("vm", vm_name)
            started = time.time()
            vmware.wait_task(vm.PowerOnVM_Task(), what=f"VM {vm_name} powered on")
            proof.happened("vm_started", vm_name, f"disks on {', '.join(datastores)}")

        with proof.step("the guest writes and verifies data, then runs fio"):
            info = vmware.wait_guest(vm, TIMEOUT + 2 * demo.fio.runtime_s)
            ended = time.time()
            assert info.get("guestinfo.exitcode") == "0", info.get("guestinfo.output", "")[-400:]
            for i in range(VOLUMES):
                v = parse_output(info[f"guestinfo.verify{i}"])["jobs"][0]
                assert v["error"] == 0 and v["read"]["io_bytes"] == v["write"]["io_bytes"] > 0, v
            proof.figure("verified per disk (bytes)", VERIFY_SIZE)
            j = parse_output(info["guestinfo.fio"])["jobs"][0]
            proof.fio(f"VM fio on {datastores[0]}", FioResult(
                device=naas[0], job=job, read=DirectionResult.parse(j.get("read", {})),
                write=DirectionResult.parse(j.get("write", {})), error=int(j.get("error", 0)),
                runtime_ms=int(j.get("job_runtime", 0)), exit_code=0, started=started, ended=ended))
            assert int(j.get("error", 0)) == 0

    with proof.step("the Datera metrics of the volumes show the VM's I/O"):
        for vol in vols:
            wait_until(lambda vol=vol: sum(v for _, v in metric_points(
                datera_admin, "bytes_written", vol.uuid, since_s=300, tenant=tenant)) > 0,
                20, f"writes of {vm_name} in the metrics of {vol.name}", interval=0.5)
        written = sum(v for _, v in metric_points(datera_admin, "bytes_written", vols[0].uuid,
                                                  since_s=300, tenant=tenant))
        proof.figure("bytes written to the first volume (Datera metrics)", int(written))

    with proof.step("power off and destroy the VM"):
        assert vmware.destroy_vm(vs, vm_name)
        proof.resource_deleted("vm", vm_name)
        proof.happened("vm_removed", vm_name)

    with proof.step("remove the datastores"):
        for name in datastores:
            assert vmware.remove_datastore(vs, name)
            proof.resource_deleted("datastore", name)

    with proof.step("delete the volumes; rescan until the LUNs are gone"):
        for vol in vols:
            datera.delete_volume(vol)
        vmware.rescan_until(vs, naas, present=False, timeout=TIMEOUT)
        for naa in naas:
            proof.resource_deleted("lun", naa)
