"""fixtures/endless/: the xdist scheduler (EndlessScheduling) and the Pacer, driven in process by
an event-driven simulation of nodes and a fake clock: exclusive items, no stall, every node
busy, round-robin over scenario keys before any key twice, pacing by interval; and
--duration's parsing. No inner pytest run: these run in the shared phase.
"""
from __future__ import annotations

import random
from collections import Counter

import pytest

from fixtures.endless import EndlessScheduling, Pacer, parse_duration


# --------------------------------------------------------------------------- scheduler simulation

class FakeNode:
    def __init__(self, name: str, speed: float):
        self.gateway = type("GW", (), {"id": name})()
        self.speed = speed
        self.shutting_down = False
        self.queue: list[int] = []

    def send_runtest_some(self, indices):
        self.queue.extend(indices)


class FakeStopper:
    level = 0


@pytest.mark.parametrize("n_items,n_nodes", [(1, 1), (1, 3), (2, 2), (3, 3), (5, 5), (6, 5), (6, 3), (10, 5), (7, 3), (20, 5),
                                             (12, 4)])
def test_scheduler_simulation(tmp_path, n_items, n_nodes):
    """Event-driven simulation with one slow node: no stall, exclusive, every node busy when
    there are at least as many items as nodes, back to back only when nothing else is free."""
    rng = random.Random(n_items * 100 + n_nodes)
    sched = EndlessScheduling(None, None, FakeStopper(), numnodes=n_nodes)
    nodes = [FakeNode(f"gw{i}", 20.0 if i == 0 else 1.0) for i in range(n_nodes)]
    collection = [f"t::{i}" for i in range(n_items)]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, collection)
    sched.schedule()
    now, busy_until, runs = 0.0, {}, Counter()
    last_run_on = {}
    for _ in range(3000):
        # A node runs its head only once it also has a next index (xdist's worker loop).
        for node in nodes:
            if node not in busy_until and len(node.queue) >= 2:
                head = node.queue[0]
                if n_items > 2 * n_nodes:  # spare items: never the same one back to back
                    assert last_run_on.get(node) != head, "same index back to back"
                running_elsewhere = [o for o in nodes if o is not node and o in busy_until
                                     and o.queue and o.queue[0] == head]
                assert not running_elsewhere, "index running twice"
                busy_until[node] = now + node.speed * rng.uniform(0.5, 1.5)
        queued = Counter(i for node in nodes for i in set(node.queue))
        if n_items > 1:
            assert max(queued.values(), default=0) <= 1, "index queued on two nodes"
        if not busy_until:
            pytest.fail(f"stall: queues {[n.queue for n in nodes]}")
        if n_items >= n_nodes and sum(runs.values()) > 4 * n_nodes:
            assert len(busy_until) == n_nodes, f"idle node: queues {[n.queue for n in nodes]}"
        node = min(busy_until, key=busy_until.get)
        now = busy_until.pop(node)
        done = node.queue.pop(0)
        last_run_on[node] = done
        runs[done] += 1
        sched.mark_test_complete(node, done)
    if n_items > 2 * n_nodes:  # P15: at exactly 2 per node each node keeps its own pair
        counts = [runs[i] for i in range(n_items)]
        # Few spare items leave the scheduler little choice; with more it evens out tightly.
        slack = max(counts) // (10 if n_items >= 3 * n_nodes else 4)
        assert max(counts) - min(counts) <= max(3, slack), counts


# The demo's collection (pytest --collect-only scenarios/): 8 keys, 1 to 5 items each.
DEMO_COLLECTION = [
    "scenarios/kubernetes/test_kubernetes.py::test_kubernetes",
    *[f"scenarios/openstack/test_{k}.py::test_{k}[{c}]"
      for k in ("ceph_migration", "image_rotation", "server_lifecycle", "volume_features")
      for c in ("mitaka", "newton", "pike")],
    "scenarios/test_performance.py::test_performance",
    *[f"scenarios/test_tenancy.py::test_tenancy[Vancouver-{t}]"
      for t in ("OM", "ON", "OP", "KU", "VM")],
    "scenarios/vmware/test_vmware.py::test_vmware",
]


@pytest.mark.parametrize("n_nodes", [2, 3, 5])
def test_first_round_starts_every_scenario_key_before_any_key_twice(n_nodes):
    """A short demo must reach every scenario: starts go round-robin over the keys (modules),
    then over their tenants, so the first 8 starts are the 8 keys and every item starts once
    before any item starts twice. Iterations of one length here (each node a little slower
    than the one before): with iterations of different lengths, a node's next item is
    committed before its current one ends, which is as far as the workers allow."""
    sched = EndlessScheduling(None, None, FakeStopper(), numnodes=n_nodes)
    nodes = [FakeNode(f"gw{i}", 1.0 + 0.01 * i) for i in range(n_nodes)]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, DEMO_COLLECTION)
    sched.schedule()
    now, busy_until, order = 0.0, {}, []
    while len(order) < 3 * len(DEMO_COLLECTION):
        for node in nodes:
            if node not in busy_until and len(node.queue) >= 2:
                order.append(node.queue[0])
                busy_until[node] = now + node.speed
        node = min(busy_until, key=busy_until.get)
        now = busy_until.pop(node)
        sched.mark_test_complete(node, node.queue.pop(0))
    keys = [DEMO_COLLECTION[i].split("::")[0] for i in order]
    assert len(set(keys[:8])) == 8, keys[:8]
    first_repeat = next(n for n, i in enumerate(order) if i in order[:n])
    assert sorted(order[:first_repeat]) == list(range(len(DEMO_COLLECTION))), order


