"""Kubernetes control-plane start and restart, measured. Prints figures and ratios; asserts
nothing.

1. `lab up --only datera,kubernetes` --runs times, each on a fresh run dir: the start phases
   of the node process (lab/kubernetes/__main__.py's ready file: seconds from its start to etcd
   /health, apiserver /readyz, the Node registered Ready, the CSI provisioner's informers
   listed), the supervisor's "healthy after" and `lab up`'s wall time; p50 of each.
2. On the last of those labs, --rounds times each: `kill -9` of kube-apiserver alone (the node
   process restarts it against the etcd that kept running), of the node process's group (etcd
   and the control plane run detached and keep serving: the restarted node adopts them) and of
   the whole control plane with it (`chaos kill kubernetes --all`: etcd and the apiserver start
   again on their data); p50 and max, against step 1's cold start as the reference.
3. kube-apiserver alone, exec to /readyz on a fresh etcd: the lab's trimmed flags (API groups,
   admission plugins, APF off: lab/kubernetes/controlplane.py) against 1.20's defaults,
   alternating so both see the same load, with the apiserver's own CPU seconds until ready.
Every figure line carries the load average (1/5 min).

    .venv/bin/python bench/bench_kubernetes_start.py [--runs 3] [--rounds 3]

Runs on its own lab network (VANCOUVER_LAB_NET, default 127.233) and a tmp run dir; each
kill is a first failure (bench_lab_restart.py: no backoff carried over from the last round).
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GOAL_START_S, GOAL_RESTART_S = 8.0, 5.0


def lab(*args: str, run_dir: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args, "--run-dir", str(run_dir)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def defaults(argv: list[str]) -> list[str]:
    """The apiserver command line with 1.20's defaults for what the lab trims."""
    trimmed = ("--runtime-config", "--disable-admission-plugins",
               "--enable-priority-and-fairness", "--feature-gates")
    return [a for a in argv if a.split("=")[0] not in trimmed] + \
        ["--disable-admission-plugins=ServiceAccount"]


def start_once(c, argv: list[str], token: str) -> tuple[float, float]:
    """(seconds exec -> /readyz, apiserver CPU seconds by then) on a fresh etcd."""
    from lab.kubernetes import controlplane
    shutil.rmtree(c.work_dir / "etcd", ignore_errors=True)
    logs = c.work_dir / "logs"
    logs.mkdir(exist_ok=True)
    etcd = subprocess.Popen(controlplane.etcd_argv(c), stdout=open(logs / "b-etcd.log", "wb"),
                            stderr=subprocess.STDOUT)
    t0 = time.perf_counter()
    api = subprocess.Popen(argv, stdout=open(logs / "b-apiserver.log", "wb"),
                           stderr=subprocess.STDOUT)
    try:
        while not controlplane.readyz(c.server, str(c.ca_file), token, 0.5):
            if api.poll() is not None:
                raise SystemExit(f"kube-apiserver exited {api.returncode} (see {logs})")
            time.sleep(0.02)
        return time.perf_counter() - t0, cpu_s(api.pid)
    finally:
        for p in (api, etcd):
            p.terminate()
            p.wait()


def kill_apiserver(c, token: str, timeout: float = 300) -> float:
    """kill -9 the running kube-apiserver -> /readyz again, seconds."""
    from lab.kubernetes import controlplane
    from bench_lab_restart import settle
    pid = int(subprocess.check_output(["pgrep", "-f", f"kube-apiserver.*{c.work_dir}"]).split()[0])
    settle()
    os.kill(pid, signal.SIGKILL)
    t0 = time.perf_counter()
    while controlplane.readyz(c.server, str(c.ca_file), token, 0.5):
        time.sleep(0.01)
    while not controlplane.readyz(c.server, str(c.ca_file), token, 0.5):
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("kube-apiserver not ready again")
        time.sleep(0.02)
    return time.perf_counter() - t0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


PHASES = ("etcd", "apiserver", "node", "csi")


