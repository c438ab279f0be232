"""Secrets: the registry of secret values and the one set of masking functions.

A value is secret for one of two reasons, never because of a word in free text:
- it was registered (`register_secret(value)`, or wrapped as `Secret(value)`, which registers
  it): it becomes `***` wherever it appears, in any string, in every form it takes once written
  into JSON or HTML;
- it sits in a typed secret field: an event field declared with `secret_field()`, or a record
  key that is a field name (an identifier such as `password`, `api_key`, `chap_secret`, no
  spaces) whose last word names a secret; in captured text (logs, output, tracebacks) such
  a field written as `name=value` or `'name': 'value'`. Step names, figure names, chart
  titles and table titles are free text: a word in them never masks anything.

Registered values travel from the controller to workers (before they start) through
`workerinput`; a value a worker registers is masked in that worker, which masks every event
and report before it leaves the process.
"""
from __future__ import annotations

import html
import json
import logging
import re
import threading
from typing import Any, Mapping

MASK = "***"

_secrets: set[str] = set()
_secret_re: re.Pattern | None = None
_lock = threading.Lock()

# The last word of a field name that holds a secret (`password`, `chap_secret`, `api_key`).
_SECRET_WORDS = {"password", "passwd", "pass", "pswd", "pwd", "secret", "token", "credential",
                 "credentials", "apikey", "passphrase"}
_SECRET_PAIRS = {("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key")}
_FIELD_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[_.\-][A-Za-z0-9]+)*\Z")


def register_secret(value: Any) -> None:
    """Mask `value` in everything this process writes from now on (values under 3 characters
    are ignored: masking them would shred every report without protecting anything)."""
    global _secret_re
    if value is None:
        return
    text = str(value)
    if len(text.strip()) < 3:
        return
    with _lock:
        if text in _secrets:
            return
        _secrets.add(text)
        # Also the forms a value takes once written into JSON or HTML.
        variants = set()
        for s in _secrets:
            variants |= {s, json.dumps(s)[1:-1], html.escape(s), html.escape(json.dumps(s)[1:-1])}
        _secret_re = re.compile("|".join(re.escape(v) for v in sorted(variants, key=len,
                                                                      reverse=True)))


def registered_secrets() -> list[str]:
    return sorted(_secrets)


class Secret(str):
    """A string typed as secret: registered on creation, masked wherever it is written.
    Use it for a value that must be shown as present but never read (`Secret(chap_secret)`)."""

    def __new__(cls, value: Any) -> "Secret":
        register_secret(value)
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return repr(MASK)


def is_secret_field(name: Any) -> bool:
    """True for a field name (identifier-like, no spaces) whose last word names a secret:
    `password`, `chap_secret`, `api_key`, `X-Auth-Token`; False for free text such as
    "CHAP: the wrong secret is refused" or "token refresh s"."""
    if not isinstance(name, str) or not _FIELD_NAME_RE.match(name):
        return False
    words = re.split(r"[_.\-]", name.lower())
    return words[-1] in _SECRET_WORDS or tuple(words[-2:]) in _SECRET_PAIRS


def mask_values(text: str) -> str:
    """Replace every registered secret in `text` (also their JSON- and HTML-escaped forms,
    and the piece of one that a truncated repr leaves beside its "...")."""
    pattern = _secret_re
    if pattern is None or not text:
        return text
    text = pattern.sub(MASK, text)
    return _mask_truncated(text) if "..." in text else text


def _mask_truncated(text: str) -> str:
    """pytest's saferepr cuts a long repr in the middle: `repr[:i] + "..." + repr[-j:]`, so a
    traceback's locals can show the first or last characters of a secret beside the "..."
    (a CI log showed 8 characters of a tenant user's password). Masks every such piece of 3
    characters or more."""
    with _lock:
        secrets = tuple(_secrets)

    def piece(before: str, after: str) -> tuple[int, int]:
        """Lengths of the longest secret's end closing `before` and start opening `after`."""
        head = max((k for s in secrets for k in range(3, len(s) + 1)
                    if before.endswith(s[:k])), default=0)
        tail = max((k for s in secrets for k in range(3, len(s) + 1)
                    if after.startswith(s[-k:])), default=0)
        return head, tail
    parts = text.split("...")
    out = parts[0]
    for nxt in parts[1:]:
        head, tail = piece(out, nxt)
        out = (out[:len(out) - head] + MASK if head else out) + "..." + \
            (MASK + nxt[tail:] if tail else nxt)
    return out


# A field written out in captured text: `password=x`, `'token': 'x'`, `"api_key": "x"`.
_FIELD_IN_TEXT_RE = re.compile(
    r"""(?<![\w.\-])([A-Za-z][\w.\-]*)(['"]?\s*[:=]\s*['"]?)([^'"\s,;})\]]+)""")


