"""Fuzzing the lab's NBD server and initiator login (tests/test_fuzz_nbd.py, bench/bench_fuzz.py).

Each example is one hostile session on a fresh connection: a handshake or option phase, a
transmission phase, or a login exchange, made of steps drawn here. `play` sends the steps
and checks each answer against what the protocol says (doc/proto.md of NetworkBlockDevice/nbd;
lab/datera/login.py's docstring), including "the server closes" where the spec says so; an
abrupt disconnect may end any session in the middle of a request. `Neighbour` is another
client of the same export doing 4 KiB reads all along: its latencies are what a fuzzer costs
everyone else.
"""
import json
import socket
import statistics
import struct
import threading
import time
from dataclasses import dataclass, field

from hypothesis import strategies as st

from lab.datera import nbd_proto as P
from tests.support.nbd import RawNbd

SIZE = 64 << 20
KNOWN_OPTS = (P.OPT_EXPORT_NAME, P.OPT_ABORT, P.OPT_INFO, P.OPT_GO, P.OPT_STRUCTURED_REPLY,
              P.OPT_LIST_META_CONTEXT, P.OPT_SET_META_CONTEXT)
KNOWN_CMDS = (P.CMD_READ, P.CMD_WRITE, P.CMD_DISC, P.CMD_FLUSH, P.CMD_TRIM,
              P.CMD_WRITE_ZEROES, P.CMD_BLOCK_STATUS)
NBD_ERRORS = {P.EPERM, P.EIO, P.EINVAL, P.ENOSPC, P.EOVERFLOW, P.ENOTSUP}
# The flags each command takes (proto.md "Request message"); any other bit is EINVAL.
CMD_FLAGS = {P.CMD_READ: P.CMD_FLAG_FUA | P.CMD_FLAG_DF, P.CMD_WRITE: P.CMD_FLAG_FUA,
             P.CMD_FLUSH: P.CMD_FLAG_FUA, P.CMD_TRIM: P.CMD_FLAG_FUA,
             P.CMD_WRITE_ZEROES: P.CMD_FLAG_FUA | P.CMD_FLAG_NO_HOLE | P.CMD_FLAG_FAST_ZERO,
             P.CMD_BLOCK_STATUS: P.CMD_FLAG_FUA | P.CMD_FLAG_REQ_ONE}


class Closed(Exception):
    """The server closed the connection (end of file or reset)."""


def recv(sock, n: int) -> bytes:
    out = b""
    while len(out) < n:
        try:
            chunk = sock.recv(n - len(out))
        except ConnectionResetError:
            raise Closed("reset") from None
        if not chunk:
            raise Closed(f"end of file after {len(out)} of {n} bytes")
        out += chunk
    return out


