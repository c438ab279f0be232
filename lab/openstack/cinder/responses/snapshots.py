"""Snapshots: the snapshot view, list (plain and detail), create, show, update, delete."""
from ... import errors
from ...api import Reply, Rq, accepted, ok
from ..models import Snapshot
from .helpers import _caller, _flag, _model, _page, _sorted
from .volumes import _dict_filter


def snapshot_view(rq: Rq, s: Snapshot, *, extensions: bool = True) -> dict:
    """Cinder's snapshot view; `extensions`: the extended-snapshot-attributes extension's
    project_id and progress, which Cinder adds to show and detail only (not to create,
    update or the plain list: Tempest's snapshot schemas)."""
    view = {"id": s.id, "name": s.name, "description": s.description, "status": s.status,
            "size": s.size, "volume_id": s.volume_id, "created_at": s.created_at,
            "updated_at": s.updated_at, "metadata": dict(s.metadata)}
    if rq.at_least("3.41"):
        view["user_id"] = s.user_id
    if extensions and (rq.auth.is_admin or s.project_id == rq.auth.project_id):
        view["os-extended-snapshot-attributes:project_id"] = s.project_id
        view["os-extended-snapshot-attributes:progress"] = \
            s.progress or ("100%" if s.status == "available" else "0%")
    return view


def _snapshot_list(rq: Rq, detail: bool) -> Reply:
    filters = {k: rq.query[k] for k in ("name", "status", "volume_id") if k in rq.query}
    snaps = _model(rq).list_snapshots(_caller(rq), all_tenants=_flag(rq.query, "all_tenants"),
                                      filters=filters)
    if rq.at_least("3.22") and rq.query.get("metadata") is not None:   # snapshot metadata filter
        want = _dict_filter(rq.query["metadata"], "metadata")
        snaps = [s for s in snaps if all(s.metadata.get(k) == str(x) for k, x in want.items())]
    page, links = _page(rq, _sorted(rq, snaps), "snapshots/detail" if detail else "snapshots")
    if detail:
        body = {"snapshots": [snapshot_view(rq, s) for s in page]}
    else:
        body = {"snapshots": [snapshot_view(rq, s, extensions=False) for s in page]}
    if links:
        body["snapshots_links"] = links
    return ok(body)


def list_snapshots(rq: Rq) -> Reply:
    return _snapshot_list(rq, detail=False)


def list_snapshots_detail(rq: Rq) -> Reply:
    return _snapshot_list(rq, detail=True)


def create_snapshot(rq: Rq) -> Reply:
    body = rq.json_object("snapshot")
    if "volume_id" in body and body["volume_id"] is None:
        # Cinder looks the volume up by the id given: a null id is a volume not found (404);
        # only a missing key is the 400 "'volume_id' must be specified".
        raise errors.NotFound("Volume None could not be found.", kind="VolumeNotFound")
    s = _model(rq).create_snapshot(
        _caller(rq), body.get("volume_id"), name=body.get("name", body.get("display_name")),
        description=body.get("description", body.get("display_description")),
        force=body.get("force", False), metadata=body.get("metadata"))
    return accepted({"snapshot": snapshot_view(rq, s, extensions=False)})


def show_snapshot(rq: Rq) -> Reply:
    s = _model(rq).get_snapshot(_caller(rq), rq.p("snapshot_id"))
    return ok({"snapshot": snapshot_view(rq, s)})


def update_snapshot(rq: Rq) -> Reply:
    body = rq.json_object("snapshot")
    s = _model(rq).update_snapshot(_caller(rq), rq.p("snapshot_id"),
                                   name=body.get("name", body.get("display_name")),
                                   description=body.get("description",
                                                        body.get("display_description")))
    return ok({"snapshot": snapshot_view(rq, s, extensions=False)})


def delete_snapshot(rq: Rq) -> Reply:
    _model(rq).delete_snapshot(_caller(rq), rq.p("snapshot_id"))
    return accepted()
