"""dfs_sdk 1.2.27, unmodified, made importable on Python >= 3.10: the one copy of the shim.

dfs_sdk's base.py subclasses `collections.Mapping`, an alias removed in Python 3.10, so the
aliases are restored before the SDK is imported (reference datera-api §0.1). Import dfs_sdk
through this module (`from clients.dfs_compat import dfs_sdk, dexc`), never directly.

`safe_options()` gives the keyword arguments every consumer passes to `dfs_sdk.get_api`,
because the SDK's defaults are unsafe for a test harness (reference datera-api §0.4, §0.11,
§0.12): its log files hold Auth-Token values, its schema cache is global and sticky, and it
retries a dead endpoint for five minutes.

Whoever turns the SDK's retries on (its defaults, `retry_503_type`/`retry_connection_type`
"backoff" or "random") gets them bounded and visible here: see `set_retry_window`.
"""
import collections
import collections.abc
import contextlib
import contextvars
import functools
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable", "Callable"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import dfs_sdk  # noqa: E402  (after the shim, on purpose)
from dfs_sdk import constants as _constants  # noqa: E402
from dfs_sdk import connection as _connection  # noqa: E402
from dfs_sdk import exceptions as dexc  # noqa: E402

from clients import ports, scratch  # noqa: E402

if (_constants.REST_PORT, _constants.REST_PORT_HTTPS) != (ports.DATERA_HTTP, ports.DATERA_HTTPS):
    raise ImportError(f"dfs_sdk dials {_constants.REST_PORT}/{_constants.REST_PORT_HTTPS}, "
                      f"clients/ports.py says {ports.DATERA_HTTP}/{ports.DATERA_HTTPS}")

__all__ = ["dfs_sdk", "dexc", "error_summary", "is_transient", "request_timeout", "retry_log",
           "schema_file", "safe_options",
           "set_request_timeout", "set_retry_window"]

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


_schema_dirs: dict[str, Path] = {}


def schema_file(owner: str, tag: str | int | None = None) -> str:
    """A private schema cache path, `<tmp>/vancouver-schema-<owner>-<pid>-*/schema-<tag>.json`
    (tag defaults to the pid): dfs_sdk's default cache is shared by every process and keyed
    only by API version (reference datera-api §0.4). The directory (mode 0700) is this
    process's scratch dir (clients/scratch.py): removed at exit, or by the next process of its
    kind when this one was killed. The per-uid folder of earlier versions, which kept a file
    per process forever (thousands on a booth machine), loses its dead processes' files."""
    folder = _schema_dirs.get(owner)
    if folder is None or not folder.is_dir():
        _sweep_legacy(Path(tempfile.gettempdir()) / f"vancouver-{owner}-{os.getuid()}")
        folder = _schema_dirs[owner] = scratch.make_dir(f"schema-{owner}")
    return str(folder / f"schema-{os.getpid() if tag is None else tag}.json")


def _sweep_legacy(folder: Path) -> None:
    """Removes `schema-<pid>.json` files of processes that are gone, then the folder if empty."""
    try:
        files = list(folder.glob("schema-*.json"))
    except OSError:
        return
    for f in files:
        pid = f.stem.removeprefix("schema-")
        if pid.isdigit() and not scratch.pid_alive(int(pid)):
            f.unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:   # missing, or still holds files of live processes
        pass


# ---- errors: what may be said about one, and whether it passes --------------------------------
# dfs_sdk's str(e) is "[REQUEST]: <method> <path>\n<request body>\n[RESPONSE]:\n...<status>
# <reason>": the body holds the login password or a CHAP secret, so no consumer may print,
# log or re-raise it. error_summary keeps the method, path, status and the server's message.
def _status(e: BaseException) -> int | None:
    """The HTTP status of a dfs_sdk response error: its JSON `http`, or the last line of its
    text ("503 Service Unavailable"); None when there was no response."""
    http = getattr(e, "http", None)
    if isinstance(http, int):
        return http
    text = e.args[0] if e.args and isinstance(e.args[0], str) else ""
    head = text.rsplit("\n", 1)[-1].split(" ", 1)[0]
    return int(head) if head.isdigit() else None


