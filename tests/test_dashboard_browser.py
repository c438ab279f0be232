"""The dashboard in real headless Chromium (Debian `chromium` driven by Selenium through
Debian's `chromium-driver`): a short tenancy run against the session's lab, the page open,
each tenant chart receiving points, a volume's IOPS rising after its QoS tier is raised, a
scenario counter going up. Saves reports/dashboard.png (the README's screenshot).
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

# A real demo run on the session lab with fio and QoS measurements: alone, like the QoS tests.
pytestmark = [pytest.mark.slow, pytest.mark.measures,
              pytest.mark.skipif(not (shutil.which(CHROMIUM) and shutil.which(DRIVER)),
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
