"""OpenStack clouds boot time: from `python -m lab up` (the default lab: ldap, datera and the
Mitaka, Newton and Pike clouds) to its return, with every cloud healthy; plus each cloud's own
time from spawn to healthy, read from the supervisor's log. Median of N runs; the issue's goal
is under 5 s for the whole lab without Kubernetes. A measurement: it asserts nothing.

    .venv/bin/python bench/bench_openstack.py [--runs 5]

Runs on its own lab network (VANCOUVER_LAB_NET, default 127.231) and a tmp run dir, so it
never touches a running lab.
"""
import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

from _lab import boot_once  # bench/, the script's own directory, is on sys.path

REPO = Path(__file__).resolve().parent.parent
GOAL_S = 5.0
CLOUDS = ("openstack-mitaka", "openstack-newton", "openstack-pike")
HEALTHY_RE = re.compile(r"(openstack-\w+) healthy after ([0-9.]+)s")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.231"))
    totals, per_cloud = [], {c: [] for c in CLOUDS}
    with tempfile.TemporaryDirectory(prefix="bench-openstack-") as tmp:
        run_dir = Path(tmp) / "lab"
        for i in range(args.runs):
            try:
                elapsed, log = boot_once(run_dir, env)
            except RuntimeError as e:
                print(f"run {i + 1}: {e}", file=sys.stderr)
                return 1
            seen = dict(HEALTHY_RE.findall(log))
            missing = [c for c in CLOUDS if c not in seen]
            if missing:
                print(f"run {i + 1}: the default lab has no {missing[0]}", file=sys.stderr)
                return 1
            for c in CLOUDS:
                per_cloud[c].append(float(seen[c]))
            totals.append(elapsed)
            print(f"run {i + 1}: lab up {elapsed:.3f} s; "
                  + ", ".join(f"{c.removeprefix('openstack-')} {seen[c]} s" for c in CLOUDS))
    median = statistics.median(totals)
    print(f"lab up with three OpenStack clouds (net {env['VANCOUVER_LAB_NET']}): median "
          f"{median:.3f} s, min {min(totals):.3f} s, max {max(totals):.3f} s over "
          f"{len(totals)} runs (goal < {GOAL_S:.0f} s: {'met' if median < GOAL_S else 'NOT met'})")
    for c in CLOUDS:
        print(f"  {c}: spawn to healthy, median {statistics.median(per_cloud[c]):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
