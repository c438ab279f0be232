"""The conformance job's own logic: counting Tempest's results (class fixtures included),
the exclusion lists' format, and the tempest.conf made from a target directory."""
import re
from pathlib import Path

import pytest
import yaml

from conformance.run import EXCLUDE_DIR, count, exclusions
from conformance.tempest_conf import ConfError, tempest_conf

LISTED = [
    "tempest.api.volume.test_a.ATest.test_one[id-1,smoke]",
    "tempest.api.volume.test_a.ATest.test_two[id-2]",
    "tempest.api.volume.test_b.BTest.test_one[id-3]",
    "tempest.api.volume.test_b.BTest.test_two[id-4]",
    "tempest.api.volume.test_c.CTest.test_one[id-5]",
    "tempest.api.volume.test_d.DTest.test_one[id-6]",
    "tempest.api.volume.test_e.ETest.test_gone[id-7]",
]


def test_count_expands_class_fixtures_and_exclusions():
    results = {
        "tempest.api.volume.test_a.ATest.test_one[id-1,smoke]": "success",
        "tempest.api.volume.test_a.ATest.test_two[id-2]": "fail",
        "setUpClass (tempest.api.volume.test_b.BTest)": "fail",
        "setUpClass (tempest.api.volume.test_c.CTest)": "skip",
    }
    c = count(LISTED, results, [re.compile(r"tempest\.api\.volume\.test_d\.")])
    # B's two methods fail with their class; E never reported: failed, not silently dropped
    assert (c.passed, c.failed, c.skipped, c.excluded) == (1, 4, 1, 1)
    assert "tempest.api.volume.test_e.ETest.test_gone" in c.failures
    assert c.ratio == pytest.approx(1 / 5)


@pytest.mark.parametrize("path", sorted(EXCLUDE_DIR.glob("*.txt")), ids=lambda p: p.name)
def test_every_exclusion_has_a_reason_and_compiles(path):
    lines = [line for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines
    for line in lines:
        pattern, sep, reason = line.partition("#")
        assert sep and reason.strip(), f"{path.name}: no reason on: {line}"
        re.compile(pattern.strip())
    assert len(exclusions(path)) == len(lines)


def _target(tmp_path: Path, release: str) -> Path:
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump({"clouds": {f"{release}-admin": {
        "auth": {"auth_url": "http://127.9.3.1:5000/v3", "username": "admin",
                 "password": "pw", "project_name": "admin", "user_domain_name": "Default",
                 "project_domain_name": "Default"}, "region_name": "RegionOne"}}}))
    (tmp_path / "target.yaml").write_text(yaml.safe_dump({"openstack": {
        "clouds_yaml": "clouds.yaml", "clouds": {release: {
            "release": release, "tenant_cloud": release, "admin_cloud": f"{release}-admin"}}}}))
    return tmp_path


@pytest.mark.parametrize("release,cinder,nova", [("pike", "3.43", "2.53"),
                                                 ("newton", "3.15", "2.38"),
                                                 ("mitaka", "3.0", "2.25")])
def test_tempest_conf_per_release(tmp_path, release, cinder, nova):
    c = tempest_conf(_target(tmp_path, release), release,
                     extra={"compute": {"image_ref": "img"}})
    assert c["volume"]["max_microversion"] == cinder
    assert c["compute"]["max_microversion"] == nova
    assert c["volume"]["catalog_type"] == "volumev3"
    assert c["auth"]["use_dynamic_credentials"] == "true"
    assert c["auth"]["admin_username"] == "admin"
    assert c["identity"]["uri_v3"] == "http://127.9.3.1:5000/v3"
    assert c["volume-feature-enabled"]["backup"] == "true"    # cinder-backup (posix driver)
    assert c["service_available"]["swift"] == "false"
    assert c["compute"]["image_ref"] == "img"


def test_tempest_conf_unknown_cloud_is_one_line(tmp_path):
    with pytest.raises(ConfError, match="has no cloud 'queens'"):
        tempest_conf(_target(tmp_path, "pike"), "queens")
