"""The OpenStack half of the Vancouver demo, start to finish, once per cloud, through
openstacksdk 4.22 only (issue 4, "Show"): image upload, two Datera types with DF:* QoS, a
volume from the image on Datera, a Ceph volume migrated to Datera, a server booted from the
Datera volume with the migrated one attached, fio's JSON for both devices on the console,
a retype of the attached volume to the higher QoS type, and a delete that leaves nothing on
Cinder or on the Datera cluster.

The Datera side is checked through the unmodified dfs_sdk (tests/support/dsdk.py) in the cloud's own
Datera tenant: app instances are named `OS-<volume id>` (reference §f).
"""
import base64
import hashlib
import os

import pytest

from tests.support.dsdk import Udc, connect, errors as dexc
from tests.support.openstack import (CLOUDS, FIO, TEST_INITIATOR, boot_networks,
                                     ceph_volume_path, console_until, fio_reports,
                                     read_datera_volume, sha256_file, unique_name)

IMAGE_BYTES = 3 * 1024 * 1024 + 4099          # a few MiB, not a multiple of any block size
# Caps high enough that reading a whole 1 GiB volume for its checksum stays quick.
SILVER = {"DF:iops_per_gb": "2000", "DF:total_iops_max": "4000"}     # 1 GiB: 2000 IOPS
GOLD = {"DF:total_iops_max": "8000", "DF:write_iops_max": "6000"}
SILVER_POLICY_1G = {"total_iops_max": 2000}
GOLD_POLICY = {"total_iops_max": 8000, "write_iops_max": 6000}
# Pike's Datera driver retypes between Datera types in place; Mitaka's and Newton's cannot,
# so Cinder migrates (a new app instance, Nova swaps the attached volume) (reference §f/§g).
IN_PLACE_RETYPE = {"mitaka": False, "newton": False, "pike": True}


class DateraView:
    """The cloud's Datera tenant as dfs_sdk sees it."""

    def __init__(self, target, tenant: str):
        udc = Udc.load(target.file("datera", "udc"), target.file("datera", "ca_file"))
        self.api = connect(udc)
        self.tenant = f"/root/{tenant}"

    def app_instance(self, volume_id: str):
        """The app instance OS-<volume id>, or None."""
        found = [ai for ai in self.api.app_instances.list(tenant=self.tenant)
                 if ai["name"] == f"OS-{volume_id}"]
        assert len(found) <= 1, f"{len(found)} app instances named OS-{volume_id}"
        return found[0] if found else None

    def performance_policy(self, ai) -> dict:
        si = ai.storage_instances.list(tenant=self.tenant)[0]
        vol = si.volumes.list(tenant=self.tenant)[0]
        try:
            pp = vol.performance_policy.get(tenant=self.tenant)
        except dexc.ApiNotFoundError:
            return {}
        return {k: int(v) for k, v in pp.items() if k.endswith("_max") and int(v or 0) > 0}


@pytest.fixture
def servers(cc):
    """Servers made by the test, deleted before cc removes the volumes, types and images."""
    made = []
    yield made
    for cloud, server_id in made:
        compute = cc.conn(cloud).compute
        server = compute.find_server(server_id, ignore_missing=True)
        if server is not None:
            compute.delete_server(server)
            compute.wait_for_delete(server, wait=120)


@pytest.fixture(scope="module")
def demo_target(target):
    if not target.is_lab or target.section("datera").get("transport") != "lab":
        pytest.skip("needs the embedded lab's Datera data plane (initiator login + NBD)")
    return target