def is_transient(e: BaseException) -> bool:
    """A failure worth retrying: HTTP 5xx, no connection or no answer (a timeout, a reset, an
    unreadable body)."""
    if isinstance(e, (dexc.ApiConnectionError, _requests.RequestException)):
        return True
    status = _status(e) if isinstance(e, dexc.ApiError) else None
    return status is not None and status >= 500


def error_summary(e: BaseException) -> str:
    """One secret-free line (at most 300 characters) for a dfs_sdk or requests error:
    `Api503RetryError: PUT login HTTP 503 <server message>`, `ApiConnectionError: no
    connection (connection refused)`, or dfs_compat's own give-up line."""
    text = e.args[0] if e.args and isinstance(e.args[0], str) else ""
    if isinstance(e, dexc.ApiTimeoutError) and text.startswith("dfs_sdk:"):
        detail = text   # _bounded's line: method, path, host, attempts, last status
    elif isinstance(e, dexc.ApiConnectionError):
        detail = _why(e)
    elif isinstance(e, _requests.RequestException):
        detail = "no readable answer"
    else:
        where = text.split("\n", 1)[0].removeprefix("[REQUEST]: ") \
            if text.startswith("[REQUEST]: ") else ""
        status = _status(e) if isinstance(e, dexc.ApiError) else None
        server = getattr(e, "message", None)
        detail = " ".join(x for x in (where, f"HTTP {status}" if status else "",
                                      server if isinstance(server, str) else "") if x)
    return f"{type(e).__name__}: {detail or 'no detail'}"[:300]


def safe_options(schema_loc: str, retry_503_type: str | None = None) -> dict:
    """get_api() keyword arguments: no SDK log files, a private schema cache, fail fast on a
    dead endpoint, on a 503 too unless retry_503_type ("backoff" or "random", the SDK's
    own; bounded by set_retry_window) says otherwise, and a thread_local of this API
    object's own. The real Datera Cinder driver calls get_api without retry arguments, so
    it retries 503 with the SDK's "backoff": clients that act as the driver does (the demo's
    own sessions, the lab's Cinder) pass retry_503_type="backoff"; the lab's tests that must
    see every 503 leave it None."""
    return dict(disable_log=True, schema_loc=schema_loc, retry_connection_type=None,
                retry_503_type=retry_503_type, thread_local=threading.local())


# ---- retries: bounded, and one line per retried call ------------------------------------------
# dfs_sdk 1.2.27 (connection.py `_with_retry`, around login and every request) retries a call
# that got HTTP 503 (retry_503_type) or no connection (retry_connection_type), sleeping 1 s,
# 2 s, 3 s, ... ("backoff") or 0-10 s ("random") for as long as constants.RETRY_TIMEOUT =
# 300 s, and says so only on its own logger, per attempt (NullHandler, or its log files): a
# 503 storm held calls for tens of seconds with no line anywhere, and a client waiting out
# 5 minutes hides an outage from the run's classifier (fixtures/outage). Here the SDK's own
# retry loop stays, bounded by RETRY_WINDOW_S (it starts no attempt after the window), and
# each retried call logs ONE warning on `retry_log`: method, path, host and why (status or
# connection error; never a body: the SDK's error text carries login passwords). A call that
# still fails raises the SDK's ApiTimeoutError with a secret-free message.
RETRY_WINDOW_S = 10.0
retry_log = logging.getLogger("clients.dfs_compat.retry")
_retry_call: contextvars.ContextVar = contextvars.ContextVar("dfs_retry_call", default=None)
_SDK_RETRY_LINES = ("Hit 503 Retry", "Hit Connection Error")


def set_retry_window(seconds: float) -> None:
    """No retry attempt of any dfs_sdk call starts later than `seconds` after the call."""
    _connection.RETRY_TIMEOUT = seconds


