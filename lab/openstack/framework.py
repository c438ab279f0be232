"""The OpenStack lab's framework: one process per cloud, every service of that cloud in it.

    python -m lab.openstack --config <run>/openstack-<cloud>/config.json

serves Keystone, Glance, Neutron (and Cinder and Nova when their packages exist) of one cloud on
the cloud's loopback address (lab/topology.py), one port per service (PORTS). All services of a
cloud share one asyncio loop and one `Cloud`, so services call each other's *models* directly
(Cinder reads Glance image bytes, Nova asks Neutron for a port) and never over HTTP.

How a service plugs in
----------------------
A package `lab/openstack/<name>/` (one of SERVICE_PACKAGES) with the moto split of DESIGN §5:
`models.py` (state and behaviour, no HTTP; raises lab.openstack.errors.*), `responses.py`
(handlers: parse the Rq, call the model, return a Reply) and `urls.py` (ROUTES, one table).
Its `__init__.py` defines

    def make_service(cloud: Cloud) -> Service

returning a `Service` subclass instance with:
    name            "cinder"
    port            PORTS[name]
    catalog         CatalogEntry(type, name, path) per catalog type; `path` may hold
                    "{project_id}", filled with the token's project (e.g. "/v3/{project_id}")
    error_style     "keystone" | "fault" (Nova/Cinder: {"itemNotFound": {code, message}}) |
                    "neutron" | "glance" (HTML, as webob answers)
    microversions   a MicroversionSpec or None (see microversion.py)
    request_id_headers  header names that carry the request id
    model           the service's state; other services reach it as cloud.model("cinder")
    routes()        list[Route]

Route(method, pattern, handler, public=False, min_version=None, max_version=None, stream=False):
patterns use ":param" for one path segment, as lab/datera/urls.py; "/v3" and "/v3/" match the
same route. `public` routes are served without a token (version discovery must be: keystoneauth
fetches it unauthenticated). A route outside [min_version, max_version] of the negotiated
microversion answers 404 as Cinder's VersionNotFoundForAPIMethod does. `stream=True` leaves the
body unread (rq.http is the aiohttp request to read it from: Glance uploads).

What the framework does for every request, before the handler runs
-------------------------------------------------------------------
* request id "req-<uuid>" in each of the service's request_id_headers;
* route match (404, or 405 when only the method is wrong);
* token validation: X-Auth-Token -> rq.auth (AuthContext: user, project, roles, is_admin) via
  the Keystone model; missing or bad -> 401 in keystonemiddleware's JSON form;
* a ":project_id" path parameter must be the token's project (400, as Nova/Cinder answer);
* microversion negotiation for services that have one: rq.version, 400 for a malformed
  version, 406 outside the profile's [min, max]; the response echoes the version headers;
* the body is read (rq.raw) and parsed on demand by rq.json() (400 on malformed JSON).

Handlers: `def handler(rq: Rq) -> Reply` (or async). Raise errors.NotFound(...) etc.; the
framework renders them in the service's error_style. Helpers: rq.json(), rq.require_admin(),
rq.base_url (scheme://host:port as the client addressed us: discovery links must use it),
rq.profile (the ReleaseProfile: every per-release switch and the version documents) and
paginate() for marker/limit lists.
"""
import abc
import asyncio
import importlib
import importlib.util
import ipaddress
import json
import logging
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

from aiohttp import web

from . import errors
from .microversion import Microversion, MicroversionSpec, VersionNotAcceptable
from .releases import PROFILES, RELEASES, ReleaseProfile

log = logging.getLogger("lab.openstack")

from lab.topology import OPENSTACK_PORTS as PORTS  # noqa: E402  (one home: lab/topology.py)
# Catalog order and start order; packages that do not exist (yet) are skipped.
SERVICE_PACKAGES = ("keystone", "glance", "neutron", "cinder", "nova")
REGION = "RegionOne"


class ConfigError(Exception):
    """A one-line reason the config cannot be used."""


# ---- configuration ------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    project: str

    def __repr__(self) -> str:   # never print the password
        return f"Credentials(user={self.user!r}, project={self.project!r})"


@dataclass(frozen=True)
class ComputeNode:
    name: str
    address: str


