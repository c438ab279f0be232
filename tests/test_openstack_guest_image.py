"""target.yaml's per-cloud guest_image (issue 9, a bootable image for real clouds): the
validation's one-line errors, and against the session lab's Glance the upload-once of a file,
an existing image by name, and the run-end sweep of uploaded guest images."""
import os
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from fixtures.openstack import guest, guest_image, images
from fixtures.openstack.clouds import Clouds, clouds_of
from fixtures.openstack.sweeper import OpenStackSweeper
from fixtures.target import read_target_file

CLOUD = {"release": "pike", "tenant_cloud": "pike", "admin_cloud": "pike-admin",
         "project": "Vancouver-OP", "datera_tenant": "Vancouver-OP", "controller": "10.0.0.1"}


def _target(tmp_path: Path, guest: dict) -> Path:
    doc = {"kind": "real", "openstack": {"clouds_yaml": "clouds.yaml",
                                         "clouds": {"pike": {**CLOUD, "guest_image": guest}}}}
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("case, guest_doc, words", [
    ("neither", {"flavor": "m1.small"}, ["openstack.clouds.pike.guest_image",
                                         "exactly one of 'file'"]),
    ("both", {"file": "a.img", "glance": "ubuntu"}, ["guest_image", "exactly one of"]),
    ("missing file", {"file": "no-such.img"}, ["guest_image.file", "no such file"]),
    ("not an image", {"file": "notes.txt"}, ["guest_image.file", "not a qcow2 or raw"]),
    ("bad min_disk", {"glance": "ubuntu", "min_disk_gib": 0}, ["min_disk_gib"]),
])
def test_guest_image_errors_are_one_line(tmp_path, case, guest_doc, words):
    (tmp_path / "notes.txt").write_text("not a disk image\n")
    with pytest.raises(pytest.UsageError) as e:
        read_target_file(_target(tmp_path, guest_doc))
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "target.yaml") in msg, msg
    for w in words:
        assert w in msg, msg


def test_guest_image_file_accepted_relative_to_target(tmp_path):
    img = images.make_qcow2(tmp_path, "guest", 1)
    model = read_target_file(_target(tmp_path, {"file": img.path.name, "flavor": "m1.small"}))
    assert model.openstack.clouds["pike"].guest_image.file == img.path.name


def test_real_guest_user_data_installs_fio_and_spares_the_root_device():
    jobs = [guest.GuestJob("boot", guest.ROOT_FS_FILE), guest.GuestJob("data", "/dev/vdb")]
    script = guest.user_data(jobs, install_fio=True)
    assert script.index(guest.INSTALL_FIO) < script.index("fio --name=boot")
    assert "--filename=/dev/vda" not in script and f"--filename={guest.ROOT_FS_FILE}" in script
    assert guest.INSTALL_FIO not in guest.user_data(jobs)


@pytest.fixture(scope="module")
def os_lab(target):
    if not clouds_of(target) or not target.is_lab:
        pytest.skip("needs the embedded lab's clouds")
    return target


def _factory(clouds, key, spec):
    cloud = clouds.cloud(key)
    dc = SimpleNamespace(key=key, cloud=SimpleNamespace(guest_image=spec))
    return SimpleNamespace(dc=dc, conn=clouds.connect(key)), cloud


def test_guest_image_file_is_uploaded_once_then_found_and_swept(os_lab, tmp_path):
    clouds = Clouds(os_lab)
    img = images.make_qcow2(tmp_path, f"guest-{uuid.uuid4().hex[:6]}", 2)
    spec = {"file": str(img.path), "flavor": None, "install_fio": True}
    factory, _ = _factory(clouds, "newton", spec)
    demo = SimpleNamespace(volumes=SimpleNamespace(size_gib=1))
    conn = factory.conn
    first = guest_image.boot_image(factory, demo, tmp_path)
    try:
        again = guest_image.boot_image(factory, demo, tmp_path)
        assert again.image.id == first.image.id                       # uploaded once
        # the upload lock is gone with its last holder (clients/locks.py)
        left = list(Path(tempfile.gettempdir()).glob(
            f"vancouver-guest-{os.getuid()}-newton-{first.image.name}.lock"))
        assert not left, left
        assert guest_image.GUEST_NAME.match(first.image.name), first.image.name
        assert (first.real_os, first.min_disk_gib, first.install_fio) == (True, 2, True)
        assert first.image.min_disk == 2 and first.image.disk_format == "qcow2"
        # an existing image, by name: found, min_disk from the image
        byname = guest_image.boot_image(
            _factory(clouds, "newton", {"glance": first.image.name})[0], demo, tmp_path)
        assert (byname.image.id, byname.min_disk_gib) == (first.image.id, 2)
        # the run's end sweeps uploaded guest images (only_sets)
        found = [i for i in OpenStackSweeper(os_lab, only_sets=True).find()
                 if i.kind == "image" and i.name == first.image.name]
        assert found, "the run-end sweep does not see the uploaded guest image"
    finally:
        conn.image.delete_image(first.image.id, ignore_missing=True)


def test_guest_image_unknown_glance_name_is_one_line(os_lab, tmp_path):
    clouds = Clouds(os_lab)
    factory, _ = _factory(clouds, "mitaka", {"glance": "no-such-image-xyz"})
    with pytest.raises(guest_image.GuestImageError) as e:
        guest_image.boot_image(factory, SimpleNamespace(volumes=SimpleNamespace(size_gib=1)),
                               tmp_path)
    assert str(e.value) == ("OpenStack cloud 'mitaka': guest_image.glance "
                            "'no-such-image-xyz': no such image visible to the project")
