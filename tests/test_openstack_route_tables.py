"""The OpenStack services' route tables (lab/openstack/*/urls.py), registered on aiohttp's router
as the lab serves them: every route is reached by its own path, so no literal segment
("detail", "summary", "import_record") is shadowed by a `{id}` declared before it; and
api.collection_routes gives the shape every OpenStack collection shares, with the handler
names and microversion bounds of the APIs (Cinder v3's volumes, Keystone v3's PATCH updates).
"""
import asyncio
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from lab.http.routes import ROUTES_KEY, register
from lab.openstack import api
from lab.openstack.cinder import urls as cinder_urls
from lab.openstack.cinder.responses import volumes
from lab.openstack.glance import urls as glance_urls
from lab.openstack.keystone import urls as keystone_urls
from lab.openstack.neutron import urls as neutron_urls
from lab.openstack.nova import urls as nova_urls

TABLES = {"cinder": cinder_urls.ROUTES, "glance": glance_urls.ROUTES,
          "keystone": keystone_urls.ROUTES, "neutron": neutron_urls.ROUTES,
          "nova": nova_urls.ROUTES}
VARIABLE = re.compile(r"\{[^}]+\}")


def _resolved(routes) -> list[tuple[api.Route, api.Route | None]]:
    """(route, the record aiohttp's router picks for the route's own path and method)."""
    app = web.Application()
    app[ROUTES_KEY] = {}

    async def handler(request):
        return web.Response()
    register(app, routes, lambda record: handler)

    async def resolve_all():
        out = []
        for record in routes:
            path = VARIABLE.sub("x1", record.path)     # a value no literal segment has
            match = await app.router.resolve(make_mocked_request(record.method, path, app=app))
            out.append((record, app[ROUTES_KEY].get(match.route)))
        return out
    return asyncio.run(resolve_all())


@pytest.mark.parametrize("service", sorted(TABLES))
def test_every_route_is_reached_by_its_own_path(service):
    wrong = [(r.method, r.path, got.path if got else None)
             for r, got in _resolved(TABLES[service])
             if got is None or (got.method, got.path) != (r.method, r.path)]
    assert not wrong, f"{service}: routes shadowed by another (method, path, matched): {wrong}"


def test_collection_routes_shape_names_and_bounds():
    routes = api.collection_routes("/v3/{project_id}/volumes", "{volume_id}", volumes, "volume",
                                   ops=api.COLLECTION_OPS, min_version="3.1",
                                   min_versions={"update": "3.9"})
    got = [(r.method, r.path, r.handler.__name__, r.min_version) for r in routes]
    one = "/v3/{project_id}/volumes/{volume_id}"
    assert got == [
        ("GET", "/v3/{project_id}/volumes", "list_volumes", "3.1"),
        ("GET", "/v3/{project_id}/volumes/detail", "list_volumes_detail", "3.1"),
        ("POST", "/v3/{project_id}/volumes", "create_volume", "3.1"),
        ("GET", one, "show_volume", "3.1"),
        ("PUT", one, "update_volume", "3.9"),
        ("DELETE", one, "delete_volume", "3.1"),
    ]
    keystone = {(r.method, r.path): r.handler.__name__ for r in keystone_urls.ROUTES}
    assert keystone[("PATCH", "/v3/projects/{pid}")] == "update_project"
    assert keystone[("GET", "/v3/projects/{pid}")] == "get_project"
    assert ("PUT", "/v3/projects/{pid}") not in keystone


def test_collection_routes_refuses_an_unknown_op_or_handler():
    with pytest.raises(ValueError, match=r"unknown ops \['show'\]"):
        api.collection_routes("/v3/x", "{id}", volumes, "volume", ops=("list", "show"))
    with pytest.raises(AttributeError, match="list_widgets"):
        api.collection_routes("/v3/x", "{id}", volumes, "widget")
