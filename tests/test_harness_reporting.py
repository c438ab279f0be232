"""fixtures/reporting/: run events and their bus, report parts and index, results.jsonl, proof
extras, the pygal chart, secret masking.

Runs generated suites in a subprocess (VANCOUVER_TARGET is a dummy: no lab).
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path

import pytest

from fixtures import reporting
from tests.support.inner_run import PLAIN_CONFTEST, PLAIN_TEST, chap_conftest, run

# Inner runs bounded by --duration and rotated by wall-clock time: run alone (make test).
pytestmark = pytest.mark.serial



CTRL_SECRET = "Ctrl-Only-S3cret"
WORKER_SECRET = 'Wkr-P@ss<w0rd>&"q'
KEYED_VALUE = "plain-value-under-password-key"
META_VALUE = "Meta-T0ken-Value"

SECRETS_CONFTEST = f"""\
import pytest
from fixtures import reporting
pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting"]
CTRL_SECRET = {CTRL_SECRET!r}
WORKER_SECRET = {WORKER_SECRET!r}

def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        reporting.register_secret(CTRL_SECRET)  # e.g. the lab's admin password

def pytest_metadata(metadata, config):
    metadata["api_token"] = {META_VALUE!r}

def keyed_rows():
    return [{{"tier": "gold", "iops": 1987.5, "password": {KEYED_VALUE!r}}}]

def keyed_json():
    return {{"detail": "ok", "token": "x-token-value"}}

@pytest.fixture
def creds():
    reporting.register_secret(WORKER_SECRET)  # e.g. a CHAP secret created by a fixture
    return WORKER_SECRET
"""

SECRETS_TEST = f"""\
import logging, pytest, pytest_html
from conftest import CTRL_SECRET, keyed_rows, keyed_json

def test_leaky(creds, proof, extras):
    print("stdout has", creds, "and", CTRL_SECRET)
    logging.getLogger("demo").warning("log has %s", creds)
    with proof.step("login as " + creds):
        with proof.step("nested"):
            pass
    proof.table("fio", keyed_rows())
    proof.resource("volume", "vol-1")
    proof.figure("iops_after", 1987.5)
    proof.figure("chap_secret", creds)
    proof.chart("live QoS " + creds, [480, 500, 505], [1990, 2000, 2010],
                limits={{"bronze": 500, "gold": 2000}})
    extras.append(pytest_html.extras.text("text extra " + creds))
    extras.append(pytest_html.extras.json(dict(keyed_json(), secret_in_value=creds)))
    assert creds == "wrong", "failed with " + creds

def test_ok(proof):
    with proof.step("create volume"):
        proof.resource("volume", "vol-2")
