"""The HTML report proves every step (issue 13): every event kind an iteration emits shows in
its pytest-html row, fio results are key figures of results.jsonl too, an iteration cut by an
abort is "Aborted" in the pytest-html part (not an Error), and a wait for another worker's
QoS window or lease is the worker's current step (terminal view, dashboard) and a span of the
report's timeline.

Inner runs write a generated suite into a tmp dir (VANCOUVER_TARGET a dummy: no lab).
"""
from __future__ import annotations

import html
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from rich.console import Console

from fixtures import window_wait
from fixtures.dashboard.state import RunState
from fixtures.reporting import events as ev
from fixtures.reporting.bus import Outbox
from fixtures.reporting.html_view import HtmlView
from fixtures.reporting.proof import Proof
from fixtures.reporting.terminal import worker_table
from tests.support.endless_suite import Watched, make_suite, start
from tests.support.inner_run import chap_conftest, run

SECRET = "Fio-Dev1ce-S3cret"
NODE = "scenarios/test_tenancy.py::test_tenancy[Vancouver-OP]"

KINDS_CONFTEST = chap_conftest(SECRET)

# One test emitting every kind a scenario emits (the outage plugin's and a window wait's
# through the same outbox and view they use).
KINDS_TEST = """\
import json, time
from fixtures import window_wait
from fixtures.reporting import events as ev
from fixtures.reporting.proof import outbox_key

def test_kinds(chap, proof, request, tmp_path):
    outbox = request.config.stash[outbox_key]
    with proof.step("create volumes"):
        proof.resource("volume", "vol-a")
        proof.happened("image_rotated", "img-1", "newest of 2")
    ledger = tmp_path / "ledger"
    ledger.write_text(json.dumps({"holders": {"t1": {
        "pid": 1, "kind": "qos", "scenario": "scenarios/test_performance.py::"
        "test_performance[Vancouver-OM]", "at": time.time() - 40}}}))
    with proof.step("measure"):
        w = window_wait.Waiting("a QoS window", ledger)
        w.check()
        w.end()
        proof.fio("gold", {"device": "nbd-" + chap, "rw": "randrw", "bs": "4k", "iodepth": 4,
                           "iops": 1987, "MiB/s": 7.8, "lat p50 ms": 0.5, "lat p99 ms": 2.25,
                           "error": 0})
        proof.fio("pod fio (silver)", {"device": "pvc-1", "iops": 990, "error": 0})
        proof.table("Measurement window", [{"tier": "gold", "waited s": 1.5}])
        proof.chart("live QoS", [480, 500], [1990, 2000], limits={"gold": 2000})
        proof.qos_change("vol-uuid-1", "/root/Vancouver-OP", 500, 2000)
        proof.figure("iops_after", 1987)
    outbox.emit(ev.Outage(platform="kubernetes", label="Kubernetes", endpoint="https://k8s",
                          reason="HTTP 503", state="down", retry_s=1.0))
    outbox.emit(ev.Outage(platform="kubernetes", label="Kubernetes", endpoint="https://k8s",
                          reason="HTTP 503", state="back", duration_s=2.5))
    outbox.emit(ev.Outage(platform="datera", label="Datera", endpoint="https://datera",
                          reason="timed out", state="down", retry_s=1.0))
    proof.resource_deleted("volume", "vol-a")
"""


def _row_html(page: str) -> str:
    """The pytest-html page's rows as their JSON blob says (the extras' HTML, decoded)."""
    blob = re.search(r'data-jsonblob="([^"]*)"', page).group(1)
    return json.dumps(json.loads(html.unescape(blob)))


