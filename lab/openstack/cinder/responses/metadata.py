"""Volume and snapshot metadata (GET/POST/PUT .../metadata, GET/PUT/DELETE .../metadata/{key}),
as Cinder's api/v2/volume_metadata.py and snapshot_metadata.py: POST merges, PUT replaces,
PUT of one key needs a body {"meta": {key: value}} naming that key; values are strings.

ETags (3.15, cinder/api/v3/volume_metadata.py, volumes only): GET .../metadata carries
`Etag: md5(json.dumps({"metadata": ...}))` (unquoted, as Cinder sets it); PUT .../metadata and
PUT .../metadata/{key} with `If-Match` naming another tag answer 412 with an empty body (the
lost-update guard). Without If-Match, or below 3.15, PUT never checks.
"""
import hashlib
import json

from ... import errors
from ...api import Reply, Rq, ok
from .helpers import _caller, _model

ETAGS = "3.15"


def _record(rq: Rq):
    model = _model(rq)
    if "snapshot_id" in rq.params:
        return model.get_snapshot(_caller(rq), rq.p("snapshot_id"))
    return model.get_volume(_caller(rq), rq.p("volume_id"))


def _check(meta) -> dict:
    if not isinstance(meta, dict):
        raise errors.BadRequest("Malformed request body: metadata must be an object")
    for key, value in meta.items():
        if not isinstance(key, str) or not key or len(key) > 255:
            raise errors.BadRequest("Invalid input received: metadata key must be 1-255 "
                                    "characters", kind="InvalidInput")
        if not isinstance(value, str) or len(value) > 255:
            raise errors.BadRequest(f"Invalid input received: metadata value of {key} must be "
                                    f"a string of at most 255 characters", kind="InvalidInput")
    return meta


def _replace(rq: Rq, metadata: dict) -> dict:
    with _model(rq).lock:
        record = _record(rq)
        record.metadata = dict(metadata)
        return dict(record.metadata)


def _etag(metadata: dict) -> str:
    """Cinder's: md5 hex of jsonutils.dumps({"metadata": metadata}) (json.dumps defaults)."""
    return hashlib.md5(json.dumps({"metadata": metadata}).encode()).hexdigest()


def _etags_apply(rq: Rq) -> bool:
    return "snapshot_id" not in rq.params and rq.at_least(ETAGS)


def _if_match_fails(rq: Rq) -> bool:
    """True when If-Match names tags none of which is the metadata's current one (webob's
    parsing: comma-separated, quoted or not, W/ prefixes ignored; `*` matches anything)."""
    header = rq.headers.get("If-Match")
    if not header or not _etags_apply(rq):
        return False
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" not in tags and _etag(dict(_record(rq).metadata)) not in tags


def show_metadata(rq: Rq) -> Reply:
    metadata = dict(_record(rq).metadata)
    reply = ok({"metadata": metadata})
    if _etags_apply(rq):
        reply.headers["Etag"] = _etag(metadata)
    return reply


def create_metadata(rq: Rq) -> Reply:
    meta = _check(rq.json_object().get("metadata"))
    merged = dict(_record(rq).metadata)
    merged.update(meta)
    return ok({"metadata": _replace(rq, merged)})


def update_metadata(rq: Rq) -> Reply:
    if _if_match_fails(rq):
        return Reply(412, None)
    return ok({"metadata": _replace(rq, _check(rq.json_object().get("metadata")))})


def show_metadata_item(rq: Rq) -> Reply:
    key = rq.p("key")
    metadata = _record(rq).metadata
    if key not in metadata:
        raise errors.NotFound(f"Metadata item was not found", kind="MetadataItemNotFound")
    return ok({"meta": {key: metadata[key]}})


def update_metadata_item(rq: Rq) -> Reply:
    if _if_match_fails(rq):
        return Reply(412, None)
    meta = _check(rq.json_object().get("meta"))
    key = rq.p("key")
    if key not in meta:
        raise errors.BadRequest("Request body and URI mismatch")
    if len(meta) > 1:
        raise errors.BadRequest("Request body contains too many items")
    merged = dict(_record(rq).metadata, **meta)
    _replace(rq, merged)
    return ok({"meta": meta})


def delete_metadata_item(rq: Rq) -> Reply:
    key = rq.p("key")
    metadata = dict(_record(rq).metadata)
    if metadata.pop(key, None) is None:
        raise errors.NotFound("Metadata item was not found", kind="MetadataItemNotFound")
    _replace(rq, metadata)
    return ok()
