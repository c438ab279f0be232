"""The harness's openstacksdk calls use its current APIs: an image upload (fixtures/openstack/
images.py, as the image rotation and the guest image do) and a find, against the lab's Glance,
raise no openstacksdk deprecation warning. The one left is openstacksdk's own (Proxy.request
passes service_type to _extract_name, openstack/proxy.py), filtered in pytest.ini."""
from __future__ import annotations

import uuid
import warnings

import pytest
from openstack import warnings as os_warnings

from fixtures.openstack import images
from fixtures.openstack.resources import find_or_none

# openstacksdk's warnings about its own internal calls (pytest.ini filters them by message)
SDK_OWN = ("The 'service_type' parameter is unnecesary",
           "The _compute_attributes method is deprecated for removal")


def _deprecations(caught) -> list[str]:
    return [f"{w.category.__name__}: {w.message}" for w in caught
            if issubclass(w.category, (os_warnings.OpenStackDeprecationWarning,
                                       os_warnings._RemovedInSDKWarning))
            and not str(w.message).startswith(SDK_OWN)]


@pytest.fixture
def conn(ost):
    conn = ost.connect("mitaka")
    made: list[str] = []
    yield conn, made
    for image_id in made:
        conn.image.delete_image(image_id, ignore_missing=True)


def test_upload_and_find_raise_no_deprecation(conn, tmp_path):
    conn, made = conn
    img = images.make_qcow2(tmp_path, "w", 1)
    name = f"vancouver-test-warn-{uuid.uuid4().hex[:8]}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = images.upload(conn, name, img, 1)
        made.append(image.id)
        assert images.find(conn, name).id == image.id
        assert images.find(conn, image.id).id == image.id
        assert images.find(conn, name + "-none") is None
        assert find_or_none(conn.compute.find_server, name + "-none") is None
        assert find_or_none(conn.block_storage.find_volume, name + "-none") is None
    assert _deprecations(caught) == []


def test_the_old_calls_did_warn(conn):
    """What the harness no longer calls: create_image without allow_duplicates looks the name
    up with find_image first, and find_image warns on every call (Image.find passes the
    deprecated ignore_missing=True itself)."""
    conn, made = conn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = conn.image.create_image(name=f"vancouver-test-warn-{uuid.uuid4().hex[:8]}",
                                        data=b"x" * 512, disk_format="raw",
                                        container_format="bare", wait=True, timeout=120)
        made.append(image.id)
    assert any("ignore_missing" in w for w in _deprecations(caught)), _deprecations(caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conn.image.find_image(image.id, ignore_missing=False)
    assert any("ignore_missing" in w for w in _deprecations(caught)), _deprecations(caught)
