"""NBD handshake and option haggling of the lab's data plane (fixed newstyle, proto.md).

Options: EXPORT_NAME, ABORT, INFO, GO, STRUCTURED_REPLY, LIST_META_CONTEXT and
SET_META_CONTEXT (one context, `base:allocation`); anything else gets NBD_REP_ERR_UNSUP,
so a client that negotiates nothing new keeps simple replies exactly as before.
Export names come from the initiator login (lab/datera/login.py); opening one re-checks the
ACL through the model (`DataPlane.open_export`).
"""
import logging
import struct

from lab.datera import nbd_proto as P

log = logging.getLogger("lab.datera.dataplane")


class BadOption(ValueError):
    """A syntactically invalid option payload: answered with NBD_REP_ERR_INVALID."""


def _string(payload: bytes, pos: int, what: str) -> tuple[str, int]:
    """A 32-bit length and that many bytes of UTF-8 at pos; (text, next pos)."""
    if len(payload) < pos + 4:
        raise BadOption(f"{what}: length missing")
    n = int.from_bytes(payload[pos:pos + 4], "big")
    if n > P.MAX_STRING or len(payload) < pos + 4 + n:
        raise BadOption(f"{what}: length {n} runs past the option or over {P.MAX_STRING} bytes")
    return payload[pos + 4:pos + 4 + n].decode("utf-8", "replace"), pos + 4 + n


def parse_meta_context(payload: bytes) -> tuple[str, list[str]]:
    """(export name, queries) of a LIST/SET_META_CONTEXT payload; raises BadOption."""
    name, pos = _string(payload, 0, "export name")
    if len(payload) < pos + 4:
        raise BadOption("number of queries missing")
    count = int.from_bytes(payload[pos:pos + 4], "big")
    pos += 4
    queries = []
    for i in range(count):
        q, pos = _string(payload, pos, f"query {i + 1}")
        queries.append(q)
    if pos != len(payload):
        raise BadOption("bytes left after the last query")
    return name, queries


def match_contexts(queries: list[str], listing: bool) -> list[str]:
    """The contexts the queries name (proto.md "The base: metadata namespace"): no query lists
    everything; `base:` is a wildcard when listing and ignored when setting; unknown names and
    namespaces are ignored."""
    if listing and not queries:
        return [P.META_BASE_ALLOCATION]
    hit = any(q == P.META_BASE_ALLOCATION or (listing and q == "base:") for q in queries)
    return [P.META_BASE_ALLOCATION] if hit else []


