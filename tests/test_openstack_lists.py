"""Lists, paths and versions (issue 8, item 7), as the real services answer them:
a full page has a `next` link (Cinder's and Nova's _get_collection_links, Glance's index);
Cinder's lists honour limit, marker, offset, sort_key/sort_dir (lists of keys, display_name)
and sort=key:dir; an empty id in a path is a 404 in every service, not the list; a trailing
"/" on a version document still serves it."""
import pytest
import requests

from tests.support.openstack import unique_name

CLOUDS = ["pike", "mitaka"]


def _names(body: dict, kind: str) -> list:
    return [i["name"] for i in body[kind]]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_full_page_has_next_link_and_last_page_none(cc, cloud):
    vols = [cc.volume(cloud, wait=False, size=1) for _ in range(2)]
    first = cc.raw(cloud, "GET", "/volumes?limit=1").json()
    assert len(first["volumes"]) == 1 and first["volumes_links"][0]["rel"] == "next"
    # follow the links to the end: every full page links on, the short one does not
    url, seen = "/volumes?limit=1", []
    while True:
        body = cc.raw(cloud, "GET", url).json()
        seen += [v["id"] for v in body["volumes"]]
        if not body.get("volumes_links"):
            assert len(body["volumes"]) < 1 or len(seen) >= 2
            break
        url = "/volumes?" + body["volumes_links"][0]["href"].split("?", 1)[1]
    assert {v.id for v in vols} <= set(seen)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_snapshot_list_offset_and_display_name_sort(cc, cloud):
    vol = cc.volume(cloud, size=1)
    tag = unique_name("snap")
    for i in (2, 0, 1):
        r = cc.raw(cloud, "POST", "/snapshots",
                   json={"snapshot": {"volume_id": vol.id, "name": f"{tag}-{i}"}})
        assert r.status_code == 202, r.text
    base = f"/snapshots?volume_id={vol.id}"
    asc = cc.raw(cloud, "GET", base + "&sort_key=display_name&sort_dir=asc")
    assert asc.status_code == 200, asc.text
    assert _names(asc.json(), "snapshots") == [f"{tag}-0", f"{tag}-1", f"{tag}-2"]
    desc = cc.raw(cloud, "GET", base + "&sort=name:desc").json()
    assert _names(desc, "snapshots") == [f"{tag}-2", f"{tag}-1", f"{tag}-0"]
    offset = cc.raw(cloud, "GET", base + "&sort=name:asc&offset=1").json()
    assert _names(offset, "snapshots") == [f"{tag}-1", f"{tag}-2"]
    bad = cc.raw(cloud, "GET", base + "&offset=-1")
    assert bad.status_code == 400 and "offset" in bad.text
    for s in cc.raw(cloud, "GET", base).json()["snapshots"]:
        cc.raw(cloud, "DELETE", f"/snapshots/{s['id']}")


@pytest.mark.parametrize("cloud", CLOUDS)
def test_volume_list_sort_key_lists_and_offset(cc, cloud):
    tag = unique_name("sort")
    for name, size in ((f"{tag}-a", 2), (f"{tag}-b", 1), (f"{tag}-c", 2)):
        cc.volume(cloud, wait=False, name=name, size=size)
    vols = cc.raw(cloud, "GET", "/volumes/detail?sort_key=size,display_name"
                                "&sort_dir=desc,asc").json()["volumes"]
    mine = [v["name"] for v in vols if v["name"] and v["name"].startswith(tag)]
    assert mine == [f"{tag}-a", f"{tag}-c", f"{tag}-b"]
    page = cc.raw(cloud, "GET", "/volumes?sort=name:asc&limit=1&offset=1").json()["volumes"]
    everything = cc.raw(cloud, "GET", "/volumes?sort=name:asc").json()["volumes"]
    assert page == everything[1:2]


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("path", ["/volumes/", "/snapshots/", "/types/", "/qos-specs/"])
def test_cinder_empty_id_is_404(cc, cloud, path):
    r = cc.raw(cloud, "GET", path, admin=True)
    assert r.status_code == 404, f"GET {path}: {r.status_code} {r.text[:200]}"
    assert "itemNotFound" in r.json()


@pytest.mark.parametrize("cloud", CLOUDS)
def test_nova_and_neutron_empty_id_is_404(ost, cloud):
    conn = ost.connect(cloud)
    token = conn.session.get_token()
    compute = conn.compute.get_endpoint().rstrip("/")
    network = conn.network.get_endpoint().rstrip("/")
    for url in (f"{compute}/servers/", f"{compute}/flavors/",
                f"{network}/v2.0/networks/".replace("/v2.0/v2.0", "/v2.0")):
        r = requests.get(url, headers={"X-Auth-Token": token}, timeout=10)
        assert r.status_code == 404, f"GET {url}: {r.status_code} {r.text[:200]}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_version_documents_still_served_with_trailing_slash(cc, cloud):
    base = cc.url(cloud).split("/v3")[0]
    for path in ("/v3/", "/v3", "/v2/", "/"):
        r = requests.get(base + path, timeout=10)
        assert r.status_code in (200, 300), f"GET {path}: {r.status_code}"
    advertised = {v["id"] for v in requests.get(base + "/", timeout=10).json()["versions"]}
    assert advertised == {"v2.0", "v3.0"}   # v1 is not served (enable_v1_api = False)
