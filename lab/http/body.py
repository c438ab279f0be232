"""Request bodies as JSON: the one decoder the lab's APIs (and the initiator login) share.

`json.loads` fails in two ways for a client's bytes: ValueError for malformed text and invalid
UTF-8, but RecursionError for deeply nested arrays or objects (CPython's decoder recurses once
per level), which handlers that catch ValueError let through as a 500. `loads` turns both into
BodyError, a ValueError with a one-line reason, so each API answers its own 400.
"""
import json


class BodyError(ValueError):
    """The body is not JSON; str(e) says why in one line (never echoing the body)."""


def loads(raw: bytes | str):
    """The JSON value of `raw`; raises BodyError."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise BodyError("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise BodyError("not UTF-8") from None
    except ValueError as e:
        raise BodyError(str(e).split(":")[0]) from None
