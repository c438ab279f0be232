"""Image conversion onto a volume: the time of `qemu-img convert -n -O raw` of a qcow2 with a
large virtual size (default 100 GiB) holding a few MiB of data, onto a lab volume over NBD,
next to the same convert onto `nbdkit memory` and `nbdkit file` (a sparse file) in the same
run. A measurement, not a test: it prints the times (the goal for the lab is under 2 s,
because only the data is written and the zeros are WRITE_ZEROES), the volume's allocated
bytes, whether `qemu-img compare` agrees, and `nbdinfo --map --totals` of each target.

    .venv/bin/python bench/bench_image_convert.py [--virtual-gib 100] [--rounds 3]

The lab's data plane runs in a process of its own on uvloop (bench/bench_dataplane.py
--serve), serving a sparse file through the real initiator login. Addresses:
<VANCOUVER_LAB_NET>.71.3 (lab), .71.4 (nbdkit memory), .71.5 (nbdkit file), so neither a
running lab nor bench_dataplane is disturbed.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_dataplane import (INITIATOR, LOGIN_PORT, NBD_PORT, TARGET,  # noqa: E402
                                   wait_port, wait_ready)
from lab import topology  # noqa: E402

MiB, GiB = 1 << 20, 1 << 30
LAB_IP, MEMORY_IP, FILE_IP = (f"{topology.NET}.71.{i}" for i in (3, 4, 5))
# (offset as a fraction of the virtual size, MiB of data, byte pattern), written by qemu-io
DATA = [(0.0, 1, 0xAB), (0.5, 2, 0xCD), (0.9, 1, 0xEF)]


def run(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode not in (0, 1) or (r.returncode == 1 and argv[:2] != ("qemu-img", "compare")):
        raise SystemExit(f"{' '.join(argv[:3])} failed ({r.returncode}): {r.stderr.strip()[-300:]}")
    return r


def make_image(path: Path, virtual: int) -> int:
    """The qcow2; returns its data bytes."""
    run("qemu-img", "create", "-q", "-f", "qcow2", str(path), str(virtual))
    writes = []
    for frac, mib, pattern in DATA:
        offset = int(virtual * frac) // MiB * MiB
        writes += ["-c", f"write -q -P {pattern:#x} {offset} {mib}M"]
    run("qemu-io", "-f", "qcow2", *writes, str(path))
    return sum(mib for _, mib, _ in DATA) * MiB


def convert(image: Path, uri: str) -> float:
    t0 = time.perf_counter()
    run("qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", str(image), uri)
    return time.perf_counter() - t0


def map_totals(uri: str) -> str:
    """`nbdinfo --map --totals`: bytes and share per allocation type, one line."""
    out = run("nbdinfo", "--map", "--totals", uri).stdout.strip().splitlines()
    return "; ".join(" ".join(line.split()) for line in out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--virtual-gib", type=int, default=100, help="the image's virtual size")
    ap.add_argument("--rounds", type=int, default=3, help="converts per target (best is shown)")
    args = ap.parse_args()
    virtual = args.virtual_gib * GiB
    from clients.initiator import login

    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        tmp = Path(tmp)
        image = tmp / "image.qcow2"
        data = make_image(image, virtual)
        sparse = tmp / "nbdkit-file.raw"
        sparse.touch()
        os.truncate(sparse, virtual)
        lab = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "bench_dataplane.py"), "--serve",
             str(tmp / "data"), "--serve-ip", LAB_IP, "--serve-size", str(virtual)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=REPO)
        kits = [subprocess.Popen(["nbdkit", "-f", "-i", ip, "-p", str(NBD_PORT), *plugin],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for ip, plugin in ((MEMORY_IP, ["memory", str(virtual)]),
                                   (FILE_IP, ["file", str(sparse)]))]
        try:
            wait_ready(lab, "the lab's data plane")
            for ip in (MEMORY_IP, FILE_IP):
                wait_port(ip, NBD_PORT, "nbdkit")
            targets = {
                "lab": login(LAB_IP, LOGIN_PORT, INITIATOR, TARGET)[0].uri,
                "nbdkit memory": f"nbd://{MEMORY_IP}:{NBD_PORT}",
                "nbdkit file": f"nbd://{FILE_IP}:{NBD_PORT}",
            }
            times = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, uri in targets.items():
                    times[name].append(convert(image, uri))
            same = {name: run("qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw",
                              str(image), uri).returncode == 0 for name, uri in targets.items()}
            maps = {name: map_totals(uri) for name, uri in targets.items()}
            lab_map = run("nbdinfo", "--map", targets["lab"]).stdout.rstrip()
            volume = tmp / "data" / "volumes" / "bench-volume.img"
            allocated = os.stat(volume).st_blocks * 512
        finally:
            lab.stdin.close()
            for p in kits:
                p.terminate()
            for p in (lab, *kits):
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    print(f"qemu-img convert -n -O raw of a qcow2 of {args.virtual_gib} GiB virtual holding "
          f"{data / MiB:.0f} MiB, best of {args.rounds}:")
    for name in targets:
        print(f"  {name:14s} {min(times[name]):6.2f} s   (all: "
              f"{', '.join(f'{t:.2f}' for t in times[name])})   compare: "
              f"{'identical' if same[name] else 'DIFFERENT'}")
    print(f"  ratio lab/nbdkit memory: {min(times['lab']) / min(times['nbdkit memory']):.2f}; "
          f"goal for the lab: under 2 s")
    print(f"  lab volume allocated: {allocated / MiB:.1f} MiB of {virtual / GiB:.0f} GiB")
    for name, totals in maps.items():
        print(f"  nbdinfo --map --totals, {name}: {totals}")
    print("  nbdinfo --map, lab (offset, length, type):")
    print("\n".join(f"    {line.strip()}" for line in lab_map.splitlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
