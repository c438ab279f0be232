"""The OpenStack pieces of the demo (issue 9) against the session lab's clouds: each release
quirk of fixtures/openstack/quirks.py checked on the cloud it describes, the Tenants setup,
the lab Cinder's qemu-img image conversion, bad clouds.yaml input as one line in seconds, the
cleanup command on OpenStack leftovers (incl. after kill -9), and a bounded pass of the
scenarios. Everything goes through openstacksdk and dfs_sdk, as the scenarios do.
"""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from openstack import exceptions as os_exc

from fixtures import transport
from fixtures.config import load
from fixtures.datera import connect as datera_connect, delete_initiator, settings_from_target
from fixtures.openstack import datera_view, images, quirks, setup as os_setup
from fixtures.openstack.clouds import Clouds, clouds_of
from fixtures.openstack.factories import Factory, read_prefix_sha256
from fixtures.openstack.resources import Undo
from fixtures.waiters import wait_until
from tests.support.labcli import REPO

CLOUDS = ("mitaka", "newton", "pike")


@pytest.fixture(scope="module")
def os_target(target):
    if not clouds_of(target):
        pytest.skip("the target has no OpenStack clouds")
    if not target.is_lab or target.section("datera").get("transport") != "lab":
        pytest.skip("needs the embedded lab's data plane (initiator login + NBD)")
    return target


@pytest.fixture(scope="module")
def clouds(os_target):
    return Clouds(os_target)


@pytest.fixture(scope="module")
def demo_ci():
    return load(REPO / "demo.yaml", "ci")


@pytest.fixture(scope="module")
def datera_api(os_target):
    return datera_connect(settings_from_target(os_target))


@pytest.fixture
def made(clouds, demo_ci, datera_api, os_target):
    """cloud key -> Factory on a prepared cloud; everything made is undone after the test."""
    undo = Undo()
    prefix = f"vancouver-t{uuid.uuid4().hex[:5]}-gw"

    def make(key: str) -> Factory:
        cloud = clouds.cloud(key)
        dc = os_setup.prepare(clouds, key, demo_ci, f"/root/{cloud.datera_tenant}")
        return Factory(dc, undo, prefix)
    yield make
    undo.run()
    # the initiators Cinder's driver made for this test's hosts (IQNs carry the prefix)
    for key in CLOUDS:
        tenant = f"/root/{clouds.cloud(key).datera_tenant}"
        for i in datera_api.initiators.list(tenant=tenant):
            if i["id"].partition(":")[2].startswith(prefix) and i.get("tenant") == tenant:
                delete_initiator(datera_api, tenant, i["id"])


# ---- release quirks (issue 9 item 7): each one on the cloud it describes -----------------

@pytest.mark.parametrize("key", CLOUDS)
def test_microversions_match_the_release(clouds, key):
    rel = quirks.release(clouds.cloud(key).release)
    conn = clouds.connect(key)
    assert quirks.max_microversion(conn, "compute") == rel.nova_max
    cinder = quirks.max_microversion(conn, "block-storage")
    assert (cinder or "3.0") == rel.cinder_max


@pytest.mark.parametrize("key", CLOUDS)
def test_server_create_networks_quirk(clouds, key):
    """Newton/Pike refuse a create without `networks`; Mitaka refuses the string form."""
    rel = quirks.release(clouds.cloud(key).release)
    compute = clouds.connect(key).compute
    bdm = [{"boot_index": "0", "uuid": str(uuid.uuid4()), "source_type": "volume",
            "destination_type": "volume"}]
    wrong = {} if rel.networks_required else {"networks": "none"}
    with pytest.raises(os_exc.BadRequestException) as refused:
        compute.create_server(name=f"vancouver-quirk-{key}", flavor_id="1",
                              block_device_mapping=bdm, **wrong)
    assert "networks" in str(refused.value)
    # With the quirk's kwargs the request passes the schema and fails on the made-up volume.
    with pytest.raises(os_exc.HttpException) as other:
        compute.create_server(name=f"vancouver-quirk-{key}", flavor_id="1",
                              block_device_mapping=bdm, **quirks.server_networks(rel))
    assert "networks" not in str(other.value)