@pytest.mark.parametrize("xdist", [(), ("-n", "1")], ids=["in-process", "xdist"])
def test_every_event_kind_is_in_the_report_and_fio_in_results(tmp_path, xdist):
    (tmp_path / "conftest.py").write_text(KINDS_CONFTEST)
    (tmp_path / "test_kinds.py").write_text(KINDS_TEST)
    code, out = run(tmp_path, *xdist)
    assert code == 0, out[-3000:]
    reports = tmp_path / "reports"
    page = (reports / "report.html").read_text()
    rows = _row_html(page)
    for text in ("fio results", "randrw", "1987", "2.25", "pod fio (silver)", "990",
                 "Measurement window", "What happened", "image rotated", "newest of 2",
                 "QoS changes", "vol-uuid-1", "/root/Vancouver-OP", "Resources", "vol-a",
                 "deleted", "Key figures", "iops_after", "Outage", "HTTP 503",
                 "still down when the iteration ended", "timed out", "Steps",
                 "waiting for a QoS window (held by performance[Vancouver-OM])", "waited",
                 "image/svg+xml"):
        assert text in rows, text
    assert SECRET not in page and SECRET not in rows and "nbd-***" in rows
    [line] = [json.loads(x) for x in (reports / "results.jsonl").read_text().splitlines()]
    figures = line["figures"]
    assert figures["iops_after"] == 1987
    assert {k: v for k, v in figures.items() if k.startswith("fio gold: ")} == {
        "fio gold: device": "nbd-***", "fio gold: rw": "randrw", "fio gold: bs": "4k",
        "fio gold: iodepth": 4, "fio gold: iops": 1987, "fio gold: MiB/s": 7.8,
        "fio gold: lat p50 ms": 0.5, "fio gold: lat p99 ms": 2.25, "fio gold: error": 0}
    assert figures["fio pod fio (silver): iops"] == 990
    assert "waiting for a QoS window (held by performance[Vancouver-OM])" in line["steps"]
    assert SECRET not in (reports / "results.jsonl").read_text()


def test_html_view_renders_every_kind_a_scenario_emits():
    """Guard: a kind added to events.py without a place in the report fails here."""
    handled = {"step_start", "step_end", "resource_created", "resource_deleted", "fio_result",
               "metric_samples", "figure", "table", "happening", "qos_change", "outage"}
    rows_themselves = {"test_outcome", "test_result"}  # the report row, its result cell
    assert set(ev.KINDS) == handled | rows_themselves
    view = HtmlView()
    view(ev.Happening(what="pod_started", subject="fio-pod", nodeid="n", worker="w"))
    view(ev.QosChange(volume="v", tenant="t", before=1, after=2, nodeid="n", worker="w"))
    view(ev.FioResult(name="gold", row={"iops": 5}, nodeid="n", worker="w"))
    row = view._rows[("w", "n")]
    titles = [t for t, _, _ in HtmlView._tables(row)]
    assert titles == ["fio results", "What happened", "QoS changes"]


# ------------------------------------------------------------------------ waits as steps

def _ledger(tmp_path: Path, holders: dict) -> Path:
    path = tmp_path / "ledger"
    path.write_text(json.dumps({"holders": holders}))
    return path


