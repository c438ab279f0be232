"""The lab's Datera CSI under a 503 storm, end to end (issue 13; the trial's dead pod thread):
a lab of this module's own (net 127.231: datera, ldap, kubernetes), `lab chaos errors
--service datera --status 503` on half the requests for STORM_S, the README's example
StorageClass, PVC and pod applied meanwhile: the pod reaches Succeeded (its CSI calls retried
with dfs_sdk's backoff, then by the provisioner's and kubelet's backoff), the PVC's deletion
under a second storm removes the PV, no lab log holds the Datera password, and `lab down`
removes the state. Fixed net: run under the lock of tests/support/labcli.py's nets."""
import json
import stat
from pathlib import Path

import pytest
import yaml

from fixtures.waiters import poll_until
from tests.support.outage_run import own_lab

pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.timeout(900)]
NET = "127.231"
STORM_S = 40                 # the stimulus: the pod's whole start falls inside it
RATE = "0.5"
POD_WAIT_S = 300.0           # provisioning + NodeStage, each retried through the storm
PV_WAIT_S = 180.0
EXAMPLES = Path(__file__).resolve().parents[1] / "lab" / "kubernetes" / "examples"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with own_lab(tmp_path_factory, NET, "datera,ldap,kubernetes") as lab:
        yield lab


def _clients(lab):
    from kubernetes import client, config
    api = config.new_client_from_config(str(lab.run_dir / "target" / "kubeconfig"))
    return client.CoreV1Api(api), client.StorageV1Api(api)


def _storm(lab) -> None:
    out = lab.run("chaos", "errors", "--service", "datera", "--status", "503", "--rate", RATE,
                  "--for", f"{STORM_S}s")
    assert out.returncode == 0, out.stderr


def test_the_example_pod_succeeds_through_a_datera_503_storm(lab):
    core, storage = _clients(lab)
    docs = {d["kind"]: d for f in sorted(EXAMPLES.glob("*.yaml"))
            for d in yaml.safe_load_all(f.read_text()) if d}
    _storm(lab)
    storage.create_storage_class(docs["StorageClass"])
    core.create_namespaced_persistent_volume_claim("default", docs["PersistentVolumeClaim"])
    core.create_namespaced_pod("default", docs["Pod"])
    name = docs["Pod"]["metadata"]["name"]

    phase = poll_until(lambda: core.read_namespaced_pod(name, "default").status.phase,
                       lambda p: p in ("Succeeded", "Failed"), timeout=POD_WAIT_S, interval=1.0)
    assert phase == "Succeeded", [e.message for e in core.list_namespaced_event("default").items]
    assert "hello from datera" in core.read_namespaced_pod_log(name, "default")
    datera_log = (lab.run_dir / "logs" / "datera.log").read_text()
    assert "chaos: injected HTTP 503" in datera_log   # the storm met the CSI's requests

    # deletion under a storm too: the provisioner retries DeleteVolume until the PV is gone
    core.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    _storm(lab)
    core.delete_namespaced_persistent_volume_claim(
        docs["PersistentVolumeClaim"]["metadata"]["name"], "default")
    left = poll_until(lambda: [pv.metadata.name for pv in core.list_persistent_volume().items],
                      lambda names: not names, timeout=PV_WAIT_S, interval=1.0)
    assert not left, [e.message for e in core.list_event_for_all_namespaces().items]

    password = json.loads((lab.run_dir / "kubernetes" / "config.json").read_text())[
        "datera"]["password"]
    assert stat.S_IMODE(lab.run_dir.stat().st_mode) == 0o700
    for log in (lab.run_dir / "logs").glob("*.log"):
        assert password not in log.read_text(), log
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log
    assert "Traceback" not in (lab.run_dir / "logs" / "kubernetes.log").read_text()
