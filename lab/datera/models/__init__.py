"""The Datera lab's object model: state and rules, no HTTP (DESIGN §5, moto's models.py)."""
from .backend import DateraModel, ModelConfig
from .errors import (ApiFailure, AuthFailed, Conflict, InvalidRequest, MethodNotAllowed, NotFound,
                     PermissionDenied)
from .tenancy import ALL, ROOT, Caller

__all__ = ["DateraModel", "ModelConfig", "ApiFailure", "AuthFailed", "Conflict", "InvalidRequest",
           "MethodNotAllowed", "NotFound", "PermissionDenied", "ALL", "ROOT", "Caller"]
