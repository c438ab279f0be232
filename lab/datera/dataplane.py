"""The Datera lab's data plane: volumes' bytes, served over NBD on the access VIPs.

- Bytes: one sparse file per volume under `data_dir/volumes/`, snapshots as sparse files under
  `data_dir/snapshots/<volume uuid>/`; I/O is os.pread/os.pwrite on one descriptor per volume.
- NBD (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md): fixed newstyle
  handshake with NO_ZEROES; options GO, INFO, EXPORT_NAME and ABORT (anything else gets
  NBD_REP_ERR_UNSUP, so clients use simple replies); commands READ, WRITE, FLUSH, TRIM (punches
  a hole) and DISC; transmission flags HAS_FLAGS, SEND_FLUSH, SEND_TRIM, CAN_MULTI_CONN.
  Export names come from the initiator login (lab/datera/login.py); opening one re-checks the
  ACL through the model (`LoginAuthority.may_access`).
- QoS: replies of READ and WRITE wait for the volume's and its tenants' token buckets
  (lab/datera/qos.py); the unthrottled path never touches a timer.
- Metrics: every READ and WRITE is counted in its volume's accumulator (lab/datera/metrics.py),
  with its latency from request received to reply sent.

The model drives everything through `contract.DataPlaneHooks`, all on one asyncio loop.
"""
import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import re
import struct
import time
from pathlib import Path

from lab.datera.contract import VolumeHandle
from lab.datera.login import Exports, LoginService
from lab.datera.metrics import Metrics
from lab.datera.qos import Limiter, Pacer, release_time

log = logging.getLogger("lab.datera.dataplane")

# ---- NBD protocol constants ----------------------------------------------------------------
NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES = 1, 2
OPT_EXPORT_NAME, OPT_ABORT, OPT_INFO, OPT_GO = 1, 2, 6, 7
REP_ACK, REP_INFO = 1, 3
REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID, REP_ERR_UNKNOWN = (2**31 + 1, 2**31 + 2,
                                                                  2**31 + 3, 2**31 + 6)
INFO_EXPORT, INFO_BLOCK_SIZE = 0, 3
TFLAG_HAS_FLAGS, TFLAG_SEND_FLUSH, TFLAG_SEND_TRIM, TFLAG_CAN_MULTI_CONN = 1, 4, 32, 256
TRANSMISSION_FLAGS = TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_TRIM | TFLAG_CAN_MULTI_CONN
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4

HANDSHAKE = struct.Struct(">QQH")
OPTION = struct.Struct(">QII")
OPTION_REPLY = struct.Struct(">QII I")
REQUEST = struct.Struct(">IHHQQI")
SIMPLE_REPLY = struct.Struct(">IIQ")
INFO_EXPORT_REPLY = struct.Struct(">HQH")

MAX_OPTION = 64 * 1024
MAX_REQUEST = 32 * 1024 * 1024      # per READ/WRITE, announced as the maximum block size
MAX_PACED = 1024                    # replies held per connection before it stops reading

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def punch_hole(fd: int, offset: int, length: int):
    if _libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def copy_sparse(src: Path, dst: Path):
    """Copies src over dst in place (dst's open descriptors stay valid), keeping holes."""
    with open(src, "rb") as fs, open(dst, "r+b" if dst.exists() else "w+b") as fd:
        size = os.fstat(fs.fileno()).st_size
        os.ftruncate(fd.fileno(), 0)
        os.ftruncate(fd.fileno(), size)
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fs.fileno(), pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:   # only a hole is left
                    break
                raise
            end = os.lseek(fs.fileno(), start, os.SEEK_HOLE)
            while start < end:
                n = os.copy_file_range(fs.fileno(), fd.fileno(), end - start, start, start)
                if n <= 0:
                    break
                start += n
            pos = end


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _SAFE_ID.fullmatch(value):
        raise ValueError(f"{what} {value!r}: expected letters, digits, '.', '_' or '-'")
    return value


