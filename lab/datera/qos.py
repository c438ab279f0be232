"""Token buckets for the Datera lab's QoS: a volume's performance_policy and the lab's tenant cap.

Each bucket is a GCRA reservation (reference pytest-fio §2.8): an operation reserves the slot
`max(next, now - burst)` and moves `next` on by its cost (1/rate for an IOPS bucket,
bytes/rate for a bandwidth bucket). The operation's I/O happens at once; only its reply waits
until the latest slot over every bucket that applies (the volume's and its tenants'), which is
what the initiator sees as the limit. A little burst credit lets the pace survive the event
loop's millisecond timer resolution without exceeding the limit over any second.

Every NBD command that does work on the volume is an op here: WRITE_ZEROES and TRIM reserve
in the write buckets, BLOCK_STATUS in the read buckets, with 0 bytes (no payload), so they
count against IOPS limits and never against bandwidth (lab/datera/nbd_connection.py).

A policy change replaces the rates in place, so open connections feed the new pace at once;
`next` is kept, so at most the replies already queued keep the old pace.
"""
import heapq
import itertools
import logging
import time

from lab.datera.contract import POLICY_FIELDS

# Credit an idle bucket keeps, in seconds: a few timer ticks, never a visible burst.
BURST_SECONDS = 0.010

_READ, _WRITE, _TOTAL = "read", "write", "total"
log = logging.getLogger("lab.datera.qos")


class Bucket:
    """One GCRA limiter: `per_op` seconds per operation plus `per_byte` seconds per byte."""
    __slots__ = ("per_op", "per_byte", "burst", "next")

    def __init__(self, per_op: float, per_byte: float, now: float):
        self.per_op, self.per_byte = per_op, per_byte
        self.burst = BURST_SECONDS
        self.next = now

    def reserve(self, now: float, nbytes: int) -> float:
        slot = self.next
        if slot < now - self.burst:
            slot = now - self.burst
        self.next = slot + self.per_op + self.per_byte * nbytes
        return slot


def validate_policy(policy: dict) -> dict:
    """Keeps the six policy fields as non-negative ints (missing = 0 = unlimited)."""
    out = {}
    for name in POLICY_FIELDS:
        value = (policy or {}).get(name) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"performance policy {name}: expected a non-negative integer")
        out[name] = value
    unknown = set(policy or {}) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"performance policy: unknown field {sorted(unknown)[0]!r}")
    return out


class Limiter:
    """The buckets of one policy (a volume's, or a tenant's cap over all its volumes)."""

    def __init__(self, name: str):
        self.name = name
        self.policy = validate_policy({})
        self._buckets: dict[str, Bucket] = {}
        self.read_buckets: tuple = ()
        self.write_buckets: tuple = ()

    @property
    def active(self) -> bool:
        return bool(self._buckets)

    def set_policy(self, policy: dict, now: float | None = None):
        now = time.monotonic() if now is None else now
        self.policy = validate_policy(policy)
        buckets = {}
        for direction in (_TOTAL, _READ, _WRITE):
            for kind in ("iops", "bandwidth"):
                rate = self.policy[f"{direction}_{kind}_max"]
                if not rate:
                    continue
                per_op, per_byte = (1.0 / rate, 0.0) if kind == "iops" else (0.0, 1.0 / (rate * 1024))
                key = f"{direction}_{kind}"
                b = self._buckets.get(key)
                if b is None:
                    b = Bucket(per_op, per_byte, now)
                else:  # keep `next`: only replies already queued keep the old pace
                    b.per_op, b.per_byte = per_op, per_byte
                buckets[key] = b
        self._buckets = buckets
        pick = lambda *names: tuple(buckets[n] for n in names if n in buckets)
        self.read_buckets = pick("total_iops", "total_bandwidth", "read_iops", "read_bandwidth")
        self.write_buckets = pick("total_iops", "total_bandwidth", "write_iops", "write_bandwidth")

    def reserve(self, now: float, is_write: bool, nbytes: int) -> float:
        """The earliest time this operation's reply may leave, by this limiter."""
        release = 0.0
        for b in (self.write_buckets if is_write else self.read_buckets):
            slot = b.reserve(now, nbytes)
            if slot > release:
                release = slot
        return release


def release_time(limiters: tuple, now: float, is_write: bool, nbytes: int) -> float:
    """The latest slot over every limiter that applies (all of them reserve)."""
    release = 0.0
    for lim in limiters:
        t = lim.reserve(now, is_write, nbytes)
        if t > release:
            release = t
    return release


class Pacer:
    """Holds replies until their release time; one timer for all connections.

    `hold(when, sink, item)` queues an item; at `when`, every due item is handed to its sink in
    one `sink.release(items, now)` call per sink, so a connection writes its due replies with
    one transport write."""

    # A reply may leave this early, so one timer wake-up and one write per connection carry
    # every reply due within the next 2 ms: with 0.5 ms, a reply paced at 1,000 IOPS cost
    # 104 us of data plane + 88 us of fio CPU (a wake-up and a write each); with 2 ms, 72 +
    # 27 us (bench/bench_booth_load.py, loaded machine, so indicative); unthrottled 19 + 11.
    # The buckets' `next` still spaces the long-run rate exactly; over any second a limit
    # gains at most 2 ms of its rate (4 ops at 2,000 IOPS).
    EARLY = 0.002

    def __init__(self, loop):
        self._loop = loop
        self._heap: list = []
        self._seq = itertools.count()
        self._timer = None
        self._timer_at = None

    def __len__(self):
        return len(self._heap)

    def hold(self, when: float, sink, item):
        heapq.heappush(self._heap, (when, next(self._seq), sink, item))
        if self._timer_at is None or when < self._timer_at:
            self._arm(when)

    def _arm(self, when: float):
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_later(max(0.0, when - time.monotonic()), self._fire)

    def _fire(self):
        self._timer = self._timer_at = None
        now = time.monotonic()
        due: dict = {}
        heap = self._heap
        while heap and heap[0][0] <= now + self.EARLY:
            _, _, sink, item = heapq.heappop(heap)
            due.setdefault(sink, []).append(item)
        for sink, items in due.items():
            try:
                sink.release(items, now)
            except Exception:   # one broken connection must not stall every other one's pace
                log.exception("releasing held replies failed")
        if self._heap:
            self._arm(self._heap[0][0])

    def take(self, sink) -> list:
        """Removes and returns every item held for `sink` (a connection closing cleanly)."""
        mine = [e for e in self._heap if e[2] is sink]
        if mine:
            self._heap = [e for e in self._heap if e[2] is not sink]
            heapq.heapify(self._heap)
        return [e[3] for e in sorted(mine)]

    def close(self):
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None
        self._heap.clear()
