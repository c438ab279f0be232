"""Which demo runs use a lab: `lab status` lists them, `lab down` refuses to stop a lab in use.

A run that uses the lab (fixtures/target.py, in the controller or the only process) registers
itself as one file per process, written atomically:

    <run dir>/users/<pid>.json   {"pid", "start_time", "report_dir", "started"}

and removes it when it ends. A run killed with -9 cannot remove it, so an entry whose process
is gone, or whose pid now belongs to another process (start time differs), is stale: readers
ignore it and remove it. The same model as a pid file checked against /proc, or `umount`
refusing a busy mount ("target is busy") unless forced.

Registering and `lab down` both hold an flock on <run dir>/users.lock (locked()): down holds it
from its in-use check until the lab is gone, and a registration checks under it that the
supervisor still lives. So either the run registers first and down refuses, or down wins and
the registration fails with LabStopping; never a run registered on a lab being stopped.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


def users_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "users"


def lock_file(run_dir: Path) -> Path:
    # Beside users/, not in it: the supervisor removes users/ when it stops, under down's lock.
    return Path(run_dir) / "users.lock"


@contextmanager
def locked(run_dir: Path):
    """Holds the run dir's users lock (flock, exclusive; blocks until free). OSError when the
    run dir cannot hold the lock file (missing, or not a directory)."""
    fd = os.open(lock_file(run_dir), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)   # closing the only descriptor releases the flock


class LabStopping(RuntimeError):
    """A registration lost the race with `lab down` (or came after it): one line."""


def supervisor_alive(run_dir: Path) -> bool:
    """The supervisor of <run dir>/supervisor.pid ("<pid> <start time>") still lives."""
    try:
        pid, start = (Path(run_dir) / "supervisor.pid").read_text().split()
        return process_start_time(int(pid)) == start
    except (OSError, ValueError):
        return False


def process_start_time(pid: int) -> str | None:
    """The process's start, in clock ticks after boot (proc(5), /proc/<pid>/stat field 22,
    `starttime`), as a string; None when it is gone, a zombie or dead. With the pid, the
    identity of a process (pids get reused); the supervisor's pid file, run registrations and
    detached records use it. Not psutil's create_time(): that adds /proc/stat's `btime`, which
    follows the wall clock (NTP steps and slews move it by a second), so one process could
    read as two and a live etcd as "not the recorded program"."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: the fields after it follow its last ")"
    fields = stat[stat.rindex(b")") + 2:].split()
    return None if fields[0] in (b"Z", b"X", b"x") else fields[19].decode()


@dataclass(frozen=True)
class RunUse:
    """One run using the lab: its pid, report directory ('' if none) and start (UTC);
    `scenarios`: it runs demo scenarios (it makes demo resources), not only tests."""
    pid: int
    start_time: str
    report_dir: str
    started: str
    scenarios: bool = True

    def describe(self) -> str:
        where = f"reports {self.report_dir}" if self.report_dir else "no report dir"
        return f"pid {self.pid} ({where}, started {self.started})"


def register(run_dir: Path, report_dir: Path | str | None = None,
             pid: int | None = None, scenarios: bool = True) -> Path:
    """Records that process `pid` (default: this one) uses the lab in run_dir. Returns the
    entry's path (give it to unregister). LabStopping when no supervisor runs the lab any
    more (`lab down` stopped it, or is stopping it while we waited for its lock)."""
    with locked(run_dir):
        if not supervisor_alive(run_dir):
            raise LabStopping(f"the lab in {run_dir} is stopping or stopped (`python -m lab "
                              "down`): this run is not using it; start one with "
                              "`python -m lab up` (or run without --target)")
        return _write_entry(run_dir, report_dir, pid, scenarios)


def _write_entry(run_dir: Path, report_dir: Path | str | None, pid: int | None,
                 scenarios: bool = True) -> Path:
    pid = os.getpid() if pid is None else pid
    use = RunUse(pid=pid, start_time=process_start_time(pid) or "",
                 report_dir=str(report_dir or ""),
                 started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                 scenarios=scenarios)
    folder = users_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pid}.json"
    tmp = folder / f".{pid}.json.tmp"
    tmp.write_text(json.dumps(asdict(use)) + "\n")
    tmp.replace(path)
    return path


def unregister(entry: Path) -> None:
    Path(entry).unlink(missing_ok=True)


def live_runs(run_dir: Path) -> list[RunUse]:
    """The runs that use the lab now, oldest first; stale entries are removed."""
    runs: list[RunUse] = []
    try:
        entries = sorted(users_dir(run_dir).glob("*.json"))
    except OSError:
        return []
    for entry in entries:
        try:
            use = RunUse(**json.loads(entry.read_text()))
        except (OSError, ValueError, TypeError):
            use = None
        if use is None or not use.start_time or \
                process_start_time(use.pid) != use.start_time:
            entry.unlink(missing_ok=True)   # a run that died without unregistering
            continue
        runs.append(use)
    return sorted(runs, key=lambda u: u.started)


def in_use_message(runs: list[RunUse]) -> str:
    """One line naming the runs, for `down`'s refusal."""
    return (f"in use by {len(runs)} run{'s' if len(runs) > 1 else ''}: "
            + "; ".join(u.describe() for u in runs))


# A run that started the lab stops it when it ends; when another run still uses it then, the
# last run to leave stops it instead (the mark says so; it goes with the lab's users/).
_STOP_MARK = "stop-when-unused"


def mark_stop_when_unused(run_dir: Path) -> None:
    users_dir(run_dir).mkdir(parents=True, exist_ok=True)
    (users_dir(run_dir) / _STOP_MARK).touch()


def stop_when_unused(run_dir: Path) -> bool:
    return (users_dir(run_dir) / _STOP_MARK).exists()