@pytest.mark.parametrize("key", CLOUDS)
def test_attachment_api_quirk(clouds, key):
    rel = quirks.release(clouds.cloud(key).release)
    bs = clouds.connect(key).block_storage
    if rel.attachments_api:
        list(bs.attachments())
    else:
        with pytest.raises(os_exc.NotFoundException):
            list(bs.attachments())


@pytest.mark.parametrize("key", CLOUDS)
def test_quota_keys_quirk(clouds, key):
    rel = quirks.release(clouds.cloud(key).release)
    admin = clouds.connect(key, admin=True)
    project = admin.identity.find_project(clouds.cloud(key).project)
    body = admin.compute.get(f"/os-quota-sets/{project.id}",
                             microversion=rel.nova_max).json()["quota_set"]
    assert ("floating_ips" in body) == rel.nova_network_quotas, sorted(body)
    assert quirks.compute_quota(rel, instances=5, floating_ips=3) == (
        {"instances": 5, "floating_ips": 3} if rel.nova_network_quotas else {"instances": 5})


@pytest.mark.parametrize("key", CLOUDS)
def test_retype_quirk_in_place_or_migration(made, datera_api, key):
    f = made(key)
    dc = f.dc
    vol = f.volume(type_role="bronze", size_gib=1)
    before = datera_view.app_instance(datera_api, dc.datera_tenant, vol.id)
    done = f.retype(vol, "gold")
    assert (done.status, done.volume_type) == ("available", dc.types["gold"])
    after = datera_view.app_instance(datera_api, dc.datera_tenant, vol.id)
    assert (after["id"] == before["id"]) == quirks.retype_is_in_place(dc.release)
    assert datera_view.performance_policy(datera_api, dc.datera_tenant, after) == {
        "total_iops_max": 2000}


# ---- LDAP (item 5): the Pike cloud's Datera backend is a directory user -------------------

@pytest.mark.parametrize("key", CLOUDS)
def test_datera_backend_logs_in_as_ldap_user_or_local(made, clouds, datera_api, key):
    """Pike's cinder.conf names datera_ldap_server and the tenant's directory user (no
    datera_tenant_id): its volumes land in that user's own tenant. The others log in as the
    local admin with datera_tenant_id set."""
    f = made(key)
    cloud = clouds.cloud(key)
    vol = f.volume(type_role="bronze", size_gib=1)
    assert datera_view.app_instance(datera_api, f.dc.datera_tenant, vol.id) is not None
    login = datera_view.backend_login(datera_api, cloud.datera_user, cloud.datera_ldap_server,
                                      f.dc.datera_tenant)
    if key == "pike":
        assert (cloud.datera_user, cloud.datera_ldap_server) == ("vancouver_op",
                                                                 "vancouver-ldap")
        assert (login["user's tenant"], login["roles"]) == (f.dc.datera_tenant, "tenant_admin")
        assert login["directory logins listed"] >= 1
        # No stray tenant from the driver's POST /tenants {"name": "root"} (a 409).
        assert [t["path"] for t in datera_api.tenants.list()
                if t["path"].startswith(f"{f.dc.datera_tenant}/")] == []
    else:
        assert (cloud.datera_user, cloud.datera_ldap_server) == ("admin", None)
        assert login["login"] == "local user"


# ---- Tenants setup (item 1) -------------------------------------------------------------

def test_tenants_setup_is_idempotent(clouds, demo_ci):
    for key in CLOUDS:
        cloud = clouds.cloud(key)
        first = os_setup.prepare(clouds, key, demo_ci, f"/root/{cloud.datera_tenant}")
        second = os_setup.prepare(clouds, key, demo_ci, f"/root/{cloud.datera_tenant}")
        assert first.project_id == second.project_id
        bs = first.admin.block_storage
        for role, name in first.types.items():
            found = [t for t in bs.types() if t.name == name]
            assert len(found) == 1, (name, len(found))
            specs = found[0].extra_specs
            assert {k: specs.get(k) for k in first.specs[role]} == first.specs[role]
        assert set(first.types) == {"ceph", "bronze", "silver", "gold", "per-gb", "chap"}


