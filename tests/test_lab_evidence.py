"""tests/support/lab_evidence.py: what a failed lab end-to-end case prints (component log
tails, the inner run's failures and tail), bounded and with the lab's secrets masked; a run
dir laid out as `python -m lab` lays it out, no lab started."""
import json

import pytest

from tests.support import lab_evidence
from tests.support.lab_evidence import evidence, evidence_on_failure
from tests.support.labcli import LabCli

PASSWORD = "pVcenterSecret123"
CHAP = "chapSecretValue99"
TOKEN = "kubeTokenValue77"


@pytest.fixture
def lab(tmp_path):
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "target").mkdir()
    (run / "vsphere").mkdir()
    (run / "target" / "target.yaml").write_text(
        f"vsphere:\n  url: https://127.0.0.1/sdk\n  password: {PASSWORD}\n")
    (run / "target" / "vsphere.env").write_text(f"VSPHERE_PASSWORD={PASSWORD}\n"
                                                f"KUBE_TOKEN={TOKEN}\n")
    (run / "vsphere" / "config.json").write_text(json.dumps(
        {"user": "admin", "hosts": [{"chap_secret": CHAP}]}))
    lines = [f"line {i}" for i in range(200)]
    lines += [f"guest vm-42: posting with {PASSWORD}", "x" * 5000]
    (run / "logs" / "vsphere.log").write_text("\n".join(lines) + "\n")
    (run / "logs" / "supervisor.log").write_text(f"restarted vsphere; token={TOKEN}\n")
    return LabCli("127.71", run)


def _output(tmp_path, n_after: int = 100):
    out = tmp_path / "output.txt"
    out.write_text("\n".join(
        ["[gw0] PASSED scenarios/vmware/test_vmware.py::test_vmware[1]",
         "[gw1] FAILED scenarios/vmware/test_vmware.py::test_vmware[2]",
         "=================================== FAILURES ===================================",
         "E   TimeoutError: timed out after 128 s; the VM is poweredOn, guestinfo.state running",
         f"E   chap {CHAP}"]
        + [f"tail {i}" for i in range(n_after)]) + "\n")
    return out


def test_evidence_is_bounded_names_the_failure_and_masks_secrets(lab, tmp_path):
    text = evidence(lab, ("vsphere",), _output(tmp_path))
    for secret in (PASSWORD, CHAP, TOKEN):
        assert secret not in text
    assert "posting with ***" in text and "token=***" in text
    log = text.split("-- logs/vsphere.log")[1].split("-- logs/supervisor.log")[0]
    assert len(log.strip().splitlines()) == lab_evidence.LOG_LINES + 1   # its header line
    assert "line 142" in log and "line 141\n" not in log
    assert max(len(ln) for ln in text.splitlines()) <= lab_evidence.LINE_CHARS + 10
    assert "[gw1] FAILED scenarios/vmware/test_vmware.py::test_vmware[2]" in text
    assert "guestinfo.state running" in text           # from the failures section
    # the section's first FAILURE_LINES lines (its header, two E lines, tail 0-76), then
    # the output's last OUTPUT_LINES (tail 40-99)
    assert [text.count(f"tail {n}\n") for n in (30, 50, 80, 99)] == [1, 2, 1, 1]


def test_missing_logs_and_output_are_said_not_raised(tmp_path):
    lab = LabCli("127.71", tmp_path / "nothing")
    text = evidence(lab, ("vsphere",), tmp_path / "none.txt")
    assert "no log" in text and "not readable" in text


def test_a_failure_prints_the_evidence_and_goes_on_unchanged(lab, tmp_path, capsys):
    with pytest.raises(AssertionError, match="^boom$"):
        with evidence_on_failure(lab, ("vsphere",), _output(tmp_path, 3)):
            raise AssertionError("boom")
    out = capsys.readouterr().out
    assert "==== lab evidence" in out and "-- logs/vsphere.log" in out and PASSWORD not in out


def test_a_pass_or_a_skip_prints_nothing(lab, capsys):
    with evidence_on_failure(lab, ("vsphere",)):
        pass
    with pytest.raises(pytest.skip.Exception):
        with evidence_on_failure(lab, ("vsphere",)):
            pytest.skip("not here")
    assert capsys.readouterr().out == ""
