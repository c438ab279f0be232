"""Byte copies between volumes and images, as Cinder's volume manager does them on the host
(copy_image_to_volume, generic migration's copy_volume).

An endpoint is a local path (a Ceph pool's sparse file, a Glance image file) or an nbd:// URI
(a Datera volume after the host's initiator login). Copies skip holes: file to file with
SEEK_DATA/SEEK_HOLE here, anything with an NBD end through Debian's nbdcopy, which reads a
file's extents and writes only data because the destination is always a fresh (zeroed) volume.
"""
import os
import subprocess

from lab.openstack.cinder.backends import BackendError

CHUNK = 4 << 20
NBDCOPY_TIMEOUT_S = 600


def is_uri(endpoint: str) -> bool:
    return endpoint.startswith("nbd://")


def copy_bytes(src: str, dst: str, dst_size: int) -> None:
    """Copies src's bytes to the start of dst; dst keeps its size `dst_size` (bytes)."""
    if not is_uri(src) and not is_uri(dst):
        with open(src, "rb") as fin, open(dst, "r+b") as fout:
            copy_sparse(fin, fout)
    else:
        nbdcopy(src, dst, destination_is_zero=True, what="volume data")
    if not is_uri(dst):
        os.truncate(dst, dst_size)   # nbdcopy sizes a file destination like its source


def copy_sparse(fin, fout) -> None:
    """fin's data extents (SEEK_DATA/SEEK_HOLE) onto fout at the same offsets, CHUNK bytes at
    a time; fout's bytes over fin's holes are left as they are (callers give a fresh or
    truncated file, so they read as zeros)."""
    end = os.fstat(fin.fileno()).st_size
    offset = 0
    while offset < end:
        try:
            data_at = os.lseek(fin.fileno(), offset, os.SEEK_DATA)
        except OSError:      # ENXIO: only a hole is left
            break
        hole_at = os.lseek(fin.fileno(), data_at, os.SEEK_HOLE)
        pos = data_at
        while pos < hole_at:
            chunk = os.pread(fin.fileno(), min(CHUNK, hole_at - pos), pos)
            if not chunk:
                break
            os.pwrite(fout.fileno(), chunk, pos)
            pos += len(chunk)
        offset = hole_at


def nbdcopy(src: str, dst: str, *, destination_is_zero: bool, what: str) -> None:
    """Debian's nbdcopy from src to dst (paths or nbd:// URIs). destination_is_zero: dst is a
    fresh volume, so holes are skipped; otherwise zeros are written too (a restore onto a
    volume that may hold old data). Raises BackendError naming `what` with nbdcopy's last
    stderr line."""
    flags = ["--destination-is-zero"] if destination_is_zero else []
    proc = subprocess.run(["nbdcopy", *flags, src, dst], capture_output=True, text=True,
                          timeout=NBDCOPY_TIMEOUT_S)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        raise BackendError(f"copying {what} failed: {lines[-1][:200]}")
