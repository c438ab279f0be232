"""Cinder v3 handlers: parse the request, call CinderModel, answer with Cinder's enveloped
views ({"volume": {...}}, {"volumes": [...]}, ...). Policy (admin-only calls, tenant scoping)
lives in the model; which attributes a caller may *see* lives here (views)."""
import ast
import asyncio
from urllib.parse import urlencode

from .. import errors
from ..api import Reply, Rq, accepted, ok, paginate
from .models import Caller, CinderModel, QosSpec, Snapshot, Volume, VolumeType, _boolish

SORT_KEYS = ("created_at", "updated_at", "id", "name", "size", "status")


def _model(rq: Rq) -> CinderModel:
    return rq.model


def _caller(rq: Rq) -> Caller:
    return Caller(project_id=rq.auth.project_id, user_id=rq.auth.user_id,
                  is_admin=rq.auth.is_admin)


def _link(rq: Rq, kind: str, obj_id: str) -> list:
    return [{"rel": "self", "href": f"{rq.base_url}/v3/{rq.auth.project_id}/{kind}/{obj_id}"},
            {"rel": "bookmark", "href": f"{rq.base_url}/{rq.auth.project_id}/{kind}/{obj_id}"}]


def _flag(query, name: str) -> bool:
    value = query.get(name)
    return value is not None and _boolish(value, name)


# ---- discovery -----------------------------------------------------------------------------

def root(rq: Rq) -> Reply:
    return Reply(300, rq.profile.cinder_root(rq.base_url))


def v3_root(rq: Rq) -> Reply:
    return ok(rq.profile.cinder_version(rq.base_url, 3))


# ---- views ---------------------------------------------------------------------------------

def volume_view(rq: Rq, v: Volume) -> dict:
    model = _model(rq)
    vt = model.volume_type_of(v)
    admin = rq.auth.is_admin
    view = {
        "id": v.id, "name": v.name, "description": v.description, "status": v.status,
        "size": v.size, "availability_zone": v.availability_zone, "created_at": v.created_at,
        "updated_at": v.updated_at, "volume_type": vt.name if vt else None,
        "snapshot_id": v.snapshot_id, "source_volid": v.source_volid,
        "metadata": dict(v.metadata), "links": _link(rq, "volumes", v.id),
        "user_id": v.user_id, "bootable": "true" if v.bootable else "false",
        "encrypted": False, "replication_status": None, "consistencygroup_id": None,
        "multiattach": v.multiattach,
        "attachments": [{"id": v.id, "attachment_id": a.id, "volume_id": v.id,
                         "server_id": a.instance_uuid, "host_name": a.attached_host,
                         "device": a.mountpoint, "attached_at": a.attached_at}
                        for a in v.attachments],
        "os-vol-tenant-attr:tenant_id": v.project_id,
    }
    if admin:
        view["os-vol-host-attr:host"] = v.host
        view["os-vol-mig-status-attr:migstat"] = v.migration_status
        view["os-vol-mig-status-attr:name_id"] = v.name_id
    if v.image_metadata is not None:
        view["volume_image_metadata"] = dict(v.image_metadata)
    if rq.at_least("3.13"):
        view["group_id"] = None
    if rq.at_least("3.21") and admin:
        view["provider_id"] = None
    return view


def type_view(vt: VolumeType) -> dict:
    return {"id": vt.id, "name": vt.name, "description": vt.description,
            "is_public": vt.is_public, "extra_specs": dict(vt.extra_specs),
            "qos_specs_id": vt.qos_specs_id, "os-volume-type-access:is_public": vt.is_public}


def qos_view(q: QosSpec) -> dict:
    return {"id": q.id, "name": q.name, "consumer": q.consumer, "specs": dict(q.specs)}


def snapshot_view(rq: Rq, s: Snapshot) -> dict:
    view = {"id": s.id, "name": s.name, "description": s.description, "status": s.status,
            "size": s.size, "volume_id": s.volume_id, "created_at": s.created_at,
            "updated_at": s.updated_at, "metadata": dict(s.metadata)}
    if rq.auth.is_admin or s.project_id == rq.auth.project_id:
        view["os-extended-snapshot-attributes:project_id"] = s.project_id
        view["os-extended-snapshot-attributes:progress"] = \
            "100%" if s.status == "available" else "0%"
    return view


# ---- lists: filters, sorting, paging -------------------------------------------------------

