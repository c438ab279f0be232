"""The lab's cinder-backup driver: Cinder's posix driver (cinder/backup/drivers/posix.py on
chunkeddriver.py), storing a backup as files under <run dir>/backup/<container>/.

Layout per backup, as the chunked driver names its objects (prefix
`volume_<volume id>/<YYYYmmddHHMMSS>/az_nova_backup_<backup id>`):
    <prefix>-00001 ...   the changed chunks, zlib-compressed (the driver's default)
    <prefix>_metadata    JSON: version, backup/volume ids, parent id, the objects (offset,
                         length, md5, compression) and the volume's metadata
    <prefix>_sha256file  JSON: one sha256 per chunk of the whole volume
An incremental backup compares its chunks' sha256 with its parent's sha256file and stores
only those that differ; a restore applies the chain from the full backup to the requested
one, then writes the whole image onto the volume (zeros too: the target may hold old data).

Endpoints are a local file (Ceph pool) or an nbd:// URI (Datera, after the host's login);
an NBD volume is staged through a sparse temporary file with Debian's nbdcopy.
"""
import contextlib
import hashlib
import json
import os
import tempfile
import time
import zlib
from pathlib import Path

from lab.openstack.cinder.backends import BackendError
from lab.openstack.cinder.backends.copy import copy_sparse, is_uri, nbdcopy

SERVICE = "cinder.backup.drivers.posix.PosixBackupDriver"
CHUNK = 8 << 20          # bytes per chunk (the lab's backup_file_size / sha_block_size)


class PosixBackupDriver:
    def __init__(self, root: Path, default_container: str = "backup"):
        self.root = Path(root)
        self.default_container = default_container

    # -- names --------------------------------------------------------------------------
    @staticmethod
    def prefix(volume_id: str, backup_id: str, when: float | None = None) -> str:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(when or time.time()))
        return f"volume_{volume_id}/{stamp}/az_nova_backup_{backup_id}"

    def _dir(self, container: str, prefix: str) -> Path:
        return self.root / container / prefix

    def _read_json(self, container: str, prefix: str, kind: str) -> dict:
        path = self._dir(container, prefix).parent / f"{Path(prefix).name}_{kind}"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise BackendError(f"backup object {container}/{prefix}_{kind} is missing") \
                from None

    def _write_json(self, container: str, prefix: str, kind: str, doc: dict) -> None:
        base = self._dir(container, prefix)
        base.parent.mkdir(parents=True, exist_ok=True)
        (base.parent / f"{base.name}_{kind}").write_text(json.dumps(doc))

    # -- staging ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _readable(self, endpoint: str):
        if not is_uri(endpoint):
            yield endpoint
            return
        with tempfile.TemporaryDirectory(prefix="backup-") as tmp:
            staged = os.path.join(tmp, "volume")
            nbdcopy(endpoint, staged, destination_is_zero=False, what="backup data")
            yield staged

    # -- backup -------------------------------------------------------------------------
    def backup(self, *, backup_id: str, volume_id: str, container: str, prefix: str,
               source: str, size_bytes: int, parent: tuple[str, str] | None,
               parent_id: str | None, volume_metadata: dict) -> int:
        """Writes the backup; returns its object count. parent: (container, prefix) of the
        backup an incremental one builds on."""
        parent_shas = self._read_json(*parent, "sha256file")["sha256s"] if parent else None
        base = self._dir(container, prefix)
        base.parent.mkdir(parents=True, exist_ok=True)
        objects, shas = [], []
        with self._readable(source) as path, open(path, "rb") as f:
            for index, offset in enumerate(range(0, size_bytes, CHUNK)):
                length = min(CHUNK, size_bytes - offset)
                data = _pread_data(f, offset, length)
                sha = hashlib.sha256(data).hexdigest()
                shas.append(sha)
                if parent_shas is not None and index < len(parent_shas) \
                        and parent_shas[index] == sha:
                    continue                    # unchanged since the parent
                if parent_shas is None and data.count(0) == len(data):
                    continue                    # a full backup skips all-zero chunks
                name = f"{base.name}-{len(objects) + 1:05d}"
                (base.parent / name).write_bytes(zlib.compress(data))
                objects.append({name: {"offset": offset, "length": length,
                                       "md5": hashlib.md5(data).hexdigest(),
                                       "compression": "zlib"}})
        self._write_json(container, prefix, "sha256file",
                         {"backup_id": backup_id, "volume_id": volume_id,
                          "chunk_size": CHUNK, "sha256s": shas})
        self._write_json(container, prefix, "metadata",
                         {"version": "1.0.0", "backup_id": backup_id, "volume_id": volume_id,
                          "parent_id": parent_id,
                          "objects": objects, "volume_meta": json.dumps(volume_metadata),
                          "created_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return len(objects) + 2

    # -- restore ------------------------------------------------------------------------
    def restore(self, chain: list[tuple[str, str]], target: str, size_bytes: int) -> dict:
        """Applies `chain` (container, prefix), full backup first, onto `target` (all of its
        `size_bytes`); returns the volume metadata the last backup recorded."""
        meta = {}
        with tempfile.TemporaryDirectory(prefix="restore-") as tmp:
            staged = os.path.join(tmp, "volume")
            with open(staged, "wb") as out:
                out.truncate(size_bytes)
                for container, prefix in chain:
                    doc = self._read_json(container, prefix, "metadata")
                    folder = self._dir(container, prefix).parent
                    for obj in doc["objects"]:
                        (name, info), = obj.items()
                        data = zlib.decompress((folder / name).read_bytes())
                        if hashlib.md5(data).hexdigest() != info["md5"]:
                            raise BackendError(f"backup object {name} is corrupt (md5)")
                        os.pwrite(out.fileno(), data, info["offset"])
                    meta = json.loads(doc.get("volume_meta") or "{}")
            if is_uri(target):
                nbdcopy(staged, target, destination_is_zero=False, what="backup data")
            else:
                with open(staged, "rb") as src, open(target, "r+b") as dst:
                    dst.truncate(0)
                    copy_sparse(src, dst)
                    dst.truncate(size_bytes)
        return meta

    def exists(self, container: str, prefix: str) -> bool:
        base = self._dir(container, prefix)
        return (base.parent / f"{base.name}_metadata").exists()

    # -- delete -------------------------------------------------------------------------
    def delete(self, container: str, prefix: str) -> None:
        base = self._dir(container, prefix)
        folder = base.parent
        if not folder.exists():
            return
        for path in folder.glob(f"{base.name}*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):      # drop the now empty timestamp/volume folders
            folder.rmdir()
            folder.parent.rmdir()


def _pread_data(f, offset: int, length: int) -> bytes:
    """The chunk's bytes; holes of a sparse file are read as zeros without touching disk."""
    fd = f.fileno()
    try:
        data_at = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError:
        return bytes(length)
    if data_at >= offset + length:
        return bytes(length)
    data = os.pread(fd, length, offset)
    return data + bytes(length - len(data))