# --------------------------------------------------------------------------- the Pacer

class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_pacer_hands_out_round_robin_over_keys_then_their_items():
    keys = ["a", "a", "a", "b", "c", "c"]
    pacer = Pacer([0.0] * 6, clock=Clock(), keys=keys)
    got = []
    for _ in range(6):
        i = pacer.order(range(6))[0]
        pacer.handed_out(i)
        got.append(i)
    assert [keys[i] for i in got] == ["a", "b", "c", "a", "c", "a"]
    assert sorted(got) == list(range(6))


def test_pacer_decides_when_an_item_may_start():
    clock = Clock()
    pacer = Pacer([0.0, 10.0, 0.0], clock=clock)
    assert all(pacer.due(i) for i in range(3))           # never started: due at once
    assert pacer.handed_out(1) == 1                       # queued, round 1: not started yet
    assert pacer.due(1)
    pacer.started(1, clock.t)                             # its node starts it
    assert not pacer.due(1) and pacer.wait_s(1) == 10.0
    pacer.started(1, clock.t + 2)                         # its setup report: the real start
    clock.t += 11
    assert pacer.wait_s(1) == pytest.approx(1.0)
    pacer.started(1, clock.t - 100)                       # an older report never moves it back
    assert pacer.wait_s(1) == pytest.approx(1.0)
    assert pacer.next_due_at([1]) == pytest.approx(1012.0)
    clock.t += 1
    assert pacer.due(1)
    assert pacer.start_now(0) == 1 and pacer.due(0)       # unpaced: always due


def test_pacer_order_due_first_then_fairness():
    clock = Clock()
    pacer = Pacer([5.0, 0.0, 0.0, 0.0], clock=clock)
    pacer.start_now(0)
    pacer.start_now(1)
    # 0 is not due; among due ones: not the node's own last item, then least handed out.
    assert pacer.order(range(4), avoid=2) == [3, 1, 2, 0]
    clock.t += 5
    assert pacer.order(range(4))[:2] == [2, 3]            # 0 and 1 were handed out once
    assert pacer.round == 0
    pacer.start_now(2)
    pacer.start_now(3)
    assert pacer.round == 1


def test_pacer_wait_turn_stops_early():
    clock = Clock()
    pacer = Pacer([60.0], clock=clock)
    pacer.start_now(0)
    slept = []
    assert pacer.wait_turn(0, should_stop=lambda: len(slept) >= 3, sleep=slept.append) is False
    assert slept == [0.1, 0.1, 0.1]

    def advance(s):
        clock.t += 30
    assert pacer.wait_turn(0, should_stop=lambda: False, sleep=advance) is True


def test_scheduler_starts_paced_items_only_when_due():
    """The scheduler asks the Pacer. A worker starts its head when it receives the next index,
    so a node gets an index only when its head is due: a copy queued behind itself waits its
    interval, a wake-up is requested for then, and the waiting node is served at that time."""
    clock = Clock()
    wakes = []
    sched = EndlessScheduling(None, None, FakeStopper(), numnodes=1,
                              intervals_of=lambda ids: [10.0], wake_at=wakes.append)
    node = FakeNode("gw0", 1.0)
    sched.add_node(node)
    sched.add_node_collection(node, ["scenarios/test_p.py::t"])
    sched.schedule()
    sched.pacer.clock = clock
    sched.pacer.last_start[0] = clock.t       # the first copy starts now
    assert node.queue == [0, 0]               # alone: the first run is not delayed
    node.queue.pop(0)
    sched.mark_test_complete(node, 0)         # the copy is now the head: not due yet
    assert node.queue == [0] and wakes == [pytest.approx(clock.t + 10)]
    clock.t += 5
    sched.wake()
    assert node.queue == [0]
    clock.t += 5
    sched.wake()                              # due: the next index lets the copy start
    assert node.queue == [0, 0] and sched.pacer.last_start[0] == clock.t


def test_parse_duration():
    assert parse_duration("30s") == 30
    assert parse_duration("10m") == 600
    assert parse_duration("2h") == 7200
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90
    for bad in ("", "0s", "-5s", "10x", "m", "5m5m", "ten"):
        with pytest.raises(pytest.UsageError, match="--duration"):
            parse_duration(bad)