def closed_soon(sock, timeout: float = 10) -> bool:
    """True when the server closes the connection (it may first send what is pending)."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# ---- strategies ------------------------------------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, SIZE - 1, SIZE, SIZE + 1,
                                                            2**63, 2**64 - 1]))
lengths = st.one_of(st.integers(0, 1 << 16), st.sampled_from(
    [0, 1, SIZE, SIZE + 1, P.MAX_REQUEST, P.MAX_REQUEST + 1, 2**32 - 1]))


@st.composite
def option(draw, export: str):
    """(option number, payload) of the option phase, hostile or odd."""
    opt = draw(st.one_of(st.sampled_from(KNOWN_OPTS), u32))
    name = draw(st.sampled_from([export, "", "no-such-export", "x" * 5000, "\udcff"]))
    encoded = name.encode("utf-8", "surrogateescape")
    payload = draw(st.one_of(
        st.binary(max_size=64),
        st.just(struct.pack(">I", len(encoded)) + encoded + struct.pack(">H", 0)),
        st.just(struct.pack(">I", 2**32 - 1) + encoded),
        st.just(struct.pack(">I", len(encoded)) + encoded + struct.pack(">HH", 5, 3)),
        st.just(struct.pack(">I", len(encoded)) + encoded + struct.pack(">I", 1)
                + struct.pack(">I", 2**31) + b"base:"),
    ))
    return opt, payload


@dataclass
class Cmd:
    cmd: int
    flags: int
    offset: int
    length: int
    data: bytes = b""        # the payload actually sent (a WRITE may send less, then hang up)


@st.composite
def commands(draw) -> Cmd:
    cmd = draw(st.one_of(st.sampled_from(KNOWN_CMDS), st.integers(0, 2**16 - 1)))
    flags = draw(st.one_of(st.just(0), st.integers(0, 2**16 - 1),
                           st.sampled_from([P.CMD_FLAG_FUA, P.CMD_FLAG_DF, P.CMD_FLAG_REQ_ONE,
                                            P.CMD_FLAG_NO_HOLE, P.CMD_FLAG_FAST_ZERO, 1 << 15])))
    offset, length = draw(u64), draw(lengths)
    if cmd == P.CMD_DISC:      # DISC ends the session: a separate step kind covers it
        cmd = P.CMD_FLUSH
    data = b""
    if cmd == P.CMD_WRITE and length <= 1 << 16:
        data = draw(st.binary(min_size=length, max_size=length)) if length <= 64 else \
            bytes(length)
    return Cmd(cmd, flags, offset, length, data)


@dataclass
class Session:
    phase: str                          # "handshake", "options", "transmission", "login"
    steps: list = field(default_factory=list)
    structured: bool = False
    hang_up: bool = False               # end with an abrupt disconnect mid-request


# ---- the NBD server ---------------------------------------------------------------------------

def _option_reply(sock, opt: int) -> list:
    replies = []
    while True:
        magic, ropt, rtype, length = struct.unpack(">QIII", recv(sock, 20))
        assert magic == P.REPLY_MAGIC, hex(magic)
        assert ropt == opt, (ropt, opt)
        replies.append((rtype, recv(sock, length)))
        if rtype not in (P.REP_INFO, P.REP_META_CONTEXT):
            return replies


def play_options(sock, steps, export: str) -> str:
    """Option phase steps; returns 'open', 'closed' or 'transmission'."""
    for opt, payload in steps:
        try:
            sock.sendall(struct.pack(">QII", P.IHAVEOPT, opt, len(payload)) + payload)
        except (BrokenPipeError, ConnectionResetError):
            assert len(payload) > P.MAX_OPTION, f"closed on option {opt}"
            return "closed"
        if opt == P.OPT_EXPORT_NAME:
            # no error reply exists for EXPORT_NAME: the server closes, or enters transmission
            try:
                head = recv(sock, 10)
            except Closed:
                return "closed"
            size, _flags = struct.unpack(">QH", head)
            assert size == SIZE and payload.decode("utf-8", "replace") == export
            return "transmission"
        try:
            replies = _option_reply(sock, opt)
        except Closed:
            assert opt == P.OPT_ABORT or len(payload) > P.MAX_OPTION, \
                f"closed on option {opt} {payload[:40]!r}"
            return "closed"
        final = replies[-1][0]
        if opt == P.OPT_ABORT:
            assert final == P.REP_ACK
            assert closed_soon(sock)
            return "closed"
        if opt not in KNOWN_OPTS:
            assert final == P.REP_ERR_UNSUP, (opt, replies)
        elif final != P.REP_ACK:
            assert final & (1 << 31), (opt, replies)   # an NBD_REP_ERR_*
        if opt == P.OPT_GO and final == P.REP_ACK:
            return "transmission"
    return "open"


def check_reply(sock, c: Cmd, handle: int, structured: bool) -> int:
    """Reads the reply to `c`; returns its error (0 = success)."""
    magic = struct.unpack(">I", recv(sock, 4))[0]
    if magic == P.SIMPLE_REPLY_MAGIC:
        err, h = struct.unpack(">IQ", recv(sock, 12))
        assert h == handle, (h, handle)
        if err:
            assert err in NBD_ERRORS, err
        elif c.cmd == P.CMD_READ:
            recv(sock, c.length)
        return err
    assert structured and magic == P.STRUCTURED_REPLY_MAGIC, hex(magic)
    err = 0
    while True:
        flags, rtype, h, length = struct.unpack(">HHQI", recv(sock, 16))
        assert h == handle
        payload = recv(sock, length)
        if rtype & (1 << 15):
            err = struct.unpack(">I", payload[:4])[0]
            assert err in NBD_ERRORS, err
        if flags & P.REPLY_FLAG_DONE:
            return err


def play_transmission(sock, steps, structured: bool, hang_up: bool):
    for i, c in enumerate(steps):
        handle = 0x1000 + i
        head = struct.pack(">IHHQQI", P.REQUEST_MAGIC, c.flags, c.cmd, handle,
                           c.offset % 2**64, c.length)
        if c.cmd == P.CMD_WRITE and len(c.data) < c.length:
            # a payload the server must wait for: hang up in the middle, or be refused whole
            sock.sendall(head + c.data)
            if c.length > P.MAX_REQUEST:
                assert closed_soon(sock), "a WRITE over the maximum block size must close"
                return
            return   # the rest never comes: the session ends here (abrupt disconnect)
        sock.sendall(head + c.data)
        in_range = c.offset + c.length <= SIZE
        err = check_reply(sock, c, handle, structured)
        if c.cmd not in KNOWN_CMDS:
            assert err == P.EINVAL, (c, err)
        elif c.flags & ~CMD_FLAGS[c.cmd] or (c.flags & P.CMD_FLAG_DF and not structured):
            assert err in (P.EINVAL, P.ENOSPC), f"unknown flags {c.flags:#x} on {c}: {err}"
        elif not in_range and c.cmd in (P.CMD_READ, P.CMD_WRITE, P.CMD_TRIM,
                                        P.CMD_WRITE_ZEROES, P.CMD_BLOCK_STATUS):
            assert err in (P.EINVAL, P.ENOSPC, P.EOVERFLOW), (c, err)
    if hang_up:   # a request header cut in half
        sock.sendall(struct.pack(">IHH", P.REQUEST_MAGIC, 0, P.CMD_READ))


def nbd_session(port: int, host: str, export: str, s: Session):
    sock = socket.create_connection((host, port), timeout=10)
    try:
        magic, opt, _flags = struct.unpack(">QQH", recv(sock, 18))
        assert (magic, opt) == (P.NBDMAGIC, P.IHAVEOPT)
        if s.phase == "handshake":
            flags, tail = s.steps[0]
            sock.sendall(struct.pack(">I", flags) + tail)
            if flags & ~(P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES):
                assert closed_soon(sock), "unknown client flags must close the connection"
            return
        sock.sendall(struct.pack(">I", P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES))
        if s.phase == "options":
            state = play_options(sock, s.steps, export)
            if state == "open" and s.hang_up:
                sock.sendall(struct.pack(">Q", P.IHAVEOPT))   # an option header cut short
            return
        if s.structured:
            assert play_options(sock, [(P.OPT_STRUCTURED_REPLY, b"")], export) == "open"
        n = export.encode()
        go = struct.pack(">I", len(n)) + n + struct.pack(">H", 0)
        assert play_options(sock, [(P.OPT_GO, go)], export) == "transmission"
        play_transmission(sock, s.steps, s.structured, s.hang_up)
    finally:
        sock.close()


@st.composite
def nbd_sessions(draw, export: str) -> Session:
    phase = draw(st.sampled_from(["handshake", "options", "transmission"]))
    hang_up = draw(st.booleans())
    if phase == "handshake":
        flags = draw(st.one_of(u32, st.sampled_from([0, 1, 3, 4, 2**32 - 1])))
        return Session(phase, [(flags, draw(st.binary(max_size=32)))], hang_up=hang_up)
    if phase == "options":
        steps = draw(st.lists(option(export), min_size=1, max_size=4))
        if draw(st.booleans()):     # an option over the server's 64 KiB limit
            steps.append((P.OPT_INFO, bytes(P.MAX_OPTION + 1)))
        return Session(phase, steps, hang_up=hang_up)
    steps = draw(st.lists(commands(), min_size=1, max_size=6))
    return Session(phase, steps, structured=draw(st.booleans()), hang_up=hang_up)


def bad_magic_session(port: int, host: str, export: str, where: str):
    """A wrong magic number in the option phase or in a request: the server closes."""
    sock = socket.create_connection((host, port), timeout=10)
    try:
        recv(sock, 18)
        sock.sendall(struct.pack(">I", 3))
        if where == "option":
            sock.sendall(struct.pack(">QII", 0x1122334455667788, P.OPT_GO, 0))
        else:
            n = export.encode()
            play_options(sock, [(P.OPT_GO, struct.pack(">I", len(n)) + n + b"\0\0")], export)
            sock.sendall(struct.pack(">IHHQQI", 0xdeadbeef, 0, P.CMD_READ, 1, 0, 512))
        return closed_soon(sock)
    finally:
        sock.close()


# ---- the initiator login -------------------------------------------------------------------

LOGIN_LINES = [b"{", b"[]", b'"login"', b"null", b"\xff\xfe\n", b"[" * 100000,
               b'{"op": "login"}', b'{"op": "logout"}', b'{"op": 1}',
               b'{"op": "login", "initiator": 5, "target": []}',
               b'{"op": "login", "initiator": "", "target": ""}',
               b'{"op": "login", "initiator": "' + b"i" * 300 + b'", "target": "t"}',
               b'{"op": "login", "initiator": "iqn.x", "target": "iqn.none"}',
               b'{"op": "login", "initiator": "iqn.\\u0000", "target": "../../etc"}',
               b"x" * (70 * 1024)]


@st.composite
def login_lines(draw, target: str, initiator: str) -> list:
    """Lines (without their newline) of one login connection."""
    good = json.dumps({"op": "login", "initiator": initiator, "target": target}).encode()
    chap = st.one_of(
        st.just(b'{"chap_user": 5, "chap_response": null}'),
        st.just(b'{"chap_user": null}'),
        st.just(b'{"chap_user": "u", "chap_response": "zz"}'),
        st.just(b"[" * 50000),
        st.binary(max_size=40).filter(lambda b: b"\n" not in b))
    first = draw(st.one_of(st.sampled_from(LOGIN_LINES),
                           st.binary(max_size=80).filter(lambda b: b"\n" not in b),
                           st.just(good)))
    lines = [first]
    if first == good:
        lines.append(draw(chap))
    return lines


def login_session(port: int, host: str, lines: list, hang_up: bool) -> list:
    """Sends the lines, reading one answer each; returns the answers. Every answer must be a
    JSON object with ok false and a reason, or a success / CHAP challenge."""
    sock = socket.create_connection((host, port), timeout=10)
    answers = []
    try:
        f = sock.makefile("rb")
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if last and hang_up:
                sock.sendall(line[: len(line) // 2])   # the line never ends
                return answers
            sock.sendall(line + b"\n")
            reply = f.readline()
            assert reply, f"no answer to {line[:60]!r}: the connection closed silently"
            msg = json.loads(reply)
            assert isinstance(msg, dict), msg
            answers.append(msg)
            if "chap" in msg:
                continue
            if msg.get("ok") is True:
                assert msg["luns"], msg
                return answers
            assert msg.get("ok") is False and isinstance(msg.get("reason"), str) \
                and msg["reason"], msg
        return answers
    finally:
        sock.close()


# ---- the neighbour ----------------------------------------------------------------------------

class Neighbour:
    """Another client of the export reading 4 KiB at a time in a thread; its latencies, and the
    first error it meets (a stall is a read not answered within 10 s)."""

    def __init__(self, host: str, port: int, export: str):
        self.nbd = RawNbd(host, port)
        self.nbd.sock.settimeout(10)
        assert self.nbd.go(export)[-1][0] == P.REP_ACK
        self.lat: list[float] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        handle = 0
        try:
            while not self._stop.is_set():
                handle += 1
                t0 = time.perf_counter()
                self.nbd.send(P.CMD_READ, handle, (handle * 4096) % SIZE, 4096)
                err, h, _data = self.nbd.reply(4096)
                self.lat.append(time.perf_counter() - t0)
                assert (err, h) == (0, handle), (err, h)
        except BaseException as e:   # reported by the test through .error
            self.error = e

    def reads(self) -> int:
        return len(self.lat)

    def stop(self) -> dict:
        self._stop.set()
        self.thread.join(15)
        self.nbd.close()
        lat = sorted(self.lat) or [0.0]
        return {"reads": len(self.lat), "p50_ms": 1000 * statistics.median(lat),
                "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))], "max_ms": 1000 * lat[-1]}
