"""What an OpenStack API answers to a request its HTTP server refuses before the API sees it
(lab/http/rejects.py), as the real one does.

Mitaka to Pike serve their APIs with eventlet.wsgi (Nova, Cinder, Glance and Neutron by
default; Keystone in Mitaka's eventlet mode), whose request handling (eventlet 0.33,
wsgi.py HttpProtocol.handle_one_request, on Python's http.server.BaseHTTPRequestHandler)
answers, and closes the connection:
- a header line of 8192 bytes or more: "HTTP/1.0 400 Header Line Too Long", no body;
- a request line it cannot split (one word, HTTP/0.9 style): BaseHTTPRequestHandler's
  send_error(400, "Bad request syntax (...)"), its HTML error page;
- an HTTP version of 2.0 or more: send_error(505, "Invalid HTTP version (...)");
- any method name: eventlet hands it to the API, whose router has no route for it: the API's
  own 405 fault, as for any method a resource does not have;
- malformed chunked encoding: eventlet's ChunkReadError reaches the API when it reads the
  body: the API's own 400 fault for a body it cannot read;
- bytes outside visible ASCII in the path: eventlet passes the path on and no route of the
  API matches it: the API's own 404 fault.
"""
from __future__ import annotations

from http.server import DEFAULT_ERROR_CONTENT_TYPE, DEFAULT_ERROR_MESSAGE, \
    BaseHTTPRequestHandler
from html import escape

from aiohttp import web

from lab.http import rejects

from . import errors


def _error_page(status: int, message: str) -> web.Response:
    """BaseHTTPRequestHandler.send_error's page (Python's http.server)."""
    short, explain = BaseHTTPRequestHandler.responses[status]
    body = DEFAULT_ERROR_MESSAGE % {"code": status, "message": escape(message, quote=False),
                                    "explain": escape(explain, quote=False)}
    return web.Response(status=status, reason=short, body=body.encode("utf-8", "replace"),
                        headers={"Content-Type": DEFAULT_ERROR_CONTENT_TYPE})


def answer(service) -> rejects.Answer:
    """The Rejected -> response function for one service of a cloud (cloud.Service)."""
    def fault(e: errors.ApiError) -> web.Response:
        body, ctype = service.error_body(e)
        return web.Response(status=e.status, body=body, content_type=ctype, charset="utf-8")

    def render(r: rejects.Rejected) -> web.Response:
        if r.kind == rejects.HEADER_TOO_LONG:
            return web.Response(status=400, reason="Header Line Too Long")
        if r.kind == rejects.BAD_METHOD:
            return fault(errors.MethodNotAllowed(
                f"The method {r.method or ''} is not allowed for this resource."))
        if r.kind == rejects.BAD_CHUNKED:
            return fault(errors.BadRequest("Malformed request body: invalid chunked "
                                           "transfer encoding."))
        if r.kind == rejects.BAD_PATH:
            return fault(errors.NotFound("The resource could not be found."))
        if r.kind == rejects.BAD_VERSION:
            return _error_page(505, "Invalid HTTP version")
        return _error_page(400, "Bad request syntax")
    return render
