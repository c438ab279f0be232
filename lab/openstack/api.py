"""What a service's urls.py and responses.py see: route records, the request, the reply.

Route(method, path, handler, public=False, min_version=None, max_version=None, stream=False):
paths are aiohttp templates ("/v3/{project_id}/volumes/{volume_id}/action"); "/v3" and "/v3/"
match the same route. `public` routes are served without a token (version discovery must be:
keystoneauth fetches it unauthenticated). A route outside [min_version, max_version] of the
negotiated microversion answers 404 as Cinder's VersionNotFoundForAPIMethod does.
`stream=True` leaves the body unread (rq.http is the aiohttp request to read it from: Glance
uploads).

Handlers: `def handler(rq: Rq) -> Reply` (or async). Raise errors.NotFound(...) etc.; the
server renders them in the service's error style. Helpers: rq.json(), rq.require_admin(),
rq.base_url (scheme://host:port as the client addressed us: discovery links must use it),
rq.profile (the ReleaseProfile: every per-release switch and the version documents) and
paginate() for marker/limit lists.
"""
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

import lab.http as core
from lab.http import Route as HttpRoute

from . import errors
from .cloud import AuthContext, Cloud, Service
from .microversion import Microversion
from .releases import ReleaseProfile


@dataclass(frozen=True)
class Route(HttpRoute):
    """One OpenStack route: the core's record plus the microversion bounds it is served in."""
    min_version: str | None = None
    max_version: str | None = None
    stream: bool = False

    def bounds(self) -> tuple[Microversion | None, Microversion | None]:
        """(min, max) microversions this route is served in; None where unbounded."""
        return (Microversion.parse(self.min_version) if self.min_version else None,
                Microversion.parse(self.max_version) if self.max_version else None)



# The member operations of an OpenStack collection, in the order its routes are declared: the
# literal `detail` before the `{id}` variable, so "detail" is never read as an id.
COLLECTION_OPS = ("list", "detail", "create", "read", "update", "delete")


def collection_routes(base: str, member: str, handlers, noun: str, *, plural: str | None = None,
                      ops: tuple[str, ...] = ("list", "create", "read", "update", "delete"),
                      read: str = "show", update: str = "PUT", min_version: str | None = None,
                      min_versions: dict[str, str] | None = None) -> list[Route]:
    """The routes of collection `base` and its members `base/<member>` ("{volume_id}"), in the
    shape every OpenStack API shares, for the `ops` given (a subset of COLLECTION_OPS):
        list    GET base                     handlers.list_<plural>
        detail  GET base/detail              handlers.list_<plural>_detail
        create  POST base                    handlers.create_<noun>
        read    GET base/<member>            handlers.<read>_<noun>   (Cinder "show", others "get")
        update  <update> base/<member>       handlers.update_<noun>   (PUT, or PATCH: Keystone, Glance)
        delete  DELETE base/<member>         handlers.delete_<noun>
    `plural` defaults to noun + "s"; `min_version` bounds every route, `min_versions` one op.
    A handler missing from `handlers` is an AttributeError at import: a typo never serves 404."""
    plural = plural or noun + "s"
    one = f"{base}/{member}"
    table = {"list": ("GET", base, f"list_{plural}"),
             "detail": ("GET", base + "/detail", f"list_{plural}_detail"),
             "create": ("POST", base, f"create_{noun}"),
             "read": ("GET", one, f"{read}_{noun}"),
             "update": (update, one, f"update_{noun}"),
             "delete": ("DELETE", one, f"delete_{noun}")}
    unknown = set(ops) - set(COLLECTION_OPS)
    if unknown:
        raise ValueError(f"collection_routes({base}): unknown ops {sorted(unknown)}")
    versions = min_versions or {}
    return [Route(method, path, getattr(handlers, name),
                  min_version=versions.get(op, min_version))
            for op in COLLECTION_OPS if op in ops
            for method, path, name in [table[op]]]

