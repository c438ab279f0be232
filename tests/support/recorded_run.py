"""A recorded minute of the booth demo for the dashboard's page tests: the run events in the
form the scenarios and plugins emit them (scenarios/openstack/*, kubernetes, vmware,
test_performance.py's proof.fio rows, proof.qos_change before the retype, the outage
plugin's down/back events and the iteration it spoiled), and the Datera metrics part as
DateraMetrics.snapshot() gives it for that minute (tenant series, the retyped volume's IOPS
rising from its bronze policy to the tenant cap after the change).

`recorded_state(now)` -> (RunState fed with every event, datera snapshot dict, facts), where
facts names what the page must show (the retyped volume, the API call time, the counts).
"""
from __future__ import annotations

from types import SimpleNamespace

from fixtures.dashboard.state import RunState
from fixtures.reporting import events as ev

TENANTS = [SimpleNamespace(name=n, platform=p, release=r) for n, p, r in (
    ("Vancouver-OM", "openstack", "mitaka"), ("Vancouver-ON", "openstack", "newton"),
    ("Vancouver-OP", "openstack", "pike"), ("Vancouver-KU", "kubernetes", None),
    ("Vancouver-VM", "vmware", None))]
COMPONENTS = {"ldap", "datera", "openstack-mitaka", "openstack-newton", "openstack-pike",
              "kubernetes", "vsphere"}
SL = "scenarios/openstack/test_server_lifecycle.py::test_server_lifecycle"
PERF = "scenarios/test_performance.py::test_performance"
RETYPED = "5f0c1c9e-8a3e-4c57-9d0e-2b7f1e0a6c11"
# (workload, IOPS, MiB/s, p95 ms, p99 ms) of two performance iterations, oldest first
PERF_ROWS = [
    [("4k randread", 9120, 35.6, 4.1, 6.3), ("4k randwrite", 7010, 27.4, 5.2, 8.0),
     ("8k randrw 70/30", 6240, 48.8, 5.8, 9.4), ("64k seq read", 2210, 138.1, 16.0, 21.9),
     ("64k seq write", 1890, 118.1, 18.2, 25.0)],
    [("4k randread", 9480, 37.0, 3.9, 6.0), ("4k randwrite", 6850, 26.8, 5.4, 8.4),
     ("8k randrw 70/30", 6390, 49.9, 5.6, 9.1), ("64k seq read", 2260, 141.3, 15.7, 21.2),
     ("64k seq write", 1930, 120.6, 17.9, 24.4)]]


def _perf_events(t: float, rows) -> list[ev.Event]:
    out = []
    for name, iops, mib, p95, p99 in rows:
        out.append(ev.FioResult(name=name, row={"device": "2 volumes (VIP1 + VIP2)",
                                                "iops": iops, "MiB/s": mib, "lat p95 ms": p95,
                                                "lat p99 ms": p99}, nodeid=PERF, worker="gw0",
                                ts=t))
        t += 4
    return out + [ev.TestResult(outcome="passed", duration_s=24.0, nodeid=PERF, worker="gw0",
                                ts=t)]


