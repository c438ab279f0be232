"""Nova v2.1 of the lab's clouds through openstacksdk 4.22 and the openstack CLI: discovery and
microversion headers per release, flavors, hypervisors and services, quotas and limits, boot
from volume with guests whose user_data runs fio against Datera (CHAP login) and Ceph volumes
and whose console log carries fio's JSON, volume attach/detach, the swap of an attached volume
on migration, delete, and bad input with Nova's status codes and fault bodies."""
import base64
import json
import time
import uuid

import openstack
import pytest
import requests

from lab.openstack.nova.guest import GuestError, IscsiDevice
from fixtures.waiters import wait_until
from tests.support.openstack import (CLOUDS, FIO, boot_networks, console_until, fio_reports,
                                     unique_name)

NOVA_MAX = {"mitaka": "2.25", "newton": "2.38", "pike": "2.53"}
COMPUTE_HOSTS = {"mitaka": ["openstack-mitaka"],
                 "newton": ["openstack-newton-compute1", "openstack-newton-compute2"],
                 "pike": ["openstack-pike"]}
@pytest.fixture
def lab(ost):
    """Helpers that create volumes, types and servers and clean them up afterwards."""
    made: list = []

    class Lab:
        def volume(self, cloud, size=1, type_name=None):
            conn = ost.connect(cloud)
            v = conn.block_storage.create_volume(size=size, name=unique_name("vol"),
                                                 volume_type=type_name)
            made.append(("volume", conn, v))
            return conn.block_storage.wait_for_status(v, "available", wait=120)

        def datera_type(self, cloud, chap=True):
            admin = ost.connect(cloud, admin=True)
            specs = {"volume_backend_name": "datera", "DF:replica_count": "1"}
            if chap:
                specs["DF:use_chap_auth"] = "True"
            t = admin.block_storage.create_type(name=unique_name("type"), extra_specs=specs)
            made.append(("type", admin, t))
            return t

        def server(self, cloud, boot, *more, script=None, wait=True):
            conn = ost.connect(cloud)
            bdm = [{"boot_index": "0", "uuid": boot.id, "source_type": "volume",
                    "destination_type": "volume", "delete_on_termination": False}]
            bdm += [{"uuid": v.id, "source_type": "volume", "destination_type": "volume"}
                    for v in more]
            kw = {"user_data": base64.b64encode(script.encode()).decode()} if script else {}
            s = conn.compute.create_server(name=unique_name("srv"), flavor_id="1",
                                           block_device_mapping=bdm, **boot_networks(cloud), **kw)
            made.append(("server", conn, s))
            return conn.compute.wait_for_server(s, wait=120) if wait else s

    yield Lab()
    for kind, conn, obj in reversed(made):
        if kind == "server":
            conn.compute.delete_server(obj, ignore_missing=True)
            conn.compute.wait_for_delete(obj, wait=120)
    for kind, conn, obj in reversed(made):
        if kind == "volume":
            v = conn.block_storage.get_volume(obj.id) if conn.block_storage.find_volume(
                obj.id) else None
            if v is not None:
                wait_until(lambda: conn.block_storage.get_volume(v.id).status != "in-use"
                      and not conn.block_storage.get_volume(v.id).status.endswith("ing"),
                      60, f"volume {v.id} to settle", 0.1,
                           error=AssertionError)
                conn.block_storage.delete_volume(v.id, ignore_missing=True)
                conn.block_storage.wait_for_delete(v, wait=120)
        elif kind == "type":
            conn.block_storage.delete_type(obj, ignore_missing=True)


