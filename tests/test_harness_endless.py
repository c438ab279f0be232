"""fixtures/endless/: the endless loop, --count=0 / --duration under xdist and in one process:
round-robin over scenario keys, fixture scopes kept across iterations, bad harness options,
pacing across workers, and the memory guard of a long run.

Each test writes a small scenario suite into a tmp dir and runs pytest on it in a subprocess
(tests/support/endless_suite.py). How a run stops on signals is test_harness_endless_stop.py;
the scheduler and the Pacer driven by a simulation are test_harness_scheduler.py.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from tests.support.endless_suite import (CONFTEST, Watched, assert_balanced,
                                         assert_no_self_overlap, assert_proof, events, finish,
                                         make_suite, results, run, runs_by_item, start, wait_for)
from tests.support.inner_run import demo_yaml, env

# Inner runs bounded by --duration and paced by wall-clock intervals: run alone (make test).
pytestmark = pytest.mark.serial


# --------------------------------------------------------------------------- xdist

def test_endless_xdist_round_robin_bounded(tmp_path):
    make_suite(tmp_path, {"a": dict(n=3, sleep=0.05),
                          "b": dict(n=3, sleep=0.05)})
    code, out = run(tmp_path, "-n", "3", "--count=0", "--duration", "5s")
    assert code == 0, out[-3000:]
    evts = events(tmp_path)
    runs = runs_by_item(evts)
    assert len(runs) == 6
    assert min(len(v) for v in runs.values()) >= 3, {k: len(v) for k, v in runs.items()}
    assert {w for spans in runs.values() for _, _, w in spans} == {"gw0", "gw1", "gw2"}
    assert_no_self_overlap(runs)
    assert_balanced(evts)
    # One console line per result, with the worker and the round.
    assert re.search(r"^\[gw\d\] PASSED round \d+ scenarios/test_[ab]\.py::test_step\[\d\]", out, re.M)
    passed = int(re.search(r"(\d+) passed", out).group(1))
    assert passed == sum(len(v) for v in runs.values())
    assert list((tmp_path / "reports").glob("report-*-0001.html"))  # endless: rotated parts
    assert (tmp_path / "reports" / "index.html").is_file()


@pytest.mark.parametrize("workers", [["-n", "2"], []], ids=["xdist", "single"])
def test_a_short_run_starts_every_scenario_before_any_twice(tmp_path, workers):
    """Four scenario keys of three items each: the first four starts are the four keys (in
    file order each key's items would come first), and all twelve items start before any
    item starts again."""
    make_suite(tmp_path, {k: dict(n=3, sleep=0.4) for k in "abcd"})
    code, out = run(tmp_path, *workers, "--count=0", "--duration", "7s")
    assert code == 0, out[-3000:]
    starts = sorted((ts, what) for kind, what, _, ts in events(tmp_path) if kind == "start")
    order = [what for _, what in starts]
    modules = [n.split("::")[0] for n in order]
    assert len(set(modules[:4])) == 4, order[:4]
    assert len(order) >= 12, order
    assert len(set(order[:12])) == 12, order[:12]
    if not workers:   # one process: exactly round-robin over the keys, then their items
        assert modules[:8] == modules[:4] * 2, modules[:8]


def test_one_item_repeats_on_xdist_without_p3_failure(tmp_path):
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.01)})
    code, out = run(tmp_path, "-n", "2", "--count=0", "--duration", "2s")
    assert code == 0, out[-3000:]
    runs = runs_by_item(events(tmp_path))
    assert len(runs["scenarios/test_a.py::test_step[0]"]) >= 5
    assert_balanced(events(tmp_path))


# --------------------------------------------------------------------------- fixture scopes
# Issue 8 item 2: with as many items as workers every iteration ran with nextitem=None and
# all scopes were torn down each time.

def _per_worker(evts, kind, what) -> Counter:
    return Counter(w for k, x, w, _ in evts if (k, x) == (kind, what))


@pytest.mark.parametrize("workers,items", [(2, 2), (2, 1)])
def test_session_fixture_once_per_worker(tmp_path, workers, items):
    make_suite(tmp_path, {f"m{i}": dict(n=1, sleep=0.01) for i in range(items)})
    code, out = run(tmp_path, "-n", str(workers), "--count=0", "--duration", "3s")
    assert code == 0, out[-3000:]
    evts = events(tmp_path)
    ran = Counter(w for k, _, w, _ in evts if k == "start")
    assert len(ran) == items and min(ran.values()) >= 5, ran
    assert _per_worker(evts, "setup", "session") == Counter({w: 1 for w in ran})
    assert _per_worker(evts, "teardown", "session") == Counter({w: 1 for w in ran})
    # Each worker keeps its own item (exclusive, one item per worker): one module too.
    assert _per_worker(evts, "setup", "module") == Counter({w: 1 for w in ran})
    assert_balanced(evts)


def test_session_fixture_once_in_single_process_and_modules_follow_pytest(tmp_path):
    make_suite(tmp_path, {"a": dict(n=2, sleep=0.01), "b": dict(n=1, sleep=0.01)})
    code, out = run(tmp_path, "--count=0", "--duration", "2s")
    assert code == 0, out[-3000:]
    evts = events(tmp_path)
    assert _per_worker(evts, "setup", "session") == Counter({"master": 1})
    assert _per_worker(evts, "teardown", "session") == Counter({"master": 1})
    # A module's fixture is set up again exactly when the next item is in another module.
    modules = [what.split("::")[0] for k, what, _, _ in evts if k == "start"]
    switches = 1 + sum(1 for a, b in zip(modules, modules[1:]) if a != b)
    assert _per_worker(evts, "setup", "module")["master"] == switches
    assert_balanced(evts)


def test_session_fixture_torn_down_once_on_a_signal_stop(tmp_path):
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.2)})
    with Watched(start(tmp_path, "--count=0")) as run:
        run.wait_for(lambda: len(results(tmp_path)) >= 3, "3 results")
        os.killpg(run.proc.pid, signal.SIGTERM)
        out = run.finish(30)
    assert run.proc.returncode == 0, out[-3000:]
    evts = events(tmp_path)
    assert _per_worker(evts, "setup", "session") == Counter({"master": 1})
    assert _per_worker(evts, "teardown", "session") == Counter({"master": 1})
    assert_proof(tmp_path, "stopped by SIGTERM")


# --------------------------------------------------------------------------- bad options

@pytest.mark.parametrize("args,names", [
    (["--duration", "-5s"], "--duration -5s"),
    (["--duration=0"], "--duration 0"),
    (["--endless-trim-every", "abc"], "--endless-trim-every abc"),
    (["--endless-trim-every", "-1"], "--endless-trim-every -1"),
    (["--report-rotate", "-1m"], "--report-rotate -1m"),
    (["--report-rotate-results", "x"], "--report-rotate-results x"),
    (["--report-keep", "0"], "--report-keep 0"),
])
def test_bad_harness_option_is_one_line(tmp_path, args, names):
    make_suite(tmp_path, {"a": dict(n=1, sleep=0)})
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--demo-config", "demo.yaml", "--demo-profile", "ci", "--count=0",
                           *args], cwd=tmp_path, env=env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: {names}: expected"), proc.stderr
    assert "usage:" not in proc.stderr + proc.stdout


# --------------------------------------------------------------------------- one process

def test_single_process_loop(tmp_path):
    make_suite(tmp_path, {"a": dict(n=2, sleep=0.01),
                          "b": dict(n=1, sleep=0.01)})
    code, out = run(tmp_path, "--count=0", "--duration", "2s")
    assert code == 0, out[-3000:]
    evts = events(tmp_path)
    runs = runs_by_item(evts)
    assert len(runs) == 3 and min(len(v) for v in runs.values()) >= 5
    assert sum(1 for e in evts if e[:2] == ("setup", "session")) == 1
    assert_balanced(evts)
    assert re.search(r"scenarios/test_a\.py::test_step\[0\] PASSED round \d+", out)


def test_single_process_one_item(tmp_path):
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.01)})
    code, out = run(tmp_path, "--count=0", "--duration", "1s")
    assert code == 0, out[-3000:]
    assert len(runs_by_item(events(tmp_path))["scenarios/test_a.py::test_step[0]"]) >= 5


# --------------------------------------------------------------------------- pacing

def test_pacing_across_workers(tmp_path):
    interval = 1.0
    make_suite(tmp_path, {"p": dict(interval=interval, n=1, sleep=0.01),
                          "f": dict(n=3, sleep=0.05)})
    code, out = run(tmp_path, "-n", "2", "--count=0", "--duration", "4.5s")
    assert code == 0, out[-3000:]
    runs = runs_by_item(events(tmp_path))
    starts = sorted(s for s, _, _ in runs["scenarios/test_p.py::test_step[0]"])
    assert len(starts) >= 3, starts  # paced, not starved
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # The test records its start a few ms after the pacer's mark; allow that jitter.
    assert min(gaps) >= interval - 0.1, gaps
    fast = sum(len(v) for k, v in runs.items() if k.startswith("scenarios/test_f.py"))
    assert fast > 3 * len(starts)  # the paced scenario did not hold the workers up


def test_memory_guard_prunes_finalizers_and_stats(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "demo.yaml").write_text(demo_yaml({"m": 0}))
    (tmp_path / "test_m.py").write_text(textwrap.dedent("""\
        import pytest

        @pytest.fixture
        def under_session(sess):  # pytest #4871: leaves a finalizer on `sess` every time
            yield

        @pytest.mark.parametrize("n", range(3))
        def test_m(n, under_session, request):
            tr = request.config.pluginmanager.getplugin("terminalreporter")
            finalizers = len(request._get_active_fixturedef("sess")._finalizers)
            kept = len(set(map(id, tr.stats.get("passed", []))))
            with open("sizes.log", "a") as f:
                f.write(f"{finalizers} {kept}\\n")
    """))
    sizes_log = tmp_path / "sizes.log"
    proc = start(tmp_path, "--count=0", "--endless-trim-every", "50")
    try:
        wait_for(proc, lambda: sizes_log.exists() and
                 sizes_log.read_text().count("\n") > 300, 120, "300 results")
        proc.send_signal(signal.SIGINT)
        out = finish(proc, 60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    sizes = [tuple(map(int, x.split())) for x in sizes_log.read_text().split("\n") if x]
    assert len(sizes) > 300
    assert max(f for f, _ in sizes) <= 60  # pruned every 50 results, not one per test forever
    assert max(k for _, k in sizes[-50:]) <= 60  # distinct passed reports kept stay bounded
