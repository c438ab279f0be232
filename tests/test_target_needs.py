"""What the selected scenarios need of target.yaml is checked at the run's start, one line
naming the file and the key (fixtures/target_needs.py, fixtures/target.py), and a config
error a test meets mid-run ends an endless run at once with that line and status 4
(fixtures/endless/plugin.py). A new user's target.yaml without `datera:` ran on for the whole
--duration: 656 errors, exit 1; `make demo` would have run for ever.

The cases come from the schema (fixtures/target.py's models), not a hand list: every section
the scenarios need, every required key of every section, every file key."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import typing
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import BaseModel

from fixtures.target import FILE, REPO, Target, TargetFile
from fixtures.target_needs import NEEDS, PLATFORMS, check_needs, file_keys, required_sections
from tests.support.inner_run import NO_HYPOTHESIS, PLAIN_CONFTEST, env, run


def _config(*args: str):
    return SimpleNamespace(args=list(args), invocation_params=SimpleNamespace(dir=REPO),
                           getoption=lambda name, default=None: default)


DEMO = _config("scenarios/")


def _model_of(annotation) -> type[BaseModel] | None:
    for a in (annotation, *typing.get_args(annotation)):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _minimal(model: type[BaseModel]) -> dict:
    """The model's required keys only, each with a valid value (file keys: their own name)."""
    out = {}
    for name, field in model.model_fields.items():
        if not field.is_required():
            continue
        ann = field.annotation
        if FILE in field.metadata:
            out[name] = f"{name}.file"
        elif typing.get_origin(ann) is typing.Literal:
            out[name] = typing.get_args(ann)[0]
        elif typing.get_origin(ann) is dict:   # key -> model (openstack.clouds)
            out[name] = {"k": _minimal(typing.get_args(ann)[1])}
        elif _model_of(ann) is not None:
            out[name] = _minimal(_model_of(ann))
        else:
            assert ann is str, f"{model.__name__}.{name}: give the test a value for {ann}"
            out[name] = "x"
    return out


SECTIONS = [n for n, f in TargetFile.model_fields.items() if _model_of(f.annotation)]
FULL = {"kind": "real", **{s: _minimal(_model_of(TargetFile.model_fields[s].annotation))
                           for s in SECTIONS}}


def _required_paths(model: type[BaseModel], prefix: str) -> list[str]:
    """Every required key path of the model, as FULL spells it (a map's entry is `k`)."""
    out = []
    for name, field in model.model_fields.items():
        if not field.is_required():
            continue
        path = f"{prefix}{name}"
        out.append(path)
        if typing.get_origin(field.annotation) is dict:
            out += _required_paths(typing.get_args(field.annotation)[1], f"{path}.k.")
        elif _model_of(field.annotation) is not None:
            out += _required_paths(_model_of(field.annotation), f"{path}.")
    return out


KEY_PATHS = [p for s in SECTIONS
             for p in _required_paths(_model_of(TargetFile.model_fields[s].annotation), s + ".")]


def _write(tmp_path: Path, doc: dict) -> Path:
    for section in SECTIONS:
        for key in file_keys(section):
            (tmp_path / f"{key}.file").write_text("{}")
    path = tmp_path / "target.yaml"
    path.write_text(json.dumps(doc))
    return path


def _without(doc: dict, dotted: str) -> dict:
    doc = json.loads(json.dumps(doc))
    *parents, last = dotted.split(".")
    here = doc
    for p in parents:
        here = here[p]
    del here[last]
    return doc


def test_the_full_minimal_target_passes(tmp_path):
    check_needs(DEMO, Target.load(_write(tmp_path, FULL)))


def test_every_section_is_either_needed_or_a_platform_that_deselects():
    needed = {s for sections, _ in NEEDS.values() for s in sections}
    assert set(SECTIONS) == needed | set(PLATFORMS), "decide what a new section's absence does"
    assert not needed & set(PLATFORMS)


