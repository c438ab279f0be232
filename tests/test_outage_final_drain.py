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

from fixtures.outage.deferred import DeferredTeardown
from fixtures.outage.plugin import drain_at_end
from fixtures.outage.probes import Probe
from fixtures.outage.watch import Watch
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


def finished(proc, lines) -> str:
    """The inner run's output once it ended with status 0 (killed after 120 s)."""
    try:
        assert proc.wait(120) == 0, "".join(lines)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return "".join(lines)


@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist"])
def test_a_platform_back_within_the_bound_gets_the_deletion_run(tmp_path, xdist):
    proc, lines = inner(tmp_path, xdist, final_wait_s=120)
    try:
        wait_until(lambda: any("waiting up to" in ln for ln in lines) or
                   proc.poll() is not None, 120, "the final drain's waiting line", 0.1)
        (tmp_path / "up").touch()                     # back a moment later
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    out = finished(proc, lines)
    assert "waiting up to 120s for Fake API" in out, out[-3000:]
    assert "ran 1 deletion(s) left by the outage: host preparation of fake" in out
    assert "could not run" not in out
    assert len((tmp_path / "undone").read_text().split()) == 1


@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist"])
def test_a_platform_that_stays_down_is_named_in_one_line(tmp_path, xdist):
    proc, lines = inner(tmp_path, xdist, final_wait_s=2)
    out = finished(proc, lines)
    named = [ln for ln in out.splitlines() if "could not run" in ln]
    assert len(named) == 1 and "host preparation of fake" in named[0], out[-3000:]
    assert "python -m fixtures.cleanup" in named[0]
    assert not (tmp_path / "undone").exists()


# -- drain_at_end itself: which platforms it waits for, and an abort -------------------------

def _probe(platform: str, answers: list[bool], asked: list[str]) -> Probe:
    def check():
        asked.append(platform)
        if not answers[0]:
            raise ConnectionRefusedError(111, "Connection refused")
    return Probe(platform, f"{platform} API", f"https://{platform}.lab:1", check)


def _queue(platform: str, up: list[bool], ran: list[str]) -> DeferredTeardown:
    queue = DeferredTeardown()

    def delete():
        if not up[0]:
            raise ConnectionRefusedError(111, "Connection refused")
        ran.append(platform)
    queue.wrap(delete, f"thing on {platform}", (platform,))()
    assert len(queue.pending) == 1
    return queue


def test_an_abort_skips_the_wait_and_names_what_is_left(capsys):
    asked, ran, up = [], [], [False]
    probes = [_probe("vsphere", up, asked)]
    queue = _queue("vsphere", up, ran)
    left = drain_at_end(queue, Watch(lambda: probes, print, print), probes, "gw0",
                        aborting=lambda: True, wait_s=600)
    err = capsys.readouterr().err
    assert [p.what for p in left] == ["thing on vsphere"] and ran == []
    assert "waiting up to" not in err and asked == []
    assert err.count("could not run") == 1


def test_only_the_platforms_the_queued_deletions_need_are_waited_for(capsys):
    """Another platform down (LDAP) does not hold the end; the needed one is waited for."""
    asked, ran, up = [], [], [False]
    ldap = _probe("ldap", [False], asked)
    vsphere = _probe("vsphere", up, asked)
    queue = _queue("vsphere", up, ran)

    def back_on_second_probe():
        # polled while waiting (never an abort): the platform answers from its second probe on
        if asked.count("vsphere") >= 2:
            up[0] = True
        return False
    left = drain_at_end(queue, Watch(lambda: [ldap, vsphere], print, print), [ldap, vsphere],
                        "gw0", aborting=back_on_second_probe, wait_s=600)
    err = capsys.readouterr().err
    assert left == [] and ran == ["vsphere"]
    assert "ldap" not in asked, asked
    assert err.count("waiting up to") == 1 and "vsphere API" in err
