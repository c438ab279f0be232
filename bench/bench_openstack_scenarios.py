"""The OpenStack pieces of the demo: iterations per minute per piece and cloud with `-n 5`,
a p50/p95 table of step durations (so demo.yaml's booth pacing is set from numbers), and the
time the lab's Cinder takes to make a Datera volume from a large-virtual qcow2 (qemu-img
convert onto the volume over NBD), with `nbdinfo --map` of the result.

    .venv/bin/python bench/bench_openstack_scenarios.py [--duration 300] [--workers 5]
        [--profile ci] [--target TARGET_YAML] [--convert-gib 10] [--skip-run]

Without --target it starts a lab of its own (VANCOUVER_LAB_NET, default 127.232, tmp run
dir) and stops it after. A measurement, never an assertion.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import _lab  # bench/, the script's own directory, is on sys.path
from _table import print_table  # bench/, the script's own directory, is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))



def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def run_scenarios(target: Path, args, env, tmp: Path) -> None:
    jsonl = tmp / "reports" / "results.jsonl"
    cmd = [sys.executable, "-m", "pytest", "scenarios/openstack/", "-p", "no:cacheprovider",
           "--target", str(target), "-n", str(args.workers), "--count=0",
           "--duration", f"{args.duration:.0f}s", "--demo-profile", args.profile,
           "--html", str(tmp / "reports" / "report.html")]
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=args.duration + 1800)
    wall = time.monotonic() - t0
    rows = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    print(f"scenarios/openstack/ -n {args.workers} --duration {args.duration:.0f}s "
          f"({args.profile}): {len(rows)} iterations in {wall:.0f} s wall")
    per = defaultdict(list)
    for r in rows:
        per[r["nodeid"].split("::", 1)[1]].append(r)
    print_table(["piece [cloud]", "iter", "passed", "iter/min", "mean s"],
                [[node, len(rs), sum(r["outcome"] == "passed" for r in rs),
                  len(rs) / (args.duration / 60), statistics.mean(r["duration"] for r in rs)]
                 for node, rs in sorted(per.items())], formats={3: "{:.2f}", 4: "{:.1f}"})
    pieces = defaultdict(list)
    for node, rs in per.items():
        pieces[node.split("[", 1)[0]] += rs
    print()
    print_table(["piece (all clouds)", "iter", "iter/min", "p50 s", "p95 s"],
                [[piece, len(rs), len(rs) / (args.duration / 60),
                  pct([r["duration"] for r in rs], .5), pct([r["duration"] for r in rs], .95)]
                 for piece, rs in sorted(pieces.items())],
                formats={2: "{:.2f}", 3: "{:.1f}", 4: "{:.1f}"})
    steps = defaultdict(list)
    for r in rows:
        piece = r["nodeid"].split("::", 1)[1].split("[", 1)[0]
        for name, d in (r.get("steps") or {}).items():
            steps[(piece, name)].append(d)
    print()
    print_table(["piece / step", "n", "p50 s", "p95 s"],
                [[f"{piece} / {name[:62]}", len(ds), pct(ds, .5), pct(ds, .95)]
                 for (piece, name), ds in sorted(steps.items())],
                formats={2: "{:.2f}", 3: "{:.2f}"})


def convert(target: Path, gib: int, tmp: Path) -> None:
    """Cinder create-from-image of a `gib`-GiB-virtual qcow2 holding a few MiB, on Datera."""
    from fixtures import transport
    from fixtures.datera import settings_from_target
    from fixtures.openstack import images
    from fixtures.openstack.clouds import Clouds
    from fixtures.openstack.factories import connector
    from fixtures.target import Target
    t = Target.load(target)
    clouds = Clouds(t)
    key = next(iter(clouds.clouds))
    conn = clouds.connect(key)
    admin = clouds.connect(key, admin=True)
    name = f"vancouver-bench-convert-{os.getpid()}"
    img = images.make_qcow2(tmp, name, gib)
    image = images.upload(conn, name, img, gib)
    vt = admin.block_storage.create_type(name=name, extra_specs={
        "volume_backend_name": clouds.cloud(key).datera_backend, "DF:replica_count": "1"})
    vol = None
    try:
        t0 = time.monotonic()
        vol = conn.block_storage.create_volume(name=name, size=gib, image_id=image.id,
                                               volume_type=vt.name)
        vol = conn.block_storage.wait_for_status(vol, "available", failures=["error"],
                                                 wait=3600)
        took = time.monotonic() - t0
        print(f"\nCinder volume from a {gib} GiB-virtual qcow2 holding "
              f"{img.data_bytes / 2**20:.1f} MiB (qemu-img convert -O raw -n over NBD): "
              f"{took:.1f} s (goal for 100 GiB: under 2 s)")
        iqn = f"iqn.2026-11.lab.vancouver:{name}"
        info = conn.block_storage.init_volume_attachment(vol, connector(iqn))["data"]
        chap = ((info["auth_username"], info["auth_password"])
                if info.get("auth_method") == "CHAP" else None)
        dev = transport.for_settings(settings_from_target(t)).connect(
            portal=info["target_portal"].rsplit(":", 1)[0], initiator=iqn,
            target=info["target_iqn"], label=name, chap=chap)
        mp = subprocess.run(["nbdinfo", "--map", dev.nbd_uri], capture_output=True, text=True,
                            timeout=120)
        lines = (mp.stdout or mp.stderr).strip().splitlines()
        print(f"nbdinfo --map ({len(lines)} extents):")
        for ln in lines[:6]:
            print(f"  {ln}")
        conn.block_storage.terminate_volume_attachment(vol, connector(iqn))
    finally:
        if vol is not None:
            conn.block_storage.delete_volume(vol.id, ignore_missing=True)
            conn.block_storage.wait_for_delete(vol, wait=600)
        conn.image.delete_image(image.id, ignore_missing=True)
        admin.block_storage.delete_type(vt.id, ignore_missing=True)


def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    ap.add_argument("--workers", type=int, default=5)
    ap.add_argument("--profile", default="ci", choices=("ci", "booth"))
    ap.add_argument("--target", help="an existing target.yaml (default: a lab of its own)")
    ap.add_argument("--convert-gib", type=int, default=10,
                    help="virtual GiB of the conversion test (the issue: 100)")
    ap.add_argument("--skip-run", action="store_true", help="only the conversion figure")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-os-"))
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.232"))
    env.pop("VANCOUVER_TARGET", None)
    with _lab.target_or_own_lab(args.target, tmp / "lab", env, timeout=600) as target:
        if not args.skip_run:
            run_scenarios(target, args, env, tmp)
        if args.convert_gib:
            convert(target, args.convert_gib, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
