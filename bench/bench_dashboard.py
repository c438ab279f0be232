"""The dashboard's cost: controller RSS over an endless run with 3 viewers, and the
iteration rate with 0 and with 20 connected viewers (goal: within 5%).

    .venv/bin/python bench/bench_dashboard.py [--duration 60] [--rate-duration 40]
                                               [--workers 2] [--target TARGET_YAML]

Runs `pytest -n W --count=0 --duration D --dashboard 127.0.0.1:0` on a generated suite of
short scenarios emitting steps, resources and fio-like rows through the `proof` fixture (so
the live channel, the run state and every push are exercised), with viewers reading the
server-sent events (/events) in threads. RSS of the controller is sampled every 10% of the
run. The rate: iterations per second from results.jsonl, 0 viewers vs 20, each run alone,
same settings. --target adds the Datera metrics polling (e.g. the lab's target.yaml); the
issue's 30-minute figure: --duration 1800. A measurement, never an assertion.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the inner-run helpers live in tests/support
from tests.support.inner_run import demo_yaml, env as inner_env  # noqa: E402

CONFTEST = """\
pytest_plugins = ["fixtures.config", "fixtures.target", "fixtures.endless",
                  "fixtures.reporting", "fixtures.datera", "fixtures.dashboard.plugin"]
"""
DEMO = demo_yaml({"bench": 0}, tenants=("{name: Vancouver-OM, platform: openstack, release: mitaka}",
                                        "{name: Vancouver-KU, platform: kubernetes}"))
TEST = """\
import time
import pytest

@pytest.mark.parametrize("n", range(10))
def test_bench(n, proof):
    proof.resource("volume", f"vol-{n}")
    with proof.step("create"):
        time.sleep(0.05)
    with proof.step("measure"):
        proof.fio("4k randread", {"iops": 1000 + n, "MiB/s": 3.9, "lat p99 ms": 1.2})
    proof.resource_deleted("volume", f"vol-{n}")
"""


def viewer(url: str, stop: threading.Event, got: list) -> None:
    try:
        with urllib.request.urlopen(url + "events", timeout=30) as resp:
            for line in resp:
                if line.startswith(b"data: "):
                    got.append(len(line))
                if stop.is_set():
                    return
    except OSError:
        pass


def run(tmp: Path, duration: float, workers: int, viewers: int, target: str | None,
        samples: int = 0) -> dict:
    for name, text in (("conftest.py", CONFTEST), ("demo.yaml", DEMO), ("test_bench.py", TEST)):
        (tmp / name).write_text(text)
    jsonl = tmp / "reports" / "results.jsonl"
    jsonl.unlink(missing_ok=True)
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", str(workers),
            "--count=0", "--duration", f"{duration:.0f}s", "--demo-config", "demo.yaml",
            "--demo-profile", "ci", "--dashboard", "127.0.0.1:0", "--live-view", "off",
            "--rootdir", str(tmp)]  # reports/ under tmp, wherever --target points
    if target:
        args += ["--target", target]
    proc = subprocess.Popen(args, cwd=tmp, env=inner_env(target), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    first = proc.stdout.readline()
    url = first.split()[3]
    stop, got = threading.Event(), []
    threads = [threading.Thread(target=viewer, args=(url, stop, got), daemon=True)
               for _ in range(viewers)]
    for t in threads:
        t.start()
    rss, started = [], time.time()
    controller = psutil.Process(proc.pid)
    if samples:
        for i in range(1, samples + 1):
            time.sleep(max(0.0, started + duration * i / (samples + 1) - time.time()))
            try:
                rss.append((time.time() - started, controller.memory_info().rss / 2**20))
            except psutil.Error:
                break
    out, _ = proc.communicate(timeout=duration + 300)
    stop.set()
    results = [json.loads(x) for x in jsonl.read_text().splitlines()] if jsonl.exists() else []
    return {"rc": proc.returncode, "iterations": len(results), "rss": rss,
            "pushes": len(got), "bytes": sum(got), "tail": out[-400:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60, help="RSS run, seconds")
    ap.add_argument("--rate-duration", type=float, default=40, help="each rate run, seconds")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target", default=None, help="target.yaml (Datera metrics polling)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dash-") as d:
        tmp = Path(d)
        r = run(tmp, a.duration, a.workers, 3, a.target, samples=9)
        print(f"controller RSS with 3 viewers, {a.duration:.0f} s run, {a.workers} workers, "
              f"{r['iterations']} iterations, {r['pushes']} pushes received "
              f"({r['bytes'] / max(1, r['pushes']):.0f} B each):")
        for t, mb in r["rss"]:
            print(f"  t={t:6.0f} s  RSS {mb:7.1f} MiB")
        if len(r["rss"]) >= 2:
            first, last = r["rss"][0][1], r["rss"][-1][1]
            print(f"  growth first->last sample: {last - first:+.1f} MiB")
        rates = {}
        for n in (0, 20):
            rr = run(tmp, a.rate_duration, a.workers, n, a.target)
            rates[n] = rr["iterations"] / a.rate_duration
            print(f"iteration rate with {n:2d} viewers: {rates[n]:7.2f}/s "
                  f"({rr['iterations']} in {a.rate_duration:.0f} s, rc {rr['rc']})")
        if rates[0]:
            print(f"ratio 20 viewers / 0 viewers: {rates[20] / rates[0]:.3f} (goal >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
