"""kube-apiserver start and restart, measured: the lab's trimmed flags (API groups, admission
plugins, APF off: lab/kubernetes/controlplane.py) against 1.20's defaults, alternating on the
same fresh etcd so both see the same load; wall time from exec to /readyz 200 and the
apiserver's own CPU seconds until then (the figure load does not move much); then, on a lab,
the restart figures: `kill -9` of kube-apiserver alone (etcd keeps running; the node process
restarts it) and of the whole component (the supervisor restarts etcd, the apiserver and the
node agent). Prints figures and ratios; asserts nothing.

    .venv/bin/python bench/bench_kubernetes_start.py [--runs 3] [--rounds 3]

Runs on its own lab network (VANCOUVER_LAB_NET, default 127.233) and a tmp run dir.
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
    pid = int(subprocess.check_output(["pgrep", "-f", f"kube-apiserver.*{c.work_dir}"]).split()[0])
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
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.233"),
               VANCOUVER_LAB_RESTART_BURST=str(args.rounds + 5))
    os.environ["VANCOUVER_LAB_NET"] = env["VANCOUVER_LAB_NET"]
    from bench.bench_lab_restart import restart_once
    from lab.kubernetes import controlplane
    from lab.kubernetes.config import Config
    with tempfile.TemporaryDirectory(prefix="bench-k8s-start-") as tmp:
        run_dir = Path(tmp) / "lab"
        up = lab("up", "--only", "datera,ldap,kubernetes", run_dir=run_dir, env=env)
        if up.returncode != 0:
            print(f"lab up failed: {up.stderr.strip()[-500:]}")
            return 1
        c = Config.load(str(run_dir / "kubernetes" / "config.json"))
        token = c.token_file.read_text().split(",", 1)[0]
        try:
            print("restarts (lab up --only datera,ldap,kubernetes):")
            api = [kill_apiserver(c, token) for _ in range(args.rounds)]
            print(f"  kill -9 kube-apiserver -> /readyz (etcd kept): p50 {statistics.median(api):.2f} s, "
                  f"max {max(api):.2f} s ({load()})")
            comp = [restart_once(run_dir, "kubernetes")[0] for _ in range(args.rounds)]
            print(f"  kill -9 the component -> healthy (supervisor): p50 "
                  f"{statistics.median(comp):.2f} s, max {max(comp):.2f} s ({load()}); "
                  f"goal < {GOAL_RESTART_S:.0f} s")
        finally:
            lab("down", run_dir=run_dir, env=env)
        lab_argv = controlplane.apiserver_argv(c)
        kinds = {"lab flags": lab_argv, "1.20 defaults": defaults(lab_argv)}
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        print("kube-apiserver exec -> /readyz on a fresh etcd:")
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
