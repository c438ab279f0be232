"""Time to the first line of `make demo`: from process start to the line on screen that
names the dashboard URL and the reports, read through a pty (what an operator sees).

    .venv/bin/python bench/bench_first_line.py [--runs 3] [--target TARGET_YAML]

Measures, each --runs times (median, min and max printed), on this machine as loaded as
it is now (the load average is printed beside the figures):
  make demo         the whole command: `make demo DASHBOARD=127.0.0.1:<a free port>` (the
                    where-line, setup checks, then pytest); SIGINT as soon as the line is seen
  pytest line       pytest alone with the demo's arguments (the line printed by the views
                    plugin in pytest_configure, after every plugin's import)
  python            `python -c pass`: interpreter start
  import pytest     `python -c "import pytest, xdist, pytest_html"`
  plugin imports    `python -c "import <every pytest_plugins module of conftest.py>"`
  make setup        `make setup` alone (every step already done: the checks only)
With --target the demo runs against that target (no lab starts; the line comes before any
lab start anyway). A measurement, never an assertion.
"""
from __future__ import annotations

import argparse
import os
import pty
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _lab import stop_run  # bench/, the script's own directory, is on sys.path

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(rb"dashboard http://\S+ +reports \S+index\.html")
PLUGINS = ["fixtures.config", "fixtures.target", "fixtures.chaos", "fixtures.endless",
           "fixtures.reporting.plugin", "fixtures.outage.plugin", "fixtures.datera",
           "fixtures.openstack.plugin", "fixtures.dashboard.plugin"]


def first_line(argv: list[str], env: dict, timeout: float = 180) -> tuple[float, str]:
    """Seconds from spawn to LINE on a pty; the process group is stopped (SIGINT) after."""
    master, slave = pty.openpty()
    t0 = time.monotonic()
    # SIGINT as the operator's Ctrl-C: a bench started in the background inherits it ignored
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    seen, found = b"", None
    try:
        while time.monotonic() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                if LINE.search(seen):
                    found = time.monotonic() - t0
                    break
            elif proc.poll() is not None:
                break
    finally:
        stop_run(proc)
        os.close(master)
    first = seen.decode(errors="replace").splitlines()[:1]
    if found is None:
        raise SystemExit(f"no where-line from {' '.join(argv)}: {seen[-400:]!r}")
    return found, first[0] if first else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv: list[str], env: dict) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--target", default=None, help="target.yaml (else the demo's own lab)")
    a = ap.parse_args()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for k in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID", "PYTEST_ADDOPTS"):
        env.pop(k, None)
    if a.target:
        env["VANCOUVER_TARGET"] = a.target
    venv = Path(sys.executable).parent.parent
    py = sys.executable
    demo_args = [py, "-m", "pytest", "-n", "5", "--count=0", "scenarios/", "--demo-profile",
                 "booth", "--dashboard", "127.0.0.1:0", "-p", "no:cacheprovider",
                 "--html", f"{tempfile.mkdtemp(prefix='bench-first-line-')}/report.html"]
    cases = {
        "make demo": lambda: first_line(["make", "--no-print-directory", "demo",
                                         f"VENV={venv}", f"DASHBOARD=127.0.0.1:{free_port()}"],
                                        env)[0],
        "pytest line": lambda: first_line(demo_args, env)[0],
        "python": lambda: timed([py, "-c", "pass"], env),
        "import pytest": lambda: timed([py, "-c", "import pytest, xdist, pytest_html"], env),
        "plugin imports": lambda: timed([py, "-c", "import " + ", ".join(PLUGINS)], env),
        "make setup": lambda: timed(["make", "-s", "setup", f"VENV={venv}"], env),
    }
    print(f"first line of `make demo` on a pty, {a.runs} runs each, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name, fn in cases.items():
        values = []
        for _ in range(a.runs):
            values.append(fn())
        print(f"  {name:<15} median {statistics.median(values):6.2f} s  "
              f"(min {min(values):.2f}, max {max(values):.2f})  "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
