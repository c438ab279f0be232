"""The live demo itself: tenancy-scenario iterations per minute with `-n 5`, and controller
and worker memory at the start and end of an endless run (the issue's goal: growth under
10 MB over 10 minutes).

    .venv/bin/python bench/bench_demo.py [--duration 600] [--workers 5] [--profile ci]

Starts a lab of its own (VANCOUVER_LAB_NET, default 127.231, in a tmp run dir), runs
`pytest -n W --count=0 --duration D scenarios/` against it, samples /proc RSS of the
controller and each worker after the first results and just before the deadline, and prints
the figures. A measurement, never an assertion.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_harness_memory import sample  # noqa: E402
from _lab import lab  # noqa: E402  (bench/ is the script's own directory)
from _table import print_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def results(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    ap.add_argument("--workers", type=int, default=5)
    ap.add_argument("--profile", default="ci", choices=("ci", "booth"))
    args = ap.parse_args(argv)
    if args.duration < 60:
        ap.error("--duration must be at least 60 seconds (an iteration takes ~30 s)")

    tmp = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.231"))
    env.pop("VANCOUVER_TARGET", None)
    run_dir = tmp / "lab"
    up = lab("up", "--only", "datera", run_dir=run_dir, env=env)
    if up.returncode != 0:
        print(f"bench_demo: lab did not start: {up.stderr.strip()}", file=sys.stderr)
        return 1
    jsonl = tmp / "reports" / "results.jsonl"
    cmd = [sys.executable, "-m", "pytest", "scenarios/", "-p", "no:cacheprovider",
           "--target", str(run_dir / "target" / "target.yaml"), "-n", str(args.workers),
           "--count=0", "--duration", f"{args.duration:.0f}s", "--demo-profile", args.profile,
           "--html", str(tmp / "reports" / "report.html"), "--report-keep", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t0 = time.monotonic()
        while not results(jsonl) and proc.poll() is None and time.monotonic() < t0 + 300:
            time.sleep(1)
        first, t_first = sample(proc.pid), time.monotonic()
        end_at = t0 + args.duration - 2
        while time.monotonic() < end_at and proc.poll() is None:
            time.sleep(1)
        last = sample(proc.pid)
        proc.wait(timeout=600)
        t_end = time.monotonic()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        lab("down", run_dir=run_dir, env=env)

    done = results(jsonl)
    passed = sum(1 for r in done if r.get("outcome") == "passed")
    minutes = (t_end - t0) / 60
    print(f"demo run: {args.workers} workers, profile {args.profile}, {args.duration:.0f} s, "
          f"exit {proc.returncode}")
    print(f"tenancy iterations: {len(done)} ({passed} passed) in {minutes:.1f} min = "
          f"{len(done) / minutes:.1f} per minute")
    print_table(["process", "start MB", "end MB", "growth MB"],
                [[n, first[n], last[n], last[n] - first[n]] for n in first if n in last],
                formats=dict.fromkeys(range(1, 4), "{:.1f}"),
                note=f"(over {(time.monotonic() - t_first) / 60:.1f} min; goal: growth < 10 MB)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
