"""The lab's Kubernetes: control-plane build time (cold, from the cache's record; warm, the
cached `build.sh` run now), `lab up` with and without the component (ratio in the same run),
apiserver readiness after start (goal: healthy under 8 s), resident memory of the control plane,
and the pod/volume cycle time p50/p95 with N workers. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_kubernetes.py [--runs 3] [--workers 5] [--cycles 2]

Runs on its own lab network (VANCOUVER_LAB_NET, default 127.231) and a tmp run dir.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from _lab import lab  # bench/, the script's own directory, is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
GOAL_S = 8.0


def boot(only: str, runs: int, run_dir: Path, env: dict) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        up = lab("up", "--only", only, run_dir=run_dir, env=env)
        elapsed = time.perf_counter() - start
        if up.returncode != 0:
            lab("down", run_dir=run_dir, env=env)
            raise SystemExit(f"lab up --only {only} failed: {up.stderr.strip()}")
        ready = re.search(r"kube-apiserver ready after ([\d.]+)s",
                          (run_dir / "logs" / "kubernetes.log").read_text()
                          if (run_dir / "logs" / "kubernetes.log").exists() else "")
        lab("down", run_dir=run_dir, env=env)
        times.append(elapsed)
        print(f"  up --only {only}: {elapsed:.2f} s"
              + (f" (apiserver ready {float(ready.group(1)):.2f} s after start)" if ready else ""))
    return times


def memory(run_dir: Path) -> None:
    import psutil
    names = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    total = 0
    for p in psutil.process_iter(["name", "cmdline", "memory_info"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(run_dir) not in cmd:
            continue
        name = next((n for n in names if Path((p.info["cmdline"] or [""])[0]).name == n),
                    "lab.kubernetes" if "lab.kubernetes" in cmd else None)
        if name:
            rss = p.info["memory_info"].rss / 2**20
            total += rss
            print(f"  {name}: {rss:.0f} MiB RSS")
    print(f"  control plane + node process: {total:.0f} MiB RSS")


def cycles(target_yaml: Path, workers: int, n: int) -> list[float]:
    from kubernetes import client

    from fixtures import kubernetes as k8s
    from fixtures.target import Target
    cluster = k8s.connect(Target.load(target_yaml))
    k8s.ensure_storage_class(cluster.storage, k8s.storage_class_body(
        "bench-bronze", cluster.provisioner, {"total_iops_max": 500}))
    times, lock = [], threading.Lock()

    def one(ns: str, i: int) -> None:
        t0 = time.perf_counter()
        name = f"c{i}"
        cluster.core.create_namespaced_persistent_volume_claim(
            ns, k8s.pvc_body(name, "bench-bronze", "1Gi", block=True))
        k8s.wait_for(cluster.core.list_namespaced_persistent_volume_claim, name, k8s.pvc_bound,
                     120, "bound", namespace=ns)
        cluster.core.create_namespaced_pod(ns, client.V1Pod.from_dict({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "g", "image": "guest", "command": ["sh", "-c",
                                                           "head -c 65536 /dev/xvda | wc -c"],
                "volumeDevices": [{"name": "d", "devicePath": "/dev/xvda"}]}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": name}}]}}))
        k8s.wait_for(cluster.core.list_namespaced_pod, name,
                     lambda p: p is not k8s.GONE and p.status.phase in ("Succeeded", "Failed"),
                     120, "pod done", namespace=ns)
        pv = cluster.core.read_namespaced_persistent_volume_claim(name, ns).spec.volume_name
        cluster.core.delete_namespaced_persistent_volume_claim(name, ns)
        cluster.core.delete_namespaced_pod(name, ns)
        k8s.wait_for(cluster.core.list_persistent_volume, pv, k8s.gone, 120, "pv gone")
        with lock:
            times.append(time.perf_counter() - t0)

    def worker(w: int) -> None:
        ns = f"bench-{uuid.uuid4().hex[:6]}"
        k8s.ensure_namespace(cluster.core, ns)
        try:
            for i in range(n):
                one(ns, i)
        finally:
            k8s.delete_namespace(cluster.core, ns)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=2)
    args = parser.parse_args(argv)
    env = dict(os.environ, VANCOUVER_LAB_NET=os.environ.get("VANCOUVER_LAB_NET", "127.231"))
    from lab.kubernetes import binaries
    build = binaries.build_dir()
    if build is None:
        print("kubernetes is not built: make setup", file=sys.stderr)
        return 1
    print(f"build: {build.name}: cold {(build / '.complete').read_text().strip()}")
    t0 = time.perf_counter()
    subprocess.run(["bash", str(REPO / "lab/kubernetes/build.sh"), str(binaries.cache_dir())],
                   check=True, capture_output=True)
    print(f"build: warm (cached) {time.perf_counter() - t0:.2f} s")
    with tempfile.TemporaryDirectory(prefix="bench-k8s-") as tmp:
        run_dir = Path(tmp) / "lab"
        base = boot("datera,ldap", args.runs, run_dir, env)
        with_k8s = boot("datera,ldap,kubernetes", args.runs, run_dir, env)
        b, k = statistics.median(base), statistics.median(with_k8s)
        print(f"lab up median: datera,ldap {b:.2f} s; with kubernetes {k:.2f} s "
              f"(x{k / b:.2f}; goal healthy < {GOAL_S:.0f} s: {'met' if k < GOAL_S else 'NOT met'})")
        up = lab("up", "--only", "datera,ldap,kubernetes", run_dir=run_dir, env=env)
        if up.returncode != 0:
            print(up.stderr, file=sys.stderr)
            return 1
        try:
            memory(run_dir)
            t = cycles(run_dir / "target" / "target.yaml", args.workers, args.cycles)
            p95 = t[min(len(t) - 1, int(round(0.95 * (len(t) - 1))))]
            print(f"pod/volume cycle ({args.workers} workers x {args.cycles}): "
                  f"p50 {statistics.median(t):.2f} s, p95 {p95:.2f} s over {len(t)} cycles")
        finally:
            lab("down", run_dir=run_dir, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
