"""Scratch directories under the system temp dir that never outlive their owner process.

`make_dir(kind)` -> Path `<tmp>/vancouver-<kind>-<pid>-<random>/` (mode 0700), removed by
`remove(path)` when its user is done, at the latest when the process exits (atexit: a normal
end, an exception, Ctrl-C, and SIGTERM where the process turns it into SystemExit, as the
harness and the lab's services do). A process killed outright (SIGKILL, OOM) cannot clean
up: every `make_dir` of a kind first removes the directories of that kind whose owner pid is
gone, as pytest's numbered temp dirs do with their lock files (_pytest/pathlib.py).
Directories of the older pid-less names (`vancouver-<kind>-<random>`) are removed once a day
old. Used by the harness (fixtures/) and the lab alike, hence its place in clients/.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

LEGACY_MAX_AGE_S = 24 * 3600
_lock = threading.Lock()
_owned: dict[Path, int] = {}   # path -> the pid that made it (a forked child exits too)


def pid_alive(pid: int) -> bool:
    """The process `pid` exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):   # no such pid (a thread ident is no pid)
        return False
    except PermissionError:
        return True     # another user's live process
    return True


def sweep(kind: str, root: Path | None = None) -> list[Path]:
    """Removes the `kind` directories whose owner is gone (and pid-less ones a day old);
    returns them. Only directories owned by this uid are touched."""
    root = Path(root or tempfile.gettempdir())
    named = re.compile(rf"vancouver-{re.escape(kind)}-(?:(\d+)-)?[A-Za-z0-9_]{{8}}")
    gone = []
    for path in root.glob(f"vancouver-{kind}-*"):
        m = named.fullmatch(path.name)
        if not m:
            continue
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if st.st_uid != os.getuid() or not path.is_dir() or path.is_symlink():
            continue
        if m.group(1) is not None:
            stale = int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1)))
        else:
            stale = time.time() - st.st_mtime > LEGACY_MAX_AGE_S
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
    return gone


def make_dir(kind: str, root: Path | None = None) -> Path:
    """A new private directory of `kind` ("endless", "path", "relay", ...), removed at this
    process's exit at the latest."""
    sweep(kind, root)
    path = Path(tempfile.mkdtemp(prefix=f"vancouver-{kind}-{os.getpid()}-",
                                 dir=str(root) if root else None))
    with _lock:
        _owned[path] = os.getpid()
    return path


def remove(path: Path | str) -> None:
    """Removes a directory made by make_dir (missing is fine)."""
    path = Path(path)
    with _lock:
        _owned.pop(path, None)
    shutil.rmtree(path, ignore_errors=True)


@atexit.register
def _remove_owned() -> None:
    with _lock:
        owned = [p for p, pid in _owned.items() if pid == os.getpid()]
    for path in owned:
        shutil.rmtree(path, ignore_errors=True)
