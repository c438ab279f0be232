"""The lab Cinder's scheduler and volume-manager failure paths, on the model with Ceph pools and
a backend that fails on demand (no lab needed).

Facts: cinder/scheduler/filters/capabilities_filter.py and extra_specs_ops.py (8.0.0-11.0.0);
cinder/volume/manager.py (error, error_deleting, error_extending; retype and migration errors
put the previous status back with migration_status error).
"""
import pytest

from lab.openstack.cinder.backends import BackendError
from lab.openstack.cinder.backends.ceph import CephDriver
from lab.openstack.cinder.models import Caller, CinderModel
from lab.openstack.cinder.models.scheduler import match, satisfies
from lab.openstack.releases import PROFILES

ADMIN = Caller(project_id="admin-project", user_id="admin", is_admin=True)
TENANT = Caller(project_id="c0ffee00c0ffee00c0ffee00c0ffee00", user_id="demo")
DATERA_CAPS = {"volume_backend_name": "datera", "vendor_name": "Datera",
               "storage_protocol": "iSCSI", "QoS_support": True, "free_capacity_gb": 10240,
               "driver_version": "2.4.0"}


@pytest.mark.parametrize("value,req,want", [
    ("datera", "datera", True), ("datera", "ceph", False),
    (True, "<is> True", True), (True, "<is> False", False), (False, "<is> True", False),
    (True, "True", False),                    # a bool capability needs <is>, as in Cinder
    (10240, ">= 100", True), (10240, "<= 100", False), (10240, "== 10240", True),
    (10240, "= 100", True),                   # '=' means at least, for numbers
    ("iSCSI", "<in> iSC", True), ("iSCSI", "<in> rbd", False),
    ("datera", "<or> ceph <or> datera", True), ("lvm", "<or> ceph <or> datera", False),
    ("2.4.0", "s>= 2.2", True), ("2.0", "s== 2.4.0", False), ("x", "s!= y", True),
    (None, "<is> True", False), ("abc", ">= 1", False),
])
def test_extra_spec_operators_match_as_cinder(value, req, want):
    assert match(value, req) is want


def test_capabilities_scope_is_unscoped_and_vendor_scopes_are_ignored():
    assert satisfies(DATERA_CAPS, {"capabilities:volume_backend_name": "datera"})
    assert not satisfies(DATERA_CAPS, {"capabilities:volume_backend_name": "ceph"})
    assert satisfies(DATERA_CAPS, {"DF:replica_count": "1", "qos:total_iops_sec": "5",
                                   "volume_backend_name": "datera"})
    assert satisfies(DATERA_CAPS, {"capabilities:QoS_support": "<is> True",
                                   "free_capacity_gb": ">= 100"})
    assert not satisfies(DATERA_CAPS, {"capabilities:multiattach": "<is> True"})  # unreported
    assert not satisfies(DATERA_CAPS, {"thin_provisioning_support": "<is> True"})


class FlakyDriver(CephDriver):
    """A Ceph pool whose named methods fail: BackendError (a driver's own failure) or a
    TypeError (a bug the manager must still turn into an error state)."""

    def __init__(self, *a, **kw):
        self.failing: dict[str, type] = {}
        super().__init__(*a, **kw)

    def __getattribute__(self, name):
        failing = object.__getattribute__(self, "__dict__").get("failing", {})
        if name in failing:
            exc = failing[name]

            def fail(*a, **kw):
                raise exc("datera-like backend refused" if exc is BackendError else
                          "unsupported operand type(s) for +: 'NoneType' and 'int'")
            return fail
        return object.__getattribute__(self, name)


@pytest.fixture
def model(tmp_path):
    drivers = {"ceph": CephDriver(pool_dir=tmp_path / "a", monitor="127.0.6.1"),
               "other": FlakyDriver(pool_dir=tmp_path / "b", monitor="127.0.6.1",
                                    backend_name="other", pool="other")}
    m = CinderModel(profile=PROFILES["pike"], host="ctl", drivers=drivers,
                    default_backend="ceph")
    m.create_type(ADMIN, "ceph", extra_specs={"volume_backend_name": "ceph"})
    m.create_type(ADMIN, "other", extra_specs={"capabilities:volume_backend_name": "other"})
    yield m
    m.close()


def _wait(m, vid, done, timeout=30):
    assert m.wait_for(lambda: done(m.volumes[vid]), timeout), vars(m.volumes[vid])
    return m.volumes[vid]


def _volume(m, vtype="other"):
    v = m.create_volume(TENANT, size=1, volume_type=vtype)
    return _wait(m, v.id, lambda v: v.status != "creating")


@pytest.mark.parametrize("exc", [BackendError, TypeError])
def test_create_failure_ends_in_error_with_a_clean_reason(model, exc):
    model.drivers["other"].failing["create_volume"] = exc
    v = _volume(model)
    assert v.status == "error" and v.host.startswith("ctl@other")
    assert "NoneType" not in v.error_reason and "TypeError" not in v.error_reason
    model.delete_volume(TENANT, v.id)           # an errored volume is deletable
    assert model.wait_for(lambda: v.id not in model.volumes, 30)


