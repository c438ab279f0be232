"""The lab's vCenter (lab/vsphere): Go main build time cold vs warm, and the simulator's memory
over endless demo cycles (issue 11: RSS after 2,000 cycles within 20% of RSS after 100).

One cycle is the storage demo's vSphere side through pyvmomi 9: fabric PUT of a Datera LUN ->
RescanAllHba -> QueryVmfsDatastoreCreateOptions -> CreateVmfsDatastore -> CreateVM (1 GiB
disk on it) -> PowerOn -> PowerOff -> Destroy -> RemoveDatastore -> fabric DELETE ->
RescanAllHba. The reference, measured in the same run, is the same loop with the task janitor
off (stock vcsim keeps every Task: reference vsphere.md §4). Then --workers clients (processes,
own sessions, own LUNs) run the same cycle at once against one simulator: p50/p95.

Prints figures only; asserts nothing.
    python bench/bench_vsphere.py [--cycles 2000] [--reference-cycles 400] [--workers 5]
                                  [--worker-cycles 40] [--no-build]
"""
import argparse
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import requests  # noqa: E402
from pyVim.connect import Disconnect, SmartConnect  # noqa: E402
from pyVmomi import vim  # noqa: E402

from lab.component_base import write_private  # noqa: E402
from lab.tls import issue_server_cert  # noqa: E402
from lab.vsphere import buildhash  # noqa: E402

USER = "administrator@vsphere.local"
ADDRESS = "127.0.0.1"


