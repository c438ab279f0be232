"""The VMware piece runs only where the target has a vCenter: against a target without a
`vsphere` section its scenarios are deselected, not skipped (as scenarios/kubernetes/), so an
endless run neither spins on skips nor reports them as outcomes.

`esxi` (per worker session) is the target's ESXi host, prepared as Datera's VMware best
practice asks (fixtures/vmware.py) the first time a scenario knows the Datera portals."""
import fcntl
import os
import tempfile
from pathlib import Path

import pytest

from fixtures import datera, reporting
from fixtures import vmware
from fixtures.target import deselect_unless_target_has


def pytest_collection_modifyitems(config, items):
    deselect_unless_target_has("vsphere", __file__, config, items)


class Esxi:
    """The session's vCenter login and host; `ensure(portals)` prepares the host once for
    those Datera portals (idempotent on the shared host, so every worker may do it)."""

    def __init__(self, vs: vmware.Vsphere, chap: tuple[str, str]):
        self.vs, self.chap = vs, chap
        self.prepared: dict | None = None
        self._portals: set[str] = set()
        self.ever_portals: set[str] = set()
        self.tenants: dict = {}
        self._logins = vs.logins

    @property
    def iqn(self) -> str:
        return self.prepared["iqn"] if self.prepared else vmware.iscsi_hba(self.vs).iScsiName

    def ensure(self, portals: list[str]) -> dict:
        """Prepares the host for `portals` unless done; again after the session lived
        through a vCenter restart (a login since: the host's state is checked afresh)."""
        ips = sorted({p.rsplit(":", 1)[0] if p.count(":") == 1 else p for p in portals})
        self.vs.host.name   # a call that needs the session: a lost one is renewed here
        if self.vs.logins != self._logins:
            self.prepared, self._portals, self._logins = None, set(), self.vs.logins
        if self.prepared is None or not set(ips) <= self._portals:
            self.prepared = vmware.prepare_host(self.vs, ips, self.chap)
            self._portals |= set(ips)
        self.ever_portals |= set(ips)
        return self.prepared

    def allow(self, vol, label: str) -> None:
        """The host's initiator into the volume's ACL (its Datera initiator made in the
        volume's tenant if missing); undone with the host's preparation (undo())."""
        self.tenants[(id(vol.api), vol.tenant)] = (vol.api, vol.tenant)
        datera.allow_initiator(vol, self.iqn, label=label)

    def undo(self) -> list[str]:
        """Removes what ensure() and allow() left on the host and on Datera: the send targets
        of the portals and the host's Datera initiators (the volumes whose ACLs held them are
        gone with their iterations). Returns what could not be removed, one line each."""
        problems = []
        if self.ever_portals:
            try:
                vmware.remove_send_targets(self.vs, sorted(self.ever_portals))
            except Exception as e:  # noqa: BLE001 (the cleanup command finds the rest)
                problems.append(f"send targets {sorted(self.ever_portals)}: {e}")
        for api, tenant in self.tenants.values():
            try:
                datera.delete_initiator(api, tenant, self.iqn)
            except Exception as e:  # noqa: BLE001
                problems.append(f"initiator {tenant}:{self.iqn}: {e}")
        return problems


class HostUsers:
    """Which workers of this run hold the shared ESXi host prepared: one file per worker
    process in a run-scoped directory, under a lock, so the last one out (its peers gone or
    dead) undoes the preparation and no other worker loses its paths mid-iteration."""

    def __init__(self, run_uid: str):
        self.dir = Path(tempfile.gettempdir()) / f"vancouver-esxi-{run_uid}"
        self.me = self.dir / str(os.getpid())

    def _locked(self):
        self.dir.mkdir(exist_ok=True)
        f = open(self.dir / ".lock", "a")
        fcntl.flock(f, fcntl.LOCK_EX)
        return f

    def join(self) -> None:
        with self._locked():
            self.me.touch()

    def leave(self) -> bool:
        """True when no other live worker holds the host (then the directory goes too)."""
        with self._locked():
            self.me.unlink(missing_ok=True)
            others = [p for p in self.dir.iterdir() if p.name.isdigit() and _alive(int(p.name))]
            if others:
                return False
            for p in self.dir.iterdir():
                p.unlink(missing_ok=True)
            self.dir.rmdir()
            return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def esxi(target, testrun_uid):
    try:
        settings = vmware.settings_from_target(target)
        reporting.register_secret(settings.password)
        vs = vmware.connect(settings)
    except vmware.VsphereError as e:
        pytest.exit(str(e), returncode=4)
    chap = vmware.chap_for_run(settings, testrun_uid)
    reporting.register_secret(chap[1])
    users = HostUsers(testrun_uid)
    users.join()
    host = Esxi(vs, chap)
    try:
        yield host
    finally:
        try:
            if users.leave():
                for line in host.undo():
                    print(f"[vancouver] vmware: could not undo the host's preparation: {line}")
        finally:
            vs.close()
