"""The lab's APIs as the fuzzer sees them (tests/support/fuzz.Api), each served in process on a
loop thread (tests/support/nbd.LoopThread, uvloop as the lab runs), with the objects a fuzzed
request may name (a tenant with an app instance, storage instance, volume, policy and snapshot;
a cloud's tenant project with a volume, a type, an image, a port).

Routes are read from the lab's own tables: lab.datera.urls (under every version prefix, and
/api_versions) and each OpenStack service's routes() (HEAD where GET is, as register() adds it).
"""
import json
import uuid

from lab.datera import api as datera_wire
from lab.datera import responses, server, urls
from lab.datera.ldapauth import Directory
from lab.datera.metrics import Metrics
from lab.datera.models import DateraModel, ModelConfig
from lab.openstack import rejects as os_rejects
from lab.openstack import server as os_server
from lab.openstack.cloud import Cloud
from lab.openstack.config import CloudConfig
from tests.support.fuzz import SHAPES, Api, Served, send
from tests.support.nbd import LoopThread

__all__ = ["LoopThread", "datera_api", "openstack_apis"]

ADMIN, PASSWORD = "admin", "fuzz-admin-pw-1"
JSON = [(b"Content-Type", b"application/json")]


def _call(port, method, path, body=None, headers=()):
    ans = send(port, method, path.encode(), JSON + list(headers),
               json.dumps(body).encode() if body is not None else b"")
    assert 200 <= ans.status < 300, f"{method} {path}: {ans.status} {ans.body[:300]!r}"
    return ans.json() if ans.body else None


def datera_api(lt: LoopThread, tmp) -> tuple[Api, Served]:
    model = DateraModel(ModelConfig(vips=["127.0.0.11", "127.0.0.12"], mgmt_ip="127.0.0.10",
                                    admin_user=ADMIN, admin_password=PASSWORD))
    services = responses.Services(model=model, metrics=Metrics(), directory=Directory({}),
                                  cpu=server.CpuSampler(), routes=urls.ROUTES)
    served = Served(lt)
    port = served.serve(server.build_app(services), datera_wire.render_rejected)
    key = _call(port, "PUT", "/v2.2/login", {"name": ADMIN, "password": PASSWORD})["key"]
    auth = [(b"Auth-Token", key.encode())]
    _call(port, "POST", "/v2.2/tenants", {"name": "fuzz"}, auth + [(b"tenant", b"/root")])
    auth.append((b"tenant", b"/root/fuzz"))
    ai = _call(port, "POST", "/v2.2/app_instances", {
        "name": "fuzz-ai", "storage_instances": [
            {"name": "storage-1", "volumes": [{"name": "volume-1", "size": 1,
                                               "replica_count": 1}]}]}, auth)["data"]
    si = ai["storage_instances"][0]
    vol = si["volumes"][0]
    vol_path = f"/v2.2/app_instances/{ai['id']}/storage_instances/{si['name']}/volumes/" \
               f"{vol['name']}"
    _call(port, "POST", vol_path + "/performance_policy", {"total_iops_max": 500}, auth)
    snap = _call(port, "POST", vol_path + "/snapshots", {"uuid": str(uuid.uuid4())}, auth)["data"]
    iqn = "iqn.1993-08.org.debian:01:fuzz"
    _call(port, "POST", "/v2.2/initiators", {"id": iqn, "name": "fuzz-host"}, auth)
    _call(port, "POST", "/v2.2/initiator_groups", {"name": "fuzz-group"}, auth)
    known = {"ai": ai["id"], "si": si["name"], "vol": vol["name"], "ts": snap["timestamp"],
             "iqn": iqn, "group": "fuzz-group", "pool": "default", "tenant_path": "root/fuzz",
             "metric": "iops_read", "user": ADMIN, "role": "admin", "node": "x",
             "event": "x"}
    routes = [(r.method, "" + r.path, r.public, r.body) for r in urls.UNVERSIONED]
    for version in datera_wire.API_VERSIONS:
        routes += [(r.method, f"/{version}{r.path}", r.public, r.body) for r in urls.ROUTES]
    api = Api("datera", port, routes, auth, {k: v.encode() for k, v in known.items()},
              SHAPES["datera"], ("GET", b"/v2.2/system", auth),
              tenant_header=b"tenant", body_methods=("POST", "PUT", "PATCH", "DELETE"))
    return api, served