@pytest.mark.parametrize("cloud", CLOUDS)
def test_demo_flow(ost, cc, servers, demo_target, cloud, tmp_path):
    conn, admin = cc.conn(cloud), cc.conn(cloud, admin=True)
    bs, compute = conn.block_storage, conn.compute
    datera = DateraView(demo_target, ost.cloud(cloud)["datera_tenant"])

    # 1. Glance: an image with real bytes, uploaded and read back
    data = os.urandom(IMAGE_BYTES)
    image = cc.image(cloud, data)
    shown = conn.image.get_image(image.id)
    assert shown.status == "active" and shown.size == len(data)
    assert shown.checksum == hashlib.md5(data).hexdigest()
    assert conn.image.download_image(image).content == data

    # 2. Volume types: silver and gold on Datera (DF:* QoS), and one on Ceph
    silver = cc.datera_type(cloud, **SILVER)
    gold = cc.datera_type(cloud, **GOLD)
    ceph = cc.ceph_type(cloud)
    assert admin.block_storage.get_type(gold.id).extra_specs == {
        "volume_backend_name": "datera", "DF:replica_count": "1", **GOLD}

    # 3. A boot volume from the image on Datera: its first bytes are the image
    boot = cc.volume(cloud, size=1, volume_type=silver.name, image_id=image.id)
    assert boot.is_bootable and boot.volume_image_metadata["image_id"] == image.id
    assert read_datera_volume(cc, cloud, boot.id, tmp_path, len(data)) == data
    assert datera.performance_policy(datera.app_instance(boot.id)) == SILVER_POLICY_1G

    # 4. A data volume on Ceph, migrated to Datera on retype: same id, same bytes
    moved = cc.volume(cloud, size=1, volume_type=ceph.name, image_id=image.id)
    info = bs.init_volume_attachment(moved, {"initiator": TEST_INITIATOR, "ip": "127.0.0.1"})
    before = sha256_file(ceph_volume_path(demo_target, cloud, info))
    bs.retype_volume(moved, silver.name, migration_policy="on-demand")
    done = cc.wait_admin(cloud, moved.id, lambda v: v["status"] != "retyping")
    assert (done["status"], done["volume_type"]) == ("available", silver.name), done
    assert done["os-vol-mig-status-attr:migstat"] == "success"
    assert done["os-vol-host-attr:host"].endswith("@datera#datera")
    assert bs.get_volume(moved.id).id == moved.id
    assert read_datera_volume(cc, cloud, moved.id, tmp_path) == before
    assert datera.app_instance(moved.id) is not None

    # 5. Boot from the Datera volume with the migrated one as /dev/vdb; fio on both
    script = "#!/bin/sh\necho vancouver-demo-guest\n" + "\n".join([
        FIO.format(name="boot", dev="/dev/vda", rw="write"),
        FIO.format(name="data", dev="/dev/vdb", rw="randwrite")]) + "\n"
    bdm = [{"boot_index": "0", "uuid": boot.id, "source_type": "volume",
            "destination_type": "volume", "delete_on_termination": False},
           {"uuid": moved.id, "source_type": "volume", "destination_type": "volume"}]
    server = compute.create_server(name=unique_name("srv"), flavor_id="1", block_device_mapping=bdm,
                                   user_data=base64.b64encode(script.encode()).decode(),
                                   **boot_networks(cloud))
    servers.append((cloud, server.id))
    server = compute.wait_for_server(server, wait=120)
    assert server.status == "ACTIVE"
    assert [(a.volume_id, a.device) for a in compute.volume_attachments(server)] == [
        (boot.id, "/dev/vda"), (moved.id, "/dev/vdb")]
    assert {bs.get_volume(v).status for v in (boot.id, moved.id)} == {"in-use"}
    console = console_until(conn, server)
    assert "user-data exited with status 0" in console
    reports = fio_reports(console)
    assert [r["jobs"][0]["jobname"] for r in reports] == ["boot", "data"]
    for r in reports:
        job = r["jobs"][0]
        assert job["error"] == 0 and job["write"]["io_bytes"] == 4 << 20
        assert job["job options"]["ioengine"] == "nbd"      # both reached through Datera

    # 6. Retype the attached volume to gold: live QoS
    old_ai = datera.app_instance(moved.id)
    assert datera.performance_policy(old_ai) == SILVER_POLICY_1G
    bs.retype_volume(moved, gold.name, migration_policy="on-demand")
    done = cc.wait_admin(cloud, moved.id, lambda v: v["status"] != "retyping")
    assert (done["status"], done["volume_type"]) == ("in-use", gold.name), done
    assert done["os-vol-mig-status-attr:migstat"] == "success"
    new_ai = datera.app_instance(moved.id)
    assert datera.performance_policy(new_ai) == GOLD_POLICY
    if IN_PLACE_RETYPE[cloud]:
        assert new_ai["id"] == old_ai["id"]                  # same app instance, new policy
    else:
        assert new_ai["id"] != old_ai["id"]                  # migrated; Nova swapped it
    assert [(a.volume_id, a.device) for a in compute.volume_attachments(server)] == [
        (boot.id, "/dev/vda"), (moved.id, "/dev/vdb")]

    # 7. Delete the server, then the volumes: nothing left on Cinder nor on Datera
    compute.delete_server(server)
    compute.wait_for_delete(server, wait=120)
    for vol in (boot, moved):
        # fresh: the objects in hand say "available" (openstacksdk would not poll)
        bs.wait_for_status(bs.get_volume(vol.id), "available", failures=["error"], wait=60)
        bs.delete_volume(vol)
    for vol in (boot, moved):
        bs.wait_for_delete(vol, wait=120)
    names = {boot.name, moved.name}
    assert not names & {v.name for v in admin.block_storage.volumes(all_projects=True)}
    assert datera.app_instance(boot.id) is None and datera.app_instance(moved.id) is None
