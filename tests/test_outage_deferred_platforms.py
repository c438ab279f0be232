"""Deferred deletions wait only for the platforms they need (issue 13): while the LDAP
directory is down (the watcher announced it), Datera's volume deletions still run; a run that
ended with the directory down had every deletion of its last iterations queued behind the
directory, so the paused workers never drained them and the volumes leaked."""
import pytest

from clients.dfs_compat import dexc
from fixtures.outage.deferred import DeferredTeardown
from fixtures.outage.probes import Probe
from fixtures.outage.watch import Watch
from tests.support.outage_probe import refused_request


def _probe(platform: str, label: str) -> Probe:
    return Probe(platform, label, f"https://{platform}.lab:1", lambda: None)


def _watch() -> tuple[Watch, Probe, Probe]:
    ldap, datera = _probe("ldap", "LDAP directory"), _probe("datera", "Datera REST API")
    return Watch(lambda: [ldap, datera], lambda d: None, lambda d: None), ldap, datera


def test_a_datera_deletion_runs_while_only_the_directory_is_down():
    watch, ldap, _ = _watch()
    queue = DeferredTeardown(blocked=watch.open_reason)
    watch.announce_down(ldap, "connection refused", 0.0)
    deleted = []
    assert queue.wrap(lambda: deleted.append("vol-1"), "app_instance vol-1", ("datera",))()
    assert deleted == ["vol-1"] and queue.pending == []


def test_a_deletion_needing_a_down_platform_is_queued_and_drained_once_it_is_back():
    watch, ldap, datera = _watch()
    queue = DeferredTeardown(blocked=watch.open_reason)
    watch.announce_down(datera, "connection refused", 0.0)
    deleted = []
    assert not queue.wrap(lambda: deleted.append("vol-1"), "app_instance vol-1",
                          ("datera",))()
    # Unnamed platforms (a plugin's own deletion): any platform down holds it, as before.
    assert not queue.wrap(lambda: deleted.append("x"), "thing x")()
    assert queue.drain() == ([], queue.pending) and deleted == []
    watch.announce_up(datera)
    assert queue.drain()[0] == ["app_instance vol-1", "thing x"]
    assert deleted == ["vol-1", "x"]


def test_drain_keeps_the_order_behind_a_platform_still_down():
    """An OpenStack deletion queued first (its cloud is down) holds the Datera one behind it
    (registered in dependency order); the Datera one runs once the cloud is back, after it."""
    watch, _, _ = _watch()
    cloud = _probe("openstack-pike", "Keystone of pike")
    queue = DeferredTeardown(blocked=watch.open_reason)
    deleted = []
    down = [True]

    def cinder_delete():
        if down[0]:
            raise dexc.ApiConnectionError(refused_request(), "")
        deleted.append("cinder volume")
    queue.wrap(cinder_delete, "volume v1", ("openstack-pike", "datera"))()
    watch.announce_down(cloud, "connection refused", 0.0)
    queue.wrap(lambda: deleted.append("app_instance"), "app_instance a1", ("datera",))()
    assert [p.what for p in queue.pending] == ["volume v1", "app_instance a1"]
    assert queue.drain()[0] == [] and deleted == []
    down[0] = False
    watch.announce_up(cloud)
    assert queue.drain()[0] == ["volume v1", "app_instance a1"]
    assert deleted == ["cinder volume", "app_instance"]


