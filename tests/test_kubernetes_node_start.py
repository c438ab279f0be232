"""lab/kubernetes/__main__.py's start: the agents' imports run niced in a thread of their own
while a kube-apiserver it started builds its spec; nothing else of the node inherits that
priority (Linux keeps a nice value per thread)."""
import os
import sys
import threading

import pytest

from lab.kubernetes.__main__ import IMPORT_NICE, _import_agents


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.parametrize("behind_apiserver", [True, False])
def test_the_agents_are_imported_and_the_callers_priority_is_kept(behind_apiserver,
                                                                   monkeypatch):
    seen: list[int] = []
    real = os.setpriority

    def recording(which, who, prio):
        seen.append(prio)
        real(which, who, prio)
    monkeypatch.setattr(os, "setpriority", recording)
    before = _nice()
    _import_agents(behind_apiserver)
    assert _nice() == before
    assert "lab.kubernetes.pods" in sys.modules and "lab.kubernetes.csi_controller" in sys.modules
    assert seen == ([min(19, before + IMPORT_NICE)] if behind_apiserver else [])
