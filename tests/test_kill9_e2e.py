"""kill -9 of the Datera lab process during a bounded endless run (issue 13's Show), end to end:
a `-n 2 --count=0 --duration` run of the tenancy scenario (ci profile) against a lab of its
own (net 127.226), Datera killed with SIGKILL while both workers are inside scenario steps.

One test proves the promise together: the supervisor restarts Datera (promptly: the 5 s
figure is tests/test_lab_restart.py's, on a quiet lab); objects made before the kill (a
tenant, an app instance with its volume, performance policy, ACL and CHAP, an initiator)
are there afterwards with the same ids (the durable store); the run exits 0
with no failure storm (no outcome but passed/outage); results.jsonl and the report count the
outage as its own kind; nothing demo-prefixed is left (the cleanup command finds nothing).
Fixed net: run under the lock of tests/support/labcli.py's nets."""
import json
import os
import signal
import time
import uuid

import pytest

from fixtures.waiters import wait_until
from tests.support.datera_lab import drop_tenant, make_lab_volume
from tests.support.dsdk import Udc, connect
from tests.support.labcli import LabCli
from tests.support.outage_run import leftovers, start_demo, wait_workers_in_steps

pytestmark = [pytest.mark.slow, pytest.mark.serial]
NET = "127.226"
# The promise is back within 5 s of a kill -9: tests/test_lab_restart.py holds each
# component to it on a quiet lab. Here the run's two workers and fio share the machine's
# 2 cores with the restarting process (a trial under CI load took 7.3 s): the bound only
# says the supervisor restarted it promptly, not minutes later.
RESTART_DEADLINE_S = 15.0
HOST = "iqn.1993-08.org.debian:01:survivor-host"


@pytest.fixture(scope="module")
def kill_lab(tmp_path_factory):
    lab = LabCli(NET, tmp_path_factory.mktemp("kill9-lab") / "run")
    proc = lab.run("up", "--only", "datera", timeout=300)
    assert proc.returncode == 0, proc.stderr
    yield lab
    lab.run("down")


def _datera(lab: LabCli) -> dict:
    """The supervisor's record of the Datera component (pid, state, restarts)."""
    return next(c for c in json.loads((lab.run_dir / "state.json").read_text())["components"]
                if c["name"] == "datera")


def _survivors(api) -> dict:
    """Objects of every kind the run's scenarios use, made before the kill: their ids."""
    tenant = f"/root/survivor-{uuid.uuid4().hex[:6]}"
    api.tenants.create(name=tenant.rsplit("/", 1)[1])
    vol = make_lab_volume(api, tenant, initiators=[HOST], chap=("survivor", "survivor-pw-12"),
                          qos={"total_iops_max": 700})
    return {"tenant": tenant, "ai": vol.ai["id"], "vol": vol.uuid, "iqn": vol.iqn}


def _check_survivors(api, ids: dict) -> None:
    tenant = ids["tenant"]
    ai = api.app_instances.get(ids["ai"], tenant=tenant)
    si = ai.storage_instances.list(tenant=tenant)[0]
    vol = si.volumes.list(tenant=tenant)[0]
    assert vol["uuid"] == ids["vol"] and si["access"]["iqn"] == ids["iqn"]
    assert vol.performance_policy.get(tenant=tenant)["total_iops_max"] == 700
    assert [i["path"] for i in si.acl_policy.get(tenant=tenant)["initiators"]] == \
        [f"/initiators/{HOST}"]
    assert si.auth.get(tenant=tenant)["type"] == "chap"
    assert api.initiators.get(HOST, tenant=tenant)["id"] == HOST


def test_kill_9_of_datera_mid_run_restarts_keeps_objects_and_counts_an_outage(kill_lab,
                                                                               tmp_path):
    target = kill_lab.run_dir / "target"
    api = connect(Udc.load(target / "datera.json", target / "datera-ca.pem"))
    ids = _survivors(api)
    proc, lines = start_demo(kill_lab, tmp_path, workers=2, duration="75s")
    try:
        wait_workers_in_steps(proc, lines, workers=2)
        pid, restarts = _datera(kill_lab)["pid"], _datera(kill_lab)["restarts"]
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: (c := _datera(kill_lab))["pid"] != pid
                   and c["state"] == "healthy" and c["restarts"] == restarts + 1,
                   timeout=30, interval=0.02, what="Datera healthy again after its kill -9")
        took = time.monotonic() - killed
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    out = "\n".join(lines)
    assert took < RESTART_DEADLINE_S, f"Datera took {took:.2f}s to be healthy again"
    assert proc.returncode == 0, out[-6000:]

    # No failure storm: every result passed or is an outage (none failed for the kill).
    results = [json.loads(ln) for ln in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert results, out[-3000:]
    assert not [r for r in results if r["outcome"] not in ("passed", "outage")], \
        [(r["nodeid"], r["outcome"]) for r in results if r["outcome"] != "passed"]
    outages = [r for r in results if r["outcome"] == "outage"]
    assert outages, "no iteration counted the kill as an outage: " + out[-3000:]
    assert {r["outage"]["platform"] for r in outages} == {"datera"}, outages
    # Each paused worker resumed, unless the run's end came while it waited (then it stops
    # there: its last result).
    assert any(r["outage"]["resumed"] for r in outages), outages
    last = {r["worker"]: r for r in results}
    assert all(r["outage"]["resumed"] or r is last[r["worker"]] for r in outages), outages
    assert any("Outage (not a failure" in p.read_text() for p in tmp_path.glob("report*.html"))
    assert ">outage<" in (tmp_path / "index.html").read_text()

    # Durable: what existed before the kill is there after it, with the same ids.
    _check_survivors(api, ids)
    drop_tenant(api, ids["tenant"])
    assert leftovers(kill_lab) == []
