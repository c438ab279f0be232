"""The VMware piece runs only where the target has a vCenter: against a target without a
`vsphere` section its scenarios are deselected, not skipped (as scenarios/kubernetes/), so an
endless run neither spins on skips nor reports them as outcomes.

`esxi` (per worker session) is the target's ESXi host, prepared as Datera's VMware best
practice asks (fixtures/vmware.py) the first time a scenario knows the Datera portals."""
import pytest

from fixtures import reporting
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
        return self.prepared


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
    try:
        yield Esxi(vs, chap)
    finally:
        vs.close()
