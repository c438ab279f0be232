"""An abort (the second stop signal) never cuts an iteration's teardown: every finalizer runs
to its end (rehearsal cc9: a KeyboardInterrupt raised in a finalizer lost its deletion and
left a Datera initiator; cc5: pytest grouped it with the next finalizer's error and the run
printed a traceback). The abort only marks the run: status 2, no traceback, nothing left."""
from __future__ import annotations

import os
import signal

import pytest

from tests.support.endless_suite import Watched, make_suite, results, start

pytestmark = pytest.mark.serial

SCENARIO = '''\
import os, time, pytest
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def mark(name):
    open(os.path.join(HERE, name), "w").close()

@pytest.fixture
def two_finalizers(request):
    def deletes_after():
        mark("deleted-second")

    def deletes_slowly():
        mark("in-teardown")
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(HERE, "go")) and time.monotonic() < deadline:
            time.sleep(0.02)
        mark("deleted-first")
    request.addfinalizer(deletes_after)
    request.addfinalizer(deletes_slowly)   # runs first (last in, first out)

def test_cut(two_finalizers):
    pass
'''


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["one process", "xdist"])
def test_an_abort_during_teardown_lets_every_finalizer_finish(tmp_path, workers):
    make_suite(tmp_path, {"cut": {"n": 1, "sleep": 0}})
    (tmp_path / "scenarios" / "test_cut.py").write_text(SCENARIO)
    with Watched(start(tmp_path, *workers, "--count=0", "--timeout=120")) as run:
        run.wait_for(lambda: (tmp_path / "in-teardown").exists(), "the slow finalizer")
        os.killpg(run.proc.pid, signal.SIGTERM)
        run.wait_for(run.saw("SIGTERM: stopping"), "the graceful stop")
        os.killpg(run.proc.pid, signal.SIGINT)
        run.wait_for(run.saw("aborting"), "the abort")
        (tmp_path / "go").write_text("")
        out = run.finish(60)
    assert run.proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out and "ExceptionGroup" not in out, out[-3000:]
    assert (tmp_path / "deleted-first").exists() and (tmp_path / "deleted-second").exists()
    (record,) = [r for r in results(tmp_path) if r["nodeid"].endswith("test_cut")]
    assert record["outcome"] == "passed", record   # its body had ended; its teardown too
