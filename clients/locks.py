"""Lock files that do not outlive their use: an exclusive flock(2) on a file in the temp dir,
the file removed by whoever releases it, so a machine that ran the demo for weeks has no
heap of `vancouver-*.lock` files (a new user found them left in /tmp after every run).

Removing a lock file races, unless every user checks what it locked: a process waiting in
flock on the file the holder is about to unlink would get the lock on a name-less inode,
while a third process creates a new file under the name and locks that; both would run.
So `held()` takes the lock, then compares the inode it locked with the one the path names
now, and starts over when they differ (systemd's make_lock_file/release_lock_file,
src/basic/lockfile-util.c, do the same: unlink while holding the lock, re-check after
locking). Used by the harness (fixtures/openstack/guest_image.py), hence its place in
clients/ beside scratch.py.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def _open_locked(path: Path, blocking: bool) -> int | None:
    """An fd holding the flock on the file `path` names now; None when not blocking and
    another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)   # its holder removed it while we waited: lock the current one


def _release(fd: int, path: Path) -> None:
    try:
        if _same_file(fd, path):
            os.unlink(path)
    finally:
        os.close(fd)


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Holds the exclusive lock `path` (created if missing) for the `with` block, waiting for
    another holder; the file is removed when the block ends (however it ends). A process
    killed inside the block leaves the file: `sweep` removes it."""
    fd = _open_locked(Path(path), blocking=True)
    try:
        yield
    finally:
        _release(fd, Path(path))


def sweep(root: Path, pattern: str) -> list[Path]:
    """Removes the lock files `root/pattern` (glob) that this uid owns and nobody holds (a
    killed holder's, or an older run's); returns them. One that is held is left alone."""
    gone = []
    for path in Path(root).glob(pattern):
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_uid != os.getuid():
                continue
            fd = _open_locked(path, blocking=False)
        except OSError:
            continue
        if fd is not None:
            _release(fd, path)
            gone.append(path)
    return gone
