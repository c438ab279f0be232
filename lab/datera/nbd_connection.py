"""One NBD client of the lab's data plane: the transmission phase (proto.md "Transmission").

Commands: READ, WRITE, FLUSH, TRIM, WRITE_ZEROES (NO_HOLE, FAST_ZERO), BLOCK_STATUS (REQ_ONE)
and DISC. With structured replies negotiated, a READ is answered with OFFSET_DATA chunks,
and OFFSET_HOLE chunks where the file has holes (looked up only for reads of 64 KiB and more,
so small random reads cost no extra system call); every error of a structured connection is an
ERROR chunk with a message; other successes stay simple replies, as the spec allows.

How the array counts and governs them (lab/datera/metrics.py, lab/datera/qos.py), as a
Datera array counts the SCSI commands they stand for (WRITE SAME/UNMAP, GET LBA STATUS):
- READ, WRITE: one op and their bytes, in the metrics and in every bucket;
- WRITE_ZEROES and TRIM: one write op and no bytes (no payload crosses the wire, and the
  array changes metadata only, NO_HOLE included), in the metrics and in the IOPS buckets;
- BLOCK_STATUS: one read op and no bytes, likewise;
- FLUSH, DISC and refused requests: not counted, not paced.
An offline volume answers EIO to all of them (its connections are closed as it goes offline).
A flag a command does not define (proto.md "Request message"; DF on a READ without structured
replies) is refused with EINVAL and not acted on, as nbdkit and qemu-nbd refuse it.
"""
import asyncio
import logging
import os
import struct
import time

from lab.datera import nbd_proto as P
from lab.datera.nbd_negotiation import Negotiation
from lab.datera.qos import release_time
from lab.datera.volume_file import extents, nbd_error, punch_hole, write_zeroes

log = logging.getLogger("lab.datera.dataplane")

MAX_PACED = 1024                    # replies held per connection before it stops reading
SPARSE_READ_MIN = 64 * 1024         # structured reads at least this long look for holes
MAX_READ_CHUNKS = 16                # more pieces than this: one data chunk instead
_EXTENT = struct.Struct(">II")
_ZERO_FLAGS = P.CMD_FLAG_FUA | P.CMD_FLAG_NO_HOLE | P.CMD_FLAG_FAST_ZERO
_READ_FLAGS = P.CMD_FLAG_FUA | P.CMD_FLAG_DF   # DF only once structured replies are on
_STATUS_FLAGS = P.CMD_FLAG_FUA | P.CMD_FLAG_REQ_ONE


def ok_reply(handle: int) -> bytes:
    return P.SIMPLE_REPLY.pack(P.SIMPLE_REPLY_MAGIC, 0, handle)


def error_reply(structured: bool, handle: int, code: int, msg: str = "") -> bytes:
    """A simple reply with the error, or an ERROR chunk carrying msg as well."""
    if not structured:
        return P.SIMPLE_REPLY.pack(P.SIMPLE_REPLY_MAGIC, code, handle)
    text = msg.encode()[:P.MAX_STRING]
    return P.CHUNK_ERROR.pack(P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE, P.REPLY_TYPE_ERROR,
                              handle, 6 + len(text), code, len(text)) + text


def _refuse(structured: bool, handle: int, code: int, msg: str) -> tuple[int, bytes]:
    return code, error_reply(structured, handle, code, msg)


def _pread(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) < length:  # never beyond the size: the file is as large
        data += bytes(length - len(data))
    return data


