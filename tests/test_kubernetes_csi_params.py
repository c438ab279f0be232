"""The Datera CSI driver's parameter and size rules (lab/kubernetes/datera_csi.py) and the
deb-src derivation of the build (lab/kubernetes/debsrc.py): no lab needed.

Facts: datera-csi v1.0.13 pkg/driver/controller.go (parseVolParams, CreateVolume size rule),
pkg/client/volume.go (SetPerformancePolicy), reference kubernetes.md §1.2, §10.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from lab.kubernetes import datera_csi as dc

GIB = 1 << 30


def test_defaults_parse_like_the_driver():
    opts = dc.parse_params({})
    assert opts["replica_count"] == 3 and opts["placement_mode"] == "hybrid"
    assert opts["ip_pool"] == "default" and opts["round_robin"] is False
    assert all(opts[k] == 0 for k in dc.QOS_PARAMS)


@pytest.mark.parametrize("key", [*dc.INTS])
def test_every_integer_parameter_refuses_non_integers(key):
    with pytest.raises(dc.CsiError) as e:
        dc.parse_params({key: "fast"})
    assert e.value.code == "InvalidArgument"
    assert str(e.value) == ('rpc error: code = InvalidArgument desc = '
                            'strconv.ParseInt: parsing "fast": invalid syntax')


@pytest.mark.parametrize("key", [*dc.BOOLS])
def test_every_boolean_parameter_refuses_non_booleans(key):
    with pytest.raises(dc.CsiError, match=r'strconv.ParseBool: parsing "yes": invalid syntax'):
        dc.parse_params({key: "yes"})


def test_go_spellings_of_booleans_and_signed_integers_are_accepted():
    opts = dc.parse_params({"round_robin": "T", "delete_on_unmount": "0", "total_iops_max": "+5"})
    assert opts["round_robin"] is True and opts["delete_on_unmount"] is False
    assert opts["total_iops_max"] == 5


@pytest.mark.parametrize("required, limit, gib", [
    (None, 0, 16),                    # no capacity range: DefaultSize
    (500 * (1 << 20), 0, 16),         # under 1 GiB floors to 0: DefaultSize
    (int(1.5 * GIB), 0, 1),           # floor, not ceil
    (2 * GIB, 0, 2),
    (2 * GIB, 3 * GIB, 3),            # the limit wins when set
])
def test_size_rule(required, limit, gib):
    assert dc.size_gib(required, limit) == gib


def test_required_above_limit_is_refused():
    with pytest.raises(dc.CsiError, match="RequiredBytes must be less than or equal to LimitBytes"):
        dc.size_gib(3 * GIB, 2 * GIB)


def test_performance_policy_carries_the_six_limits_and_per_gb_caps_totals():
    opts = dc.parse_params({"read_iops_max": "100", "write_iops_max": "200",
                            "total_iops_max": "5000", "read_bandwidth_max": "1000",
                            "write_bandwidth_max": "2000", "total_bandwidth_max": "0",
                            "iops_per_gb": "100", "bandwidth_per_gb": "50"})
    assert dc.performance_policy(opts, 4) == {
        "read_iops_max": 100, "write_iops_max": 200, "total_iops_max": 400,
        "read_bandwidth_max": 1000, "write_bandwidth_max": 2000, "total_bandwidth_max": 200}


def test_chap_secret_maps_to_chap_or_mutual_chap():
    one = {"node.session.auth.username": "u", "node.session.auth.password": "p"}
    assert dc.chap_auth(one) == {"type": "chap", "target_user_name": "u", "target_pswd": "p"}
    both = {**one, "node.session.auth.username_in": "ui", "node.session.auth.password_in": "pi"}
    assert dc.chap_auth(both)["type"] == "mchap"
    assert dc.chap_auth(None) is None


def test_app_instance_name_is_csi_plus_the_name_cut_to_58():
    assert dc.ai_name("pvc-" + "a" * 36) == "CSI-pvc-" + "a" * 36
    assert len(dc.ai_name("x" * 80)) == len("CSI-") + 58


def test_debsrc_derives_source_entries_from_the_machines_debian_sources(tmp_path):
    """debsrc.py prints deb + deb-src lines for this release's suites only (both formats)."""
    out = subprocess.run([sys.executable, str(Path("lab/kubernetes/debsrc.py"))],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    codename = next(line.split("=", 1)[1].strip().strip('"')
                    for line in open("/etc/os-release") if line.startswith("VERSION_CODENAME="))
    assert out, "no Debian entries derived"
    assert {line.split()[0] for line in out} == {"deb", "deb-src"}
    for line in out:
        suite = [w for w in line.split() if w.startswith(codename)]
        assert suite, f"{line!r} names no {codename} suite"


def test_a_refused_login_answer_is_a_csi_error_without_the_login_body(monkeypatch):
    """An injected 503 on the driver's login (`lab chaos errors --service datera`) once escaped
    NodeStage as dfs_sdk's Api503RetryError: the pod's thread died (the pod never ran) and the
    thread's traceback wrote dfs_sdk's message, the login body with the password, to the log."""
    from clients.dfs_compat import dexc
    from lab.kubernetes.config import DateraAccess

    body = '[REQUEST]: PUT /login\n{"name": "admin", "password": "pw-secret"}\n503'

    def refused(*args, **kwargs):
        raise dexc.Api503RetryError(body, {"http": 503})

    monkeypatch.setattr(dc.dfs_sdk, "get_api", refused)
    csi = dc.DateraCsi(DateraAccess("127.0.7.10", 7717, "admin", "pw-secret", "/root/Vancouver-KU"))
    with pytest.raises(dc.CsiError) as e:
        csi._api()
    assert e.value.code == "Unavailable"          # kubelet's NodeStage retries it (pods.py)
    assert "pw-secret" not in str(e.value) and "Api503RetryError" in str(e.value)
