"""Behaviour that changes with the microversion (issue 8, item 4): for each change in Cinder's
and Nova's REST API version histories (cinder/api/openstack/rest_api_version_history.rst,
nova/api/openstack/compute/rest_api_version_history.rst) that the lab models, the request
just below the threshold behaves the old way and the request at it the new way, on every
profile whose maximum reaches it; a profile below it answers 406 for that version."""
import pytest
import requests

from tests.support.openstack import unique_name

# Cinder max per profile (reference openstack-api §0); a threshold is tested where reachable.
CINDER_MAX = {"mitaka": (3, 0), "newton": (3, 15), "pike": (3, 43)}
NOVA_MAX = {"mitaka": (2, 25), "newton": (2, 38), "pike": (2, 53)}
CLOUDS = ["pike", "newton", "mitaka"]


def _below(version: str) -> str:
    major, minor = map(int, version.split("."))
    return f"{major}.{minor - 1}"


def _reachable(cloud: str, version: str, table: dict) -> bool:
    return tuple(map(int, version.split("."))) <= table[cloud]


def _need(cloud: str, version: str, table=CINDER_MAX):
    if not _reachable(cloud, version, table):
        pytest.skip(f"{cloud}'s maximum {table[cloud]} is below {version}: covered by "
                    "test_cinder_version_above_max_is_406")


@pytest.fixture
def volume(cc, request):
    cloud = request.node.callspec.params["cloud"]
    if cloud not in cc.ost.section["clouds"]:
        pytest.skip(f"the target has no {cloud} cloud")
    return cc.volume(cloud, size=1, metadata={"mv": "yes"})


# (threshold, what, check(cc, cloud, volume, version) -> the observed behaviour value)
def _volume_key(key, admin=False):
    def check(cc, cloud, vol, version):
        body = cc.raw(cloud, "GET", f"/volumes/{vol.id}", admin=admin, version=version).json()
        return key in body["volume"]
    return check


def _status(method, path, admin=False):
    def check(cc, cloud, vol, version):
        return cc.raw(cloud, method, path, admin=admin, version=version).status_code != 404
    return check


def _services_cluster(cc, cloud, vol, version):
    services = cc.raw(cloud, "GET", "/os-services", admin=True, version=version).json()
    return all("cluster" in s for s in services["services"])


def _summary_metadata(cc, cloud, vol, version):
    return "metadata" in cc.raw(cloud, "GET", "/volumes/summary",
                                version=version).json()["volume-summary"]


def _like_filter(cc, cloud, vol, version):
    cc.volume(cloud, wait=False, size=1)         # another name, so ignoring name~ shows
    part = vol.name[len("vancouver-test-"):]
    vols = cc.raw(cloud, "GET", f"/volumes?name~={part}", version=version).json()["volumes"]
    return [v["id"] for v in vols] == [vol.id]   # below 3.34 name~ is ignored: all volumes


def _group_filter(cc, cloud, vol, version):
    vols = cc.raw(cloud, "GET", "/volumes?group_id=x", version=version).json()["volumes"]
    return not vols                              # below 3.10 group_id is ignored


def _snapshot_user_id(cc, cloud, vol, version):
    r = cc.raw(cloud, "POST", "/snapshots", version=version,
               json={"snapshot": {"volume_id": vol.id, "name": unique_name("mv")}})
    assert r.status_code == 202, r.text
    snap = r.json()["snapshot"]
    cc.raw(cloud, "DELETE", f"/snapshots/{snap['id']}")
    return "user_id" in snap


def _limits_of_other_project(cc, cloud, vol, version):
    """An admin asks for the tenant project's limits: honoured from 3.39 (the answer is the
    tenant's own view), ignored below (the admin's own)."""
    def used(admin, query=""):
        return cc.raw(cloud, "GET", f"/limits{query}", admin=admin,
                      version=version).json()["limits"]["absolute"]["totalVolumesUsed"]
    while used(False) == used(True):   # make the two projects' counts differ
        cc.volume(cloud, wait=False, size=1)
    tenant = cc.conn(cloud).current_project_id
    return used(True, f"?project_id={tenant}") == used(False)


