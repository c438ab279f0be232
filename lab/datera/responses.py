"""HTTP handlers of the Datera lab: take the parsed request, call the model, return the data.

The wire protocol (version prefixes, sessions, envelopes, paging, error bodies) is api.py's,
on the lab's HTTP core; a handler returns the envelope's `data` (a Listing to be filtered,
sorted and paged; a Raw to be sent without envelope). Handlers hold no state: everything
lives in the model, the metrics, the directory.
"""
import re
import time
from dataclasses import dataclass, field

from .metrics import IO_METRICS, Metrics
from .models import Caller, DateraModel, InvalidRequest, NotFound

ADVERTISED_VERSIONS = ["v2", "v2.1", "v2.2"]   # GET /api_versions, as the real DSP answers
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
    durable: object = None               # models.durable.DurableState, None: in memory only


class Listing(list):
    """A handler's collection answer: filtered, sorted and paged by api.py's envelope."""


class Raw(dict):
    """A handler's answer sent as is, without the envelope (/login, /api, /api_versions)."""


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


def api_versions(rq: Rq):
    return Raw(api_versions=ADVERTISED_VERSIONS)


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
