"""The lab supervisor: starts the selected components, watches them, stops them.

One supervisor process per lab. It runs in its own session, starts every component as a child
in its own process group (so a signal to the group reaches everything the component spawned),
waits for each to be healthy, writes the target directory, then waits for SIGTERM/SIGINT and
stops the children in reverse start order (SIGTERM the group, wait, SIGKILL the group).

While the lab runs it restarts what dies as systemd's `Restart=on-failure` does (restart.py:
backoff, a restart count and the last exit reason per component, a give-up limit like
StartLimitBurst/StartLimitIntervalSec); a component that stopped on SIGTERM/SIGINT/SIGHUP/
SIGPIPE or exited 0 is left alone, and a stopping lab restarts nothing.

Files in the run dir:
    supervisor.pid        "<pid> <start time>" while the supervisor lives
    state.json            each component's address, pid, state, restarts and last exit,
                          for `status` and `down`
    users/<pid>.json      the runs that use the lab (lab/users.py)
    chaos.json            the chaos switch's rules (lab/chaos.py), read by every component
    users.lock            the lock `down` and a registering run share (lab/users.py)
    logs/<name>.log       each component's stdout+stderr (logs/supervisor.log: the supervisor)
    <name>/               each component's config and data; <name>/tls/ its certificates
                          and their private key
    <name>/detached/      programs the component runs in sessions of their own, which outlive
                          its process (lab/detached.py: Kubernetes' etcd and control plane)
    kubernetes-node/      the lab node's pods and staged volumes, beside its work dir (a
                          start clears the work dir; mounts a killed node left are swept)
    target/               the target directory (target.yaml and friends)
When the lab stops (`down`, a failed start, or `down` after a supervisor killed with -9) all
of these go but logs/ (kept for reading; no secret in it: lab/logsetup.py) and users.lock (an
empty file; removing it could let a registration and a `down` each lock a different file):
runfiles.remove_lab_files. The runs on a lab also keep their QoS windows' turnstile and ledger
here (vancouver-window-<key>.turnstile/.ledger, fixtures/headroom.py: flock files the runs
share, no secret); the lab leaves them, as users.lock, for the same reason.

This module is the supervisor's loop and its preflight; the run-dir files, process identity
and the stop helpers that `down`, `status` and `chaos` share are lab/runfiles.py.

A lock file per lab network (/tmp/.vancouver-lab-<NET>.lock, held with flock for the
supervisor's lifetime, so it frees itself even after kill -9, and removed when the lab stops)
refuses a second lab on the same addresses whichever run dir it uses.
"""
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from clients.signals import StopFlag
from lab import chaos, detached, origin, topology
from lab.restart import RestartPolicy, is_failure
# The run-dir files and stop helpers live in lab/runfiles.py; their names stay importable from
# here (lab/__main__.py, lab/chaos_cli.py, fixtures/chaos.py use `supervisor.read_pid` etc.).
from lab.runfiles import (POLL_S, STOP_TIMEOUT_S, _die_with_parent, _group_alive,  # noqa: F401
                          alive, default_run_dir, last_line, last_lines,
                          lock_path, log_file, make_private, pid_file, read_pid, read_state,
                          remove_lab_files, state_file, stop_group, stop_lab)
from lab.users import process_start_time as _start_time
from lab.component_base import (REPO_ROOT, Component, LabError, LabRun, find_binary,
                                new_secrets)
from lab.components import write_target_dir

HEALTH_TIMEOUT_S = 30.0   # generous: a loaded 2-core CI machine starts Python slowly
# Between health checks while starting: each check is one refused connect or one tiny GET, so
# polling often costs little and every component's start reports up to a poll sooner.
START_POLL_S = 0.01
MONITOR_S = 0.1          # how soon a death is noticed: restarts must land within 5 s
LOG_TAIL_LINES = 5       # lines of a given-up component's log that `status` shows

log = logging.getLogger("lab.supervisor")


# ---- preflight: refuse early, in one line ---------------------------------------------------

def _lock_holder() -> str | None:
    """The run dir of the live lab on this NET, or None when the NET is free."""
    try:
        f = open(lock_path())   # never created here: a stopped lab removed it
    except FileNotFoundError:
        return None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            return f.read().strip() or "unknown"
        fcntl.flock(f, fcntl.LOCK_UN)
        return None