def recorded_state(now: float) -> tuple[RunState, dict, dict]:
    t0 = now - 60
    tq = now - 25  # the retype's API call
    state = RunState()
    state.started = now - 300
    events: list[ev.Event] = [
        ev.Happening(what="image_created", subject="vancouver-7e17f8-gw1-image-4",
                     detail="pike, 1 GiB virtual", nodeid="scenarios/openstack/"
                     "test_image_rotation.py::test_image_rotation[pike]", worker="gw1",
                     ts=t0 + 2),
        ev.Happening(what="image_rotated", subject="vancouver-7e17f8-gw1-image-2",
                     detail="pike", nodeid="scenarios/openstack/test_image_rotation.py::"
                     "test_image_rotation[pike]", worker="gw1", ts=t0 + 3),
        ev.Happening(what="volume_migrated", subject="vancouver-7e17f8-gw2-ceph-3",
                     detail="newton, to Datera silver", nodeid="scenarios/openstack/"
                     "test_ceph_migration.py::test_ceph_migration[newton]", worker="gw2",
                     ts=t0 + 6),
        ev.Happening(what="pod_started", subject="vancouver-ku/fio-7e17f8-5",
                     nodeid="scenarios/kubernetes/test_kubernetes.py::test_kubernetes",
                     worker="gw3", ts=t0 + 8),
        ev.Happening(what="vm_started", subject="vancouver-7e17f8-gw4-vm-2",
                     detail="disks on datera-lun-0, datera-lun-1",
                     nodeid="scenarios/vmware/test_vmware.py::test_vmware", worker="gw4",
                     ts=t0 + 10),
        *_perf_events(t0 + 12, PERF_ROWS[0]),
        ev.Outage(platform="openstack-newton", label="OpenStack Newton (Keystone)",
                  endpoint="http://127.0.2.1:5000/v3", reason="connection refused",
                  state="down", duration_s=0.4, nodeid=f"{SL}[newton]", worker="gw2",
                  ts=t0 + 14),
        ev.StepStart(name="boot the server from its volume", step=0, nodeid=f"{SL}[mitaka]",
                     worker="gw1", ts=tq - 20),
        ev.QosChange(volume=RETYPED, tenant="/root/Vancouver-OM", before=500, after=2000,
                     nodeid=f"{SL}[mitaka]", worker="gw1", ts=tq),
        ev.Happening(what="volume_retyped", subject="vancouver-7e17f8-gw1-data-1",
                     detail="mitaka, bronze -> gold", nodeid=f"{SL}[mitaka]", worker="gw1",
                     ts=tq + 0.5),
        ev.Outage(platform="openstack-newton", label="OpenStack Newton (Keystone)",
                  endpoint="http://127.0.2.1:5000/v3", reason="connection refused",
                  state="back", duration_s=12.6, nodeid=f"{SL}[newton]", worker="gw2",
                  ts=t0 + 27),
        ev.TestResult(outcome="outage", duration_s=41.0, nodeid=f"{SL}[newton]", worker="gw2",
                      outage={"platform": "openstack-newton", "reason": "connection refused",
                              "duration_s": 12.6}, ts=t0 + 30),
        ev.Happening(what="pod_removed", subject="vancouver-ku/fio-7e17f8-5",
                     nodeid="scenarios/kubernetes/test_kubernetes.py::test_kubernetes",
                     worker="gw3", ts=t0 + 33),
        ev.TestResult(outcome="passed", duration_s=26.0, nodeid="scenarios/kubernetes/"
                      "test_kubernetes.py::test_kubernetes", worker="gw3", ts=t0 + 34),
        ev.Happening(what="vm_removed", subject="vancouver-7e17f8-gw4-vm-2",
                     nodeid="scenarios/vmware/test_vmware.py::test_vmware", worker="gw4",
                     ts=t0 + 38),
        ev.TestResult(outcome="passed", duration_s=29.0, nodeid="scenarios/vmware/"
                      "test_vmware.py::test_vmware", worker="gw4", ts=t0 + 39),
        *_perf_events(t0 + 40, PERF_ROWS[1]),
        ev.FioResult(name="guest fio (server console)", row={"iops": 998, "MiB/s": 3.9,
                     "lat p99 ms": 21.3}, nodeid=f"{SL}[mitaka]", worker="gw1", ts=now - 5),
        ev.StepStart(name="retype both volumes to gold while fio runs", step=3,
                     nodeid=f"{SL}[mitaka]", worker="gw1", ts=tq - 1),
    ]
    for e in sorted(events, key=lambda e: e.ts):
        state(e)

    secs = range(int(now) - 120, int(now) + 1)

    def series(f) -> list[list]:
        return [[s, float(f(s))] for s in secs]
    retyped = series(lambda s: 500 if s < tq + 1 else 1000)  # bronze, then the tenant cap
    tenants = {f"/root/{t.name}": {"iops": series(lambda s, i=i: (0 if t.name != "Vancouver-OM"
                                                                   else retyped[s - secs[0]][1])
                                                  + 120 * i * ((s // 7) % 2)),
                                   "mib_s": series(lambda s, i=i: 0.5 + 0.4 * i * ((s // 7) % 2)), "volumes": 2, "size_gib": 2,
                                   "used_gib": 0.4}
               for i, t in enumerate(TENANTS)}
    agg = [[s, sum(tenants[t]["iops"][k][1] for t in tenants)] for k, s in enumerate(secs)]
    datera = {"problem": "", "cap_iops": 1000, "polled_at": now, "tenants": tenants,
              "aggregate": {"iops": agg, "mib_s": series(lambda s: 2.0 + ((s // 7) % 2))},
              "volumes": [
                  {"uuid": RETYPED, "tenant": "/root/Vancouver-OM",
                   "name": f"OS-{RETYPED}", "policy": 2000, "iops": retyped,
                   "changes": [{"t": tq + 1.2, "from": 500, "to": 2000}]},
                  {"uuid": "0d1e2f30-1111-4222-8333-944455556666", "tenant":
                   "/root/Vancouver-KU", "name": "pvc-0d1e2f30", "policy": 1000,
                   "iops": series(lambda s: 400 + 300 * ((s // 9) % 2)), "changes": []}]}
    facts = {"retyped": RETYPED, "api_call": tq, "perf": PERF_ROWS,
             "happenings": {e.what: e.subject for e in events if isinstance(e, ev.Happening)}}
    return state, datera, facts
