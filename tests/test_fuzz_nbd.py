"""Fuzzed sessions against the lab's NBD server and initiator login (issue 13 item 5).

Hypothesis draws hostile sessions (tests/support/nbd_fuzz.py): malformed handshakes and client
flags, unknown and oversized options, bad magic, out-of-range and oversized requests, unknown
commands and flags, CHAP answers of the wrong shape, lines over the limit, and abrupt
disconnects in the middle of a request. Each answer must be the protocol's (NBD error values,
NBD_REP_ERR_* option replies, a close where the spec says so; the login's {"ok": false,
"reason"}), and a neighbour reading the same volume all along must never stall (its latencies
are printed; bench/bench_fuzz.py reports them). The data plane runs in this process on spare
lab addresses (tests/support/nbd.py), as the data-plane tests do.

Below the properties, one named regression test per kind of fault the fuzzing found.
"""
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.datera import nbd_proto as P
from tests.support import fuzz  # noqa: F401  (registers the Hypothesis profiles)
from tests.support import nbd_fuzz as nf
from tests.support.nbd import RawNbd, inproc  # noqa: F401 (fixture)

PROFILE = os.environ.get("VANCOUVER_FUZZ_PROFILE", "ci")
INITIATOR = "iqn.test:host1"


@pytest.fixture
def export(inproc):   # noqa: F811
    iqn, _vols = inproc.add_target(size=nf.SIZE)
    return iqn, inproc.login(iqn)[0].export


@pytest.fixture
def neighbour(inproc, export):   # noqa: F811
    n = nf.Neighbour(inproc.vips[1], inproc.dp.nbd_port, export[1])
    yield n
    figures = n.stop()
    print(f"neighbour during the fuzz: {figures}")
    assert n.error is None, f"the neighbour's I/O failed: {n.error!r}"


def _alive(neighbour, before: int):
    """The neighbour made progress since `before` (a stalled read fails it within 10 s)."""
    deadline = time.monotonic() + 15   # past the neighbour's own 10 s read timeout
    while neighbour.reads() <= before and neighbour.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert neighbour.error is None, f"neighbour failed: {neighbour.error!r}"
    assert neighbour.reads() > before, "the neighbour's reads stalled"


def test_fuzz_nbd_sessions(inproc, export, neighbour):   # noqa: F811
    _iqn, name = export

    @settings(settings.get_profile(PROFILE))
    @given(s=nf.nbd_sessions(name))
    def prop(s):
        before = neighbour.reads()
        nf.nbd_session(inproc.dp.nbd_port, inproc.vips[0], name, s)
        _alive(neighbour, before)
    prop()


def test_fuzz_initiator_login(inproc, export, neighbour):   # noqa: F811
    plain, _name = export
    chap, _ = inproc.add_target(chap=("fuzz-user", "fuzz-secret-123"))

    @settings(settings.get_profile(PROFILE))
    @given(target=st.sampled_from([plain, chap]), data=st.data())
    def prop(target, data):
        lines = data.draw(nf.login_lines(target, INITIATOR))
        hang_up = data.draw(st.booleans())
        before = neighbour.reads()
        nf.login_session(inproc.dp.login_port, inproc.vips[0], lines, hang_up)
        _alive(neighbour, before)
    prop()


@pytest.mark.parametrize("where", ["option", "request"])
def test_bad_magic_closes_the_connection(inproc, export, where):   # noqa: F811
    assert nf.bad_magic_session(inproc.dp.nbd_port, inproc.vips[0], export[1], where)


# ---- the kinds of fault the fuzzing found, one regression test each ---------------------------

@pytest.mark.parametrize("cmd, flags, structured", [
    (P.CMD_READ, 1 << 1, False),            # NO_HOLE means nothing to a READ
    (P.CMD_READ, P.CMD_FLAG_DF, False),     # DF needs structured replies
    (P.CMD_READ, 1 << 15, True),
    (P.CMD_WRITE, P.CMD_FLAG_REQ_ONE, False),
    (P.CMD_FLUSH, 1 << 7, False),
    (P.CMD_TRIM, P.CMD_FLAG_NO_HOLE, True),
])
def test_unknown_command_flags_are_refused_with_einval(inproc, export, cmd, flags,   # noqa: F811
                                                       structured):
    """Found: READ, WRITE, FLUSH and TRIM ignored flags they do not define (a READ with NO_HOLE
    read; a WRITE with REQ_ONE wrote). The server now refuses them with EINVAL and does not act
    on them (nbdkit and qemu-nbd do the same); the connection stays usable."""
    nbd = RawNbd(inproc.vips[0], inproc.dp.nbd_port)
    try:
        if structured:
            assert nbd.option(P.OPT_STRUCTURED_REPLY)[-1][0] == P.REP_ACK
        assert nbd.go(export[1])[-1][0] == P.REP_ACK
        data = b"\x5a" * 512 if cmd == P.CMD_WRITE else b""
        nbd.send(cmd, 7, 0, 512 if cmd != P.CMD_FLUSH else 0, data, flags)
        c = nf.Cmd(cmd, flags, 0, 512, data)
        assert nf.check_reply(nbd.sock, c, 7, structured) == P.EINVAL
        nbd.send(P.CMD_READ, 8, 0, 512)             # refused, not acted on; still serving
        assert nf.check_reply(nbd.sock, nf.Cmd(P.CMD_READ, 0, 0, 512), 8, structured) == 0
    finally:
        nbd.close()
    if cmd == P.CMD_WRITE:
        nbd = RawNbd(inproc.vips[0], inproc.dp.nbd_port)
        try:
            nbd.go(export[1])
            nbd.send(P.CMD_READ, 9, 0, 512)
            assert nbd.reply(512)[2] == bytes(512), "a refused WRITE wrote"
        finally:
            nbd.close()


def test_a_login_line_over_the_limit_gets_a_refusal_not_a_silent_close(inproc):   # noqa: F811
    """Found: a login line over 64 KiB closed the connection without a word (the stream's
    limit raised ValueError and the service returned); now it gets {"ok": false, "reason"}."""
    answers = nf.login_session(inproc.dp.login_port, inproc.vips[0], [b"x" * (70 * 1024)], False)
    assert answers[0]["ok"] is False and "over" in answers[0]["reason"]


@pytest.mark.parametrize("line", [b"[" * 100000, b'{"op": "login", "x": ' + b"[" * 50000 + b"}"])
def test_a_deeply_nested_login_line_is_a_bad_request_not_an_internal_error(inproc, line):  # noqa: F811
    """Found with the HTTP kind: json.loads raises RecursionError, which the login service met
    as a bug ("internal error in the target"); now it is the protocol's bad request."""
    answers = nf.login_session(inproc.dp.login_port, inproc.vips[0], [line], False)
    assert answers[0]["ok"] is False and answers[0]["reason"].startswith("bad request")
