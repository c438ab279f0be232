"""Durable lab state: one SQLite database per service in the run directory (issue 13 item 1).

A service's model hands the store a *snapshot*: {kind: {key: object}} of every object it would
need to come back after a restart (plain picklable objects: the models' dataclasses). The store
writes what changed since the last snapshot, in one transaction, and reads it all back on
start:

    store = Store.open(data_dir / "datera.db")      # None when VANCOUVER_LAB_STORE=off
    saved = store.load()                             # {kind: {key: object}}, {} on first start
    ...
    store.sync(model.snapshot())                     # after every state-changing request

Durability: WAL journal, synchronous=NORMAL by default. In WAL mode a commit is appended to the
-wal file with write(2) before sync() returns, so a process killed with SIGKILL right after the
API answered loses nothing (the kernel holds the page); only a power loss or kernel crash can
drop the last commits, which the lab (processes on one machine) does not simulate.
VANCOUVER_LAB_STORE_SYNC=full fsyncs the WAL on every commit (power-loss durable, slower).

Change detection pickles every object and compares the bytes with what was last written:
O(objects) per sync, which keeps the models free of dirty flags at every call site. Append-only
kinds (event logs, thousands of entries) are handed over as "new since the last sync" plus a
floor below which the old ones were dropped, so they cost nothing when unchanged.

VANCOUVER_LAB_STORE=off keeps the in-memory path (no database at all): the reference the bench
(bench/bench_lab_store.py) measures the store against.
"""
import logging
import os
import pickle
import sqlite3
from pathlib import Path

log = logging.getLogger("lab.store")

SCHEMA = """CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (kind, key))"""


def enabled() -> bool:
    """False when VANCOUVER_LAB_STORE=off (the in-memory reference path)."""
    return os.environ.get("VANCOUVER_LAB_STORE", "on").strip().lower() not in ("off", "0", "no")


class Store:
    """One service's database. Not thread-safe: call it from one thread (the service's loop),
    or under the model's own lock."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        sync = os.environ.get("VANCOUVER_LAB_STORE_SYNC", "normal").strip().upper()
        if sync not in ("NORMAL", "FULL"):
            raise ValueError(f"VANCOUVER_LAB_STORE_SYNC={sync.lower()}: expected normal or full")
        self._db.execute(f"PRAGMA synchronous={sync}")
        self._db.execute(SCHEMA)
        # kind -> key -> the body last committed
        self._written: dict[str, dict[str, bytes]] = {}
        self.writes = 0   # rows written or deleted since open (tests, bench)

    @classmethod
    def open(cls, path: Path) -> "Store | None":
        return cls(path) if enabled() else None

    def load(self) -> dict[str, dict[str, object]]:
        """Every saved object, {kind: {key: object}}, each kind in the order its objects were
        first written (an update keeps an object's place)."""
        out: dict[str, dict[str, object]] = {}
        for kind, key, body in self._db.execute("SELECT kind, key, body FROM objects ORDER BY rowid"):
            out.setdefault(kind, {})[key] = pickle.loads(body)
            self._written.setdefault(kind, {})[key] = body
        return out

    def sync(self, snapshot: dict[str, dict[str, object]],
             appended: dict[str, tuple[dict[str, object], str]] | None = None) -> int:
        """Writes what changed since the last sync (or load) in one transaction; returns the
        number of rows written. Kinds absent from `snapshot` are left as they are.

        appended: append-only kinds (event logs), {kind: (new objects by key, floor)}: the new
        objects are written as they are, every saved key below `floor` (keys compare as
        strings: zero-pad numbers) is deleted; the rest is not looked at again."""
        puts, dels = [], []
        for kind, objects in snapshot.items():
            mem = self._written.get(kind, {})
            for key, obj in objects.items():
                body = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
                if mem.get(key) != body:
                    puts.append((kind, key, body))
            dels += [(kind, key) for key in mem if key not in objects]
        floors = []
        for kind, (objects, floor) in (appended or {}).items():
            puts += [(kind, key, pickle.dumps(obj, pickle.HIGHEST_PROTOCOL))
                     for key, obj in objects.items()]
            if floor:
                floors.append((kind, floor))
        if not puts and not dels and not floors:
            return 0
        with self._db:   # one transaction: BEGIN ... COMMIT (ROLLBACK on an error)
            self._db.execute("BEGIN")
            if dels:
                self._db.executemany("DELETE FROM objects WHERE kind = ? AND key = ?", dels)
            if floors:
                self._db.executemany("DELETE FROM objects WHERE kind = ? AND key < ?", floors)
            if puts:
                # An upsert keeps the row (and its rowid: the load order) of an updated object.
                self._db.executemany(
                    "INSERT INTO objects (kind, key, body) VALUES (?, ?, ?) "
                    "ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body", puts)
        appended = appended or {}
        for kind, key in dels:   # only once committed: a failed sync is retried in full
            del self._written[kind][key]
        for kind, key, body in puts:
            if kind not in appended:
                self._written.setdefault(kind, {})[key] = body
        for kind in appended:
            self._written.pop(kind, None)
        self.writes += len(puts) + len(dels)
        return len(puts) + len(dels)

    def close(self) -> None:
        self._db.close()
