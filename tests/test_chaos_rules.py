"""The chaos switch's rules without a lab (lab/chaos.py, lab/chaos_cli.py): one rule per slot
(a rule for the same kind, service and cloud, or the same VIP, replaces the active one, so the
same command twice never stacks), and every bad value of `python -m lab chaos` is one line
naming it, status 2, checked before the lab is looked for."""
import random
import subprocess
import sys

import pytest

from lab import chaos
from tests.support.labcli import REPO


def test_a_rule_for_the_same_slot_replaces_the_active_one(tmp_path):
    path = chaos.control_path(tmp_path)
    first = chaos.add_rule(path, chaos.Rule(kind="errors", service="datera", status=503,
                                            rate=0.5))
    second = chaos.add_rule(path, chaos.Rule(kind="errors", service="datera", status=500,
                                             rate=0.5))
    assert [r.id for r in chaos.read_rules(path)] == [second.id]
    assert second.replaces == first.id and first.replaces is None
    assert f"(replaced {first.id})" in second.describe()
    # Stacked, two 50% rules would fail ~75% of requests; replaced, it stays 50%.
    control = chaos.Control(path, rng=random.Random(7))
    hit = sum(control.http_fault("datera").status is not None for _ in range(4000))
    assert 0.46 < hit / 4000 < 0.54, hit
    assert control.http_fault("datera", None).status in (500, None)   # the newer rule's

    # Other slots stand beside it: another kind, another service, one cloud, each VIP.
    for rule in (chaos.Rule(kind="latency", service="datera", ms=50),
                 chaos.Rule(kind="errors", service="cinder", status=503),
                 chaos.Rule(kind="errors", service="cinder", cloud="pike", status=503),
                 chaos.Rule(kind="vip-down", vip="VIP1"), chaos.Rule(kind="vip-down", vip="VIP2"),
                 chaos.Rule(kind="vip-down", vip="VIP1")):
        chaos.add_rule(path, rule)
    slots = [r.slot for r in chaos.read_rules(path)]
    assert len(slots) == len(set(slots)) == 6, slots


def test_an_expired_rule_is_not_replaced_but_dropped(tmp_path):
    path = chaos.control_path(tmp_path)
    chaos.add_rule(path, chaos.Rule(kind="reset", service="nova", until=1.0))   # long past
    again = chaos.add_rule(path, chaos.Rule(kind="reset", service="nova"))
    assert again.replaces is None and [r.id for r in chaos.read_rules(path)] == [again.id]


@pytest.mark.parametrize("args,says", [
    (("errors", "--service", "datera", "--for", "-3s"),
     "chaos errors: --for '-3s': expected a positive duration like 30s, 2m or 1h"),
    (("errors", "--service", "datera", "--for=-3s"), "--for '-3s': expected a positive"),
    (("errors", "--service", "datera", "--for", "soon"), "--for 'soon': expected a positive"),
    (("errors", "--service", "datera", "--for", "0s"), "--for '0s': expected a positive"),
    (("errors", "--service", "datera", "--for"), "--for: expected a value"),
    (("errors", "--service", "datera", "--rate", "2"),
     "--rate '2': expected a share above 0 and at most 1"),
    (("reset", "--service", "glance", "--rate", "-0.5"), "--rate '-0.5': expected a share"),
    (("errors", "--service", "datera", "--status", "200"),
     "--status 200: expected one of 500, 502, 503, 504"),
    (("errors", "--service", "swift"),
     "--service 'swift': expected one of datera, keystone, glance, cinder, nova, neutron"),
    (("latency", "--service", "cinder", "--cloud", "havana", "--ms", "5"),
     "--cloud 'havana': expected one of mitaka, newton, pike"),
    (("latency", "--service", "cinder", "--ms", "abc"), "--ms 'abc': expected a whole number"),
    (("latency", "--service", "nova", "--ms", "0"), "chaos latency: --ms 0: expected 1..60000 (see python -m lab chaos latency --help)"),
    (("latency", "--service", "nova", "--ms", "-5"), "chaos latency: --ms -5: expected 1..60000 (see python -m lab chaos latency --help)"),
    (("errors", "--service", "datera", "--cloud", "pike"),
     "chaos errors: --cloud: only an OpenStack service belongs to a cloud"),
    (("vip-down", "VIP3"), "vip 'VIP3': expected one of VIP1, VIP2"),
    (("errors",), "chaos errors: missing --service"),
    (("explode",), "chaos: command 'explode': expected one of errors, reset, latency"),
])
def test_bad_input_is_one_line_even_without_a_lab(tmp_path, args, says):
    proc = subprocess.run([sys.executable, "-m", "lab", "chaos", *args, "--run-dir",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("lab: ") and says in line, line
    assert "usage:" not in line and "Traceback" not in line
    # one format for every usage mistake (lab/usage.py), argparse's and the lab's own checks
    command = "chaos" if args[0] == "explode" else f"chaos {args[0]}"
    assert line.endswith(f" (see python -m lab {command} --help)"), line


def test_a_good_rule_without_a_lab_is_status_1(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lab", "chaos", "errors", "--service", "datera",
                           "--run-dir", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.strip() == f"lab: no lab running in {tmp_path}"


def test_the_lab_help_and_errors_name_only_the_public_commands():
    """`_supervise` is the detached supervisor's own entry: not a command to offer a user."""
    shown = subprocess.run([sys.executable, "-m", "lab", "--help"], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "_supervise" not in shown.stdout, shown.stdout
    assert "usage: python -m lab [-h] command ..." in shown.stdout
    wrong = subprocess.run([sys.executable, "-m", "lab", "bogus"], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert (wrong.returncode, wrong.stderr) == (
        2, "lab: command 'bogus': expected one of up, down, status, chaos "
           "(see python -m lab --help)\n")
