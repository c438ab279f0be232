"""Glance v2 of the lab's clouds through openstacksdk 4.22 and the openstack CLI: image create
with upload and download (bytes equal), properties, visibility per release, list filters and
paging, delete, and bad input with Glance's status codes."""
import hashlib
import os
import uuid

import openstack
import pytest
import requests

from tests.support.openstack import CLOUDS

DEFAULT_VISIBILITY = {"mitaka": "private", "newton": "private", "pike": "shared"}
CURRENT = {"mitaka": "v2.3", "newton": "v2.4", "pike": "v2.5"}


def _name(tag: str) -> str:
    return f"vancouver-test-{tag}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_image(ost):
    """make_image(cloud, **kw) -> a created image, deleted after the test."""
    made = []

    def make(cloud: str, admin: bool = False, **kw):
        conn = ost.connect(cloud, admin=admin)
        kw.setdefault("disk_format", "raw")
        kw.setdefault("container_format", "bare")
        image = conn.image.create_image(name=kw.pop("name", _name("img")), **kw)
        made.append((conn, image))
        return image
    yield make
    for conn, image in reversed(made):
        conn.image.delete_image(image, ignore_missing=True)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_version_document_is_300_with_current_per_release(ost, cloud):
    base = ost.endpoint(cloud, "image")
    resp = requests.get(base + "/", timeout=10)
    assert resp.status_code == 300
    versions = resp.json()["versions"]
    assert [v["id"] for v in versions if v["status"] == "CURRENT"] == [CURRENT[cloud]]
    assert all(v["links"][0]["href"] == base + "/v2/" for v in versions if v["id"] >= "v2")
    assert "v2.6" not in [v["id"] for v in versions]    # import stays off in Pike


@pytest.mark.parametrize("cloud", CLOUDS)
def test_sdk_upload_and_download_bytes_equal(ost, make_image, cloud):
    # zeros in the middle exercise the sparse store
    data = os.urandom(300_000) + bytes(1 << 20) + os.urandom(70_001)
    image = make_image(cloud, data=data)
    conn = ost.connect(cloud)
    got = conn.image.get_image(image)
    assert got.status == "active" and got.size == len(data)
    assert got.checksum == hashlib.md5(data).hexdigest()
    assert got.visibility == DEFAULT_VISIBILITY[cloud]
    assert got.owner == conn.current_project_id
    assert got.properties["owner_specified.openstack.object"] == f"images/{image.name}"
    assert conn.image.download_image(got).content == data
    assert conn.image.find_image(image.name).id == image.id
    conn.image.delete_image(image)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.get_image(image.id)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_osc_image_create_save_delete(ost, tmp_path, cloud):
    src = tmp_path / "src.img"
    src.write_bytes(os.urandom(123_457))
    name = _name("osc")
    created = ost.osc(cloud, "image", "create", "--disk-format", "raw", "--container-format",
                      "bare", "--file", str(src), "--property", "demo=vancouver", name,
                      "-f", "json")
    try:
        assert created["status"] == "active" and created["size"] == src.stat().st_size
        assert created["properties"]["demo"] == "vancouver"
        out = tmp_path / "out.img"
        ost.osc(cloud, "image", "save", "--file", str(out), name)
        assert out.read_bytes() == src.read_bytes()
        listed = ost.osc(cloud, "image", "list", "--name", name, "-f", "json")
        assert [i["ID"] for i in listed] == [created["id"]]
    finally:
        ost.osc(cloud, "image", "delete", name)
    gone = ost.osc(cloud, "image", "show", name, check=False)
    assert gone.returncode != 0


def test_visibility_enum_per_release(ost, make_image):
    # Mitaka and Newton know public/private only: 'shared' and 'community' are 400
    for cloud in ("mitaka", "newton"):
        with pytest.raises(openstack.exceptions.BadRequestException):
            make_image(cloud, visibility="shared")
    assert make_image("pike", visibility="community").visibility == "community"
    assert make_image("mitaka", visibility="private").visibility == "private"
    # publicizing is admin-only everywhere
    with pytest.raises(openstack.exceptions.ForbiddenException):
        make_image("pike", visibility="public")
    assert make_image("pike", admin=True, visibility="public").visibility == "public"


def test_list_filters_and_paging(ost, make_image):
    tag = uuid.uuid4().hex[:8]
    names = [f"vancouver-test-page-{tag}-{i}" for i in range(5)]
    ids = [make_image("newton", name=n).id for n in names]
    conn = ost.connect("newton")
    mine = [i.id for i in conn.image.images(owner=conn.current_project_id, limit=2)
            if i.id in ids]
    assert sorted(mine) == sorted(ids)            # paged through in pages of 2
    base = ost.endpoint("newton", "image")
    headers = {"X-Auth-Token": conn.session.get_token()}
    first = requests.get(f"{base}/v2/images", params={"limit": 2}, headers=headers,
                         timeout=10).json()
    assert len(first["images"]) == 2 and first["next"].startswith("/v2/images?")
    by_in = requests.get(f"{base}/v2/images", params={"id": f"in:{ids[0]},{ids[3]}"},
                         headers=headers, timeout=10).json()
    assert sorted(i["id"] for i in by_in["images"]) == sorted([ids[0], ids[3]])
    by_name = requests.get(f"{base}/v2/images", params={"name": names[2]}, headers=headers,
                           timeout=10).json()
    assert [i["id"] for i in by_name["images"]] == [ids[2]]


def test_bad_input_answers_as_glance(ost, make_image):
    conn = ost.connect("pike")
    base = ost.endpoint("pike", "image")
    headers = {"X-Auth-Token": conn.session.get_token()}
    missing = requests.get(f"{base}/v2/images/{uuid.uuid4()}", headers=headers, timeout=10)
    assert missing.status_code == 404 and "No image found with ID" in missing.text
    assert missing.headers["Content-Type"].startswith("text/html")
    malformed = requests.post(f"{base}/v2/images", data=b"{nope", timeout=10,
                              headers=dict(headers, **{"Content-Type": "application/json"}))
    assert malformed.status_code == 400
    read_only = requests.post(f"{base}/v2/images", json={"name": "x", "status": "active"},
                              headers=headers, timeout=10)
    assert read_only.status_code == 403 and "Attribute 'status' is read-only." in read_only.text
    image = make_image("pike", data=b"data")
    again = requests.put(f"{base}/v2/images/{image.id}/file", data=b"more", timeout=10,
                         headers=dict(headers, **{"Content-Type": "application/octet-stream"}))
    assert again.status_code == 409
    wrong_token = requests.get(f"{base}/v2/images", headers={"X-Auth-Token": "gAAAAABnope"},
                               timeout=10)
    assert wrong_token.status_code == 401
    # another cloud's tenant cannot see this cloud's image even with a valid token there
    other = ost.connect("mitaka")
    foreign = requests.get(f"{base}/v2/images/{image.id}",
                           headers={"X-Auth-Token": other.session.get_token()}, timeout=10)
    assert foreign.status_code == 401
    assert conn.image.get_image(image.id).status == "active"   # still serving
