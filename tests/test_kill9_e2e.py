"""kill -9 of the Datera lab process during a bounded endless run (issue 13's Show), end to end:
a `-n 2 --count=0 --duration` run of the tenancy scenario (ci profile) against a lab of its
own (net 127.226), Datera killed with SIGKILL once both workers are inside scenario steps,
and again while no iteration met it (a crash loop, tests/support/outage_run.crash_loop):
Datera is back within a second, and a worker measuring fio (the data plane reconnects) or
waiting for a QoS window sends it no request in that second (rehearsal cc1: no outage met).

One test proves the promise together: the supervisor restarts Datera (promptly: the 5 s
figure is tests/test_lab_restart.py's, on a quiet lab); objects made before the kill (a
tenant, an app instance with its volume, performance policy, ACL and CHAP, an initiator)
are there afterwards with the same ids (the durable store); the run exits 0
with no failure storm (no outcome but passed/outage); results.jsonl and the report count the
outage as its own kind; nothing demo-prefixed is left (the cleanup command finds nothing).
Fixed net: run under the lock of tests/support/labcli.py's nets."""
import uuid

import pytest

from tests.support.datera_lab import drop_tenant, make_lab_volume
from tests.support.dsdk import Udc, connect
from tests.support.outage_run import (CRASH_LOOP_LAB_ENV, assert_rode_out, crash_loop,
                                      leftovers, own_lab, run_with_fault)

# timeout: the inner run's own limit is 600 s (pytest.ini: 300 s)
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.timeout(900)]
NET = "127.226"
# The promise is back within 5 s of a kill -9: tests/test_lab_restart.py holds each
# component to it on a quiet lab. Here the run's two workers and fio share the machine's
# 2 cores with the restarting process (a trial under CI load took 7.3 s): the bound only
# says the supervisor restarted it promptly, not minutes later.
RESTART_DEADLINE_S = 15.0
HOST = "iqn.1993-08.org.debian:01:survivor-host"


@pytest.fixture(scope="module")
def kill_lab(tmp_path_factory):
    with own_lab(tmp_path_factory, NET, "datera", **CRASH_LOOP_LAB_ENV) as lab:
        yield lab


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
    took = []
    run = run_with_fault(kill_lab, tmp_path,
                         lambda lines: crash_loop(kill_lab, "datera", lines, took),
                         duration="75s")
    assert took and took[0] < RESTART_DEADLINE_S, f"Datera took {took}s to be healthy again"
    assert_rode_out(run, {"datera"})

    # Durable: what existed before the kill is there after it, with the same ids.
    _check_survivors(api, ids)
    drop_tenant(api, ids["tenant"])
    assert leftovers(kill_lab) == []