def structured_read(fd: int, handle: int, offset: int, length: int) -> bytes:
    """A READ's structured reply: OFFSET_DATA and OFFSET_HOLE chunks, the last one DONE.
    Raises OSError."""
    if length == 0:
        return P.CHUNK.pack(P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE, P.REPLY_TYPE_NONE,
                            handle, 0)
    if length >= SPARSE_READ_MIN:
        runs = extents(fd, offset, offset + length, MAX_READ_CHUNKS + 1)
        if len(runs) <= MAX_READ_CHUNKS and (len(runs) > 1 or runs[0][1]):
            parts = []
            last = len(runs) - 1
            pos = offset
            for i, (n, hole) in enumerate(runs):
                done = P.REPLY_FLAG_DONE if i == last else 0
                if hole:
                    parts.append(P.CHUNK_HOLE.pack(P.STRUCTURED_REPLY_MAGIC, done,
                                                   P.REPLY_TYPE_OFFSET_HOLE, handle, 12, pos, n))
                else:
                    parts.append(P.CHUNK_OFFSET.pack(P.STRUCTURED_REPLY_MAGIC, done,
                                                     P.REPLY_TYPE_OFFSET_DATA, handle, 8 + n, pos))
                    parts.append(_pread(fd, n, pos))
                pos += n
            return b"".join(parts)
    return P.CHUNK_OFFSET.pack(P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE,
                               P.REPLY_TYPE_OFFSET_DATA, handle, 8 + length,
                               offset) + _pread(fd, length, offset)


def block_status_reply(fd: int, handle: int, offset: int, length: int, req_one: bool) -> bytes:
    """The one BLOCK_STATUS chunk of `base:allocation` over [offset, offset+length)."""
    found = extents(fd, offset, offset + length, 1 if req_one else P.MAX_EXTENTS)
    payload = P.META_CONTEXT_ID.to_bytes(4, "big") + b"".join(
        _EXTENT.pack(n, flags) for n, flags in found)
    return P.CHUNK.pack(P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE, P.REPLY_TYPE_BLOCK_STATUS,
                        handle, len(payload)) + payload


