"""A lab volume's bytes: one sparse file, and what the data plane asks of its layout.

- Zeroing is what a real array does for WRITE SAME/UNMAP: a metadata change, never a data
  write. Without NO_HOLE the range becomes a hole (fallocate PUNCH_HOLE|KEEP_SIZE); with
  NO_HOLE it stays provisioned and reads as zeros (fallocate ZERO_RANGE, or PUNCH_HOLE then
  allocate where the file system has no ZERO_RANGE, e.g. tmpfs). Only a file system without
  either falls back to writing zeros, which is the one case NBD's FAST_ZERO refuses.
- The layout (allocated data vs holes) comes from the file system itself through
  lseek(SEEK_DATA/SEEK_HOLE), for NBD's `base:allocation` and for structured reads.
"""
import ctypes
import ctypes.util
import errno
import os
import re
from pathlib import Path

from lab.datera import nbd_proto as P
from lab.datera.contract import VolumeHandle
from lab.datera.qos import Limiter

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOSYS)
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ZERO_CHUNK = 1 << 20


def fallocate(fd: int, mode: int, offset: int, length: int):
    """fallocate(2); raises OSError with the call's errno."""
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def punch_hole(fd: int, offset: int, length: int):
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)


def nbd_error(e: OSError) -> int:
    """An OSError as one of the NBD error values (proto.md "Error values")."""
    code = e.errno
    if code in (errno.EDQUOT, errno.EFBIG, errno.ENOSPC):
        return P.ENOSPC
    if code in _UNSUPPORTED:
        return P.ENOTSUP
    return code if code in (P.EPERM, P.EIO, errno.ENOMEM, P.EINVAL, P.EOVERFLOW) else P.EIO


def write_zeroes(fd: int, offset: int, length: int, no_hole: bool, fast_only: bool) -> int:
    """Makes [offset, offset+length) read as zeros; 0 or an NBD error value.

    fast_only (NBD_CMD_FLAG_FAST_ZERO): ENOTSUP, contents untouched, where only writing zeros
    would do."""
    try:
        if not no_hole:
            punch_hole(fd, offset, length)
            return 0
        try:
            fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length)
            return 0
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
        fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length)   # fails before changing anything
        punch_hole(fd, offset, length)
        fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length)
        return 0
    except OSError as e:
        if e.errno not in _UNSUPPORTED:
            return nbd_error(e)
    if fast_only:
        return P.ENOTSUP
    try:
        zeros = bytes(min(length, ZERO_CHUNK))
        end = offset + length
        while offset < end:
            offset += os.pwrite(fd, zeros[:end - offset], offset)
        return 0
    except OSError as e:
        return nbd_error(e)


def extents(fd: int, offset: int, end: int, limit: int = P.MAX_EXTENTS) -> list[tuple[int, int]]:
    """The file's layout over [offset, end) as (length, base:allocation flags): holes
    STATE_HOLE|STATE_ZERO, data 0; consecutive, at most `limit` of them (so possibly short
    of `end`), at least one when offset < end. Bytes past the file's end read as a hole."""
    out = []
    pos = offset
    while pos < end and len(out) < limit:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:   # ENXIO: nothing but hole from pos to the end
                raise
            data = end
        if data > pos:
            stop = min(data, end)
            out.append((stop - pos, P.STATE_HOLE | P.STATE_ZERO))
        else:
            stop = min(os.lseek(fd, pos, os.SEEK_HOLE), end)
            out.append((stop - pos, 0))
        pos = stop
    return out


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


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _SAFE_ID.fullmatch(value):
        raise ValueError(f"{what} {value!r}: expected letters, digits, '.', '_' or '-'")
    return value


class Volume:
    """The data plane's side of one volume: its file, state, limiters, metrics, connections."""
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
