"""Glance v2 answers as the real Glance of each release: the /v2/schemas documents it serves
(glance/api/v2/images.py get_base_properties, image_members.py _MEMBER_SCHEMA, glance/schema.py,
etc/schema-image.json, at 12.0.0 / 13.0.0 / 15.0.0), every image and member body validated
against the schema the lab serves (jsonschema Draft 4, as Glance and glanceclient validate),
image members (share, accept, reject, list, remove) and both JSON-patch media types.
"""
import pytest

from tests.support.openstack import RawGlance, unique_name
from tests.support.tempest_schemas import validate

BASE = ("checksum", "container_format", "created_at", "direct_url", "disk_format", "file",
        "id", "locations", "min_disk", "min_ram", "name", "owner", "protected", "schema",
        "self", "size", "status", "tags", "updated_at", "virtual_size", "visibility")
CUSTOM = ("architecture", "instance_uuid", "kernel_id", "os_distro", "os_version",
          "ramdisk_id")
VISIBILITY = {"mitaka": ["public", "private"],
              "pike": ["community", "public", "private", "shared"]}
DISK_FORMATS = {"mitaka": ["ami", "ari", "aki", "vhd", "vmdk", "raw", "qcow2", "vdi", "iso"],
                "pike": ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi",
                         "iso", "ploop"]}


class Glance(RawGlance):
    """Images made with raw formats (the schemas' tests need no upload), removed as admin."""
    name_tag = "glance-schema"
    image_defaults = {"disk_format": "raw", "container_format": "bare"}

    def cleanup(self, admin: bool = True) -> None:
        super().cleanup(admin=admin)


@pytest.fixture
def glance(ost, request):
    g = Glance(ost, request.param)
    yield g
    g.cleanup()


CLOUDS = pytest.mark.parametrize("glance", ["pike", "mitaka"], indirect=True)


