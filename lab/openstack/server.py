"""The OpenStack lab's HTTP side: one aiohttp app per service on the lab's HTTP core
(lab/http), and the process that serves one cloud.

    python -m lab.openstack --config <run>/openstack-<cloud>/config.json

serves Keystone, Glance, Neutron, Cinder and Nova of one cloud on the cloud's loopback address
(lab/topology.py), one port per service (cloud.PORTS).

What every request goes through, in middleware order
-----------------------------------------------------
* request ids ("req-<uuid>" in each of the service's request_id_headers, errors included)
  and the access log line;
* the core's error middleware: unknown path 404, wrong method 405, and every errors.ApiError,
  in the service's error_body style (401 in Keystone's, with WWW-Authenticate);
* token validation: X-Auth-Token -> AuthContext via the Keystone model (401 when missing or
  bad); a {project_id} path parameter must be the token's project (400, as Nova/Cinder answer);
* microversion negotiation for services that have one: rq.version, 400 for a malformed
  version, 406 outside the profile's [min, max], the version headers on the reply, and 404
  VersionNotFoundForAPIMethod outside the route's own bounds;
* the endpoint: builds the api.Rq (body read unless the route streams), calls the handler;
* around all of that, for a request that may change state: the cloud's store is written
  before the answer leaves (durable.py), so an answered write survives a kill -9.
"""
import asyncio
import logging
import signal
import time
import uuid

from aiohttp import web

import lab.http as core

from . import errors, faults, rejects
from .api import Route, Rq, to_response
from .cloud import Cloud, Service
from .config import CloudConfig
from .durable import CloudState
from .microversion import VersionNotAcceptable

log = logging.getLogger("lab.openstack")

UNAUTHENTICATED = "The request you have made requires authentication."
INTERNAL = ("The server has either erred or is incapable of performing the requested "
            "operation.")
# request[...] keys this module's middlewares fill for the endpoint.
REQUEST_ID = web.RequestKey("os.request_id", str)
AUTH = web.RequestKey("os.auth", object)
VERSION = web.RequestKey("os.version", object)


_TITLES = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


def _injected(fault: core.InjectedFault) -> errors.ApiError:
    """The chaos switch's 5xx as the service's own ApiError (its error_body renders it)."""
    e = errors.ServiceUnavailable(fault.message) if fault.status == 503 else \
        errors.ApiError(fault.message)
    e.status, e.title = fault.status, _TITLES[fault.status]
    return e


def error_renderer(service: Service):
    """(request, exception) -> the service's error response (the core calls it)."""
    def render(request: web.Request, e: BaseException) -> web.Response:
        if isinstance(e, web.HTTPMethodNotAllowed):
            e = errors.MethodNotAllowed(
                f"The method {request.method} is not allowed for this resource.")
        elif isinstance(e, web.HTTPNotFound):
            e = errors.NotFound("The resource could not be found.")
        elif isinstance(e, core.InjectedFault):   # the chaos switch (lab/http/chaos.py)
            e = _injected(e)
        elif isinstance(e, web.HTTPClientError):   # the HTTP layer's 4xx (413: body too large)
            failure = errors.ApiError(core.client_error_message(request, e),
                                      kind=e.__class__.__name__.removeprefix("HTTP"))
            failure.status, failure.title = e.status, e.reason
            e = failure
        elif isinstance(e, errors.ApiError):
            if e.status >= 500:
                log.error("%s %s %s: %s", service.name, request.method, request.path,
                          e.message)
        else:
            log.exception("%s %s %s failed (%s)", service.name, request.method, request.path,
                          request.get(REQUEST_ID), exc_info=e)
            e = errors.ApiError(INTERNAL)
        headers = {}
        if isinstance(e, errors.Unauthorized):
            body, ctype = faults.keystone(e)
            if service.name != "keystone":
                headers["WWW-Authenticate"] = (
                    f"Keystone uri=\"{service.cloud.endpoint('keystone')}/v3\"")
        else:
            body, ctype = service.error_body(e)
        return web.Response(status=e.status, body=body, headers=headers, content_type=ctype,
                            charset="utf-8")
    return render


def request_ids(service: Service):
    @web.middleware
    async def middleware(request: web.Request, handler):
        started = time.monotonic()
        request_id = request[REQUEST_ID] = f"req-{uuid.uuid4()}"
        headers = core.reply_headers(request)
        for name in service.request_id_headers:
            headers[name] = request_id
        response = await handler(request)
        log.info("%s %s %s -> %d %.1fms %s", service.name, request.method, request.path,
                 response.status, 1000 * (time.monotonic() - started), request_id)
        return response
    return middleware