def start_phases(run_dir: Path, env: dict) -> dict[str, float]:
    """`lab up` on a fresh run dir: its wall time, the supervisor's healthy-after for
    kubernetes and the node process's phases (seconds). The lab is left running."""
    import json
    import re
    t0 = time.perf_counter()
    up = lab("up", "--only", "datera,kubernetes", run_dir=run_dir, env=env)
    wall = time.perf_counter() - t0
    if up.returncode != 0:
        raise SystemExit(f"lab up failed: {up.stderr.strip()[-500:]}")
    ready = json.loads((run_dir / "kubernetes" / "ready").read_text())
    healthy = re.findall(r"INFO kubernetes healthy after ([\d.]+)s",
                         (run_dir / "logs" / "supervisor.log").read_text())
    return {**{k: ready[k] for k in PHASES}, "healthy": float(healthy[-1]), "lab up": wall}


def restart_rounds(run_dir: Path, c, token: str, rounds: int) -> dict[str, list[float]]:
    from bench_lab_restart import restart_once
    out = {"kube-apiserver alone": [], "node process (adopts)": [],
           "node + control plane": []}
    for _ in range(rounds):
        out["kube-apiserver alone"].append(kill_apiserver(c, token))
    for _ in range(rounds):
        out["node process (adopts)"].append(restart_once(run_dir, "kubernetes")[0])
    for _ in range(rounds):
        out["node + control plane"].append(
            restart_once(run_dir, "kubernetes", everything=True)[0])
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from bench_lab_restart import restart_env
    env = dict(os.environ, VANCOUVER_LAB_NET=(os.environ.get("VANCOUVER_LAB_NET") or "127.233"),
               **restart_env(args.rounds))
    os.environ["VANCOUVER_LAB_NET"] = env["VANCOUVER_LAB_NET"]
    from lab.kubernetes import controlplane
    from lab.kubernetes.config import Config
    with tempfile.TemporaryDirectory(prefix="bench-k8s-start-") as tmp:
        print("1. lab up --only datera,kubernetes: node-process phases (s from its start), "
              "supervisor healthy-after, lab up wall:")
        starts, run_dir = [], None
        for i in range(args.runs):
            if run_dir is not None:
                lab("down", run_dir=run_dir, env=env)
            run_dir = Path(tmp) / f"lab-{i}"
            ph = start_phases(run_dir, env)
            starts.append(ph)
            print(f"  run {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in ph.items())
                  + f" ({load()})", flush=True)
        med = {k: statistics.median(p[k] for p in starts) for k in starts[0]}
        print("  p50: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items())
              + f"; goal healthy < {GOAL_START_S:.0f} s: "
              + ("met" if med["healthy"] < GOAL_START_S else "NOT met") + f" ({load()})")
        c = Config.load(str(run_dir / "kubernetes" / "config.json"))
        token = c.token_file.read_text().split(",", 1)[0]
        try:
            print(f"2. restarts, kill -9 -> healthy (p50 of {args.rounds}; reference: the "
                  f"cold start above, healthy p50 {med['healthy']:.2f} s):")
            for kind, t in restart_rounds(run_dir, c, token, args.rounds).items():
                p50 = statistics.median(t)
                print(f"  {kind:>22}: p50 {p50:5.2f} s, max {max(t):5.2f} s, "
                      f"x{p50 / med['healthy']:.2f} of a cold start; goal < "
                      f"{GOAL_RESTART_S:.0f} s: {'met' if p50 < GOAL_RESTART_S else 'NOT met'}"
                      f" ({load()})", flush=True)
        finally:
            lab("down", run_dir=run_dir, env=env)
        lab_argv = controlplane.apiserver_argv(c)
        kinds = {"lab flags": lab_argv, "1.20 defaults": defaults(lab_argv)}
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        print("3. kube-apiserver exec -> /readyz on a fresh etcd:")
        for i in range(args.runs):
            for kind, a in kinds.items():
                wall, cpu = start_once(c, a, token)
                got[kind].append((wall, cpu))
                print(f"  run {i + 1} {kind:>13}: {wall:6.2f} s, {cpu:5.2f} s CPU ({load()})",
                      flush=True)
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
               for k, v in got.items()}
        for k, (w, cpu) in med.items():
            print(f"  {k:>13}: median {w:.2f} s wall, {cpu:.2f} s CPU")
        (lw, lc), (dw, dc) = med["lab flags"], med["1.20 defaults"]
        print(f"  lab/defaults: wall x{lw / dw:.2f}, CPU x{lc / dc:.2f}; goal healthy < "
              f"{GOAL_START_S:.0f} s: {'met' if lw < GOAL_START_S else 'NOT met'} at {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
