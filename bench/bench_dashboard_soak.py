"""The dashboard over a long demo: controller RSS and the viewers' lag, sampled every minute.

    .venv/bin/python bench/bench_dashboard_soak.py [--duration 30m] [--viewers 3]
        [--workers 5] [--profile booth] [--target TARGET_YAML] [--only COMPONENTS]

Runs the real demo, `pytest -n W --count=0 --duration D scenarios/ --dashboard 127.0.0.1:0`
(the `make demo` command, bounded), with V server-sent-event viewers connected the whole
time. Without --target it first starts a lab of its own on $VANCOUVER_LAB_NET (`python -m lab
up`, stopped at the end), so the lab's own processes are not in the controller's figure.
Every minute it samples:
  - the controller's RSS (psutil; the process that serves the dashboard);
  - push lag: receive time minus the push's `pushed_at` (server clock = our clock), max over
    the viewers in that minute; it grows when the server falls behind its 1 s tick;
  - event lag: for each feed line a viewer sees for the first time, receive time minus the
    event's own time (the worker's clock): the worker -> controller -> viewer path.
Prints a row per minute, then start, max, end and the slope of a least-squares line through
the RSS samples after the first 5 minutes (MiB/h), and the load average. A measurement,
never an assertion.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from _lab import stop_run  # bench/, the script's own directory, is on sys.path

ROOT = Path(__file__).resolve().parent.parent


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text}: expected e.g. 30m, 1800s, 1h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


class Viewer(threading.Thread):
    """One SSE client of /events; records (recv time, push lag) and first-seen event lags."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.lock = threading.Lock()
        self.push_lags: list[float] = []
        self.event_lags: list[float] = []
        self.pushes = 0
        self.bytes = 0
        self.errors: list[str] = []
        self.late: list[tuple] = []  # feed lines first seen more than 30 s after their time
        self._seen: set = set()
        self._newest = 0.0

    def take(self) -> tuple[list[float], list[float]]:
        with self.lock:
            p, e = self.push_lags, self.event_lags
            self.push_lags, self.event_lags = [], []
            return p, e

    def run(self) -> None:
        while True:
            try:
                with urllib.request.urlopen(self.url + "events", timeout=60) as resp:
                    for line in resp:
                        if line.startswith(b"data: "):
                            self._on_push(line[6:], time.time())
                return  # the server ended the stream: the run is over
            except (OSError, ValueError) as e:
                self.errors.append(f"{type(e).__name__}: {e}")
                if len(self.errors) > 20:
                    return
                time.sleep(1)

    def _on_push(self, data: bytes, now: float) -> None:
        state = json.loads(data)
        with self.lock:
            self.pushes += 1
            self.bytes += len(data)
            if state.get("pushed_at"):
                self.push_lags.append(now - state["pushed_at"])
            for item in (state.get("run") or {}).get("feed") or []:
                key = (item.get("ts"), item.get("worker"), item.get("text"))
                if key in self._seen or item["ts"] < self._newest - 120:
                    continue
                self._seen.add(key)
                self.event_lags.append(now - item["ts"])
                if now - item["ts"] > 30 and len(self.late) < 50:  # named at the end
                    self.late.append((round(now - item["ts"], 1), time.strftime(
                        "%H:%M:%S", time.localtime(now)), item["worker"], item["kind"],
                        item["text"][:100]))
            feed = (state.get("run") or {}).get("feed") or []
            if feed:
                self._newest = max(self._newest, feed[-1]["ts"])
            if len(self._seen) > 5000:  # bounded: keep the recent keys
                self._seen = {k for k in self._seen if k[0] and k[0] >= self._newest - 300}