# ---- the lab Cinder converts qcow2 with qemu-img ------------------------------------------

def test_qcow2_image_to_volume_uses_virtual_size(made, os_target, tmp_path):
    f = made("pike")
    conn = f.conn
    name = f"{f.run_prefix}-img-{uuid.uuid4().hex[:6]}"
    img = images.make_qcow2(tmp_path, name, 2)
    image = conn.image.create_image(name=name, filename=str(img.path), disk_format="qcow2",
                                    container_format="bare", wait=True,
                                    vancouver_data_sha256=img.data_sha256,
                                    vancouver_data_bytes=str(img.data_bytes))
    f.undo.push("image", image.id, lambda: conn.image.delete_image(image.id,
                                                                    ignore_missing=True))
    assert conn.image.get_image(image.id).virtual_size is None   # Glance of these releases
    # 1 GiB < the 2 GiB virtual size: Cinder's qemu-img info refuses it (ImageUnacceptable).
    small = conn.block_storage.create_volume(name=f.name("small"), size=1, image_id=image.id,
                                             volume_type=f.dc.types["bronze"])
    f.undo.push("volume", small.id, lambda: conn.block_storage.delete_volume(
        small.id, ignore_missing=True))
    small = conn.block_storage.wait_for_status(small, "error", failures=["available"], wait=120)
    assert small.status == "error"
    # 2 GiB: converted onto the Datera volume; its first bytes are the image's data.
    vol = f.volume(type_role="bronze", size_gib=2, image_id=image.id)
    settings = settings_from_target(os_target)
    got = read_prefix_sha256(conn, vol.id, img.data_bytes, f"iqn.2026-11.lab.vancouver:{name}",
                             transport.for_settings(settings))
    assert got == img.data_sha256


@pytest.mark.parametrize("key", ["mitaka", "newton"])
def test_attached_volume_bytes_arrive_through_novas_swap(made, os_target, tmp_path, key):
    """Cinder's generic migration copies no attached volume: Nova's swap does (libvirt's
    blockRebase). A Ceph volume attached to a server whose guest never opens it is retyped
    to Datera; its image bytes must be there afterwards."""
    f = made(key)
    conn = f.conn
    img = images.make_qcow2(tmp_path, f"{f.run_prefix}-img-{uuid.uuid4().hex[:6]}", 1)
    image = images.upload(conn, img.path.stem, img, 1)
    f.undo.push("image", image.id, lambda: conn.image.delete_image(image.id,
                                                                    ignore_missing=True))
    boot = f.volume(type_role="bronze", size_gib=1, image_id=image.id)
    data = f.volume(type_role="ceph", size_gib=1, image_id=image.id)
    f.server(name=f.name("srv"), boot_volume_id=boot.id, data_volume_ids=[data.id],
             user_data="#!/bin/sh\necho idle\n")
    moved = f.retype(data, "bronze")
    assert (moved.status, moved.migration_status, moved.volume_type) == (
        "in-use", "success", f.dc.types["bronze"])
    got = read_prefix_sha256(conn, data.id, img.data_bytes,
                             f"iqn.2026-11.lab.vancouver:{f.run_prefix}-swap",
                             transport.for_settings(settings_from_target(os_target)))
    assert got == img.data_sha256


# ---- bad input: one line naming the cloud and the endpoint, in seconds ------------------

