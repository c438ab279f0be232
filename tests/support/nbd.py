"""The lab's data plane in the test's own process, and a raw NBD client to see exactly what it
says (fixtures `inproc` and `raw_nbd`, imported by the data-plane test modules).

The DataPlane runs on a uvloop loop thread of its own, as the lab process runs it, on spare
lab addresses (<net>.70.<2 worker + 1, + 2>), with `AclTestDouble` standing in for the model's
LoginAuthority (the real ACL and CHAP checks are the model's; the end-to-end tests drive them).
"""
import asyncio
import os
import socket
import struct
import threading
import uuid
from dataclasses import dataclass, field

import pytest
import uvloop

from clients.initiator import login
from lab import topology
from lab.datera import nbd_proto as dpm
from lab.datera.contract import ChapRequired, LoginRefused, VolumeHandle
from lab.datera.dataplane import DataPlane
from lab.datera.metrics import Metrics

GiB = 1 << 30


class AclTestDouble:
    """Test double of contract.LoginAuthority: targets with an ACL, optional CHAP, volumes."""

    @dataclass
    class Target:
        volumes: list
        acl: set
        chap: tuple | None = None   # (user, secret)

    def __init__(self):
        self.targets: dict[str, AclTestDouble.Target] = {}

    def login(self, *, initiator, target, portal, chap_user, chap_response_check):
        t = self.targets.get(target)
        if t is None:
            raise LoginRefused(f"unknown target {target}")
        if initiator not in t.acl:
            raise LoginRefused(f"initiator {initiator} is not in the ACL of {target}")
        if t.chap:
            if not chap_user:
                raise ChapRequired(f"target {target} requires CHAP")
            if chap_user != t.chap[0] or not chap_response_check(t.chap[1]):
                raise LoginRefused(f"CHAP authentication failed for {initiator}")
        return list(t.volumes)

    def may_access(self, *, initiator, vol_uuid):
        return any(initiator in t.acl and any(v.uuid == vol_uuid for v in t.volumes)
                   for t in self.targets.values())


class LoopThread:
    """A uvloop loop on a thread, as the lab process runs the data plane."""

    def __init__(self):
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args):
        async def call():
            return fn(*args)
        return self.run(call())

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class InProc:
    dp: DataPlane
    auth: AclTestDouble
    metrics: Metrics
    lt: LoopThread
    vips: list
    tmp: object
    made: list = field(default_factory=list)

    def add_target(self, *, luns: int = 1, size: int = GiB, acl=("iqn.test:host1",),
                   chap=None, tenant="/root/T1") -> tuple[str, list[VolumeHandle]]:
        iqn = f"iqn.2013-05.com.daterainc:tc:01:sn:{uuid.uuid4().hex[:16]}"
        ai = str(uuid.uuid4())
        vols = [VolumeHandle(str(uuid.uuid4()), tenant, ai, size) for _ in range(luns)]
        for v in vols:
            self.lt.call(self.dp.volume_created, v)
        self.auth.targets[iqn] = AclTestDouble.Target(vols, set(acl), chap)
        return iqn, vols

    def login(self, target: str, initiator: str = "iqn.test:host1", vip: int = 0, **chap):
        return login(self.vips[vip], self.dp.login_port, initiator, target, **chap)


@pytest.fixture
def inproc(tmp_path):
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    vips = [f"{topology.NET}.70.{2 * worker + 1}", f"{topology.NET}.70.{2 * worker + 2}"]
    lt = LoopThread()
    metrics = Metrics()
    dp = DataPlane(data_dir=tmp_path / "data", metrics=metrics, vips=vips, nbd_port=0, login_port=0)
    auth = AclTestDouble()
    dp.bind(auth)
    lt.run(dp.start())
    try:
        yield InProc(dp, auth, metrics, lt, vips, tmp_path)
    finally:
        lt.run(dp.stop())
        lt.close()


class RawNbd:
    """A minimal blocking NBD client, to see exactly what the server says."""

    def __init__(self, host: str, port: int, no_zeroes: bool = True):
        self.sock = socket.create_connection((host, port), timeout=5)
        magic, opt, flags = struct.unpack(">QQH", self.recv(18))
        assert (magic, opt) == (dpm.NBDMAGIC, dpm.IHAVEOPT)
        assert flags == dpm.FLAG_FIXED_NEWSTYLE | dpm.FLAG_NO_ZEROES
        self.sock.sendall(struct.pack(">I", 1 | (2 if no_zeroes else 0)))

    def recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError(f"server closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def option(self, opt: int, data: bytes = b"") -> list[tuple[int, bytes]]:
        """Sends an option; returns its replies up to the final one (ACK or an error)."""
        self.sock.sendall(struct.pack(">QII", dpm.IHAVEOPT, opt, len(data)) + data)
        replies = []
        while True:
            magic, ropt, rtype, length = struct.unpack(">QIII", self.recv(20))
            assert magic == dpm.REPLY_MAGIC and ropt == opt
            replies.append((rtype, self.recv(length)))
            if rtype not in (dpm.REP_INFO, dpm.REP_META_CONTEXT):
                return replies

    def meta_context(self, opt: int, export: str, *queries: str) -> list[tuple[int, bytes]]:
        """LIST or SET_META_CONTEXT; replies as option() gives them."""
        data = struct.pack(">I", len(export.encode())) + export.encode()
        data += struct.pack(">I", len(queries))
        for q in queries:
            data += struct.pack(">I", len(q.encode())) + q.encode()
        return self.option(opt, data)

    def chunks(self) -> list[tuple[int, int, int, bytes]]:
        """One structured reply: its chunks as (flags, type, cookie, payload), up to DONE."""
        out = []
        while True:
            magic, flags, rtype, cookie, length = struct.unpack(">IHHQI", self.recv(20))
            assert magic == dpm.STRUCTURED_REPLY_MAGIC, hex(magic)
            out.append((flags, rtype, cookie, self.recv(length)))
            if flags & dpm.REPLY_FLAG_DONE:
                return out

    def go(self, name: str, opt: int = dpm.OPT_GO) -> list[tuple[int, bytes]]:
        n = name.encode()
        return self.option(opt, struct.pack(">I", len(n)) + n + struct.pack(">H", 0))

    def send(self, cmd: int, handle: int, offset: int = 0, length: int = 0, data: bytes = b"",
             flags: int = 0):
        self.sock.sendall(self.request(cmd, handle, offset, length, data, flags))

    @staticmethod
    def request(cmd, handle, offset=0, length=0, data=b"", flags=0) -> bytes:
        return struct.pack(">IHHQQI", dpm.REQUEST_MAGIC, flags, cmd, handle, offset, length) + data

    def reply(self, data_len: int = 0) -> tuple[int, int, bytes]:
        magic, err, handle = struct.unpack(">IIQ", self.recv(16))
        assert magic == dpm.SIMPLE_REPLY_MAGIC
        return err, handle, (self.recv(data_len) if data_len and not err else b"")

    def at_eof(self, timeout: float = 5) -> bool:
        """True when the server closed cleanly (end of file, no reset)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return False
        finally:
            self.sock.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def raw_nbd():
    """raw_nbd(host, port, ...) -> RawNbd, closed after the test."""
    made = []

    def make(*args, **kw) -> RawNbd:
        made.append(RawNbd(*args, **kw))
        return made[-1]
    yield make
    for c in made:
        c.close()