class Negotiation:
    """The option phase of NbdConnection (mixin: needs dp, transport, buf, closing, state,
    no_zeroes, _enter and _abort)."""

    structured = False       # NBD_OPT_STRUCTURED_REPLY acknowledged
    meta_export = None       # the export name the last SET_META_CONTEXT selected contexts for
    meta_selected = False

    def _negotiate(self):
        buf = self.buf
        while not self.closing and self.state != "transmission":
            if self.state == "client_flags":
                if len(buf) < 4:
                    return
                flags = int.from_bytes(buf[:4], "big")
                del buf[:4]
                if flags & ~(P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES):
                    return self._abort()
                self.no_zeroes = bool(flags & P.FLAG_NO_ZEROES)
                self.state = "options"
                continue
            if len(buf) < P.OPTION.size:
                return
            magic, opt, length = P.OPTION.unpack_from(buf)
            if magic != P.IHAVEOPT or length > P.MAX_OPTION:
                return self._abort()
            if len(buf) < P.OPTION.size + length:
                return
            payload = bytes(buf[P.OPTION.size:P.OPTION.size + length])
            del buf[:P.OPTION.size + length]
            self._option(opt, payload)
        if self.state == "transmission" and buf and not self.closing:
            self._transmission()

    def _opt_reply(self, opt: int, rtype: int, data: bytes = b""):
        self.transport.write(P.OPTION_REPLY.pack(P.REPLY_MAGIC, opt, rtype, len(data)) + data)

    def _option(self, opt: int, payload: bytes):
        if opt == P.OPT_ABORT:
            self._opt_reply(opt, P.REP_ACK)
            return self._abort()
        if opt == P.OPT_EXPORT_NAME:
            name = payload.decode("utf-8", "replace")
            vol, _, why = self.dp.open_export(name)
            if vol is None:  # EXPORT_NAME has no way to say why: the protocol says close
                log.info("NBD EXPORT_NAME refused: %s", why)
                return self._abort()
            tail = b"" if self.no_zeroes else bytes(124)
            self.transport.write(struct.pack(">QH", vol.size, P.TRANSMISSION_FLAGS) + tail)
            return self._enter(vol, name)
        if opt in (P.OPT_INFO, P.OPT_GO):
            return self._info_go(opt, payload)
        if opt == P.OPT_STRUCTURED_REPLY:
            if payload:
                return self._opt_reply(opt, P.REP_ERR_INVALID, b"STRUCTURED_REPLY takes no data")
            self.structured = True
            return self._opt_reply(opt, P.REP_ACK)
        if opt in (P.OPT_LIST_META_CONTEXT, P.OPT_SET_META_CONTEXT):
            return self._meta_context(opt, payload)
        self._opt_reply(opt, P.REP_ERR_UNSUP, b"option not supported by this server")

    def _info_go(self, opt: int, payload: bytes):
        if len(payload) < 6:
            return self._opt_reply(opt, P.REP_ERR_INVALID, b"malformed INFO/GO request")
        nlen = int.from_bytes(payload[:4], "big")
        if len(payload) < 4 + nlen + 2:
            return self._opt_reply(opt, P.REP_ERR_INVALID, b"malformed INFO/GO request")
        name = payload[4:4 + nlen].decode("utf-8", "replace")
        nreq = int.from_bytes(payload[4 + nlen:6 + nlen], "big")
        reqs = struct.unpack_from(f">{nreq}H", payload, 6 + nlen) \
            if len(payload) >= 6 + nlen + 2 * nreq else ()
        vol, err, why = self.dp.open_export(name)
        if vol is None:
            return self._opt_reply(opt, err, why.encode())
        self._opt_reply(opt, P.REP_INFO,
                        P.INFO_EXPORT_REPLY.pack(P.INFO_EXPORT, vol.size, P.TRANSMISSION_FLAGS))
        if P.INFO_BLOCK_SIZE in reqs:
            self._opt_reply(opt, P.REP_INFO, struct.pack(
                ">HIII", P.INFO_BLOCK_SIZE, P.MIN_BLOCK, P.PREFERRED_BLOCK, P.MAX_REQUEST))
        self._opt_reply(opt, P.REP_ACK)
        if opt == P.OPT_GO:
            self._enter(vol, name)

    def _meta_context(self, opt: int, payload: bytes):
        setting = opt == P.OPT_SET_META_CONTEXT
        if setting:   # a SET replaces the selection even when it fails
            self.meta_export, self.meta_selected = None, False
            if not self.structured:
                return self._opt_reply(opt, P.REP_ERR_INVALID,
                                       b"SET_META_CONTEXT needs STRUCTURED_REPLY first")
        try:
            name, queries = parse_meta_context(payload)
        except BadOption as e:
            return self._opt_reply(opt, P.REP_ERR_INVALID, f"malformed meta context request: "
                                                           f"{e}".encode())
        if self.dp.exports.resolve(name) is None:
            return self._opt_reply(opt, P.REP_ERR_UNKNOWN, b"no such export: log in to the target")
        found = match_contexts(queries, listing=not setting)
        ctx_id = P.META_CONTEXT_ID if setting else 0   # LIST: the id is reserved, zero
        for ctx in found:
            self._opt_reply(opt, P.REP_META_CONTEXT, ctx_id.to_bytes(4, "big") + ctx.encode())
        if setting and found:
            self.meta_export, self.meta_selected = name, True
        self._opt_reply(opt, P.REP_ACK)
