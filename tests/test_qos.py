"""QoS of the Datera lab's data plane: the token buckets alone, then measured with real fio
against the session lab (performance_policy and the lab's tenant cap, set through dfs_sdk),
with the lab's own metrics checked against what fio saw."""
import asyncio
import time

import pytest

from lab.datera.qos import BURST_SECONDS, Limiter, Pacer, release_time, validate_policy
from fixtures import metrics
from fixtures import workload as fio
from tests.support.datera_lab import HOST, make_lab_volume

# ==== the buckets ================================================================================


def test_iops_bucket_spaces_replies_and_zero_is_unlimited():
    lim = Limiter("v")
    assert not lim.active and release_time((), 5.0, True, 4096) == 0.0
    lim.set_policy({"total_iops_max": 1000}, now=10.0)
    slots = [lim.reserve(10.0, True, 4096) for _ in range(5)]
    assert slots == pytest.approx([10.0, 10.001, 10.002, 10.003, 10.004])
    lim.set_policy({}, now=10.0)
    assert not lim.active and lim.reserve(10.0, True, 4096) == 0.0


def test_idle_bucket_keeps_only_a_small_burst():
    lim = Limiter("v")
    lim.set_policy({"write_iops_max": 100}, now=0.0)
    # long idle: the first op may go at once, but credit is capped at BURST_SECONDS
    first = lim.reserve(100.0, True, 512)
    assert first == pytest.approx(100.0 - BURST_SECONDS)
    assert lim.reserve(100.0, True, 512) == pytest.approx(100.0 - BURST_SECONDS + 0.01)


def test_directions_and_bandwidth():
    lim = Limiter("v")
    lim.set_policy({"read_iops_max": 10, "write_bandwidth_max": 1024}, now=0.0)  # 1 MiB/s writes
    assert lim.reserve(0.0, True, 4096) == 0.0
    assert lim.reserve(0.0, True, 4096) == pytest.approx(4096 / (1 << 20))
    assert lim.reserve(0.0, False, 1 << 20) == 0.0        # reads: only the read IOPS bucket
    assert lim.reserve(0.0, False, 512) == pytest.approx(0.1)


def test_policy_change_applies_at_once_and_keeps_queued_pace():
    lim = Limiter("v")
    lim.set_policy({"total_iops_max": 500}, now=0.0)
    queued = [lim.reserve(0.0, True, 4096) for _ in range(4)]   # 0, 2, 4, 6 ms
    lim.set_policy({"total_iops_max": 2000}, now=0.0)
    after = [lim.reserve(0.0, True, 4096) for _ in range(3)]
    assert queued[-1] == pytest.approx(0.006)
    assert after == pytest.approx([0.008, 0.0085, 0.009])      # the old pace ends with the queue


def test_release_is_the_latest_slot_over_volume_and_tenant():
    vol, tenant = Limiter("v"), Limiter("t")
    vol.set_policy({"total_iops_max": 1000}, now=0.0)
    tenant.set_policy({"total_iops_max": 100}, now=0.0)
    times = [release_time((vol, tenant), 0.0, True, 4096) for _ in range(3)]
    assert times == pytest.approx([0.0, 0.01, 0.02])


@pytest.mark.parametrize("policy, message", [
    ({"total_iops_max": -1}, "total_iops_max: expected a non-negative integer"),
    ({"read_bandwidth_max": "100"}, "read_bandwidth_max: expected a non-negative integer"),
    ({"write_iops_max": True}, "write_iops_max: expected a non-negative integer"),
    ({"iops": 5}, "unknown field 'iops'"),
])
def test_bad_policy_is_a_one_line_error(policy, message):
    with pytest.raises(ValueError, match=message):
        validate_policy(policy)


async def _until_released(released: list, n_items: int, timeout: float = 30.0) -> None:
    """Waits (bounded) until `n_items` items were released, whatever the wake-ups were: a
    late wake-up on a loaded machine coalesces more (rehearsal cc7: a wait for a count of
    releases hung for 300 s when the first wake-up, 48 ms late, carried every item)."""
    deadline = time.monotonic() + timeout
    while sum(len(r[-2]) for r in released) < n_items:
        assert time.monotonic() < deadline, f"released after {timeout}s: {released}"
        await asyncio.sleep(0.005)


def assert_paced(released: list, due: dict) -> None:
    """What Pacer promises, however late its wake-ups: every item once, none before its time
    less Pacer.EARLY, and one release per sink per wake-up (released: (sink, items, now))."""
    items = [i for _, its, _ in released for i in its]
    assert sorted(map(str, items)) == sorted(map(str, due)), released
    for _, its, now in released:
        assert all(now >= due[i] - Pacer.EARLY for i in its), released
    sinks_by_wakeup: dict = {}
    for sink, _, now in released:
        sinks_by_wakeup.setdefault(now, []).append(sink)
    assert all(len(v) == len(set(v)) for v in sinks_by_wakeup.values()), released


def test_pacer_releases_on_time_in_one_batch_per_connection():
    released = []

    class Sink:
        def __init__(self, name):
            self.name = name

        def release(self, items, now):
            released.append((self.name, list(items), now))

    async def scenario():
        pacer = Pacer(asyncio.get_running_loop())
        a, b = Sink("a"), Sink("b")
        t0 = time.monotonic()
        due = {0: t0 + 0.03, 1: t0 + 0.03, 2: t0 + 0.03, "early": t0 + 0.01, "late": t0 + 0.03}
        for item, when in due.items():
            pacer.hold(when, a if isinstance(item, int) else b, item)
        pacer.hold(t0 + 3600, b, "taken")   # never due here: a closing connection takes it
        await _until_released(released, len(due))
        assert pacer.take(b) == ["taken"] and len(pacer) == 0
        pacer.close()
        return due

    due = asyncio.run(scenario())
    assert_paced(released, due)
    assert released[0][:2] == ("b", ["early"]) or \
        released[0][2] >= due["late"] - Pacer.EARLY   # on time, or one late wake-up for all
    assert [i for n, its, _ in released if n == "a" for i in its] == [0, 1, 2]
    assert [i for n, its, _ in released if n == "b" for i in its] == ["early", "late"]