@dataclass(frozen=True)
class CloudConfig:
    """Config JSON keys: cloud, release, address, data_dir, admin {user, password, project},
    tenant {user, password, project}, compute_nodes [{name, address}], services {<name>: {...}}
    (opaque per-service settings, e.g. Cinder's backends), region (default RegionOne)."""
    cloud: str
    release: str
    address: str
    data_dir: Path
    admin: Credentials
    tenant: Credentials
    compute_nodes: tuple = ()
    services: dict = field(default_factory=dict)
    region: str = REGION

    @staticmethod
    def load(path) -> "CloudConfig":
        try:
            doc = json.loads(Path(path).read_text())
        except OSError as e:
            raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
        except ValueError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        for key in ("cloud", "release", "address", "data_dir", "admin", "tenant"):
            if key not in doc:
                raise ConfigError(f"{path}: missing key '{key}'")
        unknown = sorted(set(doc) - set(CloudConfig.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"{path}: unknown key '{unknown[0]}'")
        if doc["release"] not in RELEASES:
            raise ConfigError(f"{path}: release {doc['release']!r} is not one of "
                              f"{', '.join(RELEASES)}")
        _check_loopback(path, "address", doc["address"])
        creds = {}
        for who in ("admin", "tenant"):
            c = doc[who]
            if not isinstance(c, dict) or not {"user", "password", "project"} <= set(c):
                raise ConfigError(f"{path}: {who} needs user, password and project")
            creds[who] = Credentials(c["user"], c["password"], c["project"])
        nodes = []
        for i, n in enumerate(doc.get("compute_nodes") or []):
            if not isinstance(n, dict) or not {"name", "address"} <= set(n):
                raise ConfigError(f"{path}: compute_nodes[{i}] needs name and address")
            _check_loopback(path, f"compute_nodes[{i}].address", n["address"])
            nodes.append(ComputeNode(n["name"], n["address"]))
        services = doc.get("services") or {}
        if not isinstance(services, dict):
            raise ConfigError(f"{path}: services must be an object")
        return CloudConfig(cloud=doc["cloud"], release=doc["release"], address=doc["address"],
                           data_dir=Path(doc["data_dir"]), admin=creds["admin"],
                           tenant=creds["tenant"], compute_nodes=tuple(nodes),
                           services=services, region=doc.get("region", REGION))


def _check_loopback(path, key: str, value) -> None:
    try:
        ok = ipaddress.IPv4Address(value).is_loopback
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: {key} {value!r} is not an IPv4 address") from None
    if not ok:
        raise ConfigError(f"{path}: {key} {value} is not in 127.0.0.0/8 "
                          "(the lab binds to loopback only)")


# ---- what services declare -----------------------------------------------------------------

@dataclass(frozen=True)
class CatalogEntry:
    type: str      # "volumev3"
    name: str      # "cinderv3"
    path: str      # "/v3/{project_id}"; "" for an unversioned endpoint


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Callable
    public: bool = False
    min_version: str | None = None
    max_version: str | None = None
    stream: bool = False

    def match(self, segs: list[str]) -> dict | None:
        pat = [p for p in self.pattern.split("/") if p]
        if len(pat) != len(segs):
            return None
        params = {}
        for p, s in zip(pat, segs):
            if p.startswith(":"):
                params[p[1:]] = s
            elif p != s:
                return None
        return params


class Service(abc.ABC):
    """Base of every service; subclasses set the class attributes and routes()."""
    name: str = ""
    port: int = 0
    catalog: tuple = ()
    error_style: str = "fault"
    microversions: MicroversionSpec | None = None
    request_id_headers: tuple = ("x-openstack-request-id",)

    def __init__(self, cloud: "Cloud", model: Any = None):
        self.cloud = cloud
        self.model = model

    @abc.abstractmethod
    def routes(self) -> list[Route]:
        """The service's route table."""


@dataclass(frozen=True)
class AuthContext:
    """Who a validated token speaks for. project_id is None for a domain-scoped token."""
    user_id: str
    user_name: str
    user_domain_id: str
    project_id: str | None
    project_name: str | None
    domain_id: str | None          # the scope's domain (domain-scoped tokens)
    roles: tuple
    is_admin: bool
    audit_id: str


# ---- a request, as a handler sees it, and its answer -----------------------------------------

@dataclass
class Rq:
    cloud: "Cloud"
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
            return json.loads(self.raw)
        except (ValueError, UnicodeDecodeError):
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


def paginate(items: list, query, *, key: str = "id", default_limit: int = 1000):
    """(page, more) for ?limit=&marker=: the items after the one whose `key` is the marker.
    Raises errors.BadRequest for a bad limit and LookupError for an unknown marker (each
    service answers that its own way)."""
    marker = query.get("marker")
    limit_text = query.get("limit")
    try:
        limit = default_limit if limit_text in (None, "") else int(limit_text)
    except ValueError:
        raise errors.BadRequest(f"limit param must be an integer") from None
    if limit < 0:
        raise errors.BadRequest("limit param must be positive")
    start = 0
    if marker:
        ids = [i[key] if isinstance(i, dict) else getattr(i, key) for i in items]
        if marker not in ids:
            raise LookupError(marker)
        start = ids.index(marker) + 1
    page = items[start:start + limit]
    return page, start + limit < len(items)


# ---- error bodies ---------------------------------------------------------------------------

# Nova's and Cinder's Fault names by status; anything else (406 included) is computeFault.
_FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
                405: "badMethod", 409: "conflictingRequest", 413: "overLimit",
                415: "badMediaType", 429: "overLimit", 501: "notImplemented",
                503: "serviceUnavailable"}


