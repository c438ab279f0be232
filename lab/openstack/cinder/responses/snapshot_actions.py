"""POST /snapshots/{snapshot_id}/action: the admin's os-reset_status and os-force_delete
(cinder/api/contrib/admin_actions.py SnapshotAdminController), which clear a snapshot a failed
delete left in error_deleting."""
from ... import errors
from ...api import Reply, Rq, accepted
from .helpers import _action_args, _caller, _model


def snapshot_action(rq: Rq) -> Reply:
    body = rq.json_object()
    if len(body) != 1:
        raise errors.BadRequest("Malformed request body")
    action = next(iter(body))
    args = _action_args(body, action)
    model, caller, sid = _model(rq), _caller(rq), rq.p("snapshot_id")
    if action == "os-reset_status":
        model.reset_snapshot_status(caller, sid, args.get("status"))
    elif action == "os-force_delete":
        model.force_delete_snapshot(caller, sid)
    else:
        raise errors.NotFound("The resource could not be found.")
    return accepted()
