"""Runs into one report directory (fixtures/reporting/history.py): results.jsonl, index.html
and the report are this run's; each earlier run keeps its files under its run id, the newest
--report-keep-runs of them. Inner pytest runs of a generated suite (dummy target, no lab)."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.support.inner_run import PLAIN_CONFTEST, PLAIN_TEST, run

def index_total(index_html: str) -> int:
    return int(re.search(r"<tr class='all' data-total='(\d+)'", index_html).group(1))


def _suite(tmp: Path, n: int) -> None:
    (tmp / "conftest.py").write_text(PLAIN_CONFTEST)
    (tmp / "test_plain.py").write_text(PLAIN_TEST % n)


def _run_id(reports: Path) -> str:
    return re.search(r"run (\d{8}-\d{6})", (reports / "index.html").read_text()).group(1)


def _run_after(tmp: Path, previous: str | None, *args: str) -> str:
    """One inner run, started in a later second than `previous` (run ids are seconds)."""
    while previous is not None and time.strftime("%Y%m%d-%H%M%S") <= previous:
        time.sleep(0.05)
    code, out = run(tmp, *args)
    assert code == 0, out[-3000:]
    return _run_id(tmp / "reports")


def test_two_runs_plain_names_are_the_latest_run(tmp_path):
    _suite(tmp_path, 3)
    first = _run_after(tmp_path, None)
    _suite(tmp_path, 2)
    second = _run_after(tmp_path, first)
    reports = tmp_path / "reports"
    lines = [json.loads(x) for x in (reports / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and {x["run"] for x in lines} == {second}
    assert index_total((reports / "index.html").read_text()) == 2
    assert f"Vancouver demo, run {second}" in (reports / "report.html").read_text()
    # The first run's files carry its id; index.html links them.
    old = [json.loads(x) for x in (reports / f"results-{first}.jsonl").read_text().splitlines()]
    assert len(old) == 3 and {x["run"] for x in old} == {first}
    assert f"run {first}" in (reports / f"report-{first}.html").read_text()
    index = (reports / "index.html").read_text()
    assert f'href="results-{first}.jsonl"' in index and f'href="report-{first}.html"' in index
    for href in re.findall(r'href="([^"]+)"', index):
        assert (reports / href).is_file(), href


def test_rotated_parts_stay_with_their_run_and_keep_runs_prunes(tmp_path):
    _suite(tmp_path, 3)   # parts of 2 results: 2 parts
    first = _run_after(tmp_path, None, "--report-rotate-results", "2")
    reports = tmp_path / "reports"
    assert len(list(reports.glob(f"report-{first}-*.html"))) == 2
    second = _run_after(tmp_path, first)
    assert sorted(p.name for p in reports.glob(f"*{first}*")) == \
        [f"report-{first}-0001.html", f"report-{first}-0002.html", f"results-{first}.jsonl"]
    third = _run_after(tmp_path, second, "--report-keep-runs", "1")
    names = sorted(p.name for p in reports.iterdir() if not p.name.startswith("."))
    assert names == sorted(["index.html", "report.html", f"report-{second}.html",
                            "results.jsonl", f"results-{second}.jsonl"]), names
    assert {json.loads(x)["run"] for x in
            (reports / "results.jsonl").read_text().splitlines()} == {third}


def test_an_accumulated_results_file_is_split_by_run(tmp_path):
    """results.jsonl of the old kind (every run's lines) becomes one file per run."""
    reports = tmp_path / "reports"
    reports.mkdir()
    old = [{"run": "20260101-000000", "nodeid": "a"}, {"run": "20260102-000000", "nodeid": "b"},
           {"run": "20260102-000000", "nodeid": "c"}]
    (reports / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in old))
    (reports / "report.html").write_text("<html>run 20260102-000000</html>")
    _suite(tmp_path, 1)
    _run_after(tmp_path, None)
    assert len((reports / "results-20260101-000000.jsonl").read_text().splitlines()) == 1
    assert len((reports / "results-20260102-000000.jsonl").read_text().splitlines()) == 2
    assert (reports / "report-20260102-000000.html").read_text().endswith("</html>")
    assert len((reports / "results.jsonl").read_text().splitlines()) == 1


def test_keep_runs_rejects_bad_values_in_one_line(tmp_path):
    _suite(tmp_path, 1)
    code, out = run(tmp_path, "--report-keep-runs", "-1")
    assert code == 4 and "--report-keep-runs -1: expected a non-negative integer" in out, out