def test_a_queued_deletion_holds_back_only_deletions_sharing_a_platform():
    """A namespace queued while the apiserver is down does not hold the worker's next Datera
    volume (it ran behind it before: a run ending with the apiserver down leaked it); a
    deletion sharing a platform with a queued one still waits behind it, in order."""
    watch, _, _ = _watch()
    apiserver = _probe("kubernetes", "kube-apiserver")
    queue = DeferredTeardown(blocked=watch.open_reason)
    watch.announce_down(apiserver, "connection refused", 0.0)
    deleted = []
    assert not queue.wrap(lambda: deleted.append("ns"), "namespace ns-1", ("kubernetes",))()
    assert queue.wrap(lambda: deleted.append("vol-1"), "app_instance vol-1", ("datera",))()
    assert deleted == ["vol-1"]
    # A Cinder volume queued (its cloud down): a Datera deletion waits behind it, Datera
    # being one of the platforms the Cinder deletion needs.
    cloud = _probe("openstack-pike", "Keystone of pike")
    watch.announce_down(cloud, "connection refused", 0.0)
    assert not queue.wrap(lambda: deleted.append("cinder"), "volume v1",
                          ("openstack-pike", "datera"))()
    assert not queue.wrap(lambda: deleted.append("vol-2"), "app_instance vol-2", ("datera",))()
    assert [p.what for p in queue.pending] == ["namespace ns-1", "volume v1",
                                               "app_instance vol-2"]
    # The apiserver back: the namespace runs though the cloud is still down.
    watch.announce_up(apiserver)
    assert queue.drain()[0] == ["namespace ns-1"]
    watch.announce_up(cloud)
    assert queue.drain()[0] == ["volume v1", "app_instance vol-2"]
    assert deleted == ["vol-1", "ns", "cinder", "vol-2"]


def test_a_capacity_probe_cut_by_a_datera_outage_queues_its_deletions(monkeypatch):
    """fixtures.datera.probe_capacity (the QoS windows' host probe: a scratch volume and an
    initiator in /root) met by a kill -9 of Datera: its deletions are queued, in dependency
    order, and drained once Datera is back; the probe's own error is the one raised (its
    deletions ran bare in a `finally` before: the kill -9 e2e's cleanup found the volume and
    the initiator left)."""
    from fixtures import datera as fd
    watch, _, datera = _watch()
    queue = DeferredTeardown(blocked=watch.open_reason)
    down = [True]
    deleted = []

    def refused_while_down(what):
        def delete(*_a, **_kw):
            if down[0]:
                raise dexc.ApiConnectionError(refused_request(), "")
            deleted.append(what)
        return delete

    class Vol:
        portals, iqn = ["127.0.0.1"], "iqn.2013-05.com.daterainc:tc:01:sn:probe"

    class Transport:
        def connect(self, **_kw):
            return "nbd://probe"

        def disconnect(self, *_a, **_kw):
            pass

    def fio_cut(*_a, **_kw):   # the data plane went with the process
        raise ConnectionResetError(104, "Connection reset by peer")
    monkeypatch.setattr(fd, "create_volume", lambda *a, **kw: Vol())
    monkeypatch.setattr(fd, "wait_until", lambda *a, **kw: True)
    monkeypatch.setattr(fd, "allow_initiator", lambda *a, **kw: None)
    monkeypatch.setattr(fd.transport, "for_settings", lambda s: Transport())
    monkeypatch.setattr("fixtures.workload.run_fio", fio_cut)
    monkeypatch.setattr(fd, "delete_volume", refused_while_down("volume"))
    monkeypatch.setattr(fd, "delete_initiator", refused_while_down("initiator"))

    with pytest.raises(ConnectionResetError):   # the probe's own error goes on up
        fd.probe_capacity(object(), None, "vancouver-x-gw0-capacity-1", 4,
                          lambda fn, what: queue.wrap(fn, what, ("datera",))())
    assert [p.what for p in queue.pending] == [
        "app_instance /root:vancouver-x-gw0-capacity-1",
        "initiator /root:iqn.2026-11.lab.vancouver:vancouver-x-gw0-capacity-1"]
    watch.announce_down(datera, "connection refused", 0.0)
    assert queue.drain()[0] == [] and deleted == []
    down[0] = False
    watch.announce_up(datera)
    assert len(queue.drain()[0]) == 2 and deleted == ["volume", "initiator"]
