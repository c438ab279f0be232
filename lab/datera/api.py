"""The Datera REST API's wire protocol on the lab's HTTP core (lab/http).

Per reference datera-api §1: the route table (urls.ROUTES) is served under /v2, /v2.1, /v2.2
and /v2.3 (GET /api_versions outside them); PUT /login opens a session named by the Auth-Token
header, the tenant header scopes a request (v2.1+); answers are envelopes {data, tenant, path,
version[, metadata]} with filter/sort and paging (v2.2+); errors, 404 and 405 included, are
always a JSON object with name, http, code and message.

Middlewares, outermost first: the core's errors (render_error below), the store's
write-through (persist: models/durable.py), the body parser (400
for a malformed body, before the session check as the real API answers), the session check,
the envelope. The endpoint builds the responses.Rq and calls the handler.
"""
import json
import logging
import re
import time
from urllib.parse import parse_qsl

from aiohttp import web

import lab.http as core

from .models import ApiFailure, AuthFailed, InvalidRequest, MethodNotAllowed, NotFound
from .models.errors import CODE_UNKNOWN_VERSION
from .responses import Listing, Raw, Rq, Services

log = logging.getLogger("lab.datera.api")

API_VERSIONS = ("v2", "v2.1", "v2.2", "v2.3")
DEFAULT_PAGE = 100
MAX_PAGE = 1000
# request[...] keys the middlewares fill.
BODY = web.RequestKey("dt.body", dict)
RAW = web.RequestKey("dt.raw", bytes)
CALLER = web.RequestKey("dt.caller", object)
TENANT = web.RequestKey("dt.tenant", str)
RQ = web.RequestKey("dt.rq", Rq)
_VERSION_RE = re.compile(r"v\d+(\.\d+)?")


class UnknownVersion(NotFound):
    def __init__(self, version: str):
        super().__init__(f"/{version}")
        self.code = CODE_UNKNOWN_VERSION
        self.message = f"No data at /{version}: API versions are {', '.join(API_VERSIONS)}"


def split(raw_path: str) -> tuple[str | None, str]:
    """'/v2.2//tenants//root/x' -> ('v2.2', '/tenants/root/x'); '//' is tolerated."""
    parts = [p for p in raw_path.split("/") if p]
    if not parts:
        return None, "/"
    if _VERSION_RE.fullmatch(parts[0]):
        return parts[0], "/" + "/".join(parts[1:])
    return None, "/" + "/".join(parts)


def _error_body(e: ApiFailure, rq_path: str, version: str, tenant: str) -> dict:
    message = e.message
    if isinstance(e, NotFound) and e.path is None:
        message = f"No data at {rq_path}"
    return {"name": e.name, "http": e.http, "code": e.code, "message": message,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "version": version,
            "path": rq_path, "tenant": tenant, "errors": []}


