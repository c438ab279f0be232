"""The compute host's disk relay (lab/openstack/nova/disk_relay.py): fio IOPS through the relay
vs straight to the same export, and the guest's pause during a pivot (quiesce + nbdcopy of
what the export holds + reconnect). A measurement, not a test: it prints figures and ratios.

    .venv/bin/python bench/bench_disk_relay.py [--runtime 5] [--iodepth 16] [--rounds 2]

Export: nbdkit's memory plugin on a unix socket (the lab's data plane has QoS and metrics of
its own; bench_dataplane.py measures those), so only the relay's cost is in the ratio.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab.openstack.nova.disk_relay import DiskRelay  # noqa: E402


def nbdkit(path: Path) -> subprocess.Popen:
    p = subprocess.Popen(["nbdkit", "-f", "-U", str(path), "memory", "1G"])
    deadline = time.monotonic() + 10
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit("nbdkit did not start")
        time.sleep(0.02)
    return p


def fio_iops(uri: str, rw: str, runtime: int, iodepth: int) -> float:
    r = subprocess.run(["fio", "--name=b", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}",
                        "--bs=4k", "--size=256m", f"--iodepth={iodepth}", "--time_based",
                        f"--runtime={runtime}", "--output-format=json"],
                       capture_output=True, text=True, timeout=runtime + 60)
    job = json.loads(r.stdout[r.stdout.index("{"):])["jobs"][0]
    if job["error"]:
        raise SystemExit(f"fio error {job['error']}: {r.stderr[-300:]}")
    return job["read" if "read" in rw else "write"]["iops"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", type=int, default=5)
    ap.add_argument("--iodepth", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    old, new = nbdkit(d / "old.sock"), nbdkit(d / "new.sock")
    old_uri, new_uri = f"nbd+unix:///?socket={d}/old.sock", f"nbd+unix:///?socket={d}/new.sock"
    relay = DiskRelay(d / "vdb.sock", old_uri)
    try:
        for rw in ("randwrite", "randread"):
            for n in range(a.rounds):
                direct = fio_iops(old_uri, rw, a.runtime, a.iodepth)
                relayed = fio_iops(relay.uri, rw, a.runtime, a.iodepth)
                print(f"{rw:9} round {n + 1}: direct {direct:8.0f} IOPS, through the relay "
                      f"{relayed:8.0f} IOPS, ratio {relayed / direct:.2f}", flush=True)
        # the pause a running guest sees: pivot while fio writes (256 MiB written above)
        p = subprocess.Popen(["fio", "--name=p", "--ioengine=nbd", f"--uri={relay.uri}",
                              "--rw=randwrite", "--bs=4k", "--size=256m", "--time_based",
                              f"--runtime={a.runtime}", f"--iodepth={a.iodepth}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = threading.Event()
        threading.Timer(1.0, started.set).start()
        started.wait()
        t0 = time.monotonic()
        relay.pivot(new_uri)
        print(f"pivot with 256 MiB held: guest paused {time.monotonic() - t0:.2f} s "
              f"(nbdcopy + reconnect)", flush=True)
        p.wait(a.runtime + 60)
    finally:
        relay.close()
        for s in (old, new):
            s.terminate()
            s.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
