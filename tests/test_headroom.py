"""fixtures/headroom.py: QoS checks share their window within the measured capacity and never
on one tenant at once, the performance piece has it alone, a waiting performance run keeps new
QoS checks out (no starvation), and the capacity probe runs alone, once per TTL."""
import contextlib
import fcntl
import os
import subprocess
import threading
import time
import uuid

from fixtures import headroom
from fixtures.headroom import TENANT_IO
from fixtures.waiters import wait_until


def _held(path) -> bool:
    """True when someone holds `path` exclusively or shared (a non-blocking probe)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_qos_checks_overlap_and_a_waiting_saturation_run_goes_next():
    endpoint = f"https://test-{uuid.uuid4().hex}"
    turnstile, ledger = headroom._paths(endpoint)
    order: list[str] = []
    with headroom.qos_window(endpoint):
        with headroom.qos_window(endpoint):     # shared: a second check gets in at once
            order.append("two checks at once")
        writer_in, writer_go = threading.Event(), threading.Event()

        def saturate():
            with headroom.saturation_window(endpoint):
                order.append("saturation")
                writer_in.set()
                writer_go.wait(10)
        writer = threading.Thread(target=saturate)
        writer.start()
        # the waiting run holds the turnstile: a new QoS check cannot start ...
        wait_until(lambda: _held(turnstile), 10, "the saturation run to queue", 0.01)
        assert not writer_in.is_set()

        def late_check():
            with headroom.qos_window(endpoint):
                order.append("late check")
        late = threading.Thread(target=late_check)
    late.start()                                # ... and once the first check ends,
    assert writer_in.wait(10)                   # the saturation run goes first
    assert order == ["two checks at once", "saturation"]
    writer_go.set()
    writer.join(10)
    late.join(10)
    assert order == ["two checks at once", "saturation", "late check"]
    for p in (turnstile, ledger):
        p.unlink()


@contextlib.contextmanager
def windows(probe=None, **kw):
    """headroom.Windows on an endpoint of its own; its lock files are removed after."""
    w = headroom.Windows(f"https://test-{uuid.uuid4().hex}", probe=probe, **kw)
    try:
        yield w
    finally:
        for p in (w.turnstile, w.ledger):
            p.unlink(missing_ok=True)


def waiting_claim(w, iops: int, **kw):
    """Starts a claim of `iops` on another thread and asserts that it waits (0.5 s: a
    negative, nothing to wait for). Returns enters(): asserts it gets in once the caller's
    claims are gone."""
    got_in = threading.Event()

    def claim():
        with w.qos(iops, **kw):
            got_in.set()
    t = threading.Thread(target=claim, daemon=True)
    t.start()
    assert not got_in.wait(0.5)

    def enters():
        assert got_in.wait(10)
        t.join(10)
    return enters


def test_claims_beyond_the_measured_capacity_wait_their_turn():
    probes = []

    def probe():
        probes.append(time.monotonic())
        return 1000.0
    with windows(probe, share=0.8, paced_cost=1) as w:
        with w.qos(500) as first:            # the first window measures the capacity
            assert (first.capacity, first.beside, len(probes)) == (1000.0, 0, 1)
            with w.qos(300) as second:       # 800 <= 0.8 x 1000: side by side
                assert second.beside == 500
            third = waiting_claim(w, 400)    # 900 > 800: waits for the first to leave
        third()
        with w.qos(5000) as alone:           # more than the host: alone, expecting what it has
            assert alone.reach(2000) == 1000.0 and alone.reach(500) == 500
        assert len(probes) == 1              # measured once within the TTL
    with windows(lambda: 3000.0, paced_cost=3) as w:
        with w.qos(1000) as adm:             # a paced op weighs 3: the host paces 1,000
            assert adm.paced_capacity == 1000.0
            assert (adm.reach(2000), adm.reach(500)) == (1000.0, 500)
            assert adm.row()["host capacity, paced IOPS"] == 1000


def test_a_paced_probe_short_of_its_limit_lowers_what_checks_expect():
    # the host paced 75% of the probe's limit
    with windows(lambda: 6000.0, probe_limit=8000) as w:
        with w.qos(1000) as adm:
            assert adm.paced_share == 0.75
            assert (adm.reach(1000), adm.reach(500)) == (750.0, 375.0)
            assert adm.row()["share of its limit the paced probe reached"] == 0.75
    with windows(lambda: 6000.0, probe_limit=8000) as w:   # short of pace: one at a time
        with w.qos(100):
            second = waiting_claim(w, 100)
        second()
    with windows(lambda: 8000.0, probe_limit=8000) as w:   # a host that keeps pace: the limits
        with w.qos(1000) as adm:
            assert (adm.paced_share, adm.reach(1000)) == (1.0, 1000)
            with w.qos(1000) as beside:                    # and room for more than one check
                assert beside.beside == 1000


def test_paced_claims_weigh_their_cost():
    with windows(lambda: 10000.0, share=0.8, paced_cost=8) as w:
        with w.qos(500):                     # 500 x 8 = 4,000 of 8,000
            with w.qos(500) as second:       # 8,000 of 8,000: fits
                assert second.beside == 500
                third = waiting_claim(w, 100)   # 8,800 > 8,000: waits
        third()


def test_the_capacity_is_measured_again_when_stale_and_alone():
    holders_seen = []
    with windows(None, ttl_s=0.0) as w:
        def probe():
            with w._state() as state:
                holders_seen.append(sorted(h["kind"] for h in state["holders"].values()))
            return 2000.0
        w.probe = probe
        with w.qos(100):
            pass
        with w.qos(100):
            pass
        assert holders_seen == [["probe"], ["probe"]]   # twice, and nobody measured beside it
        assert w.capacity() == 2000.0


def test_claims_on_one_tenant_never_overlap():
    with windows(lambda: 1e9) as w:
        order = []
        with w.qos(100, tenant="/root/Vancouver-OM"):
            with w.qos(100, tenant="/root/Vancouver-ON"):   # another tenant: at once
                order.append("other tenant beside")

            def same():
                with w.qos(100, tenant="/root/Vancouver-OM"):
                    order.append("same tenant")
            t = threading.Thread(target=same)
            t.start()
            time.sleep(0.3)   # a negative: nothing to wait for; it must not have entered
            order.append("first leaves")
        t.join(10)
        assert order == ["other tenant beside", "first leaves", "same tenant"]


def test_a_dead_holder_is_dropped():
    with windows(lambda: 1000.0) as w:
        dead = subprocess.Popen(["true"])
        dead.wait()
        with w._state() as state:
            state["holders"]["gone"] = {"pid": dead.pid, "demand": 10**6, "kind": "saturation"}
        with w.qos(100) as adm:
            assert adm.beside == 0


def test_a_shortfall_is_judged_again_against_a_capacity_measured_after_it():
    """The host slowed after the last probe: the check's shortfall is explained by a fresh
    probe (run alone, the check out of its window meanwhile), and the row shows both figures.
    A check whose host could pace more still fails: the fresh figure does not excuse it."""
    figures = iter([1000.0, 600.0, 1000.0])
    with windows(probe=lambda: next(figures), probe_limit=1000) as w:
        with w.qos(500) as share:
            assert share.reach(500) == 500
            ok, share = share.confirmed(lambda s: 290 >= 0.9 * s.reach(500))
            assert ok and share.capacity == 600 and share.reach(500) == 300
            assert share.row()["capacity measured again after a shortfall"] == 600
        assert w.capacity() == 600   # the ledger holds the fresh figure for the next checks
        with w.qos(500, tenant="/root/t") as share:
            ok, again = share.confirmed(lambda s: 200 >= 0.9 * s.reach(500))
            # the host paces 1000 now: a low figure from before stays the bound, min(600, 1000),
            # and 200 of the 300 it allows is still short
            assert not ok and again.rechecked == 1000 and again.capacity == 600
        with w.qos(500) as share:
            ok, same = share.confirmed(lambda s: True)
            assert ok and same is share and same.rechecked is None


def test_without_a_probe_a_shortfall_stands():
    with windows() as w:
        with w.qos(500) as share:
            ok, same = share.confirmed(lambda s: False)
            assert not ok and same is share


def test_judge_reach_names_each_short_check_in_one_line():
    figures = iter([1000.0, 1000.0])
    with windows(probe=lambda: next(figures), probe_limit=1000) as w:
        with w.qos(1000) as share:
            checks = [("bronze", 495.0, 500), ("silver", 700.0, 1000)]
            try:
                headroom.judge_reach(share, checks, 0.10)
            except AssertionError as e:
                message = str(e)
            else:
                raise AssertionError("a short check passed")
            assert message == ("silver: 700 IOPS, short of 900 (reach 1000 of the limit 1000, "
                               "host paced 1000 IOPS by the probe, 1000 measured again)")
            assert headroom.judge_reach(share, checks[:1], 0.10).rechecked is None


def test_a_check_judged_after_its_window_does_not_take_the_window_back():
    figures = iter([1000.0, 500.0])
    with windows(probe=lambda: next(figures), probe_limit=1000) as w:
        with w.qos(1000, tenant="/root/k") as share:
            pass
        ok, again = share.confirmed(lambda s: 450 >= 0.9 * s.reach(1000))
        assert ok and again.rechecked == 500
        with w._state() as state:
            assert state["holders"] == {}


def _in_ledger(w, key: str, kind: str, tenant: str) -> bool:
    with w._state() as state:
        return any(h["kind"] == kind and h.get("tenant") == tenant for h in state[key].values())


def test_a_tenant_lease_and_a_qos_check_of_its_tenant_never_overlap():
    """CI: tenancy measured silver (limit = the tenant cap) at 703 of 1,000 while the
    volume-features scenario's verified CHAP fio wrote in the same tenant."""
    with windows(lambda: 1e9) as w:
        order = []
        with w.tenant_io("/root/Vancouver-OP"):
            with w.tenant_io("/root/Vancouver-OP"):     # leases of one tenant overlap
                order.append("two leases")
            with w.qos(100, tenant="/root/Vancouver-ON"):   # another tenant's check: at once
                order.append("other tenant's check")

            def check():
                with w.qos(100, tenant="/root/Vancouver-OP"):
                    order.append("check")
            t = threading.Thread(target=check)
            t.start()
            wait_until(lambda: _in_ledger(w, "waiting", "qos", "/root/Vancouver-OP"), 10,
                       "the check to wait for the lease", 0.01)
            order.append("lease ends")
        t.join(10)
        assert order == ["two leases", "other tenant's check", "lease ends", "check"]
        assert not _in_ledger(w, "waiting", "qos", "/root/Vancouver-OP")