def lab_up(run_dir: Path, only: str | None) -> Path:
    args = [sys.executable, "-m", "lab", "up", "--run-dir", str(run_dir)]
    if only:
        args += ["--only", only]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        sys.exit(f"lab up failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return run_dir / "target" / "target.yaml"


def slope_mib_per_h(samples: list[tuple[float, float]]) -> float | None:
    if len(samples) < 2:
        return None
    ts = [t for t, _ in samples]
    vs = [v for _, v in samples]
    mt, mv = statistics.fmean(ts), statistics.fmean(vs)
    den = sum((t - mt) ** 2 for t in ts)
    return None if den == 0 else sum((t - mt) * (v - mv) for t, v in samples) / den * 3600


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=parse_duration, default=1800.0, help="e.g. 30m")
    ap.add_argument("--viewers", type=int, default=3)
    ap.add_argument("--workers", type=int, default=5)
    ap.add_argument("--profile", default="booth", help="demo.yaml profile (make demo: booth)")
    ap.add_argument("--every", type=parse_duration, default=60.0, help="sample period")
    ap.add_argument("--target", default=None, help="a running target's target.yaml")
    ap.add_argument("--only", default=None, help="lab components (default: the whole lab)")
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-dash-soak-"))
    started_lab = None
    target = a.target
    if target is None:
        started_lab = work / "lab"
        t0 = time.monotonic()
        target = str(lab_up(started_lab, a.only))
        print(f"lab up on {os.environ.get('VANCOUVER_LAB_NET', '127.0')} in "
              f"{time.monotonic() - t0:.0f} s", flush=True)
    env = dict(os.environ)
    for k in ("VANCOUVER_TARGET", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", str(a.workers),
           "--count=0", "--duration", f"{a.duration:.0f}s", "scenarios/",
           "--demo-profile", a.profile, "--target", target, "--dashboard", "127.0.0.1:0",
           "--live-view", "plain", "--html", str(work / "reports" / "report.html"),
           "--report-rotate", "10m", "--report-keep", "6"]
    log = (work / "demo.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    rows = []
    viewers: list[Viewer] = []
    try:
        first = proc.stdout.readline()
        log.write(first)
        m = re.search(r"dashboard (http://\S+/)", first)
        if not m:
            sys.exit(f"no dashboard line first: {first.strip()!r}")
        url = m.group(1)
        threading.Thread(target=lambda: [log.write(x) for x in proc.stdout],
                         daemon=True).start()
        viewers = [Viewer(url) for _ in range(a.viewers)]
        for v in viewers:
            v.start()
        controller = psutil.Process(proc.pid)
        t0 = time.time()
        print(f"demo: {' '.join(cmd[3:])}\n{a.viewers} viewers on {url}; a sample every "
              f"{a.every:.0f} s\n{'min':>5} {'RSS MiB':>8} {'push lag ms p50/max':>20} "
              f"{'event lag s p50/max':>20} {'events':>7} {'load1':>6}", flush=True)
        k = 0
        while proc.poll() is None:
            k += 1
            time.sleep(max(0.0, t0 + k * a.every - time.time()))
            try:
                if controller.status() == psutil.STATUS_ZOMBIE:
                    break
                rss = controller.memory_info().rss / 2**20
            except psutil.Error:
                break
            push, event = [], []
            for v in viewers:
                p, e = v.take()
                push += p
                event += e
            load1 = os.getloadavg()[0]
            rows.append((time.time() - t0, rss, push, event, load1))
            print(f"{k * a.every / 60:5.1f} {rss:8.1f} {pct(push, .5) * 1e3:9.0f}/"
                  f"{max(push, default=float('nan')) * 1e3:<9.0f} "
                  f"{pct(event, .5):9.2f}/{max(event, default=float('nan')):<9.2f} "
                  f"{len(event):>7} {load1:6.2f}", flush=True)
        proc.wait(timeout=600)
    finally:
        stop_run(proc)
        if started_lab is not None:
            subprocess.run([sys.executable, "-m", "lab", "down", "--run-dir", str(started_lab)],
                           cwd=ROOT, capture_output=True, timeout=300)
        log.close()

    results = work / "reports" / "results.jsonl"
    n = sum(1 for _ in results.open()) if results.exists() else 0
    print(f"demo exit {proc.returncode}; {n} results; log {work / 'demo.log'}")
    if not rows:
        return 1
    rss = [r[1] for r in rows]
    settled = [(t, v) for t, v, *_ in rows if t >= 300] or [(t, v) for t, v, *_ in rows]
    slope = slope_mib_per_h(settled)
    pushes = [x for r in rows for x in r[2]]
    events = [x for r in rows for x in r[3]]
    print(f"controller RSS MiB: start {rss[0]:.1f}, max {max(rss):.1f}, end {rss[-1]:.1f}, "
          f"slope after 5 min {slope if slope is not None else float('nan'):+.1f} MiB/h")
    print(f"push lag ms: p50 {pct(pushes, .5) * 1e3:.0f}, p99 {pct(pushes, .99) * 1e3:.0f}, "
          f"max {max(pushes, default=float('nan')) * 1e3:.0f} ({len(pushes)} pushes)")
    print(f"event lag s: p50 {pct(events, .5):.2f}, p99 {pct(events, .99):.2f}, "
          f"max {max(events, default=float('nan')):.2f} ({len(events)} feed lines)")
    for i, v in enumerate(viewers):
        print(f"viewer {i}: {v.pushes} pushes, {v.bytes / max(1, v.pushes) / 1024:.1f} KiB each, "
              f"{len(v.errors)} reconnects")
    late = sorted({x for v in viewers for x in v.late}, reverse=True)[:8]
    for lag, at, worker, kind, text in late:
        print(f"  late feed line: {lag} s, seen {at}, {worker} {kind}: {text}")
    print(f"load average over the run: {statistics.fmean(r[4] for r in rows):.2f} "
          f"(min {min(r[4] for r in rows):.2f}, max {max(r[4] for r in rows):.2f}; 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
