"""Route records: a route table is a list of these, registered on aiohttp's own router.

A record is data (method, aiohttp path template with `{name}` / `{name:regex}` parameters,
handler, public flag); each API subclasses it to add its own metadata (OpenStack: the
microversion bounds; Datera: what GET /api says about the route). The same list is what the
router serves and what documents are generated from, so a route exists in one place.
"""
from dataclasses import dataclass, field
from typing import Callable, Iterable

from aiohttp import web

from .request import REQUEST_ROUTE


@dataclass(frozen=True)
class Route:
    """method: "GET", "POST", ...; path: "/v3/{project_id}/volumes/{volume_id}/action";
    handler: called by the API's endpoint adapter (its signature is the API's business);
    public: served without a credential (discovery, login)."""
    method: str
    path: str
    handler: Callable
    public: bool = field(default=False, kw_only=True)


# aiohttp route object -> our record; created by app.build_app, filled by register(), read
# by route_of().
ROUTES_KEY = web.AppKey("lab.http.routes", dict)


def register(app: web.Application, routes: Iterable[Route], endpoint: Callable, *,
             prefix: str = "", head_from_get: bool = False) -> None:
    """Adds every record to app.router under `prefix`, in table order (aiohttp tries the
    longest literal prefix first, then registration order: "/volumes/detail" before
    "/volumes/{id}" as the tables declare). `endpoint(route)` returns the aiohttp handler of
    one record. head_from_get: HEAD answers like GET where the table has no HEAD of its own
    (aiohttp drops the body), as the OpenStack services do."""
    by_route = app[ROUTES_KEY]
    routes = list(routes)
    heads = {r.path for r in routes if r.method == "HEAD"}
    resources: dict[str, web.Resource] = {}
    for record in routes:
        path = prefix + record.path
        resource = resources.get(path)
        if resource is None:   # one aiohttp resource per path, its methods as routes
            resource = resources[path] = app.router.add_resource(path)
        handler = endpoint(record)
        by_route[resource.add_route(record.method, handler)] = record
        if head_from_get and record.method == "GET" and record.path not in heads:
            by_route[resource.add_route("HEAD", handler)] = record


def route_of(request: web.Request) -> Route | None:
    """The record the router matched for this request, or None (no match: 404/405)."""
    record = request.get(REQUEST_ROUTE)
    if record is None:
        record = request.config_dict[ROUTES_KEY].get(request.match_info.route)
    return record
