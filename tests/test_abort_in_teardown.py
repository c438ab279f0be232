"""An abort (the second stop signal) landing in one of a fixture's finalizers cuts the
iteration in one line, never an error with a traceback. pytest groups the KeyboardInterrupt
with the next finalizer's error (FixtureDef.finish raises a BaseExceptionGroup), which never
reached the harness's except KeyboardInterrupt (rehearsal cc5: a second signal during the
teardown of an iteration the first one had skipped; test_demo_e2e saw "Traceback")."""
from __future__ import annotations

import os
import signal

import pytest

from tests.support.endless_suite import Watched, make_suite, results, start

pytestmark = pytest.mark.serial

SCENARIO = '''\
import os, time, pytest
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

@pytest.fixture
def two_finalizers(request):
    def deletes_after():
        raise RuntimeError("the volume's deletion after the cut")

    def deletes_slowly():
        open(os.path.join(HERE, "in-teardown"), "w").close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.02)
    request.addfinalizer(deletes_after)
    request.addfinalizer(deletes_slowly)   # runs first (last in, first out)

def test_cut(two_finalizers):
    pass
'''


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["one process", "xdist"])
def test_an_abort_in_a_finalizer_cuts_the_iteration_without_a_traceback(tmp_path, workers):
    make_suite(tmp_path, {"cut": {"n": 1, "sleep": 0}})
    (tmp_path / "scenarios" / "test_cut.py").write_text(SCENARIO)
    with Watched(start(tmp_path, *workers, "--count=0", "--timeout=120")) as run:
        run.wait_for(lambda: (tmp_path / "in-teardown").exists(), "the slow finalizer")
        os.killpg(run.proc.pid, signal.SIGTERM)
        run.wait_for(run.saw("SIGTERM: stopping"), "the graceful stop")
        os.killpg(run.proc.pid, signal.SIGINT)
        out = run.finish(60)
    assert run.proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out and "ExceptionGroup" not in out, out[-3000:]
    (record,) = [r for r in results(tmp_path) if r["nodeid"].endswith("test_cut")]
    assert record["outcome"] == "aborted", record
    assert "RuntimeError: the volume's deletion after the cut" in record["reason"], record
