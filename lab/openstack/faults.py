"""Error bodies in each OpenStack API's own style: (ApiError) -> (body bytes, content type).

A service names its renderer as Service.error_body; a 401 is always Keystone's style
(keystonemiddleware answers it, whatever the service). Sources: reference openstack-api
(Keystone's {"error": ...}, Nova/Cinder Fault names, NeutronError, Glance's webob HTML).
"""
import json
from html import escape

from . import errors

# Nova's and Cinder's Fault names by status; anything else (406 included) is computeFault.
_FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
                405: "badMethod", 409: "conflictingRequest", 413: "overLimit",
                415: "badMediaType", 429: "overLimit", 501: "notImplemented",
                503: "serviceUnavailable"}


def keystone(e: errors.ApiError) -> tuple[bytes, str]:
    body = {"error": {"code": e.status, "title": e.title, "message": e.message}}
    return json.dumps(body).encode(), "application/json"


def fault(e: errors.ApiError) -> tuple[bytes, str]:
    name = _FAULT_NAMES.get(e.status, "computeFault")
    return json.dumps({name: {"code": e.status, "message": e.message}}).encode(), "application/json"


def neutron(e: errors.ApiError) -> tuple[bytes, str]:
    body = {"NeutronError": {"type": e.kind, "message": e.message, "detail": ""}}
    return json.dumps(body).encode(), "application/json"


def glance(e: errors.ApiError) -> tuple[bytes, str]:
    title = f"{e.status} {e.title}"
    html = (f"<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n"
            f"  {escape(e.message, quote=False)}<br /><br />\n\n\n\n </body>\n</html>")
    return html.encode(), "text/html"