def _keystone_error(e: errors.ApiError) -> tuple[bytes, str]:
    body = {"error": {"code": e.status, "title": e.title, "message": e.message}}
    return json.dumps(body).encode(), "application/json"


def _fault_error(e: errors.ApiError) -> tuple[bytes, str]:
    name = _FAULT_NAMES.get(e.status, "computeFault")
    return json.dumps({name: {"code": e.status, "message": e.message}}).encode(), "application/json"


def _neutron_error(e: errors.ApiError) -> tuple[bytes, str]:
    body = {"NeutronError": {"type": e.kind, "message": e.message, "detail": ""}}
    return json.dumps(body).encode(), "application/json"


def _glance_error(e: errors.ApiError) -> tuple[bytes, str]:
    from html import escape
    title = f"{e.status} {e.title}"
    html = (f"<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n"
            f"  {escape(e.message, quote=False)}<br /><br />\n\n\n\n </body>\n</html>")
    return html.encode(), "text/html"


ERROR_STYLES = {"keystone": _keystone_error, "fault": _fault_error,
                "neutron": _neutron_error, "glance": _glance_error}

UNAUTHENTICATED = "The request you have made requires authentication."


def available_services() -> list[str]:
    """The SERVICE_PACKAGES that exist in this tree (Cinder and Nova arrive later)."""
    return [n for n in SERVICE_PACKAGES
            if importlib.util.find_spec(f"{__package__}.{n}") is not None]


# ---- the cloud ----------------------------------------------------------------------------

class Cloud:
    """One cloud: its config, release profile and services (by name, in catalog order)."""

    def __init__(self, config: CloudConfig):
        self.config = config
        self.profile: ReleaseProfile = PROFILES[config.release]
        self.services: dict[str, Service] = {}
        config.data_dir.mkdir(parents=True, exist_ok=True)

    def load_services(self, names=SERVICE_PACKAGES) -> None:
        for name in names:
            if name not in available_services():
                continue
            module = importlib.import_module(f"{__package__}.{name}")
            if not hasattr(module, "make_service"):
                log.warning("lab.openstack.%s has no make_service() yet: not served", name)
                continue
            self.services[name] = module.make_service(self)
        if "keystone" not in self.services:
            raise ConfigError("the keystone service is missing: every cloud needs identity")

    def model(self, name: str):
        """Another service's model, e.g. cloud.model("glance"); KeyError if not in this cloud."""
        return self.services[name].model

    @property
    def identity(self):
        """The Keystone model: .validate(token) -> AuthContext, raising errors.Unauthorized."""
        return self.services["keystone"].model

    def endpoint(self, service: str) -> str:
        return f"http://{self.config.address}:{self.services[service].port}"

    def catalog(self, project_id: str | None) -> list[dict]:
        """The token catalog. Endpoints whose path needs a project are left out of unscoped
        and domain-scoped tokens, as Keystone drops URLs it cannot substitute."""
        region = self.config.region
        out = []
        for svc in self.services.values():
            for entry in svc.catalog:
                if "{project_id}" in entry.path and project_id is None:
                    continue
                url = self.endpoint(svc.name) + entry.path.format(project_id=project_id)
                sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.config.cloud}/{entry.type}"))
                out.append({"type": entry.type, "name": entry.name, "id": sid.replace("-", ""),
                            "endpoints": [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                                f"{sid}/{iface}")).replace("-", ""),
                                           "interface": iface, "region": region,
                                           "region_id": region, "url": url}
                                          for iface in ("public", "internal", "admin")]})
        return out


# ---- the dispatcher ------------------------------------------------------------------------

def _render_error(service: Service, e: errors.ApiError, headers: dict) -> web.Response:
    style = "keystone" if isinstance(e, errors.Unauthorized) else service.error_style
    body, ctype = ERROR_STYLES[style](e)
    if isinstance(e, errors.Unauthorized) and service.name != "keystone":
        headers["WWW-Authenticate"] = (f"Keystone uri=\"{service.cloud.endpoint('keystone')}"
                                       "/v3\"")
    return web.Response(status=e.status, body=body, headers=headers,
                        content_type=ctype, charset="utf-8")


