"""Run by the Tempest venv's python with neutron-lib (Pike's 1.9.1): checks Neutron bodies
against neutron-lib's API definitions.

stdin: {"extensions": {alias: {collection: [attributes]}},   the extensions the cloud lists
        "items": [{"label", "collection": "networks", "body": {...}, "admin": bool}]}
stdout: JSON list of {"label", "error"}:
- an attribute that no definition of the core resource or of a listed extension names;
- a visible core attribute (is_visible) that is missing;
- a value its definition's validator refuses (neutron_lib.api.validators), or a non-string
  id/tenant_id.
"""
import json
import sys

from neutron_lib.api import definitions, validators

CORE = {"networks": definitions.network, "subnets": definitions.subnet,
        "ports": definitions.port}


def check(item: dict, extensions: dict) -> list[str]:
    coll, body = item["collection"], item["body"]
    core = CORE[coll].RESOURCE_ATTRIBUTE_MAP[coll]
    known = dict(core)
    by_alias = {d.ALIAS: d for d in definitions._ALL_API_DEFINITIONS}
    for alias, attrs in extensions.items():
        d = by_alias.get(alias)
        ram = getattr(d, "RESOURCE_ATTRIBUTE_MAP", {}).get(coll, {}) if d else {}
        for name in attrs.get(coll, ()):
            known[name] = ram.get(name, {"is_visible": True})
    errors = [f"{k!r} is not an attribute of {coll} or of a listed extension"
              for k in body if k not in known]
    errors += [f"visible core attribute {k!r} is missing" for k, spec in core.items()
               if spec.get("is_visible") and k not in body]
    for key, spec in known.items():
        if body.get(key) is None:   # unset (ipv6_ra_mode, gateway_ip, ...): nothing to check
            continue
        for rule, arg in (spec.get("validate") or {}).items():
            fn = validators.get_validator(rule)
            if fn is None:
                continue
            msg = fn(body[key], arg) if arg is not None else fn(body[key])
            if msg:
                errors.append(f"{key}: {msg}")
    return errors


def main() -> None:
    doc = json.load(sys.stdin)
    out = []
    for item in doc["items"]:
        for e in check(item, doc["extensions"]):
            out.append({"label": item["label"], "error": e})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
