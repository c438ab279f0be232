"""Quota sets (show, defaults, update) and the absolute limits derived from them."""
from ...api import Reply, Rq, ok
from ..models import Caller
from .helpers import _caller, _flag, _model


def show_quota(rq: Rq) -> Reply:
    project = rq.p("target_id")
    quota = _model(rq).get_quota(_caller(rq), project, usage=_flag(rq.query, "usage"))
    return ok({"quota_set": dict(quota, id=project)})


def quota_defaults(rq: Rq) -> Reply:
    # A project with no overrides has the defaults; an id no project can have asks for them.
    project = rq.p("target_id")
    limits = _model(rq).get_quota(Caller(project, rq.auth.user_id, True), "\0defaults")
    return ok({"quota_set": dict(limits, id=project)})


def update_quota(rq: Rq) -> Reply:
    values = rq.json_object("quota_set")
    return ok({"quota_set": _model(rq).update_quota(_caller(rq), rq.p("target_id"), values)})


def delete_quota(rq: Rq) -> Reply:
    """Back to the defaults (Cinder: the project's quota rows are destroyed)."""
    rq.require_admin("volume_extension:quotas:delete")
    project = rq.p("target_id")
    defaults = _model(rq).get_quota(Caller(project, rq.auth.user_id, True), "\0defaults")
    _model(rq).update_quota(_caller(rq), project, dict(defaults))
    return ok()


def limits(rq: Rq) -> Reply:
    """3.39: an admin may ask for another project's limits with ?project_id= (ignored
    below 3.39, as by Cinder)."""
    project = rq.auth.project_id
    if rq.at_least("3.39") and rq.query.get("project_id") and rq.auth.is_admin:
        project = rq.query["project_id"]
    q = _model(rq).get_quota(_caller(rq), project, usage=True)
    return ok({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": q["volumes"]["limit"], "maxTotalSnapshots": q["snapshots"]["limit"],
        "maxTotalVolumeGigabytes": q["gigabytes"]["limit"],
        "maxTotalBackups": q["backups"]["limit"],
        "maxTotalBackupGigabytes": q["backup_gigabytes"]["limit"],
        "totalVolumesUsed": q["volumes"]["in_use"], "totalSnapshotsUsed": q["snapshots"]["in_use"],
        "totalGigabytesUsed": q["gigabytes"]["in_use"], "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0}}})
