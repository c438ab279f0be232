"""Wrong credentials or an unreachable endpoint of the vCenter or the Kubernetes cluster stop
`pytest -n 2 scenarios/` in the controller, before any worker starts: exit 4, one line naming
the platform, its endpoint and the problem, nothing created (fixtures/platform_checks.py).
Before, the vCenter's login failed in a worker's session fixture, whose pytest.exit xdist
reported as `INTERNALERROR> AssertionError: ('scenarios/vmware/test_vmware.py::test_vmware',
<WorkerController gw3>)` while the other workers' scenarios ran and left 18 resources.
The labs live on nets of their own: Datera and the vCenter simulator on 127.151, Datera and
the Kubernetes control plane on 127.152."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.labcli import REPO, LabCli

pytestmark = pytest.mark.slow
NET = "127.151"
K8S_NET = "127.152"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = LabCli(NET, tmp_path_factory.mktemp("checks-lab") / "run")
    proc = lab.run("up", "--only", "datera,vsphere")
    assert proc.returncode == 0, proc.stderr
    yield lab
    lab.run("down", "--force")


@pytest.fixture(scope="module")
def k8s_lab(tmp_path_factory):
    lab = LabCli(K8S_NET, tmp_path_factory.mktemp("checks-k8s-lab") / "run")
    lab.up_kubernetes()   # skips, with the reason, where the control plane is not built
    yield lab
    lab.run("down", "--force")


def _env(lab: LabCli) -> dict:
    env = lab.env()
    for name in ("VANCOUVER_TARGET", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID"):
        env.pop(name, None)
    return env


def _copy_target(lab: LabCli, to: Path) -> Path:
    for f in lab.target.parent.iterdir():
        (to / f.name).write_bytes(f.read_bytes())
    return to / "target.yaml"


def _demo(lab: LabCli, target: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--duration", "1m",
                           "scenarios/", "--target", str(target), "-p", "no:cacheprovider",
                           "--html", str(out / "report.html")], cwd=REPO, env=_env(lab),
                          capture_output=True, text=True, timeout=120)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 4, text
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    errors = [ln for ln in text.splitlines() if ln.startswith("ERROR")]
    assert len(errors) == 1, text
    # No worker started, so no scenario made anything (tests/test_demo_e2e.py's sweep finds
    # what a run leaves; here there is not even a worker's line).
    assert "[gw" not in text and "created" not in text, text
    return errors[0]


def _leftovers(lab: LabCli, target: Path) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--target", str(target)],
                          cwd=REPO, env=_env(lab), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [ln for ln in proc.stdout.splitlines() if ln.startswith("would delete")]


@pytest.mark.parametrize("change,expect", [
    ({"password": "not-the-password"},
     "login as 'administrator@vsphere.local' refused (wrong credentials)"),
    ({"url": f"https://{NET}.5.99:8989/sdk"}, "unreachable (connection refused)"),
])
def test_a_vcenter_that_refuses_or_does_not_answer_stops_the_run_in_the_controller(
        lab, tmp_path, change, expect):
    target = _copy_target(lab, tmp_path)
    doc = yaml.safe_load(target.read_text())
    password = doc["vsphere"]["password"]
    doc["vsphere"].update(change)
    target.write_text(json.dumps(doc))
    proc = _demo(lab, target, tmp_path)
    line = _one_line(proc)
    url = doc["vsphere"]["url"]
    assert line == f"ERROR: vSphere vCenter {url}: {expect}", line
    assert password not in proc.stdout + proc.stderr
    assert _leftovers(lab, lab.target) == []


def test_an_unusable_kubernetes_cluster_stops_the_run_in_the_controller(lab, tmp_path):
    target = _copy_target(lab, tmp_path)
    doc = yaml.safe_load(target.read_text())
    server = f"https://{NET}.4.99:6443"   # nothing answers there: the lab has no cluster
    (tmp_path / "kubeconfig").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "demo",
        "clusters": [{"name": "c", "cluster": {"server": server,
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "demo", "context": {"cluster": "c", "user": "u"}}]}))
    doc["kubernetes"] = {"kubeconfig": "kubeconfig", "datera_tenant": "Vancouver-KU"}
    target.write_text(json.dumps(doc))
    line = _one_line(_demo(lab, target, tmp_path))
    assert line == (f"ERROR: Kubernetes cluster {server} (kubeconfig {tmp_path / 'kubeconfig'})"
                    ": unreachable (connection refused)"), line


def test_the_lab_apiserver_passes_the_check_and_refuses_a_wrong_token_in_one_line(
        k8s_lab, tmp_path):
    from fixtures import kubernetes as k8s
    from fixtures.target import Target
    k8s.check(Target.load(k8s_lab.target))   # the right kubeconfig: no error
    target = _copy_target(k8s_lab, tmp_path)
    kubeconfig = yaml.safe_load((tmp_path / "kubeconfig").read_text())
    token = kubeconfig["users"][0]["user"]["token"]
    kubeconfig["users"][0]["user"]["token"] = "not-the-token"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    proc = _demo(k8s_lab, target, tmp_path)
    line = _one_line(proc)
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    assert line == (f"ERROR: Kubernetes cluster {server} (kubeconfig {tmp_path / 'kubeconfig'})"
                    ": login refused (wrong credentials)"), line
    assert token not in proc.stdout + proc.stderr
