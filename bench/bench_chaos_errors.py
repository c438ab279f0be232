"""The demo under the chaos switch's API errors (issue 13's Show: "5% API errors for 2
minutes"): a bounded run of the tenancy (Datera) and volume-features (Pike's Cinder)
scenarios, ci profile, tenants Vancouver-OP and -KU, with demo.yaml `chaos:` injections of
HTTP 503 on --rate of the Datera API's and Pike Cinder's requests for the whole run
(tests/support/chaos_run.py). Prints how many 503s the lab injected, the results by outcome,
the fio verify steps, what the cleanup command still finds, and, as the reference measured in
the same run, the same figures of a run of the same length without injections (passed
iterations per minute: chaos / reference is what the clients' retries cost).

    .venv/bin/python bench/bench_chaos_errors.py [--duration 120] [--rate 0.05] [--no-reference]

Starts a lab of its own (Datera, LDAP, the Pike cloud; VANCOUVER_LAB_NET, default 127.229,
tmp run dir) and stops it after. A measurement, never an assertion.
"""
import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support import chaos_run  # noqa: E402
from tests.support.labcli import LabCli  # noqa: E402
from tests.support.outage_run import leftovers, start_demo  # noqa: E402


def _run(lab: LabCli, out: Path, duration: float, rate: float | None, workers: int):
    out.mkdir()
    demo = chaos_run.demo_yaml(out, rate=rate, for_s=duration + 600)
    before = chaos_run.injected(lab)
    proc, lines = start_demo(lab, out, workers, f"{duration:.0f}s",
                             scenarios=chaos_run.SCENARIOS, demo_config=demo)
    try:
        proc.wait(timeout=duration + 900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    summary = chaos_run.summarize(out)
    hits = chaos_run.injected(lab) - before
    left = leftovers(lab)
    passed_per_min = summary.outcomes.get("passed", 0) / (duration / 60)
    label = f"{rate:.0%} 503s" if rate else "no injection"
    print(f"  {label:>13}: exit status {proc.returncode}; {summary.line()}")
    print(f"  {'':>13}  injected {dict((f'{s} {c}', n) for (s, c), n in hits.items()) or 0}; "
          f"cleanup finds {len(left)}; passed iterations per minute {passed_per_min:.1f}")
    if summary.failed:
        print(f"  {'':>13}  not passed: {', '.join(summary.failed)}")
    return passed_per_min


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=120.0, help="seconds per run")
    ap.add_argument("--rate", type=float, default=0.05, help="share of requests failed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the run without injections")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    lab = LabCli(os.environ.get("VANCOUVER_LAB_NET", "127.229"), tmp / "lab")
    up = lab.up(chaos_run.COMPONENTS, timeout=400)
    if up.returncode != 0:
        print(f"bench_chaos_errors: lab did not start: {up.stderr.strip()}", file=sys.stderr)
        return 1
    print(f"bench_chaos_errors: {args.duration:.0f} s runs, {args.workers} workers, "
          f"scenarios {', '.join(Path(s).stem for s in chaos_run.SCENARIOS)}")
    try:
        chaos = _run(lab, tmp / "chaos", args.duration, args.rate, args.workers)
        if not args.no_reference:
            ref = _run(lab, tmp / "reference", args.duration, None, args.workers)
            if ref:
                print(f"  passed iterations per minute, chaos / reference = {chaos / ref:.2f}")
    finally:
        lab.run("down")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