class Volume:
    """The data plane's side of one volume."""
    __slots__ = ("handle", "path", "fd", "online", "limiter", "limiters", "io", "conns")

    def __init__(self, handle: VolumeHandle, path: Path, io):
        self.handle = handle
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self.fd).st_size < handle.size_bytes:
            os.ftruncate(self.fd, handle.size_bytes)
        self.online = True
        self.limiter = Limiter(f"volume {handle.uuid}")
        self.limiters: tuple = ()          # every active limiter: the volume's, its tenants'
        self.io = io
        self.conns: set = set()

    @property
    def size(self) -> int:
        return self.handle.size_bytes


class DataPlane:
    """Implements contract.DataPlaneHooks; serves NBD and the initiator login on every VIP."""

    def __init__(self, data_dir: Path, metrics: Metrics, vips: list[str], nbd_port: int,
                 login_port: int):
        for ip in vips:
            if not ip.startswith("127."):
                raise ValueError(f"VIP {ip}: the lab binds to 127.0.0.0/8 only")
        self.data_dir = Path(data_dir)
        self.metrics = metrics
        self.vips = list(vips)
        self.nbd_port = nbd_port        # the bound ports once started (0 = pick a free one)
        self.login_port = login_port
        self.authority = None
        self.exports = Exports()
        self.volumes: dict[str, Volume] = {}
        self.tenant_limiters: dict[str, Limiter] = {}
        self.pacer: Pacer | None = None
        self._servers = []
        self._tasks = []
        (self.data_dir / "volumes").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "snapshots").mkdir(parents=True, exist_ok=True)

    def bind(self, authority):
        """authority implements contract.LoginAuthority."""
        self.authority = authority

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self):
        loop = asyncio.get_running_loop()
        self.pacer = Pacer(loop)
        login = LoginService(self)
        for ip in self.vips:
            srv = await loop.create_server(lambda: NbdConnection(self), ip, self.nbd_port,
                                           reuse_address=True)
            self.nbd_port = srv.sockets[0].getsockname()[1]
            self._servers.append(srv)
        for ip in self.vips:
            srv = await asyncio.start_server(login.handle, ip, self.login_port,
                                             reuse_address=True, limit=64 * 1024)
            self.login_port = srv.sockets[0].getsockname()[1]
            self._servers.append(srv)
        self._tasks.append(loop.create_task(self.metrics.run()))
        log.info("data plane on %s: NBD port %d, login port %d", ", ".join(self.vips),
                 self.nbd_port, self.login_port)

    async def stop(self):
        for srv in self._servers:
            srv.close()
        for vol in self.volumes.values():
            self._close_conns(vol)
        for srv in self._servers:
            await srv.wait_closed()
        self._servers.clear()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.pacer is not None:
            self.pacer.close()
        for vol in self.volumes.values():
            os.close(vol.fd)
        self.volumes.clear()

    # ---- DataPlaneHooks -----------------------------------------------------------------------
    def _vol_path(self, uuid: str) -> Path:
        return self.data_dir / "volumes" / f"{_check_id(uuid, 'volume')}.img"

    def _snap_path(self, vol_uuid: str, snap_id: str) -> Path:
        return (self.data_dir / "snapshots" / _check_id(vol_uuid, "volume")
                / f"{_check_id(snap_id, 'snapshot')}.img")

    def volume_created(self, vol: VolumeHandle) -> None:
        existing = self.volumes.get(vol.uuid)
        if existing is not None:
            self.volume_resized(vol)
            return
        v = Volume(vol, self._vol_path(vol.uuid), self.metrics.add_volume(vol))
        self.volumes[vol.uuid] = v
        self._relimit(v)

    def ensure_volume(self, vol: VolumeHandle) -> None:
        if vol.uuid not in self.volumes:
            self.volume_created(vol)

    def volume_resized(self, vol: VolumeHandle) -> None:
        v = self._volume(vol.uuid)
        if vol.size_bytes > os.fstat(v.fd).st_size:
            os.ftruncate(v.fd, vol.size_bytes)
        v.handle = vol

    def volume_deleted(self, uuid: str) -> None:
        v = self.volumes.pop(uuid, None)
        if v is None:
            return
        self.exports.drop_volume(uuid)
        self._close_conns(v)
        self.metrics.remove_volume(uuid)
        os.close(v.fd)
        # Freeing a large, fragmented sparse file keeps the file system busy for up to a
        # second: never on the event loop, where it would stall every other volume's I/O.
        self._discard(v.path, self.data_dir / "snapshots" / uuid)

    @staticmethod
    def _discard(*paths: Path) -> None:
        def discard():
            for p in paths:
                if p.is_dir():
                    for f in p.iterdir():
                        f.unlink(missing_ok=True)
                    p.rmdir()
                else:
                    p.unlink(missing_ok=True)
        try:
            asyncio.get_running_loop().run_in_executor(None, discard)
        except RuntimeError:   # no loop running (a hook called outside the server)
            discard()

    def volume_online(self, uuid: str, online: bool) -> None:
        v = self._volume(uuid)
        v.online = bool(online)
        if not online:
            self.exports.drop_volume(uuid)
            self._close_conns(v)

    def volume_qos(self, uuid: str, policy: dict) -> None:
        v = self._volume(uuid)
        v.limiter.set_policy(policy)
        self._relimit(v)

    def tenant_qos(self, tenant: str, policy: dict) -> None:
        lim = self.tenant_limiters.get(tenant)
        if lim is None:
            lim = self.tenant_limiters[tenant] = Limiter(f"tenant {tenant}")
        lim.set_policy(policy)
        if not lim.active:
            del self.tenant_limiters[tenant]
        for v in self.volumes.values():
            self._relimit(v)

    def clone_bytes(self, src_uuid: str, dst_uuid: str) -> None:
        src = self._find_bytes(src_uuid)
        dst = self.volumes.get(dst_uuid)
        copy_sparse(src, dst.path if dst else self._vol_path(dst_uuid))
        if dst is not None and os.fstat(dst.fd).st_size < dst.size:
            os.ftruncate(dst.fd, dst.size)

    def snapshot_bytes(self, vol_uuid: str, snap_id: str) -> None:
        v = self._volume(vol_uuid)
        path = self._snap_path(vol_uuid, snap_id)
        path.parent.mkdir(exist_ok=True)
        copy_sparse(v.path, path)

    def restore_bytes(self, vol_uuid: str, snap_id: str) -> None:
        v = self._volume(vol_uuid)
        path = self._snap_path(vol_uuid, snap_id)
        if not path.exists():
            raise KeyError(f"snapshot {snap_id} of volume {vol_uuid}: no bytes")
        copy_sparse(path, v.path)
        if os.fstat(v.fd).st_size < v.size:
            os.ftruncate(v.fd, v.size)

    def drop_snapshot(self, vol_uuid: str, snap_id: str) -> None:
        self._snap_path(vol_uuid, snap_id).unlink(missing_ok=True)

    # ---- helpers ------------------------------------------------------------------------------
    def _volume(self, uuid: str) -> Volume:
        try:
            return self.volumes[uuid]
        except KeyError:
            raise KeyError(f"volume {uuid}: not known to the data plane") from None

    def _find_bytes(self, src: str) -> Path:
        """A volume's file, or a snapshot's (by snapshot id, under any volume)."""
        if src in self.volumes:
            return self.volumes[src].path
        _check_id(src, "source")
        found = list((self.data_dir / "snapshots").glob(f"*/{src}.img"))
        if len(found) != 1:
            raise KeyError(f"clone source {src}: no such volume or snapshot"
                           if not found else f"clone source {src}: ambiguous snapshot id")
        return found[0]

    def _relimit(self, v: Volume):
        parts = [p for p in v.handle.tenant.split("/") if p]
        tenants = ["/" + "/".join(parts[:i]) for i in range(len(parts), 0, -1)]
        chain = [v.limiter] if v.limiter.active else []
        chain += [self.tenant_limiters[t] for t in tenants if t in self.tenant_limiters]
        v.limiters = tuple(chain)

    def _close_conns(self, v: Volume):
        for conn in list(v.conns):
            conn.close_cleanly()

    def open_export(self, name: str) -> tuple[Volume | None, int, str]:
        """(volume, 0, '') or (None, NBD error reply type, message). An export opens on either
        VIP, whichever the login went through (multipath)."""
        e = self.exports.resolve(name)
        if e is None:
            return None, REP_ERR_UNKNOWN, ("no such export: never issued, or revoked since (volume "
                                           "offline or deleted, ACL changed); log in to the target")
        v = self.volumes.get(e.vol_uuid)
        if v is None or not v.online:
            self.exports.revoke(name)
            return None, REP_ERR_UNKNOWN, "the volume is offline or gone; log in again"
        if self.authority is None or not self.authority.may_access(initiator=e.initiator,
                                                                    vol_uuid=e.vol_uuid):
            self.exports.revoke(name)
            return None, REP_ERR_POLICY, (f"initiator {e.initiator} is no longer allowed by "
                                          f"the target's ACL")
        return v, 0, ""


