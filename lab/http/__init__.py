"""The lab's one HTTP core on aiohttp's router and middlewares (see app.py and routes.py).

Each simulated API brings its route table (a list of Route records), an endpoint adapter
(record -> aiohttp handler), an error renderer in its own body style, and middlewares for its
own concerns (OpenStack: tokens, microversions, request ids; Datera: sessions, envelopes).
"""
from .chaos import InjectedFault
from .app import ErrorRenderer, build_app, client_error_message, normalize
from .body import BodyError, loads
from .request import path_as_sent, reply_headers
from .rejects import Rejected, serve_rejects
from .routes import Route, register, route_of

__all__ = ["BodyError", "ErrorRenderer", "InjectedFault", "Rejected", "Route", "build_app",
           "client_error_message", "loads", "normalize", "path_as_sent", "register",
           "reply_headers", "route_of", "serve_rejects"]