def test_a_waiting_qos_check_keeps_new_leases_of_its_tenant_out():
    """Writer preference: leases that keep coming (several scenarios of one tenant) do not
    starve the tenant's check; a lease of another tenant is not held up."""
    with windows(lambda: 1e9) as w:
        order = []
        first = w.tenant_io("/root/Vancouver-OP")
        first.__enter__()
        check_in = threading.Event()

        def check():
            with w.qos(100, tenant="/root/Vancouver-OP"):
                order.append("check")
                check_in.set()
                time.sleep(0.2)
                order.append("check ends")
        t = threading.Thread(target=check)
        t.start()
        wait_until(lambda: _in_ledger(w, "waiting", "qos", "/root/Vancouver-OP"), 10,
                   "the check to wait for the first lease", 0.01)
        with w.tenant_io("/root/Vancouver-KU"):
            order.append("other tenant's lease")

        def late_lease():
            with w.tenant_io("/root/Vancouver-OP"):
                order.append("late lease")
        late = threading.Thread(target=late_lease)
        late.start()
        time.sleep(0.3)     # a negative: nothing to wait for; the late lease must not be in
        assert "late lease" not in order
        first.__exit__(None, None, None)
        t.join(10)
        late.join(10)
        assert order == ["other tenant's lease", "check", "check ends", "late lease"]