def _to_response(reply, headers: dict) -> web.StreamResponse:
    if isinstance(reply, web.StreamResponse):
        reply.headers.update(headers)
        return reply
    if not isinstance(reply, Reply):
        raise TypeError(f"handler returned {type(reply).__name__}, not Reply")
    headers.update(reply.headers)
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    if isinstance(reply.body, (bytes, bytearray)):
        return web.Response(status=reply.status, body=bytes(reply.body), headers=headers,
                            content_type=reply.content_type or "application/octet-stream")
    return web.Response(status=reply.status, text=json.dumps(reply.body), headers=headers,
                        content_type=reply.content_type or "application/json")


def match(routes: list[Route], method: str, path: str) -> tuple[Route, dict]:
    segs = [unquote(s) for s in path.split("/") if s]
    allowed = set()
    for route in routes:
        params = route.match(segs)
        if params is None:
            continue
        if route.method == method or (method == "HEAD" and route.method == "GET"
                                      and not any(r.method == "HEAD" and r.match(segs) is not None
                                                  for r in routes)):
            return route, params
        allowed.add(route.method)
    if allowed:
        raise errors.MethodNotAllowed(f"The method {method} is not allowed for this resource.")
    raise errors.NotFound("The resource could not be found.")


def make_handler(cloud: Cloud, service: Service):
    routes = service.routes()

    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        request_id = f"req-{uuid.uuid4()}"
        headers = {h: request_id for h in service.request_id_headers}
        path = request.path
        status = 500
        try:
            route, params = match(routes, request.method, path)
            rq = Rq(cloud=cloud, service=service, http=request, method=request.method,
                    path=path, params=params, query=request.query, headers=request.headers,
                    request_id=request_id, base_url=f"{request.scheme}://{request.host}")
            if not route.public:
                token = request.headers.get("X-Auth-Token")
                if not token:
                    raise errors.Unauthorized(UNAUTHENTICATED)
                rq.auth = cloud.identity.validate(token)
                url_project = params.get("project_id")
                if url_project is not None and url_project != rq.auth.project_id:
                    raise errors.BadRequest(
                        f"Malformed request URL: URL's project_id '{url_project}' doesn't match "
                        f"Context's project_id '{rq.auth.project_id}'")
            spec = service.microversions
            if spec is not None and spec.applies(path):
                try:
                    rq.version = spec.negotiate(request.headers, cloud.profile)
                except VersionNotAcceptable as e:
                    raise errors.NotAcceptable(str(e)) from None
                except ValueError as e:
                    raise errors.BadRequest(str(e)) from None
                headers.update(spec.response_headers(rq.version, cloud.profile))
                if ((route.min_version and rq.version < Microversion.parse(route.min_version))
                        or (route.max_version
                            and rq.version > Microversion.parse(route.max_version))):
                    raise errors.NotFound(
                        f"API version {rq.version} is not supported on this method.",
                        kind="VersionNotFoundForAPIMethod")
            if not route.stream:
                rq.raw = await request.read()
            reply = route.handler(rq)
            if asyncio.iscoroutine(reply):
                reply = await reply
            response = _to_response(reply, headers)
        except errors.ApiError as e:
            if e.status >= 500:
                log.error("%s %s %s: %s", service.name, request.method, path, e.message)
            response = _render_error(service, e, headers)
        except Exception:
            log.exception("%s %s %s failed (%s)", service.name, request.method, path, request_id)
            response = _render_error(service, errors.ApiError(
                "The server has either erred or is incapable of performing the requested "
                "operation."), headers)
        status = response.status
        log.info("%s %s %s -> %d %.1fms %s", service.name, request.method, path, status,
                 1000 * (time.monotonic() - started), request_id)
        return response

    return handle


def build_app(cloud: Cloud, service: Service) -> web.Application:
    # Image uploads stream (route.stream), so the size cap applies to JSON bodies only.
    app = web.Application(client_max_size=16 << 20)
    app.router.add_route("*", "/{tail:.*}", make_handler(cloud, service))
    return app


async def serve(config: CloudConfig) -> None:
    """Runs one cloud until SIGTERM or SIGINT."""
    cloud = Cloud(config)
    cloud.load_services()
    runners = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # Keystone listens last, so "Keystone answers" means the whole cloud is up (the
        # supervisor's health check asks Keystone only).
        order = sorted(cloud.services.values(), key=lambda svc: svc.name == "keystone")
        for service in order:
            runner = web.AppRunner(build_app(cloud, service), access_log=None,
                                   handle_signals=False)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, config.address, service.port, reuse_address=True,
                               shutdown_timeout=1)
            await site.start()
        log.info("OpenStack %s (%s) serving %s on %s", config.cloud, config.release,
                 ", ".join(f"{s.name}:{s.port}" for s in cloud.services.values()),
                 config.address)
        await stop.wait()
        log.info("stopping")
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        for service in cloud.services.values():
            close = getattr(service.model, "close", None)
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
