"""Inner pytest runs: the environment and demo.yaml every inner run uses (harness tests,
bench), and for the live-view tests (tests/test_dashboard*.py, tests/test_terminal_view.py)
a generated suite whose two tests each hold a step until the
outer test releases them, run with the harness plugins and a dummy target (no lab)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """\
pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting",
                  "fixtures.dashboard.plugin"]
"""
_DEMO_YAML = """\
tenants:
%(tenants)s
profiles:
  ci:
    tenant_qos: {total_iops_max: 1000}
    tiers: {bronze: {total_iops_max: 500}, silver: {total_iops_max: 1000},
            gold: {total_iops_max: 2000}}
    images: {size_gib: 1}
    volumes: {size_gib: 1}
    rolling: {images: 1, ceph_volumes: 1, servers: 1}
    fio: {runtime_s: 1, block_size: 4k, iodepth: 1, rw: randrw}
    scenarios:
%(scenarios)s
"""
# Hypothesis's pytest plugin imports all of Hypothesis at every run's terminal summary
# (seconds on a loaded machine); inner runs have no property tests.
NO_HYPOTHESIS = "-p no:hypothesispytest"


def demo_yaml(intervals: dict[str, float], tenants: tuple[str, ...] = (
        "{name: Vancouver-KU, platform: kubernetes}",)) -> str:
    """A small demo.yaml with only a ci profile: one scenario key per `intervals` entry
    (key -> interval_s) and the given tenant lines."""
    keys = "\n".join(f"      {k}: {{interval_s: {v}}}" for k, v in intervals.items())
    return _DEMO_YAML % {"tenants": "\n".join(f"  - {t}" for t in tenants),
                         "scenarios": keys or "      none: {interval_s: 0}"}


DEMO_YAML = demo_yaml({"live": 0})
# Each test holds its step until the outer test writes release-<n>: the outer test sees
# the step live, while the phase report (the old channel) has not been sent yet.
LIVE_TEST = """\
import pathlib, time
import pytest

@pytest.mark.parametrize("n", range(2))
def test_live(n, proof):
    proof.resource("volume", f"vol-{n}")
    with proof.step(f"holding {n}"):
        gate = pathlib.Path(f"release-{n}")
        deadline = time.time() + 60
        while not gate.exists() and time.time() < deadline:
            time.sleep(0.05)
    proof.figure("n", n)
"""


def env(target: str | None = None) -> dict:
    """The outer environment without xdist's worker variables or the outer run's options;
    VANCOUVER_TARGET a dummy (never start a lab) unless `target` is given."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT)
    e["VANCOUVER_TARGET"] = target or "/nonexistent/target.yaml"
    for k in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID"):
        e.pop(k, None)
    e["PYTEST_ADDOPTS"] = NO_HYPOTHESIS
    return e


def start(tmp: Path, *args: str) -> subprocess.Popen:
    """The generated suite in `tmp`, running; stdout and stderr merged into proc.stdout."""
    (tmp / "conftest.py").write_text(CONFTEST)
    (tmp / "demo.yaml").write_text(DEMO_YAML)
    (tmp / "test_live.py").write_text(LIVE_TEST)
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--demo-config", "demo.yaml", "--demo-profile", "ci", *args],
                            cwd=tmp, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def release_all(tmp: Path) -> None:
    for n in range(2):
        (tmp / f"release-{n}").write_text("")


PLAIN_CONFTEST = 'pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting"]\n'

PLAIN_TEST = """\
import pytest

@pytest.mark.parametrize("n", range(%d))
def test_step(n, proof):
    with proof.step("work"):
        proof.figure("n", n)
"""


def run(tmp: Path, *args: str, timeout: float = 60,
        demo: str = demo_yaml({"demo": 0})) -> tuple[int, str]:
    """pytest on the suite already written in `tmp` (demo.yaml written here), to its end:
    (exit status, stdout + stderr)."""
    (tmp / "demo.yaml").write_text(demo)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--demo-config", "demo.yaml", "--demo-profile", "ci", *args],
                          cwd=tmp, env=env(), capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def chap_conftest(secret: str) -> str:
    """An inner run's conftest.py: the harness's config, endless and reporting plugins, and a
    `chap` fixture that registers `secret` for masking (as the scenarios' CHAP fixture does)
    and returns it."""
    return f"""\
import pytest
from fixtures import reporting
pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting"]

@pytest.fixture
def chap():
    reporting.register_secret({secret!r})
    return {secret!r}
"""
