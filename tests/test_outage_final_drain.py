"""The session's final drain (fixtures/outage/plugin.py `drain_at_end`, issue 13): a deletion
that a session fixture's teardown queued (the ESXi host's undo at the last worker's end) is
drained too, though pytest tears session fixtures down only after the outage plugin's
sessionfinish (an endless run's items leave them up); the drain waits a bounded time for the
platform it needs: back a few seconds later, the deletion runs; still down past the bound,
it is named in one line. Inner bounded endless runs (one process and xdist) with a fake
platform that is up while the file `up` exists."""
import subprocess
import sys
import threading

import pytest

from fixtures.waiters import wait_until
from tests.support import inner_run

CONFTEST = inner_run.CONFTEST.replace(
    '"fixtures.reporting",', '"fixtures.reporting", "fixtures.outage.plugin",') + '''
import os
import pathlib

import pytest

from fixtures.outage import plugin
from fixtures.outage.deferred import deferrable
from fixtures.outage.probes import EXTRA_PROBES, Probe

HERE = pathlib.Path(__file__).parent
plugin.FINAL_WAIT_S = float(os.environ.get("FINAL_WAIT_S", "60"))


def _answer():
    if not (HERE / "up").exists():
        raise ConnectionRefusedError(111, "Connection refused")


EXTRA_PROBES.append(lambda target: [Probe("fake", "Fake API", "http://127.0.0.1:9",
                                          _answer)])


@pytest.fixture(scope="session")
def host(request):
    yield
    (HERE / "up").unlink()       # the platform goes away as the session ends

    def undo():
        _answer()
        with open(HERE / "undone", "a") as f:
            f.write(f"{os.getpid()}\\n")
    deferrable(request.config, undo, "host preparation of fake", ("fake",))()
'''
TEST = """\
def test_live(host):
    pass
"""


def inner(tmp_path, xdist: bool, final_wait_s: float) -> tuple[subprocess.Popen, list[str]]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "demo.yaml").write_text(inner_run.DEMO_YAML)
    (tmp_path / "test_live.py").write_text(TEST)       # demo.yaml's scenario key "live"
    (tmp_path / "up").touch()
    env = {**inner_run.env(), "FINAL_WAIT_S": str(final_wait_s)}
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--demo-config", "demo.yaml", "--demo-profile", "ci",
                             *(["-n", "1"] if xdist else []), "--count=0", "--duration", "3s",
                             "--html", str(tmp_path / "report.html")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read():
        for ln in iter(proc.stdout.readline, ""):
            lines.append(ln)
    threading.Thread(target=read, daemon=True).start()
    return proc, lines


@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist"])
def test_a_platform_back_within_the_bound_gets_the_deletion_run(tmp_path, xdist):
    proc, lines = inner(tmp_path, xdist, final_wait_s=120)
    try:
        wait_until(lambda: any("waiting up to" in ln for ln in lines) or
                   proc.poll() is not None, 120, "the final drain's waiting line", 0.1)
        (tmp_path / "up").touch()                     # back a moment later
        assert proc.wait(120) == 0, "".join(lines)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines)
    assert "waiting up to 120s for Fake API" in out, out[-3000:]
    assert "ran 1 deletion(s) left by the outage: host preparation of fake" in out
    assert "could not run" not in out
    assert len((tmp_path / "undone").read_text().split()) == 1


@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist"])
def test_a_platform_that_stays_down_is_named_in_one_line(tmp_path, xdist):
    proc, lines = inner(tmp_path, xdist, final_wait_s=2)
    try:
        assert proc.wait(120) == 0, "".join(lines)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines)
    named = [ln for ln in out.splitlines() if "could not run" in ln]
    assert len(named) == 1 and "host preparation of fake" in named[0], out[-3000:]
    assert "python -m fixtures.cleanup" in named[0]
    assert not (tmp_path / "undone").exists()