class NbdConnection(asyncio.Protocol):
    """One NBD client. Parses its own buffer, so one data_received may carry many requests,
    and answers each batch with one transport write."""

    def __init__(self, dp: DataPlane):
        self.dp = dp
        self.transport = None
        self.buf = bytearray()
        self.state = "client_flags"
        self.no_zeroes = False
        self.vol: Volume | None = None
        self.paced = 0
        self.closing = False
        self.reading = True
        self.write_paused = False

    # ---- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        transport.write(HANDSHAKE.pack(NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))

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

    # ---- handshake and options --------------------------------------------------------------
    def _negotiate(self):
        buf = self.buf
        while not self.closing and self.state != "transmission":
            if self.state == "client_flags":
                if len(buf) < 4:
                    return
                flags = int.from_bytes(buf[:4], "big")
                del buf[:4]
                if flags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
                    return self._abort()
                self.no_zeroes = bool(flags & FLAG_NO_ZEROES)
                self.state = "options"
                continue
            if len(buf) < OPTION.size:
                return
            magic, opt, length = OPTION.unpack_from(buf)
            if magic != IHAVEOPT or length > MAX_OPTION:
                return self._abort()
            if len(buf) < OPTION.size + length:
                return
            payload = bytes(buf[OPTION.size:OPTION.size + length])
            del buf[:OPTION.size + length]
            self._option(opt, payload)
        if self.state == "transmission" and buf and not self.closing:
            self._transmission()

    def _opt_reply(self, opt: int, rtype: int, data: bytes = b""):
        self.transport.write(OPTION_REPLY.pack(REPLY_MAGIC, opt, rtype, len(data)) + data)

    def _option(self, opt: int, payload: bytes):
        if opt == OPT_ABORT:
            self._opt_reply(opt, REP_ACK)
            return self._abort()
        if opt == OPT_EXPORT_NAME:
            vol, _, why = self.dp.open_export(payload.decode("utf-8", "replace"))
            if vol is None:  # EXPORT_NAME has no way to say why: the protocol says close
                log.info("NBD EXPORT_NAME refused: %s", why)
                return self._abort()
            tail = b"" if self.no_zeroes else bytes(124)
            self.transport.write(struct.pack(">QH", vol.size, TRANSMISSION_FLAGS) + tail)
            return self._enter(vol)
        if opt in (OPT_INFO, OPT_GO):
            if len(payload) < 6:
                return self._opt_reply(opt, REP_ERR_INVALID, b"malformed INFO/GO request")
            nlen = int.from_bytes(payload[:4], "big")
            if len(payload) < 4 + nlen + 2:
                return self._opt_reply(opt, REP_ERR_INVALID, b"malformed INFO/GO request")
            name = payload[4:4 + nlen].decode("utf-8", "replace")
            nreq = int.from_bytes(payload[4 + nlen:6 + nlen], "big")
            reqs = struct.unpack_from(f">{nreq}H", payload, 6 + nlen) \
                if len(payload) >= 6 + nlen + 2 * nreq else ()
            vol, err, why = self.dp.open_export(name)
            if vol is None:
                return self._opt_reply(opt, err, why.encode())
            self._opt_reply(opt, REP_INFO,
                            INFO_EXPORT_REPLY.pack(INFO_EXPORT, vol.size, TRANSMISSION_FLAGS))
            if INFO_BLOCK_SIZE in reqs:
                self._opt_reply(opt, REP_INFO, struct.pack(">HIII", INFO_BLOCK_SIZE, 1, 4096,
                                                           MAX_REQUEST))
            self._opt_reply(opt, REP_ACK)
            if opt == OPT_GO:
                self._enter(vol)
            return
        self._opt_reply(opt, REP_ERR_UNSUP, b"option not supported by this server")

    def _enter(self, vol: Volume):
        self.vol = vol
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
        out = []
        nr = nw = br = bw = 0
        pos = 0
        end = len(buf)
        mv = memoryview(buf)
        try:
            while end - pos >= 28:
                magic, _flags, cmd, handle, offset, length = REQUEST.unpack_from(buf, pos)
                if magic != REQUEST_MAGIC:
                    log.info("NBD: bad request magic, closing")
                    mv.release()
                    return self._abort()
                if cmd == CMD_WRITE:
                    if length > MAX_REQUEST:
                        mv.release()
                        return self._abort()
                    if end - pos < 28 + length:
                        break
                    start = pos + 28
                    pos = start + length
                    if not vol.online:
                        out.append(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, errno.EIO, handle))
                        continue
                    if offset + length > size:
                        out.append(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, errno.ENOSPC, handle))
                        continue
                    try:
                        os.pwrite(fd, mv[start:pos], offset)
                    except OSError as e:
                        out.append(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, e.errno or errno.EIO, handle))
                        continue
                    reply = SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, 0, handle)
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
                if cmd == CMD_READ:
                    if not vol.online:
                        out.append(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, errno.EIO, handle))
                        continue
                    if length > MAX_REQUEST or offset + length > size:
                        out.append(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, errno.EINVAL, handle))
                        continue
                    try:
                        data = os.pread(fd, length, offset)
                    except OSError as e:
                        out.append(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, e.errno or errno.EIO, handle))
                        continue
                    if len(data) < length:  # never beyond the size: the file is as large
                        data += bytes(length - len(data))
                    reply = SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, 0, handle) + data
                    if limiters:
                        t = release_time(limiters, now, False, length)
                        if t > now:
                            self._hold(t, (reply, False, length, now))
                            continue
                    out.append(reply)
                    nr += 1
                    br += length
                elif cmd == CMD_FLUSH:
                    self._flush(handle)
                elif cmd == CMD_TRIM:
                    err = 0
                    if not vol.online:
                        err = errno.EIO
                    elif offset + length > size:
                        err = errno.ENOSPC
                    else:
                        try:
                            punch_hole(fd, offset, length)
                        except OSError as e:
                            err = e.errno or errno.EIO
                    out.append(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, err, handle))
                elif cmd == CMD_DISC:
                    pos = end
                    mv.release()
                    del buf[:]
                    if out:
                        self.transport.write(b"".join(out))
                    self._account(nr, nw, br, bw, now)
                    return self.close_cleanly()
                else:
                    out.append(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, errno.EINVAL, handle))
        finally:
            mv.release()
        if pos:
            del buf[:pos]
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if nr or nw:
            self._account(nr, nw, br, bw, now)

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
            err = 0 if exc is None else (getattr(exc, "errno", None) or errno.EIO)
            self.transport.write(SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, err, handle))
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
