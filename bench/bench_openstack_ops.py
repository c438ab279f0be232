"""OpenStack lab latencies through openstacksdk: volume create-to-available (ceph and datera)
and boot-from-volume-to-ACTIVE, p50/p99 per cloud.

    .venv/bin/python bench/bench_openstack_ops.py [--n 20] [--clouds mitaka,newton,pike]

Starts the default lab on its own network (VANCOUVER_LAB_NET, default 127.232) in a tmp run
dir, polls every 20 ms, deletes everything it made, and stops the lab. A measurement: it
asserts nothing.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openstack
import yaml

from _lab import lab  # bench/, the script's own directory, is on sys.path

REPO = Path(__file__).resolve().parent.parent
POLL_S = 0.02


def until(fetch, done, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        obj = fetch()
        if done(obj):
            return obj
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {getattr(obj, 'status', obj)!r}")
        time.sleep(POLL_S)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def line(what: str, secs: list[float]) -> str:
    ms = [s * 1000 for s in secs]
    return f"  {what:<34} p50 {statistics.median(ms):7.1f} ms   p99 {pct(ms, 99):7.1f} ms   (n={len(ms)})"


def bench_cloud(cfg, section: dict, name: str, n: int) -> None:
    entries = section["clouds"][name]
    conn = openstack.connection.Connection(config=cfg.get_one(cloud=entries["tenant_cloud"]))
    admin = openstack.connection.Connection(config=cfg.get_one(cloud=entries["admin_cloud"]))
    vtype = admin.block_storage.create_type(
        name=f"vancouver-bench-{int(time.time())}",
        extra_specs={"volume_backend_name": "datera", "DF:replica_count": "1"})
    made, servers = [], []
    try:
        print(f"{name}:")
        for label, type_name in (("volume create->available, ceph", None),
                                 ("volume create->available, datera", vtype.name)):
            secs = []
            for _ in range(n):
                t0 = time.monotonic()
                v = conn.block_storage.create_volume(size=1, volume_type=type_name,
                                                     name="vancouver-bench-vol")
                made.append(v)
                until(lambda: conn.block_storage.get_volume(v.id), lambda o: o.status == "available")
                secs.append(time.monotonic() - t0)
            print(line(label, secs))
        nets = {} if name == "mitaka" else {"networks": "auto"}
        secs = []
        for v in made[n:]:   # the datera volumes
            bdm = [{"boot_index": "0", "uuid": v.id, "source_type": "volume",
                    "destination_type": "volume", "delete_on_termination": False}]
            t0 = time.monotonic()
            s = conn.compute.create_server(name="vancouver-bench-srv", flavor_id="1",
                                           block_device_mapping=bdm, **nets)
            servers.append(s)
            until(lambda: conn.compute.get_server(s.id), lambda o: o.status in ("ACTIVE", "ERROR"))
            secs.append(time.monotonic() - t0)
        print(line("boot from datera volume->ACTIVE", secs))
    finally:
        for s in servers:
            conn.compute.delete_server(s, ignore_missing=True)
        for s in servers:
            conn.compute.wait_for_delete(s, wait=120)
        for v in made:
            until(lambda: conn.block_storage.get_volume(v.id), lambda o: o.status == "available")
            conn.block_storage.delete_volume(v, ignore_missing=True)
        for v in made:
            conn.block_storage.wait_for_delete(v, wait=120)
        admin.block_storage.delete_type(vtype, ignore_missing=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--clouds", default="mitaka,newton,pike")
    args = ap.parse_args(argv)
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.232"))
    with tempfile.TemporaryDirectory(prefix="bench-openstack-ops-") as tmp:
        run_dir = Path(tmp) / "lab"
        up = lab("up", run_dir=run_dir, env=env)
        if up.returncode != 0:
            print(f"bench_openstack_ops: lab did not start: {up.stderr.strip()}", file=sys.stderr)
            return 1
        try:
            target = run_dir / "target"
            section = yaml.safe_load((target / "target.yaml").read_text())["openstack"]
            cfg = openstack.config.OpenStackConfig(
                config_files=[str(target / section["clouds_yaml"])])
            for name in args.clouds.split(","):
                bench_cloud(cfg, section, name.strip(), args.n)
        finally:
            lab("down", run_dir=run_dir, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