def test_a_wait_is_the_current_step_in_every_view_and_a_span_in_the_timeline(tmp_path):
    outbox = Outbox("gw1")
    outbox.nodeid = NODE
    seen: list[dict] = []
    outbox.tap(seen.append)
    proof = Proof(outbox)
    remove = window_wait.add_view(proof.wait_view)
    state, html_view = RunState(), HtmlView()
    try:
        now = time.time()
        perf = {"pid": 1, "kind": "qos", "at": now - 40,
                "scenario": "scenarios/test_performance.py::test_performance[Vancouver-OM]"}
        other = {"pid": 2, "kind": "tenant_io", "at": now - 3,
                 "scenario": "scenarios/openstack/test_volume_features.py::"
                             "test_volume_features[pike]"}
        ledger = _ledger(tmp_path, {"a": perf})
        with proof.step("QoS check"):
            waiting = window_wait.Waiting("the QoS window of /root/Vancouver-OP", ledger)
            waiting.check({"holders": {"a": perf}})
            waiting.check({"holders": {"a": perf}})      # nothing new: not shown again
            waiting.check({"holders": {"b": other}})     # the holder changed: shown at once
            for data in seen:
                e = ev.from_dict(data)
                state(e)
                html_view(e)
            snap = state.snapshot()
            [worker] = snap["workers"]
            # (its seconds: 3 unless this machine is slow)
            assert re.fullmatch(r"held up by volume_features\[pike\] for \d+s: waiting for "
                                r"the QoS window of /root/Vancouver-OP",
                                worker["step"]), worker["step"]
            assert worker["path"].startswith("QoS check > held up by")
            console = Console(width=200, record=True)
            console.print(worker_table(snap))
            assert "held up by volume_features[pike] for " in console.export_text()
            seen.clear()
            waiting.end()
            waiting.end()    # idempotent: one step_end
        for data in seen:
            e = ev.from_dict(data)
            state(e)
            html_view(e)
        html_view(ev.TestResult(outcome="passed", duration_s=1.0, nodeid=NODE, worker="gw1"))
    finally:
        remove()
    starts = [d for d in seen if d["kind"] == "step_start"]
    ends = [d for d in seen if d["kind"] == "step_end"]
    assert not starts and len(ends) == 2       # the wait's, then the QoS check's
    assert ends[0]["outcome"] == "waited" and ends[0]["depth"] == 1
    assert ends[0]["name"] == ("waiting for the QoS window of /root/Vancouver-OP (held by "
                               "performance[Vancouver-OM], then volume_features[pike])")
    assert state.snapshot()["workers"][0]["step"] == ""
    body = html_view.take("gw1", NODE)[0]["content"]
    assert "performance[Vancouver-OM], then volume_features[pike]" in body
    assert "#95a5a6" in body   # the wait's own span colour


def test_wait_updates_keep_one_step_its_start_and_its_number(tmp_path):
    outbox = Outbox("gw0")
    proof = Proof(outbox)
    holder = {"pid": 1, "kind": "qos", "at": time.time() - 5, "scenario": "x::test_a[1]"}
    waiting = window_wait.Waiting("a lease of /root/T", _ledger(tmp_path, {"h": holder}))
    proof.wait_view(waiting, "waiting for a lease of /root/T (held by a[1] for 5s)")
    proof.wait_view(waiting, "waiting for a lease of /root/T (held by a[1] for 10s)")
    with proof.step("after"):
        pass
    proof.wait_view(waiting, None)
    events = [ev.from_dict(d) for d in outbox._events]
    w_starts = [e for e in events if isinstance(e, ev.StepStart) and e.name.startswith("wait")]
    assert len({(e.step, e.ts, e.offset_s) for e in w_starts}) == 1 and len(w_starts) == 2
    assert [e.step for e in events if isinstance(e, ev.StepStart)] == [0, 0, 1]
    end = events[-1]
    assert isinstance(end, ev.StepEnd) and end.step == 0 and end.outcome == "waited"


def test_a_wait_granted_at_once_shows_nothing_and_no_view_costs_nothing(tmp_path):
    shown = []
    remove = window_wait.add_view(lambda w, text: shown.append(text))
    try:
        waiting = window_wait.Waiting("a QoS window", tmp_path / "missing-ledger")
        waiting.end()
        assert shown == []
        waiting.check()       # the turnstile: no holder in the ledger
        assert shown == ["held up by the turnstile: waiting for a QoS window"]
    finally:
        remove()
    quiet = window_wait.Waiting("a QoS window", tmp_path / "missing-ledger")
    quiet.check()
    assert quiet.shown is None


def test_headroom_waits_show_as_steps_and_end_when_granted(tmp_path):
    """A real wait of fixtures/headroom.py: a tenant lease waits for the QoS window another
    thread holds of the same tenant; its step names that holder and ends once granted."""
    import threading
    from fixtures import headroom
    shown: list[str | None] = []
    remove = window_wait.add_view(lambda w, text: shown.append(text))
    windows = headroom.Windows("https://datera.example", directory=tmp_path)
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder():
        with windows.qos(100, tenant="/root/T"):
            holding.set()
            release.wait(60)

    t = threading.Thread(target=holder, name="holder")
    t.start()
    try:
        assert holding.wait(60)

        def lease():
            with windows.tenant_io("/root/T"):
                done.set()
        t2 = threading.Thread(target=lease, name="lease")
        t2.start()
        deadline = time.monotonic() + 60
        while not shown and time.monotonic() < deadline:
            time.sleep(0.02)
        assert shown and shown[0].startswith("held up by ") and \
            shown[0].endswith(": waiting for a lease of /root/T")
        release.set()
        t2.join(60)
        assert done.is_set() and shown[-1] is None
    finally:
        release.set()
        t.join(60)
        remove()