class NbdConnection(Negotiation, asyncio.Protocol):
    """One NBD client. Parses its own buffer, so one data_received may carry many requests,
    and answers each batch with one transport write."""

    def __init__(self, dp):
        self.dp = dp
        self.transport = None
        self.buf = bytearray()
        self.state = "client_flags"
        self.no_zeroes = False
        self.vol = None
        self.block_status = False    # base:allocation selected for the export in use
        self.paced = 0
        self.closing = False
        self.reading = True
        self.write_paused = False

    # ---- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        transport.write(P.HANDSHAKE.pack(P.NBDMAGIC, P.IHAVEOPT,
                                         P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES))

    def connection_lost(self, exc):
        self.closing = True
        if self.vol is not None:
            self.vol.conns.discard(self)
            if self.paced:
                self.dp.pacer.take(self)

    def pause_writing(self):
        self.write_paused = True
        self._update_reading()

    def resume_writing(self):
        self.write_paused = False
        self._update_reading()

    def _update_reading(self):
        want = not (self.write_paused or self.paced > MAX_PACED) and not self.closing
        if want != self.reading and self.transport is not None and not self.transport.is_closing():
            (self.transport.resume_reading if want else self.transport.pause_reading)()
            self.reading = want

    def data_received(self, data):
        if self.closing:
            return
        self.buf += data
        if self.state == "transmission":
            self._transmission()
        else:
            self._negotiate()

    def _enter(self, vol, name: str):
        self.vol = vol
        # BLOCK_STATUS only for the export the contexts were selected for (proto.md)
        self.block_status = self.meta_selected and self.meta_export == name
        vol.conns.add(self)
        self.state = "transmission"

    def _abort(self):
        self.closing = True
        self.transport.close()

    # ---- transmission -----------------------------------------------------------------------
    def _transmission(self):
        vol = self.vol
        buf = self.buf
        now = time.monotonic()
        fd = vol.fd
        size = vol.size
        limiters = vol.limiters
        structured = self.structured
        out = []
        nr = nw = br = bw = 0
        pos = 0
        end = len(buf)
        mv = memoryview(buf)
        try:
            while end - pos >= 28:
                magic, flags, cmd, handle, offset, length = P.REQUEST.unpack_from(buf, pos)
                if magic != P.REQUEST_MAGIC:
                    log.info("NBD: bad request magic, closing")
                    mv.release()
                    return self._abort()
                if cmd == P.CMD_WRITE:
                    if length > P.MAX_REQUEST:
                        mv.release()
                        return self._abort()
                    if end - pos < 28 + length:
                        break
                    start = pos + 28
                    pos = start + length
                    if flags & ~P.CMD_FLAG_FUA:   # unknown flags: refused, not acted on
                        out.append(error_reply(structured, handle, P.EINVAL,
                                               f"unknown WRITE flags {flags:#x}"))
                        continue
                    if not vol.online:
                        out.append(error_reply(structured, handle, P.EIO, "volume offline"))
                        continue
                    if offset + length > size:
                        out.append(error_reply(structured, handle, P.ENOSPC,
                                               "write past the end of the volume"))
                        continue
                    try:
                        os.pwrite(fd, mv[start:pos], offset)
                    except OSError as e:
                        out.append(error_reply(structured, handle, nbd_error(e), "write failed"))
                        continue
                    reply = P.SIMPLE_REPLY.pack(P.SIMPLE_REPLY_MAGIC, 0, handle)
                    if limiters:
                        t = release_time(limiters, now, True, length)
                        if t > now:
                            self._hold(t, (reply, True, length, now))
                            continue
                    out.append(reply)
                    nw += 1
                    bw += length
                    continue
                pos += 28
                if cmd == P.CMD_READ:
                    if flags & ~_READ_FLAGS or (flags & P.CMD_FLAG_DF and not structured):
                        out.append(error_reply(structured, handle, P.EINVAL,
                                               f"unknown READ flags {flags:#x}"))
                        continue
                    if not vol.online:
                        out.append(error_reply(structured, handle, P.EIO, "volume offline"))
                        continue
                    if length > P.MAX_REQUEST or offset + length > size:
                        out.append(error_reply(structured, handle, P.EINVAL,
                                               "read past the end of the volume or over the "
                                               "maximum block size"))
                        continue
                    try:
                        if structured:
                            reply = structured_read(fd, handle, offset, length)
                        else:
                            reply = P.SIMPLE_REPLY.pack(P.SIMPLE_REPLY_MAGIC, 0, handle) + \
                                _pread(fd, length, offset)
                    except OSError as e:
                        out.append(error_reply(structured, handle, nbd_error(e), "read failed"))
                        continue
                    if limiters:
                        t = release_time(limiters, now, False, length)
                        if t > now:
                            self._hold(t, (reply, False, length, now))
                            continue
                    out.append(reply)
                    nr += 1
                    br += length
                    continue
                if cmd == P.CMD_FLUSH:
                    if flags & ~P.CMD_FLAG_FUA:
                        out.append(error_reply(structured, handle, P.EINVAL,
                                               f"unknown FLUSH flags {flags:#x}"))
                        continue
                    self._flush(handle)
                    continue
                if cmd == P.CMD_DISC:
                    pos = end
                    mv.release()
                    del buf[:]
                    if out:
                        self.transport.write(b"".join(out))
                    self._account(nr, nw, br, bw, now)
                    return self.close_cleanly()
                if cmd == P.CMD_WRITE_ZEROES or cmd == P.CMD_TRIM:
                    err, reply = self._zero(cmd, flags, handle, offset, length)
                    is_write = True
                elif cmd == P.CMD_BLOCK_STATUS:
                    err, reply = self._block_status(flags, handle, offset, length)
                    is_write = False
                else:
                    out.append(error_reply(structured, handle, P.EINVAL,
                                           f"command {cmd} not supported"))
                    continue
                if err:   # refused: not an op of the volume
                    out.append(reply)
                    continue
                if limiters:   # an op, but no bytes: IOPS buckets only
                    t = release_time(limiters, now, is_write, 0)
                    if t > now:
                        self._hold(t, (reply, is_write, 0, now))
                        continue
                out.append(reply)
                if is_write:
                    nw += 1
                else:
                    nr += 1
        finally:
            mv.release()
        if pos:
            del buf[:pos]
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if nr or nw:
            self._account(nr, nw, br, bw, now)

    def _zero(self, cmd: int, flags: int, handle: int, offset: int,
              length: int) -> tuple[int, bytes]:
        """WRITE_ZEROES or TRIM: (0, OK reply) or (NBD error, error reply)."""
        vol, structured = self.vol, self.structured
        trim = cmd == P.CMD_TRIM
        if not vol.online:
            return _refuse(structured, handle, P.EIO, "volume offline")
        if flags & ~(P.CMD_FLAG_FUA if trim else _ZERO_FLAGS):
            return _refuse(structured, handle, P.EINVAL,
                           f"unknown {'TRIM' if trim else 'WRITE_ZEROES'} flag")
        if offset + length > vol.size:   # the spec's errors: EINVAL for TRIM, ENOSPC for zeroes
            return _refuse(structured, handle, P.EINVAL if trim else P.ENOSPC,
                           "range past the end of the volume")
        if length == 0:
            return 0, ok_reply(handle)
        if trim:
            try:
                punch_hole(vol.fd, offset, length)
            except OSError as e:
                return _refuse(structured, handle, nbd_error(e), "trim failed")
            return 0, ok_reply(handle)
        err = write_zeroes(vol.fd, offset, length, bool(flags & P.CMD_FLAG_NO_HOLE),
                           bool(flags & P.CMD_FLAG_FAST_ZERO))
        if err:
            return _refuse(structured, handle, err,
                           "zeroing is not fast here" if err == P.ENOTSUP else "zeroing failed")
        return 0, ok_reply(handle)

    def _block_status(self, flags: int, handle: int, offset: int,
                      length: int) -> tuple[int, bytes]:
        vol, structured = self.vol, self.structured
        if not vol.online:
            return _refuse(structured, handle, P.EIO, "volume offline")
        if not self.block_status:
            return _refuse(structured, handle, P.EINVAL,
                           "no metadata context selected for this export")
        if flags & ~_STATUS_FLAGS:
            return _refuse(structured, handle, P.EINVAL, "unknown BLOCK_STATUS flag")
        if length == 0 or offset + length > vol.size:
            return _refuse(structured, handle, P.EINVAL,
                           "empty range or past the end of the volume")
        try:
            return 0, block_status_reply(vol.fd, handle, offset, length,
                                         bool(flags & P.CMD_FLAG_REQ_ONE))
        except OSError as e:
            return _refuse(structured, handle, nbd_error(e), "block status failed")

    def _account(self, nr, nw, br, bw, t0):
        if not (nr or nw):
            return
        lat = (time.monotonic() - t0) * 1e6
        io = self.vol.io
        if nw:
            io.writes += nw
            io.bytes_written += bw
            io.lat_write.extend([lat] * nw)
        if nr:
            io.reads += nr
            io.bytes_read += br
            io.lat_read.extend([lat] * nr)

    def _hold(self, when: float, item):
        self.paced += 1
        self.dp.pacer.hold(when, self, item)
        if self.paced > MAX_PACED:
            self._update_reading()

    def release(self, items: list, now: float):
        """Called by the pacer with this connection's due replies."""
        self.paced -= len(items)
        if self.closing or self.transport.is_closing():
            return
        io = self.vol.io
        self.transport.write(b"".join([it[0] for it in items]))
        for _reply, is_write, nbytes, t0 in items:
            lat = (now - t0) * 1e6
            if is_write:
                io.writes += 1
                io.bytes_written += nbytes
                io.lat_write.append(lat)
            else:
                io.reads += 1
                io.bytes_read += nbytes
                io.lat_read.append(lat)
        if not self.reading:
            self._update_reading()

    def _flush(self, handle: int):
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, os.fdatasync, self.vol.fd)

        def done(f):
            if self.closing or self.transport.is_closing():
                return
            exc = f.exception()
            if exc is None:
                self.transport.write(ok_reply(handle))
            else:
                code = nbd_error(exc) if isinstance(exc, OSError) else P.EIO
                self.transport.write(error_reply(self.structured, handle, code, "flush failed"))
        fut.add_done_callback(done)

    def close_cleanly(self):
        """Sends every reply already earned (held by QoS), then closes: the client sees
        end of file after its last reply, never a reset."""
        if self.closing:
            return
        if self.paced:
            items = self.dp.pacer.take(self)
            if items:
                self.release(items, time.monotonic())
            self.paced = 0
        self.closing = True
        if self.vol is not None:
            self.vol.conns.discard(self)
        self.transport.close()
