"""The VMware piece runs only where the target has a vCenter: against a target without a
`vsphere` section its scenarios are deselected, not skipped (as scenarios/kubernetes/), so an
endless run neither spins on skips nor reports them as outcomes.

The vCenter's login is checked once, in the controller, before any worker starts
(fixtures/platform_checks.py). `esxi` (per worker session) is the target's ESXi host, prepared as Datera's VMware best
practice asks (fixtures/vmware.py) the first time a scenario knows the Datera portals. The
host is shared by every worker of the run: each registers as its user
(fixtures/shared_host.py) and notes what it prepared; the run's last live worker undoes all
of it at its session's end (send targets, the host's Datera initiators), so a run leaves the
host as it found it and a worker never loses its paths to a peer's teardown. Its steps wait
out a vCenter or Datera outage (queued, drained when the platform is back: at the latest the
session's final drain); what a run whose every worker was killed left, the next run's users
take over; a run ending while another run uses the host leaves its part to that run's last
worker."""
import hashlib
import sys

import pytest

from fixtures import datera, reporting
from fixtures import vmware
from fixtures.outage.classify import classify
from fixtures.outage.deferred import deferrable
from fixtures.shared_host import HostUsers
from fixtures.target import deselect_unless_target_has

VSPHERE = ("vsphere",)   # what a vSphere deletion needs (the outage probes' key)


def pytest_collection_modifyitems(config, items):
    deselect_unless_target_has("vsphere", __file__, config, items)


class Esxi:
    """The session's vCenter login and host; `ensure(portals)` prepares the host once for
    those Datera portals (idempotent on the shared host, so every worker may do it) and
    `allow(vol, label)` lets it into a volume's ACL; both note what they did on `users`, the
    run's registration of the host, for the last worker's `undo`."""

    def __init__(self, vs: vmware.Vsphere, chap: tuple[str, str], users: HostUsers):
        self.vs, self.chap, self.users = vs, chap, users
        self.prepared: dict | None = None
        self._portals: set[str] = set()
        self._logins = vs.logins
        self.host_name = vs.host._moId   # its name once a call asked it (ensure)

    @property
    def iqn(self) -> str:
        return self.prepared["iqn"] if self.prepared else vmware.iscsi_hba(self.vs).iScsiName

    def ensure(self, portals: list[str]) -> dict:
        """Prepares the host for `portals` unless done; again after the session lived
        through a vCenter restart (a login since: the host's state is checked afresh)."""
        ips = sorted({p.rsplit(":", 1)[0] if p.count(":") == 1 else p for p in portals})
        self.host_name = self.vs.host.name   # needs the session: a lost one is renewed here
        if self.vs.logins != self._logins:
            self.prepared, self._portals, self._logins = None, set(), self.vs.logins
        for ip in ips:      # noted before the call: a half-done preparation is undone too
            self.users.note("send_target", ip)
        if self.prepared is None or not set(ips) <= self._portals:
            self.prepared = vmware.prepare_host(self.vs, ips, self.chap)
            self._portals |= set(ips)
        return self.prepared

    def allow(self, vol: datera.DateraVolume, label: str) -> None:
        """The host's initiator into the volume's ACL (its Datera initiator made in the
        volume's tenant if missing); the initiator is deleted by the last worker's undo
        (the volumes whose ACLs hold it are gone with their iterations by then)."""
        iqn = self.iqn
        self.users.note("initiator", f"{vol.tenant} {iqn}")
        datera.allow_initiator(vol, iqn, label=label)

    def undo(self, noted: dict[str, set[str]], api, config) -> list[str]:
        """Removes what every worker noted: the host's send targets to those portals, then
        its Datera initiators (`api`: a Datera session that may act in their tenants). Each
        is a step of the registration (fixtures/shared_host.py) run through the outage
        plugin's deferred teardown (fixtures/outage/deferred.py): one whose platform does not
        answer (the vCenter: VSPHERE; Datera: after the volumes whose ACLs hold the
        initiator) is queued and runs once it is back, at the latest in the session's final
        drain, which waits for it a bounded time (fixtures/outage/plugin.py). Returns what
        could not be removed, one line each (the cleanup command finds it)."""
        problems = []
        portals = sorted(noted.get("send_target", ()))
        steps = []
        if portals:
            steps.append(({"send_target": set(portals)},
                          lambda: vmware.remove_send_targets(self.vs, portals),
                          f"send targets {', '.join(portals)} of ESXi host {self.host_name}",
                          VSPHERE))
        for entry in sorted(noted.get("initiator", ())):
            tenant, _, iqn = entry.partition(" ")
            steps.append(({"initiator": {entry}},
                          lambda t=tenant, i=iqn: datera.delete_initiator(api, t, i),
                          f"initiator {tenant}:{iqn}", datera.DATERA))
        for notes, fn, what, platforms in steps:
            try:
                deferrable(config, self.users.step(notes, fn, gave_up=_final), what,
                           platforms)()
            except Exception as e:  # noqa: BLE001 (the cleanup command finds the rest)
                problems.append(f"{what}: {type(e).__name__}: {e}")
        return problems


def _final(error: Exception) -> bool:
    """Whether an undo step's error is final (not the platform being unreachable)."""
    return classify(error) is None


def host_key(settings: vmware.VsphereSettings, vs: vmware.Vsphere) -> str:
    """The registration name of the host: runs against another vCenter or host never meet
    (12 hex digits of its vCenter URL and managed object id)."""
    ident = f"{vmware.endpoint(settings)}|{vs.host._moId}"
    return "esxi-" + hashlib.sha256(ident.encode()).hexdigest()[:12]


@pytest.fixture(scope="session")
def esxi(request, target, testrun_uid, datera_admin):
    # The controller checked the login before any worker started (fixtures/platform_checks.py):
    # a VsphereError here is the vCenter failing mid-run, this test's error (an outage when
    # unreachable: the outage plugin forgets this fixture so a later iteration logs in again),
    # never a pytest.exit in a worker (xdist reports that as an INTERNALERROR).
    settings = vmware.settings_from_target(target)
    reporting.register_secret(settings.password)
    vs = vmware.connect(settings)
    chap = vmware.chap_for_run(settings, testrun_uid)
    reporting.register_secret(chap[1])
    users = HostUsers(host_key(settings, vs), testrun_uid)
    who = getattr(request.config, "workerinput", {}).get("workerid", "master")

    def undo(noted):
        for line in host.undo(noted, datera_admin, request.config):
            sys.stderr.write(f"\n[vancouver] {who}: vmware: could not undo the host's "
                             f"preparation: {line}\n")
        if users.adopted:
            sys.stderr.write(f"\n[vancouver] {who}: vmware: took over (undoing it too) what "
                             f"killed runs left on the host: {', '.join(users.adopted)}\n")

    try:
        users.join()
        host = Esxi(vs, chap, users)
        yield host
    finally:
        try:
            users.leave(undo)
            if users.handed_to:
                sys.stderr.write(f"\n[vancouver] {who}: vmware: another run uses the host: "
                                 f"its last worker undoes this run's preparation "
                                 f"({users.handed_to})\n")
        finally:
            vs.close()
