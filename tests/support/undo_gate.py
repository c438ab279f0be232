"""`-p tests.support.undo_gate` for an inner run (tests/test_vmware_undo_e2e.py): the ESXi
host's last user, before its undo (fixtures/shared_host.py `leave`), touches
`<gate>/undo-ready` and waits for `<gate>/vcenter-down` (the outer test took the vCenter down
meanwhile), so that the undo meets the outage. VANCOUVER_TEST_UNDO_GATE=<gate dir>; without it
the plugin does nothing."""
import os
from pathlib import Path

from fixtures import shared_host
from fixtures.waiters import wait_until

GATE_WAIT_S = 120.0


def pytest_configure(config):
    gate = os.environ.get("VANCOUVER_TEST_UNDO_GATE")
    if not gate:
        return
    gate = Path(gate)
    leave = shared_host.HostUsers.leave

    def gated_leave(self, undo):
        def gated(noted):
            (gate / "undo-ready").touch()
            wait_until(lambda: (gate / "vcenter-down").exists(), GATE_WAIT_S,
                       "the outer test to take the vCenter down", 0.05)
            return undo(noted)
        return leave(self, gated)
    shared_host.HostUsers.leave = gated_leave
