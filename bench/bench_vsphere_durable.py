"""What the lab's vCenter pays for durable state (issue 13 Build 1, lab/vsphere/durable.go):
latency of mutating calls with the saves against the same simulator build with them off
(config durable=false), in the same run, interleaved call by call so both see the same load;
and the restart after a kill -9 with N VMs in the inventory against a cold start without state.

Each simulator first gets --vms VMs (1 GiB thin disk on LocalDS_0, powered off), as an endless
demo's inventory would hold a few. One measured cycle through pyvmomi 9: CreateVM (1 disk),
ReconfigVM (add a disk), PowerOn, PowerOff, Destroy; each call timed. Goal: p50 within 1.5x.

Prints figures only; asserts nothing.
    python bench/bench_vsphere_durable.py [--vms 30] [--rounds 100] [--restarts 3]
"""
import argparse
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vsphere  # noqa: E402  (bench/ is on sys.path)
from bench_vsphere import USER, Sim, pct  # noqa: E402
from pyVim.connect import SmartConnect  # noqa: E402
from pyVmomi import vim  # noqa: E402

from lab.vsphere import buildhash  # noqa: E402  (bench_vsphere put the repo on sys.path)

OPS = ("CreateVM", "ReconfigVM", "PowerOn", "PowerOff", "Destroy")


def vm_spec(name: str) -> vim.vm.ConfigSpec:
    return bench_vsphere.vm_spec(name, "LocalDS_0")


class Inventory:
    def __init__(self, sim: Sim):
        content = sim.si.RetrieveContent()
        self.dc = content.rootFolder.childEntity[0]
        self.pool = self.dc.hostFolder.childEntity[0].resourcePool

    def create(self, name: str):
        task = self.dc.vmFolder.CreateVM_Task(config=vm_spec(name), pool=self.pool)
        assert task.info.state == "success", task.info.error
        return task.info.result


def cycle(inv: Inventory, name: str, times: dict[str, list[float]]) -> None:
    def timed(op, call):
        t0 = time.perf_counter()
        task = call()
        times[op].append(time.perf_counter() - t0)
        assert task.info.state == "success", task.info.error
        return task.info.result
    vm = timed("CreateVM", lambda: inv.dc.vmFolder.CreateVM_Task(config=vm_spec(name), pool=inv.pool))
    disk = vim.vm.device.VirtualDeviceSpec(
        operation="add", fileOperation="create", device=vim.vm.device.VirtualDisk(
            key=-2, controllerKey=1000, unitNumber=1, capacityInKB=1 << 20,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", thinProvisioned=True, fileName="")))
    timed("ReconfigVM", lambda: vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[disk])))
    timed("PowerOn", vm.PowerOnVM_Task)
    timed("PowerOff", vm.PowerOffVM_Task)
    timed("Destroy", vm.Destroy_Task)


def restart_s(sim: Sim) -> float:
    """kill -9, then a new process on the same config: seconds until a login succeeds (as the
    cold start's figure: Sim() starts, waits for the URL file and logs in)."""
    os.kill(sim.proc.pid, signal.SIGKILL)
    sim.proc.wait()
    url = sim.work / "url"
    url.unlink()
    t0 = time.perf_counter()
    sim.proc = subprocess.Popen([str(buildhash.bin_dir() / "vancouver-vcsim"), "-config",
                                 str(sim.config)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    while not url.exists():
        if sim.proc.poll() is not None:
            sys.exit("vancouver-vcsim did not come back")
        time.sleep(0.005)
    port = int(url.read_text().strip().removesuffix("/sdk").rsplit(":", 1)[1])
    sim.si = SmartConnect(host="127.0.0.1", port=port, user=USER, pwd=sim.password,
                          sslContext=ssl.create_default_context(cafile=sim.ca))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vms", type=int, default=30, help="VMs in the inventory while measuring")
    ap.add_argument("--rounds", type=int, default=100, help="measured cycles per simulator")
    ap.add_argument("--restarts", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-vsphere-durable-") as tmp:
        ref = Sim(Path(tmp) / "reference", 10, durable=False)
        dur = Sim(Path(tmp) / "durable", 10)
        sims = {"reference": ref, "durable": dur}
        invs = {k: Inventory(s) for k, s in sims.items()}
        for i in range(args.vms):
            for inv in invs.values():
                inv.create(f"bench-kept-{i}")
        times = {k: {op: [] for op in OPS} for k in sims}
        for i in range(args.rounds):   # interleaved: both see the same machine load
            for k in sims:
                cycle(invs[k], f"bench-vm-{i}", times[k])
        state = dur.work / "data" / "state.xml"
        print(f"vCenter with {args.vms} VMs, {args.rounds} cycles each, load "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; state.xml "
              f"{state.stat().st_size / 1024:.0f} KiB")
        print(f"{'call':<11} {'ref p50':>8} {'ref p99':>8} {'dur p50':>8} {'dur p99':>8} "
              f"{'p50 x':>6} {'p99 x':>6}  goal p50 <=1.5x")
        for op in OPS:
            r = [t * 1000 for t in times["reference"][op]]
            d = [t * 1000 for t in times["durable"][op]]
            x50, x99 = pct(d, 50) / pct(r, 50), pct(d, 99) / pct(r, 99)
            print(f"{op:<11} {pct(r, 50):7.1f}m {pct(r, 99):7.1f}m {pct(d, 50):7.1f}m "
                  f"{pct(d, 99):7.1f}m {x50:5.2f}x {x99:5.2f}x  {'ok' if x50 <= 1.5 else 'OVER'}")
        print("(ms per call; ref: the same build with durable=false)")
        for s in sims.values():
            s.stop()
        # restart with state vs a cold start, same run
        cold = []
        for i in range(args.restarts):
            t0 = time.perf_counter()
            fresh = Sim(Path(tmp) / f"cold-{i}", 10)
            cold.append(time.perf_counter() - t0)
            fresh.stop()
        kept = Sim(Path(tmp) / "kept", 10)
        inv = Inventory(kept)
        for i in range(args.vms):
            inv.create(f"bench-kept-{i}")
        warm = [restart_s(kept) for _ in range(args.restarts)]
        kept.proc.terminate()
        kept.proc.wait(15)
        print(f"start to first login: after kill -9 with {args.vms} VMs saved p50 "
              f"{statistics.median(warm):.3f} s (max {max(warm):.3f}); cold, no state p50 "
              f"{statistics.median(cold):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