# ---- discovery, flavors, hosts, quotas -----------------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_version_documents_and_microversion_headers(ost, cloud):
    base = ost.endpoint(cloud, "compute").split("/v2.1")[0]
    root = requests.get(base + "/", timeout=10)
    assert root.status_code == 200
    v21 = root.json()["versions"][1]
    assert (v21["id"], v21["version"], v21["min_version"]) == ("v2.1", NOVA_MAX[cloud], "2.1")
    for path in ("/v2.1", "/v2.1/"):
        doc = requests.get(base + path, timeout=10).json()["version"]
        assert doc["links"][0]["href"] == base + "/v2.1/"
    conn = ost.connect(cloud)
    resp = conn.compute.get("/flavors", microversion=NOVA_MAX[cloud])
    assert resp.headers["X-OpenStack-Nova-API-Version"] == NOVA_MAX[cloud]
    if cloud == "mitaka":     # only the legacy header, in and out (reference §b.4)
        assert "OpenStack-API-Version" not in resp.headers
    else:
        assert resp.headers["OpenStack-API-Version"] == f"compute {NOVA_MAX[cloud]}"
    assert "x-compute-request-id" in resp.headers
    # Mitaka's catalog carries the project in the compute URL, the others do not
    assert ost.endpoint(cloud, "compute").endswith(
        f"/v2.1/{conn.current_project_id}" if cloud == "mitaka" else "/v2.1")


@pytest.mark.parametrize("cloud", CLOUDS)
def test_flavors_hypervisors_and_services(ost, cloud):
    conn, admin = ost.connect(cloud), ost.connect(cloud, admin=True)
    assert conn.compute.find_flavor("m1.small").vcpus == 1
    assert [f.name for f in conn.compute.flavors()][:2] == ["m1.tiny", "m1.small"]
    hypervisors = list(admin.compute.hypervisors(details=True))
    assert [h.name for h in hypervisors] == COMPUTE_HOSTS[cloud]
    if cloud == "newton":
        net = ost.cloud(cloud)["controller"].rsplit(".", 2)[0]
        assert [h.host_ip for h in hypervisors] == [f"{net}.2.2", f"{net}.2.3"]
    services = list(admin.compute.services())
    assert sorted(s.host for s in services if s.binary == "nova-compute") == COMPUTE_HOSTS[cloud]
    assert {s.binary for s in services} >= {"nova-conductor", "nova-scheduler"}
    assert all(s.state == "up" and s.status == "enabled" for s in services)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(conn.compute.hypervisors())


@pytest.mark.parametrize("cloud", CLOUDS)
def test_quotas_and_limits_per_release(ost, cloud):
    conn, admin = ost.connect(cloud), ost.connect(cloud, admin=True)
    project = conn.current_project_id
    quota = conn.compute.get_quota_set(project)
    assert quota.instances == 10 and quota.cores == 20
    raw = conn.compute.get(f"/os-quota-sets/{project}", microversion=NOVA_MAX[cloud]).json()
    # the network keys are gone from 2.36 on (Newton, Pike)
    assert ("floating_ips" in raw["quota_set"]) == (cloud == "mitaka")
    with pytest.raises(openstack.exceptions.ForbiddenException):
        conn.compute.update_quota_set(project, instances=11)
    try:
        assert admin.compute.update_quota_set(project, instances=12).instances == 12
        assert conn.compute.get_limits().absolute.instances == 12
        if cloud != "mitaka":
            with pytest.raises(openstack.exceptions.BadRequestException):
                admin.compute.update_quota_set(project, floating_ips=3)
    finally:
        admin.compute.update_quota_set(project, instances=10)


