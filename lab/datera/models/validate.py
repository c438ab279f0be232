"""Field checks shared by every object: one clear InvalidRequest per bad value.

Patterns and ranges are the real v2.1 schema's (reference datera-api §2).
"""
import re

from .errors import InvalidRequest

NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_\-.]{2,63}$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# iSCSI initiator names: iqn., eui. or naa. forms.
INITIATOR_RE = re.compile(r"^(iqn\.\d{4}-\d{2}\.[^\s/]{1,220}|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$")


def only(body: dict, allowed, where: str) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest(f"{where}: expected a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidRequest(f"{where}: unknown field '{unknown[0]}'")


def name(value, field: str = "name", *, allow_uuid: bool = False) -> str:
    if isinstance(value, str) and (NAME_RE.match(value) or (allow_uuid and UUID_RE.match(value))):
        return value
    raise InvalidRequest(f"{field}: {value!r} is not a valid name "
                         "(3-64 characters: letters, digits, _ - ., starting with a letter or _)")


def text(value, field: str, *, lo: int = 0, hi: int = 128, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if isinstance(value, str) and lo <= len(value) <= hi:
        return value
    raise InvalidRequest(f"{field}: expected a string of {lo}-{hi} characters")


def integer(value, field: str, lo: int, hi: int) -> int:
    # bool is an int in Python; JSON true is not a size.
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidRequest(f"{field}: expected an integer in {lo}..{hi}, got {value!r}")
    return value


def boolean(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    raise InvalidRequest(f"{field}: expected true or false, got {value!r}")


def choice(value, field: str, options) -> str:
    if value in options:
        return value
    raise InvalidRequest(f"{field}: {value!r} is not one of {', '.join(options)}")


def ref_path(value, field: str, prefix: str | None = None) -> str:
    """A reference object {"path": "..."}; returns the path."""
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        raise InvalidRequest(f"{field}: expected {{\"path\": ...}}")
    only(value, ("path", "tenant", "resolved_path", "resolved_tenant", "id", "name"), field)
    path = value["path"]
    if prefix and not path.startswith(prefix):
        raise InvalidRequest(f"{field}: path must start with {prefix}")
    return path


def ref_list(value, field: str, prefix: str | None = None) -> list[str]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{field}: expected a list of {{\"path\": ...}}")
    return [ref_path(v, f"{field}[{i}]", prefix) for i, v in enumerate(value)]


def link_op(body: dict, where: str, prefix: str) -> tuple[str, str]:
    """The body of a link endpoint PUT: {"op": "add"|"remove", "path": ...}."""
    only(body, ("op", "path", "force"), where)
    op = choice(body.get("op"), "op", ("add", "remove"))
    path = body.get("path")
    if not isinstance(path, str) or not path.startswith(prefix):
        raise InvalidRequest(f"path: expected a path starting with {prefix}")
    return op, path
