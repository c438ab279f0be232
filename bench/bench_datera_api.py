"""Datera API latency: p50/p99 of app_instance create and delete through the unmodified
dfs_sdk (Cinder's create body, https, N=200 each). A measurement, not a test: it prints
figures and asserts nothing.

    .venv/bin/python bench/bench_datera_api.py [--n 200]

Against the lab named by VANCOUVER_TARGET (a target.yaml), or else against a lab of its own
(`python -m lab up --only datera` on VANCOUVER_LAB_NET, default 127.231, in a tmp run dir,
stopped afterwards).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.dsdk import Udc, connect, errors  # noqa: E402
from _lab import lab  # noqa: E402  (bench/ is the script's own directory)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def load_udc(target_yaml: Path) -> Udc:
    doc = yaml.safe_load(target_yaml.read_text())
    d = doc["datera"]
    resolve = lambda p: Path(p) if Path(p).is_absolute() else target_yaml.parent / p
    return Udc.load(resolve(d["udc"]), resolve(d["ca_file"]) if d.get("ca_file") else None)


def measure(udc: Udc, n: int) -> int:
    api = connect(udc)
    tenant_name = f"bench-{uuid.uuid4().hex[:8]}"
    api.tenants.create(name=tenant_name)
    tenant = f"/root/{tenant_name}"
    creates, deletes, made = [], [], []
    try:
        for i in range(n):
            vol_id = str(uuid.uuid4())
            start = time.perf_counter()
            ai = api.app_instances.create(
                tenant=tenant, create_mode="openstack", uuid=vol_id, name=f"OS-{vol_id}",
                access_control_mode="deny_all",
                storage_instances=[{"name": "storage-1",
                                    "ip_pool": {"path": "/access_network_ip_pools/default"},
                                    "volumes": [{"name": "volume-1", "size": 1, "replica_count": 3,
                                                 "snapshot_policies": [],
                                                 "placement_policy": {"path": "/placement_policies/default"}}]}])
            creates.append(time.perf_counter() - start)
            made.append(ai)
        for ai in made:
            start = time.perf_counter()
            ai.delete(force=True, tenant=tenant)
            deletes.append(time.perf_counter() - start)
        made.clear()
    finally:
        for ai in made:
            try:
                ai.delete(force=True, tenant=tenant)
            except errors.ApiNotFoundError:
                pass
        api.tenants.get(tenant.lstrip("/")).delete()
    for label, values in (("create", creates), ("delete", deletes)):
        print(f"app_instance {label}: n={len(values)} p50 {percentile(values, 50) * 1000:.2f} ms, "
              f"p99 {percentile(values, 99) * 1000:.2f} ms, mean {statistics.mean(values) * 1000:.2f} ms")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args(argv)
    given = os.environ.get("VANCOUVER_TARGET")
    if given:
        print(f"against {given}")
        return measure(load_udc(Path(given)), args.n)
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.231"))
    with tempfile.TemporaryDirectory(prefix="bench-datera-api-") as tmp:
        run_dir = Path(tmp) / "lab"
        up = lab("up", "--only", "datera", run_dir=run_dir, env=env)
        try:
            if up.returncode != 0:
                print(f"lab did not start: {up.stderr.strip()}", file=sys.stderr)
                return 1
            print(f"against a lab of its own on net {env['VANCOUVER_LAB_NET']}")
            return measure(load_udc(run_dir / "target" / "target.yaml"), args.n)
        finally:
            lab("down", run_dir=run_dir, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
