"""Volume backups over HTTP (cinder/api/contrib/backups.py, api/v3/backups.py and
api/views/backups.py, 8.0.0-11.0.0): summary and detail views, list, show, create, update
(3.9), delete, restore, export/import of the record, admin actions on /action.

Views: the summary is {id, links, name}; the detail adds status, size, object_count,
availability_zone, container, created_at, updated_at, description, fail_reason, volume_id,
is_incremental, has_dependent_backups, snapshot_id, data_timestamp; 3.18 adds
`os-backup-project-attr:project_id` for admins, 3.43 `metadata`.
"""
import asyncio

from ... import errors
from ...api import Reply, Rq, accepted, created, ok
from ..models.backups import Backup
from .helpers import _action_args, _caller, _flag, _link, _model, _page, _sorted

BACKUP_METADATA = "3.43"


def summary_view(rq: Rq, b: Backup) -> dict:
    return {"id": b.id, "links": _link(rq, "backups", b.id), "name": b.name}


def detail_view(rq: Rq, b: Backup) -> dict:
    view = {"id": b.id, "status": b.status, "size": b.size, "object_count": b.object_count,
            "availability_zone": b.availability_zone, "container": b.container,
            "created_at": b.created_at, "updated_at": b.updated_at, "name": b.name,
            "description": b.description, "fail_reason": b.fail_reason,
            "volume_id": b.volume_id, "links": _link(rq, "backups", b.id),
            "is_incremental": b.parent_id is not None,
            "has_dependent_backups": _model(rq).has_dependents(b),
            "snapshot_id": b.snapshot_id, "data_timestamp": b.data_timestamp}
    if rq.at_least("3.18") and rq.auth.is_admin:
        view["os-backup-project-attr:project_id"] = b.project_id
    if rq.at_least(BACKUP_METADATA):
        view["metadata"] = dict(b.metadata)
    return view


def _list(rq: Rq, detail: bool) -> Reply:
    filters = {k: rq.query[k] for k in ("name", "status", "volume_id") if k in rq.query}
    items = _model(rq).list_backups(_caller(rq), all_tenants=_flag(rq.query, "all_tenants"),
                                    filters=filters)
    page, links = _page(rq, _sorted(rq, items), "backups/detail" if detail else "backups")
    view = detail_view if detail else summary_view
    body = {"backups": [view(rq, b) for b in page]}
    if links:
        body["backups_links"] = links
    return ok(body)


def list_backups(rq: Rq) -> Reply:
    return _list(rq, detail=False)


def list_backups_detail(rq: Rq) -> Reply:
    return _list(rq, detail=True)


def show_backup(rq: Rq) -> Reply:
    return ok({"backup": detail_view(rq, _model(rq).get_backup(_caller(rq), rq.p("backup_id")))})


def create_backup(rq: Rq) -> Reply:
    body = rq.json_object("backup")
    b = _model(rq).create_backup(_caller(rq), body,
                                 with_metadata=rq.at_least(BACKUP_METADATA))
    return accepted({"backup": _answer_view(rq, b)})


def update_backup(rq: Rq) -> Reply:
    body = rq.json_object("backup")
    b = _model(rq).update_backup(_caller(rq), rq.p("backup_id"), body,
                                 with_metadata=rq.at_least(BACKUP_METADATA))
    return ok({"backup": _answer_view(rq, b)})


def _answer_view(rq: Rq, b) -> dict:
    """What create and update answer: the summary view, with the metadata from 3.43 on."""
    view = summary_view(rq, b)
    if rq.at_least(BACKUP_METADATA):
        view["metadata"] = dict(b.metadata)
    return view


def delete_backup(rq: Rq) -> Reply:
    _model(rq).delete_backup(_caller(rq), rq.p("backup_id"))
    return accepted()


async def restore_backup(rq: Rq) -> Reply:
    body = rq.json_object("restore")
    volume_id, name = body.get("volume_id"), body.get("name")
    if volume_id is not None and name is not None:
        raise errors.BadRequest("Invalid input received: Cannot specify both volume_id and "
                                "name", kind="InvalidInput")
    answer = await asyncio.to_thread(_model(rq).restore_backup, _caller(rq),
                                     rq.p("backup_id"), volume_id, name)
    return accepted({"restore": answer})


def export_record(rq: Rq) -> Reply:
    return ok({"backup-record": _model(rq).export_backup(_caller(rq), rq.p("backup_id"))})


def import_record(rq: Rq) -> Reply:
    body = rq.json_object("backup-record")
    b = _model(rq).import_backup(_caller(rq), body.get("backup_service"),
                                 body.get("backup_url"))
    return created({"backup": summary_view(rq, b)})


def backup_action(rq: Rq) -> Reply:
    """os-reset_status and os-force_delete (cinder/api/contrib/admin_actions.py)."""
    body = rq.json_object()
    m, c, bid = _model(rq), _caller(rq), rq.p("backup_id")
    if "os-reset_status" in body:
        m.reset_backup_status(c, bid, _action_args(body, "os-reset_status").get("status"))
        return accepted()
    if "os-force_delete" in body:
        if not c.is_admin:
            raise errors.policy_forbids("volume_extension:backup_admin_actions:force_delete")
        m.delete_backup(c, bid, force=True)
        return accepted()
    raise errors.NotFound("The resource could not be found.")