"""

def decoded_data_uris(text: str) -> str:
    """Every base64 data: URI in a page, decoded (extras hide their content this way)."""
    out = []
    for m in re.finditer(r"data:[\w/+.-]+(?:;charset=[\w-]+)?;base64,([A-Za-z0-9+/=]+)", text):
        out.append(base64.b64decode(m.group(1)).decode("utf-8", "replace"))
    return "\n".join(out)


def index_parts(index_html: str) -> tuple[list[int], int]:
    parts = [int(t) for t in re.findall(r"<tr class='part' data-total='(\d+)'", index_html)]
    total = int(re.search(r"<tr class='all' data-total='(\d+)'", index_html).group(1))
    return parts, total


def test_secrets_never_written(tmp_path):
    (tmp_path / "conftest.py").write_text(SECRETS_CONFTEST)
    (tmp_path / "test_leak.py").write_text(SECRETS_TEST)
    code, out = run(tmp_path, "-n", "2", "-rA")
    assert code == 1, out[-3000:]  # test_leaky fails on purpose, its message holds the secret
    reports = tmp_path / "reports"
    page = (reports / "report.html").read_text()
    written = "\n".join([page, decoded_data_uris(html.unescape(page)),
                         (reports / "results.jsonl").read_text(),
                         (reports / "index.html").read_text(), out])
    forbidden = [CTRL_SECRET, WORKER_SECRET, html.escape(WORKER_SECRET),
                 json.dumps(WORKER_SECRET)[1:-1], KEYED_VALUE, META_VALUE, "x-token-value"]
    leaks = [s for s in forbidden if s in written]
    assert not leaks, f"leaked: {leaks}"
    assert "***" in page
    # The proof shows up: step timeline, fio table, resources, a base64 SVG chart, Round column.
    for text in ("Steps", "fio", "Resources", "vol-2", "Key figures", "create volume",
                 "col-round", 'data-column-type="round"',
                 "image/svg+xml;base64,"):
        assert text in page or text in html.unescape(html.unescape(page)), text
    assert "<svg" in decoded_data_uris(html.unescape(page))
    lines = [json.loads(x) for x in (reports / "results.jsonl").read_text().splitlines()]
    leaky = next(x for x in lines if x["nodeid"].endswith("test_leaky"))
    assert leaky["outcome"] == "failed" and leaky["worker"].startswith("gw")
    assert leaky["figures"] == {"iops_after": 1987.5, "chap_secret": "***"}
    assert set(leaky["steps"]) == {"login as ***", "nested"}


def test_rotation_by_results_index_counts_sum(tmp_path):
    (tmp_path / "conftest.py").write_text(PLAIN_CONFTEST)
    (tmp_path / "test_plain.py").write_text(PLAIN_TEST % 5)
    # Parts of 5 results: a loaded machine still makes 3 full parts within the 3 s.
    code, out = run(tmp_path, "--count=0", "--duration", "3s", "--report-rotate-results", "5",
                    "--report-keep", "3")
    assert code == 0, out[-3000:]
    passed = int(re.search(r"(\d+) passed", out).group(1))
    reports = tmp_path / "reports"
    parts, total = index_parts((reports / "index.html").read_text())
    assert len(parts) >= 3 and sum(parts) == total == passed
    assert all(p == 5 for p in parts[:-1])
    files = sorted(reports.glob("report-*-*.html"))
    assert len(files) == 3 + 1  # --report-keep 3 finished parts, plus the final part
    assert_index_links_only_written(reports, "finished \\(duration reached\\)")
    lines = (reports / "results.jsonl").read_text().splitlines()
    assert len(lines) == passed
    rounds = [json.loads(x)["round"] for x in lines]
    assert max(rounds) >= 2 and min(rounds) == 1


def test_rotation_by_time_under_xdist(tmp_path):
    (tmp_path / "conftest.py").write_text(PLAIN_CONFTEST)
    (tmp_path / "test_plain.py").write_text(PLAIN_TEST % 6)
    code, out = run(tmp_path, "-n", "2", "--count=0", "--duration", "4s",
                    "--report-rotate", "1s")
    assert code == 0, out[-3000:]
    passed = int(re.search(r"(\d+) passed", out).group(1))
    reports = tmp_path / "reports"
    parts, total = index_parts((reports / "index.html").read_text())
    assert len(parts) >= 3 and sum(parts) == total == passed
    for f in reports.glob("report-*-*.html"):
        assert "Round" in f.read_text()


def assert_index_links_only_written(reports: Path, state: str) -> None:
    """index.html of an ended run: names how it ended, never "running", links only files
    that exist, and its total is the number of lines of results.jsonl."""
    index = (reports / "index.html").read_text()
    assert re.search("<p class='state'>" + state, index), index[:500]
    assert "running" not in index and "refresh" not in index
    for href in re.findall(r'href="([^"]+)"', index):
        assert (reports / href).is_file(), f"index.html links {href}, never written"
    lines = (reports / "results.jsonl").read_text().splitlines()
    assert index_parts(index)[1] == len(lines)


def test_index_never_links_a_part_never_written(tmp_path):
    """Without pytest-html no part is written: the index says so instead of linking it."""
    (tmp_path / "conftest.py").write_text(PLAIN_CONFTEST)
    (tmp_path / "test_plain.py").write_text(PLAIN_TEST % 2)
    code, out = run(tmp_path, "-p", "no:html")
    assert code == 0, out[-3000:]
    reports = tmp_path / "reports"
    assert not list(reports.glob("*.html.part")) and not (reports / "report.html").exists()
    assert_index_links_only_written(reports, "finished")
    assert "report.html not written" in (reports / "index.html").read_text()


def test_mask_function():
    reporting.register_secret("unit-test-secret-1")
    assert reporting.mask("x unit-test-secret-1 y") == "x *** y"
    assert reporting.mask({"password": "p", "nested": {"api_key": "k", "ok": 1},
                           "list": ["unit-test-secret-1"], "empty_token": ""}) == \
        {"password": "***", "nested": {"api_key": "***", "ok": 1}, "list": ["***"],
         "empty_token": ""}
    reporting.register_secret("ab")  # too short to mask meaningfully
    assert reporting.mask("ab cd") == "ab cd"


def test_qos_chart_from_pygal_is_inline_svg():
    """The QoS chart: pygal's SVG, well-formed, no XML declaration and no script (inlined,
    readable without JS), both series, the limits, the real change time, x ticks, the legend
    under the plot; titles escaped."""
    import xml.etree.ElementTree as ET
    from fixtures.reporting.charts import qos_chart
    svg = qos_chart("QoS <gold>", {"bronze": [[0, 480], [1, 500], [2, 505]],
                                   "gold": [[4, 1990], [5, 2000], [6, 2010]]},
                    limits={"cap": 1000}, change_at=3.2)
    assert svg.startswith("<svg") and "<script" not in svg and "<?xml" not in svg
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    lines = root.findall(".//s:path[@class='line reactive nofill']", ns)
    assert len(lines) == 4  # before, after, the cap, the change marker
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text]
    assert "QoS <gold>" in texts and "change at 3.2 s" in texts and "cap 1,000" in texts
    assert {"0", "6", "seconds", "IOPS"} <= set(texts)  # x ticks and axis titles
    plot = root.find(".//s:g[@class='plot']", ns)
    legends = root.findall(".//s:g[@class='legends']", ns)
    plot_y = float(plot.get("transform").split(",")[1].rstrip(")"))
    legend_y = float(legends[0].get("transform").split(",")[1].rstrip(")"))
    assert legend_y > plot_y + 100  # under the plot, not beside it


def test_event_schema_round_trip_and_typed_masking():
    from fixtures.reporting import events as ev
    reporting.register_secret("unit-registered-9")
    step = ev.StepEnd(name="CHAP: the wrong secret is refused, the right one works", step=3,
                      duration_s=1.25, outcome="ok", nodeid="t.py::x", worker="gw1")
    d = ev.to_dict(step)
    assert d["kind"] == "step_end" and ev.from_dict(json.loads(json.dumps(d))) == step
    assert ev.mask_event(step) == step  # a word in a name masks nothing
    fig = ev.Figure(name="api_token", value="unit-registered-9 and more")
    assert ev.mask_event(fig).value == "*** and more" and ev.mask_event(fig).name == "api_token"
    table = ev.Table(title="token table", rows=[{"password": "p", "secret rotation s": 3,
                                                 "tier": reporting.Secret("typed-s3cret")}])
    assert ev.mask_event(table).rows == [{"password": "***", "secret rotation s": 3,
                                          "tier": "***"}]
    chart = ev.MetricSamples(title="token bucket", series={"secret": [[0, 1.0]]},
                             limits={"password": 5.0})
    assert ev.mask_event(chart) == chart  # series labels and limit names are free text

    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True, kw_only=True)
    class Login(ev.Event):
        kind: ClassVar[str] = "login"
        user: str
        chap: str = ev.secret_field(default="")
    assert ev.mask_event(Login(user="u", chap="abc123")).chap == "***"
    for name in ("password", "chap_secret", "api_key", "X-Auth-Token", "db.pass"):
        assert reporting.is_secret_field(name), name
    for name in ("CHAP: the wrong secret is refused", "token refresh s", "token_count",
                 "secret rotation s", "sort_key", "tokens"):
        assert not reporting.is_secret_field(name), name


BUS_CONFTEST = """\
import json, pytest
from fixtures import reporting
pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting.plugin"]

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        out = open("events.jsonl", "w", buffering=1)  # lines: nothing waits for exit
        # A new consumer (the terminal view, the dashboard) is this one call:
        config.stash[reporting.bus_key].subscribe(
            lambda e: out.write(json.dumps({"kind": e.kind, "worker": e.worker,
                                            "nodeid": e.nodeid}) + "\\n"))
