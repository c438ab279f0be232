"""Run by the Tempest venv's python: validates response bodies with Tempest's own schemas.

stdin: JSON list of {"label", "schema": "volume.volumes.create_volume", "status", "body"}
(schema = module path under tempest.lib.api_schema.response, then the schema's name), or
{"label", "json_schema": {...}, "body"}: a JSON schema a service serves itself (Glance's
/v2/schemas/image), checked with jsonschema's Draft 4 validator as Glance and glanceclient do;
or {"label", "compute": "keypairs_client.get_keypair", "microversion": "2.53", "status",
"body"}: the schema Tempest's compute service client picks for that microversion (its
schema_versions_info, through BaseComputeClient.get_schema), or the module its client
imports as `schema` when the client has one schema for every microversion.
stdout: JSON list of {"label", "error"} for each body Tempest would refuse, with the check
Tempest applies to every response (RestClient.validate_response: status code in the
schema's list, then jsonschema with Tempest's format checkers).
"""
import importlib
import json
import sys

from tempest.lib.common.rest_client import RestClient


class _Resp(dict):
    def __init__(self, status: int):
        super().__init__()
        self.status = status


def compute_schema(spec: str, microversion: str | None) -> dict:
    from tempest.lib.services.compute import base_compute_client as base
    client, _, name = spec.rpartition(".")
    module = importlib.import_module(f"tempest.lib.services.compute.{client}")
    infos = [c.schema_versions_info for c in vars(module).values()
             if isinstance(c, type) and "schema_versions_info" in vars(c)]
    if infos:
        saved = base.COMPUTE_MICROVERSION
        base.COMPUTE_MICROVERSION = microversion
        try:
            chosen = base.BaseComputeClient.get_schema(None, infos[0])
        finally:
            base.COMPUTE_MICROVERSION = saved
    else:
        chosen = module.schema
    return getattr(chosen, name)


def main() -> None:
    failures = []
    for item in json.load(sys.stdin):
        if "json_schema" in item:
            import jsonschema
            try:
                jsonschema.Draft4Validator(item["json_schema"]).validate(item["body"])
            except jsonschema.ValidationError as e:
                failures.append({"label": item["label"], "error": str(e)[:500]})
            continue
        if "compute" in item:
            schema = compute_schema(item["compute"], item.get("microversion"))
        else:
            module, _, name = item["schema"].rpartition(".")
            schema = getattr(importlib.import_module(
                f"tempest.lib.api_schema.response.{module}"), name)
        try:
            RestClient.validate_response(schema, _Resp(item["status"]), item["body"])
        except Exception as e:   # InvalidHTTPResponseBody, InvalidHttpSuccessCode, ...
            failures.append({"label": item["label"], "error": str(e)[:500]})
    json.dump(failures, sys.stdout)


if __name__ == "__main__":
    main()