@CLOUDS
def test_served_schemas_are_glances(glance):
    """/v2/schemas/image(s) and member(s) as the release's Glance builds them."""
    image = glance("GET", "/schemas/image").json()
    assert image["name"] == "image"
    assert sorted(image["properties"]) == sorted(BASE + CUSTOM)
    assert image["additionalProperties"] == {"type": "string"}
    assert image["properties"]["visibility"]["enum"] == VISIBILITY[glance.cloud]
    assert image["properties"]["disk_format"]["enum"] == [None, *DISK_FORMATS[glance.cloud]]
    assert image["properties"]["status"]["readOnly"] is True
    assert all(image["properties"][k]["is_base"] is False for k in CUSTOM)
    assert [l["rel"] for l in image["links"]] == ["self", "enclosure", "describedby"]
    images = glance("GET", "/schemas/images").json()
    assert images["properties"]["images"]["items"] == image
    assert sorted(images["properties"]) == ["first", "images", "next", "schema"]
    member = glance("GET", "/schemas/member").json()
    assert member["additionalProperties"] is False
    assert member["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]
    members = glance("GET", "/schemas/members").json()
    assert members["properties"]["members"]["items"] == member
    assert glance("GET", "/schemas/nothing").status_code == 404


@CLOUDS
def test_bodies_validate_against_served_schema(glance):
    schemas = {n: glance("GET", f"/schemas/{n}").json()
               for n in ("image", "images", "member", "members")}
    items = []

    def check(name, resp, status):
        assert resp.status_code == status, resp.text
        items.append({"label": f"{glance.cloud} {resp.request.method} {resp.request.path_url}",
                      "json_schema": schemas[name], "body": resp.json()})
        return resp.json()

    img = glance.image(tags=["a"], architecture="x86_64", min_ram=0)
    items.append({"label": "create", "json_schema": schemas["image"], "body": img})
    check("image", glance("GET", f"/images/{img['id']}"), 200)
    assert glance("PUT", f"/images/{img['id']}/file", data=b"x" * 4096,
                  headers={"Content-Type": "application/octet-stream"}).status_code == 204
    active = check("image", glance("GET", f"/images/{img['id']}"), 200)
    assert (active["status"], active["size"]) == ("active", 4096)
    check("image", glance("PATCH", f"/images/{img['id']}", json=[
        {"op": "replace", "path": "/name", "value": "renamed"}],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"}), 200)
    check("images", glance("GET", "/images?limit=2"), 200)
    shared = glance.image(**({"visibility": "shared"} if glance.cloud == "pike" else {}))
    check("member", glance("POST", f"/images/{shared['id']}/members",
                           json={"member": glance.project(admin=True)}), 200)
    check("members", glance("GET", f"/images/{shared['id']}/members"), 200)
    refused = validate(items)
    assert not refused, "\n".join(f"{r['label']}: {r['error']}" for r in refused)


@CLOUDS
def test_json_patch_media_types(glance):
    """v2.1 = RFC 6902 {"op", "path"}; v2.0 = draft 4 {"replace": "/name"} (Tempest's form)."""
    img = glance.image()
    v20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}
    r = glance("PATCH", f"/images/{img['id']}", headers=v20,
               json=[{"replace": "/name", "value": "draft4"}, {"add": "/k", "value": "v"}])
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["k"]) == ("draft4", "v")
    r = glance("PATCH", f"/images/{img['id']}", headers=v20,
               json=[{"op": "replace", "path": "/name", "value": "x"}])
    assert r.status_code == 400 and "exactly one member" in r.text
    r = glance("PATCH", f"/images/{img['id']}", headers=v20,
               json=[{"add": "/a", "replace": "/b", "value": "x"}])
    assert r.status_code == 400 and "only one member" in r.text
    r = glance("PATCH", f"/images/{img['id']}", json=[{"path": "/name", "value": "x"}],
               headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert r.status_code == 400 and "Unable to find `op`" in r.text


@CLOUDS
def test_members_share_accept_reject_remove(glance):
    other = glance.project(admin=True)
    body = {"visibility": "shared"} if glance.cloud == "pike" else {}
    img = glance.image(**body)
    r = glance("POST", f"/images/{img['id']}/members", json={"member": other})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["member_id"]) == ("pending", other)
    assert glance("POST", f"/images/{img['id']}/members",
                  json={"member": other}).status_code == 409
    # only the member decides; the owner may not accept for it
    assert glance("PUT", f"/images/{img['id']}/members/{other}",
                  json={"status": "accepted"}).status_code == 403
    assert glance("PUT", f"/images/{img['id']}/members/{other}", admin=True,
                  json={"status": "bogus"}).status_code == 400
    r = glance("PUT", f"/images/{img['id']}/members/{other}", admin=True,
               json={"status": "rejected"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert glance("GET", f"/images/{img['id']}/members/{other}").json()["status"] == "rejected"
    assert glance("GET", f"/images/{img['id']}/members/nobody").status_code == 404
    r = glance("DELETE", f"/images/{img['id']}/members/{other}")
    assert r.status_code == 204
    assert glance("GET", f"/images/{img['id']}/members").json()["members"] == []


def test_pike_members_need_shared_visibility(ost):
    """Glance 14.0.0+: "Only shared images have members" (403 for a private image)."""
    g = Glance(ost, "pike")
    try:
        img = g.image(visibility="private")
        r = g("POST", f"/images/{img['id']}/members", json={"member": g.project(admin=True)})
        assert r.status_code == 403
    finally:
        g.cleanup()


@CLOUDS
def test_list_filters_and_sorts_as_glance(glance):
    """size_min/size_max, any attribute or extra property as a filter, created_at with an
    operator, sort=key:dir and sort_key/sort_dir (glance/api/v2/images.py index)."""
    tag = unique_name("lst")
    ids = {}
    for n in (1, 3, 2):
        img = glance.image(tags=[tag], os_distro=f"d{n}")
        assert glance("PUT", f"/images/{img['id']}/file", data=b"x" * (1024 * n),
                      headers={"Content-Type": "application/octet-stream"}).status_code == 204
        ids[n] = img["id"]

    def listed(query):
        r = glance("GET", f"/images?tag={tag}&{query}")
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["images"]]

    assert sorted(listed("size_min=2048")) == sorted([ids[2], ids[3]])
    assert listed("size_max=1024") == [ids[1]]
    assert listed("size=3072") == [ids[3]]
    assert listed("os_distro=d2") == [ids[2]]
    assert listed("sort=size:desc") == [ids[3], ids[2], ids[1]]
    assert listed("sort_key=size&sort_dir=asc") == [ids[1], ids[2], ids[3]]
    assert len(listed("created_at=gte:2000-01-01T00:00:00Z")) == 3
    assert listed("created_at=lt:2000-01-01T00:00:00Z") == []
    assert glance("GET", "/images?sort=size:sideways").status_code == 400
    assert glance("GET", "/images?sort=size&sort_key=name").status_code == 400
    assert glance("GET", "/images?size_min=big").status_code == 400
