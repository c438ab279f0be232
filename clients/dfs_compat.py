"""dfs_sdk 1.2.27, unmodified, made importable on Python >= 3.10: the one copy of the shim.

dfs_sdk's base.py subclasses `collections.Mapping`, an alias removed in Python 3.10, so the
aliases are restored before the SDK is imported (reference datera-api §0.1). Import dfs_sdk
through this module (`from clients.dfs_compat import dfs_sdk, dexc`), never directly.

`safe_options()` gives the keyword arguments every consumer passes to `dfs_sdk.get_api`,
because the SDK's defaults are unsafe for a test harness (reference datera-api §0.4, §0.11,
§0.12): its log files hold Auth-Token values, its schema cache is global and sticky, and it
retries a dead endpoint for five minutes.
"""
import collections
import collections.abc
import contextlib
import contextvars
import functools
import os
import tempfile
import threading
from pathlib import Path

for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable", "Callable"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import dfs_sdk  # noqa: E402  (after the shim, on purpose)
from dfs_sdk import constants as _constants  # noqa: E402
from dfs_sdk import connection as _connection  # noqa: E402
from dfs_sdk import exceptions as dexc  # noqa: E402

from clients import ports  # noqa: E402

if (_constants.REST_PORT, _constants.REST_PORT_HTTPS) != (ports.DATERA_HTTP, ports.DATERA_HTTPS):
    raise ImportError(f"dfs_sdk dials {_constants.REST_PORT}/{_constants.REST_PORT_HTTPS}, "
                      f"clients/ports.py says {ports.DATERA_HTTP}/{ports.DATERA_HTTPS}")

__all__ = ["dfs_sdk", "dexc", "request_timeout", "schema_file", "safe_options",
           "set_request_timeout"]

# dfs_sdk stores get_api(timeout=...) and never uses it: every request is
# `requests.<method>(url, ...)` without a timeout (connection.py, _http_connect_request), so a
# cluster that accepts connections but does not answer holds the caller forever. The SDK's
# `requests` is given a timeout here: None (the SDK's behaviour) until a process sets one.
_default_timeout: float | None = None
_timeout_override: contextvars.ContextVar = contextvars.ContextVar("dfs_timeout", default=None)


class _RequestsWithTimeout:
    """The `requests` module as dfs_sdk's connection module sees it: the HTTP verbs get the
    current timeout unless the call names one; everything else is requests' own."""

    _VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})

    def __getattr__(self, name):
        attr = getattr(_requests, name)
        if name not in self._VERBS:
            return attr

        @functools.wraps(attr)
        def call(*args, **kwargs):
            timeout = _timeout_override.get() or _default_timeout
            if timeout is not None:
                kwargs.setdefault("timeout", timeout)
            return attr(*args, **kwargs)
        return call


_requests = _connection.requests
_connection.requests = _RequestsWithTimeout()


def set_request_timeout(seconds: float | None) -> None:
    """Every dfs_sdk request of this process times out after `seconds` (None: never)."""
    global _default_timeout
    _default_timeout = seconds


@contextlib.contextmanager
def request_timeout(seconds: float):
    """dfs_sdk requests made inside (this thread/context) time out after `seconds`."""
    token = _timeout_override.set(seconds)
    try:
        yield
    finally:
        _timeout_override.reset(token)


def schema_file(owner: str, tag: str | int | None = None) -> str:
    """A private schema cache path, `<tmp>/vancouver-<owner>-<uid>/schema-<tag>.json`
    (tag defaults to the pid): dfs_sdk's default cache is shared by every process and keyed
    only by API version (reference datera-api §0.4). The directory is created mode 0700."""
    folder = Path(tempfile.gettempdir()) / f"vancouver-{owner}-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return str(folder / f"schema-{os.getpid() if tag is None else tag}.json")


def safe_options(schema_loc: str, retry_503: bool = False) -> dict:
    """get_api() keyword arguments: no SDK log files, a private schema cache, fail fast on a
    dead endpoint (no connection retries: an unreachable cluster is an outage the caller
    handles), and a thread_local of this API object's own.

    retry_503: keep dfs_sdk's own default for HTTP 503 ("backoff": sleep 1 s, 2 s, 3 s, ...
    and send again, for up to 300 s; dfs_sdk connection.py _with_retry). The real Datera
    Cinder driver calls get_api without retry arguments, so it retries 503 that way; a
    client that must see every 503 (the lab's own tests) leaves it False."""
    return dict(disable_log=True, schema_loc=schema_loc, retry_connection_type=None,
                retry_503_type="backoff" if retry_503 else None,
                thread_local=threading.local())