"""

BUS_TEST = """\
import datetime, pytest

@pytest.fixture
def vol(proof):
    proof.resource("volume", "vol-9")
    yield "vol-9"
    with proof.step("delete volume"):
        proof.resource_deleted("volume", "vol-9")

@pytest.mark.parametrize("n", range(2))
def test_events(n, vol, proof):
    with proof.step("write"):
        proof.fio("gold", {"device": "nbd0", "iops": 1990})
        proof.chart("QoS", [1, 2], [3, 4], limits={"cap": 4}, change_at=1.5)
        proof.table("t", [{"a": 1, "when": datetime.date(2026, 11, 30)}])  # not JSON: as text
        proof.figure("n", n)
"""


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["in-process", "xdist"])
def test_bus_subscriber_sees_every_kind(tmp_path, xdist):
    (tmp_path / "conftest.py").write_text(BUS_CONFTEST)
    (tmp_path / "test_bus.py").write_text(BUS_TEST)
    code, out = run(tmp_path, *xdist)
    assert code == 0, out[-3000:]
    seen = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in seen]
    assert set(kinds) == {"step_start", "step_end", "resource_created", "resource_deleted",
                          "fio_result", "metric_samples", "table", "figure", "test_outcome",
                          "test_result"}
    assert kinds.count("test_result") == 2 and kinds.count("step_end") == 4
    assert all(e["nodeid"].startswith("test_bus.py::test_events[") for e in seen)
    assert {e["worker"] for e in seen} <= ({"gw0", "gw1"} if xdist else {"master"})
    for e in seen:  # every item's events come before its result
        later = seen[seen.index(e):]
        assert any(x["kind"] == "test_result" and x["nodeid"] == e["nodeid"] for x in later)


NAMES_SECRET = "Reg1stered-Chap-S3cret"

NAMES_CONFTEST = chap_conftest(NAMES_SECRET)

NAMES_TEST = """\
import logging, time, pytest

