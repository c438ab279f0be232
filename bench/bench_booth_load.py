"""The booth demo's load on this machine: where the CPU goes while `pytest -n 5 --count=0
scenarios/` runs, and what one fio at the gold tier reaches idle and with the demo running.

    .venv/bin/python bench/bench_booth_load.py [--warmup 60] [--seconds 10] [--rounds 3]
        [--workers 5] [--profile ci] [--target TARGET_YAML]

Without --target it starts a lab of its own (VANCOUVER_LAB_NET, default 127.233, tmp run dir)
and stops it after. Steps, in one run so the figures compare:
1. idle: one 4 KiB random-write fio (QD16) on a gold-tier volume of the root tenant (policy
   total_iops_max = the profile's gold, no tenant cap), `--seconds` long, `--rounds` times;
2. the demo starts (`--workers` xdist workers, `--count=0`); after `--warmup` seconds the same
   fio runs `--rounds` times while the demo runs, and the CPU of every process is sampled over
   the same seconds and summed per part (the lab's Datera data plane and API, the OpenStack
   services with their guests' relays, the Kubernetes apiserver/etcd/controllers and the
   lab's kubelet and CSI, the guests' and scenarios' fio, the pytest controller and workers,
   and everything else on the machine, other users included).
Prints the IOPS (median of rounds), their ratio (loaded / idle), the gold limit, the load
average and the CPU table (percent of one core). A measurement, never an assertion.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

import _lab  # noqa: E402  (bench/ is the script's own directory)

PARTS = (  # (part, test on the command line), first match wins
    ("lab: Datera (API + data plane)", lambda c: "lab.datera" in c),
    ("lab: OpenStack (APIs, Cinder, Nova guests' relays)", lambda c: "lab.openstack" in c),
    ("lab: Kubernetes (kubelet, CSI)", lambda c: "lab.kubernetes" in c),
    ("Kubernetes control plane (apiserver, etcd, ...)",
     lambda c: any(k in c for k in ("kube-apiserver", "kube-controller", "kube-scheduler",
                                    "etcd"))),
    ("lab: other (supervisor, LDAP, vSphere)",
     lambda c: any(k in c for k in ("lab _supervise", "slapd", "vcsim", "lab.vsphere"))),
    ("fio (guests, pods, scenarios)", lambda c: c.startswith("fio") or "/fio " in c),
    ("qemu-img / nbdcopy", lambda c: c.startswith(("qemu-img", "nbdcopy", "nbdinfo"))),
    ("pytest controller + workers", lambda c: "pytest" in c or "execnet" in c
     or "exec(eval(sys.stdin.readline()))" in c),
)


def _part(cmd: str) -> str:
    for name, test in PARTS:
        if test(cmd):
            return name
    return "this demo: other processes"


OTHERS = "everything else (other users too)"


def cpu_by_part(seconds: float, demo_pid: int, marks: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds per part over `seconds` of wall time, as percent of one core. A process is
    this demo's when it descends from the demo's pytest (`demo_pid`) or its command line names
    the lab (`marks`: its run dir, its net); every other process (other users' runs too) is
    OTHERS."""
    def ours(p, cmd: str) -> bool:
        if any(m in cmd for m in marks):
            return True
        try:
            return p.pid == demo_pid or any(a.pid == demo_pid for a in p.parents())
        except psutil.Error:
            return False

    def snap():
        out = {}
        for p in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
            try:
                t = p.info["cpu_times"]
                cmd = " ".join(p.info["cmdline"] or [])
                out[p.info["pid"]] = (cmd if ours(p, cmd) else "", t.user + t.system)
            except (psutil.Error, TypeError):
                continue
        return out
    before, t0 = snap(), time.monotonic()
    time.sleep(seconds)   # the measurement window itself
    after, wall = snap(), time.monotonic() - t0
    parts: dict[str, float] = defaultdict(float)
    for pid, (cmd, cpu) in after.items():
        parts[_part(cmd) if cmd else OTHERS] += cpu - before.get(pid, (cmd, 0.0))[1]
    return {k: 100 * v / wall for k, v in parts.items()}


def gold_fio(target: Path, seconds: float, rounds: int, gold: int) -> list[float]:
    """IOPS of `rounds` fio runs on one gold-tier volume of the root tenant."""
    from fixtures import datera
    from fixtures.target import Target
    from fixtures.workload import FioJob, run_fio
    settings = datera.settings_from_target(Target.load(target))
    api = datera.connect(settings)
    _vol, dev, undo = _volume(api, settings, f"vancouver-bench-gold-{os.getpid()}-"
                              f"{int(time.time())}", gold)
    try:
        return [run_fio(dev, FioJob(rw="randwrite", bs="4k", iodepth=16,
                                    runtime_s=seconds)).iops for _ in range(rounds)]
    finally:
        undo()


def _volume(api, settings, name: str, limit: int):
    """A 1 GiB root-tenant volume with `limit` IOPS (0: none), attached: (vol, device, undo)."""
    from fixtures import datera, transport
    iqn = f"iqn.2026-11.lab.vancouver:{name}"
    vol = datera.create_volume(api, "/root", name, 1,
                               policy={"total_iops_max": limit} if limit else None)
    tp = transport.for_settings(settings)

    def undo():
        datera.delete_volume(vol)
        datera.delete_initiator(api, "/root", iqn)
    try:
        datera.allow_initiator(vol, iqn, label=name)
        return vol, tp.connect(portal=vol.portals[0], initiator=iqn, target=vol.iqn,
                               label=name), undo
    except Exception:
        undo()
        raise


