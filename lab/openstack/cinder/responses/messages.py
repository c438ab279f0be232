"""The messages API (3.3, Newton on): list, show, delete of the user messages the scheduler
and volume manager write (models/messages.py). View: cinder/api/v3/views/messages.py."""
from ...api import Reply, Rq, ok
from .helpers import _caller, _link, _model


def message_view(rq: Rq, m: dict) -> dict:
    return {"id": m["id"], "event_id": m["event_id"], "user_message": m["user_message"],
            "message_level": m["message_level"], "created_at": m["created_at"],
            "guaranteed_until": m["expires_at"], "request_id": m["request_id"],
            "links": _link(rq, "messages", m["id"]), "resource_type": m["resource_type"],
            "resource_uuid": m["resource_uuid"]}


def list_messages(rq: Rq) -> Reply:
    return ok({"messages": [message_view(rq, m) for m in _model(rq).list_messages(_caller(rq))]})


def show_message(rq: Rq) -> Reply:
    return ok({"message": message_view(rq, _model(rq).get_message(_caller(rq),
                                                                    rq.p("message_id")))})


def delete_message(rq: Rq) -> Reply:
    _model(rq).delete_message(_caller(rq), rq.p("message_id"))
    return Reply(204)
