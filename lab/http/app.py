"""The one HTTP core of the lab: an aiohttp application whose router serves a route table
(routes.py) and whose middlewares do what every simulated API needs, each in its own style.

    app = build_app(render_error=..., middlewares=[auth, versions, envelope], outer=[log])
    register(app, ROUTES, endpoint)

Middleware order, outermost first: `outer` (e.g. request ids and the access log, which must
see the final status), then the core's error middleware, then the chaos switch (chaos.py, when
the app names its service), then the API's `middlewares`. The error middleware
* turns every exception into the API's own error body through `render_error(request, exc)`:
  the router's web.HTTPNotFound / web.HTTPMethodNotAllowed (unknown path, wrong method), the
  HTTP layer's other 4xx (web.HTTPRequestEntityTooLarge from request.read(): renderers word it
  with client_error_message) and the API's own exceptions alike, so a 404 looks like the real
  service's 404 and nothing a client sends is a 500;
* applies the request's reply headers (request.reply_headers) to success and error answers;
* tolerates "//" and a trailing "/" as the lab's APIs always have: a path the router does
  not know is retried once in its normalized form before it is a 404; but a trailing "/"
  where a route has a parameter is an empty id, a 404 as in the real services
  (`GET /v3/{p}/volumes/` is a show of volume "", not the list).
"""
import functools
from typing import Callable, Iterable

from aiohttp import web

from lab import chaos as lab_chaos

from .chaos import middleware as chaos_middleware
from .request import PATH_AS_SENT, REQUEST_ROUTE, reply_headers
from .routes import ROUTES_KEY

# (request, exception) -> the API's error response.
ErrorRenderer = Callable[[web.Request, BaseException], web.StreamResponse]


def build_app(*, render_error: ErrorRenderer, middlewares: Iterable = (), outer: Iterable = (),
              client_max_size: int = 1 << 20, service: str | None = None,
              cloud: str | None = None) -> web.Application:
    """service (and cloud): the API's name for the chaos switch (chaos.SERVICES); its rules
    then apply to this app (lab/http/chaos.py). render_error must render an
    chaos.InjectedFault (it has .status and .message) in the API's error style."""
    inner = tuple(middlewares)
    if service is not None:
        inner = (chaos_middleware(lab_chaos.Control.from_env(), service, cloud), *inner)

    @web.middleware
    async def errors(request: web.Request, handler):
        headers = reply_headers(request)   # created here so a retried clone shares it
        try:
            miss = request.match_info.http_exception
            if miss is not None:
                retried = await _normalized_retry(request, inner)
                if retried is None:
                    raise miss   # no API middleware runs for a path the API does not have
                handler, request = retried
            response = await handler(request)
        except Exception as e:   # HTTPNotFound/HTTPMethodNotAllowed from the router included
            response = render_error(request, e)
        for name, value in headers.items():
            if name not in response.headers:   # what the handler set itself wins
                response.headers[name] = value
        return response

    app = web.Application(client_max_size=client_max_size,
                          middlewares=[*outer, errors, *inner])
    app[ROUTES_KEY] = {}
    return app


def client_error_message(request: web.Request, e: web.HTTPClientError) -> str:
    """One line for a 4xx the HTTP layer raised itself (aiohttp's HTTPRequestEntityTooLarge
    from request.read(), ...), for the API's renderer to put in its own error body."""
    if isinstance(e, web.HTTPRequestEntityTooLarge):
        return f"Request body is larger than the {request.client_max_size} bytes accepted."
    return e.reason


def normalize(raw_path: str) -> str:
    """'/v2.2//tenants/' -> '/v2.2/tenants'."""
    return "/" + "/".join(p for p in raw_path.split("/") if p)


async def _empty_id(request: web.Request, raw: str) -> bool:
    """True when `raw` ends in "/" where a matching route has a parameter: the collection
    path plus an empty id ("//" inside a path stays tolerated, as the lab's APIs always
    have: dfs_sdk and the Datera tests send it)."""
    if not raw.endswith("/"):
        return False
    parts = [p for p in raw.split("/") if p]
    probe = "/" + "/".join(parts + ["x-empty-id"])
    match = await request.app.router.resolve(request.clone(rel_url=probe))
    if match.http_exception is not None:
        return False
    template = match.route.resource.canonical.split("/")[1:]
    return template[len(parts)].startswith("{")


async def _normalized_retry(request: web.Request, inner: tuple):
    """(handler chain, request clone) when the normalized path matches a route, else None."""
    raw = request.rel_url.raw_path
    norm = normalize(raw)
    if norm == raw or await _empty_id(request, raw):
        return None
    url = request.rel_url.with_path(norm, encoded=True).with_query(request.rel_url.query)
    alt = request.clone(rel_url=url)
    match = await request.app.router.resolve(alt)
    if match.http_exception is not None:
        return None
    match.add_app(request.app)
    match.freeze()
    # As aiohttp's own normalize_path_middleware does, the clone carries its match info.
    alt._match_info = match
    alt[PATH_AS_SENT] = request.path
    alt[REQUEST_ROUTE] = request.app[ROUTES_KEY].get(match.route)
    handler = match.handler
    for middleware in reversed(inner):
        handler = functools.update_wrapper(functools.partial(middleware, handler=handler),
                                           handler)
    return handler, alt
