"""Lab boot time: from `python -m lab up --only datera,ldap` to its return (every component
healthy, target dir written). Median of 5 runs; the goal is under 3 s. A measurement, not a
test: it prints figures and asserts nothing.

    .venv/bin/python bench/bench_lab_boot.py [--only datera,ldap] [--runs 5]

Runs on its own lab network (VANCOUVER_LAB_NET, default 127.230) and a tmp run dir, so it
never touches a running lab.
"""
import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from _lab import boot_once  # bench/, the script's own directory, is on sys.path

REPO = Path(__file__).resolve().parent.parent
GOAL_S = 3.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="datera,ldap")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.230"))
    times = []
    with tempfile.TemporaryDirectory(prefix="bench-lab-boot-") as tmp:
        run_dir = Path(tmp) / "lab"
        for i in range(args.runs):
            try:
                elapsed, _ = boot_once(run_dir, env, "--only", args.only)
            except RuntimeError as e:
                print(f"run {i + 1}: {e}", file=sys.stderr)
                return 1
            times.append(elapsed)
            print(f"run {i + 1}: {elapsed:.3f} s")
    median = statistics.median(times)
    print(f"lab boot ({args.only}, net {env['VANCOUVER_LAB_NET']}): median {median:.3f} s, "
          f"min {min(times):.3f} s, max {max(times):.3f} s over {len(times)} runs "
          f"(goal < {GOAL_S:.0f} s: {'met' if median < GOAL_S else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
