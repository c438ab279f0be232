"""clients/locks.py: a lock file is gone once released, however the block ends; holders
exclude each other even while releasers remove the file under waiters (the inode check);
sweep removes only the files nobody holds."""
from __future__ import annotations

import os
import threading

import pytest

from clients import locks


def test_the_file_is_removed_when_the_block_ends(tmp_path):
    path = tmp_path / "vancouver-x.lock"
    with locks.held(path):
        assert path.is_file()
    assert not path.exists()
    with pytest.raises(RuntimeError):
        with locks.held(path):
            raise RuntimeError("the block failed")
    assert not path.exists()


def test_holders_exclude_each_other_while_each_release_removes_the_file(tmp_path):
    """Threads open the file themselves (flock locks an open file description, so they
    contend as processes do); inside, an O_EXCL marker proves nobody else is."""
    path, marker = tmp_path / "vancouver-x.lock", tmp_path / "inside"
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(200):
                with locks.held(path):
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                    os.unlink(marker)
        except BaseException as e:   # noqa: BLE001  (reported by the test)
            errors.append(e)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert not path.exists() and not marker.exists()


def test_sweep_removes_unheld_lock_files_and_leaves_a_held_one(tmp_path):
    stale = tmp_path / "vancouver-guest-0-a.lock"
    stale.write_text("")
    other = tmp_path / "something-else.lock"
    other.write_text("")
    busy = tmp_path / "vancouver-guest-0-b.lock"
    inside, leave = threading.Event(), threading.Event()

    def holder() -> None:
        with locks.held(busy):
            inside.set()
            leave.wait(30)
    t = threading.Thread(target=holder)
    t.start()
    try:
        assert inside.wait(30)
        assert locks.sweep(tmp_path, "vancouver-guest-0-*.lock") == [stale]
        assert busy.is_file() and other.is_file() and not stale.exists()
    finally:
        leave.set()
        t.join(30)
    assert not busy.exists()
