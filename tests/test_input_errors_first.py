"""A bad input file of the run (--target, VANCOUVER_TARGET, --demo-config) is one line that
comes first and alone: before the run's where-line ("Vancouver demo: reports .../index.html",
fixtures/dashboard) announces reports that will not be written, and before any worker or lab
starts. A new user saw that line above "ERROR: <file>: line 2: not valid YAML"; the line now
also names the option the file came from."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.inner_run import NO_HYPOTHESIS, env

ROOT = Path(__file__).resolve().parents[1]
TARGET = "kind: real\ndatera: {udc: datera.json, transport: iscsi, tenant_qos: per-volume}\n"


def _run(tmp_path: Path, *args: str, **extra_env: str) -> tuple[int, list[str]]:
    e = env()
    e.pop("VANCOUVER_TARGET")   # the user's own environment: no dummy target
    e.update(extra_env, PYTEST_ADDOPTS=NO_HYPOTHESIS)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-n", "2", "--count=0", "--live-view", "plain",
                           "--html", str(tmp_path / "reports" / "report.html"), *args,
                           "scenarios/"], cwd=ROOT, env=e, capture_output=True, text=True,
                          timeout=120)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines


def _bad(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,message", [
    (None, "no such file"),
    ("kind: [unclosed\n", "line 2: not valid YAML"),
    (TARGET.replace("iscsi", "carrier-pigeon"), "datera.transport: "),
    ("- a\n", "expected a mapping at the top level"),
], ids=["missing", "not-yaml", "bad-value", "not-a-mapping"])
def test_a_bad_target_file_is_the_first_and_only_line(tmp_path, text, message):
    path = tmp_path / "missing.yaml" if text is None else _bad(tmp_path, text)
    rc, lines = _run(tmp_path, "--target", str(path))
    assert rc == 4, lines
    assert lines == [f"ERROR: --target {path}: " + lines[0].split(": ", 2)[2]], lines
    assert message in lines[0], lines
    assert not (tmp_path / "reports" / "index.html").exists()


def test_a_bad_target_file_in_the_environment_names_the_variable(tmp_path):
    path = _bad(tmp_path, "kind: [unclosed\n")
    rc, lines = _run(tmp_path, VANCOUVER_TARGET=str(path))
    assert rc == 4, lines
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: VANCOUVER_TARGET={path}: "), lines
    assert "not valid YAML" in lines[0]


def test_a_bad_demo_config_is_the_first_and_only_line(tmp_path):
    path = _bad(tmp_path, "tenants: [\n")
    rc, lines = _run(tmp_path, "--demo-config", str(path), "--target",
                     str(tmp_path / "never-read.yaml"))
    assert rc == 4, lines
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: --demo-config {path}: "), lines
    assert "not valid YAML" in lines[0]


def test_a_missing_demo_config_names_the_option(tmp_path):
    path = tmp_path / "nonexistent.yaml"
    rc, lines = _run(tmp_path, "--demo-config", str(path))
    assert rc == 4 and lines == [f"ERROR: --demo-config {path}: no such file"], lines