# ------------------------------------------------------------------- aborted, not an Error

SLOW = """\
import os, time

def test_step(func, note, request, proof):
    with proof.step("long step"):
        if os.path.exists(os.path.join(os.path.dirname(__file__), os.pardir, "slow")):
            note("long", request.node.nodeid)
            time.sleep(30)
        else:
            time.sleep(0.3)
"""


@pytest.mark.serial
def test_an_aborted_iteration_is_aborted_in_the_pytest_html_part(tmp_path):
    make_suite(tmp_path, {"a": dict(n=1, sleep=0.3)})
    (tmp_path / "scenarios" / "test_a.py").write_text(SLOW)
    (tmp_path / "slow").write_text("")
    with Watched(start(tmp_path, "-n", "1", "--count=0")) as run_:
        run_.wait_for(lambda: "long" in (tmp_path / "events.log").read_text()
                      if (tmp_path / "events.log").exists() else False, "a long iteration")
        os.killpg(run_.proc.pid, signal.SIGINT)
        run_.wait_for(run_.saw("Ctrl-C: stopping"), "the graceful stop")
        os.killpg(run_.proc.pid, signal.SIGINT)
        run_.wait_for(run_.saw("second signal (Ctrl-C): aborting"), "the abort")
        out = run_.finish(30)
    assert run_.proc.returncode == 2, out[-3000:]
    reports = tmp_path / "reports"
    lines = [json.loads(x) for x in (reports / "results.jsonl").read_text().splitlines()]
    assert [x["outcome"] for x in lines] == ["aborted"], lines
    [part] = sorted(reports.glob("report-*-0001.html"))
    page = part.read_text()
    tests = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', page).group(1)))
    rows = [t for per in tests["tests"].values() for t in per]
    assert [r["result"] for r in rows] == ["Aborted"], [r["result"] for r in rows]
    [row] = rows
    assert row["testId"] == "scenarios/test_a.py::test_step"     # not "...::teardown"
    assert "aborted: second stop signal" in row["log"]
    assert "long step" in json.dumps(row["extras"]) or "long step" in page
    assert re.search(r'<span class="aborted">1 Aborted,</span>', page), "its own count"
    assert re.search(r'<span class="error">0 Errors,</span>', page), "no Error"
    assert "includes.call(this, 'rerun')" in page     # the filter shows the row
    assert "aborted: second signal (Ctrl-C)" in (reports / "index.html").read_text()


CUT_CONFTEST = """\
import pytest
pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting"]

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "teardown" and item.name == "test_cut":  # as endless/internals.cut_report
        report.outcome, report.vancouver_cut = "failed", "second stop signal"
        report.longrepr = "aborted: second stop signal"
    return report
"""
CUT_TEST = """\
def test_ok(proof):
    with proof.step("work"):
        pass

def test_cut(proof):
    with proof.step("work"):
        pass
"""


@pytest.mark.skipif(not all(os.path.exists(p) for p in ("/usr/bin/chromium",
                                                         "/usr/bin/chromedriver")),
                    reason="needs Debian chromium and chromium-driver (make setup)")
