"""fixtures/config.py and demo.yaml: strict validation, one-line errors, profiles, `demo`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fixtures import config as democonfig

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo.yaml"


def base() -> dict:
    return yaml.safe_load(DEMO.read_text())


def parse(doc, profile="ci") -> democonfig.Demo:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    return democonfig.parse(text, profile, Path("demo.yaml"))


def test_project_demo_yaml_has_the_plans_numbers():
    booth = democonfig.load(DEMO, "booth")
    assert booth.tenant_qos.total_iops_max == 1000
    assert [booth.tiers[t].total_iops_max for t in ("bronze", "silver", "gold")] == \
        [500, 1000, 2000]
    assert booth.images.size_gib == 100
    assert booth.interval_s("image_rotation") == 300   # the plan: an image every 5 minutes
    assert [t.name for t in booth.tenants] == ["Vancouver-OM", "Vancouver-ON", "Vancouver-OP",
                                               "Vancouver-KU", "Vancouver-VM"]
    assert [t.release for t in booth.tenants_on("openstack")] == ["mitaka", "newton", "pike"]
    ci = democonfig.load(DEMO, "ci")
    assert ci.volumes.size_gib == 1 and ci.fio.runtime_s <= 5
    assert set(ci.scenarios) == set(booth.scenarios)


def _set(doc, path, value):
    keys = path.split(".")
    for k in keys[:-1]:
        doc = doc[int(k)] if isinstance(doc, list) else doc[k]
    if value is KeyError:
        del doc[keys[-1]]
    else:
        doc[keys[-1]] = value


@pytest.mark.parametrize("path,value,message", [
    ("profiles.ci.tiers.gold.total_iops_max", -5,
     "profiles.ci.tiers.gold.total_iops_max: expected a positive integer, got -5"),
    ("profiles.ci.tiers.gold.total_iops_max", "fast",
     "profiles.ci.tiers.gold.total_iops_max: expected a positive integer, got 'fast'"),
    ("profiles.ci.tiers.silver.total_iops_max", 400,
     "profiles.ci.tiers: expected bronze < silver < gold total_iops_max, got bronze=500, "
     "silver=400, gold=2000"),
    ("profiles.ci.volumes.size_gib", 0,
     "profiles.ci.volumes.size_gib: expected a positive integer, got 0"),
    ("profiles.ci.volumes.size_gb", 1, "profiles.ci.volumes.size_gb: unknown key"),
    ("profiles.ci.fio.runtime_s", True,
     "profiles.ci.fio.runtime_s: expected a positive number, got True"),
    ("profiles.ci.fio.block_size", "big",
     "profiles.ci.fio.block_size: expected a size such as 4k or 1m, got 'big'"),
    ("profiles.ci.scenarios.tenancy.interval_s", -1,
     "profiles.ci.scenarios.tenancy.interval_s: expected a number >= 0, got -1"),
    ("profiles.ci.rolling.servers", KeyError, "profiles.ci.rolling.servers: missing"),
    ("tenants.0.release", "queens",
     "tenants[0].release: expected one of mitaka, newton, pike, got 'queens'"),
    ("tenants.3.platform", "openshift",
     "tenants[3].platform: expected one of openstack, kubernetes, vmware, got 'openshift'"),
    ("profiles.staging", {}, "profiles.staging: unknown profile (allowed: booth, ci)"),
    ("profiles.booth.images", [1], "profiles.booth.images: expected a mapping, got a list"),
])
def test_bad_values_name_the_key(path, value, message):
    doc = base()
    _set(doc, path, value)
    with pytest.raises(democonfig.ConfigError) as e:
        parse(doc)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value) and "pw-not-shown" not in str(e.value)


def test_duplicate_keys_and_bad_yaml():
    text = DEMO.read_text().replace("  ci:\n", "  ci:\n    images: {size_gib: 1}\n", 1)
    with pytest.raises(democonfig.ConfigError, match=r"line \d+: duplicate key 'images'"):
        parse(text)
    with pytest.raises(democonfig.ConfigError, match=r"line \d+: not valid YAML"):
        parse("tenants: [\n  - a: b\n")


def _run(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    e = dict(os.environ, PYTHONPATH=str(ROOT), VANCOUVER_TARGET="/nonexistent/target.yaml")
    e.pop("PYTEST_ADDOPTS", None)
    (tmp / "conftest.py").write_text(
        'pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting.plugin"]\n')
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=tmp, env=e, capture_output=True, text=True, timeout=60)


def test_broken_demo_yaml_is_exactly_one_line(tmp_path):
    (tmp_path / "demo.yaml").write_text(
        DEMO.read_text().replace("gold: {total_iops_max: 2000}", "gold: {total_iops_max: -5}"))
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    proc = _run(tmp_path, "--demo-config", "demo.yaml")
    assert proc.returncode == 4
    lines = [x for x in (proc.stdout + proc.stderr).splitlines() if x.strip()]
    assert lines == ["ERROR: --demo-config demo.yaml: profiles.booth.tiers.gold.total_iops_max: "
                     "expected a positive integer, got -5"], lines
    assert not (tmp_path / "reports").exists()


def test_bad_duration_is_one_line(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    proc = _run(tmp_path, "--duration", "soon")
    lines = [x for x in (proc.stdout + proc.stderr).splitlines() if x.strip()]
    assert proc.returncode == 4 and len(lines) == 1 and "--duration soon" in lines[0], lines


def test_demo_fixture_profile_defaults(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "def test_profile(demo):\n"
        "    assert demo.profile == 'ci' and demo.tiers['gold'].total_iops_max == 2000\n")
    proc = _run(tmp_path, "-rA")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 passed" in out


def _scenario_suite(tmp: Path, modules: list[str], keys: list[str]) -> None:
    doc = base()
    doc["profiles"]["ci"]["scenarios"] = {k: {"interval_s": 0} for k in keys}
    doc["profiles"]["booth"]["scenarios"] = {k: {"interval_s": 0} for k in keys}
    (tmp / "demo.yaml").write_text(yaml.safe_dump(doc))
    for m in modules:
        folder, _, name = m.rpartition("/")
        path = tmp / "scenarios" / folder / f"test_{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("def test_step():\n    pass\n")


@pytest.mark.parametrize("modules,keys,line", [
    (["tenancy"], ["tenancy", "no_such_module"],
     "ERROR: demo.yaml: profiles.ci.scenarios.no_such_module: no scenario module "
     "scenarios/test_no_such_module.py"),
    (["tenancy", "stray"], ["tenancy"],
     "ERROR: scenarios/test_stray.py: scenario 'stray' has no key in demo.yaml "
     "profiles.ci.scenarios (known: tenancy)"),
    (["tenancy", "openstack/stray"], ["tenancy"],
     "ERROR: scenarios/openstack/test_stray.py: scenario 'stray' has no key in demo.yaml "
     "profiles.ci.scenarios (known: tenancy)"),
])
def test_unknown_or_missing_scenario_key_is_one_line(tmp_path, modules, keys, line):
    """The scenario key is the module name; a mismatch stops the run before anything starts."""
    _scenario_suite(tmp_path, modules, keys)
    proc = _run(tmp_path, "--demo-config", "demo.yaml")
    lines = [x for x in (proc.stdout + proc.stderr).splitlines() if x.strip()]
    assert proc.returncode == 4 and lines == [line], lines


def test_scenario_keys_are_module_names(tmp_path):
    root = tmp_path
    assert democonfig.scenario_key(root, "scenarios/test_tenancy.py") == "tenancy"
    assert democonfig.scenario_key(root, root / "scenarios/openstack/test_image_rotation.py") \
        == "image_rotation"
    assert democonfig.scenario_key(root, "tests/test_harness_config.py") is None
    assert democonfig.scenario_key(root, "scenarios/conftest.py") is None
    assert democonfig.scenario_key(root, "scenarios/a/b/test_deep.py") is None
    # The project itself: every key of demo.yaml has its module and the other way round.
    for profile in democonfig.PROFILES:
        democonfig.check_scenario_keys(democonfig.load(DEMO, profile), ROOT)


def test_validated_config_crosses_to_workers_as_data():
    """What the controller puts in workerinput rebuilds the same typed config."""
    demo = democonfig.load(DEMO, "booth")
    wire = demo.model_dump(mode="json")
    import json
    assert json.loads(json.dumps(wire)) == wire  # plain data: execnet can carry it
    assert democonfig.Demo.model_validate(wire) == demo


def test_default_profile():
    class Cfg:
        def __init__(self, count, duration):
            self.opts = {"count": count, "duration": duration}

        def getoption(self, name, default=None):
            return self.opts.get(name, default)
    assert democonfig.default_profile(Cfg(0, None)) == "booth"
    assert democonfig.default_profile(Cfg(0, "30s")) == "ci"
    assert democonfig.default_profile(Cfg(1, None)) == "ci"
    assert democonfig.default_profile(Cfg(5, None)) == "ci"


# --------------------------------------------------------------------------- target.yaml

TARGET_YAML = """\
kind: real
datera: {udc: datera.json, transport: iscsi, tenant_qos: per-volume}
"""


def test_misspelled_key_names_the_unknown_key():
    """A renamed key is both unknown and (its right name) missing: the unknown one is named."""
    doc = base()
    doc["profiles"]["ci"]["fioo"] = doc["profiles"]["ci"].pop("fio")
    with pytest.raises(democonfig.ConfigError) as e:
        democonfig.parse(yaml.safe_dump(doc), "ci", DEMO)
    assert str(e.value).startswith("profiles.ci.fioo: unknown key (allowed: "), str(e.value)


def test_readme_target_example_is_accepted(tmp_path):
    """The target.yaml example README.md gives for real hardware parses as printed."""
    from fixtures.target import read_target_file
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Targets", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "target.yaml"
    path.write_text(block)
    parsed = read_target_file(path)
    assert parsed.kind == "real" and parsed.datera.transport == "iscsi"
    assert parsed.ldap.users == "tenant-users.json"


@pytest.mark.parametrize("text,message", [
    (TARGET_YAML.replace("iscsi", "carrier-pigeon"),
     "datera.transport: "),
    (TARGET_YAML + "ceph: {}\n", "ceph: unknown key"),
    (TARGET_YAML + "vsphere: {}\n", "vsphere.url: missing"),
    (TARGET_YAML + "vsphere: {url: https://vc, user: u, password: pw-not-shown, port: 1}\n",
     "vsphere.port: unknown key"),
    (TARGET_YAML.replace("udc: datera.json, ", ""), "datera.udc: missing"),
    ("kind: [unclosed\n", "not valid YAML"),
    ("- a\n", "expected a mapping at the top level"),
])
def test_bad_target_yaml_is_one_line(tmp_path, text, message):
    from fixtures.target import read_target_file
    path = tmp_path / "target.yaml"
    path.write_text(text)
    with pytest.raises(pytest.UsageError) as e:
        read_target_file(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value) and "pw-not-shown" not in str(e.value)


COUNT_PARSES = """\
import os
import fixtures.target as t