def build_times() -> tuple[float, float]:
    """Seconds for `go build` of the Go main with an empty GOCACHE, then again warm."""
    with tempfile.TemporaryDirectory(prefix="bench-vsphere-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for p in buildhash.source_files():
            if p.suffix in (".go", ".mod"):
                shutil.copy(p, src / p.name)
        env = dict(os.environ, GOPROXY="off", GOFLAGS="-mod=mod", GOCACHE=str(Path(tmp) / "cache"),
                   CGO_ENABLED="0", HOME=tmp)
        times = []
        for _ in range(2):
            t0 = time.monotonic()
            subprocess.run(["go", "build", "-trimpath", "-o", str(Path(tmp) / "vcsim"), "."],
                           cwd=src, env=env, check=True)
            times.append(time.monotonic() - t0)
            (Path(tmp) / "vcsim").unlink()
        return times[0], times[1]


class Sim:
    """extra: more config.json keys (bench_vsphere_durable.py: durable)."""
    def __init__(self, work: Path, task_gc_s: float, **extra):
        bin_dir = buildhash.bin_dir()
        if bin_dir is None:
            sys.exit(f"lab/vsphere is not built in {buildhash.build_dir()}: run make vsphere")
        work.mkdir(parents=True)
        tls = issue_server_cert(work / "tls", ADDRESS, "localhost")
        self.password = "bench-" + os.urandom(6).hex()
        self.ca = str(tls.ca)
        config = {"address": ADDRESS, "port": 0, "user": USER, "password": self.password,
                  "tls_cert": str(tls.cert), "tls_key": str(tls.key), "ca_file": self.ca,
                  "data_dir": str(work / "data"), "url_file": str(work / "url"),
                  "task_gc_s": task_gc_s, **extra}
        self.work, self.config = work, work / "config.json"
        write_private(work / "config.json", json.dumps(config))
        self.proc = subprocess.Popen([str(bin_dir / "vancouver-vcsim"), "-config",
                                      str(work / "config.json")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (work / "url").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("vancouver-vcsim did not start")
            time.sleep(0.02)
        self.base = (work / "url").read_text().strip().removesuffix("/sdk")
        port = int(self.base.rsplit(":", 1)[1])
        self.si = SmartConnect(host=ADDRESS, port=port, user=USER, pwd=self.password,
                               sslContext=ssl.create_default_context(cafile=self.ca))
        self.session = requests.Session()

    def fabric(self, method: str, **kw) -> None:
        # verify per request: a session's verify loses to REQUESTS_CA_BUNDLE in requests
        self.session.request(method, self.base + "/datera/luns", auth=(USER, self.password),
                             verify=self.ca, timeout=30, **kw).raise_for_status()

    def rss_mib(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        Disconnect(self.si)
        self.proc.terminate()
        self.proc.wait(15)


class Client:
    """One worker's own session (pyvmomi is not shared across processes)."""
    def __init__(self, base: str, password: str, ca: str):
        self.base, self.password, self.ca = base, password, ca
        port = int(base.rsplit(":", 1)[1])
        self.si = SmartConnect(host=ADDRESS, port=port, user=USER, pwd=password,
                               sslContext=ssl.create_default_context(cafile=ca))
        self.session = requests.Session()

    def fabric(self, method: str, **kw) -> None:
        self.session.request(method, self.base + "/datera/luns", auth=(USER, self.password),
                             verify=self.ca, timeout=30, **kw).raise_for_status()


def prepare_host(sim: Sim) -> None:
    """Software iSCSI with one send target, once, before any worker runs."""
    host = sim.si.RetrieveContent().rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
    ss = host.configManager.storageSystem
    ss.UpdateSoftwareInternetScsiEnabled(True)
    hba = next(h for h in ss.storageDeviceInfo.hostBusAdapter
               if isinstance(h, vim.host.InternetScsiHba))
    ss.AddInternetScsiSendTargets(iScsiHbaDevice=hba.device, targets=[
        vim.host.InternetScsiHba.SendTarget(address="127.0.7.11", port=3260)])


def worker(base: str, password: str, ca: str, first: int, n: int) -> list[float]:
    times, _ = demo_cycles(Client(base, password, ca), n, set(), first=first)
    return times


def vm_spec(name: str, datastore: str) -> vim.vm.ConfigSpec:
    """A small VM with one 1 GiB thin disk on a PVSCSI controller, its files on `datastore`."""
    return vim.vm.ConfigSpec(
        name=name, guestId="otherGuest64", numCPUs=1, memoryMB=128,
        files=vim.vm.FileInfo(vmPathName=f"[{datastore}]"), deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device
                                            .ParaVirtualSCSIController(key=1000, busNumber=0,
                                                                       sharedBus="noSharing")),
            vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create",
                                            device=vim.vm.device.VirtualDisk(
                key=-1, controllerKey=1000, unitNumber=0, capacityInKB=1 << 20,
                backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                    diskMode="persistent", thinProvisioned=True, fileName="")))])


