"""The dashboard in real headless Chromium (Debian `chromium` driven by Selenium through
Debian's `chromium-driver`), asserted on the rendered page (DOM and canvas pixels):
- live: a short tenancy run against the session's lab, the page open, each tenant chart
  receiving points, a volume's IOPS rising after its QoS tier is raised, a scenario counter
  going up; saves reports/dashboard.png;
- recorded: the run events every panel of the last session is fed by (happenings, the
  performance piece's fio results, a QoS change at its API call, an outage), in the form the
  scenarios and the outage plugin emit them, folded by the real RunState and served by the
  real DashboardServer: the event feed's happening and outage lines, the performance-only
  panel, the marker on the volume chart, the outage counter. Saves
  reports/dashboard-panels.png (the README's screenshot).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.waiters import wait_until
from tests.support.inner_run import env

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = [pytest.mark.skipif(not (shutil.which(CHROMIUM) and shutil.which(DRIVER)),
                                 reason="needs Debian chromium and chromium-driver "
                                        "(make setup installs them)")]

# Mean IOPS of a volume before (the 5 s up to 1 s before) and after (1..5 s after) its last
# QoS change, from the page's own last state (what its chart draws).
RISE_JS = """
const vols = (window.lastState && window.lastState.datera && window.lastState.datera.volumes) || [];
for (const v of vols) {
  if (!v.changes.length) continue;
  const ch = v.changes[v.changes.length - 1];
  if (!(ch.to > ch.from)) continue;
  const mean = (a, b) => { const p = v.iops.filter(([t]) => t >= ch.t + a && t < ch.t + b && true).map((x) => x[1]);
                           return p.length ? p.reduce((x, y) => x + y, 0) / p.length : null; };
  const before = mean(-6, -1), after = mean(1, 5);
  if (before !== null && after !== null && v.iops.some(([t]) => t >= ch.t + 5))
    return {name: v.name, from: ch.from, to: ch.to, before, after,
            marked: document.getElementById("vol-" + v.uuid) !== null &&
                    document.getElementById("vol-" + v.uuid).dataset.changes > 0};
}
return null;
"""


@pytest.fixture
def browser():
    from selenium import webdriver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1400,2700"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(DRIVER))
    yield driver
    driver.quit()


# A real demo run on the lab with fio and QoS measurements: alone, like the other slow tests.
# A real demo run on the session lab with fio and QoS measurements: alone, like the QoS tests.
@pytest.mark.slow
@pytest.mark.measures
def test_dashboard_live_in_chromium(target, browser, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
         "scenarios/test_tenancy.py", "--demo-profile", "ci", "--duration", "240s",
         "--target", str(target.path), "--dashboard", "127.0.0.1:0", "--live-view", "plain",
         "--html", str(tmp_path / "report.html")],
        cwd=ROOT, env=env(str(target.path)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("Vancouver demo: dashboard http://127.0.0.1:"), first
        url = first.split()[3]
        browser.get(url)
        tenants = ["Vancouver-OM", "Vancouver-ON", "Vancouver-OP", "Vancouver-KU",
                   "Vancouver-VM", "Aggregate__all_tenants_"]

        def points() -> dict:
            return browser.execute_script(
                "return Object.fromEntries(arguments[0].map((t) => "
                "[t, +(document.getElementById('tenant-' + t)?.dataset.points || 0)]))", tenants)
        try:
            first_points = wait_until(lambda: (p := points()) and all(p.values()) and p, 120,
                                      "every tenant chart to receive points")
        except TimeoutError:
            raise AssertionError(browser.execute_script(
                "return [document.getElementById('status').textContent, "
                "document.getElementById('notices').textContent, arguments[0]]", points()))
        wait_until(lambda: all(points()[t] > first_points[t] for t in tenants), 30,
                   "every tenant chart to receive more points")

        def iterations() -> int:  # the table is redrawn every second: read it in one go
            return browser.execute_script(
                "const c = document.querySelector('#sc-tenancy .iterations');"
                "return c ? +c.textContent : -1")
        start = wait_until(lambda: (n := iterations()) >= 0 and n + 1, 120,
                           "the tenancy row") - 1
        rise = wait_until(lambda: browser.execute_script(RISE_JS), 180,
                          "a volume's QoS raise with 5 s of IOPS after it")
        assert rise["marked"], rise
        assert rise["after"] > 1.3 * rise["before"], rise
        wait_until(lambda: iterations() > start, 180, "the tenancy counter to go up")
        shot = ROOT / "reports" / "dashboard.png"
        shot.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


# ------------------------------------------------------------------ recorded run, every panel
# The marker's colour (dashboard.js markerPlugin) in a column of the volume's plot canvas at
# the API call's time: the fraction of the plot's height drawn in it (dashed: about half).
MARKER_JS = """
const [uuid, t] = arguments;
const c = charts["vol-" + uuid];
if (!c || !c.plot) return null;
const u = c.plot, ctx = u.ctx, x = Math.round(u.valToPos(t, "x", true));
let hits = 0;
const px = ctx.getImageData(x - 1, u.bbox.top, 3, u.bbox.height).data;
for (let row = 0; row < u.bbox.height; row++) {
  let hit = false;
  for (let col = 0; col < 3; col++) {
    const i = (row * 3 + col) * 4;
    if (Math.abs(px[i] - 0xff) < 40 && Math.abs(px[i + 1] - 0xd1) < 50 && px[i + 2] < 160) hit = true;
  }
  hits += hit;
}
return {fraction: hits / u.bbox.height, source: c.box.dataset.markSource,
        drawn: +c.box.dataset.marksDrawn};