def test_pacer_coalesces_replies_due_within_its_early_margin():
    """One wake-up carries every reply due within Pacer.EARLY, in one release per sink."""
    released = []

    class Sink:
        def release(self, items, now):
            released.append(("s", list(items), now))

    async def scenario():
        pacer = Pacer(asyncio.get_running_loop())
        sink = Sink()
        t0 = time.monotonic() + 0.02
        due = {i: t0 + i * Pacer.EARLY / 5 for i in range(4)}   # 0.4 ms apart: one margin
        due["next tick"] = t0 + 0.05
        for item, when in due.items():
            pacer.hold(when, sink, item)
        await _until_released(released, len(due))
        pacer.close()
        return due

    due = asyncio.run(scenario())
    assert_paced(released, due)
    assert released[0][1][:4] == [0, 1, 2, 3]   # the four in the first wake-up, together
    # "next tick" comes in a wake-up of its own, unless the first came 48 ms late
    assert released[-1][1] == ["next tick"] or len(released) == 1, released


# ==== measured with fio, through the session lab ===============================================

def within(measured: float, expected: float, tolerance: float = 0.05) -> bool:
    return abs(measured - expected) <= tolerance * expected


@pytest.mark.slow
@pytest.mark.measures
@pytest.mark.parametrize("limit", [500, 1000, 5000])
def test_volume_iops_limit_holds_and_metrics_agree_with_fio(lab_api, lab_tenant, tmp_path, limit):
    lv = make_lab_volume(lab_api, lab_tenant, initiators=[HOST], qos={"total_iops_max": limit})
    (lun,) = lv.login(HOST)
    r = fio.run(lun.uri, tmp_path, rw="randwrite", bs="4k", iodepth=16, size="256M", runtime=5)
    assert r.ok, r.stderr
    assert within(r.write.iops, limit), f"fio measured {r.write.iops:.0f} IOPS at a {limit} limit"
    time.sleep(max(0.0, r.ended + 1.1 - time.time()))       # the last second is rolled up
    lab = metrics.steady_mean(lv.points("iops_write"), r.started, r.ended)
    assert within(lab, r.write.iops), f"lab metrics {lab:.0f} IOPS, fio {r.write.iops:.0f}"
    # the latency the lab reports includes the QoS wait, as fio sees it (Little's law)
    lat = metrics.steady_mean(lv.points("lat_avg_write"), r.started, r.ended)
    assert within(lat, r.write.lat_mean_us, 0.25), f"lab {lat:.0f} us, fio {r.write.lat_mean_us:.0f} us"


@pytest.mark.slow
@pytest.mark.measures
def test_live_policy_change_shows_in_the_metrics_within_2_s(lab_api, lab_tenant, tmp_path):
    lv = make_lab_volume(lab_api, lab_tenant, initiators=[HOST], qos={"total_iops_max": 500})
    (lun,) = lv.login(HOST)
    proc = fio.start(lun.uri, tmp_path, rw="randwrite", bs="4k", iodepth=16, size="256M", runtime=7)
    try:
        deadline = time.time() + 5
        while not any(within(p["value"], 500) for p in lv.points("iops_write", "10s")):
            assert time.time() < deadline and proc.poll() is None, "fio never reached 500 IOPS"
            time.sleep(0.1)
        lv.vol.performance_policy.get(tenant=lab_tenant).set(total_iops_max=2000, tenant=lab_tenant)
        changed = time.time()
        while True:
            latest = lab_api.metrics.io.iops_write.latest.get(
                uuid=lv.uuid, tenant=lab_tenant)[0]["point"]
            if within(latest["value"], 2000):
                break
            assert time.time() - changed < 2.0, f"still {latest['value']} IOPS 2 s after the change"
            time.sleep(0.05)
    finally:
        r = fio.wait(proc)
    assert r.ok, r.stderr
    after = [p["value"] for p in lv.points("iops_write") if changed + 1 <= p["time"] < r.ended - 1]
    assert after and all(within(v, 2000) for v in after), after


@pytest.mark.slow
@pytest.mark.measures
def test_tenant_cap_holds_across_three_busy_volumes(lab_api, lab_tenant, tmp_path):
    lab_api.tenant_qos.set(total_iops_max=1000, tenant=lab_tenant)
    vols = [make_lab_volume(lab_api, lab_tenant, initiators=[HOST]) for _ in range(3)]
    uris = [lv.login(HOST)[0].uri for lv in vols]
    procs = [fio.start(u, tmp_path / f"v{i}", rw="randwrite", bs="4k", iodepth=16, size="256M",
                       runtime=5) for i, u in enumerate(uris)]
    results = [fio.wait(p) for p in procs]
    assert all(r.ok for r in results), [r.stderr for r in results]
    total = sum(r.write.iops for r in results)
    assert within(total, 1000), f"three volumes together: {total:.0f} IOPS at a tenant cap of 1000"
    started, ended = max(r.started for r in results), min(r.ended for r in results)
    time.sleep(max(0.0, ended + 1.1 - time.time()))
    points = lab_api.metrics.io.iops_write.get(since="1m", tenant=lab_tenant)[0]["points"]
    lab = metrics.steady_mean(points, started, ended)
    assert within(lab, 1000), f"the lab's tenant metrics say {lab:.0f} IOPS"