# ---- boot from volume, guests, attachments ---------------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_sdk_boot_from_volume_guest_runs_fio_on_datera_and_ceph(ost, lab, cloud):
    conn = ost.connect(cloud)
    chap = lab.datera_type(cloud, chap=True)
    boot = lab.volume(cloud, type_name=chap.name)          # /dev/vda on Datera, with CHAP
    second = lab.volume(cloud)                             # /dev/vdb on Ceph
    script = "#!/bin/sh\necho guest-up\n" + "\n".join([
        FIO.format(name="boot", dev="/dev/vda", rw="write"),
        FIO.format(name="data", dev="/dev/vdb", rw="randwrite")]) + "\n"
    started = time.monotonic()
    server = lab.server(cloud, boot, second, script=script)
    assert server.status == "ACTIVE" and time.monotonic() - started < 30
    assert [a["id"] for a in server.attached_volumes] == [boot.id, second.id]
    assert server.addresses and not server.image
    assert conn.block_storage.get_volume(boot.id).status == "in-use"
    console = console_until(conn, server)
    assert "guest-up" in console and "user-data exited with status 0" in console
    reports = fio_reports(console)
    assert [r["jobs"][0]["jobname"] for r in reports] == ["boot", "data"]
    assert all(r["jobs"][0]["error"] == 0 for r in reports)
    assert [r["jobs"][0]["job options"].get("ioengine") for r in reports] == ["nbd", "libaio"]
    assert all(r["jobs"][0]["write"]["io_bytes"] == 4 << 20 for r in reports)
    # the console's `length` is its last lines
    tail = conn.compute.get_server_console_output(server, length=2)["output"]
    assert tail.splitlines()[-1].startswith("Cloud-init v. 0.7.9 finished")
    # a third volume attached through Nova, then detached
    third = lab.volume(cloud, type_name=chap.name)
    att = conn.compute.create_volume_attachment(server, volume_id=third.id)
    assert (att.volume_id, att.device) == (third.id, "/dev/vdc")
    assert conn.block_storage.get_volume(third.id).status == "in-use"
    assert [a.device for a in conn.compute.volume_attachments(server)] == [
        "/dev/vda", "/dev/vdb", "/dev/vdc"]
    conn.compute.delete_volume_attachment(server, third.id)
    # fresh GETs: the objects in hand say "available" (openstacksdk would not poll)
    conn.block_storage.wait_for_status(conn.block_storage.get_volume(third.id), "available",
                                       wait=60)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    for v in (boot, second):
        conn.block_storage.wait_for_status(conn.block_storage.get_volume(v.id), "available",
                                           wait=60)


def test_negative_boot_index_is_a_data_disk(ost, lab):
    """Nova reads a negative boot_index as "not bootable" (compute API _validate_bdm counts only
    indexes >= 0); the lab refused it as an invalid boot sequence."""
    conn = ost.connect("pike")
    boot, data = lab.volume("pike"), lab.volume("pike")
    bdm = [{"boot_index": 0, "uuid": boot.id, "source_type": "volume",
            "destination_type": "volume"},
           {"boot_index": -1, "uuid": data.id, "source_type": "volume",
            "destination_type": "volume"}]
    server = conn.compute.create_server(name=unique_name("srv"), flavor_id="1",
                                        block_device_mapping=bdm, **boot_networks("pike"))
    try:
        server = conn.compute.wait_for_server(server, wait=120)
        assert [(a.volume_id, a.device) for a in conn.compute.volume_attachments(server)] == [
            (boot.id, "/dev/vda"), (data.id, "/dev/vdb")]
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
        conn.compute.wait_for_delete(server, wait=120)


def test_guest_output_is_bounded_as_on_a_compute_host(ost, lab):
    """fio's nbd engine prints a line per poll forever once its connection dies; before the
    guest's output was bounded, one such guest filled the lab machine's disk (13 GB of console
    log and as much fio output in minutes). A file the guest writes stops at GUEST_FILE_LIMIT
    (the writer gets SIGXFSZ), the console log rotates at virtlogd's 2 MiB, and the guest goes
    on with its script."""
    from lab.openstack.nova.guest import CONSOLE_MAX_SIZE, GUEST_FILE_LIMIT
    conn = ost.connect("pike")
    boot = lab.volume("pike")
    script = ("#!/bin/sh\nyes runaway > spill.txt\nyes runaway | head -c 5000000\n"
              "echo spill=$(wc -c < spill.txt)\n")
    server = lab.server("pike", boot, script=script)
    console = console_until(conn, server)
    assert f"spill={GUEST_FILE_LIMIT}" in console
    assert "user-data exited with status 0" in console
    assert len(console.encode()) <= CONSOLE_MAX_SIZE
    assert conn.compute.get_server(server.id).status == "ACTIVE"


