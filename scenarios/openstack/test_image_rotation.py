"""Glance images (the plan's item 2), once per OpenStack tenant's cloud.

One image per interval (booth: every 5 minutes, 100 GB; ci: seconds and small): a real qcow2
made with qemu-img, whose virtual size is the profile's size and whose data is a few known
MiB, uploaded with disk_format=qcow2 and min_disk. Glance of these releases reports no
virtual size for a plain upload (Cinder learns it with `qemu-img info`). The oldest images
beyond the configured number are deleted "to conserve space": the set lives on the cloud
(listed by name pattern and created_at), so workers share it and a restarted run continues it.
"""
from fixtures.openstack import images
from fixtures.openstack.resources import delete_image, evict, members

KIND = "image"


def test_image_rotation(openstack_cloud, os_factory, demo, proof, tmp_path):
    dc, conn = openstack_cloud, openstack_cloud.conn
    size = demo.images.size_gib
    name = os_factory.set_name(KIND)
    proof.figure("cloud", f"{dc.key} ({dc.cloud.project})")

    with proof.step(f"make a qcow2 image with qemu-img ({size} GiB virtual)"):
        img = images.make_qcow2(tmp_path, name, size)
        proof.table("qcow2", {"file": img.path.name, "virtual size (bytes)": img.virtual_size,
                              "file size (bytes)": img.file_size,
                              "known data (bytes)": img.data_bytes,
                              "data sha256": img.data_sha256[:16]})
        assert img.virtual_size == size * images.GiB
        assert img.file_size < img.data_bytes + (8 << 20), "holes stay holes in the qcow2"

    with proof.step("upload to Glance (qcow2, min_disk)"):
        image = images.upload(conn, name, img, min_disk_gib=size)
        os_factory.undo.push("image", image.id, lambda: delete_image(conn, image.id))
        proof.figure("image", f"{image.name} ({image.id})")
        proof.happened("image_created", image.name, f"{dc.key}, {size} GiB virtual")
        assert image.status == "active"
        assert (image.disk_format, image.container_format) == ("qcow2", "bare")
        assert image.size == img.file_size and image.min_disk == size
        # Mitaka..Pike Glance computes no virtual size on a plain upload.
        assert image.virtual_size is None, image.virtual_size
        assert images.data_digest(image) == (img.data_bytes, img.data_sha256)
        os_factory.undo.keep(image.id)      # now a member of the rolling set

    with proof.step(f"rotate: keep the newest {demo.rolling.images} images"):
        current = members(conn.image.images(), KIND)
        assert image.id in {m.id for m in current}
        evicted = evict(current, demo.rolling.images, lambda m: delete_image(conn, m.id))
        for m in evicted:
            proof.resource_deleted("image", m.id)
            proof.happened("image_rotated", m.name, dc.key)
        left = members(conn.image.images(), KIND)
        proof.table("Image set (oldest first)",
                    [{"image": m.name, "created_at": m.created_at,
                      "state": "evicted" if m in evicted else "kept"} for m in current])
        assert not {m.id for m in evicted} & {m.id for m in left}
        # Other workers may add members meanwhile; the set never grows past N + workers.
        assert len(left) <= demo.rolling.images + 8, [m.name for m in left]