def test_the_thread_measuring_a_tenant_takes_its_lease_at_once():
    with windows(lambda: 1e9) as w:
        with w.qos(100, tenant="/root/Vancouver-OP"):
            with w.tenant_io("/root/Vancouver-OP") as waited:
                assert waited < 5


def test_leases_are_background_load_for_the_probe_and_the_saturation_run():
    """The capacity probe and the performance piece do not wait for leases (they measure the
    host under the run's background load), nor do leases count as claimed IOPS."""
    probed = []
    with windows(lambda: probed.append(1) or 1000.0) as w:
        with w.tenant_io("/root/Vancouver-OP"):
            with w.qos(100, tenant="/root/Vancouver-ON") as adm:
                assert probed == [1] and adm.beside == 0
            with w.saturation() as waited:
                assert waited < 5


def test_a_dead_lease_or_waiting_check_is_dropped():
    with windows(lambda: 1e9) as w:
        dead = subprocess.Popen(["true"])
        dead.wait()
        with w._state() as state:
            state["holders"]["gone"] = {"pid": dead.pid, "owner": f"{dead.pid}:1", "demand": 0,
                                        "kind": "io", "tenant": "/root/Vancouver-OP"}
            state["waiting"]["gone too"] = {"pid": dead.pid, "owner": f"{dead.pid}:1",
                                            "demand": 100, "kind": "qos",
                                            "tenant": "/root/Vancouver-OP"}
        with w.qos(100, tenant="/root/Vancouver-OP"):
            pass
        with w.tenant_io("/root/Vancouver-OP") as waited:
            assert waited < 5