def test_a_guest_job_left_in_the_background_ends_with_its_server(ost, lab):
    """A background job of the user_data lives on after the script exits, as in a real guest,
    but not after the server is deleted (before: it outlived the server and, being fio on a
    dead NBD connection, wrote without end)."""
    import psutil
    marker = f"vancouver-bg-{uuid.uuid4().hex[:8]}"
    conn = ost.connect("pike")
    boot = lab.volume("pike")
    script = (f"#!/bin/sh\npython3 -c 'import time; time.sleep(600)' {marker} &\n"
              "echo started-in-background\n")
    server = lab.server("pike", boot, script=script)
    assert "user-data exited with status 0" in console_until(conn, server)

    def jobs():
        return [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
    assert len(jobs()) == 1
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    wait_until(lambda: not jobs(), 10, "the guest's background job to end", 0.1,
               error=AssertionError)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_osc_server_create_add_volume_console_delete(ost, lab, tmp_path, cloud):
    boot, extra = lab.volume(cloud), lab.volume(cloud)
    net = ost.osc(cloud, "network", "list", "-f", "json")[0]["ID"]
    user_data = tmp_path / "user-data.sh"
    user_data.write_text("#!/bin/sh\necho hello from the osc guest\n"
                         + FIO.format(name="osc", dev="/dev/vda", rw="write") + "\n")
    name = unique_name("osc")
    created = ost.osc(cloud, "server", "create", "--volume", boot.id, "--flavor", "m1.tiny",
                      "--nic", f"net-id={net}", "--user-data", str(user_data), "--wait", name,
                      "-f", "json")
    try:
        assert created["status"] == "ACTIVE"
        assert created["image"] == "N/A (booted from volume)"
        ost.osc(cloud, "server", "add", "volume", name, extra.id)
        shown = ost.osc(cloud, "server", "show", name, "-f", "json")
        assert {v["id"] for v in shown["volumes_attached"]} == {boot.id, extra.id}
        conn = ost.connect(cloud)
        console_until(conn, conn.compute.find_server(name))
        log = ost.osc(cloud, "console", "log", "show", name)
        assert "hello from the osc guest" in log
        assert fio_reports(log)[0]["jobs"][0]["jobname"] == "osc"
        listed = ost.osc(cloud, "server", "list", "--name", name, "-f", "json")
        assert [s["ID"] for s in listed] == [created["id"]]
    finally:
        ost.osc(cloud, "server", "delete", "--wait", name)
    assert ost.osc(cloud, "server", "show", name, check=False).returncode != 0
    bs = ost.connect(cloud).block_storage
    bs.wait_for_status(bs.get_volume(extra.id), "available", wait=60)   # fresh, not in hand


def test_attached_ceph_volume_is_swapped_when_migrated_to_datera(ost, lab):
    cloud = "newton"          # Newton's Datera driver migrates; ceph -> datera always does
    conn, admin = ost.connect(cloud), ost.connect(cloud, admin=True)
    datera = lab.datera_type(cloud, chap=True)
    boot, data = lab.volume(cloud), lab.volume(cloud)
    server = lab.server(cloud, boot)
    conn.compute.create_volume_attachment(server, volume_id=data.id)
    conn.block_storage.wait_for_status(data, "in-use", wait=60)
    conn.block_storage.retype_volume(data, datera.name, migration_policy="on-demand")
    vol = wait_until(lambda: (v := admin.block_storage.get_volume(data.id)).migration_status
                     in ("success", "error") and v.status == "in-use" and v, 120, "the migration",
                     0.1, error=AssertionError)
    assert vol.migration_status == "success" and vol.volume_type == datera.name
    assert "@datera" in vol.host
    assert [(a.volume_id, a.device) for a in conn.compute.volume_attachments(server)] == [
        (boot.id, "/dev/vda"), (data.id, "/dev/vdb")]


def _datera_ai(api, name: str):
    """The lab Datera's app instance called `name` (any tenant), or None."""
    for t in api.tenants.list():
        path = t["path"] if "path" in t else f"/root/{t['name']}"
        for ai in api.app_instances.list(tenant=path):
            if ai["name"] == name:
                return ai, path
    return None


@pytest.mark.parametrize("cloud", ["mitaka", "newton"])
def test_running_guest_io_follows_a_live_datera_retype_migration(ost, lab, lab_api, cloud):
    """Mitaka's and Newton's Datera drivers cannot retype, so Cinder migrates and Nova swaps
    the in-use volume (reference §c.2 step 5). The guest's fio, writing and verifying (crc32c)
    all along, goes on through its disk relay's copy and pivot without an error, its writes
    after the migration land on the new app instance, and the old app instance is gone."""
    conn, admin = ost.connect(cloud), ost.connect(cloud, admin=True)
    old_type, new_type = lab.datera_type(cloud, chap=True), lab.datera_type(cloud, chap=False)
    boot, data = lab.volume(cloud), lab.volume(cloud, type_name=old_type.name)
    script = ("#!/bin/sh\nfio --name=swap --filename=/dev/vdb --rw=randwrite --bs=4k "
              "--size=16m --iodepth=4 --verify=crc32c --verify_backlog=64 --time_based "
              "--runtime=30 --output-format=json\n")
    server = lab.server(cloud, boot, data, script=script)
    console_until(conn, server, until="connected to NBD server", timeout=60)
    old_ai, tenant = _datera_ai(lab_api, f"OS-{data.id}")
    conn.block_storage.retype_volume(data, new_type.name, migration_policy="on-demand")
    vol = wait_until(lambda: (v := admin.block_storage.get_volume(data.id)).migration_status
                     in ("success", "error") and v.status == "in-use" and v, 120, "the migration",
                     0.1, error=AssertionError)
    migrated_at = time.time()
    assert vol.migration_status == "success" and vol.volume_type == new_type.name
    console = conn.compute.get_server_console_output(server)["output"]
    assert not fio_reports(console), f"fio ended before the swap: {console[:2000]}"
    new_ai, _ = _datera_ai(lab_api, f"OS-{data.id}")
    assert new_ai["id"] != old_ai["id"]
    assert old_ai["id"] not in {a["id"] for a in lab_api.app_instances.list(tenant=tenant)}
    vol_uuid = new_ai["storage_instances"][0]["volumes"][0]["uuid"]

    def written_since_migration():   # metrics roll once a second; Cinder wrote before
        return sum(p["value"] for p in lab_api.metrics.io.bytes_written.get(
            uuid=vol_uuid, tenant=tenant, **{"from": str(migrated_at + 1)})[0]["points"])
    assert wait_until(written_since_migration, 30, "guest writes on the new app instance",
                      0.2, error=AssertionError) > 0
    log = console_until(conn, server, timeout=90)
    job = fio_reports(log)[0]["jobs"][0]
    assert job["error"] == 0 and "verify: bad" not in log
    assert job["write"]["io_bytes"] > 0
    assert [(a.volume_id, a.device) for a in conn.compute.volume_attachments(server)] == [
        (boot.id, "/dev/vda"), (data.id, "/dev/vdb")]


def test_refused_chap_login_is_a_clear_fault_without_the_secret(ost, lab):
    """What Nova's host does on attach (guest.IscsiDevice.check): the login with the
    attachment's CHAP credentials; a wrong secret fails with the target's reason."""
    cloud = "pike"
    admin = ost.connect(cloud, admin=True)
    vol = lab.volume(cloud, type_name=lab.datera_type(cloud, chap=True).name)
    iqn = f"iqn.1993-08.org.debian:01:vct-{uuid.uuid4().hex[:6]}"
    info = admin.block_storage.init_volume_attachment(
        vol, {"initiator": iqn, "ip": "127.0.0.1", "host": "vct", "multipath": True})
    data = info["connection_info"]["data"] if "connection_info" in info else info["data"]
    try:
        assert IscsiDevice(data, iqn).check().startswith("nbd://")
        wrong = dict(data, auth_password="not-the-secret-1")
        with pytest.raises(GuestError) as e:
            IscsiDevice(wrong, iqn).check()
        assert data["target_iqn"] in str(e.value) and iqn in str(e.value)
        assert "not-the-secret-1" not in str(e.value) and data["auth_password"] not in str(
            e.value)
    finally:
        admin.block_storage.terminate_volume_attachment(
            vol, {"initiator": iqn, "ip": "127.0.0.1", "host": "vct"})


# ---- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_bad_requests_answer_with_nova_faults(ost, lab, cloud):
    conn = ost.connect(cloud)
    base = ost.endpoint(cloud, "compute")
    headers = {"X-Auth-Token": conn.session.get_token(), "Content-Type": "application/json"}

    def post(body, path="/servers", **hdr):
        return requests.post(base + path, data=body if isinstance(body, str)
                             else json.dumps(body), headers={**headers, **hdr}, timeout=10)

    r = requests.get(f"{base}/servers/{uuid.uuid4()}", headers=headers, timeout=10)
    assert r.status_code == 404 and "could not be found" in r.json()["itemNotFound"]["message"]
    r = post("{not json")
    assert r.status_code == 400 and "badRequest" in r.json()
    r = requests.get(f"{base}/flavors", headers={**headers,
                                                 "X-OpenStack-Nova-API-Version": "2.99"},
                     timeout=10)
    assert r.status_code == 406
    r = post({"server": {"name": "x", "flavorRef": "1", "imageRef": "",
                         "block_device_mapping_v2": [{"boot_index": 0, "uuid": "nope",
                                                      "source_type": "volume",
                                                      "destination_type": "volume",
                                                      "bogus": 1}]}})
    assert r.status_code == 400 and "'bogus' was unexpected" in r.json()["badRequest"]["message"]
    no_nets = {"server": {"name": "x", "flavorRef": "1", "imageRef": "",
                          "block_device_mapping_v2": [{"boot_index": 0, "uuid": str(uuid.uuid4()),
                                                       "source_type": "volume",
                                                       "destination_type": "volume"}]}}
    mv = {"X-OpenStack-Nova-API-Version": NOVA_MAX[cloud]}
    if cloud == "mitaka":      # networks as a string is not an array before 2.37
        r = post({"server": {**no_nets["server"], "networks": "none"}}, **mv)
        assert r.status_code == 400 and "is not of type 'array'" in r.text
    else:                      # networks is required from 2.37
        r = post(no_nets, **mv)
        assert r.status_code == 400 and "'networks' is a required property" in r.text
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.compute.create_server(name="x", flavor_id="999", **boot_networks(cloud),
                                   block_device_mapping=no_nets["server"][
                                       "block_device_mapping_v2"])
    if "volumev3" not in {s["type"] for s in ost.token(cloud)[1]["catalog"]}:
        return
    boot, other = lab.volume(cloud), lab.volume(cloud)
    server = lab.server(cloud, boot)
    # booting from an in-use volume, attaching an attached one, detaching the root: 400
    with pytest.raises(openstack.exceptions.BadRequestException, match="status must be"):
        lab.server(cloud, boot, wait=False)
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.compute.create_volume_attachment(server, volume_id=boot.id)
    with pytest.raises(openstack.exceptions.BadRequestException, match="root device"):
        conn.compute.delete_volume_attachment(server, boot.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.create_volume_attachment(server, volume_id=str(uuid.uuid4()))
    assert conn.compute.get_server(server.id).status == "ACTIVE"   # still serving
    assert conn.block_storage.get_volume(other.id).status == "available"