_read = t.read_target_file

def counted(path):
    with open(os.environ["PARSE_LOG"], "a") as f:
        f.write(f"{os.getpid()}\\n")
    return _read(path)

t.read_target_file = counted
"""


def test_target_is_parsed_once_and_handed_to_workers(tmp_path):
    """The controller parses target.yaml once; xdist workers get it through workerinput."""
    (tmp_path / "target.yaml").write_text(TARGET_YAML)
    (tmp_path / "count_parses.py").write_text(COUNT_PARSES)
    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["fixtures.config", "fixtures.target"]\n')
    (tmp_path / "test_t.py").write_text(
        "import os, pytest\n"
        "@pytest.mark.parametrize('n', range(4))\n"
        "def test_t(n, target, request):\n"
        "    assert target.doc['datera']['transport'] == 'iscsi' and not target.is_lab\n"
        "    assert target.file('datera', 'udc').name == 'datera.json'\n"
        "    wire = request.config.workerinput['vancouver_target']\n"
        "    assert wire['target']['doc'] == target.doc\n"
        "    with open(os.environ['WORKER_LOG'], 'a') as f:\n"
        "        f.write(os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n")
    e = dict(os.environ, PYTHONPATH=f"{ROOT}:{tmp_path}", PARSE_LOG=str(tmp_path / "parses"),
             WORKER_LOG=str(tmp_path / "workers"))
    for k in ("PYTEST_ADDOPTS", "VANCOUVER_TARGET", "PYTEST_XDIST_WORKER"):
        e.pop(k, None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                           "count_parses", "-n", "2", "--target", "target.yaml"],
                          cwd=tmp_path, env=e, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert len((tmp_path / "parses").read_text().split()) == 1  # once, in the controller
    assert set((tmp_path / "workers").read_text().split()) == {"gw0", "gw1"}
