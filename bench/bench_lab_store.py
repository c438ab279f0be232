"""Datera API latency with the durable store (lab/store.py) against the same lab without it:
p50/p99 of app_instance create, list, get and delete through the unmodified dfs_sdk (https),
and the ratio store/memory (issue 13's goal: within 1.5x). A measurement, not a test: it
prints figures and asserts nothing.

    .venv/bin/python bench/bench_lab_store.py [--n 200] [--population 50] [--sync normal|full]

Two labs of its own run side by side (`python -m lab up --only datera` in tmp run dirs): one
with the store (VANCOUVER_LAB_STORE=on, on --net-store) and the in-memory reference
(VANCOUVER_LAB_STORE=off, on --net-memory). Every operation alternates between them, so load
from anything else on the machine falls on both alike. --population app instances are made
in each first: the store compares every object on each write, so its cost grows with them.
"""
import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_datera_api import lab, load_udc, percentile  # noqa: E402
from tests.support.dsdk import connect  # noqa: E402
from _table import print_table  # noqa: E402

OPS = ("create", "list", "get", "delete")


def ai_body(name: str) -> dict:
    """Cinder's create body (the Datera driver's), as bench_datera_api sends it."""
    return dict(create_mode="openstack", name=name, access_control_mode="deny_all",
                storage_instances=[{"name": "storage-1",
                                    "ip_pool": {"path": "/access_network_ip_pools/default"},
                                    "volumes": [{"name": "volume-1", "size": 1,
                                                 "replica_count": 3, "snapshot_policies": []}]}])


class Side:
    """One lab: its dfs_sdk session, a tenant of the bench's own and the timings."""

    def __init__(self, label: str, udc):
        self.label = label
        self.api = connect(udc)
        name = f"bench-store-{uuid.uuid4().hex[:8]}"
        self.api.tenants.create(name=name)
        self.tenant = f"/root/{name}"
        self.times = {op: [] for op in OPS}

    def timed(self, op: str, fn):
        start = time.perf_counter()
        result = fn()
        self.times[op].append(time.perf_counter() - start)
        return result


def measure(sides: list[Side], n: int, population: int) -> None:
    for side in sides:
        for i in range(population):
            side.api.app_instances.create(tenant=side.tenant, **ai_body(f"pop-{i}"))
    made = {s.label: [] for s in sides}
    for i in range(n):
        for s in sides:
            made[s.label].append(s.timed("create", lambda: s.api.app_instances.create(
                tenant=s.tenant, **ai_body(f"OS-{uuid.uuid4()}"))))
        for s in sides:
            s.timed("list", lambda: s.api.app_instances.list(tenant=s.tenant))
        for s in sides:
            ai_id = made[s.label][-1]["id"]
            s.timed("get", lambda: s.api.app_instances.get(ai_id, tenant=s.tenant))
    for i in range(n):
        for s in sides:
            ai = made[s.label][i]
            s.timed("delete", lambda: ai.delete(force=True, tenant=s.tenant))


def report(store: Side, memory: Side) -> None:
    rows = []
    for op in OPS:
        a, b = store.times[op], memory.times[op]
        p50a, p50b = percentile(a, 50) * 1000, percentile(b, 50) * 1000
        p99a, p99b = percentile(a, 99) * 1000, percentile(b, 99) * 1000
        rows.append([op, p50a, p50b, p50a / p50b, p99a, p99b, p99a / p99b])
    ms, x = "{:.2f}ms", "{:.2f}x"
    print_table(["op", "store p50", "memory p50", "ratio", "store p99", "memory p99", "ratio"],
                rows, formats={1: ms, 2: ms, 3: x, 4: ms, 5: ms, 6: x})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="operations of each kind per lab")
    parser.add_argument("--population", type=int, default=50,
                        help="app instances made in each lab before measuring")
    parser.add_argument("--sync", choices=("normal", "full"), default="normal",
                        help="the store's SQLite synchronous setting")
    parser.add_argument("--net-store", default="127.232")
    parser.add_argument("--net-memory", default="127.233")
    args = parser.parse_args(argv)
    labs = {"store": (args.net_store, {"VANCOUVER_LAB_STORE": "on",
                                       "VANCOUVER_LAB_STORE_SYNC": args.sync}),
            "memory": (args.net_memory, {"VANCOUVER_LAB_STORE": "off"})}
    with tempfile.TemporaryDirectory(prefix="bench-lab-store-") as tmp:
        started, sides = [], {}
        try:
            for label, (net, extra) in labs.items():
                env = dict(os.environ, VANCOUVER_LAB_NET=net, **extra)
                run_dir = Path(tmp) / label
                up = lab("up", "--only", "datera", run_dir=run_dir, env=env)
                started.append((run_dir, env))
                if up.returncode != 0:
                    print(f"{label} lab did not start: {up.stderr.strip()}", file=sys.stderr)
                    return 1
                sides[label] = Side(label, load_udc(run_dir / "target" / "target.yaml"))
            db = Path(tmp) / "store" / "datera" / "data" / "datera.db"
            print(f"labs on {args.net_store} (store, synchronous={args.sync}) and "
                  f"{args.net_memory} (memory); n={args.n} per op, population {args.population}")
            measure([sides["store"], sides["memory"]], args.n, args.population)
            report(sides["store"], sides["memory"])
            print(f"store file: {db.stat().st_size / 1024:.0f} KiB "
                  f"(+ WAL {db.with_name('datera.db-wal').stat().st_size / 1024:.0f} KiB)")
        finally:
            for run_dir, env in started:
                lab("down", run_dir=run_dir, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
