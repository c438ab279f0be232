"""Scripted health probes and a running Watch for the outage machinery's unit tests
(tests/test_outage*.py): a probe whose answers are a list given up front, and the watcher's
down/up announcements collected in lists."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from fixtures.outage.probes import Probe
from fixtures.outage.watch import Down, Watch

REFUSED = ConnectionRefusedError(111, "Connection refused")


def scripted_probe(answers, platform: str = "datera", label: str = "Datera REST API",
                   endpoint: str = "https://x:7718") -> tuple[Probe, list[float]]:
    """A probe answering from `answers` in order (None: it answers; an exception: raised),
    healthy once they run out; and the list of the times (time.time()) it was asked."""
    answers, seen = iter(answers), []

    def ask():
        seen.append(time.time())
        a = next(answers, None)
        if a is not None:
            raise a
    return Probe(platform, label, endpoint, ask), seen


@dataclass
class Watched:
    watch: Watch
    downs: list[Down] = field(default_factory=list)
    ups: list[Down] = field(default_factory=list)


@contextmanager
def watching(probe: Probe, item: bool = True):
    """A Watch of `probe` collecting its announcements; with `item`, an item runs inside
    (the watcher thread asks the probe) and finishes after."""
    w = Watched(None)
    w.watch = Watch(lambda: [probe], w.downs.append, w.ups.append)
    if item:
        w.watch.item_started()
    try:
        yield w
    finally:
        w.watch.item_finished()
