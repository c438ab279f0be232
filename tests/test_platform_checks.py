"""The run-start checks of the vCenter and the Kubernetes cluster (fixtures/platform_checks.py):
which runs select a platform, and the one line each Kubernetes problem gives. The vCenter's
lines and the whole run's exit are tests/test_platform_checks_e2e.py (against the lab)."""
import http.server
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures import kubernetes as k8s
from fixtures.platform_checks import PLATFORM_DIRS, SCENARIOS, selects
from fixtures.target import Target

REPO = SCENARIOS.parent
VMWARE = PLATFORM_DIRS["vsphere"]


def _config(args, ignore=(), cwd=REPO):
    return SimpleNamespace(args=list(args), invocation_params=SimpleNamespace(dir=cwd),
                           getoption=lambda name, default=None:
                           list(ignore) if name == "ignore" else default)


@pytest.mark.parametrize("args,ignore,expected", [
    (["scenarios/"], (), True),                                    # the demo
    (["scenarios"], (), True),
    (["."], (), True),
    (["scenarios/vmware"], (), True),
    (["scenarios/vmware/test_vmware.py::test_vmware"], (), True),
    (["scenarios/openstack/"], (), False),
    (["scenarios/test_tenancy.py", "scenarios/kubernetes"], (), False),
    (["tests"], (), False),                                        # testpaths, no arguments
    (["scenarios/"], ("scenarios/vmware",), False),
    (["scenarios/"], ("scenarios",), False),
    (["scenarios/"], ("scenarios/kubernetes",), True),
])
def test_a_platform_is_checked_only_when_the_run_takes_in_its_folder(args, ignore, expected):
    assert selects(_config(args, ignore), VMWARE) is expected


def test_paths_are_relative_to_where_pytest_was_invoked():
    assert selects(_config(["vmware"], cwd=SCENARIOS), VMWARE)
    assert not selects(_config(["openstack"], cwd=SCENARIOS), VMWARE)


def _target(tmp_path: Path, kubeconfig: str | None, context: str | None = None) -> Target:
    section = {"kubeconfig": "kubeconfig", "datera_tenant": "Vancouver-KU"}
    if context:
        section["context"] = context
    (tmp_path / "target.yaml").write_text(json.dumps({"kubernetes": section}))
    if kubeconfig is not None:
        (tmp_path / "kubeconfig").write_text(kubeconfig)
    return Target.load(tmp_path / "target.yaml")


def _kubeconfig(server: str, token: str = "t0ken-not-in-messages") -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "demo",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "demo", "context": {"cluster": "c", "user": "u"}}]})


@pytest.fixture
def apiserver():
    """An HTTP server answering every request with the status the test sets (an apiserver's
    Status body); yields (url, set_status)."""
    state = {"status": 401}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            doc = ({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": []}
                   if state["status"] == 200 else
                   {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "code": state["status"], "reason": "Unauthorized"})
            body = json.dumps(doc).encode()
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", lambda s: state.update(status=s)
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status,expect", [
    (401, "login refused (wrong credentials)"),
    (403, "login refused (the user may not list namespaces)"),
    (500, "login failed (HTTP 500"),
])
def test_a_refusing_apiserver_is_one_line_naming_it(tmp_path, apiserver, status, expect):
    url, set_status = apiserver
    set_status(status)
    with pytest.raises(k8s.KubernetesError) as e:
        k8s.check(_target(tmp_path, _kubeconfig(url)))
    line = str(e.value)
    assert "\n" not in line and "t0ken" not in line
    assert line.startswith(f"Kubernetes cluster {url} (kubeconfig {tmp_path / 'kubeconfig'})")
    assert expect in line, line


def test_an_answering_apiserver_passes(tmp_path, apiserver):
    url, set_status = apiserver
    set_status(200)
    k8s.check(_target(tmp_path, _kubeconfig(url)))


def test_an_unreachable_apiserver_is_one_line(tmp_path):
    import socket
    with socket.socket() as s:   # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(k8s.KubernetesError) as e:
            k8s.check(_target(tmp_path, _kubeconfig(url)))
    assert str(e.value) == (f"Kubernetes cluster {url} (kubeconfig {tmp_path / 'kubeconfig'}): "
                            "unreachable (connection refused)")


@pytest.mark.parametrize("kubeconfig,context,expect", [
    (None, None, "no such file"),
    ("clusters: [unclosed\n", None, "not usable"),
    (_kubeconfig("http://127.0.0.1:1"), "elsewhere", "not usable"),
])
def test_an_unusable_kubeconfig_is_one_line_naming_it(tmp_path, kubeconfig, context, expect):
    with pytest.raises(k8s.KubernetesError) as e:
        k8s.check(_target(tmp_path, kubeconfig, context))
    line = str(e.value)
    assert line.startswith(f"Kubernetes: kubeconfig {tmp_path / 'kubeconfig'}"), line
    assert expect in line and "\n" not in line, line