def authenticate(cloud: Cloud):
    @web.middleware
    async def middleware(request: web.Request, handler):
        route = core.route_of(request)
        if not route.public:
            token = request.headers.get("X-Auth-Token")
            if not token:
                raise errors.Unauthorized(UNAUTHENTICATED)
            auth = request[AUTH] = cloud.identity.validate(token)
            url_project = request.match_info.get("project_id")
            if url_project is not None and url_project != auth.project_id:
                raise errors.BadRequest(
                    f"Malformed request URL: URL's project_id '{url_project}' doesn't match "
                    f"Context's project_id '{auth.project_id}'")
        return await handler(request)
    return middleware


def negotiate_microversion(cloud: Cloud, service: Service):
    spec = service.microversions

    @web.middleware
    async def middleware(request: web.Request, handler):
        if spec.applies(request.path):
            try:
                version = spec.negotiate(request.headers, cloud.profile)
            except VersionNotAcceptable as e:
                raise errors.NotAcceptable(str(e)) from None
            except ValueError as e:
                raise errors.BadRequest(str(e)) from None
            request[VERSION] = version
            core.reply_headers(request).update(spec.response_headers(version, cloud.profile))
            low, high = core.route_of(request).bounds()
            if (low and version < low) or (high and version > high):
                raise errors.NotFound(f"API version {version} is not supported on this method.",
                                      kind="VersionNotFoundForAPIMethod")
        return await handler(request)
    return middleware


def endpoint(cloud: Cloud, service: Service):
    """route -> the aiohttp handler that builds the Rq and calls route.handler."""
    def make(route: Route):
        async def handle(request: web.Request) -> web.StreamResponse:
            rq = Rq(cloud=cloud, service=service, http=request, method=request.method,
                    path=core.path_as_sent(request), params=dict(request.match_info),
                    query=request.query, headers=request.headers,
                    request_id=request[REQUEST_ID],
                    base_url=f"{request.scheme}://{request.host}", auth=request.get(AUTH),
                    version=request.get(VERSION))
            if not route.stream:
                rq.raw = await request.read()
            reply = route.handler(rq)
            if asyncio.iscoroutine(reply):
                reply = await reply
            return to_response(reply)
        return handle
    return make


def persist(state: CloudState):
    """Writes the cloud's changed state before the answer of a request that may change it
    leaves (failed ones too: a half-done change is still a change). A store that cannot
    write makes the answer a 500: never a success that a restart would lose."""
    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return await handler(request)
        try:
            return await handler(request)
        finally:
            state.sync()
    return middleware


async def sync_now_and_then(state: CloudState, every_s: float = 1.0) -> None:
    """Writes what the services' workers changed (a volume that became available) within a
    second; request-made changes are written before their answer (persist)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            state.sync()
        except Exception:   # a full disk: logged, retried next round; requests then fail 500
            log.exception("store sync failed")


def build_app(cloud: Cloud, service: Service, state: CloudState | None = None) -> web.Application:
    middlewares = [persist(state)] if state is not None else []
    middlewares.append(authenticate(cloud))
    if service.microversions is not None:
        middlewares.append(negotiate_microversion(cloud, service))
    # Image uploads stream (route.stream), so the size cap applies to JSON bodies only.
    app = core.build_app(render_error=error_renderer(service), outer=[request_ids(service)],
                         middlewares=middlewares, client_max_size=16 << 20,
                         service=service.name, cloud=cloud.config.cloud)
    core.register(app, service.routes(), endpoint(cloud, service), head_from_get=True)
    return app


async def serve(config: CloudConfig) -> None:
    """Runs one cloud until SIGTERM or SIGINT."""
    cloud = Cloud(config)
    cloud.load_services()
    state = CloudState.open(cloud)
    tasks = []
    if state is not None:
        counts = state.load()   # before any listener: no request sees a half-loaded cloud
        log.info("stores in %s: restored %s", config.data_dir,
                 ", ".join(f"{n} {c}" for n, c in counts.items()) or "nothing (first start)")
        tasks.append(asyncio.create_task(sync_now_and_then(state), name="store-sync"))
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
            runner = web.AppRunner(build_app(cloud, service, state), access_log=None,
                                   handle_signals=False)
            await runner.setup()
            core.serve_rejects(runner, rejects.answer(service))
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
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for runner in reversed(runners):
            await runner.cleanup()
        for service in cloud.services.values():
            close = getattr(service.model, "close", None)
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    await result
        if state is not None:   # after the workers stopped: their last changes too
            state.sync()
            state.close()
