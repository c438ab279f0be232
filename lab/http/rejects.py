"""Requests the HTTP layer rejects before any route or middleware runs, answered the way the
simulated server answers them instead of aiohttp's plain-text 400.

aiohttp's parser (llhttp) refuses a header line over 8190 bytes, a malformed request line or
HTTP version, a method name it does not know and malformed chunked encoding while it reads
the request; its RequestHandler.handle_error then writes "400 Bad Request" with the parser's
complaint as text/plain and closes the connection. `serve_rejects(runner, answer)` hands
those rejections to `answer(Rejected) -> web.Response` (an API's own renderer: Datera's
error object in lab/datera/api.py, eventlet's answers in lab/openstack/server.py); the
connection is closed after the answer as before (the rest of the stream cannot be trusted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from aiohttp import http_exceptions as hx
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

# What went wrong, in the terms the answers use.
HEADER_TOO_LONG = "header line too long"
BAD_METHOD = "unknown method"
BAD_REQUEST_LINE = "malformed request line"
BAD_VERSION = "unsupported HTTP version"
BAD_CHUNKED = "malformed chunked encoding"
BAD_PATH = "unreadable request path"        # bytes outside visible ASCII in the target
BAD_REQUEST = "malformed request"
LIMIT = 8190   # aiohttp's max_line_size and max_field_size (bytes)
_METHOD = re.compile(r"b'([^ '\\]{1,40}) ")   # a method, then a space: a request line


@dataclass(frozen=True)
class Rejected:
    """kind: one of the names above; method: the request line's method when it names one
    (unknown method); detail: the parser's complaint, for logs."""
    kind: str
    method: str | None
    detail: str


def classify(exc: BaseException | None) -> Rejected:
    detail = str(exc) if exc is not None else ""
    if isinstance(exc, hx.LineTooLong):
        return Rejected(HEADER_TOO_LONG, None, detail)
    if isinstance(exc, hx.BadHttpMethod):
        m = _METHOD.search(detail)
        if m is None:   # one word, or not HTTP at all
            return Rejected(BAD_REQUEST_LINE, None, detail)
        return Rejected(BAD_METHOD, m.group(1), detail)
    if isinstance(exc, hx.BadStatusLine):
        kind = BAD_VERSION if "version" in detail.lower() else BAD_REQUEST_LINE
        return Rejected(kind, None, detail)
    if isinstance(exc, hx.InvalidURLError) or "char in url" in detail.lower():
        return Rejected(BAD_PATH, None, detail)
    if isinstance(exc, hx.TransferEncodingError) or "chunk" in detail.lower():
        return Rejected(BAD_CHUNKED, None, detail)
    return Rejected(BAD_REQUEST, None, detail)


Answer = Callable[[Rejected], web.Response]


class _Handler(RequestHandler):
    def handle_error(self, request, status=500, exc=None, message=None):
        answer = getattr(self._manager, "lab_answer", None)
        if answer is None or status >= 500 or not isinstance(exc, hx.HttpProcessingError) \
                or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        resp = answer(classify(exc))
        resp.force_close()
        resp.headers["Connection"] = "close"   # said, as eventlet and most servers do
        return resp


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


def serve_rejects(runner: web.AppRunner, answer: Answer) -> None:
    """After `await runner.setup()`, before a site starts: the runner's connections answer
    what the parser rejects with `answer`."""
    server = runner.server
    if server is None:
        raise RuntimeError("serve_rejects: call it after runner.setup()")
    server.__class__ = _Server   # the same server; only its connections' class changes
    server.lab_answer = answer
