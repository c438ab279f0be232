"""Small parsers every Cinder family shares: Cinder's boolean and size rules, a driver
failure's one-line reason, the per-GB QoS expansion Nova receives."""
from lab.openstack import errors
from lab.openstack.cinder.backends import BackendError
from lab.openstack.microversion import Microversion


def _mv(text: str) -> Microversion:
    return Microversion.parse(text)


UNKNOWN_ERROR = "An unknown error occurred."


def _reason(e: Exception, log=None) -> str:
    """A worker failure's one-line reason: a driver's own (BackendError: secret-free, the
    backend's words); anything else is a lab bug, whose traceback goes to `log` while the
    record gets Cinder's generic text, never Python's."""
    if isinstance(e, BackendError) and str(e).strip():
        return str(e).strip().splitlines()[0][:300]
    if log is not None:
        log.error("unexpected failure in the volume manager", exc_info=e)
    return UNKNOWN_ERROR


def _boolish(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no",
                                                    "on", "off", "t", "f", "y", "n"):
        return value.lower() in ("true", "1", "yes", "on", "t", "y")
    raise errors.BadRequest(f"Invalid input received: {name} must be a boolean, got {value!r}",
                            kind="InvalidInput")


def _positive_int(value) -> int:
    try:
        n = int(value) if not isinstance(value, bool) and str(value).strip().lstrip("-").isdigit() \
            else None
    except (TypeError, ValueError):
        n = None
    if n is None or n <= 0:
        raise errors.BadRequest(f"Invalid input received: Volume size '{value}' must be an "
                                "integer and greater than 0", kind="InvalidInput")
    return n


def _expand_per_gb(specs: dict, size_gib: int) -> dict:
    """Front-end QoS as Nova receives it: *_per_gb keys multiplied out by the size."""
    out = {}
    for k, v in specs.items():
        if k.endswith("_per_gb"):
            try:
                out[k[:-len("_per_gb")]] = str(int(float(v) * size_gib))
            except ValueError:
                continue
        else:
            out[k] = v
    return out
