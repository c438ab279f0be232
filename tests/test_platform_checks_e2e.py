"""Wrong credentials or an unreachable endpoint of the vCenter or the Kubernetes cluster stop
`pytest -n 2 scenarios/` in the controller, before any worker starts: exit 4, one line naming
the platform, its endpoint and the problem, nothing created (fixtures/platform_checks.py).
Before, the vCenter's login failed in a worker's session fixture, whose pytest.exit xdist
reported as `INTERNALERROR> AssertionError: ('scenarios/vmware/test_vmware.py::test_vmware',
<WorkerController gw3>)` while the other workers' scenarios ran and left 18 resources.

That line is the run's first: the where-line ("Vancouver demo: reports .../index.html",
fixtures/dashboard) waits until every start check passed, with --target as with the lab the
harness starts or finds itself (a new user saw it announce a report the refused run never
wrote, above the error); a lab that does not start is the first line too.

The labs live on nets of their own: Datera and the vCenter simulator on 127.151 (in that net's
default run dir, where a run without --target finds it), Datera and the Kubernetes control
plane on 127.152; 127.153 never has a lab."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.labcli import REPO, LabCli, module_lab

pytestmark = pytest.mark.slow
NET = "127.151"
K8S_NET = "127.152"
NO_LAB_NET = "127.153"


@pytest.fixture(scope="module")
def lab():
    yield from module_lab(NET, "datera,vsphere", Path(f"/tmp/vancouver-lab-{NET}"), force=True)


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


def _demo(lab: LabCli, target: Path | None, out: Path) -> subprocess.CompletedProcess:
    """The endless demo (its where-line is on): on `target`, or (None) on the lab of the
    net's default run dir, which the harness finds or starts itself. stdout and stderr as
    one stream, in the order written."""
    given = ["--target", str(target)] if target is not None else []
    return subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--duration", "1m",
                           "scenarios/", *given, "-p", "no:cacheprovider",
                           "--html", str(out / "report.html")], cwd=REPO, env=_env(lab),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    text = proc.stdout.strip()
    assert proc.returncode == 4, text
    assert "Traceback" not in text and "INTERNALERROR" not in text, text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    assert len(errors) == 1 and lines[0] == errors[0], text
    # No where-line for a run that writes no report.
    assert "Vancouver demo:" not in text and "reports " not in text, text
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
    assert password not in proc.stdout
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
    assert token not in proc.stdout


@pytest.mark.parametrize("platform", ["vsphere", "datera"])
def test_a_check_failing_on_the_lab_the_harness_finds_is_the_first_line(lab, tmp_path,
                                                                          platform):
    # No --target: the run takes the lab of VANCOUVER_LAB_NET's default run dir (as a run
    # that starts it: fixtures/target.py, in its pytest_configure), and checks it as it would
    # a named target. The lab's own target files get a wrong password for the run.
    tdir = lab.target.parent
    file = tdir / ("target.yaml" if platform == "vsphere" else "datera.json")
    saved = file.read_bytes()
    doc = yaml.safe_load(saved)
    if platform == "vsphere":
        doc["vsphere"]["password"] = "not-the-password"
        expect = (f"ERROR: vSphere vCenter {doc['vsphere']['url']}: login as "
                  f"'{doc['vsphere']['user']}' refused (wrong credentials)")
    else:
        doc["password"] = "not-the-password"
        expect = (f"ERROR: Datera https://{doc['mgmt_ip']}:7718: login as "
                  f"'{doc['username']}' refused (wrong credentials)")
    try:
        file.write_text(json.dumps(doc))
        proc = _demo(lab, None, tmp_path)
    finally:
        file.write_bytes(saved)
    assert _one_line(proc) == expect
    assert lab.run("status").returncode == 0   # found and used, left running
    assert _leftovers(lab, lab.target) == []


def test_a_lab_the_harness_cannot_start_is_the_first_line(tmp_path):
    # `lab up` refuses (its default run dir is a file): the run says so first, and alone.
    blocker = Path(f"/tmp/vancouver-lab-{NO_LAB_NET}")
    blocker.write_text("not a run dir\n")
    try:
        proc = _demo(LabCli(NO_LAB_NET, blocker), None, tmp_path)
    finally:
        blocker.unlink()
    line = _one_line(proc)
    assert line.startswith(f"ERROR: embedded lab did not start: lab: up: the run dir {blocker} "
                           "is not a directory"), line
