"""Data-plane throughput: unthrottled 4 KiB randwrite IOPS at QD16 (one connection, 10 s) with
fio's nbd engine, through the lab's data plane and through `nbdkit memory`, in the same run.
A measurement, not a test: it prints both figures and their ratio (the goal is >= 0.8) and
asserts nothing.

    .venv/bin/python bench/bench_dataplane.py [--runtime 10] [--rounds 1]

The lab's data plane runs in a process of its own on uvloop, as `python -m lab.datera` runs it,
serving a sparse file (page cache) through the real initiator login; nbdkit serves RAM. Both
exports are pre-filled with a sequential 1 MiB write first (reference pytest-fio §2.3). The
addresses are <VANCOUVER_LAB_NET>.71.1 (lab) and .71.2 (nbdkit), so a running lab is not
disturbed. The machine has 2 cores: fio takes one, the server the other, and anything else
running at the same time lowers both figures.
"""
import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from clients import ports  # noqa: E402
from fixtures import workload  # noqa: E402
from lab import topology  # noqa: E402

TARGET = "iqn.2013-05.com.daterainc:tc:01:sn:bench000000000000"
INITIATOR = "iqn.1993-08.org.debian:01:bench"
SIZE = 1 << 30
LAB_IP, NBDKIT_IP = f"{topology.NET}.71.1", f"{topology.NET}.71.2"
NBD_PORT, LOGIN_PORT = ports.NBD, ports.ISCSI


# ---- the lab's data plane, in a process of its own ------------------------------------------

def serve(data_dir: Path, ip: str = LAB_IP, size: int = SIZE):
    """Serves one volume of `size` bytes to the bench's initiator on ip until stdin closes;
    prints `ready` once listening (also used by bench/bench_image_convert.py)."""
    import uvloop
    from lab.datera.contract import VolumeHandle
    from lab.datera.dataplane import DataPlane
    from lab.datera.metrics import Metrics

    vol = VolumeHandle("bench-volume", "/root/bench", "bench-ai", size)

    class OneTarget:
        """Admits the bench's initiator to the bench's one volume (the model is not measured)."""
        def login(self, *, initiator, target, portal, chap_user, chap_response_check):
            from lab.datera.contract import LoginRefused
            if (initiator, target) != (INITIATOR, TARGET):
                raise LoginRefused("not the bench's initiator and target")
            return [vol]

        def may_access(self, *, initiator, vol_uuid):
            return initiator == INITIATOR and vol_uuid == vol.uuid

    async def main():
        dp = DataPlane(data_dir=data_dir, metrics=Metrics(), vips=[ip], nbd_port=NBD_PORT,
                       login_port=LOGIN_PORT)
        dp.bind(OneTarget())
        await dp.start()
        dp.volume_created(vol)
        print("ready", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)  # parent closes stdin
        await stop.wait()
        await dp.stop()

    uvloop.run(main())


# ---- the measurement ------------------------------------------------------------------------

def fio(uri: str, workdir: Path, name: str, *args: str) -> dict:
    out = workdir / f"{name}.json"
    proc = subprocess.run(["fio", f"--name={name}", "--ioengine=nbd", f"--uri={uri}",
                           "--output-format=json", f"--output={out}", *args],
                          cwd=workdir, capture_output=True, text=True, timeout=300)
    text = out.read_text() if out.exists() else ""
    if proc.returncode != 0 or "{" not in text:
        raise SystemExit(f"fio {name} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    job = workload.parse_output(text)["jobs"][0]
    if job["error"]:
        raise SystemExit(f"fio {name}: error {job['error']}")
    return job["write"]


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def measure(uri: str, workdir: Path, runtime: int, label: str, pid: int) -> tuple:
    """(IOPS, mean latency in us, server CPU in us per op)."""
    fio(uri, workdir, f"{label}-fill", "--rw=write", "--bs=1M", "--iodepth=8", "--size=256M")
    cpu = cpu_seconds(pid)
    w = fio(uri, workdir, f"{label}-randwrite", "--rw=randwrite", "--bs=4k", "--iodepth=16",
            "--size=256M", f"--runtime={runtime}", "--time_based", "--lat_percentiles=1")
    cpu = cpu_seconds(pid) - cpu
    return w["iops"], w["lat_ns"]["mean"] / 1000, 1e6 * cpu / max(1, w["total_ios"])


def wait_ready(proc: subprocess.Popen, what: str):
    line = proc.stdout.readline()
    if line.strip() != "ready":
        raise SystemExit(f"{what} did not start: {proc.stderr.read().strip()[-300:]}")


def wait_port(ip: str, port: int, what: str, timeout: float = 10):
    import socket
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((ip, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} is not listening on {ip}:{port}")
            time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", type=int, default=10, help="seconds per randwrite run")
    ap.add_argument("--rounds", type=int, default=1, help="alternate lab/nbdkit this many times")
    ap.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    ap.add_argument("--serve-ip", default=LAB_IP, help=argparse.SUPPRESS)
    ap.add_argument("--serve-size", type=int, default=SIZE, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(Path(args.serve), args.serve_ip, args.serve_size)
        return 0
    from clients.initiator import login

    with tempfile.TemporaryDirectory(prefix="bench-dataplane-") as tmp:
        tmp = Path(tmp)
        lab = subprocess.Popen([sys.executable, __file__, "--serve", str(tmp / "data")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=REPO)
        nbdkit = subprocess.Popen(["nbdkit", "-f", "-i", NBDKIT_IP, "-p", str(NBD_PORT), "memory",
                                   str(SIZE)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_ready(lab, "the lab's data plane")
            wait_port(NBDKIT_IP, NBD_PORT, "nbdkit")
            lab_uri = login(LAB_IP, LOGIN_PORT, INITIATOR, TARGET)[0].uri
            results = {"lab": [], "nbdkit": []}
            for _ in range(args.rounds):
                results["lab"].append(measure(lab_uri, tmp, args.runtime, "lab", lab.pid))
                results["nbdkit"].append(measure(f"nbd://{NBDKIT_IP}:{NBD_PORT}", tmp,
                                                 args.runtime, "nbdkit", nbdkit.pid))
        finally:
            lab.stdin.close()
            nbdkit.terminate()
            for p in (lab, nbdkit):
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    best = {k: max(v) for k, v in results.items()}
    print(f"4 KiB randwrite, QD16, 1 connection, {args.runtime} s, best of {args.rounds}:")
    for name in ("lab", "nbdkit"):
        iops, lat, cpu = best[name]
        print(f"  {name:7s} {iops:10,.0f} IOPS   mean latency {lat:7.1f} us   "
              f"server CPU {cpu:5.1f} us/op")
    ratio = best["lab"][0] / best["nbdkit"][0]
    print(f"  ratio lab/nbdkit: {ratio:.2f} (goal >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