# Where the real services take any id (see fuzz.Api.any_id): regexes over route templates.
# Nova's and Cinder's quota sets (to an admin; defaults to anyone) and Neutron's quotas answer
# for any project id (Mitaka's services do not ask Keystone whether it exists); Keystone's
# PUT /v3/regions/{id} creates that region.
ANY_ID = (("GET", r".*/os-quota-sets/\{[a-z_]+\}(/defaults|/detail)?"),
          ("PUT", r"/v3/regions/\{region_id\}"),
          ("GET", r"/v2\.0/quotas/\{project\}"), ("PUT", r"/v2\.0/quotas/\{project\}"))


def openstack_apis(lt: LoopThread, tmp, release: str) -> tuple[dict, Served]:
    """{service name: Api} for one cloud of `release` with the tenant's token."""
    config = CloudConfig.model_validate({
        "cloud": release, "release": release, "address": "127.0.0.1", "data_dir": str(tmp),
        "admin": {"user": "admin", "password": "pw-admin-1", "project": "admin"},
        "tenant": {"user": "tenant", "password": "pw-tenant-1", "project": "Vancouver-FZ"},
        "services": {"cinder": {"ceph": {"address": "127.0.0.1"}}}})
    cloud = lt.run(_make_cloud(config))
    served = Served(lt)
    ports = {name: served.serve(os_server.build_app(cloud, svc), os_rejects.answer(svc))
             for name, svc in cloud.services.items()}
    token, project = _token(ports["keystone"], "tenant", "pw-tenant-1", "Vancouver-FZ")
    admin_token, admin_project = _token(ports["keystone"], "admin", "pw-admin-1", "admin")
    auth = [(b"X-Auth-Token", token)]
    admin = ([(b"X-Auth-Token", admin_token)],
             {k: admin_project.encode() for k in ("project_id", "pid", "project")})
    vol = _call(ports["cinder"], "POST", f"/v3/{project}/volumes",
                {"volume": {"size": 1, "name": "fuzz-vol"}}, auth)["volume"]
    image = _call(ports["glance"], "POST", "/v2/images",
                  {"name": "fuzz-image", "disk_format": "raw", "container_format": "bare"},
                  auth)
    known = {"project_id": project, "volume_id": vol["id"], "image_id": image["id"],
             "pid": project, "project": project}
    apis = {}
    for name, svc in cloud.services.items():
        routes = []
        for r in svc.routes():
            routes.append((r.method, r.path, r.public, None))
            if r.method == "GET" and not any(o.method == "HEAD" and o.path == r.path
                                              for o in svc.routes()):
                routes.append(("HEAD", r.path, r.public, None))
        spec = svc.microversions
        versions = ()
        if spec is not None:
            versions = (b"OpenStack-API-Version",) + (
                (spec.legacy_header.encode(),) if spec.legacy_header else ())
        health = {"keystone": ("GET", b"/v3/auth/tokens", auth + [(b"X-Subject-Token", token)]),
                  "cinder": ("GET", f"/v3/{project}/volumes".encode(), auth),
                  "nova": ("GET", b"/v2.1/flavors", auth),
                  "glance": ("GET", b"/v2/images", auth),
                  "neutron": ("GET", b"/v2.0/networks", auth)}[name]
        apis[name] = Api(name, ports[name], routes, auth,
                         {k: v.encode() for k, v in known.items()}, SHAPES[name], health,
                         version_headers=versions, any_id=ANY_ID, alt=[admin])
    return apis, served


def _token(port: int, user: str, password: str, project: str) -> tuple[bytes, str]:
    """(token, project id) of a password login scoped to `project`."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
    ans = send(port, "POST", b"/v3/auth/tokens", JSON, json.dumps(body).encode())
    assert ans.status == 201, ans.body
    return ans.headers["X-Subject-Token"].encode(), ans.json()["token"]["project"]["id"]


async def _make_cloud(config: CloudConfig) -> Cloud:
    cloud = Cloud(config)
    cloud.load_services()
    return cloud