def demo_cycles(sim, n: int, marks: set[int], first: int = 1) -> tuple[list[float], dict[int, float]]:
    content = sim.si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    cluster = dc.hostFolder.childEntity[0]
    host = cluster.host[0]
    ss, dss = host.configManager.storageSystem, host.configManager.datastoreSystem
    hba = next(h for h in ss.storageDeviceInfo.hostBusAdapter
               if isinstance(h, vim.host.InternetScsiHba))
    times, rss = [], {}
    for i in range(first, first + n):
        t0 = time.perf_counter()
        naa = f"naa.6001405{i:025x}"
        sim.fabric("PUT", json={
            "naa": naa, "capacity_bytes": 2 << 30, "target_iqn": f"iqn.2013-05.com.daterainc:tc:01:sn:{i:016x}",
            "portals": ["127.0.7.11:3260", "127.0.7.12:3260"], "lun_id": 0,
            "initiators": [hba.iScsiName]})
        ss.RescanAllHba()
        [opt] = dss.QueryVmfsDatastoreCreateOptions(devicePath=f"/vmfs/devices/disks/{naa}")
        opt.spec.vmfs.volumeName = f"bench-ds-{i}"
        ds = dss.CreateVmfsDatastore(spec=opt.spec)
        task = dc.vmFolder.CreateVM_Task(config=vm_spec(f"bench-vm-{i}", f"bench-ds-{i}"),
                                         pool=cluster.resourcePool)
        assert task.info.state == "success", task.info.error
        vm = task.info.result
        for t in (vm.PowerOnVM_Task(), vm.PowerOffVM_Task(), vm.Destroy_Task()):
            assert t.info.state == "success", t.info.error
        dss.RemoveDatastore(datastore=ds)
        sim.fabric("DELETE", params={"naa": naa})
        ss.RescanAllHba()
        times.append(time.perf_counter() - t0)
        if i - first + 1 in marks:
            rss[i - first + 1] = sim.rss_mib()
    return times, rss


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--reference-cycles", type=int, default=400,
                    help="cycles of the janitor-off reference (0: skip it)")
    ap.add_argument("--task-gc-s", type=float, default=2.0)
    ap.add_argument("--no-build", action="store_true", help="skip the build-time figures")
    ap.add_argument("--workers", type=int, default=5, help="parallel clients for p50/p95")
    ap.add_argument("--worker-cycles", type=int, default=40, help="cycles per parallel client")
    args = ap.parse_args()

    if not args.no_build:
        cold, warm = build_times()
        print(f"Go main build: cold {cold:.1f} s, warm {warm:.2f} s (warm/cold {warm / cold:.3f})")

    with tempfile.TemporaryDirectory(prefix="bench-vsphere-") as tmp:
        marks = {100, args.cycles // 2, args.cycles}
        sim = Sim(Path(tmp) / "janitor", args.task_gc_s)
        prepare_host(sim)
        idle = sim.rss_mib()
        t0 = time.monotonic()
        times, rss = demo_cycles(sim, args.cycles, marks)
        wall = time.monotonic() - t0
        sim.stop()
        ms = [t * 1000 for t in times]
        print(f"demo cycles (janitor {args.task_gc_s:g} s): {args.cycles} in {wall:.1f} s, "
              f"p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms (1 client)")
        print(f"simulator RSS: idle {idle:.1f} MiB, "
              + ", ".join(f"after {k} {v:.1f} MiB" for k, v in sorted(rss.items())))
        if 100 in rss:
            ratio = rss[args.cycles] / rss[100]
            print(f"RSS after {args.cycles} / after 100: {ratio:.3f} "
                  f"(goal <= 1.20: {'met' if ratio <= 1.2 else 'NOT met'})")
        if args.reference_cycles >= 200:
            ref = Sim(Path(tmp) / "reference", 0)
            prepare_host(ref)
            _, rss_ref = demo_cycles(ref, args.reference_cycles, {100, args.reference_cycles})
            ref.stop()
            grow = (rss_ref[args.reference_cycles] - rss_ref[100]) / (args.reference_cycles - 100)
            grow_j = (rss[args.cycles] - rss[100]) / max(1, args.cycles - 100)
            print(f"reference, janitor off: RSS after 100 {rss_ref[100]:.1f} MiB, after "
                  f"{args.reference_cycles} {rss_ref[args.reference_cycles]:.1f} MiB: "
                  f"{grow * 1024:.1f} KiB/cycle vs {grow_j * 1024:.1f} KiB/cycle with the janitor")
        if args.workers > 0 and args.worker_cycles > 0:
            par = Sim(Path(tmp) / "parallel", args.task_gc_s)
            prepare_host(par)
            t0 = time.monotonic()
            with ProcessPoolExecutor(args.workers) as pool:
                futures = [pool.submit(worker, par.base, par.password, par.ca,
                                       1 + w * args.worker_cycles, args.worker_cycles)
                           for w in range(args.workers)]
                ms = [t * 1000 for f in futures for t in f.result()]
            wall = time.monotonic() - t0
            par.stop()
            print(f"demo cycles, {args.workers} workers: {len(ms)} in {wall:.1f} s, "
                  f"p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
