"""ETags on volume metadata (Cinder 3.15, cinder/api/v3/volume_metadata.py: "Added injecting
the response's Etag header to avoid the lost update problem with volume metadata"): GET
.../metadata carries an Etag; PUT .../metadata and .../metadata/{key} with an If-Match naming
an old tag answer 412 and change nothing. Newton (max 3.15) and Pike have it; below 3.15,
and on Mitaka, there is no Etag and If-Match is not looked at. Metadata set through the
openstack CLI, headers read with raw requests on the SDK's token.
"""
import pytest


def _meta(cc, cloud, vol_id, version):
    return cc.raw(cloud, "GET", f"/volumes/{vol_id}/metadata", version=version)


@pytest.mark.parametrize("cloud", ["newton", "pike"])
def test_etag_guards_metadata_updates_from_3_15(cc, ost, cloud):
    vol = cc.volume(cloud, size=1)
    ost.osc(cloud, "volume", "set", "--property", "owner=demo", vol.id)
    first = _meta(cc, cloud, vol.id, "3.15")
    assert first.status_code == 200 and first.json() == {"metadata": {"owner": "demo"}}
    etag = first.headers["Etag"]
    # another writer changes the metadata: the old tag no longer matches
    ost.osc(cloud, "volume", "set", "--property", "tier=gold", vol.id)
    second = _meta(cc, cloud, vol.id, "3.15")
    assert second.headers["Etag"] != etag
    for path, body in ((f"/volumes/{vol.id}/metadata", {"metadata": {"owner": "lost"}}),
                       (f"/volumes/{vol.id}/metadata/owner", {"meta": {"owner": "lost"}})):
        stale = cc.raw(cloud, "PUT", path, version="3.15", json=body,
                       headers={"If-Match": etag})
        assert stale.status_code == 412, stale.text
        assert stale.content == b""
    assert _meta(cc, cloud, vol.id, "3.15").json()["metadata"] == {"owner": "demo",
                                                                   "tier": "gold"}
    # the current tag (quoted, as HTTP clients send it) lets the update through
    fresh = cc.raw(cloud, "PUT", f"/volumes/{vol.id}/metadata/owner", version="3.15",
                   json={"meta": {"owner": "ops"}},
                   headers={"If-Match": f'"{second.headers["Etag"]}"'})
    assert fresh.status_code == 200, fresh.text
    assert cc.conn(cloud).block_storage.get_volume(vol.id).metadata == {"owner": "ops",
                                                                       "tier": "gold"}


@pytest.mark.parametrize("cloud", ["mitaka", "newton", "pike"])
def test_no_etag_below_3_15(cc, cloud):
    vol = cc.volume(cloud, size=1, metadata={"owner": "demo"})
    version = "3.14" if cloud != "mitaka" else None
    resp = _meta(cc, cloud, vol.id, version)
    assert resp.status_code == 200 and "Etag" not in resp.headers
    put = cc.raw(cloud, "PUT", f"/volumes/{vol.id}/metadata", version=version,
                 json={"metadata": {"owner": "ops"}}, headers={"If-Match": "stale"})
    assert put.status_code == 200, put.text
    assert put.json() == {"metadata": {"owner": "ops"}}


def test_snapshot_metadata_has_no_etag(cc):
    vol = cc.volume("pike", size=1)
    bs = cc.conn("pike").block_storage
    snap = bs.wait_for_status(bs.create_snapshot(volume_id=vol.id), "available", wait=60)
    resp = cc.raw("pike", "GET", f"/snapshots/{snap.id}/metadata", version="3.15")
    assert resp.status_code == 200 and "Etag" not in resp.headers
