"""Keystone v3 request-body rules for names and flags, as keystone 12.0.0 (Pike) checks them.

Sources: keystone/identity/schema.py (user and group names: a non-blank string, no length cap
in the schema), keystone/resource/schema.py (project and domain names: 1..64),
keystone/assignment/schema.py + common/validation/parameter_types.py (role names: 1..255),
and the SQL columns behind user names (local_user.name String(255)) and group names
(group.name String(64)), which keystone/common/sql/core.py turns into a 400
StringLengthExceeded. Messages are jsonschema's, prefixed as keystone/common/validation/
validators.py does ("Invalid input for field 'name': ...").
"""
import re

from ..errors import BadRequest

NON_BLANK = re.compile(r"[\S]+")

# kind -> (schema maxLength or None, SQL column length or None)
NAME_LIMITS = {
    "user": (None, 255),
    "group": (None, 64),
    "project": (64, 64),
    "domain": (64, 64),
    "role": (255, 255),
}


def name(value, kind: str, *, required: bool = True) -> str | None:
    """The valid name of a `kind` entity, or BadRequest naming the rule it breaks."""
    if value is None and not required:
        return None
    if value is None:
        raise _invalid("'name' is a required property")
    if not isinstance(value, str):
        raise _invalid(f"{value!r} is not of type 'string'", "name")
    schema_max, column = NAME_LIMITS[kind]
    if not value:
        raise _invalid(f"{value!r} is too short", "name")
    if schema_max is not None and len(value) > schema_max:
        raise _invalid(f"{value!r} is too long", "name")
    if not NON_BLANK.search(value):
        raise _invalid(f"{value!r} does not match '[\\\\S]+'", "name")
    if column is not None and len(value) > column:
        raise BadRequest(f"String length exceeded. The length of string '{value}' exceeds the "
                         f"limit of column name(CHAR({column})).", kind="StringLengthExceeded")
    return value


def boolean(body: dict, key: str) -> None:
    """parameter_types.boolean: only JSON true/false."""
    if key in body and not isinstance(body[key], bool):
        raise _invalid(f"{body[key]!r} is not of type 'boolean'", key)


def non_empty(body: dict) -> None:
    """Update schemas: minProperties 1."""
    if not body:
        raise _invalid("{} does not have enough properties")


def _invalid(message: str, field: str | None = None) -> BadRequest:
    detail = f"Invalid input for field '{field}': {message}" if field else message
    return BadRequest(detail, kind="ValidationError")
