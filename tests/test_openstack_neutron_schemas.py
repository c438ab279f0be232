"""Neutron's network, subnet and port bodies checked against neutron-lib's API definitions
(Pike's neutron-lib 1.9.1, in the Tempest venv: conformance/validate_neutron.py): only
attributes of the core resources and of the extensions the cloud lists, every visible core
attribute, values that pass the definitions' validators. And the extension list itself: each
listed extension is shown by GET /v2.0/extensions/{alias}; an unknown one is 404.
"""
import json
import subprocess

import pytest
import requests

from lab.openstack.neutron.extensions import TABLE
from tests.support.tempest_schemas import tempest_python


def _neutron_lib_python():
    python = tempest_python()
    r = subprocess.run([str(python), "-c", "import neutron_lib"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("no neutron-lib in the Tempest venv: `make tempest-venv` installs it")
    return python


@pytest.mark.parametrize("cloud", ["pike", "mitaka"])
def test_neutron_bodies_match_neutron_lib_definitions(ost, cloud):
    python = _neutron_lib_python()
    base = ost.endpoint(cloud, "network").rstrip("/") + "/v2.0"
    items = []
    listed = None
    for admin in (False, True):
        token, _ = ost.token(cloud, admin)
        h = {"X-Auth-Token": token}
        listed = requests.get(f"{base}/extensions", headers=h, timeout=10).json()["extensions"]
        for coll in ("networks", "subnets", "ports"):
            body = requests.get(f"{base}/{coll}", headers=h, timeout=10).json()
            for obj in body[coll]:
                items.append({"label": f"{cloud} {'admin' if admin else 'user'} {coll} "
                                       f"{obj['id']}", "collection": coll, "body": obj})
                one = requests.get(f"{base}/{coll}/{obj['id']}", headers=h, timeout=10)
                assert one.status_code == 200
                assert one.json()[coll[:-1]] == obj
    assert {c for c in ("networks", "subnets") if any(i["collection"] == c for i in items)} \
        == {"networks", "subnets"}
    aliases = [e["alias"] for e in listed]
    doc = {"extensions": {a: {c: list(v) for c, v in TABLE[a][3].items()} for a in aliases},
           "items": items}
    r = subprocess.run([str(python), "conformance/validate_neutron.py"], input=json.dumps(doc),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    refused = json.loads(r.stdout)
    assert not refused, "\n".join(f"{x['label']}: {x['error']}" for x in refused)


def test_extension_list_and_show(ost):
    base = ost.endpoint("pike", "network").rstrip("/") + "/v2.0"
    h = {"X-Auth-Token": ost.token("pike")[0]}
    listed = requests.get(f"{base}/extensions", headers=h, timeout=10).json()["extensions"]
    assert {"external-net", "project-id", "standard-attr-timestamp"} <= \
        {e["alias"] for e in listed}
    for ext in listed:
        assert sorted(ext) == ["alias", "description", "links", "name", "updated"]
        shown = requests.get(f"{base}/extensions/{ext['alias']}", headers=h, timeout=10)
        assert shown.json() == {"extension": ext}
    r = requests.get(f"{base}/extensions/router", headers=h, timeout=10)
    assert r.status_code == 404 and "NeutronError" in r.json()
