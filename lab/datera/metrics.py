"""I/O metrics of the Datera lab: per-second time series per volume, app instance, tenant and
system, as the REST API's `/metrics/io/<metric>` serves them.

The data plane feeds one `VolumeIO` accumulator per volume on every operation (a few attribute
increments and one list append); once a second `roll()` turns the accumulators into one point
per scope and clears them. History is a ring of per-second buckets per scope, so nothing is
ever reset and memory is bounded: an idle scope costs nothing per second, because a bucket
whose stored second does not match the asked second reads as zero.

Units and meanings, per one-second interval:
- reads, writes: operations completed in the interval (so equal to iops_read, iops_write);
  as the array counts SCSI commands, NBD WRITE_ZEROES and TRIM (WRITE SAME/UNMAP) are write
  ops and BLOCK_STATUS (GET LBA STATUS) a read op, all three without bytes
  (lab/datera/nbd_connection.py);
- bytes_read, bytes_written: bytes moved in the interval;
- iops_read, iops_write: operations per second; thpt_read, thpt_write: bytes per second;
- lat_*: microseconds from request received to reply sent (QoS waiting included):
  mean (lat_avg_*), 50th and 90th percentile (nearest rank) and maximum (lat_100_*);
  0 when there was no I/O of that direction.

Scopes (contract.Scope): 'volume' (uuid), 'app_instance' (id), 'tenant' (path; a tenant's
figures include its sub-tenants, so '/root' sums every tenant) and 'system' (key '').
Tenant and app instance history outlives the volumes that made it; a deleted volume's own
history is dropped.
"""
import asyncio
import math
import time

from lab.datera.contract import Scope, VolumeHandle

IO_METRICS = ("reads", "writes", "bytes_read", "bytes_written", "iops_read", "iops_write",
              "thpt_read", "thpt_write", "lat_avg_read", "lat_avg_write",
              "lat_50_read", "lat_90_read", "lat_100_read",
              "lat_50_write", "lat_90_write", "lat_100_write")
_INDEX = {name: i for i, name in enumerate(IO_METRICS)}
_ZEROS = (0.0,) * len(IO_METRICS)
SYSTEM = Scope("system", "")
HISTORY_SECONDS = 1200  # 20 minutes: the API promises at least 15


class VolumeIO:
    """One volume's counters for the current second; the data plane increments them inline."""
    __slots__ = ("reads", "writes", "bytes_read", "bytes_written", "lat_read", "lat_write",
                 "scopes", "removed")

    def __init__(self, scopes: tuple):
        self.scopes = scopes  # every scope this volume's I/O counts in, itself first
        self.removed = False
        self._clear()

    def _clear(self):
        self.reads = self.writes = self.bytes_read = self.bytes_written = 0
        self.lat_read = []   # microseconds, one per completed op
        self.lat_write = []

    def read(self, nbytes: int, latency_us: float):
        self.reads += 1
        self.bytes_read += nbytes
        self.lat_read.append(latency_us)

    def write(self, nbytes: int, latency_us: float):
        self.writes += 1
        self.bytes_written += nbytes
        self.lat_write.append(latency_us)


def _tenant_scopes(path: str) -> list:
    parts = [p for p in path.split("/") if p]
    return [Scope("tenant", "/" + "/".join(parts[:i])) for i in range(len(parts), 0, -1)]


def _latency(sorted_us: list) -> tuple:
    n = len(sorted_us)
    if not n:
        return 0.0, 0.0, 0.0, 0.0
    rank = lambda p: sorted_us[max(0, math.ceil(p * n) - 1)]
    return float(sum(sorted_us) / n), float(rank(0.5)), float(rank(0.9)), float(sorted_us[-1])


