"""POST /v3/{p}/snapshots/{id}/action, as Cinder's api/contrib/snapshot_actions.py and
admin_actions.py: os-reset_status (admin), os-update_snapshot_status (Nova's assisted
snapshots: creating/deleting -> a later state with a progress), os-force_delete (admin)."""
from ... import errors
from ...api import Reply, Rq, accepted
from .helpers import _action_args, _caller, _model

# os-update_snapshot_status: current status -> the statuses it may move to (Cinder's table)
UPDATE_TRANSITIONS = {"creating": ("creating", "available", "error"),
                      "deleting": ("deleting", "error_deleting")}


def _reset_status(rq: Rq, snapshot_id: str, args: dict) -> Reply:
    _model(rq).reset_snapshot_status(_caller(rq), snapshot_id, args.get("status"))
    return accepted()


def _update_status(rq: Rq, snapshot_id: str, args: dict) -> Reply:
    status = args.get("status")
    if not status:
        raise errors.BadRequest("'status' must be specified.")
    with _model(rq).lock:
        s = _model(rq).get_snapshot(_caller(rq), snapshot_id)
        allowed = UPDATE_TRANSITIONS.get(s.status, ())
        if status not in allowed:
            raise errors.BadRequest(f"Provided snapshot status {status} not allowed for "
                                    f"snapshot with status {s.status}.")
        s.status = status
        if "progress" in args:
            s.progress = str(args["progress"])
    return accepted()


def _force_delete(rq: Rq, snapshot_id: str, args: dict) -> Reply:
    _model(rq).force_delete_snapshot(_caller(rq), snapshot_id)
    return accepted()


ACTIONS = {"os-reset_status": _reset_status, "os-update_snapshot_status": _update_status,
           "os-force_delete": _force_delete}


def snapshot_action(rq: Rq) -> Reply:
    body = rq.json_object()
    names = [k for k in body if k in ACTIONS]
    if len(names) != 1:
        raise errors.BadRequest("There is no such action: " + ", ".join(body) or "(none)")
    return ACTIONS[names[0]](rq, rq.p("snapshot_id"), _action_args(body, names[0]))
