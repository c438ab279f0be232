"""Migrate volumes from Ceph to Datera (the plan's item 3), once per OpenStack tenant's cloud.

Ceph volumes with known data (made from the newest demo image) are created at intervals and
kept as a rolling set; a random one of this worker's set still on Ceph is retyped to a Datera
type with migration_policy=on-demand. Cinder migrates it (same volume id, new backend); the
bytes are proven on the Datera side (read as a host after os-initialize_connection), and
dfs_sdk shows the volume in the cloud's Datera tenant as `OS-<volume id>` with the type's
performance policy.
"""
import random

from fixtures import transport
from fixtures.openstack import datera_view, images
from fixtures.openstack.factories import read_prefix_sha256
from fixtures.openstack.resources import delete_volume, evict, find_or_none, members

KIND = "ceph"


def test_ceph_migration(openstack_cloud, os_factory, demo, proof, datera_admin, datera_settings,
                        os_host_iqn, run_prefix, qos_windows, tmp_path):
    dc, conn = openstack_cloud, openstack_cloud.conn
    tier = min(demo.tiers.values(), key=lambda t: t.total_iops_max)
    proof.figure("cloud", f"{dc.key} ({dc.cloud.project})")

    with proof.step("create a Ceph volume with known data (from the newest image)"):
        image = images.newest_or_publish(os_factory, demo, tmp_path)
        size = max(demo.volumes.size_gib, image.min_disk or 0)
        vol = os_factory.volume(type_role="ceph", size_gib=size, image_id=image.id,
                                name=os_factory.set_name(KIND), keep=True)
        proof.figure("new Ceph volume", f"{vol.name} ({vol.id}) from {image.name}")
        assert vol.volume_type == dc.types["ceph"] and vol.is_bootable

    with proof.step(f"rotate: keep the newest {demo.rolling.ceph_volumes} Ceph volumes"):
        current = members(conn.block_storage.volumes(), KIND)
        evicted = evict(current, demo.rolling.ceph_volumes,
                        lambda m: delete_volume(conn, m.id, dc.admin))
        for m in evicted:
            proof.resource_deleted("volume", m.id)
        proof.table("Ceph volume set (oldest first)",
                    [{"volume": m.name, "created_at": m.created_at,
                      "state": "evicted" if m in evicted else "kept"} for m in current])

    with proof.step("pick a random Ceph volume of the set"):
        mine = [find_or_none(conn.block_storage.find_volume, m.id)
                for m in members(conn.block_storage.volumes(), KIND)
                if m.name.startswith(f"{run_prefix}-")]
        candidates = [v for v in mine if v is not None and v.status == "available"
                      and v.volume_type == dc.types["ceph"]]
        assert candidates, "the volume just made is a candidate"
        picked = random.choice(candidates)
        nbytes, digest = images.volume_data_digest(picked)
        proof.figure("picked", f"{picked.name} ({picked.id})")

    # the copy into Datera and the read-back move data in the tenant: each waits for the QoS
    # checks measuring there (fixtures/headroom.py)
    with proof.step(f"retype to Datera {tier.name} (migration_policy=on-demand)"), \
            qos_windows.tenant_io(dc.datera_tenant):
        done = os_factory.retype(picked, tier.name)
        proof.table("Migration", {"status": done.status, "volume_type": done.volume_type,
                                  "migration_status": done.migration_status,
                                  "host": done.host})
        assert (done.status, done.volume_type) == ("available", dc.types[tier.name]), done
        assert done.migration_status == "success", done.migration_status
        assert done.id == picked.id
        proof.happened("volume_migrated", picked.name, f"{dc.key}, to Datera {tier.name}")

    with proof.step("the bytes arrived: checksum read through the Datera side"), \
            qos_windows.tenant_io(dc.datera_tenant):
        got = read_prefix_sha256(conn, picked.id, nbytes, os_host_iqn,
                                 transport.for_settings(datera_settings))
        proof.table("Checksum", {"bytes": nbytes, "expected sha256": digest[:16],
                                 "read through Datera": got[:16]})
        assert got == digest

    with proof.step("Datera: OS-<volume id> in the cloud's tenant with the type's policy"):
        ai = datera_view.app_instance(datera_admin, dc.datera_tenant, picked.id)
        assert ai is not None, f"no OS-{picked.id} in {dc.datera_tenant}"
        policy = datera_view.performance_policy(datera_admin, dc.datera_tenant, ai)
        proof.table("Datera", {"tenant": dc.datera_tenant, "app instance": ai["name"],
                               "performance policy": policy})
        assert policy == {"total_iops_max": tier.total_iops_max}, policy
