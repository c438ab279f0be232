"""Memory of an endless run: controller and worker RSS at the start and end, growth in MB.

    .venv/bin/python bench/bench_harness_memory.py [--duration 60] [--workers 2] [--items 20]
                                                   [--no-trim] [--rotate-results 5000]

Runs `pytest -n W --count=0 --duration D` on a generated suite of trivial scenarios (session,
module and function fixtures, the `proof` fixture with a step and a figure, so reporting and
the fixture-finalizer path are exercised) and samples /proc RSS of the controller and each
worker shortly after the first results and shortly before the deadline. Report rotation is on
(pytest-html keeps every row of the current part in memory, P8), so a flat line means the
harness itself does not grow. `--no-trim` disables stats trimming and finalizer pruning to
show what they save. A measurement, never an assertion; numbers depend on machine load.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

from _table import print_table  # bench/, the script's own directory, is on sys.path

ROOT = Path(__file__).resolve().parent.parent

SUITE = {
    "conftest.py": """\
        import pytest
        pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting"]

        @pytest.fixture(scope="session")
        def sess():
            yield object()

        @pytest.fixture(scope="module")
        def mod(sess):
            yield object()

        @pytest.fixture
        def func(sess):  # a function fixture under a session one: pytest #4871 (P7)
            yield object()
    """,
    "test_trivial.py": """\
        import pytest

        @pytest.mark.parametrize("n", range({items}))
        def test_trivial(n, mod, func, proof):
            with proof.step("nothing"):
                proof.figure("n", n)
    """,
    "demo.yaml": """\
        tenants:
          - {{name: Vancouver-KU, platform: kubernetes}}
        profiles:
          ci:
            tenant_qos: {{total_iops_max: 1000}}
            tiers: {{bronze: {{total_iops_max: 500}}, silver: {{total_iops_max: 1000}},
                    gold: {{total_iops_max: 2000}}}}
            images: {{size_gib: 1}}
            volumes: {{size_gib: 1}}
            rolling: {{images: 1, ceph_volumes: 1, servers: 1}}
            fio: {{runtime_s: 1, block_size: 4k, iodepth: 1, rw: randrw}}
            scenarios:
              trivial: {{interval_s: 0}}
    """,
}


def rss_mb(pid: int) -> float | None:
    try:
        return psutil.Process(pid).memory_info().rss / (1 << 20)
    except psutil.Error:
        return None


def children(pid: int) -> list[int]:
    try:
        return [c.pid for c in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def results(tmp: Path) -> int:
    path = tmp / "reports" / "results.jsonl"
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def sample(pid: int) -> dict[str, float]:
    out = {"controller": rss_mb(pid) or 0.0}
    for i, child in enumerate(sorted(children(pid))):
        value = rss_mb(child)
        if value is not None:
            out[f"worker {i}"] = value
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--rotate-results", type=int, default=5000)
    ap.add_argument("--no-trim", action="store_true", help="disable the memory guard")
    ap.add_argument("--keep", action="store_true", help="keep the generated suite and reports")
    args = ap.parse_args()
    if args.duration < 10:
        ap.error("--duration must be at least 10 seconds")

    tmp = Path(tempfile.mkdtemp(prefix="bench-harness-memory-"))
    for name, text in SUITE.items():
        (tmp / name).write_text(textwrap.dedent(text).format(items=args.items))
    env = dict(os.environ, PYTHONPATH=str(ROOT), VANCOUVER_TARGET="/nonexistent/target.yaml")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", str(args.workers),
           "--count=0", "--duration", f"{args.duration}s", "--demo-config", "demo.yaml",
           "--demo-profile", "ci", "--report-rotate-results", str(args.rotate_results),
           "--report-keep", "2"]
    if args.no_trim:
        cmd += ["--endless-trim-every", "0"]
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t0 = time.monotonic()
        # Start after the first report part is written: the current part's rows are held in
        # memory until rotation (P8), so compare like with like.
        warm = min(args.rotate_results + 50, 20000)
        warm_until = t0 + args.duration / 3
        while results(tmp) < warm and proc.poll() is None and time.monotonic() < warm_until:
            time.sleep(0.2)
        first, n_first, t_first = sample(proc.pid), results(tmp), time.monotonic()
        end_at = t0 + args.duration - 1.5
        mid_at = (t_first + end_at) / 2
        while time.monotonic() < mid_at and proc.poll() is None:
            time.sleep(0.5)
        mid = sample(proc.pid)
        while time.monotonic() < end_at and proc.poll() is None:
            time.sleep(0.5)
        last, n_last, t_last = sample(proc.pid), results(tmp), time.monotonic()
        proc.wait(timeout=args.duration + 60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    done = n_last - n_first
    print(f"endless run: {args.workers} workers, {args.items} trivial scenarios, "
          f"{args.duration:.0f} s, memory guard {'off' if args.no_trim else 'on'}, "
          f"exit {proc.returncode}")
    print(f"results between samples: {done} in {t_last - t_first:.1f} s "
          f"({done / max(t_last - t_first, 1e-9):.0f}/s)")
    print_table(["process", "start MB", "middle MB", "end MB", "growth MB", "MB/10k res"],
                [[n, first[n], mid.get(n, 0.0), last[n], last[n] - first[n],
                  (last[n] - first[n]) / done * 10000 if done else 0.0]
                 for n in first if n in last],
                formats={**dict.fromkeys(range(1, 5), "{:.1f}"), 5: "{:.2f}"})
    if args.keep:
        print(f"(suite and reports in {tmp})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
