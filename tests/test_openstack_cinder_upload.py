"""Upload a volume to an image (os-volume_upload_image) through openstacksdk, the openstack
CLI and raw requests: the volume goes uploading -> available (or back to in-use), the Glance
image becomes active holding the volume's bytes in the requested disk_format (checked with
qemu-img), and the API's preconditions and answer per release (models/upload.py has the
sources: cinder/api/contrib/volume_actions.py, cinder/volume/api.py copy_volume_to_image).
"""
import json
import subprocess

import pytest

from fixtures.waiters import poll_until
from tests.support.openstack import (CLOUDS, ceph_volume_path, unique_name,
                                     write_datera_volume)

MiB = 1 << 20
DATA = bytes(range(256)) * 4096          # 1 MiB of a recognisable pattern


def _upload(cc, cloud, vol_id, version=None, admin=False, **params):
    return cc.raw(cloud, "POST", f"/volumes/{vol_id}/action", version=version, admin=admin,
                  json={"os-volume_upload_image": params})


def _image_bytes(cc, cloud, image_id, tmp_path) -> tuple[dict, bytes]:
    """(qemu-img info of the image's data, its first MiB as raw)."""
    conn = cc.conn(cloud)
    img = conn.image.wait_for_status(conn.image.get_image(image_id), "active", wait=120)
    path = tmp_path / f"{image_id}.img"
    with open(path, "wb") as f:
        conn.image.download_image(img, output=f)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)],
                                     check=True, capture_output=True, text=True).stdout)
    raw = tmp_path / f"{image_id}.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(path), str(raw)], check=True,
                   capture_output=True)
    with open(raw, "rb") as f:
        return info, f.read(MiB)


def _statuses(cc, cloud, vol_id, final="available") -> set:
    seen = set()
    poll_until(lambda: cc.admin_volume(cloud, vol_id)["status"],
               lambda s: seen.add(s) or s == final, 120)
    return seen


def test_upload_qcow2_from_ceph_holds_the_volume_bytes(cc, target, tmp_path):
    cloud = "pike"
    vol = cc.volume(cloud, size=1, volume_type=cc.ceph_type(cloud).name)
    info = cc.raw(cloud, "POST", f"/volumes/{vol.id}/action",
                  json={"os-initialize_connection": {"connector": {"host": "t"}}}).json()
    with open(ceph_volume_path(target, cloud, info["connection_info"]), "r+b") as f:
        f.write(DATA)
    name = unique_name("upload")
    body = cc.conn(cloud).block_storage.upload_volume_to_image(
        vol, name, disk_format="qcow2", container_format="bare")
    cc.images.append((cloud, body["image_id"]))
    assert body["status"] == "uploading" and body["image_name"] == name
    assert body["disk_format"] == "qcow2" and body["id"] == vol.id
    assert body["volume_type"]["extra_specs"] == {"volume_backend_name": "ceph"}
    assert "visibility" in body and "is_public" not in body       # Pike talks Glance v2
    assert _statuses(cc, cloud, vol.id) <= {"uploading", "available"}
    qinfo, first = _image_bytes(cc, cloud, body["image_id"], tmp_path)
    assert qinfo["format"] == "qcow2" and qinfo["virtual-size"] == 1 << 30
    assert first == DATA
    image = cc.conn(cloud).image.get_image(body["image_id"])
    assert image.disk_format == "qcow2" and image.name == name


@pytest.mark.parametrize("cloud", ["mitaka", "newton"])
def test_upload_raw_from_datera_through_the_cli(cc, ost, tmp_path, cloud):
    vol = cc.volume(cloud, size=1, volume_type=cc.datera_type(cloud).name)
    write_datera_volume(cc, cloud, vol.id, DATA, tmp_path)
    name = unique_name("upload")
    out = ost.osc(cloud, "image", "create", "--volume", vol.id, "--disk-format", "raw",
                  name, "-f", "json")
    image_id = out.get("image_id") or out["id"]
    cc.images.append((cloud, image_id))
    _statuses(cc, cloud, vol.id)
    qinfo, first = _image_bytes(cc, cloud, image_id, tmp_path)
    assert qinfo["format"] == "raw" and qinfo["virtual-size"] == 1 << 30
    assert first == DATA


@pytest.mark.parametrize("cloud", CLOUDS)
def test_upload_preconditions(cc, cloud):
    vol = cc.volume(cloud, size=1)
    resp = _upload(cc, cloud, vol.id, disk_format="raw")
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == "No image_name was specified in request."
    resp = _upload(cc, cloud, vol.id, image_name="x", disk_format="iso")
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "Invalid disk-format 'iso' is specified. Allowed disk-formats are raw, vmdk, vdi, "
        "qcow2, vhd, vhdx, ploop.")
    resp = _upload(cc, cloud, vol.id, image_name="x", force="maybe")
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"].startswith(
        "Invalid value for 'force': Unrecognized value 'maybe'")
    # in use (reserved and attached to a host): refused without force, uploaded with it
    for action in ({"os-reserve": None},
                   {"os-attach": {"host_name": "cinder-test", "mountpoint": "/dev/vdb"}}):
        assert cc.raw(cloud, "POST", f"/volumes/{vol.id}/action", json=action).status_code \
            == 202
    resp = _upload(cc, cloud, vol.id, image_name=unique_name("upload"))
    assert resp.status_code == 400
    message = resp.json()["badRequest"]["message"]
    if cloud == "mitaka":
        assert message == f"Volume {vol.id} is still attached, detach volume first."
    else:
        assert message == f"Invalid volume: Volume {vol.id} status must be available"
    resp = _upload(cc, cloud, vol.id, image_name=unique_name("upload"), force=True)
    assert resp.status_code == 202, resp.text
    cc.images.append((cloud, resp.json()["os-volume_upload_image"]["image_id"]))
    _statuses(cc, cloud, vol.id, "in-use")
    assert cc.conn(cloud).image.wait_for_status(
        cc.conn(cloud).image.get_image(resp.json()["os-volume_upload_image"]["image_id"]),
        "active", wait=120).status == "active"
    cc.raw(cloud, "POST", f"/volumes/{vol.id}/action", json={"os-detach": {}})


def test_upload_visibility_and_protected_from_3_1(cc):
    cloud = "pike"
    vol = cc.volume(cloud, size=1)
    # 3.1: public needs the admin-only upload_public policy
    resp = _upload(cc, cloud, vol.id, "3.1", image_name="x", visibility="public")
    assert resp.status_code == 403
    assert cc.admin_volume(cloud, vol.id)["status"] == "available"
    resp = _upload(cc, cloud, vol.id, "3.1", image_name="x", protected="sometimes")
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == \
        "Value 'sometimes' for 'protected' is not a boolean."
    resp = _upload(cc, cloud, vol.id, "3.1", image_name=unique_name("upload"))
    assert resp.status_code == 202, resp.text
    body = resp.json()["os-volume_upload_image"]
    cc.images.append((cloud, body["image_id"]))
    assert body["visibility"] == "private" and body["protected"] is False
    _statuses(cc, cloud, vol.id)
    # 3.0: the parameters are not read; Glance's default visibility applies
    resp = _upload(cc, cloud, vol.id, "3.0", image_name=unique_name("upload"),
                   visibility="public", protected=True)
    assert resp.status_code == 202, resp.text
    body = resp.json()["os-volume_upload_image"]
    cc.images.append((cloud, body["image_id"]))
    assert body["visibility"] == "shared" and body["protected"] is False
    _statuses(cc, cloud, vol.id)
