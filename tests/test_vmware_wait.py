"""fixtures.vmware.wait_guest's timeout names where the guest stood (issue 13: a VM's guest
that never reported done in CI left only "timed out after 128 s")."""
from types import SimpleNamespace

import pytest

from fixtures import vmware


def _vm(extra: dict[str, str], power: str = "poweredOn"):
    options = [SimpleNamespace(key=k, value=v) for k, v in extra.items()]
    return SimpleNamespace(name="vm1", config=SimpleNamespace(extraConfig=options),
                           runtime=SimpleNamespace(powerState=power))


def test_a_guest_that_never_finishes_is_named_with_its_state_power_and_console_tail():
    vm = _vm({"guestinfo.userdata": "secret script", "guestinfo.state": "running",
              "guestinfo.output": "x" * 1000 + "fio: verifying"})
    with pytest.raises(TimeoutError) as e:
        vmware.wait_guest(vm, 0.3)
    msg = str(e.value)
    assert msg.startswith("timed out after 0 s waiting for VM vm1's guest to finish; ")
    assert "the VM is poweredOn, guestinfo.state running" in msg
    assert msg.endswith("fio: verifying'") and "x" * (vmware.GUEST_TAIL + 1) not in msg
    assert "secret script" not in msg


def test_a_guest_that_published_nothing_says_so():
    with pytest.raises(TimeoutError, match=r"the VM is poweredOff, guestinfo.state "
                                           r"\(none published\)$"):
        vmware.wait_guest(_vm({}, "poweredOff"), 0.3)


def test_done_returns_what_the_guest_published():
    assert vmware.wait_guest(_vm({"guestinfo.state": "done", "guestinfo.exitcode": "0"}),
                             5) == {"guestinfo.state": "done", "guestinfo.exitcode": "0"}


def test_a_socket_timeout_of_the_vcenter_itself_is_raised_as_it_came():
    """The outage watch classifies a socket's "timed out" (fixtures/outage/classify.py): it
    must not be rewritten as a guest that never finished."""
    class Unanswered:
        name = "vm1"

        @property
        def config(self):
            raise TimeoutError("timed out")
    with pytest.raises(TimeoutError) as e:
        vmware.wait_guest(Unanswered(), 5)
    assert str(e.value) == "timed out"
