"""The scenarios run without xdist loaded (`-p no:xdist`), as with it: every fixture they need
resolves (fixtures/without_xdist.py gives xdist's worker_id and testrun_uid when xdist is not
there). Before, `-p no:xdist` errored every scenario at setup with "fixture 'worker_id' not
found" (fixtures/datera.py run_prefix), while `-n 0` worked."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.inner_run import ROOT, env


def _collect(*args: str) -> tuple[int, dict]:
    """`pytest --collect-only scenarios/` with tests/support/fixture_closure.py: (items
    collected, {unresolved fixture: [node ids]})."""
    proc = subprocess.run([sys.executable, "-m", "pytest", *args, "--collect-only", "-q",
                           "-p", "no:cacheprovider", "-p", "tests.support.fixture_closure",
                           "scenarios/"], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("UNRESOLVED ")]
    count = re.search(r"(\d+) tests? collected", proc.stdout)
    return int(count[1]) if count else 0, json.loads(line.removeprefix("UNRESOLVED "))


@pytest.mark.parametrize("xdist", [["-p", "no:xdist"], [], ["-n", "2"]],
                         ids=["no-xdist", "xdist-loaded", "xdist-workers"])
def test_every_fixture_of_every_scenario_resolves(xdist):
    items, unresolved = _collect(*xdist)
    assert items > 0 or "-n" in xdist   # an xdist controller collects nothing itself
    assert unresolved == {}


# Each test writes the ids it got to a file of its own (a worker's output stays in it).
SUITE = """\
import pathlib, re
import pytest

@pytest.mark.parametrize("n", range(2))
def test_ids(n, worker_id, testrun_uid):
    assert re.fullmatch("[0-9a-f]{32}", testrun_uid)
    pathlib.Path(f"ids-{n}").write_text(f"{worker_id} {testrun_uid}")
"""


def _ids(tmp_path: Path, *args: str) -> list[tuple[str, str]]:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["fixtures.without_xdist"]\n')
    (tmp_path / "test_ids.py").write_text(SUITE)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-W", "error", *args, "test_ids.py"], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [tuple((tmp_path / f"ids-{n}").read_text().split()) for n in range(2)]


def test_without_xdist_the_worker_is_master_and_the_run_has_one_uid(tmp_path):
    # -W error: no deprecation either (pytest 9 warns of instance-method session fixtures)
    ids = _ids(tmp_path, "-p", "no:xdist")
    assert len(ids) == 2 and {w for w, _ in ids} == {"master"} and len({u for _, u in ids}) == 1


def test_with_xdist_its_own_fixtures_stay(tmp_path):
    """The fallback is not registered when xdist is: workers keep their gwN and share the
    controller's uid."""
    ids = _ids(tmp_path, "-n", "2")
    assert {w for w, _ in ids} <= {"gw0", "gw1"} and len({u for _, u in ids}) == 1, ids