def test_names(chap, proof):
    with proof.step("CHAP: the wrong secret is refused, the right one works"):
        time.sleep(0.05)
        logging.getLogger("demo").warning("logging in with %s", chap)
        print("stdout has", chap)
    with proof.step("password reset"):
        pass
    with proof.step("token"):
        pass
    proof.figure("secret", 7)
    proof.figure("password_age_days", 30)
    proof.figure("api_token", "tok-ok")
    proof.figure("chap used", chap)
    proof.table("secrets table", [{"secret rotation s": 12, "as": "user " + chap}])
    proof.chart("token bucket " + chap, [1, 2], [3, 4], labels=("password", "token"),
                limits={"secret": 3})
"""


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["in-process", "xdist"])
def test_secret_words_in_names_keep_values_registered_secret_masked(tmp_path, xdist):
    """Issue 7: a figure or step named with "secret", "password" or "token" keeps its value,
    while a registered secret is masked everywhere: report, results.jsonl, logs, console."""
    (tmp_path / "conftest.py").write_text(NAMES_CONFTEST)
    (tmp_path / "test_names.py").write_text(NAMES_TEST)
    live = () if xdist else ("-o", "log_cli=true", "-o", "log_cli_level=WARNING")
    code, out = run(tmp_path, *xdist, *live, "-vv", "-rA", "--log-file", "run.log",
                    "--log-level", "WARNING")
    assert code == 0, out[-3000:]
    reports = tmp_path / "reports"
    page = (reports / "report.html").read_text()
    shown = html.unescape(html.unescape(page)) + decoded_data_uris(html.unescape(page))
    jsonl = (reports / "results.jsonl").read_text()
    log = (tmp_path / "run.log").read_text()
    for where, text in (("report", page + shown), ("results.jsonl", jsonl), ("log file", log),
                        ("console", out)):
        assert NAMES_SECRET not in text, where
    line = json.loads(jsonl.splitlines()[-1])
    chap_step = "CHAP: the wrong secret is refused, the right one works"
    assert isinstance(line["steps"][chap_step], float) and line["steps"][chap_step] >= 0.05
    assert all(isinstance(line["steps"][s], float) for s in ("password reset", "token"))
    assert line["figures"] == {"secret": 7, "password_age_days": 30, "api_token": "tok-ok",
                               "chap used": "***"}
    assert "logging in with ***" in log and "stdout has ***" in out
    assert "logging in with ***" in out  # captured log (-rA), and live log without xdist
    assert re.search(r"step 'CHAP: the wrong secret is refused, the right one works' "
                     r"0\.\d\d s ok", out)  # the console consumer at -vv
    for text in ("secret rotation s", "user ***", "tok-ok", "password_age_days"):
        assert text in shown, text
    assert "token bucket ***" in shown and "secret 3" in shown


def test_bad_input_is_named_even_while_another_run_holds_the_report_directory(tmp_path):
    """A second run with a bad option gets the option's one line, not the lock's: the lock
    would send the user to wait for the other run only to meet the real error afterwards."""
    from fixtures.reporting import run_lock
    (tmp_path / "conftest.py").write_text(PLAIN_CONFTEST)
    (tmp_path / "test_plain.py").write_text(PLAIN_TEST % 1)
    held = run_lock.hold(tmp_path / "reports")
    try:
        code, out = run(tmp_path, "--duration", "-5s")
    finally:
        os.close(held)
    errors = [ln for ln in out.splitlines() if ln.startswith("ERROR")]
    assert code == 4 and len(errors) == 1, out[-3000:]
    assert errors[0].startswith("ERROR: --duration -5s: expected a positive time"), errors[0]


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["one process", "xdist"])
def test_a_mistyped_path_is_one_line_with_or_without_xdist(tmp_path, workers):
    """pytest names a missing path while collecting; under xdist the controller collects
    nothing, so the run said "no tests ran" (status 5) unless checked up front."""
    (tmp_path / "conftest.py").write_text(PLAIN_CONFTEST)
    (tmp_path / "test_plain.py").write_text(PLAIN_TEST % 1)
    code, out = run(tmp_path, *workers, "--count=0", "--duration", "20s", "test_plainn.py")
    errors = [ln for ln in out.splitlines() if ln.startswith("ERROR")]
    assert code == 4 and errors == ["ERROR: file or directory not found: test_plainn.py"], \
        out[-3000:]


def test_second_run_into_the_same_report_directory_is_one_line(tmp_path):
    """Two runs writing one report directory would interleave results.jsonl and overwrite
    index.html: the second stops before anything starts and names the other run. A run that
    has ended (killed included: the lock is the process's flock) frees the directory."""
    from fixtures.reporting import run_lock
    (tmp_path / "conftest.py").write_text(PLAIN_CONFTEST)
    (tmp_path / "test_plain.py").write_text(PLAIN_TEST % 1)
    held = run_lock.hold(tmp_path / "reports")  # the other run: this test process
    try:
        code, out = run(tmp_path)
    finally:
        os.close(held)
    errors = [ln for ln in out.splitlines() if ln.startswith("ERROR")]
    assert code == 4 and len(errors) == 1, out[-3000:]
    assert f"in use by another run (pid {os.getpid()})" in errors[0], errors[0]
    assert "--html" in errors[0]
    assert not (tmp_path / "reports" / "results.jsonl").exists()
    code, out = run(tmp_path)
    assert code == 0, out[-3000:]
