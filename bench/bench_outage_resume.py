"""How fast the endless run resumes after an outage: from the platform being healthy again
(SIGCONT of the lab's stopped Datera process) to each paused worker's "back" event and to its
first scenario step after it (issue 13 goal: under 5 s), and to its first step event of any
kind (a step ending, a deletion: the worker is moving again).

    .venv/bin/python bench/bench_outage_resume.py [--outages 2] [--down 10] [--workers 2]

Starts a lab of its own (VANCOUVER_LAB_NET, default 127.226, tmp run dir), runs the tenancy
scenario (ci profile, `-n W --count=0 --duration`) against it, stops the Datera process for
--down seconds whenever every worker is inside a step (--outages times), and reads the run's
events (tests/support/event_log.py). The reference, measured in the same run: each worker's
median gap between consecutive step starts outside the outages (how soon a step follows
another anyway). A measurement, never an assertion.
"""
import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.labcli import LabCli  # noqa: E402
from tests.support.outage_run import (datera_pid, start_demo, stopped,  # noqa: E402
                                      wait_workers_in_steps)


def _events(path: Path) -> list[dict]:
    try:
        return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    except OSError:
        return []


def _fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"median {statistics.median(values):.2f} s, max {max(values):.2f} s "
            f"(n={len(values)})")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outages", type=int, default=2)
    ap.add_argument("--down", type=float, default=10.0, help="seconds stopped (default 10)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    lab = LabCli((os.environ.get("VANCOUVER_LAB_NET") or "127.226"), tmp / "lab")
    up = lab.run("up", "--only", "datera", timeout=300)
    if up.returncode != 0:
        print(f"bench_outage_resume: lab did not start: {up.stderr.strip()}", file=sys.stderr)
        return 1
    out = tmp / "reports"
    out.mkdir()
    conts: list[float] = []
    duration = 60 + args.outages * (args.down + 60)
    proc, lines = start_demo(lab, out, args.workers, f"{duration:.0f}s")
    try:
        for _ in range(args.outages):
            wait_workers_in_steps(proc, lines, args.workers)
            with stopped(datera_pid(lab)):
                time.sleep(args.down)
            conts.append(time.time())
            time.sleep(30)  # let the run go on between outages
            del lines[:]    # the next outage waits for fresh live lines
        proc.send_signal(signal.SIGTERM)  # enough measured: stop gracefully
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        lab.run("down")

    events = _events(out / "events.jsonl")
    to_back, to_step, to_any, gaps = [], [], [], []
    for cont in conts:
        window = [e for e in events if cont - args.down - 10 <= e["ts"] <= cont + 60]
        paused = {e["worker"] for e in window if e["kind"] == "outage" and e["state"] == "down"}
        for w in sorted(paused):
            backs = [e["ts"] for e in window if e["worker"] == w and e["kind"] == "outage"
                     and e["state"] == "back" and e["ts"] >= cont - 1]
            steps = [e["ts"] for e in window if e["worker"] == w and e["kind"] == "step_start"
                     and e["ts"] >= cont]
            if backs:
                to_back.append(max(0.0, min(backs) - cont))
            if steps:
                to_step.append(min(steps) - cont)
            moved = [e["ts"] for e in window if e["worker"] == w and e["ts"] >= cont and
                     e["kind"] in ("step_start", "step_end", "resource_deleted")]
            if moved:
                to_any.append(min(moved) - cont)
    for w in {e["worker"] for e in events}:
        starts = sorted(e["ts"] for e in events if e["worker"] == w and e["kind"] ==
                        "step_start" and not any(c - args.down - 5 <= e["ts"] <= c + 10
                                                 for c in conts))
        gaps += [b - a for a, b in zip(starts, starts[1:])]
    results = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    outcomes = {k: sum(1 for r in results if r["outcome"] == k)
                for k in sorted({r["outcome"] for r in results})}
    ref = statistics.median(gaps) if gaps else None
    print(f"bench_outage_resume: {args.outages} outage(s) of {args.down:.0f} s, "
          f"{args.workers} workers, exit status {proc.returncode}, results {outcomes}")
    print(f"  healthy -> worker's 'back' event:        {_fmt(to_back)}")
    print(f"  healthy -> worker's first step event:    {_fmt(to_any)}")
    print(f"  healthy -> first resumed step (goal < 5 s): {_fmt(to_step)}")
    if ref and to_step:
        print(f"  reference: median gap between step starts, no outage: {ref:.2f} s "
              f"(resume / reference = {statistics.median(to_step) / ref:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
