"""Loading a lab service's config file into its pydantic model, with one-line errors.

Every lab service process reads one JSON config that lab/components.py wrote; its shape is a
pydantic v2 model with extra="forbid". A bad file is one line naming the file and the key
path ("<file>: compute_nodes[1].address: '10.0.0.1' is not in 127.0.0.0/8 (...)"), never a
traceback: lab/service_main.py prints it and exits 2.
"""
import ipaddress
import json
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A one-line reason a config cannot be used."""


class ConfigModel(BaseModel):
    """Base of every lab service config: unknown keys are errors; instances are frozen."""
    model_config = ConfigDict(extra="forbid", frozen=True)


def _loopback(value: str) -> str:
    try:
        ok = ipaddress.IPv4Address(value).is_loopback
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None
    if not ok:
        raise ValueError(f"{value} is not in 127.0.0.0/8 (the lab binds to loopback only)")
    return value


# An IPv4 address on the loopback network: everything the lab serves binds there.
LoopbackIP = Annotated[str, AfterValidator(_loopback)]


def key_path(loc: tuple) -> str:
    """('compute_nodes', 1, 'address') -> 'compute_nodes[1].address'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def one_line(e: ValidationError, prefix: tuple = ()) -> str:
    """The first error of a ValidationError as '<key path>: <reason>' (prefix: where the
    validated document sits in its file, e.g. ("services", "cinder"))."""
    err = e.errors()[0]
    where = key_path(prefix + tuple(err["loc"])) or "(top level)"
    kind = err["type"]
    if kind == "missing":
        return f"missing key '{where}'"
    if kind == "extra_forbidden":
        return f"unknown key '{where}'"
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"


def parse(doc, model: type[M], prefix: tuple = ()) -> M:
    """`doc` (a part of a loaded config, at `prefix`) as `model`. Raises ConfigError."""
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(one_line(e, prefix)) from None


def load(path, model: type[M]) -> M:
    """The file at `path` parsed into `model`. Raises ConfigError (one line, file named)."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except ValueError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(f"{path}: {one_line(e)}") from None


# A TCP port number.
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
