"""Restart time per lab component: from `kill -9` of its process group to healthy again (the
supervisor's restart, lab/restart.py), against the same component's cold start in the same
run (the supervisor's "healthy after" at `lab up`). For kubernetes two rows: the node process
killed (etcd and the control plane, detached, keep serving and are adopted) and the whole
control plane killed with it (`chaos kill kubernetes --all`: etcd and the apiserver start
again). Goal: under 5 s each. A measurement, not a test: it prints figures (p50 over --rounds,
with the load average) and asserts nothing.

    .venv/bin/python bench/bench_lab_restart.py [--only ldap,datera,openstack-pike] [--rounds 3]
                                                [--vsphere-vms 20]

With vsphere in --only, the vCenter first gets --vsphere-vms VMs through pyVmomi: its restart
loads its saved state (lab/vsphere/durable.go), and its cold start is an empty inventory.

Runs on its own lab network (VANCOUVER_LAB_NET, default 127.231) and a tmp run dir. Each
kill is measured as a first failure: the restart window is shortened for the run
(VANCOUVER_LAB_RESTART_INTERVAL_S=SETTLE_S) and each kill waits SETTLE_S after the previous
one, so the supervisor's backoff (0.2 s doubling per restart within the window, systemd's
RestartSteps) starts from its first delay every round instead of adding 0.2+0.4+0.8+... to
the later rounds' figures; the restart limit is raised (VANCOUVER_LAB_RESTART_BURST).
"""
import argparse
import functools
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _lab  # bench/, the script's own directory, is on sys.path
from _table import print_table  # bench/, the script's own directory, is on sys.path

REPO = Path(__file__).resolve().parent.parent
GOAL_S = 5.0
SETTLE_S = 2.0   # the restart window of the run: a kill this long after the last is a first
_last_kill = [0.0]


def restart_env(rounds: int) -> dict:
    """The environment for a bench's lab: every kill a first failure (module docstring)."""
    return {"VANCOUVER_LAB_RESTART_BURST": str(rounds * 3 + 5),
            "VANCOUVER_LAB_RESTART_INTERVAL_S": str(SETTLE_S)}


def settle() -> None:
    """Waits until SETTLE_S (+ a margin) after the previous kill: outside the restart window."""
    wait = _last_kill[0] + SETTLE_S + 0.2 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    _last_kill[0] = time.monotonic()


lab = functools.partial(_lab.lab, timeout=600)


def component(run_dir: Path, name: str) -> dict:
    for c in json.loads((run_dir / "state.json").read_text())["components"]:
        if c["name"] == name:
            return c
    raise KeyError(name)


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


def _exec_uptime(pid: int) -> float | None:
    """When the process was exec'd, in /proc/uptime seconds (10 ms ticks); None once gone."""
    try:
        start = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
    return start / os.sysconf("SC_CLK_TCK")


READY_PHASES = ("etcd", "apiserver", "node", "csi")


def restart_once(run_dir: Path, name: str, timeout: float = 300,
                 everything: bool = False) -> tuple[float, float, dict[str, float]]:
    """(kill -> healthy, the supervisor's own death noticed -> healthy, phases) in seconds.
    The component's process group is killed; everything=True also kills the programs it runs
    detached (lab/detached.py: Kubernetes' etcd and control plane). phases, for a component
    whose process writes a ready file with them (kubernetes): seconds from the kill to the new
    process's exec ('spawn'), to the end of its Python start ('python'), and to each phase
    it records (etcd, apiserver, node, csi); {} for the others."""
    sys.path.insert(0, str(REPO))
    from lab import detached
    before = component(run_dir, name)
    settle()
    killed_at = _uptime()
    os.killpg(before["pid"], signal.SIGKILL)
    if everything:
        detached.kill(run_dir / name)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        c = component(run_dir, name)
        if c["pid"] != before["pid"] and c["state"] == "healthy" \
                and c["restarts"] == before["restarts"] + 1:
            total = time.perf_counter() - t0
            return total, c["last_restart_s"], _phases(run_dir / name, c["pid"], killed_at)
        if c["state"] == "failed":
            raise RuntimeError(f"{name}: the supervisor gave up: {c.get('why')}")
        time.sleep(0.01)
    raise TimeoutError(f"{name} not healthy {timeout:.0f}s after its kill")


