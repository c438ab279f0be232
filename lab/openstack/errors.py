"""Failures that models raise and the server (server.py) puts on the wire.

Models know nothing of HTTP, but an OpenStack API's status codes are part of its behaviour, so
each failure carries its status; `kind` is the exception class name the real service would
name (Neutron puts it in NeutronError.type; others ignore it). How the body looks is the
service's business: see faults.py.
"""


class ApiError(Exception):
    status = 500
    title = "Internal Server Error"
    kind = "InternalError"

    def __init__(self, message: str, *, kind: str | None = None):
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind


class BadRequest(ApiError):
    status, title, kind = 400, "Bad Request", "BadRequest"


class Unauthorized(ApiError):
    status, title, kind = 401, "Unauthorized", "Unauthorized"


class Forbidden(ApiError):
    status, title, kind = 403, "Forbidden", "Forbidden"


class NotFound(ApiError):
    status, title, kind = 404, "Not Found", "NotFound"


class MethodNotAllowed(ApiError):
    status, title, kind = 405, "Method Not Allowed", "MethodNotAllowed"


class NotAcceptable(ApiError):
    status, title, kind = 406, "Not Acceptable", "NotAcceptable"


class Conflict(ApiError):
    status, title, kind = 409, "Conflict", "Conflict"


class OverLimit(ApiError):
    status, title, kind = 413, "Request Entity Too Large", "OverQuota"


class UnsupportedMediaType(ApiError):
    status, title, kind = 415, "Unsupported Media Type", "UnsupportedMediaType"


class ServiceUnavailable(ApiError):
    status, title, kind = 503, "Service Unavailable", "ServiceUnavailable"


def policy_forbids(action: str) -> Forbidden:
    """What oslo.policy-guarded APIs answer when the token lacks the role."""
    return Forbidden(f"Policy doesn't allow {action} to be performed.", kind="PolicyNotAuthorized")
