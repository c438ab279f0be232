"""HTTP handlers of the Datera lab: parse the request, call the model, serialize the answer.

Wire protocol per reference datera-api §1: /v2, /v2.1, /v2.2 and /v2.3 prefixes, PUT /login,
Auth-Token and tenant headers, envelopes {data, tenant, path, version[, metadata]}, paging
(v2.2+), filter/sort, and errors that are always a JSON object with name, http, code and
message. Handlers hold no state: everything lives in the model, the metrics, the directory.
"""
import json
import logging
import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from .metrics import IO_METRICS, Metrics
from .models import ApiFailure, AuthFailed, Caller, DateraModel, InvalidRequest, MethodNotAllowed, NotFound
from .models.errors import CODE_UNKNOWN_VERSION

log = logging.getLogger("lab.datera.api")

API_VERSIONS = ("v2", "v2.1", "v2.2", "v2.3")
ADVERTISED_VERSIONS = ["v2", "v2.1", "v2.2"]   # GET /api_versions, as the real DSP answers
DEFAULT_PAGE = 100
MAX_PAGE = 1000
HW_METRICS = ("cpu_usage",)


@dataclass
class Rq:
    """One parsed request, as a handler sees it."""
    model: DateraModel
    metrics: Metrics
    services: "Services"
    method: str
    version: str
    path: str                 # without the version prefix, e.g. /app_instances/x
    params: dict              # from the route pattern
    query: dict
    headers: "CIMultiDictProxy"   # case-insensitive, as HTTP headers are
    body: dict
    raw_body: bytes
    content_type: str
    caller: Caller | None = None

    def p(self, name: str) -> str:
        return self.params[name]


@dataclass
class Services:
    """What the handlers use besides the model: metrics, the directory, hardware samples,
    the route table (for /api). Built once by server.py."""
    model: DateraModel
    metrics: Metrics
    directory: object                    # ldapauth.Directory
    cpu: object                          # server.CpuSampler: .series(since, until), .latest()
    routes: list
    schema: dict = field(default_factory=dict)   # version -> /api document, built lazily


class Listing(list):
    """A handler's collection answer: filtered, sorted and paged by the dispatcher."""


class Raw(dict):
    """A handler's answer sent as is, without the envelope (/login, /api, /api_versions)."""


# ---- the dispatcher ---------------------------------------------------------------------------

def _error_body(e: ApiFailure, rq_path: str, version: str, tenant: str) -> dict:
    message = e.message
    if isinstance(e, NotFound) and e.path is None:
        message = f"No data at {rq_path}"
    return {"name": e.name, "http": e.http, "code": e.code, "message": message,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "version": version,
            "path": rq_path, "tenant": tenant, "errors": []}


class UnknownVersion(NotFound):
    def __init__(self, version: str):
        super().__init__(f"/{version}")
        self.code = CODE_UNKNOWN_VERSION
        self.message = f"No data at /{version}: API versions are {', '.join(API_VERSIONS)}"


def _json(body, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _split(raw_path: str) -> tuple[str | None, str]:
    """'/v2.2//tenants//root/x' -> ('v2.2', '/tenants/root/x'); '//' is tolerated."""
    parts = [p for p in raw_path.split("/") if p]
    if not parts:
        return None, "/"
    if re.fullmatch(r"v\d+(\.\d+)?", parts[0]):
        return parts[0], "/" + "/".join(parts[1:])
    return None, "/" + "/".join(parts)


def match(routes, method: str, path: str):
    """(route, params) for a method and path; raises NotFound or MethodNotAllowed."""
    segs = [unquote(s) for s in path.split("/") if s]
    allowed = []
    for route in routes:
        params = route.match(segs)
        if params is None:
            continue
        if route.method == method:
            return route, params
        allowed.append(route.method)
    if allowed:
        raise MethodNotAllowed(f"{method} is not allowed on {path}; allowed: {', '.join(sorted(set(allowed)))}")
    raise NotFound()


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
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"request body: malformed JSON ({str(e).split(':')[0]})") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body: expected a JSON object")
    return body


