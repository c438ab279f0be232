"""attach_datera_volume's teardown order when the ACL set's answer is lost (issue 13): an
outage can swallow the answer of a set that the array still applies when it resumes
(rehearsal cc11: the initiator's deletion was then refused, 409 "in the ACL of ...")."""
from types import SimpleNamespace

import pytest

import fixtures.datera as datera


def test_a_lost_acl_answer_still_gets_its_revoke_before_the_initiator_goes(monkeypatch):
    calls, finalizers = [], []
    request = SimpleNamespace(config=None, addfinalizer=finalizers.append)
    monkeypatch.setattr(datera, "deferrable", lambda config, fn, what, *platforms: fn)
    monkeypatch.setattr(datera.transport, "for_settings", lambda settings: object())

    def allow_lost(vol, iqn, label):
        calls.append(f"allow {iqn}")      # applied by the array, the answer never came
        raise TimeoutError("read timed out")
    monkeypatch.setattr(datera, "allow_initiator", allow_lost)
    monkeypatch.setattr(datera, "revoke_initiator",
                        lambda vol, iqn: calls.append(f"revoke {iqn} from {vol.name}"))
    monkeypatch.setattr(datera, "delete_initiator",
                        lambda api, tenant, iqn: calls.append(f"delete {tenant}:{iqn}"))
    # the fixture's own function: request, run_prefix, datera_settings, proof
    attach = datera.attach_datera_volume.__wrapped__(request, "run1", None, None)
    vol = datera.DateraVolume(api="tenant session", tenant="/root/Vancouver-OP", name="v1",
                              ai={}, si={}, volume={})
    with pytest.raises(TimeoutError):
        attach(vol)
    for finalizer in reversed(finalizers):     # pytest runs finalizers last-in first-out
        finalizer()
    iqn = attach.host_iqn
    assert calls == [f"allow {iqn}", f"revoke {iqn} from v1",
                     f"delete /root/Vancouver-OP:{iqn}"]