def test_each_window_and_lease_reports_its_wait_and_hold():
    """on_release gets (kind, tenant, seconds waited, seconds held) as each one ends: the
    report's figures of where a run's time goes."""
    seen = []
    with windows(lambda: 1e9, on_release=lambda *a: seen.append(a)) as w:
        with w.qos(100, tenant="/root/Vancouver-OP"):
            pass
        with w.tenant_io("/root/Vancouver-OP"):
            pass
        with w.saturation():
            pass
    assert [(k, t) for k, t, _, _ in seen] == [
        ("qos", "/root/Vancouver-OP"), (headroom.TENANT_IO, "/root/Vancouver-OP"),
        (headroom.SATURATION, None)]
    assert all(waited >= 0 and held >= 0 for _, _, waited, held in seen)
    assert set(headroom.KIND_NAMES) == {k for k, _, _, _ in seen}


def test_a_lease_that_waited_goes_before_the_checks_next_section():
    """A check measuring in sections hands its window back between them: the leases of its
    tenant that waited meanwhile get in first (else the next section, asking again within
    milliseconds, would always win the 50 ms poll), and the next section waits for them."""
    with windows(lambda: 1e9) as w:
        order = []
        lease_in, lease_go = threading.Event(), threading.Event()

        def lease():
            with w.tenant_io("/root/Vancouver-OP"):
                order.append("lease")
                lease_in.set()
                lease_go.wait(10)
                order.append("lease ends")
        t = threading.Thread(target=lease)
        with w.qos(100, tenant="/root/Vancouver-OP"):
            order.append("section 1")
            t.start()
            wait_until(lambda: _in_ledger(w, "waiting", TENANT_IO, "/root/Vancouver-OP"), 10,
                       "the lease to wait for the section", 0.01)
        second = waiting_claim(w, 100, tenant="/root/Vancouver-OP")
        assert lease_in.wait(10)
        lease_go.set()
        second()
        t.join(10)
        assert order == ["section 1", "lease", "lease ends"]
        assert not _in_ledger(w, "waiting", TENANT_IO, "/root/Vancouver-OP")


def test_a_check_that_measured_keeps_its_load_as_a_lease():
    """to_lease(): a server's guest fio runs on after its check has measured. Leases of the
    tenant run beside it now; a check of the tenant still waits for the window's end; other
    tenants' checks no longer count its claim; the report counts both parts."""
    seen = []
    with windows(lambda: 1e9, on_release=lambda *a: seen.append(a[:2])) as w:
        with w.qos(700, tenant="/root/Vancouver-OM") as share:
            with w.qos(100, tenant="/root/Vancouver-ON") as other:
                assert other.beside == 700
            share.to_lease()
            assert _in_ledger(w, "holders", TENANT_IO, "/root/Vancouver-OM")
            leased = []

            def lease():        # another scenario's lease of the tenant: in while it holds
                with w.tenant_io("/root/Vancouver-OM"):
                    leased.append(1)
            t = threading.Thread(target=lease)
            t.start()
            t.join(10)
            assert leased == [1]
            late = waiting_claim(w, 100, tenant="/root/Vancouver-OM")
            with w.tenant_io("/root/Vancouver-OM") as waited:   # its own thread: at once
                assert waited < 5
            with w.qos(100, tenant="/root/Vancouver-ON") as other:
                assert other.beside == 0
        late()
    assert seen[:2] == [("qos", "/root/Vancouver-ON"), ("qos", "/root/Vancouver-OM")]
    assert (TENANT_IO, "/root/Vancouver-OM") in seen[2:]


def test_a_check_waiting_for_its_tenant_holds_up_no_other_tenants_check():
    """It waits outside the turnstile: a server's guest fio kept as a lease (to_lease) may run
    for half a minute, and the checks of other tenants take their turns meanwhile."""
    with windows(lambda: 1e9) as w:
        with w.tenant_io("/root/Vancouver-OM"):
            om = waiting_claim(w, 100, tenant="/root/Vancouver-OM")
            assert not _held(w.turnstile)
            with w.qos(100, tenant="/root/Vancouver-ON") as other:
                assert other.waited_s < 5
        om()


def test_a_check_whose_probe_fails_leaves_no_place_in_its_tenants_queue():
    def probe():
        raise RuntimeError("the probe's volume was refused")
    raised = []

    def check():
        try:
            with w.qos(100, tenant="/root/Vancouver-OP"):
                pass
        except RuntimeError as e:
            raised.append(str(e))
    with windows(probe) as w:
        om = threading.Thread(target=check)
        with w.tenant_io("/root/Vancouver-OP"):
            om.start()
            wait_until(lambda: _in_ledger(w, "waiting", "qos", "/root/Vancouver-OP"), 10,
                       "the check to queue", 0.01)
        om.join(10)     # the lease ended: the check probed, and the probe raised
        assert raised == ["the probe's volume was refused"]
        assert not _in_ledger(w, "waiting", "qos", "/root/Vancouver-OP")
        w.probe = None
        with w.tenant_io("/root/Vancouver-OP") as waited:
            assert waited < 5