def make_handler(services: Services):
    """The one aiohttp handler that serves every path of the API."""
    model = services.model

    async def handle(request: web.Request) -> web.Response:
        version, path = _split(request.raw_path.split("?", 1)[0])
        tenant_header = request.headers.get("tenant")
        shown_tenant = tenant_header or "/root"
        try:
            if version is None:
                if path == "/api_versions" and request.method == "GET":
                    return _json({"api_versions": ADVERTISED_VERSIONS})
                raise NotFound()
            if version not in API_VERSIONS:
                raise UnknownVersion(version)
            route, params = match(services.routes, request.method, path)
            raw = await request.read()
            rq = Rq(model=model, metrics=services.metrics, services=services,
                    method=request.method, version=version, path=path, params=params,
                    query=dict(request.query), headers=request.headers,
                    body=_parse_body(raw, request.content_type, request.method), raw_body=raw,
                    content_type=request.content_type)
            if not route.public:
                token = request.headers.get("Auth-Token")
                if not token:
                    raise AuthFailed("No Auth-Token header: log in with PUT /login first")
                rq.caller = model.caller(token, None if version == "v2" else tenant_header)
                shown_tenant = rq.caller.tenant
            result = route.handler(rq)
            if hasattr(result, "__await__"):
                result = await result
            return _json(_envelope(rq, result))
        except ApiFailure as e:
            if e.http >= 500:
                log.error("%s %s: %s", request.method, path, e.message)
            return _json(_error_body(e, path, version or "", shown_tenant), e.http)
        except Exception:
            log.exception("%s %s failed", request.method, path)
            e = ApiFailure("internal error in the lab's Datera API (see the lab's log)")
            return _json(_error_body(e, path, version or "", shown_tenant), 500)

    return handle


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


# ---- handlers: session, schema, system --------------------------------------------------------

async def login(rq: Rq):
    body = rq.body
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise InvalidRequest("login: name and password are required")
    unknown = set(body) - {"name", "password", "remote_server"}
    if unknown:
        raise InvalidRequest(f"login: unknown field '{sorted(unknown)[0]}'")
    server = body.get("remote_server")
    if server:
        ident = await rq.services.directory.authenticate(server, name, password)
        session = rq.model.login_directory(ident.user_id, tenant_name=ident.tenant,
                                           remote_server=server)
    else:
        session = rq.model.login_local(name, password)
    return Raw(key=session.key, version=rq.version, request_time=int(time.time()))


def logout(rq: Rq):
    key = rq.headers.get("Auth-Token")
    if key:
        rq.model.logout(key)
    return Raw(message="logged out", version=rq.version)


def api_schema(rq: Rq):
    from . import schema
    doc = rq.services.schema.get(rq.version)
    if doc is None:
        doc = rq.services.schema[rq.version] = schema.build(rq.services.routes, rq.version)
    return Raw(doc)


def system(rq: Rq):
    return rq.model.system(rq.caller)


def system_network(rq: Rq):
    return rq.model.system_network(rq.caller)


def system_network_part(part: str):
    def handler(rq: Rq):
        return rq.model.system_network(rq.caller)[part]
    return handler


def userinfo(rq: Rq):
    return rq.model.userinfo(rq.caller)


def list_users(rq: Rq):
    return Listing(rq.model.list_users(rq.caller))


def get_user(rq: Rq):
    return rq.model.get_user(rq.caller, rq.p("user"))


def list_roles(rq: Rq):
    return Listing(rq.model.list_roles(rq.caller))


def get_role(rq: Rq):
    return rq.model.get_role(rq.caller, rq.p("role"))


def list_storage_nodes(rq: Rq):
    return Listing(rq.model.storage_nodes(rq.caller))


def get_storage_node(rq: Rq):
    return rq.model.storage_node(rq.caller, rq.p("node"))


def list_events(kind: str | None):
    def handler(rq: Rq):
        return Listing(rq.model.list_events(rq.caller, kind))
    return handler


def get_event(rq: Rq):
    return rq.model.get_event(rq.caller, rq.p("event"))


def list_alerts(rq: Rq):
    return Listing(rq.model.alerts(rq.caller))


