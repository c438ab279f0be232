"""The API's failures, as the model raises them.

The model knows nothing of HTTP, but the Datera API's errors are part of its behaviour
(consumers branch on `name` and `code`, reference datera-api §1.8), so each failure carries
the status, name and internal code the REST layer puts on the wire.
"""

# Internal error codes. Only 15 (duplicate snapshot uuid, read by CSI) and 99 (unknown API
# version, probed by old Cinder) are evidenced; the others are the lab's own, one per kind.
CODE_INVALID = 11
CODE_NOT_FOUND = 12
CODE_CONFLICT = 13
CODE_AUTH = 14
CODE_DUPLICATE_SNAPSHOT = 15
CODE_PERMISSION = 16
CODE_METHOD = 17
CODE_INTERNAL = 18
CODE_UNKNOWN_VERSION = 99

SESSION_EXPIRED = "The key provided with the request does not correspond to a valid session."


class ApiFailure(Exception):
    http = 500
    name = "InternalError"
    code = CODE_INTERNAL

    def __init__(self, message: str, *, code: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequest(ApiFailure):
    http, name, code = 400, "InvalidRequestError", CODE_INVALID


class AuthFailed(ApiFailure):
    http, name, code = 401, "AuthFailedError", CODE_AUTH


class PermissionDenied(ApiFailure):
    http, name, code = 403, "PermissionDeniedError", CODE_PERMISSION


class NotFound(ApiFailure):
    """`path=None` means "the path the request named": the REST layer fills it in, so a
    foreign tenant's object and a missing one give the very same answer."""
    http, name, code = 404, "NotFoundError", CODE_NOT_FOUND

    def __init__(self, path: str | None = None):
        super().__init__(f"No data at {path}" if path else "No data at")
        self.path = path


class MethodNotAllowed(ApiFailure):
    http, name, code = 405, "MethodNotAllowedError", CODE_METHOD


class Conflict(ApiFailure):
    http, name, code = 409, "ConflictError", CODE_CONFLICT