def cpu_per_op(target: Path, limits=(0, 500, 1000, 2000), seconds: float = 6.0) -> list[dict]:
    """CPU microseconds per op of the lab's data plane and of fio, for an unthrottled fio
    (limit 0) and for QoS-paced ones (fixtures/headroom.py weighs claims by the ratio)."""
    from fixtures import datera
    from fixtures.target import Target
    from fixtures.workload import FioJob, FioRun
    settings = datera.settings_from_target(Target.load(target))
    api = datera.connect(settings)
    run_dir = str(target.parent.parent)
    dp = next(p for p in psutil.process_iter(["cmdline"])
              if "lab.datera" in " ".join(p.info["cmdline"] or [])
              and run_dir in " ".join(p.info["cmdline"] or []))
    rows = []
    for limit in limits:
        vol, dev, undo = _volume(api, settings, f"vancouver-bench-cost-{limit}-{os.getpid()}",
                                 limit)
        try:
            run = FioRun(dev, FioJob(rw="randwrite", bs="4k", iodepth=16,
                                     runtime_s=seconds + 3))
            time.sleep(1.5)   # past fio's start-up, whose CPU is not per op
            fios = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "fio"]

            def cpu(procs):
                total = 0.0
                for p in procs:
                    try:
                        t = p.cpu_times()
                        total += t.user + t.system
                    except psutil.Error:
                        pass
                return total
            d0, f0, t0 = cpu([dp]), cpu(fios), time.monotonic()
            time.sleep(seconds)   # the measurement window itself
            d1, f1, wall = cpu([dp]), cpu(fios), time.monotonic() - t0
            iops = run.result().iops
        finally:
            undo()
        rows.append({"limit": limit, "iops": iops, "dp_us": 1e6 * (d1 - d0) / wall / iops,
                     "fio_us": 1e6 * (f1 - f0) / wall / iops})
    return rows


def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=float, default=60.0, help="s of demo before measuring")
    ap.add_argument("--seconds", type=float, default=10.0, help="s per fio round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=5)
    ap.add_argument("--profile", default="ci", choices=("ci", "booth"))
    ap.add_argument("--target", help="an existing target.yaml (default: a lab of its own)")
    args = ap.parse_args(argv)
    from fixtures import config
    gold = max(t.total_iops_max for t in config.load(ROOT / "demo.yaml", args.profile)
               .tiers.values())
    tmp = Path(tempfile.mkdtemp(prefix="bench-booth-"))
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.233"))
    env.pop("VANCOUVER_TARGET", None)
    with _lab.target_or_own_lab(args.target, tmp / "lab", env, timeout=600) as target:
        demo = None
        try:
            idle = gold_fio(target, args.seconds, args.rounds, gold)
            costs = cpu_per_op(target)
            demo = subprocess.Popen(
                [sys.executable, "-m", "pytest", "scenarios/", "-p", "no:cacheprovider",
                 "--target", str(target), "-n", str(args.workers), "--count=0",
                 "--demo-profile", args.profile, "--html", str(tmp / "reports" / "report.html")],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            deadline = time.monotonic() + args.warmup
            while time.monotonic() < deadline and demo.poll() is None:
                time.sleep(1)   # the demo warming up: nothing to wait for but time
            load_cpu: dict = {}
            loaded: list[float] = []
            marks = (str(target.parent.parent), f"{env['VANCOUVER_LAB_NET']}.")
            sampler = threading.Thread(target=lambda: load_cpu.update(
                cpu_by_part(args.seconds * args.rounds, demo.pid, marks)))
            sampler.start()
            loaded = gold_fio(target, args.seconds, args.rounds, gold)
            sampler.join()
            la = os.getloadavg()
        finally:
            if demo is not None and demo.poll() is None:
                os.killpg(demo.pid, signal.SIGINT)      # the demo's own clean stop
                try:
                    demo.wait(600)
                except subprocess.TimeoutExpired:
                    os.killpg(demo.pid, signal.SIGKILL)
    med_idle, med_loaded = statistics.median(idle), statistics.median(loaded)
    print(f"one fio, 4 KiB randwrite QD16, gold tier ({gold} IOPS), {args.seconds:.0f} s x "
          f"{args.rounds} (median):")
    rounds = lambda xs: ", ".join(f"{x:.0f}" for x in xs)
    print(f"  idle lab:                      {med_idle:8.0f} IOPS  ({rounds(idle)})")
    print(f"  with the demo (-n {args.workers}, {args.profile}): {med_loaded:8.0f} IOPS  "
          f"({rounds(loaded)})")
    print(f"  ratio loaded / idle: {med_loaded / med_idle:.2f}   load average "
          f"{la[0]:.1f} {la[1]:.1f} {la[2]:.1f} on {os.cpu_count()} cores")
    print("\nCPU per op, idle lab (4 KiB randwrite QD16; fixtures/headroom.py PACED_COST):")
    base = costs[0]["dp_us"] + costs[0]["fio_us"]
    for r in costs:
        per = r["dp_us"] + r["fio_us"]
        print(f"  limit {r['limit'] or 'none':>5}: {r['iops']:7.0f} IOPS  data plane "
              f"{r['dp_us']:6.1f} us  fio {r['fio_us']:6.1f} us  x{per / base:.1f} of unthrottled")
    print(f"\nCPU while the demo ran (percent of one core; {os.cpu_count()} cores = "
          f"{100 * os.cpu_count()}%):")
    for part, pct in sorted(load_cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {part:52} {pct:6.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
