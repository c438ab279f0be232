"""The demo itself, end to end: `pytest -n 5 --count=0 scenarios/` against a lab of its own.

Each test runs the real scenario suite in a subprocess, the way a booth engineer does, and
then checks through dfs_sdk that nothing was left on the cluster. The lab lives on its own
net (127.150), so the demo's fio load and tenant caps never touch the session lab.
"""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.waiters import wait_until
from tests.support.chaos_run import stop_ended_wait
from tests.support.labcli import REPO, LabCli, module_lab

# pytest.ini's 300 s per test is shorter than an inner run's own 600 s limit: a five-worker
# demo's start and cleanup alone took 280 s on a loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
NET = "127.150"


@pytest.fixture(scope="module")
def demo_lab(tmp_path_factory):
    yield from module_lab(NET, "datera", tmp_path_factory.mktemp("demo-lab") / "run")


def _env(lab: LabCli) -> dict:
    env = lab.env()
    env.pop("VANCOUVER_TARGET", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_TESTRUNUID", None)
    return env


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_demo_left_running():
    """A test that fails while its demo runs must not leave it creating volumes on the lab
    the next test checks."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def _demo(lab: LabCli, out: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pytest", "scenarios/", "--target", str(lab.target),
           "--html", str(out / "report.html"), "-p", "no:cacheprovider", *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(lab), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    _started.append(proc)
    return proc


def _leftovers(lab: LabCli) -> list[str]:
    """Demo resources still on the lab's Datera, found through dfs_sdk by the sweeper."""
    proc = subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--target",
                           str(lab.target)], cwd=REPO, env=_env(lab), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [ln for ln in proc.stdout.splitlines() if ln.startswith("would delete")]


def _secrets(lab: LabCli) -> list[str]:
    tdir = lab.target.parent
    values = [json.loads((tdir / "datera.json").read_text())["password"]]
    values += [u["password"] for u in json.loads((tdir / "ldap-users.json").read_text()).values()]
    return values


def _assert_no_secret_written(lab: LabCli, *dirs: Path) -> None:
    secrets = _secrets(lab)
    for d in dirs:
        for f in d.rglob("*"):
            if f.is_file() and f.suffix in (".html", ".jsonl", ".log", ".txt"):
                text = f.read_text(errors="replace")
                for s in secrets:
                    assert s not in text, f"a lab password appears in {f}"


