"""Preconditions of Cinder's state-changing actions and its scheduler, through openstacksdk and
raw requests against the target's three clouds (issue 8, items 3 and 8).

Facts, per release: cinder/volume/api.py migrate_volume (8.0.0 checks one by one, 9.0.0 and
11.0.0 in one conditional update whose message formats a dict into %s), volume/manager.py
retype ("Volume must not have snapshots."), scheduler/filters/capabilities_filter.py, the
messages API (3.3: Newton's defined_messages, Pike's message_field), api/contrib/services.py.
"""
import pytest

from fixtures.waiters import poll_until
from tests.support.openstack import CLOUDS, unique_name


def _host(cc, cloud, vol_id) -> str:
    return cc.admin_volume(cloud, vol_id)["os-vol-host-attr:host"]


def _ceph_volume_with_snapshot(cc, cloud):
    ctype = cc.ceph_type(cloud)
    vol = cc.volume(cloud, size=1, volume_type=ctype.name)
    bs = cc.conn(cloud).block_storage
    snap = bs.create_snapshot(volume_id=vol.id, name=unique_name("snap"))
    bs.wait_for_status(snap, "available", failures=["error"], wait=60)
    return ctype, vol, snap


@pytest.mark.parametrize("cloud", CLOUDS)
def test_migrate_refuses_a_volume_with_snapshots(cc, cloud):
    _, vol, _ = _ceph_volume_with_snapshot(cc, cloud)
    host = _host(cc, cloud, vol.id)
    datera = host.split("@")[0] + "@datera#datera"
    resp = cc.raw(cloud, "POST", f"/volumes/{vol.id}/action", admin=True,
                  json={"os-migrate_volume": {"host": datera, "force_host_copy": False}})
    assert resp.status_code == 400, resp.text
    message = resp.json()["badRequest"]["message"]
    if cloud == "mitaka":
        assert message == f"Invalid volume: Volume {vol.id} must not have snapshots."
    else:
        assert message.startswith("Invalid volume: Volume {'vol_id': u'%s'} status must be "
                                  "available or in-use, must not be migrating, have snapshots"
                                  % vol.id), message
    after = cc.admin_volume(cloud, vol.id)
    assert after["os-vol-host-attr:host"] == host and after["status"] == "available"
    assert after["os-vol-mig-status-attr:migstat"] is None


