"""Runs that use a lab (lab/users.py): `lab status` names them, `lab down` refuses to stop a
lab a live run uses (one line, status 1) unless `--force`, stale entries of dead runs are
ignored, and the run that started a lab leaves it to the last run still using it.

Labs of the tests' own (LDAP only, the cheapest lab), one net per test (tests/support/labcli.py).
"""
import re
import signal
import subprocess
import sys

import pytest

from fixtures import target as target_plugin
from fixtures.waiters import wait_gone, wait_until
from lab import users
from tests.support import inner_run

INNER_TEST = """\
import pathlib, time

def test_holds_the_lab():
    pathlib.Path("running").touch()
    deadline = time.time() + 90
    while not pathlib.Path("release").exists() and time.time() < deadline:
        time.sleep(0.05)
"""


def sleeper() -> subprocess.Popen:
    """A live process to stand in for a run (its pid and start time are what count)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def test_down_refuses_while_a_live_run_uses_the_lab_and_status_names_the_run(make_lab,
                                                                             tmp_path):
    lab = make_lab("127.218")
    assert lab.up().returncode == 0
    inner = tmp_path / "run"
    inner.mkdir()
    (inner / "conftest.py").write_text(
        'pytest_plugins = ["fixtures.config", "fixtures.target", "fixtures.endless", "fixtures.reporting"]\n')
    (inner / "demo.yaml").write_text(inner_run.demo_yaml({}))
    (inner / "test_hold.py").write_text(INNER_TEST)
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--demo-config", "demo.yaml",
         "--target", str(lab.target), "--html", "report/report.html", "test_hold.py"],
        cwd=inner, env=inner_run.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    try:
        wait_until(lambda: (inner / "running").exists() or run.poll() is not None, 60,
                   "the inner run's test to start")
        assert run.poll() is None, run.stdout.read()

        status = lab.run("status")
        assert re.search(rf"used by run pid {run.pid} \(reports {inner}/report, started "
                         r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", status.stdout), status.stdout
        down = lab.run("down")
        assert down.returncode == 1
        line = one_line(down.stderr)
        assert line.startswith("lab: not stopped, in use by 1 run: pid ") and \
            f"pid {run.pid}" in line and "python -m lab down --force" in line, line
        assert lab.run("status").returncode == 0   # still running, untouched
    finally:
        (inner / "release").touch()
        out, _ = run.communicate(timeout=60)
    assert run.returncode == 0, out
    assert "used by no run" in lab.run("status").stdout   # the run unregistered at its end
    assert lab.run("down").returncode == 0


def test_down_force_stops_a_lab_in_use_and_dead_runs_do_not_count(make_lab):
    lab = make_lab("127.219")
    assert lab.up().returncode == 0
    dead, live = sleeper(), sleeper()
    try:
        users.register(lab.run_dir, "/tmp/dead-run", pid=dead.pid)
        users.register(lab.run_dir, "/tmp/live-run", pid=live.pid)
        dead.send_signal(signal.SIGKILL)   # kill -9: it never unregisters
        dead.wait()
        status = lab.run("status").stdout
        assert f"used by run pid {live.pid} (reports /tmp/live-run" in status
        assert f"pid {dead.pid}" not in status
        assert not (users.users_dir(lab.run_dir) / f"{dead.pid}.json").exists()  # removed

        supervisor = lab.supervisor_pid()
        down = lab.run("down", "--force")
        assert down.returncode == 0, down.stderr
        assert one_line(down.stdout).endswith("; 1 run(s) using it lost it")
        assert wait_gone([supervisor], timeout=10) == []
        assert not users.users_dir(lab.run_dir).exists()   # no lab, no users
    finally:
        live.kill()
        live.wait()


class _Config:
    """What fixtures/target.py's _leave_lab reads of a pytest config: its stash."""

    def __init__(self, entry, started: bool):
        self.stash = pytest.Stash()
        self.stash[target_plugin._lab_use_key] = entry
        self.stash[target_plugin._started_lab_key] = started


def test_the_run_that_started_the_lab_leaves_it_to_the_last_run_using_it(make_lab, capfd):
    lab = make_lab("127.217")
    assert lab.up().returncode == 0
    starter, other = sleeper(), sleeper()
    try:
        first = users.register(lab.run_dir, "/tmp/a", pid=starter.pid)
        second = users.register(lab.run_dir, "/tmp/b", pid=other.pid)
        target_plugin._leave_lab(_Config(first, started=True))
        assert lab.run("status").returncode == 0, "stopped under another run's feet"
        said = capfd.readouterr().err
        assert f"lab left running, in use by 1 run: pid {other.pid}" in said, said
        supervisor = lab.supervisor_pid()
        target_plugin._leave_lab(_Config(second, started=False))   # the last one out
        assert wait_gone([supervisor], timeout=10) == []
        assert lab.run("status").returncode == 1
    finally:
        for p in (starter, other):
            p.kill()
            p.wait()


def test_a_run_without_a_lab_registers_nothing(tmp_path):
    # A real target (kind "real") or a lab target.yaml whose lab is gone: nothing to record.
    (tmp_path / "target").mkdir()
    path = tmp_path / "target" / "target.yaml"
    path.write_text("kind: lab\n")
    config = _Config(None, started=False)
    target_plugin._register_use(config, target_plugin.Target.load(path))
    assert config.stash[target_plugin._lab_use_key] is None
    assert not users.users_dir(tmp_path).exists()
