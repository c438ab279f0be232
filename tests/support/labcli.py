"""`python -m lab` for tests that start a lab of their own (fixture `make_lab` in
tests/conftest.py).

Such a test gives its lab a VANCOUVER_LAB_NET no other test uses and a tmp run dir, so it never
touches the session lab the rest of the suite shares, nor another test's lab when xdist runs
them side by side. Nets in use: test_supervisor.py 127.201 and 127.203-127.211 (one per test),
test_lab_store.py 127.212 (Datera), 127.213-127.215 (OpenStack), 127.216 (Kubernetes),
test_outage_e2e.py 127.225, test_kill9_e2e.py 127.226,
test_lab_users.py 127.217-127.219, test_lab_restart.py 127.220-127.221 and 127.223,
test_kubernetes_controlplane.py 127.227, test_kubernetes_detached.py 127.230,
test_kubernetes_chaos_e2e.py 127.231,
test_vsphere_sim.py 127.228, test_chaos.py 127.222, test_lab_cli.py 127.184-127.189,
test_ldap.py 127.202 without xdist and 127.240+N on xdist worker gwN
(its module-scoped lab is started once per worker that runs any of its tests); test_demo_e2e.py
127.150, test_platform_checks_e2e.py 127.151-127.153 (127.151's lab in its default run dir,
127.153 never a lab), test_cleanup_cli.py 127.155 (never a lab).
tests/test_fixed_nets.py checks that no two modules share one. These nets are the same
for every checkout, so two checkouts must not run those modules at once (see `make test`).
"""
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


def per_worker_net(alone: str) -> str:
    """`alone` without xdist; a net of each worker's own under xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return alone
    n = int(worker.removeprefix("gw"))
    if n >= 16:
        raise pytest.UsageError("tests/support/labcli.py reserves lab nets for 16 xdist workers only")
    return f"127.{240 + n}"


@dataclass
class LabCli:
    """`python -m lab` for one test's own lab."""
    net: str
    run_dir: Path

    def env(self, **extra: str) -> dict:
        env = dict(os.environ, VANCOUVER_LAB_NET=self.net)
        env.update(extra)
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "lab", *args, "--run-dir", str(self.run_dir)]

    def run(self, *args: str, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), cwd=REPO, env=env or self.env(),
                              capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)

    def up(self, only: str = "ldap", **kw) -> subprocess.CompletedProcess:
        return self.run("up", "--only", only, **kw)

    def up_kubernetes(self) -> None:
        """`up --only datera,kubernetes`; skips (with the reason) where the control plane is
        not built, fails on any other refusal."""
        up = self.up("datera,kubernetes", timeout=400)
        if up.returncode != 0 and "not built" in up.stderr:
            pytest.skip(f"the Kubernetes control plane is not built here: {up.stderr.strip()}")
        assert up.returncode == 0, up.stderr

    def address(self, suffix: str) -> str:
        return f"{self.net}.{suffix}"

    @property
    def target(self) -> Path:
        return self.run_dir / "target" / "target.yaml"

    def supervisor_pid(self) -> int | None:
        try:
            return int((self.run_dir / "supervisor.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def components(self) -> dict[str, dict]:
        """The supervisor's record of each component by name (pid, state, restarts,
        last_exit, ...: lab/supervisor.py's state.json, written whole by rename); {} when
        the lab keeps none (not running)."""
        try:
            state = json.loads((self.run_dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return {c["name"]: c for c in state["components"]}

    def component(self, name: str) -> dict:
        """components()[name], or {} when the lab keeps no record of it."""
        return self.components().get(name, {})

    def component_pids(self) -> dict[str, int]:
        return {name: c["pid"] for name, c in self.components().items()}


def module_lab(net: str, only: str, run_dir: Path, *, force: bool = False) -> Iterator[LabCli]:
    """A test module's own lab, for a module-scoped fixture to `yield from`: `up --only ONLY`
    on `net` in `run_dir` (a failed start fails the fixture with its stderr), then `down`;
    force=True: `down --force`, which also stops it while a run the test left still uses it."""
    lab = LabCli(net, run_dir)
    proc = lab.up(only)
    assert proc.returncode == 0, proc.stderr
    yield lab
    lab.run("down", *(["--force"] if force else []))
