"""fixtures/reporting.py: report parts and index, results.jsonl, proof extras, secret masking.

Runs generated suites in a subprocess (VANCOUVER_TARGET is a dummy: no lab).
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import reporting

# Inner runs bounded by --duration and rotated by wall-clock time: run alone (make test).
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent

DEMO_YAML = """\
tenants:
  - {name: Vancouver-KU, platform: kubernetes}
profiles:
  ci:
    tenant_qos: {total_iops_max: 1000}
    tiers: {bronze: {total_iops_max: 500}, silver: {total_iops_max: 1000},
            gold: {total_iops_max: 2000}}
    images: {size_gib: 1}
    volumes: {size_gib: 1}
    rolling: {images: 1, ceph_volumes: 1, servers: 1}
    fio: {runtime_s: 1, block_size: 4k, iodepth: 1, rw: randrw}
    scenarios:
      demo: {interval_s: 0}
"""

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
pytestmark = pytest.mark.scenario("demo")

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

PLAIN_CONFTEST = """\
pytest_plugins = ["fixtures.config", "fixtures.endless", "fixtures.reporting"]
"""

PLAIN_TEST = """\
import pytest
pytestmark = pytest.mark.scenario("demo")

@pytest.mark.parametrize("n", range(%d))
def test_step(n, proof):
    with proof.step("work"):
        proof.figure("n", n)
"""


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT)
    e["VANCOUVER_TARGET"] = "/nonexistent/target.yaml"  # never start the lab
    for k in ("VANCOUVER_RUN_ID", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS"):
        e.pop(k, None)
    return e


def run(tmp: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
    (tmp / "demo.yaml").write_text(DEMO_YAML)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--demo-config", "demo.yaml", "--demo-profile", "ci", *args],
                          cwd=tmp, env=env(), capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


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
    code, out = run(tmp_path, "--count=0", "--duration", "3s", "--report-rotate-results", "40",
                    "--report-keep", "3")
    assert code == 0, out[-3000:]
    passed = int(re.search(r"(\d+) passed", out).group(1))
    reports = tmp_path / "reports"
    parts, total = index_parts((reports / "index.html").read_text())
    assert len(parts) >= 3 and sum(parts) == total == passed
    assert all(p == 40 for p in parts[:-1])
    files = sorted(reports.glob("report-*-*.html"))
    assert len(files) == 3 + 1  # --report-keep 3 finished parts, plus the final part
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


def test_mask_function():
    reporting.register_secret("unit-test-secret-1")
    assert reporting.mask("x unit-test-secret-1 y") == "x *** y"
    assert reporting.mask({"password": "p", "nested": {"api_key": "k", "ok": 1},
                           "list": ["unit-test-secret-1"], "empty_token": ""}) == \
        {"password": "***", "nested": {"api_key": "***", "ok": 1}, "list": ["***"],
         "empty_token": ""}
    reporting.register_secret("ab")  # too short to mask meaningfully
    assert reporting.mask("ab cd") == "ab cd"


def test_svg_chart_is_well_formed():
    import xml.etree.ElementTree as ET
    svg = reporting.svg_line_chart("QoS <gold>", [1, 2, 3], [(0, 4), (1, 5)],
                                   limits={"cap": 1000})
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}polyline")) == 2
