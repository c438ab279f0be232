"""The attachments API (3.27+; `complete` at 3.44, beyond Pike); urls.py holds the bounds."""
import asyncio

from ... import errors
from ...api import Reply, Rq, accepted, ok
from .helpers import _caller, _model


def attachment_view(a, full: bool = True) -> dict:
    view = {"id": a.id, "status": a.attach_status, "instance": a.instance_uuid,
            "volume_id": a.volume_id}
    if full:
        view.update({"attach_mode": a.attach_mode, "attached_at": a.attached_at,
                     "detached_at": a.detached_at, "connection_info": a.connection_info or {}})
    return view


async def create_attachment(rq: Rq) -> Reply:
    body = rq.json_object("attachment")
    volume_id = body.get("volume_uuid")
    if not isinstance(volume_id, str) or not volume_id:
        raise errors.BadRequest("Invalid input received: 'volume_uuid' is a required property",
                                kind="ValidationError")
    connector = body.get("connector")
    if connector is not None and not isinstance(connector, dict):
        raise errors.BadRequest("Invalid input received: connector must be an object",
                                kind="ValidationError")
    a, _ = await asyncio.to_thread(_model(rq).attachment_create, _caller(rq), volume_id,
                                   body.get("instance_uuid"), connector)
    return accepted({"attachment": attachment_view(a)})


def _attachment_list(rq: Rq, detail: bool) -> Reply:
    items = _model(rq).list_attachments(_caller(rq))
    if rq.query.get("volume_id"):
        items = [a for a in items if a.volume_id == rq.query["volume_id"]]
    return ok({"attachments": [attachment_view(a, detail) for a in items]})


def list_attachments(rq: Rq) -> Reply:
    return _attachment_list(rq, detail=False)


def list_attachments_detail(rq: Rq) -> Reply:
    return _attachment_list(rq, detail=True)


def show_attachment(rq: Rq) -> Reply:
    return ok({"attachment": attachment_view(
        _model(rq)._attachment(_caller(rq), rq.p("attachment_id")))})


async def update_attachment(rq: Rq) -> Reply:
    body = rq.json_object("attachment")
    m, c, aid = _model(rq), _caller(rq), rq.p("attachment_id")
    await asyncio.to_thread(m.attachment_update, c, aid, body.get("connector"))
    return ok({"attachment": attachment_view(m._attachment(c, aid))})


async def delete_attachment(rq: Rq) -> Reply:
    m, c, aid = _model(rq), _caller(rq), rq.p("attachment_id")
    volume_id = m._attachment(c, aid).volume_id
    await asyncio.to_thread(m.attachment_delete, c, aid)
    left = [a for a in m.list_attachments(c) if a.volume_id == volume_id]
    return ok({"attachments": [attachment_view(a, False) for a in left]})


def attachment_action(rq: Rq) -> Reply:
    body = rq.json_object()
    if list(body) != ["os-complete"]:
        raise errors.BadRequest("Malformed request body: the only action is os-complete")
    _model(rq).attachment_complete(_caller(rq), rq.p("attachment_id"))
    return Reply(204)
