"""Run by the Tempest venv's python: validates response bodies with Tempest's own schemas.

stdin: JSON list of {"label", "schema": "volume.volumes.create_volume", "status", "body"}
(schema = module path under tempest.lib.api_schema.response, then the schema's name), or
{"label", "json_schema": {...}, "body"}: a JSON schema a service serves itself (Glance's
/v2/schemas/image), checked with jsonschema's Draft 4 validator as Glance and glanceclient do.
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
