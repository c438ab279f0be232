"""Volume types (extra specs, type access) and QoS specs, as models/volume_types.py."""
from ... import errors
from ...api import Reply, Rq, accepted, ok
from ..models import QosSpec, VolumeType
from .helpers import _action_args, _caller, _flag, _link, _model


def type_view(rq: Rq, vt: VolumeType, *, action: str = "show") -> dict:
    """Cinder's type view (api/v2/views/types.py) per action: `qos_specs_id` for admins on
    show and list (policy volume_extension:access_types_qos_specs_id = admin_api);
    `os-volume-type-access:is_public` added by the type-access extension to show, list and
    create; update answers carry neither (Tempest's update_volume_types schema)."""
    view = {"id": vt.id, "name": vt.name, "description": vt.description,
            "is_public": vt.is_public, "extra_specs": dict(vt.extra_specs)}
    if action in ("show", "list") and rq.auth.is_admin:
        view["qos_specs_id"] = vt.qos_specs_id
    if action != "update":
        view["os-volume-type-access:is_public"] = vt.is_public
    return view


def qos_view(q: QosSpec) -> dict:
    return {"id": q.id, "name": q.name, "consumer": q.consumer, "specs": dict(q.specs)}


# ---- volume types, extra specs, type access ------------------------------------------------

def list_types(rq: Rq) -> Reply:
    types = _model(rq).list_types(_caller(rq), rq.query.get("is_public"))
    return ok({"volume_types": [type_view(rq, t, action="list") for t in types]})


def show_type(rq: Rq) -> Reply:
    return ok({"volume_type": type_view(rq, _model(rq).get_type(_caller(rq), rq.p("type_id")))})


def create_type(rq: Rq) -> Reply:
    body = rq.json_object("volume_type")
    is_public = body.get("os-volume-type-access:is_public", body.get("is_public", True))
    vt = _model(rq).create_type(_caller(rq), body.get("name"), body.get("description"),
                                True if is_public is None else is_public,
                                body.get("extra_specs"))
    return ok({"volume_type": type_view(rq, vt, action="create")})


def update_type(rq: Rq) -> Reply:
    body = rq.json_object("volume_type")
    vt = _model(rq).update_type(_caller(rq), rq.p("type_id"), name=body.get("name"),
                                description=body.get("description"),
                                is_public=body.get("is_public"))
    return ok({"volume_type": type_view(rq, vt, action="update")})


def delete_type(rq: Rq) -> Reply:
    _model(rq).delete_type(_caller(rq), rq.p("type_id"))
    return accepted()


def list_extra_specs(rq: Rq) -> Reply:
    vt = _model(rq).get_type(_caller(rq), rq.p("type_id"))
    return ok({"extra_specs": dict(vt.extra_specs)})


def set_extra_specs(rq: Rq) -> Reply:
    body = rq.json_object()
    if "extra_specs" not in body:
        raise errors.BadRequest("Missing required element 'extra_specs' in request body.")
    specs = _model(rq).set_extra_specs(_caller(rq), rq.p("type_id"), body["extra_specs"])
    return ok({"extra_specs": specs})


def show_extra_spec(rq: Rq) -> Reply:
    vt = _model(rq).get_type(_caller(rq), rq.p("type_id"))
    key = rq.p("key")
    if key not in vt.extra_specs:
        raise errors.NotFound(f"Volume Type {vt.id} has no extra specs with key {key}.",
                              kind="VolumeTypeExtraSpecsNotFound")
    return ok({key: vt.extra_specs[key]})


def update_extra_spec(rq: Rq) -> Reply:
    body = rq.json_object()
    key = rq.p("key")
    if key not in body:
        raise errors.BadRequest("Request body and URI mismatch")
    if len(body) > 1:
        raise errors.BadRequest("Request body contains too many items")
    return ok(_model(rq).set_extra_specs(_caller(rq), rq.p("type_id"), body))


def delete_extra_spec(rq: Rq) -> Reply:
    _model(rq).delete_extra_spec(_caller(rq), rq.p("type_id"), rq.p("key"))
    return accepted()


def type_action(rq: Rq) -> Reply:
    body = rq.json_object()
    for action, add in (("addProjectAccess", True), ("removeProjectAccess", False)):
        if action in body:
            args = _action_args(body, action)
            if not args.get("project"):
                raise errors.BadRequest("Missing required element 'project' in request body.")
            _model(rq).add_type_access(_caller(rq), rq.p("type_id"), args["project"], add)
            return accepted()
    raise errors.NotFound("The resource could not be found.")


def type_access(rq: Rq) -> Reply:
    caller = _caller(rq)
    if not caller.is_admin:
        raise errors.policy_forbids("volume_extension:volume_type_access")
    vt = _model(rq).get_type(caller, rq.p("type_id"))
    if vt.is_public:
        raise errors.NotFound("Access list not available for public volume types.",
                              kind="VolumeTypeAccessNotFound")
    return ok({"volume_type_access": [{"volume_type_id": vt.id, "project_id": p}
                                      for p in sorted(vt.projects)]})


# ---- QoS specs -----------------------------------------------------------------------------

def list_qos(rq: Rq) -> Reply:
    return ok({"qos_specs": [qos_view(q) for q in _model(rq).list_qos(_caller(rq))]})


def show_qos(rq: Rq) -> Reply:
    q = _model(rq).get_qos(_caller(rq), rq.p("qos_id"))
    return ok({"qos_specs": qos_view(q), "links": _link(rq, "qos-specs", q.id)})


def create_qos(rq: Rq) -> Reply:
    q = _model(rq).create_qos(_caller(rq), rq.json_object("qos_specs"))
    return ok({"qos_specs": qos_view(q), "links": _link(rq, "qos-specs", q.id)})


def update_qos(rq: Rq) -> Reply:
    body = rq.json_object("qos_specs")
    return ok({"qos_specs": _model(rq).set_qos_keys(_caller(rq), rq.p("qos_id"), body)})


def delete_qos(rq: Rq) -> Reply:
    _model(rq).delete_qos(_caller(rq), rq.p("qos_id"), force=_flag(rq.query, "force"))
    return accepted()


def delete_qos_keys(rq: Rq) -> Reply:
    _model(rq).delete_qos_keys(_caller(rq), rq.p("qos_id"), rq.json_object().get("keys"))
    return accepted()


def associate_qos(rq: Rq) -> Reply:
    _model(rq).associate_qos(_caller(rq), rq.p("qos_id"), rq.query.get("vol_type_id"))
    return accepted()


def disassociate_qos(rq: Rq) -> Reply:
    _model(rq).disassociate_qos(_caller(rq), rq.p("qos_id"), rq.query.get("vol_type_id"))
    return accepted()


def disassociate_all_qos(rq: Rq) -> Reply:
    _model(rq).disassociate_all_qos(_caller(rq), rq.p("qos_id"))
    return accepted()


def qos_associations(rq: Rq) -> Reply:
    types = _model(rq).qos_associations(_caller(rq), rq.p("qos_id"))
    return ok({"qos_associations": [{"association_type": "volume_type", "name": t.name,
                                     "id": t.id} for t in types]})