def _copy_target(os_target, tmp_path, change_target=None, change_clouds=None):
    tdir = os_target.path.parent
    for f in tdir.iterdir():
        if f.is_file():
            (tmp_path / f.name).write_bytes(f.read_bytes())
    doc = yaml.safe_load((tmp_path / "target.yaml").read_text())
    cy = yaml.safe_load((tmp_path / "clouds.yaml").read_text())
    if change_target:
        change_target(doc)
    if change_clouds:
        change_clouds(cy)
    (tmp_path / "target.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump(cy))
    return tmp_path / "target.yaml", cy


def _env():
    env = dict(os.environ)
    for k in ("VANCOUVER_TARGET", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID"):
        env.pop(k, None)
    return env


def _set(entry, path, value):
    def change(cy):
        cy["clouds"][entry]["auth"][path] = value
    return change


@pytest.mark.parametrize("case", ["missing entry", "wrong password", "cloud down"])
def test_bad_cloud_is_one_error_line_in_seconds(os_target, tmp_path, case):
    if case == "missing entry":
        def ct(doc):
            doc["openstack"]["clouds"]["newton"]["tenant_cloud"] = "no-such-entry"
        path, _ = _copy_target(os_target, tmp_path, change_target=ct)
        expect = ["newton", "no-such-entry"]
    elif case == "wrong password":
        path, cy = _copy_target(os_target, tmp_path,
                                change_clouds=_set("pike", "password", "not-the-password"))
        expect = ["pike", "wrong credentials", cy["clouds"]["pike"]["auth"]["auth_url"]]
    else:
        down = "http://127.0.0.1:9/v3"   # the discard port: nothing listens
        path, _ = _copy_target(os_target, tmp_path, change_clouds=_set("mitaka", "auth_url",
                                                                       down))
        expect = ["mitaka", "unreachable", down]
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "scenarios/openstack/", "--target",
                           str(path), "-p", "no:cacheprovider", "--html",
                           str(tmp_path / "report.html")], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    text = (proc.stdout + proc.stderr).strip()
    assert proc.returncode not in (0, 1), text
    assert "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if ln.startswith("ERROR")]
    assert len(errors) == 1, text
    for word in expect:
        assert word in errors[0], errors[0]
    assert "not-the-password" not in text
    print(f"{case}: {took:.1f} s")


# ---- cleanup (item 8) and the kill -9 of a run ---------------------------------------------

def _cleanup(os_target, *args):
    return subprocess.run([sys.executable, "-m", "fixtures.cleanup", "--target",
                           str(os_target.path), *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=600)


def _demo_left(clouds, datera_api, os_target) -> list[str]:
    """Demo-prefixed servers, volumes, snapshots and images in every cloud (openstacksdk), and
    app instances of demo volumes and initiators of demo hosts in the clouds' Datera tenants
    (dfs_sdk)."""
    left = []
    for key in clouds.clouds:
        admin = clouds.connect(key, admin=True)
        vols = list(admin.block_storage.volumes(all_projects=True))
        left += [f"{key} server {s.name}" for s in admin.compute.servers(all_projects=True)
                 if (s.name or "").startswith("vancouver-")]
        left += [f"{key} volume {v.name}" for v in vols if (v.name or "").startswith("vancouver-")]
        left += [f"{key} snapshot {s.name}" for s in
                 admin.block_storage.snapshots(all_projects=True)
                 if (s.name or "").startswith("vancouver-")]
        left += [f"{key} image {i.name}" for i in admin.image.images()
                 if (i.name or "").startswith("vancouver-")]
        live = {v.id for v in vols}
        tenant = f"/root/{clouds.cloud(key).datera_tenant}"
        left += [f"{key} app_instance {ai['name']}" for ai in
                 datera_api.app_instances.list(tenant=tenant)
                 if ai["name"].startswith("OS-") and ai["name"][3:] not in live]
        # initiators Cinder's driver made for demo hosts (iqn...:vancouver-<run>-...)
        left += [f"{key} initiator {i['id']}" for i in
                 datera_api.initiators.list(tenant=tenant)
                 if i["id"].partition(":")[2].startswith("vancouver-")
                 and i.get("tenant") == tenant]
    return left


@pytest.mark.serial  # --delete sweeps every demo-prefixed resource of the session lab
def test_cleanup_finds_openstack_leftovers_in_dependency_order(made, clouds, datera_api,
                                                              os_target, tmp_path):
    f = made("newton")
    conn = f.conn
    img = images.make_qcow2(tmp_path, f.set_name("image"), 1)
    image = images.upload(conn, img.path.stem, img, 1)
    boot = f.volume(type_role="bronze", size_gib=1, image_id=image.id, name=f.name("boot"))
    server = f.server(name=f.name("srv"), boot_volume_id=boot.id,
                      user_data="#!/bin/sh\necho hello\n")
    dry = _cleanup(os_target)
    assert dry.returncode == 0, dry.stderr
    lines = [ln for ln in dry.stdout.splitlines() if ln.startswith("would delete")]
    order = [next(i for i, ln in enumerate(lines) if what in ln)
             for what in (server.name, boot.name, image.name)]
    assert order == sorted(order), lines        # servers, then volumes, then images
    assert any(f"OS-{boot.id}" in ln for ln in lines), lines
    done = _cleanup(os_target, "--delete")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith(", 0 left"), done.stdout
    assert _demo_left(clouds, datera_api, os_target) == []


@pytest.mark.serial
@pytest.mark.slow
@pytest.mark.timeout(900)    # up to 180 s for the run's volumes, then a 600 s cleanup bound
def test_kill_9_of_openstack_scenarios_then_cleanup_leaves_nothing(clouds, datera_api,
                                                                  os_target, tmp_path):
    cmd = [sys.executable, "-m", "pytest", "scenarios/openstack/test_ceph_migration.py",
           "scenarios/openstack/test_image_rotation.py", "--target", str(os_target.path),
           "-n", "2", "--count=0", "--demo-profile", "ci", "-p", "no:cacheprovider",
           "--html", str(tmp_path / "report.html")]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: any(" volume " in x for x in _demo_left(clouds, datera_api,
                                                                   os_target)),
                   180, "the run to create Ceph volumes", 0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert _demo_left(clouds, datera_api, os_target), "the killed run left resources"
    done = _cleanup(os_target, "--delete")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _demo_left(clouds, datera_api, os_target) == []


def _where_the_time_went(results) -> str:
    """One line per iteration of an inner run's results.jsonl (a Path): worker, seconds, and
    the seconds it waited for and held QoS windows and tenant leases (the qos_windows
    fixture's figures, fixtures/datera.py); "" without the file."""
    if not results.is_file():
        return ""
    lines = []
    for line in results.read_text().splitlines():
        r = json.loads(line)
        spent = [f"{k.removesuffix(' (s)')} {v}" for k, v in r.get("figures", {}).items()
                 if k.endswith((" waited (s)", " held (s)"))]
        lines.append(f"{r['worker']} {r['duration']:6.1f} s {r['nodeid'].rpartition('::')[2]}"
                     + (f": {', '.join(spent)}" if spent else ""))
    return "\n".join(lines)


@pytest.mark.serial   # times its inner run (--duration) and sweeps the lab afterwards
@pytest.mark.slow
@pytest.mark.timeout(1800)   # the inner run's own limit is 1500 s (pytest.ini: 300 s)
def test_bounded_pass_of_the_openstack_scenarios(clouds, datera_api, os_target, tmp_path):
    """`make test`'s bounded pass (ci profile): every OpenStack piece on every cloud, then
    nothing demo-prefixed is left (openstacksdk, dfs_sdk)."""
    cmd = [sys.executable, "-m", "pytest", "scenarios/openstack/", "--target",
           str(os_target.path), "-n", "3", "--count=1", "--demo-profile", "ci",
           "-p", "no:cacheprovider", "--html", str(tmp_path / "report.html"), "-rA"]
    before = set(_demo_left(clouds, datera_api, os_target))   # other tests' leftovers
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=1500)
    print(_where_the_time_went(tmp_path / "results.jsonl"))   # this test's captured output
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "12 passed" in proc.stdout, proc.stdout[-3000:]
    # no cleanup first: the run's own end (rolling-set sweep, per-worker teardown) left nothing
    assert sorted(set(_demo_left(clouds, datera_api, os_target)) - before) == []