@pytest.mark.parametrize("exc", [BackendError, TypeError])
def test_delete_failure_is_error_deleting_then_reset_status_clears_it(model, exc):
    v = _volume(model)
    model.drivers["other"].failing["delete_volume"] = exc
    model.delete_volume(TENANT, v.id)
    _wait(model, v.id, lambda v: v.status != "deleting")
    assert v.status == "error_deleting"
    model.drivers["other"].failing.clear()
    model.reset_status(ADMIN, v.id, status="available")
    model.delete_volume(TENANT, v.id)
    assert model.wait_for(lambda: v.id not in model.volumes, 30)


def test_cascade_delete_failure_leaves_no_snapshot_in_deleting(model):
    v = _volume(model)
    s = model.create_snapshot(TENANT, v.id)
    assert model.wait_for(lambda: s.status == "available", 30)
    model.drivers["other"].failing["delete_snapshot"] = TypeError
    model.delete_volume(TENANT, v.id, cascade=True)
    _wait(model, v.id, lambda v: v.status != "deleting")
    assert v.status == "error_deleting" and s.status == "error_deleting"


@pytest.mark.parametrize("exc", [BackendError, TypeError])
def test_extend_failure_is_error_extending_and_deletable(model, exc):
    v = _volume(model)
    model.drivers["other"].failing["extend_volume"] = exc
    model.extend_volume(TENANT, v.id, 2)
    _wait(model, v.id, lambda v: v.status != "extending")
    assert v.status == "error_extending" and v.size == 1
    model.delete_volume(TENANT, v.id)           # error_extending is deletable in Cinder
    assert model.wait_for(lambda: v.id not in model.volumes, 30)


def test_snapshot_failure_is_error_and_deletable(model):
    v = _volume(model)
    model.drivers["other"].failing["create_snapshot"] = TypeError
    s = model.create_snapshot(TENANT, v.id)
    assert model.wait_for(lambda: s.status != "creating", 30) and s.status == "error"
    model.delete_snapshot(TENANT, s.id)
    assert model.wait_for(lambda: s.id not in model.snapshots, 30)


@pytest.mark.parametrize("exc", [BackendError, TypeError])
def test_migration_failure_puts_status_back_with_migstat_error(model, exc):
    v = _volume(model, "ceph")
    model.drivers["other"].failing["create_volume"] = exc
    model.retype(TENANT, v.id, "other", "on-demand")
    _wait(model, v.id, lambda v: v.status != "retyping")
    assert v.status == "available" and v.migration_status == "error"
    assert v.host.startswith("ctl@ceph") and model.types[v.volume_type_id].name == "ceph"
    assert not [t for t in model.volumes.values() if t.id != v.id]   # no temporary left


def test_no_valid_backend_is_error_with_pikes_user_message(model):
    model.create_type(ADMIN, "nowhere", extra_specs={"volume_backend_name": "nowhere"})
    v = _volume(model, "nowhere")
    assert v.status == "error" and v.host is None
    [msg] = model.list_messages(TENANT)
    assert msg["resource_uuid"] == v.id and msg["event_id"] == "VOLUME_VOLUME_001_003"
    assert msg["user_message"] == ("schedule allocate volume:Could not find any available "
                                   "weighted backend.")


def test_clone_and_snapshot_volume_stay_on_the_source_backend(model):
    v = _volume(model)
    s = model.create_snapshot(TENANT, v.id)
    assert model.wait_for(lambda: s.status == "available", 30)
    for kw in ({"snapshot_id": s.id}, {"source_volid": v.id}):
        c = model.create_volume(TENANT, **kw)
        c = _wait(model, c.id, lambda c: c.status != "creating")
        assert c.status == "available" and c.host == v.host, vars(c)


def test_snapshot_taken_before_a_move_stays_usable_and_cascade_deletes(model, tmp_path):
    """The issue's TypeError: a snapshot taken on one backend, its volume moved to another
    (the API now refuses that, so the move is forced here), then a volume from the snapshot
    and a cascade delete: both follow the snapshot's own backend."""
    v = _volume(model, "ceph")
    with open(model.drivers["ceph"].local_path(v.id), "r+b") as f:
        f.write(b"before the move")
    s = model.create_snapshot(TENANT, v.id)
    assert model.wait_for(lambda: s.status == "available", 30)
    model._migrate(v.id, "other", model.volumes[v.id].volume_type_id)
    assert v.host.startswith("ctl@other") and v.migration_status == "success"
    c = model.create_volume(TENANT, snapshot_id=s.id)
    c = _wait(model, c.id, lambda c: c.status != "creating")
    assert c.status == "available" and c.host.startswith("ctl@ceph"), vars(c)
    with open(model.drivers["ceph"].local_path(c.id), "rb") as f:
        assert f.read(15) == b"before the move"
    model.delete_volume(TENANT, c.id)
    model.delete_volume(TENANT, v.id, cascade=True)
    assert model.wait_for(lambda: not model.volumes and not model.snapshots, 30), \
        [(x.id, x.status) for x in (*model.volumes.values(), *model.snapshots.values())]
    assert not list(model.drivers["ceph"].dir.iterdir())