def test_aborted_rows_show_and_filter_in_chromium(tmp_path):
    """pytest-html's page script hides outcomes it does not know: the aborted row shows,
    its own box hides and shows it, another outcome's box leaves it alone."""
    from selenium import webdriver
    (tmp_path / "conftest.py").write_text(CUT_CONFTEST)
    (tmp_path / "test_cut.py").write_text(CUT_TEST)
    code, out = run(tmp_path)
    page = tmp_path / "reports" / "report.html"
    assert page.exists(), out[-3000:]
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts,
                              service=webdriver.ChromeService("/usr/bin/chromedriver"))
    try:
        driver.get(page.as_uri())

        def rows(kind: str) -> int:
            return driver.execute_script(
                f"return new Set(Array.from(document.querySelectorAll('tbody.{kind}')).map((t) => t.id)).size")

        def click(kind: str) -> None:
            driver.execute_script(
                f"document.querySelector('input[data-test-result=\"{kind}\"]').click()")
        # test_cut's call passed, its teardown was cut: a Passed row and an Aborted one
        assert (rows("aborted"), rows("passed"), rows("error")) == (1, 2, 0)
        assert "1 Aborted" in driver.find_element("css selector", "span.aborted").text
        click("aborted")
        assert (rows("aborted"), rows("passed")) == (0, 2)
        click("aborted")
        assert rows("aborted") == 1
        click("passed")
        assert (rows("aborted"), rows("passed")) == (1, 0)
    finally:
        driver.quit()


# Two workers: one holds the QoS window of /root/T until the outer test releases it, the
# other then asks for a lease of that tenant and waits (fixtures/headroom.py, a shared ledger).
HOLDER = """\
import pathlib, time
from fixtures import headroom

def test_holder(proof):
    here = pathlib.Path(__file__).parent
    (here / "windows").mkdir(exist_ok=True)
    windows = headroom.Windows("https://datera.example", directory=here / "windows")
    with proof.step("measure"), windows.qos(100, tenant="/root/T"):
        (here / "holding").write_text("")
        deadline = time.time() + 120
        while not (here / "release").exists() and time.time() < deadline:
            time.sleep(0.05)
"""
WAITER = """\
import pathlib, time
from fixtures import headroom

def test_waiter(proof):
    here = pathlib.Path(__file__).parent
    deadline = time.time() + 120
    while not (here / "holding").exists() and time.time() < deadline:
        time.sleep(0.05)
    (here / "windows").mkdir(exist_ok=True)
    windows = headroom.Windows("https://datera.example", directory=here / "windows")
    with proof.step("copy data"), windows.tenant_io("/root/T"):
        pass
"""


def test_a_wait_between_workers_is_live_on_the_dashboard_and_in_the_report(tmp_path):
    import subprocess
    import sys
    import urllib.request
    from fixtures.waiters import wait_until
    from tests.support.inner_run import CONFTEST, demo_yaml, env
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "demo.yaml").write_text(demo_yaml({"holder": 0, "waiter": 0}))
    (tmp_path / "test_holder.py").write_text(HOLDER)
    (tmp_path / "test_waiter.py").write_text(WAITER)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--demo-config",
         "demo.yaml", "--demo-profile", "ci", "-n", "2", "--dashboard", "127.0.0.1:0",
         "--live-view", "plain"], cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        url = proc.stdout.readline().split()[3]

        def steps() -> list[str]:
            run_ = json.loads(urllib.request.urlopen(url + "api/state", timeout=5).read())["run"]
            return [w["step"] for w in run_["workers"]]
        wanted = re.compile(r"held up by holder for \d+s: waiting for a lease of /root/T")
        try:
            wait_until(lambda: any(wanted.fullmatch(s or "") for s in steps()), 90,
                       "the waiting worker's step on the dashboard")
        except TimeoutError:
            raise AssertionError(steps())
        (tmp_path / "release").write_text("")
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, out[-3000:]
    rows = {r["nodeid"]: r for r in map(json.loads, (tmp_path / "reports" / "results.jsonl")
                                        .read_text().splitlines())}
    waited = rows["test_waiter.py::test_waiter"]["steps"]
    assert "waiting for a lease of /root/T (held by holder)" in waited, waited
    assert "waiting for a lease of /root/T (held by holder)" in \
        _row_html((tmp_path / "reports" / "report.html").read_text())
