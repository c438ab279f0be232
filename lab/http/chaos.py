"""The chaos switch in the one HTTP core: an aiohttp middleware that reads lab/chaos.py's
rules for its service and, per request, adds latency, resets the connection or fails it with
an InjectedFault, which the API's own error renderer turns into its error body (Datera's
error object, Nova's computeFault, Glance's HTML page, ...), as a real overloaded or failing
service answers. It sits just inside the core's error middleware, before any of the API's own
middlewares, so it hits every route, public or not. Every injected reset or error is one
log line ("chaos: injected HTTP 503 on <service>: POST /path") in the component's log, so a
run can count what the switch did to it (tests/support/chaos_run.py).
"""
import asyncio
import logging
import socket
import struct

from aiohttp import web

from lab import chaos

log = logging.getLogger("lab.chaos")
_MESSAGES = {500: "The server has either erred or is incapable of performing the requested "
                  "operation.",
             502: "Bad gateway: the service behind this endpoint failed.",
             503: "The service is unavailable at the moment; please retry.",
             504: "The service did not answer in time."}


class InjectedFault(Exception):
    """An error the chaos switch injected; `status` is its HTTP status (5xx)."""

    def __init__(self, status: int):
        super().__init__(_MESSAGES.get(status, "injected fault"))
        self.status = status
        self.message = str(self)


def _reset(request: web.Request) -> None:
    """Closes the connection with a TCP RST (SO_LINGER 0), as a crashed peer or a load
    balancer dropping the flow does: the client sees ECONNRESET, not a clean close."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    if transport is not None:
        transport.abort()


def middleware(control: chaos.Control, service: str, cloud: str | None = None):
    @web.middleware
    async def inject(request: web.Request, handler):
        fault = control.http_fault(service, cloud)
        if fault is not None:
            if fault.latency_s:
                await asyncio.sleep(fault.latency_s)
            if fault.reset:
                log.warning("chaos: injected reset on %s: %s %s", service, request.method,
                            request.path)
                _reset(request)
                raise asyncio.CancelledError()   # nothing more to write on this connection
            if fault.status is not None:
                log.warning("chaos: injected HTTP %d on %s: %s %s", fault.status, service,
                            request.method, request.path)
                raise InjectedFault(fault.status)
        return await handler(request)
    return inject
