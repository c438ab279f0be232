"""kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go, 1.20): how configMap and secret
volumes are written so that a pod never sees half an update.

Layout of a volume directory `dir` after a write:

    dir/..2026_12_01_01_30_00.483920117/   the payload's files (modes as asked), dirs 0755
    dir/..data -> ..2026_12_01_01_30_00.483920117
    dir/<first path component> -> ..data/<first path component>   (one per top-level entry)

A write puts the new payload into a fresh timestamped directory, points `..data_tmp` at it
and renames that over `..data` (rename(2) of a symlink is atomic), adds the user-visible
symlinks of new paths, removes those of paths the payload dropped, then removes the old
timestamped directory. A payload equal to what `..data` holds (bytes and modes) is not
written again (shouldWritePayload).
"""
import os
import random
import shutil
import time
from pathlib import Path, PurePosixPath

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"

Payload = dict[str, tuple[bytes, int]]      # relative path -> (bytes, file mode)


class PayloadError(ValueError):
    """A payload path kubelet refuses (absolute, `..`, or starting with `..`)."""


def validate_path(rel: str) -> None:
    """validatePath: relative, no `..` element, not starting with `..` (the writer's own
    names). Raises PayloadError."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute():
        raise PayloadError(f"invalid path {rel!r}: must be relative")
    if ".." in p.parts:
        raise PayloadError(f"invalid path {rel!r}: must not contain '..'")
    if rel.startswith(".."):
        raise PayloadError(f"invalid path {rel!r}: must not start with '..'")


def _timestamp_dir(root: Path) -> Path:
    # ioutil.TempDir(dir, "..2006_01_02_15_04_05.") then chmod 0755
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    while True:
        d = root / f"{stamp}{random.randrange(10**9)}"
        try:
            d.mkdir(mode=0o755)
        except FileExistsError:
            continue
        os.chmod(d, 0o755)
        return d


def current(root: Path) -> Payload | None:
    """What `..data` holds now -> Payload, None when nothing was written yet."""
    data = root / DATA_DIR
    if not data.is_symlink():
        return None
    base = root / os.readlink(data)
    out: Payload = {}
    for dirpath, _dirs, files in os.walk(base):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(base))] = (p.read_bytes(), os.stat(p).st_mode & 0o7777)
    return out


def _visible(payload) -> set[str]:
    return {PurePosixPath(rel).parts[0] for rel in payload}


def write(root: Path, payload: Payload) -> bool:
    """Writes `payload` into the volume directory `root` atomically -> False when `..data`
    already held exactly it (nothing written). Raises PayloadError, OSError."""
    for rel in payload:
        validate_path(rel)
    root.mkdir(parents=True, exist_ok=True)
    old = current(root)
    visible_ok = all((root / name).is_symlink() for name in _visible(payload))
    if old == payload and visible_ok:
        return False
    old_ts = root / os.readlink(root / DATA_DIR) if old is not None else None
    ts = _timestamp_dir(root)
    for rel, (data, mode) in payload.items():
        path = ts / rel
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
    tmp = root / NEW_DATA_DIR
    tmp.unlink(missing_ok=True)
    os.symlink(ts.name, tmp)
    os.rename(tmp, root / DATA_DIR)
    for name in _visible(payload):
        link = root / name
        if not link.is_symlink():
            if link.exists():     # a plain file or dir from before: the payload owns the name
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            os.symlink(f"{DATA_DIR}/{name}", link)
    for name in _visible(old or {}) - _visible(payload):
        (root / name).unlink(missing_ok=True)
    if old_ts is not None and old_ts != ts:
        shutil.rmtree(old_ts, ignore_errors=True)
    return True