CINDER_CHANGES = [
    ("3.7", "services carry `cluster`", _services_cluster),
    ("3.10", "volume list filters on group_id", _group_filter),
    ("3.12", "GET /volumes/summary exists", _status("GET", "/volumes/summary")),
    ("3.13", "volumes carry `group_id`", _volume_key("group_id")),
    ("3.21", "admins see `provider_id`", _volume_key("provider_id", admin=True)),
    ("3.27", "the attachments API exists", _status("GET", "/attachments")),
    ("3.34", "volume list `name~` like filter", _like_filter),
    ("3.36", "volume summary carries `metadata`", _summary_metadata),
    ("3.39", "admin limits of another project", _limits_of_other_project),
    ("3.41", "snapshots carry `user_id`", _snapshot_user_id),
]


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("threshold,what,check", CINDER_CHANGES,
                         ids=[c[0] for c in CINDER_CHANGES])
def test_cinder_change_follows_request_microversion(cc, cloud, volume, threshold, what, check):
    _need(cloud, threshold)
    assert not check(cc, cloud, volume, _below(threshold)), f"{what}: already at " \
                                                             f"{_below(threshold)}"
    assert check(cc, cloud, volume, threshold), f"{what}: not at {threshold}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_cinder_version_above_max_is_406(cc, cloud):
    if cloud not in cc.ost.section["clouds"]:
        pytest.skip(f"the target has no {cloud} cloud")
    major, minor = CINDER_MAX[cloud]
    ok = cc.raw(cloud, "GET", "/volumes", version=f"{major}.{minor}")
    assert ok.status_code == 200
    assert ok.headers["OpenStack-API-Version"] == f"volume {major}.{minor}"
    too_new = cc.raw(cloud, "GET", "/volumes", version=f"{major}.{minor + 1}")
    assert too_new.status_code == 406, too_new.text


# ---- Nova ------------------------------------------------------------------------------

def _nova(ost, cloud: str, path: str, version: str, admin=True) -> requests.Response:
    conn = ost.connect(cloud, admin=admin)
    headers = {"X-Auth-Token": conn.session.get_token(),
               "X-OpenStack-Nova-API-Version": version,
               "OpenStack-API-Version": f"compute {version}"}
    return requests.get(conn.compute.get_endpoint().rstrip("/") + path, headers=headers,
                        timeout=30)


def _hypervisor_uuid(ost, cloud, version):
    hyp = _nova(ost, cloud, "/os-hypervisors", version).json()["hypervisors"][0]
    return isinstance(hyp["id"], str)


def _quota_network_keys_gone(ost, cloud, version):
    project = ost.connect(cloud).current_project_id
    quota = _nova(ost, cloud, f"/os-quota-sets/{project}", version).json()["quota_set"]
    return "floating_ips" not in quota


def _limits_network_keys_gone(ost, cloud, version):
    return "maxTotalFloatingIps" not in _nova(ost, cloud, "/limits",
                                              version).json()["limits"]["absolute"]


NOVA_CHANGES = [
    ("2.36", "quota sets drop the network quotas", _quota_network_keys_gone),
    ("2.36", "limits drop the network limits", _limits_network_keys_gone),
    ("2.53", "hypervisor ids are UUIDs", _hypervisor_uuid),
]


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("threshold,what,check", NOVA_CHANGES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(NOVA_CHANGES)])
def test_nova_change_follows_request_microversion(ost, cloud, threshold, what, check):
    ost.cloud(cloud)
    _need(cloud, threshold, NOVA_MAX)
    assert not check(ost, cloud, _below(threshold)), f"{what}: already at {_below(threshold)}"
    assert check(ost, cloud, threshold), f"{what}: not at {threshold}"
