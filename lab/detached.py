"""Programs a component runs in sessions of their own, so that they outlive the component's
process: a real node's etcd and kube-apiserver are systemd units or static pods that keep
serving through a kubelet crash, and the lab's Kubernetes node does the same.

The component records each such program in <component dir>/detached/<name>.json:
{"pid": int, "start_time": str (clock ticks after boot, lab/users.py), "argv": [str]}. A record
names its program only while that pid has that start time and that command line, so a reused
pid is never adopted nor signalled. A restarted component adopts the live ones; the supervisor
stops them when the component stops for good (`lab down`, a failed start, the restart limit
hit, `lab up` or `lab down` after a crashed supervisor) and `python -m lab chaos kill
<component> --all` kills them with it.
"""
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from lab.users import process_start_time

DIR = "detached"
POLL_S = 0.05
T = TypeVar("T")


@dataclass(frozen=True)
class Record:
    name: str
    pid: int
    start_time: str
    argv: tuple[str, ...]

    def live(self) -> bool:
        """True while the recorded process runs (not a zombie) with its recorded identity."""
        if process_start_time(self.pid) != self.start_time:
            return False
        return _cmdline(self.pid) == self.argv


EXEC_WAIT_S = 2.0


def _cmdline(pid: int) -> tuple[str, ...]:
    """The process's argv (proc(5) /proc/<pid>/cmdline); () when gone or not exec'd yet."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(a.decode(errors="replace") for a in raw.split(b"\0")[:-1])


def records_dir(work: Path) -> Path:
    return work / DIR


def record(work: Path, name: str, pid: int, argv: list[str]) -> Record | None:
    """Records a started program; None when it is already gone (nothing to record). Waits
    (up to EXEC_WAIT_S) until its exec has set its command line: Popen with vfork returns
    while the kernel still builds the new image, and /proc/<pid>/cmdline then reads empty
    (measured: 145 of 2,000 `sleep` starts), so live() right after would call the program
    a stranger and a chaos kill would miss it."""
    start = process_start_time(pid)
    if start is None:
        return None
    deadline = time.monotonic() + EXEC_WAIT_S
    while not _cmdline(pid) and process_start_time(pid) == start \
            and time.monotonic() < deadline:
        time.sleep(0.001)
    rec = Record(name, pid, start, tuple(argv))
    d = records_dir(work)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{name}.tmp"
    tmp.write_text(json.dumps({"pid": pid, "start_time": start, "argv": list(argv)}) + "\n")
    tmp.replace(d / f"{name}.json")
    return rec


def forget(work: Path, name: str) -> None:
    (records_dir(work) / f"{name}.json").unlink(missing_ok=True)


def read(work: Path) -> list[Record]:
    """Every record in the component dir, live or not (a torn or foreign file is skipped)."""
    out = []
    for path in sorted(records_dir(work).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
            out.append(Record(path.stem, int(doc["pid"]), str(doc["start_time"]),
                              tuple(doc["argv"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def _signal(rec: Record, sig: int) -> None:
    """The program's whole session group (it is its group's leader), or the pid alone."""
    try:
        if os.getpgid(rec.pid) == rec.pid:
            os.killpg(rec.pid, sig)
        else:
            os.kill(rec.pid, sig)
    except ProcessLookupError:
        pass


def kill(work: Path) -> list[Record]:
    """SIGKILL every live recorded program of a component (the chaos switch); the records
    stay, so the restarted component finds them dead and starts the programs afresh."""
    live = [r for r in read(work) if r.live()]
    for r in live:
        _signal(r, signal.SIGKILL)
    return live


# How long one program may take to end on SIGTERM before SIGKILL. kube-apiserver 1.20's
# graceful shutdown waits for its clients' connections to close (up to 60 s; measured: still
# running 30 s after SIGTERM while a client held a watch), and buys the lab nothing: etcd
# has every write it acknowledged. etcd, the controller-manager and the scheduler end within
# a fraction of a second.
GRACE_S = 1.0


def terminate_in_order(programs: Sequence[T], alive: Callable[[T], bool],
                       send: Callable[[T, int], None], timeout: float,
                       grace: float = GRACE_S) -> None:
    """SIGTERM each program in the order given (dependents first: kube-apiserver before the
    etcd it stores in), each given `grace` s before SIGKILL, the next only once the one
    before is gone; the whole within about `timeout` s. Why in turn: signalled at once, etcd
    was gone first and kube-apiserver's shutdown then waited on it until the SIGKILL (every
    `lab down` took the supervisor's whole 5 s budget)."""
    deadline = time.monotonic() + timeout
    for p in programs:
        if alive(p):
            send(p, signal.SIGTERM)
        until = min(deadline, time.monotonic() + grace)
        while alive(p) and time.monotonic() < until:
            time.sleep(POLL_S)
        if alive(p):
            send(p, signal.SIGKILL)


def stop(work: Path, timeout: float = 5.0) -> list[Record]:
    """Stops the live recorded programs, last started first (terminate_in_order), within
    `timeout` s, then drops the records. Returns the records that were live."""
    live = sorted((r for r in read(work) if r.live()), key=lambda r: float(r.start_time),
                  reverse=True)
    terminate_in_order(live, Record.live, _signal, timeout)
    deadline = time.monotonic() + timeout
    while any(r.live() for r in live) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    for r in read(work):
        forget(work, r.name)
    return live


def stop_all(run_dir: Path, timeout: float = 5.0) -> list[Record]:
    """stop() for every component dir of a run dir."""
    out = []
    for d in sorted(run_dir.glob(f"*/{DIR}")):
        out += stop(d.parent, timeout)
    return out
