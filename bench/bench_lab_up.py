"""`lab up` with and without the Kubernetes component, on the machine as loaded as it is: from
`python -m lab up --only datera,ldap[,kubernetes]` to its return (every component healthy,
target dir written). The two kinds of run alternate so both see the same load; prints each
run, the medians, the ratio, and when each component became healthy (the supervisor's log),
so the cost of the real control plane shows apart from the rest. A measurement: it asserts
nothing.

    .venv/bin/python bench/bench_lab_up.py [--runs 3] [--base datera,ldap]

Runs on its own lab network (VANCOUVER_LAB_NET, default 127.232) and a tmp run dir, so it
never touches a running lab. Needs the cached control-plane build (make setup).
"""
import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import _lab  # bench/, the script's own directory, is on sys.path

REPO = Path(__file__).resolve().parent.parent
HEALTHY = re.compile(r"lab\.supervisor INFO (\S+) healthy after ([0-9.]+)s")


def one(only: str, run_dir: Path, env: dict) -> tuple[float, dict[str, float]]:
    try:
        elapsed, log = _lab.boot_once(run_dir, env, "--only", only, timeout=400)
    except RuntimeError as e:
        raise SystemExit(f"lab up --only {only}: {e}") from None
    return elapsed, {m[1]: float(m[2]) for m in HEALTHY.finditer(log)}


def load() -> str:
    one_, five, _ = os.getloadavg()
    return f"load {one_:.1f}/{five:.1f} on {os.cpu_count()} cores"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", default="datera,ldap")
    args = parser.parse_args(argv)
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.232"))
    kinds = {"without": args.base, "with": args.base + ",kubernetes"}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    k8s_healthy = []
    with tempfile.TemporaryDirectory(prefix="bench-lab-up-") as tmp:
        for i in range(args.runs):
            for kind, only in kinds.items():
                run_dir = Path(tmp) / f"{kind}-{i}"
                elapsed, healthy = one(only, run_dir, env)
                times[kind].append(elapsed)
                if "kubernetes" in healthy:
                    k8s_healthy.append(healthy["kubernetes"])
                print(f"run {i + 1} {kind:>7} kubernetes: {elapsed:6.2f} s  ("
                      + ", ".join(f"{n} {t:.2f} s" for n, t in healthy.items())
                      + f"; {load()})", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"lab up --only {kinds['without']}: median {med['without']:.2f} s "
          f"(min {min(times['without']):.2f}, max {max(times['without']):.2f})")
    print(f"lab up --only {kinds['with']}: median {med['with']:.2f} s "
          f"(min {min(times['with']):.2f}, max {max(times['with']):.2f})")
    print(f"ratio with/without: {med['with'] / med['without']:.2f}x; the kubernetes component "
          f"alone healthy after median {statistics.median(k8s_healthy):.2f} s "
          f"(start goal < 8 s: {'met' if statistics.median(k8s_healthy) < 8 else 'NOT met'} "
          f"at {load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