def _sorted(rq: Rq, items: list) -> list:
    """Cinder's sort=key:dir,... (or sort_key/sort_dir); created_at desc by default."""
    keys = []
    if rq.query.get("sort"):
        for part in rq.query["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            keys.append((key, direction or "desc"))
    elif rq.query.get("sort_key"):
        keys.append((rq.query["sort_key"], rq.query.get("sort_dir", "desc")))
    for key, direction in reversed(keys):
        if key not in SORT_KEYS or direction not in ("asc", "desc"):
            raise errors.BadRequest(f"Invalid input received: Invalid sort key or direction: "
                                    f"{key}:{direction}", kind="InvalidInput")
        items = sorted(items, key=lambda o: (getattr(o, key) is None, getattr(o, key) or ""),
                       reverse=direction == "desc")
    return items


def _page(rq: Rq, items: list, kind: str) -> tuple[list, list | None]:
    try:
        page, more = paginate(items, rq.query)
    except LookupError:
        raise errors.NotFound(f"Marker {rq.query.get('marker')} could not be found.",
                              kind="MarkerNotFound") from None
    links = None
    if more and page:
        params = [(k, v) for k, v in rq.query.items() if k != "marker"]
        params.append(("marker", page[-1].id))
        links = [{"rel": "next", "href": f"{rq.base_url}/v3/{rq.auth.project_id}/{kind}?"
                                         + urlencode(params)}]
    return page, links


def _volume_filters(rq: Rq, vols: list) -> list:
    q = rq.query
    model = _model(rq)
    for key in ("name", "status", "availability_zone"):
        want = q.get(key)
        if want is not None:
            vols = [v for v in vols if getattr(v, key) == want]
    if q.get("bootable") is not None:
        want = _flag(q, "bootable")
        vols = [v for v in vols if v.bootable == want]
    if q.get("volume_type") is not None:
        want = q["volume_type"]
        vols = [v for v in vols if (vt := model.volume_type_of(v))
                and want in (vt.id, vt.name)]
    if q.get("project_id") is not None and rq.auth.is_admin:
        vols = [v for v in vols if v.project_id == q["project_id"]]
    if q.get("metadata") is not None:
        try:
            want = ast.literal_eval(q["metadata"])
            assert isinstance(want, dict)
        except (ValueError, SyntaxError, AssertionError):
            raise errors.BadRequest("Invalid input received: metadata filter must be a dict",
                                    kind="InvalidInput") from None
        vols = [v for v in vols if all(v.metadata.get(k) == str(x) for k, x in want.items())]
    return vols


def _volume_list(rq: Rq, detail: bool) -> Reply:
    vols = _model(rq).list_volumes(_caller(rq), all_tenants=_flag(rq.query, "all_tenants"))
    vols = _sorted(rq, _volume_filters(rq, vols))
    page, links = _page(rq, vols, "volumes/detail" if detail else "volumes")
    if detail:
        body = {"volumes": [volume_view(rq, v) for v in page]}
    else:
        body = {"volumes": [{"id": v.id, "name": v.name, "links": _link(rq, "volumes", v.id)}
                            for v in page]}
    if links:
        body["volumes_links"] = links
    return ok(body)


# ---- volumes ---------------------------------------------------------------------------------

def list_volumes(rq: Rq) -> Reply:
    return _volume_list(rq, detail=False)


def list_volumes_detail(rq: Rq) -> Reply:
    return _volume_list(rq, detail=True)


def create_volume(rq: Rq) -> Reply:
    body = rq.json_object("volume")
    # Clients (OSC) send every field, nulls included; Cinder < 3.53 ignores unknown keys.
    vol = _model(rq).create_volume(
        _caller(rq), size=body.get("size"), name=body.get("name", body.get("display_name")),
        description=body.get("description", body.get("display_description")),
        volume_type=body.get("volume_type"),
        image_id=body.get("imageRef", body.get("image_id")),
        snapshot_id=body.get("snapshot_id"), source_volid=body.get("source_volid"),
        metadata=body.get("metadata"), availability_zone=body.get("availability_zone"),
        multiattach=bool(body.get("multiattach", False)))
    return accepted({"volume": volume_view(rq, vol)})


def show_volume(rq: Rq) -> Reply:
    return ok({"volume": volume_view(rq, _model(rq).get_volume(_caller(rq), rq.p("volume_id")))})


def update_volume(rq: Rq) -> Reply:
    body = rq.json_object("volume")
    vol = _model(rq).update_volume(
        _caller(rq), rq.p("volume_id"), name=body.get("name", body.get("display_name")),
        description=body.get("description", body.get("display_description")),
        metadata=body.get("metadata"))
    return ok({"volume": volume_view(rq, vol)})


def delete_volume(rq: Rq) -> Reply:
    _model(rq).delete_volume(_caller(rq), rq.p("volume_id"),
                             cascade=_flag(rq.query, "cascade"),
                             force=rq.at_least("3.23") and _flag(rq.query, "force"))
    return accepted()


def _action_args(body, name: str) -> dict:
    args = body.get(name)
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise errors.BadRequest(f"Malformed request body: {name} must be an object")
    return args


async def volume_action(rq: Rq) -> Reply:
    body = rq.json_object()
    if len(body) != 1:
        raise errors.BadRequest("Malformed request body: too many body keys" if body else
                                "Malformed request body")
    action = next(iter(body))
    handler = ACTIONS.get(action)
    if handler is None:
        raise errors.NotFound("The resource could not be found.")
    reply = handler(rq, _model(rq), _caller(rq), rq.p("volume_id"), _action_args(body, action))
    if asyncio.iscoroutine(reply):
        reply = await reply
    return reply


def _extend(rq, m, c, vid, a):
    if "new_size" not in a:
        raise errors.BadRequest("Invalid input received: 'new_size' is a required property",
                                kind="ValidationError")
    m.extend_volume(c, vid, a["new_size"])
    return accepted()


def _retype(rq, m, c, vid, a):
    m.retype(c, vid, a.get("new_type"), a.get("migration_policy"))
    return accepted()


def _reset_status(rq, m, c, vid, a):
    m.reset_status(c, vid, status=a.get("status"), attach_status=a.get("attach_status"),
                   migration_status=a.get("migration_status"))
    return accepted()


async def _initialize(rq, m, c, vid, a):
    info = await asyncio.to_thread(m.initialize_connection, c, vid, a.get("connector"))
    return ok({"connection_info": info})


async def _terminate(rq, m, c, vid, a):
    if not isinstance(a.get("connector"), dict):
        raise errors.BadRequest("Must specify 'connector'", kind="InvalidInput")
    await asyncio.to_thread(m.terminate_connection, c, vid, a["connector"])
    return accepted()


def _attach(rq, m, c, vid, a):
    if not a.get("instance_uuid") and not a.get("host_name"):
        raise errors.BadRequest("Invalid request to attach volume to an invalid target")
    m.attach(c, vid, instance_uuid=a.get("instance_uuid"), host_name=a.get("host_name"),
             mountpoint=a.get("mountpoint"), mode=a.get("mode", "rw"))
    return accepted()


def _detach(rq, m, c, vid, a):
    m.detach(c, vid, a.get("attachment_id"))
    return accepted()


def _simple(method: str):
    def act(rq, m, c, vid, a):
        getattr(m, method)(c, vid)
        return accepted()
    return act


def _set_bootable(rq, m, c, vid, a):
    if "bootable" not in a:
        raise errors.BadRequest("Must specify bootable in request.")
    m.set_bootable(c, vid, a["bootable"])
    return ok()


def _migrate(rq, m, c, vid, a):
    if not isinstance(a.get("host"), str):
        raise errors.BadRequest("Invalid input received: 'host' is a required property",
                                kind="ValidationError")
    m.migrate_volume(c, vid, a["host"], force_host_copy=bool(a.get("force_host_copy")),
                     lock_volume=bool(a.get("lock_volume")))
    return accepted()


def _force_delete(rq, m, c, vid, a):
    if not c.is_admin:
        raise errors.policy_forbids("volume_extension:volume_admin_actions:force_delete")
    m.delete_volume(c, vid, force=True)
    return accepted()


ACTIONS = {
    "os-extend": _extend, "os-retype": _retype, "os-reset_status": _reset_status,
    "os-initialize_connection": _initialize, "os-terminate_connection": _terminate,
    "os-attach": _attach, "os-detach": _detach, "os-reserve": _simple("reserve"),
    "os-unreserve": _simple("unreserve"), "os-begin_detaching": _simple("begin_detaching"),
    "os-roll_detaching": _simple("roll_detaching"), "os-set_bootable": _set_bootable,
    "os-migrate_volume": _migrate, "os-force_delete": _force_delete,
}


# ---- volume types --------------------------------------------------------------------------

def list_types(rq: Rq) -> Reply:
    types = _model(rq).list_types(_caller(rq), rq.query.get("is_public"))
    return ok({"volume_types": [type_view(t) for t in types]})


def show_type(rq: Rq) -> Reply:
    return ok({"volume_type": type_view(_model(rq).get_type(_caller(rq), rq.p("type_id")))})


def create_type(rq: Rq) -> Reply:
    body = rq.json_object("volume_type")
    is_public = body.get("os-volume-type-access:is_public", body.get("is_public", True))
    vt = _model(rq).create_type(_caller(rq), body.get("name"), body.get("description"),
                                True if is_public is None else is_public,
                                body.get("extra_specs"))
    return ok({"volume_type": type_view(vt)})


def update_type(rq: Rq) -> Reply:
    body = rq.json_object("volume_type")
    vt = _model(rq).update_type(_caller(rq), rq.p("type_id"), name=body.get("name"),
                                description=body.get("description"),
                                is_public=body.get("is_public"))
    return ok({"volume_type": type_view(vt)})


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


# ---- snapshots -----------------------------------------------------------------------------

def _snapshot_list(rq: Rq, detail: bool) -> Reply:
    filters = {k: rq.query[k] for k in ("name", "status", "volume_id") if k in rq.query}
    snaps = _model(rq).list_snapshots(_caller(rq), all_tenants=_flag(rq.query, "all_tenants"),
                                      filters=filters)
    page, links = _page(rq, _sorted(rq, snaps), "snapshots")
    if detail:
        body = {"snapshots": [snapshot_view(rq, s) for s in page]}
    else:
        body = {"snapshots": [{k: v for k, v in snapshot_view(rq, s).items()
                               if not k.startswith("os-")} for s in page]}
    if links:
        body["snapshots_links"] = links
    return ok(body)


def list_snapshots(rq: Rq) -> Reply:
    return _snapshot_list(rq, detail=False)


def list_snapshots_detail(rq: Rq) -> Reply:
    return _snapshot_list(rq, detail=True)


def create_snapshot(rq: Rq) -> Reply:
    body = rq.json_object("snapshot")
    s = _model(rq).create_snapshot(
        _caller(rq), body.get("volume_id"), name=body.get("name", body.get("display_name")),
        description=body.get("description", body.get("display_description")),
        force=body.get("force", False), metadata=body.get("metadata"))
    return accepted({"snapshot": snapshot_view(rq, s)})


def show_snapshot(rq: Rq) -> Reply:
    s = _model(rq).get_snapshot(_caller(rq), rq.p("snapshot_id"))
    return ok({"snapshot": snapshot_view(rq, s)})


def update_snapshot(rq: Rq) -> Reply:
    body = rq.json_object("snapshot")
    s = _model(rq).update_snapshot(_caller(rq), rq.p("snapshot_id"),
                                   name=body.get("name", body.get("display_name")),
                                   description=body.get("description",
                                                        body.get("display_description")))
    return ok({"snapshot": snapshot_view(rq, s)})


def delete_snapshot(rq: Rq) -> Reply:
    _model(rq).delete_snapshot(_caller(rq), rq.p("snapshot_id"))
    return accepted()


# ---- quotas, limits, services, zones -------------------------------------------------------

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


def limits(rq: Rq) -> Reply:
    q = _model(rq).get_quota(_caller(rq), rq.auth.project_id, usage=True)
    return ok({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": q["volumes"]["limit"], "maxTotalSnapshots": q["snapshots"]["limit"],
        "maxTotalVolumeGigabytes": q["gigabytes"]["limit"],
        "maxTotalBackups": q["backups"]["limit"],
        "maxTotalBackupGigabytes": q["backup_gigabytes"]["limit"],
        "totalVolumesUsed": q["volumes"]["in_use"], "totalSnapshotsUsed": q["snapshots"]["in_use"],
        "totalGigabytesUsed": q["gigabytes"]["in_use"], "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0}}})


def services(rq: Rq) -> Reply:
    rq.require_admin("volume_extension:services:index")
    model = _model(rq)
    rows = [("cinder-scheduler", model.host)]
    rows += [("cinder-volume", f"{model.host}@{name}") for name in model.drivers]
    binary, host = rq.query.get("binary"), rq.query.get("host")
    return ok({"services": [{"binary": b, "host": h, "zone": "nova", "status": "enabled",
                             "state": "up", "updated_at": None, "disabled_reason": None}
                            for b, h in rows
                            if binary in (None, b) and host in (None, h)]})


def availability_zones(rq: Rq) -> Reply:
    return ok({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]})


# ---- the attachments API (3.27+; `complete` at 3.44, beyond Pike) ---------------------------

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