# `token: str` in a traceback's source line is a type annotation, not a value: an unquoted
# `name: <type>` whose type is one of these names (alone, or before `[`, `|`, `,`, `)` or the
# line's end) is left as it is. A secret spelled exactly like a type name is no secret; one
# that is registered is masked by value anyway.
_TYPE_NAMES = frozenset({
    "str", "bytes", "bytearray", "int", "float", "complex", "bool", "dict", "list", "tuple",
    "set", "frozenset", "object", "type", "None", "Any", "Optional", "Union", "Callable",
    "Mapping", "MutableMapping", "Sequence", "Iterable", "Iterator", "Literal", "Secret",
    "SecretStr", "Path", "PathLike"})
_DEFAULT_RE = re.compile(r"""(\s*=\s*['"]?)([^'"\s,;})\]]+)""")
_ANNOTATION_END_RE = re.compile(r"\s*(?:[\[|,)]|=|$)", re.M)


def _is_annotation(m: re.Match) -> bool:
    value = m.group(3)
    if m.group(2) != ": ":
        return False
    if value in _TYPE_NAMES:   # `token: str`, `token: str | None`, `token: str = ""`
        return bool(_ANNOTATION_END_RE.match(m.string, m.end(3)))
    # `api_key: Optional[str]`, `dict[str, str]`: every name up to the value's end is a type
    names = value.split("[")
    return len(names) > 1 and all(n in _TYPE_NAMES or not n for n in names) and bool(names[0])


def mask_text(text: str) -> str:
    """For captured text (logs, output, tracebacks): registered secrets, and the values of
    secret fields written out as `name=value`, `name: value` or `'name': 'value'` (e.g. a
    dict in a traceback's locals), where name is a field name by `is_secret_field`; a type
    annotation (`token: str`) is no value and stays. Not for event fields: there a name is
    free text, so only registered values are masked."""
    if not text:
        return text
    text = mask_values(text)
    out, done, at = [], 0, 0
    while (m := _FIELD_IN_TEXT_RE.search(text, at)) is not None:
        if not is_secret_field(m.group(1)):   # its value may hold a field: `KeyError: 'password=x'`
            at = m.start(3)
        elif not _is_annotation(m):
            out += [text[done:m.start(3)], MASK]
            done = at = m.end(3)
        else:   # `password: str = "default"`: past the type; a default value is masked
            at = m.end(3)
            d = _DEFAULT_RE.match(text, at)
            if d and d.group(2) not in ("None", "''", '""'):
                out += [text[done:d.start(2)], MASK]
                done = at = d.end(2)
    return "".join(out) + text[done:]


def mask(value: Any, records: bool = True) -> Any:
    """Mask a value of any shape: registered secrets in every string, `Secret` values, and,
    with `records`, the values of secret fields of mappings (records such as table rows and
    JSON bodies), recursively. With records=False the keys of mappings are free text (series
    labels, limit names) and mask nothing."""
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, str):
        return mask_values(value)
    if isinstance(value, Mapping):
        return {mask(k): (MASK if records and is_secret_field(k) and v not in (None, "")
                          else mask(v, records)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if hasattr(value, "_fields"):
            return type(value)(*(mask(v, records) for v in value))
        return type(value)(mask(v, records) for v in value)
    return value


def _mask_extra(extra: dict) -> dict:
    fmt, content = extra.get("format_type"), extra.get("content")
    if fmt == "json":
        extra["content"] = mask(content)
    elif isinstance(content, str) and fmt == "html":
        extra["content"] = mask_values(content)
    elif isinstance(content, str) and fmt in ("text", "url"):
        extra["content"] = mask_text(content)
    if isinstance(extra.get("name"), str):
        extra["name"] = mask_values(extra["name"])
    return extra


def mask_report(report) -> None:
    """Mask what pytest itself puts in a test report (captured output and logs, the failure
    text, user properties, extras added by tests) in place, before anything serializes,
    prints or renders it. Run events are masked on the stream, not here."""
    if getattr(report, "extras", None):
        report.extras = [_mask_extra(e) for e in report.extras]
    if getattr(report, "user_properties", None):
        report.user_properties = mask(report.user_properties)
    if report.sections:
        report.sections = [(h, mask_text(c)) for h, c in report.sections]
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        text = str(report.longrepr)
        masked = mask_text(text)
        if masked != text:
            report.longrepr = masked


_log_factory_installed = False


def install_log_masking() -> None:
    """Mask every log record of this process as it is made (registered secrets and secret
    fields in its text), so live logging, --log-file and captured logs never see a secret.
    Idempotent."""
    global _log_factory_installed
    if _log_factory_installed:
        return
    _log_factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:
            return record  # logging reports the bad format itself
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return record
    logging.setLogRecordFactory(factory)