def _json(body, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def render_error(request: web.Request, e: BaseException) -> web.Response:
    """Any failure as the DSP's error object: the router's 404/405 (an unknown version prefix
    is its own 404), the model's ApiFailures, and 500 for a bug in the lab."""
    version, path = split(request.rel_url.raw_path)
    if isinstance(e, (web.HTTPNotFound, web.HTTPMethodNotAllowed)):
        if version is not None and version not in API_VERSIONS:
            e = UnknownVersion(version)
        elif isinstance(e, web.HTTPMethodNotAllowed) and version is not None:
            e = MethodNotAllowed(f"{request.method} is not allowed on {path}; allowed: "
                                 f"{', '.join(sorted(e.allowed_methods))}")
        else:
            e = NotFound()
    elif isinstance(e, core.InjectedFault):   # the chaos switch (lab/http/chaos.py)
        e = _injected(e)
    elif isinstance(e, web.HTTPClientError):   # the HTTP layer's own 4xx (413: body too large)
        failure = InvalidRequest(core.client_error_message(request, e))
        failure.http = e.status
        e = failure
    elif isinstance(e, ApiFailure):
        if e.http >= 500:
            log.error("%s %s: %s", request.method, path, e.message)
    else:
        log.exception("%s %s failed", request.method, path, exc_info=e)
        e = ApiFailure("internal error in the lab's Datera API (see the lab's log)")
    tenant = request.get(TENANT) or request.headers.get("tenant") or "/root"
    return _json(_error_body(e, path, version or "", tenant), e.http)


def render_rejected(r: core.Rejected) -> web.Response:
    """A request the HTTP parser refused before routing (lab/http/rejects.py) as the DSP's
    400 error object, like every other bad request it answers."""
    from lab.http import rejects
    why = {rejects.HEADER_TOO_LONG: f"a request header line is longer than {rejects.LIMIT} "
                                    "bytes",
           rejects.BAD_METHOD: f"unknown HTTP method {r.method or '(unreadable)'}",
           rejects.BAD_VERSION: "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 only)",
           rejects.BAD_CHUNKED: "malformed chunked transfer encoding in the request body",
           rejects.BAD_PATH: "the request path has bytes outside visible ASCII",
           }.get(r.kind, "malformed HTTP request line or header")
    return _json(_error_body(InvalidRequest(f"Bad request: {why}"), "", "", "/root"), 400)


def _injected(fault) -> ApiFailure:
    """The chaos switch's 5xx as the DSP's error object (name per status; code: internal)."""
    e = ApiFailure(fault.message)
    e.http = fault.status
    e.name = {503: "ServiceUnavailableError", 504: "TimeoutError"}.get(fault.status,
                                                                       "InternalError")
    return e


def _parse_body(raw: bytes, content_type: str, method: str) -> dict:
    if method in ("GET", "HEAD") or not raw.strip():
        return {}   # GET bodies are ignored (go-sdk sends them)
    # go-sdk logs in with a form body; curl -d labels JSON as a form, so JSON wins when it is JSON.
    if content_type == "application/x-www-form-urlencoded" and not raw.lstrip().startswith(b"{"):
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise InvalidRequest("request body: not UTF-8 form data") from None
    try:
        body = core.loads(raw)
    except core.BodyError as e:
        raise InvalidRequest(f"request body: malformed JSON ({e})") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body: expected a JSON object")
    return body


def persist(services: Services):
    """Every request that may change state is written to the lab's store before its answer
    leaves (failures too: a refused login records an event). A store that cannot write turns
    the answer into a 500: the API never reports success for a change it could lose."""
    @web.middleware
    async def middleware(request: web.Request, handler):
        durable = services.durable
        if durable is None or request.method in ("GET", "HEAD", "OPTIONS"):
            return await handler(request)
        # Which app instances this write can alter: its own {ai}, none for a create, and any
        # for a write elsewhere (tenants, initiators, groups: an ACL may name them). Comparing
        # only those keeps a write's cost flat however many app instances the lab holds.
        touched = None
        if "ai" in request.match_info:
            touched = durable.app_instances_named(request.match_info["ai"])
        elif split(request.rel_url.raw_path)[1] == "/app_instances":
            touched = []
        try:
            return await handler(request)
        finally:
            durable.sync(touched)
    return middleware


@web.middleware
async def parse_body(request: web.Request, handler):
    raw = request[RAW] = await request.read()
    request[BODY] = _parse_body(raw, request.content_type, request.method)
    return await handler(request)


def authenticate(model):
    """The session check: Auth-Token -> the caller (401 AuthFailed when missing or stale),
    scoped by the tenant header from v2.1 on."""
    @web.middleware
    async def middleware(request: web.Request, handler):
        if not core.route_of(request).public:
            token = request.headers.get("Auth-Token")
            if not token:
                raise AuthFailed("No Auth-Token header: log in with PUT /login first")
            version = request.rel_url.raw_path.split("/", 2)[1]
            caller = model.caller(token, None if version == "v2" else
                                  request.headers.get("tenant"))
            request[CALLER] = caller
            request[TENANT] = caller.tenant
        return await handler(request)
    return middleware


@web.middleware
async def envelope(request: web.Request, handler):
    """The handler's data in the envelope of the request's version (Raw answers as they are)."""
    result = await handler(request)
    if isinstance(result, web.StreamResponse):
        return result
    return _json(_envelope(request[RQ], result))


def endpoint(services: Services):
    def make(route):
        async def handle(request: web.Request):
            version, path = split(request.rel_url.raw_path)
            rq = request[RQ] = Rq(
                model=services.model, metrics=services.metrics, services=services,
                method=request.method, version=version, path=path,
                params=dict(request.match_info), query=dict(request.query),
                headers=request.headers, body=request[BODY], raw_body=request[RAW],
                content_type=request.content_type, caller=request.get(CALLER))
            result = route.handler(rq)
            if hasattr(result, "__await__"):
                result = await result
            return result
        return handle
    return make


def build_app(services: Services, unversioned=()) -> web.Application:
    """The API: services.routes under every version prefix, `unversioned` routes outside."""
    app = core.build_app(render_error=render_error,
                         middlewares=[persist(services), parse_body,
                                      authenticate(services.model), envelope],
                         client_max_size=4 << 20, service="datera")
    make = endpoint(services)
    core.register(app, unversioned, make)
    for version in API_VERSIONS:
        core.register(app, services.routes, make, prefix=f"/{version}")
    return app


def _envelope(rq: Rq, result):
    if isinstance(result, Raw):
        return dict(result)
    metadata = None
    if isinstance(result, Listing):
        result, metadata = _page(rq, list(result))
    if rq.version == "v2":
        return result if isinstance(result, dict) else {"data": result}
    out = {"data": result, "tenant": rq.caller.tenant if rq.caller else "/root",
           "path": rq.path, "version": rq.version}
    if metadata is not None:
        out["metadata"] = metadata
    return out


# ---- lists: filter, sort, paging -------------------------------------------------------------

FILTER_RE = re.compile(r"^match\(([A-Za-z_][A-Za-z0-9_.]*),(.*)\)$", re.S)


def _field(item: dict, dotted: str):
    for part in dotted.split("."):
        item = item.get(part) if isinstance(item, dict) else None
    return item


def _page(rq: Rq, items: list):
    q = rq.query
    if q.get("filter"):
        m = FILTER_RE.match(q["filter"])
        if not m:
            raise InvalidRequest("filter: expected match(<field>,<regex>)")
        try:
            rx = re.compile(m.group(2))
        except re.error as e:
            raise InvalidRequest(f"filter: bad regular expression ({e})") from None
        items = [i for i in items if rx.search("" if _field(i, m.group(1)) is None
                                               else str(_field(i, m.group(1))))]
    if q.get("sort"):
        key = q["sort"].lstrip("-")
        items.sort(key=lambda i: (str(_field(i, key)) if _field(i, key) is not None else ""),
                   reverse=q["sort"].startswith("-"))
    total = len(items)
    if rq.version in ("v2", "v2.1"):
        if q.get("limit"):
            items = items[:_int_param(q, "limit", 1, MAX_PAGE)]
        return items, {"total": total}
    limit = _int_param(q, "limit", 1, MAX_PAGE) if q.get("limit") else DEFAULT_PAGE
    offset = _int_param(q, "offset", 0, 1 << 31) if q.get("offset") else 0
    page = items[offset:offset + limit]
    return page, {"total_count": total, "request_count": len(page), "offset": offset,
                  "limit": limit}


def _int_param(q: dict, name: str, lo: int, hi: int) -> int:
    try:
        value = int(q[name])
    except ValueError:
        raise InvalidRequest(f"{name}: expected an integer, got {q[name]!r}") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"{name}: expected {lo}..{hi}, got {value}")
    return value