def _phases(work: Path, pid: int, killed_at: float) -> dict[str, float]:
    try:
        ready = json.loads((work / "ready").read_text())
    except (OSError, ValueError):
        return {}
    exec_at = _exec_uptime(pid)
    if ready.get("pid") != pid or exec_at is None or ready.get("python") is None:
        return {}
    spawn = exec_at - killed_at
    python = spawn + ready["python"]
    return {"spawn": spawn, "python": python,
            **{k: python + ready[k] for k in READY_PHASES if k in ready}}


def populate_vsphere(run_dir: Path, n: int) -> None:
    """n VMs (a 0.5 GiB disk each on LocalDS_0, powered off) in the lab's vCenter through
    pyVmomi, so its restarts load that state (lab/vsphere/durable.go)."""
    sys.path.insert(0, str(REPO))
    from fixtures import vmware
    from fixtures.target import Target
    vs = vmware.connect(vmware.settings_from_target(Target.load(run_dir / "target" / "target.yaml")))
    try:
        for i in range(n):
            vmware.create_vm(vs, vmware.vm_spec(f"bench-restart-{i}", ["LocalDS_0"], 0.5, "true"))
    finally:
        vs.close()


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def cold_starts(run_dir: Path) -> dict[str, float]:
    text = (run_dir / "logs" / "supervisor.log").read_text()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"INFO (\S+) healthy after ([\d.]+)s", text)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="ldap,datera,openstack-pike",
                        help="components to kill (their dependencies start too); "
                             "add kubernetes for the control plane (slow to start)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vsphere-vms", type=int, default=20,
                        help="VMs the vCenter holds when it is killed (its restart loads them)")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.231"),
               **restart_env(args.rounds))
    with tempfile.TemporaryDirectory(prefix="bench-lab-restart-") as tmp:
        run_dir = Path(tmp) / "lab"
        up = lab("up", "--only", args.only, run_dir=run_dir, env=env)
        if up.returncode != 0:
            print(f"lab up failed: {up.stderr.strip()}")
            return 1
        try:
            cold = cold_starts(run_dir)
            if "vsphere" in names and args.vsphere_vms:
                populate_vsphere(run_dir, args.vsphere_vms)
            rows, phases = [], {}
            kinds = [(n, False) for n in names] + \
                [("kubernetes", True)] * ("kubernetes" in names)
            for name, everything in kinds:
                runs = [restart_once(run_dir, name, everything=everything)
                        for _ in range(args.rounds)]
                total = [r[0] for r in runs]
                p50 = statistics.median(total)
                ref = cold.get(name)
                label = name + (" +control plane" if everything else
                                " (node)" if name == "kubernetes" else
                                f" ({args.vsphere_vms} VMs)" if name == "vsphere" else "")
                phases[label] = [r[2] for r in runs if r[2]]
                rows.append([label, ref or float("nan"), p50, max(total),
                             statistics.median(r[1] for r in runs),
                             p50 / ref if ref else float("nan"),
                             "ok" if max(total) < GOAL_S else "OVER", _load()])
            s = "{:.2f}s"
            print_table(["component", "cold start", "kill->healthy p50", "max", "supervisor",
                         "ratio", f"goal <{GOAL_S:.0f}s", "load 1/5 min"], rows,
                        formats={1: s, 2: s, 3: s, 4: s, 5: "{:.2f}x"})
            print("(supervisor: from the death noticed to healthy; ratio: restart p50 / "
                  "cold start)")
            for label, runs in phases.items():
                if runs:
                    print(f"{label}: from the kill, p50 s: " + ", ".join(
                        f"{k} {statistics.median(r[k] for r in runs):.2f}" for k in runs[0]))
            print("(spawn: the new node process exec'd; python: its start and imports done; "
                  "etcd, apiserver: /health, /readyz answer; node: registered Ready; csi: "
                  "the provisioner's informers listed)")
        finally:
            lab("down", run_dir=run_dir, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
