"""The lab's run-dir files and process handling, shared by the supervisor (lab/supervisor.py)
and the commands that act on a lab without being its supervisor (`down`, `status`, `chaos
kill`): where the pid, state and log files are, whether a recorded process is still the same
one (pids get reused), and how a component's processes are stopped: its process group, then the
programs it runs in sessions of their own (lab/detached.py).

Files in the run dir: see lab/supervisor.py.
"""
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from lab import chaos, detached, topology
from lab.users import process_start_time as _start_time, users_dir

POLL_S = 0.05
STOP_TIMEOUT_S = 5.0      # per component, between SIGTERM and SIGKILL

log = logging.getLogger("lab.supervisor")


def default_run_dir() -> Path:
    return Path(f"/tmp/vancouver-lab-{topology.NET}")


def lock_path() -> Path:
    return Path(f"/tmp/.vancouver-lab-{topology.NET}.lock")


PRIVATE_UMASK = 0o077


def make_private(run_dir: Path) -> None:
    """The run dir holds secrets by design (SQLite state, vCenter's state.xml with CHAP
    secrets, configs, target.yaml, logs): it is made (or made again) mode 0700, and every file
    the lab creates from now on is its owner's only: umask 077 in this process, inherited by
    the supervisor and every component, as a systemd service's UMask=0077. Logs of an earlier
    lab, made under the default umask, become 0600."""
    os.umask(PRIVATE_UMASK)
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    logs = run_dir / "logs"
    logs.mkdir(mode=0o700, exist_ok=True)
    for path, mode in ((run_dir, 0o700), (logs, 0o700), *((f, 0o600) for f in logs.glob("*.log"))):
        try:
            os.chmod(path, mode)
        except OSError:   # not ours: _check_run_dir and the lock say so in their own words
            pass


def component_dirs(run_dir: Path, names) -> None:
    """Removes the named components' directories (their databases, configs, state, TLS keys):
    `down` leaves no state behind; logs/ stays."""
    for name in names:
        if name and "/" not in name and name not in ("logs", "target", "users"):
            shutil.rmtree(run_dir / name, ignore_errors=True)


def remove_lab_files(run_dir: Path, names) -> None:
    """Everything a stopped lab leaves in run_dir but logs/ and users.lock (lab/supervisor.py
    says why those stay): the target dir (no target.yaml without a running lab: its passwords
    died with it), the pid and state files, the runs' registrations (no lab, no users), the
    chaos rules (a `chaos ... ` without --for would otherwise hit the next lab of this run
    dir), and the named components' dirs (README: `lab down` removes the state)."""
    shutil.rmtree(run_dir / "target", ignore_errors=True)
    # Where labs kept Datera's TLS key before it moved into datera/: a run dir of theirs too.
    shutil.rmtree(run_dir / "tls", ignore_errors=True)
    for path in (state_file(run_dir), pid_file(run_dir), chaos.control_path(run_dir)):
        path.unlink(missing_ok=True)
    shutil.rmtree(users_dir(run_dir), ignore_errors=True)
    component_dirs(run_dir, names)
    for name in names:   # the Kubernetes node's pods and staged volumes (lab/kubernetes)
        if name and "/" not in name:
            _remove_unless_mounted(run_dir / f"{name}-node")


def _remove_unless_mounted(path: Path) -> None:
    """rmtree, unless something is still mounted under `path` (a killed node's pod volume:
    rmtree would delete through it into the volume; the node's next start sweeps it,
    lab/kubernetes/volumes.py NodeVolumes.sweep)."""
    if not path.is_dir():
        return
    root = str(path.resolve())
    try:
        mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()]
    except (OSError, IndexError):
        return
    if not any(m == root or m.startswith(root + "/") for m in mounts):
        shutil.rmtree(path, ignore_errors=True)


def pid_file(run_dir: Path) -> Path:
    return run_dir / "supervisor.pid"


def state_file(run_dir: Path) -> Path:
    return run_dir / "state.json"


def log_file(run_dir: Path, name: str) -> Path:
    return run_dir / "logs" / f"{name}.log"


def last_lines(path: Path, n: int) -> list[str]:
    """The last n non-empty lines of a log (read from its end: logs of long runs are big)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ["no log"]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-n:] if lines else ["log is empty"]


def last_line(path: Path) -> str:
    return last_lines(path, 1)[-1]


# ---- process identity (pid files survive their process; pids get reused) -------------------

def alive(pid: int, start_time: str | None = None) -> bool:
    st = _start_time(pid)
    return st is not None and (start_time is None or st == start_time)


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process is left in the process group."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
    return False


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in each child between fork and exec: if the supervisor dies, even by SIGKILL, the
    kernel sends the child SIGTERM, so a killed supervisor leaves no orphan behind."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def read_pid(run_dir: Path) -> int | None:
    """The live supervisor's pid for this run dir, or None."""
    try:
        pid, start = pid_file(run_dir).read_text().split()
    except (OSError, ValueError):
        return None
    return int(pid) if alive(int(pid), start) else None


def read_state(run_dir: Path) -> dict:
    try:
        return json.loads(state_file(run_dir).read_text())
    except (OSError, ValueError):
        return {}


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group, wait, then SIGKILL whatever is left of it."""
    pgid = proc.pid   # start_new_session made the child its group's leader
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.warning("pid %d ignored SIGTERM for %.0fs; killing its group", pgid, STOP_TIMEOUT_S)
    try:
        os.killpg(pgid, signal.SIGKILL)   # also anything the component left behind
    except ProcessLookupError:
        pass
    proc.wait()


# ---- down -----------------------------------------------------------------------------------

def stop_lab(run_dir: Path, timeout: float = 60.0) -> str:
    """Stops the lab whose supervisor owns run_dir and waits until it and every child is gone.
    Returns a one-line summary."""
    pid = read_pid(run_dir)
    recorded = read_state(run_dir).get("components", [])
    children = [c["pid"] for c in recorded]
    if pid is None:
        leftovers = [p for p in children if _group_alive(p)]
        for p in leftovers:   # the supervisor was killed with -9: its children are orphans
            try:
                os.killpg(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        programs = detached.stop_all(run_dir, STOP_TIMEOUT_S)   # they outlive their component
        if pid_file(run_dir).exists() or state_file(run_dir).exists() or \
                log_file(run_dir, "supervisor").exists():
            # A killed supervisor left its files behind (or an older lab its tls/). Only in a
            # lab's run dir: one that never held a lab keeps its own `target/` or `users/`.
            remove_lab_files(run_dir, [c.get("name") for c in recorded])
        if leftovers or programs:
            return (f"lab supervisor was gone; killed {len(leftovers)} orphaned component(s) "
                    f"and {len(programs)} detached program(s)")
        return f"no lab running in {run_dir}"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        for p in children:
            try:
                os.killpg(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        detached.stop_all(run_dir, STOP_TIMEOUT_S)
        return f"lab supervisor (pid {pid}) did not stop within {timeout:.0f}s; killed it"
    # The supervisor reaps its children and stops their detached programs before it exits;
    # this only guards against a bug.
    while any(_group_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    detached.stop_all(run_dir, STOP_TIMEOUT_S)
    return f"lab stopped (run dir {run_dir})"
