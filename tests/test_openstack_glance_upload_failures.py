"""Glance upload failures answered as Glance 12-15 does (glance/api/v2/image_data.py upload,
glance/domain Image.status): each leaves the image `queued`, with no size or checksum, so the
upload can be retried.
- formats unset: 400 "Property(ies) disk_format, container_format must be set prior to saving
  data.";
- a body shorter than its Content-Length (the client went away): the upload is abandoned;
- a second upload of an active image: 409;
- a wrong Content-Type: 415.
"""
import socket
from urllib.parse import urlsplit

import pytest

from fixtures.waiters import wait_until
from tests.support.openstack import RawGlance


class Glance(RawGlance):
    name_tag = "upfail"

    def state(self, image_id):
        img = self("GET", f"/images/{image_id}").json()
        return img["status"], img["size"], img["checksum"]


@pytest.fixture
def glance(ost, request):
    g = Glance(ost, request.param)
    yield g
    g.cleanup()


CLOUDS = pytest.mark.parametrize("glance", ["pike", "mitaka"], indirect=True)
OCTETS = {"Content-Type": "application/octet-stream"}


@CLOUDS
def test_upload_without_formats_is_400_and_stays_queued(glance):
    for body, missing in (({}, "Properties disk_format, container_format"),
                          ({"disk_format": "raw"}, "Property container_format"),
                          ({"container_format": "bare"}, "Property disk_format")):
        img = glance.image(**body)
        r = glance("PUT", f"/images/{img['id']}/file", data=b"x" * 512, headers=OCTETS)
        assert r.status_code == 400, r.text
        assert f"{missing} must be set prior to saving data." in r.text
        assert glance.state(img["id"]) == ("queued", None, None)
    # once set, the same image takes its data
    r = glance("PATCH", f"/images/{img['id']}", json=[
        {"op": "replace", "path": "/disk_format", "value": "raw"}],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert r.status_code == 200, r.text
    assert glance("PUT", f"/images/{img['id']}/file", data=b"x" * 512,
                  headers=OCTETS).status_code == 204
    assert glance.state(img["id"])[:2] == ("active", 512)


@CLOUDS
def test_short_body_leaves_the_image_queued_for_a_retry(glance):
    img = glance.image(disk_format="raw", container_format="bare")
    url = urlsplit(f"{glance.base}/v2/images/{img['id']}/file")
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall((f"PUT {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                   f"X-Auth-Token: {glance.token}\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Length: 1048576\r\n\r\n").encode() + b"y" * 4096)
        s.shutdown(socket.SHUT_WR)   # the client goes away 4 KiB into 1 MiB
        s.recv(4096)
    wait_until(lambda: glance.state(img["id"])[0] == "queued", timeout=10,
               what="the abandoned upload's image back to queued")
    assert glance.state(img["id"]) == ("queued", None, None)
    r = glance("PUT", f"/images/{img['id']}/file", data=b"z" * 2048, headers=OCTETS)
    assert r.status_code == 204, r.text
    assert glance.state(img["id"])[:2] == ("active", 2048)
    r = glance("PUT", f"/images/{img['id']}/file", data=b"z", headers=OCTETS)
    assert r.status_code == 409
    r = glance("PUT", f"/images/{img['id']}/file", data=b"z",
                headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