def get_tenant_qos(rq: Rq):
    return rq.model.get_tenant_qos(rq.caller)


def set_tenant_qos(rq: Rq):
    return rq.model.set_tenant_qos(rq.caller, rq.body)


# ---- generic CRUD handlers: one line per model call -----------------------------------------

def _call(fn_name: str, *param_names: str, body: bool = False, listing: bool = False):
    """A handler calling model.<fn_name>(caller, *path params[, body])."""
    def handler(rq: Rq):
        args = [rq.params[n] for n in param_names]
        if body:
            args.append(rq.body)
        result = getattr(rq.model, fn_name)(rq.caller, *args)
        return Listing(result) if listing else result
    handler.__name__ = fn_name
    return handler


def set_metadata(wrapped: bool):
    def handler(rq: Rq):
        return rq.model.set_metadata(rq.caller, rq.p("ai"), rq.body, wrapped=wrapped)
    return handler


def list_acl_links(kind: str):
    def handler(rq: Rq):
        return Listing(rq.model.list_acl_links(rq.caller, rq.p("ai"), rq.p("si"), kind))
    return handler


def link_acl(kind: str):
    def handler(rq: Rq):
        return rq.model.link_acl(rq.caller, rq.p("ai"), rq.p("si"), kind, rq.body)
    return handler


# ---- metrics ---------------------------------------------------------------------------------

DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _time_param(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        from datetime import datetime
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidRequest(f"{name}: expected UNIX seconds or ISO 8601, got {value!r}") from None


def _window(q: dict) -> tuple[float | None, float | None]:
    since = until = None
    if q.get("since"):
        m = DURATION_RE.match(q["since"])
        if not m or not any(m.groups()):
            raise InvalidRequest(f"since: expected a duration like 5m or 1d2h, got {q['since']!r}")
        d, h, mi, s = (int(x or 0) for x in m.groups())
        since = time.time() - (d * 86400 + h * 3600 + mi * 60 + s)
    if q.get("from"):
        since = _time_param(q["from"], "from")
    if q.get("to"):
        until = _time_param(q["to"], "to")
    return since, until


def _io_metric(rq: Rq) -> str:
    metric = rq.p("metric")
    if metric not in IO_METRICS:
        raise NotFound()
    return metric


def io_series(rq: Rq):
    metric = _io_metric(rq)
    scope, entity, tenant = rq.model.metric_scope(rq.caller, uuid=rq.query.get("uuid"),
                                                  path=rq.query.get("path"))
    since, until = _window(rq.query)
    points = rq.metrics.series(metric, scope, since, until)
    return [{"entity_path": entity, "tenant": tenant, "metric": metric, "points": points}]


def io_latest(rq: Rq):
    metric = _io_metric(rq)
    scope, entity, tenant = rq.model.metric_scope(rq.caller, uuid=rq.query.get("uuid"),
                                                  path=rq.query.get("path"))
    # A scope with no I/O history yet (e.g. a volume never opened) has moved no bytes: 0 now.
    point = rq.metrics.latest(metric, scope) or {"time": int(time.time()), "value": 0.0}
    return [{"entity_path": entity, "tenant": tenant, "metric": metric, "point": point}]


def _hw_metric(rq: Rq) -> str:
    if rq.p("metric") not in HW_METRICS:
        raise NotFound()
    path = rq.query.get("path") or "/storage_nodes"
    node = rq.model.storage_nodes(rq.caller)[0]["path"]
    if path not in ("/storage_nodes", node) and rq.query.get("uuid") not in (None, node.rsplit("/", 1)[1]):
        raise NotFound(path)
    return node


def hw_series(rq: Rq):
    node = _hw_metric(rq)
    since, until = _window(rq.query)
    return [{"entity_path": node, "tenant": "/root", "metric": rq.p("metric"),
             "points": rq.services.cpu.series(since, until)}]


def hw_latest(rq: Rq):
    node = _hw_metric(rq)
    return [{"entity_path": node, "tenant": "/root", "metric": rq.p("metric"),
             "point": rq.services.cpu.latest()}]