@pytest.mark.parametrize("cloud", CLOUDS)
def test_migrate_to_an_unknown_backend_is_invalid_host(cc, cloud):
    vol = cc.volume(cloud, size=1)
    host = _host(cc, cloud, vol.id).split("@")[0] + "@nowhere#x"
    resp = cc.raw(cloud, "POST", f"/volumes/{vol.id}/action", admin=True,
                  json={"os-migrate_volume": {"host": host}})
    assert resp.status_code == 400
    named = f"'{host}'" if cloud == "pike" else host
    assert resp.json()["badRequest"]["message"] == \
        f"Invalid host: No available service named {named}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_retype_needing_migration_with_snapshots_is_accepted_then_abandoned(cc, cloud):
    ctype, vol, snap = _ceph_volume_with_snapshot(cc, cloud)
    dtype = cc.datera_type(cloud)
    bs = cc.conn(cloud).block_storage
    bs.retype_volume(vol, dtype.name, migration_policy="on-demand")    # 202
    done = cc.wait_admin(cloud, vol.id, lambda v: v["status"] != "retyping")
    assert done["status"] == "available" and done["volume_type"] == ctype.name
    assert done["os-vol-host-attr:host"].split("@")[1].startswith("ceph")
    assert done["os-vol-mig-status-attr:migstat"] is None
    # the snapshot still serves a new volume, on the snapshot's own backend
    clone = cc.volume(cloud, snapshot_id=snap.id)
    assert clone.status == "available"
    assert _host(cc, cloud, clone.id) == done["os-vol-host-attr:host"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_snapshot_clone_and_cascade_delete_follow_a_migrated_volume(cc, cloud):
    """The issue's TypeError siblings: every path that follows a volume's backend after a
    migration (snapshot, volume from it, clone, cascade delete)."""
    ctype, dtype = cc.ceph_type(cloud), cc.datera_type(cloud)
    vol = cc.volume(cloud, size=1, volume_type=ctype.name)
    bs = cc.conn(cloud).block_storage
    bs.retype_volume(vol, dtype.name, migration_policy="on-demand")
    done = cc.wait_admin(cloud, vol.id, lambda v: v["status"] != "retyping")
    assert done["os-vol-mig-status-attr:migstat"] == "success", done
    snap = bs.create_snapshot(volume_id=vol.id, name=unique_name("snap"))
    bs.wait_for_status(snap, "available", failures=["error"], wait=60)
    from_snap = cc.volume(cloud, snapshot_id=snap.id)
    clone = cc.volume(cloud, source_volid=vol.id)
    for v in (from_snap, clone):
        assert v.status == "available" and _host(cc, cloud, v.id).split("@")[1] == \
            "datera#datera"
    for v in (from_snap, clone):
        bs.delete_volume(v)
        bs.wait_for_delete(v, wait=60)
    resp = cc.raw(cloud, "DELETE", f"/volumes/{vol.id}?cascade=true")
    assert resp.status_code == 202, resp.text
    bs.wait_for_delete(vol, wait=60)
    assert bs.find_snapshot(snap.id, ignore_missing=True) is None


@pytest.mark.parametrize("cloud", CLOUDS)
def test_capabilities_scoped_specs_schedule_like_unscoped_ones(cc, cloud):
    admin = cc.conn(cloud, True).block_storage
    cases = {"datera": {"capabilities:volume_backend_name": "datera"},
             "datera#": {"capabilities:QoS_support": "<is> True",
                         "storage_protocol": "<in> iSCSI"},
             "ceph": {"capabilities:storage_protocol": "<or> ceph <or> rbd",
                      "vendor:anything": "ignored", "DF:replica_count": "1"}}
    for want, specs in cases.items():
        t = admin.create_type(name=unique_name("caps"), extra_specs=specs)
        cc.types.append((cloud, t.id))
        vol = cc.volume(cloud, size=1, volume_type=t.name)
        assert _host(cc, cloud, vol.id).split("@")[1].startswith(want.rstrip("#")), specs


@pytest.mark.parametrize("cloud", CLOUDS)
def test_type_no_backend_satisfies_ends_in_error_with_a_user_message(cc, cloud):
    admin = cc.conn(cloud, True).block_storage
    t = admin.create_type(name=unique_name("nowhere"),
                          extra_specs={"capabilities:volume_backend_name": "nowhere"})
    cc.types.append((cloud, t.id))
    vol = cc.volume(cloud, wait=False, size=1, volume_type=t.name)
    bs = cc.conn(cloud).block_storage
    vol = poll_until(lambda: bs.get_volume(vol.id), lambda v: v.status != "creating", 60)
    assert vol.status == "error"
    resp = cc.raw(cloud, "GET", "/messages", version="3.3")
    if cloud == "mitaka":          # no messages API below 3.3
        assert resp.status_code in (404, 406), resp.text
        return
    assert resp.status_code == 200, resp.text
    [msg] = [m for m in resp.json()["messages"] if m["resource_uuid"] == vol.id]
    if cloud == "newton":
        assert msg["event_id"] == "000002"
        assert msg["user_message"].startswith("No storage could be allocated for this volume")
    else:
        assert msg["event_id"] == "VOLUME_VOLUME_001_003"
        assert msg["user_message"] == ("schedule allocate volume:Could not find any "
                                       "available weighted backend.")
    assert msg["message_level"] == "ERROR" and msg["resource_type"] == "VOLUME"
    shown = cc.raw(cloud, "GET", f"/messages/{msg['id']}", version="3.3")
    assert shown.status_code == 200 and shown.json()["message"]["id"] == msg["id"]
    assert cc.raw(cloud, "DELETE", f"/messages/{msg['id']}", version="3.3").status_code == 204


@pytest.mark.parametrize("cloud", CLOUDS)
def test_services_list_cinder_volume_per_backend_and_filters(cc, cloud):
    admin = cc.conn(cloud, True).block_storage
    rows = [(s.binary, s.host) for s in admin.services()]
    hosts = {h for b, h in rows if b == "cinder-volume"}
    ctl = next(h for b, h in rows if b == "cinder-scheduler")
    assert hosts == {f"{ctl}@ceph", f"{ctl}@datera"}
    only = cc.raw(cloud, "GET", f"/os-services?binary=cinder-volume&host={ctl}@datera",
                  admin=True).json()["services"]
    assert [(s["binary"], s["host"]) for s in only] == [("cinder-volume", f"{ctl}@datera")]
    # a bare host matches the host and its backends, as Cinder's db filter does
    by_host = cc.raw(cloud, "GET", f"/os-services?host={ctl}", admin=True).json()["services"]
    # (cinder-scheduler and cinder-backup both run on the controller)
    assert sorted((s["binary"], s["host"]) for s in by_host) == sorted(
        [("cinder-scheduler", ctl), ("cinder-backup", ctl), ("cinder-volume", f"{ctl}@ceph"),
         ("cinder-volume", f"{ctl}@datera")])
    legacy = cc.raw(cloud, "GET", f"/os-services?service=cinder-scheduler",
                    admin=True).json()["services"]
    want = 1 if cloud != "pike" else 4       # Pike's index no longer reads `service`
    assert len(legacy) == want


# ---- action by action: the status each action needs, in each release's words ----------------

def _action(cc, cloud, vol_id, body, admin=False):
    return cc.raw(cloud, "POST", f"/volumes/{vol_id}/action", admin=admin, json=body)


def _reset(cc, cloud, vol_id, **fields):
    resp = _action(cc, cloud, vol_id, {"os-reset_status": fields}, admin=True)
    assert resp.status_code == 202, resp.text


def _bad(resp) -> str:
    assert resp.status_code == 400, resp.text
    return resp.json()["badRequest"]["message"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_delete_with_snapshots_and_cascade_rules(cc, cloud):
    _, vol, snap = _ceph_volume_with_snapshot(cc, cloud)
    message = _bad(cc.raw(cloud, "DELETE", f"/volumes/{vol.id}"))
    tail = {"mitaka": "belong to a consistency group or have snapshots.",
            "newton": "belong to a group or have snapshots.",
            "pike": "belong to a group, have snapshots or be disassociated from snapshots "
                    "after volume transfer."}[cloud]
    states = "available or error or error_restoring or error_extending" + \
        (" or error_managing" if cloud == "pike" else "")
    assert message == (f"Invalid volume: Volume status must be {states} and must not be "
                       f"migrating, attached, {tail}")
    # a cascade with a snapshot that cannot be deleted is refused too
    resp = cc.raw(cloud, "POST", f"/snapshots/{snap.id}/action", admin=True,
                  json={"os-reset_status": {"status": "error_deleting"}})
    assert resp.status_code == 202, resp.text
    _bad(cc.raw(cloud, "DELETE", f"/volumes/{vol.id}?cascade=true"))
    # the snapshot's own delete refuses error_deleting; the admin's force-delete clears it
    assert cc.raw(cloud, "DELETE", f"/snapshots/{snap.id}").status_code == 400
    resp = cc.raw(cloud, "POST", f"/snapshots/{snap.id}/action", admin=True,
                  json={"os-force_delete": {}})
    assert resp.status_code == 202, resp.text
    bs = cc.conn(cloud).block_storage
    poll_until(lambda: bs.find_snapshot(snap.id, ignore_missing=True), lambda s: s is None, 60)
    assert cc.raw(cloud, "DELETE", f"/volumes/{vol.id}").status_code == 202


@pytest.mark.parametrize("cloud", CLOUDS)
def test_extend_checks_in_each_releases_order(cc, cloud):
    vol = cc.volume(cloud, size=1)
    _reset(cc, cloud, vol.id, status="in-use")
    smaller = _bad(_action(cc, cloud, vol.id, {"os-extend": {"new_size": 1}}))
    bigger = _bad(_action(cc, cloud, vol.id, {"os-extend": {"new_size": 2}}))
    if cloud == "mitaka":         # status first
        assert smaller == bigger == (f"Invalid volume: Volume {vol.id} status must be "
                                     "available to extend, but current status is: in-use.")
        return
    assert smaller.startswith("Invalid input received: New size for extend must be greater")
    assert bigger == ({"newton": f"Invalid volume: Volume {vol.id} status must be available "
                                 "to extend.",
                       "pike": f"Invalid volume: Volume {vol.id} status must be "
                               "'{'status': 'available'}' to extend, currently in-use."}[cloud])


@pytest.mark.parametrize("cloud", CLOUDS)
def test_snapshot_of_an_in_use_volume_needs_force(cc, cloud):
    vol = cc.volume(cloud, size=1)
    _reset(cc, cloud, vol.id, status="in-use")
    resp = cc.raw(cloud, "POST", "/snapshots", json={"snapshot": {"volume_id": vol.id}})
    assert _bad(resp) == (f"Invalid volume: Volume {vol.id} status must be available, but "
                          "current status is: in-use.")
    _reset(cc, cloud, vol.id, status="maintenance")
    resp = cc.raw(cloud, "POST", "/snapshots",
                  json={"snapshot": {"volume_id": vol.id, "force": True}})
    assert _bad(resp) == ("Invalid volume: The snapshot cannot be created when the volume is "
                          "in maintenance mode.")
    _reset(cc, cloud, vol.id, status="in-use")
    resp = cc.raw(cloud, "POST", "/snapshots",
                  json={"snapshot": {"volume_id": vol.id, "force": True}})
    assert resp.status_code == 202, resp.text
    bs = cc.conn(cloud).block_storage
    snap = bs.wait_for_status(bs.get_snapshot(resp.json()["snapshot"]["id"]), "available",
                              failures=["error"], wait=60)
    bs.delete_snapshot(snap)
    bs.wait_for_delete(snap, wait=60)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_reset_status_accepts_only_cinders_lists(cc, cloud):
    vol = cc.volume(cloud, size=1)
    for body, message in (({"status": "reserved"}, "Must specify a valid status"),
                          ({"status": "bogus"}, "Must specify a valid status"),
                          ({"attach_status": "half"}, "Must specify a valid attach status"),
                          ({"migration_status": "x"}, "Must specify a valid migration status"),
                          ({}, "Must specify 'status', 'attach_status' or 'migration_status' "
                               "for update.")):
        assert _bad(_action(cc, cloud, vol.id, {"os-reset_status": body}, admin=True)) == \
            message
    _reset(cc, cloud, vol.id, status="ERROR", migration_status="none")
    assert cc.admin_volume(cloud, vol.id)["status"] == "error"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_readonly_flag_needs_available_and_forces_ro_attach(cc, cloud):
    vol = cc.volume(cloud, size=1)
    assert _action(cc, cloud, vol.id, {"os-update_readonly_flag": {}}).status_code == 400
    assert _bad(_action(cc, cloud, vol.id, {"os-update_readonly_flag": {"readonly": "maybe"}})) \
        == "Bad value for 'readonly'"
    resp = _action(cc, cloud, vol.id, {"os-update_readonly_flag": {"readonly": True}})
    assert resp.status_code == 202, resp.text
    resp = _action(cc, cloud, vol.id, {"os-attach": {"host_name": "h1", "mountpoint": "/x",
                                                     "mode": "rw"}})
    assert _bad(resp) == f"Invalid attaching mode 'rw' for volume {vol.id}."
    # the export says ro, which is the mode Nova attaches with
    connector = {"initiator": "iqn.1993-08.org.debian:01:vct-ro", "ip": "127.0.0.1",
                 "host": "vct-ro"}
    resp = _action(cc, cloud, vol.id, {"os-initialize_connection": {"connector": connector}})
    assert resp.status_code == 200 and \
        resp.json()["connection_info"]["data"]["access_mode"] == "ro"
    _action(cc, cloud, vol.id, {"os-terminate_connection": {"connector": connector}})
    _reset(cc, cloud, vol.id, status="in-use")
    assert _bad(_action(cc, cloud, vol.id, {"os-update_readonly_flag": {"readonly": False}})) \
        == (f"Invalid volume: Volume {vol.id} status must be available to update readonly "
            "flag, but current status is: in-use.")
    _reset(cc, cloud, vol.id, status="available")


# ---- Nova: a build whose block device fails, and what an ERROR server still allows ----------

def _drop_app_instance(lab_api, volume_id: str) -> None:
    """A bad backend state: the volume's app instance removed on Datera behind Cinder."""
    name = f"OS-{volume_id}"
    for tenant in lab_api.tenants.list(tenant="/root"):
        path = f"/root/{tenant['name']}"
        for ai in lab_api.app_instances.list(tenant=path):
            if ai["name"] == name:
                ai.set(admin_state="offline", force=True, tenant=path)
                ai.delete(force=True, tenant=path)
                return
    raise AssertionError(f"no app instance {name} on the lab's Datera")


@pytest.mark.parametrize("cloud", CLOUDS)
def test_failed_build_is_error_with_novas_fault_and_can_be_deleted(cc, lab_api, cloud):
    from tests.support.openstack import boot_networks
    vol = cc.volume(cloud, size=1, volume_type=cc.datera_type(cloud).name)
    spare = cc.volume(cloud, size=1)
    _drop_app_instance(lab_api, vol.id)
    conn = cc.conn(cloud)
    server = conn.compute.create_server(
        name=unique_name("srv"), flavor_id="1", **boot_networks(cloud),
        block_device_mapping=[{"boot_index": "0", "uuid": vol.id, "source_type": "volume",
                               "destination_type": "volume", "delete_on_termination": False}])
    try:
        server = poll_until(lambda: conn.compute.get_server(server.id),
                            lambda s: s.status != "BUILD", 120)
        assert server.status == "ERROR"
        fault = server.fault
        assert fault["code"] == 500
        prefix = f"Build of instance {server.id} aborted: "
        if cloud == "pike":     # Pike keeps the cause's words: Cinder's backend error
            assert fault["message"].startswith(prefix) and "not found" in fault["message"]
        else:
            assert fault["message"] == prefix + "Block Device Mapping is Invalid."
        assert "Traceback" not in fault["message"] and "Error:" not in fault["message"]
        # the volume is free again, and an ERROR server takes no attachment (409)
        assert conn.block_storage.get_volume(vol.id).status == "available"
        base = conn.compute.get_endpoint().rstrip("/")
        resp = conn.session.post(f"{base}/servers/{server.id}/os-volume_attachments",
                                 json={"volumeAttachment": {"volumeId": spare.id}},
                                 raise_exc=False)
        assert resp.status_code == 409, resp.text
        assert resp.json()["conflictingRequest"]["message"] == (
            f"Cannot 'attach_volume' instance {server.id} while it is in vm_state error")
        # detaching a volume that is not attached: 404 with Nova's words
        resp = conn.session.delete(f"{base}/servers/{server.id}/os-volume_attachments/"
                                   f"{spare.id}", raise_exc=False)
        assert resp.status_code == 404
        assert resp.json()["itemNotFound"]["message"] == f"volume_id not found: {spare.id}"
    finally:
        conn.compute.delete_server(server.id, ignore_missing=True)
        conn.compute.wait_for_delete(server, wait=120)


# ---- quotas (413 with Cinder's body) and Glance's protected images (403) --------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_over_quota_create_and_extend_are_413_over_limit(cc, cloud):
    bs = cc.conn(cloud).block_storage
    quota = bs.get_quota_set(cc.conn(cloud).current_project_id, usage=True)
    limit = quota.gigabytes["limit"] if isinstance(quota.gigabytes, dict) else quota.gigabytes
    resp = cc.raw(cloud, "POST", "/volumes", json={"volume": {"size": limit + 1}})
    assert resp.status_code == 413, resp.text
    message = resp.json()["overLimit"]["message"]
    assert message.startswith("VolumeSizeExceedsAvailableQuota: Requested volume or snapshot "
                              f"exceeds allowed gigabytes quota. Requested {limit + 1}G, quota "
                              f"is {limit}G and ")
    vol = cc.volume(cloud, size=1)
    resp = _action(cc, cloud, vol.id, {"os-extend": {"new_size": limit + 1}})
    assert resp.status_code == 413 and "overLimit" in resp.json()
    assert cc.admin_volume(cloud, vol.id)["status"] == "available"      # nothing changed


@pytest.mark.parametrize("cloud", CLOUDS)
def test_protected_image_delete_is_403_until_unprotected(cc, cloud):
    import openstack.exceptions
    image = cc.image(cloud, b"\x01" * 4096)
    glance = cc.conn(cloud).image
    glance.update_image(image, is_protected=True)
    with pytest.raises(openstack.exceptions.HttpException) as e:
        glance.delete_image(image)
    assert e.value.status_code == 403
    assert f"Image {image.id} is protected and cannot be deleted." in e.value.response.text
    assert glance.get_image(image.id).status == "active"
    glance.update_image(image, is_protected=False)
    glance.delete_image(image)
    assert glance.find_image(image.id, ignore_missing=True) is None