def _why(e: BaseException) -> str:
    if isinstance(e, dexc.Api503RetryError):   # the SDK's message ends "<status> <reason>"
        return "HTTP " + str(e.args[0] if e.args else "503").rsplit("\n", 1)[-1]
    inner = e.args[0] if e.args and isinstance(e.args[0], BaseException) else e
    while inner is not None and not isinstance(inner, OSError):
        inner = inner.__cause__ or inner.__context__ or getattr(inner, "reason", None)
    return "no connection" + (f" ({inner.strerror.lower()})"
                               if isinstance(inner, OSError) and inner.strerror else "")


def _observed(attempt, what):
    """One attempt of a retried call: on its first retryable failure, the call's one line."""
    @functools.wraps(attempt)
    def run(self, *args, **kwargs):
        try:
            return attempt(self, *args, **kwargs)
        except (dexc.Api503RetryError, dexc.ApiConnectionError) as e:
            call = _retry_call.get()
            # by isinstance: ApiTimeoutError (a request's own timeout, or a nested login's
            # give-up) is an ApiConnectionError too, and once raised KeyError here
            retry = getattr(self._context, "retry_503_type" if isinstance(
                e, dexc.Api503RetryError) else "retry_connection_type", None)
            if call is not None and retry and not getattr(e, "_vancouver_said", False):
                call["last"], call["attempts"] = _why(e), call["attempts"] + 1
                if call["attempts"] == 1:
                    retry_log.warning(
                        "dfs_sdk: %s at %s: %s; retrying (%s) for up to %.0f s",
                        what(args), self._hostname, call["last"], retry,
                        _connection.RETRY_TIMEOUT)
            e._vancouver_said = True   # an outer call (a request around its login) is quiet
            raise
    return run


def _bounded(retrying, what):
    """A call of the SDK's retry wrapper: its own retry record; a give-up without secrets."""
    @functools.wraps(retrying)
    def call(self, *args, **kwargs):
        token = _retry_call.set({"attempts": 0, "last": None, "t0": time.monotonic()})
        try:
            return retrying(self, *args, **kwargs)
        except dexc.ApiTimeoutError as e:
            record = _retry_call.get()
            if not record["attempts"] or not str(e.args[0] if e.args else "").startswith(
                    "Request never succeeded"):
                raise   # a request's own timeout, not the end of the retry window
            raise dexc.ApiTimeoutError(
                f"dfs_sdk: {what(args)} at {self._hostname}: no success in "
                f"{time.monotonic() - record['t0']:.1f} s ({record['attempts']} attempts), "
                f"last: {record['last']}", "") from None
        finally:
            _retry_call.reset(token)
    return call


class _QuietSdkRetries(logging.Filter):
    """The SDK's per-attempt lines: the call's one line above replaces them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_SDK_RETRY_LINES)


def _request(args: tuple) -> str:
    """`GET app_instances` from _do_auth_request(method, urlpath, ...)."""
    method, path = (list(args) + ["?", "?"])[:2]
    return f"{str(method).upper()} {str(path).strip('/')}"


def _install_bounded_retries() -> None:
    api = _connection.ApiConnection
    if getattr(api, "_vancouver_bounded", False):   # a reload of this module: done already
        return
    # _do_stream_request, the SDK's third retried method, is a generator: its wrapper only
    # creates it, so there is nothing to retry (or bound) there.
    for name, what in (("login", lambda args: "login"), ("_do_auth_request", _request)):
        sdk_retrying = getattr(api, name)
        attempt = getattr(sdk_retrying, "__wrapped__", None)
        if attempt is None:
            raise ImportError(f"dfs_sdk's ApiConnection.{name} is no longer wrapped by "
                              "_with_retry: clients/dfs_compat.py needs a look")
        setattr(api, name, _bounded(_connection._with_retry(_observed(attempt, what)), what))
    _connection.LOG.addFilter(_QuietSdkRetries())
    api._vancouver_bounded = True
    set_retry_window(RETRY_WINDOW_S)


_install_bounded_retries()
