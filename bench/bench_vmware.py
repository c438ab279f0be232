"""The VMware piece's cycle time: one demo cycle (Datera volume with CHAP and the host in its
ACL -> rescan until the LUN shows -> VMFS datastore -> VM with a disk on it, powered on, its
guest writes and verifies 4 MiB through the LUN -> VM destroyed -> datastore removed -> volume
deleted -> rescan until the LUN is gone), p50/p95 with N concurrent workers and, as the
reference measured in the same run, with one. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_vmware.py [--workers 5] [--cycles 4] [--target T]

Without --target it starts `lab up --only datera,ldap,vsphere` on its own lab network
(VANCOUVER_LAB_NET, default 127.232) in a tmp run dir, and stops it after.
"""
import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import _lab  # bench/, the script's own directory, is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GUEST = ("fio --name=v --filename=/dev/sda --rw=write --bs=64k --size=4M --verify=crc32c "
         "--do_verify=1 --output-format=json > v.json\n")
TENANT = "/root/Vancouver-VM"



def pct(times: list[float], q: float) -> float:
    return times[min(len(times) - 1, int(round(q * (len(times) - 1))))]


def run_cycles(target_yaml: Path, workers: int, n: int) -> tuple[list[float], int]:
    from fixtures import datera, vmware
    from fixtures.target import Target
    target = Target.load(target_yaml)
    dapi = datera.connect(datera.settings_from_target(target))
    datera.ensure_tenants(dapi, ["Vancouver-VM"], 1000, "lab-extension")
    settings = vmware.settings_from_target(target)
    chap = (f"bench_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:16])
    times, failures, lock = [], [0], threading.Lock()

    def one(vs, prefix: str, i: int) -> None:
        t0 = time.perf_counter()
        vol = datera.create_volume(dapi, TENANT, f"{prefix}-v{i}", 1, chap=chap)
        ds, vm, naa = f"{prefix}-ds{i}", f"{prefix}-vm{i}", vmware.lun_of(vol.uuid)
        try:
            iqn = vmware.prepare_host(vs, vol.portals, chap)["iqn"]
            datera.allow_initiator(vol, iqn, label=f"{prefix}-esxi")
            vmware.rescan_until(vs, [naa], present=True, timeout=120)
            vmware.create_vmfs_datastore(vs, ds, naa)
            made = vmware.create_vm(vs, vmware.vm_spec(vm, [ds], 0.25, GUEST))
            vmware.wait_task(made.PowerOnVM_Task())
            info = vmware.wait_guest(made, 120)
            if info.get("guestinfo.exitcode") != "0":
                raise RuntimeError(info.get("guestinfo.output", "")[-200:])
        finally:
            vmware.destroy_vm(vs, vm)
            vmware.remove_datastore(vs, ds)
            datera.delete_volume(vol)
            vmware.rescan_until(vs, [naa], present=False, timeout=120)
        with lock:
            times.append(time.perf_counter() - t0)

    def worker(w: int) -> None:
        vs = vmware.connect(settings)
        prefix = f"vancouver-bench{uuid.uuid4().hex[:4]}-w{w}"
        try:
            for i in range(n):
                try:
                    one(vs, prefix, i)
                except Exception as e:   # counted and named; the bench goes on
                    with lock:
                        failures[0] += 1
                    print(f"  worker {w} cycle {i}: {type(e).__name__}: {str(e)[:160]}")
        finally:
            vs.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(times), failures[0]


def report(label: str, times: list[float], failures: int, wall: float) -> None:
    if not times:
        print(f"{label}: no cycle completed ({failures} failed)")
        return
    print(f"{label}: {len(times)} cycles in {wall:.1f} s, p50 {statistics.median(times):.2f} s, "
          f"p95 {pct(times, 0.95):.2f} s, max {times[-1]:.2f} s, "
          f"{60 * len(times) / wall:.1f} cycles/min, {failures} failed")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=4, help="cycles per worker")
    parser.add_argument("--target", help="target.yaml with datera and vsphere sections")
    args = parser.parse_args(argv)
    env = dict(os.environ, VANCOUVER_LAB_NET=(os.environ.get("VANCOUVER_LAB_NET") or "127.232"))
    with tempfile.TemporaryDirectory(prefix="bench-vmware-") as tmp:
        if not args.target:
            os.environ["VANCOUVER_LAB_NET"] = env["VANCOUVER_LAB_NET"]
        with _lab.target_or_own_lab(args.target, Path(tmp) / "lab", env, "--only",
                                    "datera,ldap,vsphere", timeout=600) as target:
            t0 = time.perf_counter()
            one, f1 = run_cycles(target, 1, args.cycles)
            report("1 worker (reference)", one, f1, time.perf_counter() - t0)
            t0 = time.perf_counter()
            many, fn = run_cycles(target, args.workers, args.cycles)
            report(f"{args.workers} workers", many, fn, time.perf_counter() - t0)
            if one and many:
                print(f"p50 ratio {args.workers} workers / 1 worker: "
                      f"x{statistics.median(many) / statistics.median(one):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
