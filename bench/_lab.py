"""`python -m lab` for the benchmarks: each runs a lab of its own, on a net of its own
(VANCOUVER_LAB_NET, each benchmark's default in its docstring) and a tmp run dir, so it never
touches a running lab."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lab(*args: str, run_dir: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """python -m lab ARGS --run-dir RUN_DIR, output captured."""
    return subprocess.run([sys.executable, "-m", "lab", *args, "--run-dir", str(run_dir)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)



def boot_once(run_dir: Path, env: dict, *up_args: str,
              timeout: float = 300) -> tuple[float, str]:
    """One `lab up UP_ARGS`, timed (seconds, to its return), then `lab down`. Returns (seconds,
    the supervisor's log as it stood before the down: "" when none). Raises RuntimeError "lab
    did not start: ..." / "lab did not stop: ..." with the command's stderr (its last 500 characters)."""
    start = time.perf_counter()
    up = lab("up", *up_args, run_dir=run_dir, env=env, timeout=timeout)
    elapsed = time.perf_counter() - start
    log_file = run_dir / "logs" / "supervisor.log"
    log = log_file.read_text(errors="replace") if log_file.exists() else ""
    down = lab("down", run_dir=run_dir, env=env, timeout=timeout)
    if up.returncode != 0:
        raise RuntimeError(f"lab did not start: {up.stderr.strip()[-500:]}")
    if down.returncode != 0:
        raise RuntimeError(f"lab did not stop: {down.stderr.strip()[-500:]}")
    return elapsed, log

def lab_env(default_net: str, **extra: str) -> dict:
    """This environment with the lab net (VANCOUVER_LAB_NET if set, else default_net)."""
    return dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", default_net),
                **extra)


@contextlib.contextmanager
def target_or_own_lab(given: str | None, run_dir: Path, env: dict, *up_args: str,
                      timeout: float = 300):
    """The target.yaml the user gave (--target), or that of a lab of the benchmark's own
    (`lab up UP_ARGS` in run_dir, stopped after). A lab that does not start ends the
    benchmark with one line and status 1 (SystemExit)."""
    if given:
        yield Path(given).resolve()
        return
    up = lab("up", *up_args, run_dir=run_dir, env=env, timeout=timeout)
    try:
        if up.returncode != 0:
            raise SystemExit(f"{Path(sys.argv[0]).stem}: lab did not start: "
                             f"{(up.stderr or up.stdout).strip()[-400:]}")
        yield run_dir / "target" / "target.yaml"
    finally:
        lab("down", run_dir=run_dir, env=env, timeout=timeout)


def stop_run(proc: subprocess.Popen, grace_s: float = 120) -> None:
    """A demo run started in its own process group: Ctrl-C's graceful stop (teardown, report),
    then SIGKILL after `grace_s`."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