@pytest.mark.parametrize("section", SECTIONS)
def test_a_missing_section(tmp_path, section):
    target = Target.load(_write(tmp_path, _without(FULL, section)))
    if section in PLATFORMS:   # its scenarios are deselected (scenarios/*/conftest.py)
        check_needs(DEMO, target)
        return
    with pytest.raises(pytest.UsageError) as e:
        check_needs(DEMO, target)
    assert str(e.value).startswith(f"{target.path}: {section}: missing section ("), e.value


def test_a_section_is_needed_only_by_the_scenarios_selected(tmp_path):
    target = Target.load(_write(tmp_path, _without(FULL, "ldap")))
    check_needs(_config("scenarios/test_performance.py"), target)
    check_needs(_config("tests"), target)   # testpaths: no scenario at all
    with pytest.raises(pytest.UsageError, match=r": ldap: missing section"):
        check_needs(_config("scenarios/test_tenancy.py::test_tenancy"), target)
    assert required_sections(_config("tests")) == {}


@pytest.mark.parametrize("dotted", KEY_PATHS)
def test_a_missing_required_key(tmp_path, dotted):
    with pytest.raises(pytest.UsageError) as e:
        Target.load(_write(tmp_path, _without(FULL, dotted)))
    assert str(e.value) == f"{tmp_path / 'target.yaml'}: {dotted}: missing", e.value


@pytest.mark.parametrize("section,key", [(s, k) for s in SECTIONS for k in file_keys(s)])
def test_a_file_key_naming_no_file(tmp_path, section, key):
    doc = json.loads(json.dumps(FULL))
    doc[section][key] = "gone.json"
    target = Target.load(_write(tmp_path, doc))
    with pytest.raises(pytest.UsageError) as e:
        check_needs(DEMO, target)
    assert str(e.value) == f"{target.path}: {section}.{key}: no such file {tmp_path}/gone.json"


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    e = env()
    e.pop("VANCOUVER_TARGET")
    e["PYTEST_ADDOPTS"] = NO_HYPOTHESIS
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--live-view", "plain", "--html", str(tmp_path / "r" / "report.html"),
                           *args], cwd=REPO, env=e, capture_output=True, text=True, timeout=120)


def test_the_trial_run_without_datera_is_one_line_at_start(tmp_path):
    """The new user's command: -n 2, endless, 60 s; now status 4 before any worker starts."""
    path = _write(tmp_path, _without(FULL, "datera"))
    proc = _pytest(tmp_path, "-n", "2", "--count=0", "--duration", "60s", "scenarios/",
                   "--target", str(path))
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert proc.returncode == 4, lines
    assert lines == [f"ERROR: --target {path}: datera: missing section (every scenario uses "
                     "the Datera cluster)"], lines
    assert not (tmp_path / "r" / "index.html").exists()


BAD_FIXTURE_SUITE = """\
import pytest

@pytest.fixture
def settings():
    raise pytest.UsageError("/t/target.yaml: missing section 'datera'")

def test_bad(settings):
    pass

@pytest.mark.parametrize("n", range(3))
def test_ok(n):
    pass
"""


@pytest.mark.parametrize("workers", [["-n", "2"], []], ids=["xdist", "single"])
def test_a_usage_error_mid_run_ends_an_endless_run_at_once(tmp_path, workers):
    """No --duration: before the fix the run never ended (the timeout fails the test)."""
    (tmp_path / "conftest.py").write_text(PLAIN_CONFTEST)
    (tmp_path / "test_demo.py").write_text(BAD_FIXTURE_SUITE)
    code, out = run(tmp_path, *workers, "--count=0", timeout=120)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert code == 4, out[-3000:]
    assert lines[-1] == "ERROR: /t/target.yaml: missing section 'datera'", out[-3000:]
    assert re.search(r"\b(\d+) errors? in ", out).group(1) == "1", out[-3000:]
    assert "[vancouver] a configuration error: stopping" in out, out[-3000:]
    assert (tmp_path / "reports" / "index.html").is_file()   # the report is still written
