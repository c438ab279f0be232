"""Demonstrate performance: the workload set storage engineers expect from HCIBench's easy
run and kubestr's fio check, unthrottled, on volumes spread over both Datera VIPs.

The story: two volumes without a performance policy, one logged in through VIP1 and one
through VIP2, each workload runs on both at once; the table shows IOPS, MiB/s and the p95 /
p99 completion latency per workload next to this worker's previous iterations, so a drop is
visible. The dashboard shows the same figures across all workers (its fio panel).

Unthrottled means outside the demo tenants (they carry the tenant cap): the volumes live in
the root tenant, made by the target's admin account, as a storage engineer's check would.
Latency comes from fio's completion-latency percentiles (clat, ms), the larger of the two
volumes (the slower path decides).
"""
import collections
import contextlib

from fixtures.workload import FioJob, FioRun, parse_output

ROOT = "/root"
# (label, fio options): 4 KiB random read/write, 8 KiB 70/30 random mix, 64 KiB sequential.
WORKLOADS = (
    ("4k randread", dict(rw="randread", bs="4k")),
    ("4k randwrite", dict(rw="randwrite", bs="4k")),
    ("8k randrw 70/30", dict(rw="randrw", bs="8k", extra=("--rwmixread=70",))),
    ("64k seq read", dict(rw="read", bs="64k")),
    ("64k seq write", dict(rw="write", bs="64k")),
)
HISTORY = 4  # previous iterations of this worker shown beside the current one
_history: dict[str, collections.deque] = collections.defaultdict(
    lambda: collections.deque(maxlen=HISTORY))


def _percentile_ms(job: dict, pct: str) -> float:
    """The larger of read and write completion-latency percentile `pct` ("95.000000"), ms."""
    values = [float(job.get(d, {}).get("clat_ns", job.get(d, {}).get("lat_ns", {}))
                    .get("percentile", {}).get(pct, 0)) for d in ("read", "write")
              if job.get(d, {}).get("total_ios")]
    return round(max(values, default=0.0) / 1e6, 2)


def _measure(devices, job: FioJob, workdir) -> dict:
    """One workload on every device at once: summed IOPS and MiB/s, worst p95/p99 (ms)."""
    runs = [FioRun(d, job, name=f"perf{i}", workdir=workdir / f"dev{i}")
            for i, d in enumerate(devices)]
    try:
        results = [r.result() for r in runs]
    finally:
        for r in runs:
            r.stop()
    docs = [parse_output((workdir / f"dev{i}" / f"perf{i}.json").read_text())["jobs"][0]
            for i in range(len(devices))]
    return {"iops": round(sum(r.iops for r in results)),
            "MiB/s": round(sum(r.read.bw_kib + r.write.bw_kib for r in results) / 1024, 1),
            "lat p95 ms": max(_percentile_ms(d, "95.000000") for d in docs),
            "lat p99 ms": max(_percentile_ms(d, "99.000000") for d in docs)}


def test_performance(demo, datera_admin, datera_settings, make_datera_volume,
                     attach_datera_volume, qos_windows, proof, tmp_path):
    # a third of the profile's fio time per workload: five workloads hold every QoS check
    # of the run off the array (fixtures/headroom.py), so the window stays short
    runtime = max(2, int(demo.fio.runtime_s) // 3)
    with proof.step("create two unthrottled volumes, one behind each VIP"):
        vols = [make_datera_volume(datera_admin, ROOT, label=f"perf{i}") for i in (1, 2)]
        devices = [attach_datera_volume(v, portal_index=i) for i, v in enumerate(vols)]
        proof.figure("portals", ", ".join(v.portals[i] for i, v in enumerate(vols)))

    rows = []
    with contextlib.ExitStack() as window:
        with proof.step("wait until no QoS check is measuring (the array to ourselves)"):
            window.enter_context(qos_windows.saturation())
        _run_workloads(demo, devices, runtime, proof, tmp_path, rows)
    proof.table(f"Performance, unthrottled, {runtime} s per workload, iodepth "
                f"{demo.fio.iodepth} per volume", rows)


def _run_workloads(demo, devices, runtime, proof, tmp_path, rows) -> None:
    for label, opts in WORKLOADS:
        job = FioJob(iodepth=demo.fio.iodepth, runtime_s=runtime, **opts)
        with proof.step(f"fio {label}"):
            figures = _measure(devices, job, tmp_path / label.replace(" ", "_").replace("/", "-"))
        proof.fio(label, {"device": f"{len(devices)} volumes (VIP1 + VIP2)", "rw": job.rw,
                          "bs": job.bs, "iodepth": job.iodepth, **figures})
        proof.figure(f"{label} IOPS", figures["iops"])
        previous = list(_history[label])
        rows.append({"workload": label, **figures,
                     **{f"IOPS, {len(previous) - i} before": p["iops"]
                        for i, p in enumerate(previous)}})
        _history[label].append(figures)
        assert figures["iops"] > 0, f"{label}: fio completed no I/O"