def _same_file(f, path: Path) -> bool:
    """Whether the open file `f` is still the one `path` names (flock's remove-while-held
    race: a lock taken on an unlinked file guards nothing)."""
    try:
        return os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _running_message(run_dir: str) -> str:
    # Not "stop it": a demo run may be using it (a lab down would put that run in an outage).
    return (f"a lab on {topology.NET} is already running (run dir {run_dir}), perhaps for "
            f"another run: use it with --target {run_dir}/target/target.yaml, or start one "
            "on another net (VANCOUVER_LAB_NET=127.N); `python -m lab down` stops it for everyone")


def _port_in_use(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR: a port in TIME_WAIT after the previous lab is free to use again.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return True
    return False


def wait_for_killed_labs_components(run_dir: Path) -> None:
    """A killed supervisor's components got SIGTERM from the kernel (_die_with_parent) and
    stop as they would for `lab down` (Datera's took up to 1 s under load): an `up` right
    after the kill waits for that, up to STOP_TIMEOUT_S (their stop bound), before it calls
    them leftovers. Raises LabError naming the command that stops them."""
    pgids = [c["pid"] for c in read_state(run_dir).get("components", [])]
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(_group_alive(g) for g in pgids):
        if time.monotonic() >= deadline:
            raise LabError(f"components of a killed lab still run from {run_dir}: "
                           f"python -m lab down --run-dir {run_dir}")
        time.sleep(POLL_S)


def preflight(run_dir: Path, components: list[Component]) -> None:
    """Raises LabError with a one-line reason when the lab cannot start."""
    if read_pid(run_dir) is not None:
        raise LabError(_running_message(str(run_dir)))
    wait_for_killed_labs_components(run_dir)
    # Programs a component ran in sessions of their own (lab/detached.py) whose component and
    # supervisor are gone: the recorded ones (same pid, start time and command line) are this
    # run dir's own leftovers, not another lab's, so stopping them is safe.
    for r in detached.stop_all(run_dir):
        log.info("stopped %s (pid %d), left running by a crashed lab", r.name, r.pid)
    holder = _lock_holder()
    if holder is not None:
        raise LabError(_running_message(holder))
    for c in components:
        for binary in c.binaries:
            if find_binary(binary) is None:
                raise LabError(f"{binary} (needed by the {c.name} component) is not installed: "
                               "run make setup")
    for c in components:
        for address, port in c.binds:
            if _port_in_use(address, port):
                raise LabError(f"{address}:{port} (for {c.name}) is already in use by another "
                               "process: stop it, or move the lab with VANCOUVER_LAB_NET=127.N")


# ---- the supervisor ----------------------------------------------------------------------

@dataclass
class Child:
    component: Component
    proc: subprocess.Popen
    started: float
    # starting | healthy | exited (<rc>) | stopped | restarting | failed
    state: str = "starting"
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    restart_at: float | None = None   # monotonic time of the pending restart
    died_at: float | None = None      # when the last death was noticed
    last_restart_s: float | None = None   # death noticed -> healthy again, last time
    log_tail: list[str] = field(default_factory=list)


class Supervisor:
    def __init__(self, run_dir: Path, components: list[Component]):
        self.run = LabRun(run_dir, components=tuple(c.name for c in components))
        self.components = components
        self.children: list[Child] = []
        self._stop = StopFlag()   # set from signal handlers (clients/signals.py)
        self._lock_file = None
        self._owns_run_dir = False   # True once our pid file is written

    # -- lifecycle --

    def request_stop(self, signum=None, frame=None) -> None:
        self._stop.request()

    def run_forever(self, report) -> int:
        """Starts the lab, calls report(ok, text) once (the target.yaml path or the reason it
        failed), then supervises until asked to stop. Returns the exit status."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        try:
            self._acquire()
        except LabError as e:
            report(False, str(e))
            return 1
        try:
            target = self._start_all()
        except LabError as e:
            log.error("%s", e)
            self._stop_all()
            self._release()
            report(False, str(e))
            return 1
        except BaseException:
            self._stop_all()
            self._release()
            raise
        log.info("lab ready: %s", target)
        report(True, str(target))
        try:
            self._monitor()
        finally:
            self._stop_all()
            self._release()
        return 0

    def _acquire(self) -> None:
        run_dir = self.run.run_dir
        make_private(run_dir)
        while True:
            f = open(lock_path(), "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                f.close()
                raise LabError(_running_message(holder))
            if _same_file(f, lock_path()):
                break
            f.close()   # locked a file a stopping lab had just removed: lock the new one
        f.seek(0)
        f.truncate()
        f.write(str(run_dir))
        f.flush()
        self._lock_file = f
        if read_pid(run_dir) is not None:   # same run dir, another NET
            self._release()
            raise LabError(_running_message(str(run_dir)))
        pid = os.getpid()
        pid_file(run_dir).write_text(f"{pid} {_start_time(pid)}\n")
        self._owns_run_dir = True

    def _release(self) -> None:
        run_dir = self.run.run_dir
        if self._owns_run_dir:
            remove_lab_files(run_dir, [c.name for c in self.components])
            self._owns_run_dir = False
        if self._lock_file is not None:
            # Removed while still held (so no /tmp litter per net); a starter that opened it
            # meanwhile sees the path name another file and takes that one (_acquire).
            lock_path().unlink(missing_ok=True)
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # -- start --

    def _start_all(self) -> Path:
        run = self.run
        run.secrets = new_secrets()
        (run.run_dir / "logs").mkdir(exist_ok=True)
        # A lab killed with -9 and started again without `down` must not inherit its faults.
        chaos.control_path(run.run_dir).unlink(missing_ok=True)
        for c in self.components:   # a previous run's databases and configs must not leak in
            if run.dir(c.name).exists():
                detached.stop(run.dir(c.name))   # nothing of a previous lab keeps running
                shutil.rmtree(run.dir(c.name))
        healthy: set[str] = set()
        pending = list(self.components)
        while pending:
            if self._stop.is_set():
                raise LabError("interrupted while starting")
            for c in pending:
                started = {ch.component.name for ch in self.children}
                ready = healthy if c.needs_deps_to_start else started
                if c.name not in started and all(d in ready for d in c.depends_on):
                    self._spawn(c)
            for child in self.children:
                c = child.component
                if c.name in healthy:
                    continue
                rc = child.proc.poll()
                if rc is not None:
                    child.state = f"exited ({rc})"
                    raise LabError(f"{c.name} exited with status {rc} while starting: "
                                   f"{last_line(log_file(run.run_dir, c.name))}")
                if c.healthy(run):
                    child.state = "healthy"
                    healthy.add(c.name)
                    pending.remove(c)
                    log.info("%s healthy after %.2fs", c.name, time.monotonic() - child.started)
                    self._write_state()
                elif time.monotonic() - child.started > (c.health_timeout_s or HEALTH_TIMEOUT_S):
                    raise LabError(f"{c.name} not healthy after "
                                   f"{c.health_timeout_s or HEALTH_TIMEOUT_S:.0f}s: "
                                   f"{last_line(log_file(run.run_dir, c.name))}")
            if pending:
                self._stop.wait(START_POLL_S)
        return write_target_dir(run, self.components)

    def _spawn(self, c: Component, restart_of: Child | None = None) -> None:
        """Starts a component; a restart (restart_of) reuses its config and data as they are
        (a new config would mean new certificates and secrets the target dir does not have)."""
        run = self.run
        work = run.dir(c.name)
        work.mkdir(parents=True, exist_ok=True)
        try:
            if restart_of is None:
                c.prepare(run)
            argv = c.argv(run)
        except LabError as e:
            raise LabError(f"{c.name}: {e}")
        except (OSError, RuntimeError) as e:
            raise LabError(f"{c.name}: cannot prepare its config: {e}")
        env = dict(os.environ, VANCOUVER_LAB_NET=topology.NET,
                   PYTHONPATH=os.pathsep.join(
                       p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p))
        env[chaos.CONTROL_ENV] = str(chaos.control_path(run.run_dir))
        if restart_of is not None:
            # The component says so in its own way (Datera: an event in its events API).
            env["VANCOUVER_LAB_RESTART"] = str(restart_of.policy.restarts)
            env["VANCOUVER_LAB_LAST_EXIT"] = restart_of.policy.last_exit
        # The services' pydantic configs would otherwise scan every installed distribution's
        # entry points for pydantic plugins when the first model is built (tens of ms of each
        # service's start); the lab uses none. An explicit setting in the environment wins.
        env.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
        # A restart appends: the log keeps why the previous process died.
        with open(log_file(run.run_dir, c.name), "ab" if restart_of else "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=work, env=env,
                                    start_new_session=True, preexec_fn=_die_with_parent)
        if restart_of is None:
            self.children.append(Child(c, proc, time.monotonic()))
        else:
            restart_of.proc, restart_of.started, restart_of.state = proc, time.monotonic(), \
                "starting"
            restart_of.restart_at = None
        log.info("%s %s (pid %d): %s", "restarted" if restart_of else "started", c.name,
                 proc.pid, " ".join(argv))
        self._write_state()

    # -- run --

    def _monitor(self) -> None:
        """Restarts what dies (restart.py's policy) until the lab is asked to stop. Runs in
        the main thread: the children's PDEATHSIG belongs to the thread that forked them."""
        while not self._stop.wait(MONITOR_S):
            for child in self.children:
                if self._stop.is_set():
                    return
                self._watch(child)

    def _watch(self, child: Child) -> None:
        c, now = child.component, time.monotonic()
        if child.state == "restarting":
            if now >= child.restart_at:
                stop_group(child.proc)   # whatever the dead process left in its group
                try:
                    self._spawn(c, restart_of=child)
                except LabError as e:
                    self._died(child, 1, str(e))
            return
        if child.state.startswith(("exited", "failed", "stopped")):
            return
        rc = child.proc.poll()
        if rc is not None:   # a signal says why by itself; an exit status's reason is logged
            return self._died(child, rc, last_line(log_file(self.run.run_dir, c.name))
                              if rc > 0 else "")
        if child.state == "starting":
            if c.healthy(self.run):
                child.state = "healthy"
                if child.died_at is not None:
                    child.last_restart_s = round(time.monotonic() - child.died_at, 3)
                log.info("%s healthy again %.2fs after it died (restart %d)", c.name,
                         child.last_restart_s or 0.0, child.policy.restarts)
                self._write_state()
            elif now - child.started > (c.health_timeout_s or HEALTH_TIMEOUT_S):
                log.error("%s not healthy %.0fs after its restart; killing it", c.name,
                          now - child.started)
                stop_group(child.proc)
                self._died(child, 1, "not healthy after its restart")

    def _died(self, child: Child, rc: int, why: str) -> None:
        c, now = child.component, time.monotonic()
        child.died_at = now
        delay = child.policy.on_death(rc, now)
        if delay is not None:
            child.state, child.restart_at = "restarting", now + delay
            log.error("%s %s%s; restarting in %.1fs (restart %d)", c.name,
                      child.policy.last_exit, f": {why}" if why else "", delay,
                      child.policy.restarts)
        elif is_failure(rc):   # the start limit is hit: stays down, `status` says why
            child.state = "failed"
            detached.stop(self.run.dir(c.name))   # down means down, its detached programs too
            child.log_tail = last_lines(log_file(self.run.run_dir, c.name), LOG_TAIL_LINES)
            log.error("%s %s%s; %s", c.name, child.policy.last_exit,
                      f": {why}" if why else "", child.policy.gave_up())
        else:
            child.state = f"exited ({rc})"
            log.info("%s %s: not restarted (a clean stop)", c.name, child.policy.last_exit)
        self._write_state()

    def _write_state(self) -> None:
        state = {"net": topology.NET, "supervisor_pid": os.getpid(), **origin.record(),
                 "components": [{"name": ch.component.name, "address": ch.component.address,
                                 "pid": ch.proc.pid, "state": ch.state,
                                 "restarts": ch.policy.restarts,
                                 "last_exit": ch.policy.last_exit,
                                 "last_restart_s": ch.last_restart_s,
                                 **({"why": ch.policy.gave_up(), "log_tail": ch.log_tail}
                                    if ch.state == "failed" else {})}
                                for ch in self.children]}
        tmp = state_file(self.run.run_dir).with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(state_file(self.run.run_dir))

    # -- stop --

    def _stop_all(self) -> None:
        for child in reversed(self.children):
            stop_group(child.proc)
            # The component stops its detached programs on SIGTERM; these are what a component
            # killed (or dead) at this moment left running.
            detached.stop(self.run.dir(child.component.name))
            if not child.state.startswith("exited"):
                child.state = "stopped"
            log.info("stopped %s", child.component.name)
        self.children.clear()