@dataclass
class Rq:
    cloud: Cloud
    service: Service
    http: web.Request
    method: str
    path: str
    params: dict
    query: Any                    # MultiDictProxy: .get(k), .getall(k, [])
    headers: Any                  # case-insensitive
    request_id: str
    base_url: str
    auth: AuthContext | None = None
    version: Microversion | None = None
    raw: bytes = b""

    @property
    def profile(self) -> ReleaseProfile:
        return self.cloud.profile

    @property
    def model(self):
        return self.service.model

    def p(self, name: str) -> str:
        return self.params[name]

    def json(self, *, required: bool = True) -> Any:
        """The body parsed as JSON: 400 when malformed (or, if required, absent)."""
        if not self.raw.strip():
            if required:
                raise errors.BadRequest("Malformed request body: the body is empty")
            return None
        try:
            return core.loads(self.raw)
        except core.BodyError:
            raise errors.BadRequest("Malformed request body") from None

    def json_object(self, key: str | None = None) -> dict:
        """The body as a JSON object, or its `key` member (e.g. "volume"), which must be an
        object: 400 otherwise, naming what is missing."""
        body = self.json()
        if not isinstance(body, dict):
            raise errors.BadRequest("Malformed request body: expected a JSON object")
        if key is None:
            return body
        inner = body.get(key)
        if not isinstance(inner, dict):
            raise errors.BadRequest(f"Missing required element '{key}' in request body.")
        return inner

    def require_admin(self, action: str) -> None:
        if not (self.auth and self.auth.is_admin):
            raise errors.policy_forbids(action)

    def at_least(self, version: str) -> bool:
        """True when the negotiated microversion is >= version."""
        return self.version is not None and self.version >= Microversion.parse(version)


@dataclass
class Reply:
    status: int = 200
    body: Any = None          # dict/list -> JSON; bytes -> as is; None -> empty
    headers: dict = field(default_factory=dict)
    content_type: str | None = None


def ok(body: Any = None) -> Reply:
    return Reply(200, body)


def created(body: Any = None, headers: dict | None = None) -> Reply:
    return Reply(201, body, headers or {})


def accepted(body: Any = None) -> Reply:
    return Reply(202, body)


def no_content(headers: dict | None = None) -> Reply:
    return Reply(204, None, headers or {})


def paginate(items: list, query, *, key: str = "id", default_limit: int = 1000,
             full_page_has_more: bool = False, offset: bool = False):
    """(page, more) for ?limit=&marker= (and ?offset= where the service has it, `offset`:
    Cinder skips that many more items after the marker): the items after the one whose
    `key` is the marker.
    more: items remain after the page; with full_page_has_more, also when the page is full
    (Cinder's and Nova's _get_collection_links: a `next` link whenever len(page) == limit,
    even on the last page). Raises errors.BadRequest for a bad limit or offset and
    LookupError for an unknown marker (each service answers that its own way)."""
    marker = query.get("marker")
    limit = _non_negative(query.get("limit"), "limit", default_limit)
    skip = _non_negative(query.get("offset"), "offset", 0) if offset else 0
    start = 0
    if marker:
        ids = [i[key] if isinstance(i, dict) else getattr(i, key) for i in items]
        if marker not in ids:
            raise LookupError(marker)
        start = ids.index(marker) + 1
    start += skip
    page = items[start:start + limit]
    more = start + limit < len(items) or (full_page_has_more and 0 < limit == len(page))
    return page, more


def _non_negative(text, name: str, default: int) -> int:
    try:
        value = default if text in (None, "") else int(text)
    except ValueError:
        raise errors.BadRequest(f"{name} param must be an integer") from None
    if value < 0:
        raise errors.BadRequest(f"{name} param must be positive")
    return value


def to_response(reply) -> web.StreamResponse:
    """A handler's Reply (or a StreamResponse it prepared itself) as an aiohttp response."""
    if isinstance(reply, web.StreamResponse):
        return reply
    if not isinstance(reply, Reply):
        raise TypeError(f"handler returned {type(reply).__name__}, not Reply")
    if reply.body is None:
        return web.Response(status=reply.status, headers=reply.headers)
    if isinstance(reply.body, (bytes, bytearray)):
        return web.Response(status=reply.status, body=bytes(reply.body), headers=reply.headers,
                            content_type=reply.content_type or "application/octet-stream")
    return web.Response(status=reply.status, text=json.dumps(reply.body), headers=reply.headers,
                        content_type=reply.content_type or "application/json")
