"""python -m bench: every benchmark with its default figures, one after another.

Each prints its own figures; none asserts anything. Run one alone for its options:
    .venv/bin/python bench/<name>.py --help
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Short settings so the whole set runs in a few minutes; the issue-sized runs are one flag away.
RUNS = [
    ["bench_lab_boot.py"],
    ["bench_lab_restart.py"],
    ["bench_datera_api.py"],
    ["bench_lab_store.py", "--n", "100"],
    ["bench_dataplane.py"],
    ["bench_image_convert.py"],
    ["bench_disk_relay.py"],
    ["bench_openstack.py"],
    ["bench_openstack_ops.py", "--n", "10"],
    ["bench_kubernetes.py", "--runs", "2"],
    ["bench_kubernetes_start.py", "--runs", "2", "--rounds", "2"],
    ["bench_lab_up.py", "--runs", "2"],
    ["bench_vmware.py", "--cycles", "2"],
    ["bench_harness_memory.py", "--duration", "60"],
    ["bench_demo.py", "--duration", "120"],
    ["bench_openstack_scenarios.py", "--duration", "120", "--convert-gib", "1"],
    ["bench_booth_load.py", "--warmup", "45", "--seconds", "5", "--rounds", "2"],
    ["bench_dashboard.py", "--duration", "60", "--rate-duration", "40"],
    ["bench_dashboard_soak.py", "--duration", "5m"],   # the figure: --duration 30m
    ["bench_first_line.py", "--runs", "2"],
    ["bench_outage_resume.py", "--outages", "1"],
    ["bench_chaos_errors.py", "--duration", "60"],
    ["bench_fuzz.py", "--examples", "300"],
    ["bench_vsphere.py", "--cycles", "300", "--reference-cycles", "0"],
    ["bench_vsphere_durable.py", "--rounds", "50"],
]


def main() -> int:
    failed = 0
    for run in RUNS:
        if not (HERE / run[0]).exists():
            continue
        print(f"== {' '.join(run)}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / run[0]), *run[1:]],
                                 cwd=HERE.parent).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
