"""Fixtures shared by the project's tests; their helpers live in tests/support/ (a test module
never imports another test module).

- make_lab: a lab of a test's own, on a net of its own (tests/support/labcli.py);
- lab_api, lab_tenant: the session lab's Datera through dfs_sdk, in a tenant per test
  (tests/support/datera_lab.py);
- ost, cc: the target's OpenStack clouds, and Cinder resources removed after each test
  (tests/support/openstack.py).
"""
import uuid

import pytest

from tests.support.datera_lab import drop_tenant
from tests.support.dsdk import Udc, connect
from tests.support.labcli import LabCli
from tests.support.openstack import CinderClouds, OpenStackTarget


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serial: times its own inner runs (--duration, pacing, rotation by time): "
                   "make test runs it after the shared phase, like `slow`")
    config.addinivalue_line(
        "markers", "measures: measures IOPS or QoS through the session lab: make test runs it "
                   "last, with nothing beside it")
    config.addinivalue_line(
        "markers", "sweeps: in a module that sweeps the session lab (SESSION_LAB_SWEEPERS, set "
                   "by this conftest): make test runs these slow/serial tests one at a time")


# Modules whose tests sweep the session lab (`cleanup --delete`, then "nothing demo-prefixed is
# left") or make demo-prefixed resources there: marked `sweeps` here, so `make test` phase 2
# runs their slow/serial tests in a lane of their own, one after another, beside the modules
# that start labs of their own. tryfirst: -m selects on the marks that this hook adds.
SESSION_LAB_SWEEPERS = {"test_openstack_scenarios", "test_vmware_scenario",
                        "test_kubernetes_cleanup", "test_vmware_undo_e2e"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py") in \
                SESSION_LAB_SWEEPERS:
            item.add_marker(pytest.mark.sweeps)


@pytest.fixture
def make_lab(tmp_path):
    """make_lab(net) -> LabCli with its own run dir; whatever it started is stopped after."""
    made: list[LabCli] = []

    def make(net: str) -> LabCli:
        lab = LabCli(net, tmp_path / f"lab-{net}")
        made.append(lab)
        return lab

    yield make
    for lab in made:   # --force: a run the test left behind must not keep its lab alive
        lab.run("down", "--force")


@pytest.fixture(scope="module")
def lab_api(target):
    """An admin dfs_sdk session on the session lab's Datera (skips on a real cluster)."""
    if not target.is_lab or target.section("datera").get("transport") != "lab":
        pytest.skip("needs the embedded lab's data plane (initiator login + NBD); "
                    "a real cluster is reached through iSCSI instead")
    return connect(Udc.load(target.file("datera", "udc"), target.file("datera", "ca_file")))


@pytest.fixture
def lab_tenant(lab_api):
    """A fresh Datera tenant /root/vdp-<8 hex>, dropped with all its app instances after."""
    path = f"/root/vdp-{uuid.uuid4().hex[:8]}"
    lab_api.tenants.create(name=path.rsplit("/", 1)[1])
    yield path
    drop_tenant(lab_api, path)


@pytest.fixture(scope="module")
def ost(target) -> OpenStackTarget:
    return OpenStackTarget(target)


@pytest.fixture
def cc(ost):
    clouds = CinderClouds(ost)
    yield clouds
    clouds.cleanup()