"""


@pytest.fixture
def recorded_dashboard(tmp_path):
    """The real DashboardServer serving a recorded minute of the demo (tests/support/
    recorded_run.py) through the real RunState and topology; yields (url, facts)."""
    import time
    from fixtures.dashboard import topology
    from fixtures.dashboard.server import DashboardServer, assets_dir, bind
    from tests.support.recorded_run import COMPONENTS, TENANTS, recorded_state
    assert assets_dir().is_dir(), f"no uPlot in {assets_dir()}: run `make dashboard-assets`"
    state, datera, facts = recorded_state(time.time())

    def snapshot() -> dict:
        run = state.snapshot()
        return {"run": run, "datera": datera,
                "topology": topology.build(TENANTS, COMPONENTS, set(), datera, run),
                "tenants": [{"name": t.name, "path": f"/root/{t.name}", "platform": t.platform,
                             "release": t.release} for t in TENANTS]}
    server = DashboardServer(bind("127.0.0.1", 0), snapshot, tmp_path).start()
    yield server.url, facts
    server.close()


def test_recorded_run_shows_every_panel_in_chromium(recorded_dashboard, browser):
    from fixtures.dashboard.state import HAPPENING_TEXT
    url, facts = recorded_dashboard
    browser.get(url)
    wait_until(lambda: browser.execute_script(
        "return document.querySelectorAll('#feed li').length"), 60, "the first push")

    # the event feed: one line per happening, in the plan's words, and the outage's lines
    feed = browser.execute_script(
        "return [...document.querySelectorAll('#feed li')].map((li) => "
        "({cls: li.className, kind: li.querySelector('.k').textContent, text: li.textContent}))")
    for what, subject in facts["happenings"].items():
        line = next((f for f in feed if f["cls"] == what), None)
        assert line is not None, (what, feed)
        assert f"{HAPPENING_TEXT[what]}: {subject}" in line["text"], line
    outage = [f["text"] for f in feed if f["cls"] == "outage"]
    assert any("OpenStack Newton (Keystone) at http://127.0.2.1:5000/v3 not answering: "
               "connection refused" in t for t in outage), outage
    assert any("back after 12.6 s" in t for t in outage), outage
    assert any("met an outage of openstack-newton (connection refused, 13 s)" in t
               for t in outage), outage
    kinds = {f["cls"]: f["kind"] for f in feed}
    assert kinds["volume_migrated"] == "migrated" and kinds["outage"] == "outage", kinds

    # the outage counter: apart from failures
    row = browser.execute_script(
        "const r = document.getElementById('sc-server_lifecycle');"
        "return r && {outage: r.querySelector('td.outage')?.textContent,"
        " failed: r.querySelector('td.num:nth-child(5)').textContent,"
        " iterations: r.querySelector('.iterations').textContent}")
    assert row == {"outage": "1", "failed": "0", "iterations": "1"}, row

    # the performance-only panel: five workloads, latest iteration first, the previous beside it
    perf = browser.execute_script(
        "const t = document.querySelector('#performance table#fio-performance');"
        "return t && {head: [...t.querySelectorAll('thead tr:first-child th')].map((h) => "
        "h.textContent), rows: [...t.querySelectorAll('tbody tr')].map((r) => "
        "[...r.cells].map((c) => c.textContent))}")
    assert perf is not None, "no performance table"
    assert perf["head"][1:] == ["latest", "1 before"], perf["head"]
    latest, before = facts["perf"][1], facts["perf"][0]
    assert [r[0] for r in perf["rows"]] == [w[0] for w in latest], perf["rows"]
    for cells, new, old in zip(perf["rows"], latest, before):
        assert cells[1] == str(new[1]) and cells[1 + len(cells) // 2] == str(old[1]), cells
    others = browser.execute_script("return document.getElementById('fio').textContent")
    assert "guest fio (server console)" in others and "4k randread" not in others

    # the QoS change on the retyped volume's chart: a marker drawn at the API call's time
    mark = wait_until(lambda: browser.execute_script(MARKER_JS, facts["retyped"],
                                                     facts["api_call"]), 30, "the volume chart")
    assert mark["source"] == "api-call" and mark["drawn"] == 1, mark
    assert mark["fraction"] > 0.3, mark

    shot = ROOT / "reports" / "dashboard-panels.png"
    shot.parent.mkdir(exist_ok=True)
    browser.set_window_size(1400, 900)  # then exactly the page's height: every panel
    browser.set_window_size(1400, browser.execute_script(
        "return document.querySelector('main').getBoundingClientRect().bottom") + 140)
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