class Metrics:
    """Per-second I/O history. `series` and `latest` are what the REST handlers read."""

    def __init__(self, history_seconds: int = HISTORY_SECONDS, clock=time.time):
        self._n = history_seconds
        self._clock = clock
        self._volumes: dict[str, VolumeIO] = {}
        self._rings: dict[Scope, list] = {SYSTEM: [None] * self._n}
        self._last_rolled = int(clock()) - 1

    # ---- fed by the data plane -------------------------------------------------------------
    def add_volume(self, vol: VolumeHandle) -> VolumeIO:
        """Registers a volume (idempotent) and returns the accumulator its I/O feeds."""
        acc = self._volumes.get(vol.uuid)
        if acc is None:
            scopes = (Scope("volume", vol.uuid), Scope("app_instance", vol.app_instance),
                      *_tenant_scopes(vol.tenant), SYSTEM)
            acc = self._volumes[vol.uuid] = VolumeIO(scopes)
            for s in scopes:
                self._rings.setdefault(s, [None] * self._n)
        return acc

    def remove_volume(self, uuid: str):
        """The volume's last counts still reach its tenant and app instance at the next roll."""
        acc = self._volumes.get(uuid)
        if acc is not None:
            acc.removed = True

    def roll(self, second: int | None = None):
        """Turns the counters of the interval just ended into one point per scope."""
        t = int(self._clock()) - 1 if second is None else second
        slot = t % self._n
        groups: dict[Scope, list] = {}
        removed = []
        for uuid, acc in self._volumes.items():
            if acc.reads or acc.writes:
                acc.lat_read.sort()
                acc.lat_write.sort()
                for s in acc.scopes:
                    groups.setdefault(s, []).append(acc)
            if acc.removed:
                removed.append(uuid)
        for scope, accs in groups.items():
            self._rings[scope][slot] = (t, self._point(accs))
        for acc in {id(a): a for accs in groups.values() for a in accs}.values():
            acc._clear()
        for uuid in removed:
            del self._volumes[uuid]
            self._rings.pop(Scope("volume", uuid), None)
        self._last_rolled = max(self._last_rolled, t)

    @staticmethod
    def _point(accs: list) -> tuple:
        reads = sum(a.reads for a in accs)
        writes = sum(a.writes for a in accs)
        br = sum(a.bytes_read for a in accs)
        bw = sum(a.bytes_written for a in accs)
        if len(accs) == 1:
            lr, lw = accs[0].lat_read, accs[0].lat_write
        else:  # Timsort merges the already-sorted runs cheaply
            lr = sorted(x for a in accs for x in a.lat_read)
            lw = sorted(x for a in accs for x in a.lat_write)
        ravg, r50, r90, r100 = _latency(lr)
        wavg, w50, w90, w100 = _latency(lw)
        return (float(reads), float(writes), float(br), float(bw), float(reads), float(writes),
                float(br), float(bw), ravg, wavg, r50, r90, r100, w50, w90, w100)

    async def run(self):
        """Rolls up just after every wall-clock second until cancelled."""
        while True:
            now = self._clock()
            await asyncio.sleep(math.floor(now) + 1.002 - now)
            if int(self._clock()) - 1 > self._last_rolled:   # a timer may fire a little early
                self.roll()

    # ---- read by the REST layer ------------------------------------------------------------
    def knows(self, scope: Scope) -> bool:
        return scope in self._rings

    def series(self, metric: str, scope: Scope, since: float | None = None,
               until: float | None = None) -> list[dict]:
        """One point per completed second in [since, until] (default: all kept history);
        seconds without I/O read 0. An unknown scope gives an empty list."""
        i = self._metric_index(metric)
        ring = self._rings.get(scope)
        if ring is None:
            return []
        last = self._last_rolled if until is None else min(int(until), self._last_rolled)
        first = last - self._n + 1
        if since is not None:
            first = max(first, math.ceil(since))
        out = []
        for t in range(first, last + 1):
            entry = ring[t % self._n]
            value = entry[1][i] if entry is not None and entry[0] == t else 0.0
            out.append({"time": t, "value": value})
        return out

    def latest(self, metric: str, scope: Scope) -> dict | None:
        """The last completed second, or None for a scope that never existed."""
        i = self._metric_index(metric)
        ring = self._rings.get(scope)
        if ring is None:
            return None
        t = self._last_rolled
        entry = ring[t % self._n]
        return {"time": t, "value": entry[1][i] if entry is not None and entry[0] == t else 0.0}

    @staticmethod
    def _metric_index(metric: str) -> int:
        try:
            return _INDEX[metric]
        except KeyError:
            raise ValueError(f"unknown io metric {metric!r}; expected one of "
                             f"{', '.join(IO_METRICS)}") from None
