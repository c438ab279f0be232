"""Nova v2.1 quota sets and limits handlers (nova/api/openstack/compute/quota_sets.py and
limits.py at 13.0.0 / 16.0.0): network keys leave quota sets at 2.36, limits lose the
network entries at 2.36 and maxImageMeta at 2.39."""
from ..api import Reply, Rq, accepted, ok
from ..errors import policy_forbids
from .models import DEFAULT_QUOTAS, Caller, ComputeModel


def _model(rq: Rq) -> ComputeModel:
    return rq.model


def _caller(rq: Rq) -> Caller:
    return Caller(rq.auth.project_id, rq.auth.user_id, rq.auth.is_admin)


def _quota_target(rq: Rq) -> str:
    project = rq.p("project")
    if project != rq.auth.project_id and not rq.auth.is_admin:
        raise policy_forbids("os_compute_api:os-quota-sets:show")
    return project


def _quota_body(rq: Rq, project: str, values: dict) -> dict:
    keys = _model(rq).quota_keys(rq.version)
    return {"id": project, **{k: values[k] for k in keys}}


def get_quota(rq: Rq) -> Reply:
    project = _quota_target(rq)
    return ok({"quota_set": _quota_body(rq, project, _model(rq).limits_of(project))})


def get_quota_detail(rq: Rq) -> Reply:
    project = _quota_target(rq)
    model = _model(rq)
    limits, used = model.limits_of(project), model.usage_of(project)
    body = {"id": project}
    for k in model.quota_keys(rq.version):
        body[k] = {"limit": limits[k], "in_use": used.get(k, 0), "reserved": 0}
    return ok({"quota_set": body})


def get_quota_defaults(rq: Rq) -> Reply:
    return ok({"quota_set": _quota_body(rq, rq.p("project"), DEFAULT_QUOTAS)})


def update_quota(rq: Rq) -> Reply:
    values = dict(rq.json_object("quota_set"))
    model = _model(rq)
    limits = model.update_quota(_caller(rq), rq.p("project"), values, rq.version)
    body = _quota_body(rq, rq.p("project"), limits)
    body.pop("id")
    return ok({"quota_set": body})


def delete_quota(rq: Rq) -> Reply:
    """DELETE /os-quota-sets/{project}: back to the defaults (admin; 202 with no body)."""
    rq.require_admin("os_compute_api:os-quota-sets:delete")
    _model(rq).reset_quota(rq.p("project"))
    return accepted()


def limits(rq: Rq) -> Reply:
    model = _model(rq)
    project = rq.query.get("tenant_id") if rq.auth.is_admin and rq.query.get("tenant_id") \
        else rq.auth.project_id
    q, used = model.limits_of(project), model.usage_of(project)
    absolute = {"maxTotalInstances": q["instances"], "maxTotalCores": q["cores"],
                "maxTotalRAMSize": q["ram"], "maxServerMeta": q["metadata_items"],
                "maxPersonality": q["injected_files"],
                "maxPersonalitySize": q["injected_file_content_bytes"],
                "maxTotalKeypairs": q["key_pairs"], "maxServerGroups": q["server_groups"],
                "maxServerGroupMembers": q["server_group_members"],
                "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"],
                "totalRAMUsed": used["ram"], "totalServerGroupsUsed": 0}
    if not rq.at_least("2.39"):   # 2.39 drops the image-metadata proxy's limit
        absolute["maxImageMeta"] = q["metadata_items"]
    if not rq.at_least("2.36"):
        absolute.update({"maxTotalFloatingIps": q["floating_ips"],
                         "maxSecurityGroups": q["security_groups"],
                         "maxSecurityGroupRules": q["security_group_rules"],
                         "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0})
    return ok({"limits": {"rate": [], "absolute": absolute}})