def _wait_until_running(lab: LabCli, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until the demo has volumes on the cluster, i.e. iterations are mid-flight."""
    def created():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        return _leftovers(lab)
    wait_until(created, timeout, "the demo to create something on the cluster", 0.5,
               error=AssertionError)


def test_endless_bounded_run_uses_every_worker_and_leaves_nothing(demo_lab, tmp_path):
    proc = _demo(demo_lab, tmp_path, "-n", "5", "--count=0", "--duration", "30s")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-5000:]
    results = [json.loads(ln) for ln in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {r["worker"] for r in results} == {f"gw{i}" for i in range(5)}, results
    assert all(r["outcome"] == "passed" for r in results)
    assert (tmp_path / "index.html").is_file()
    assert re.search(r"\[gw\d\] PASSED round \d+ scenarios/test_tenancy.py", out)
    assert _leftovers(demo_lab) == []
    _assert_no_secret_written(demo_lab, tmp_path, demo_lab.run_dir / "logs")


def test_sigint_mid_run_finishes_iterations_and_cleans_up(demo_lab, tmp_path):
    proc = _demo(demo_lab, tmp_path, "-n", "5", "--count=0", "--demo-profile", "ci")
    _wait_until_running(demo_lab, proc)
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-5000:]
    # pytest's summary, then the harness's own last line (fixtures/endless/farewell.py)
    lines = out.splitlines()
    summary = next(ln for ln in reversed(lines) if re.search(r"=+ .* in [\d.]+s", ln))
    assert "passed" in summary and "failed" not in summary, out[-3000:]
    last = lines[-1]
    assert last.startswith("[vancouver] run stopped by the user (Ctrl-C)"), out[-3000:]
    assert (tmp_path / "index.html").is_file()
    assert _leftovers(demo_lab) == []
    _assert_no_secret_written(demo_lab, tmp_path)


def _read_lines(proc: subprocess.Popen) -> list[str]:
    import threading
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                     daemon=True).start()
    return lines


@pytest.mark.parametrize("signals", [("SIGTERM",), ("SIGTERM", "SIGHUP")])
def test_sigterm_to_process_group_finishes_or_cuts_and_cleans_up(demo_lab, tmp_path, signals):
    """What `timeout`, a CI runner or systemd do (SIGTERM to every process of the run): the
    first lets running iterations finish, a second cuts them; either way everything created
    is deleted and the proof is written (issue 8 item 1)."""
    proc = _demo(demo_lab, tmp_path, "-n", "2", "--count=0", "--demo-profile", "ci")
    lines = _read_lines(proc)
    _wait_until_running(demo_lab, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    wait_until(lambda: any("SIGTERM: stopping: waiting for" in ln for ln in lines), 30,
               "the stop line", 0.1, error=AssertionError)
    if len(signals) == 2:
        os.killpg(proc.pid, getattr(signal, signals[1]))
    proc.wait(timeout=300)
    out = "".join(lines)
    assert proc.returncode == (0 if len(signals) == 1 else 2), out[-5000:]
    assert "Traceback" not in out, out[-5000:]
    results = [json.loads(ln) for ln in (tmp_path / "results.jsonl").read_text().splitlines()]
    index = (tmp_path / "index.html").read_text()
    assert ("stopped by SIGTERM" if len(signals) == 1 else "aborted") in index
    assert "running" not in index
    for href in re.findall(r'href="([^"]+)"', index):
        assert (tmp_path / href).is_file(), href
    assert re.search(rf"<tr class='all' data-total='{len(results)}'", index)
    if len(signals) == 1:   # one waiting for another's QoS window ends skipped (its reason)
        outcomes = [r["outcome"] for r in results]
        assert "passed" in outcomes, results
        assert all(r["outcome"] == "passed" or stop_ended_wait(r) for r in results), results
    assert _leftovers(demo_lab) == []
    _assert_no_secret_written(demo_lab, tmp_path)


def test_kill_9_then_cleanup_command_leaves_nothing(demo_lab, tmp_path):
    proc = _demo(demo_lab, tmp_path, "-n", "2", "--count=0", "--demo-profile", "ci")
    _wait_until_running(demo_lab, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _leftovers(demo_lab), "the killed run left its volumes (the point of this test)"
    clean = subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--delete", "--target",
                            str(demo_lab.target)], cwd=REPO, env=_env(demo_lab),
                           capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.splitlines()[-1].endswith(", 0 left"), clean.stdout
    assert _leftovers(demo_lab) == []


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stdout + proc.stderr).strip()
    assert proc.returncode not in (0, 1), text
    assert "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if ln.startswith("ERROR")]
    assert len(errors) == 1, text
    return errors[0]


def test_broken_demo_yaml_is_one_line(demo_lab, tmp_path):
    bad = tmp_path / "demo.yaml"
    bad.write_text((REPO / "demo.yaml").read_text().replace("interval_s: 1}", "interval_s: -1}", 1))
    proc = subprocess.run([sys.executable, "-m", "pytest", "scenarios/", "--target",
                           str(demo_lab.target), "--demo-config", str(bad), "-p",
                           "no:cacheprovider", "--html", str(tmp_path / "report.html")], cwd=REPO, env=_env(demo_lab),
                          capture_output=True, text=True, timeout=120)
    line = _one_line_error(proc)
    assert "interval_s" in line and "-1" in line, line


@pytest.mark.parametrize("mutation,expect", [
    (lambda doc: doc.replace("datera.json", "missing.json"), "missing.json"),
    (lambda doc: doc + "\n  oops: [unclosed\n", "not valid YAML"),
    (lambda doc: re.sub(r"transport: \S+", "transport: carrier-pigeon", doc), "transport"),
])
def test_broken_target_yaml_is_one_line(demo_lab, tmp_path, mutation, expect):
    tdir = demo_lab.target.parent
    for f in tdir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    bad = tmp_path / "target.yaml"
    bad.write_text(mutation(bad.read_text()))
    proc = subprocess.run([sys.executable, "-m", "pytest", "scenarios/", "--target", str(bad),
                           "-p", "no:cacheprovider", "--html", str(tmp_path / "report.html")],
                          cwd=REPO, env=_env(demo_lab),
                          capture_output=True, text=True, timeout=120)
    assert expect in _one_line_error(proc)


def test_wrong_credentials_and_unreachable_endpoint_fail_fast(demo_lab, tmp_path):
    tdir = demo_lab.target.parent
    for f in tdir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    udc = json.loads((tmp_path / "datera.json").read_text())
    for change, expect in (({"password": "not-the-password"}, "refused (wrong credentials)"),
                           ({"mgmt_ip": f"{NET}.99.99"}, "unreachable")):
        (tmp_path / "datera.json").write_text(json.dumps({**udc, **change}))
        # dfs_sdk alone would retry for 300 s; the timeout turns that into a failure.
        proc = subprocess.run([sys.executable, "-m", "pytest", "scenarios/", "--target",
                               str(tmp_path / "target.yaml"), "-p", "no:cacheprovider",
                               "--html", str(tmp_path / "report.html")],
                              cwd=REPO, env=_env(demo_lab), capture_output=True, text=True,
                              timeout=60)
        line = _one_line_error(proc)
        assert expect in line and "Datera" in line, line
        assert udc["password"] not in proc.stdout + proc.stderr
