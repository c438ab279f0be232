"""Scripted health probes and a running Watch for the outage machinery's unit tests
(tests/test_outage*.py): a probe whose answers are a list given up front, and the watcher's
down/up announcements collected in lists."""
from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from fixtures.outage.probes import Probe
from fixtures.outage.watch import Down, Watch

REFUSED = ConnectionRefusedError(111, "Connection refused")


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused_request() -> requests.ConnectionError:
    """A real "connection refused" of requests, as dfs_sdk's transport raises it."""
    try:
        requests.get(f"http://127.0.0.1:{closed_port()}/v2.2/system", timeout=2)
    except requests.ConnectionError as e:
        return e
    raise AssertionError("a closed port answered")


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
