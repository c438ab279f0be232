"""Volumes: the volume view (admin-only os-vol-* attributes), list filters, create, show,
update, delete. Volume actions (POST .../action) are in volume_actions.py."""
import ast

from ... import errors
from ...api import Reply, Rq, accepted, ok
from ..models import Volume
from .helpers import _caller, _flag, _link, _model, _page, _sorted


def _visible_metadata(v: Volume) -> dict:
    """The volume's metadata plus the admin metadata Cinder shows in it
    (utils.add_visible_admin_metadata): `readonly` once os-update_readonly_flag set it."""
    meta = dict(v.metadata)
    if v.readonly is not None:
        meta["readonly"] = str(v.readonly)
    return meta


def volume_view(rq: Rq, v: Volume, *, extensions: bool = True) -> dict:
    """Cinder's volume `detail` view (api/v2/views/volumes.py + the v3 additions).

    extensions: show and detail-list answers also carry what Cinder's API extensions add
    there (os-vol-tenant-attr for the owner and admins, os-vol-host-attr and
    os-vol-mig-status-attr for admins, volume_image_metadata); create and update answers do
    not (Tempest's create_volume/update_volume schemas forbid them)."""
    model = _model(rq)
    vt = model.volume_type_of(v)
    admin = rq.auth.is_admin
    view = {
        "id": v.id, "name": v.name, "description": v.description, "status": v.status,
        "size": v.size, "availability_zone": v.availability_zone, "created_at": v.created_at,
        "updated_at": v.updated_at, "volume_type": vt.name if vt else None,
        "snapshot_id": v.snapshot_id, "source_volid": v.source_volid,
        "metadata": _visible_metadata(v), "links": _link(rq, "volumes", v.id),
        "user_id": v.user_id, "bootable": "true" if v.bootable else "false",
        "encrypted": False, "replication_status": None, "consistencygroup_id": None,
        "multiattach": v.multiattach,
        "attachments": [{"id": v.id, "attachment_id": a.id, "volume_id": v.id,
                         "server_id": a.instance_uuid, "host_name": a.attached_host,
                         "device": a.mountpoint, "attached_at": a.attached_at}
                        for a in v.attachments],
    }
    if admin:   # the base view's admin-only key, on every answer
        view["migration_status"] = v.migration_status
    if extensions:
        if admin or v.project_id == rq.auth.project_id:
            view["os-vol-tenant-attr:tenant_id"] = v.project_id
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


def _volume_filters(rq: Rq, vols: list) -> list:
    q = rq.query
    model = _model(rq)
    for key in ("name", "status", "availability_zone"):
        want = q.get(key)
        if want is not None:
            vols = [v for v in vols if getattr(v, key) == want]
        # 3.34: "like" filters, key~=text matches a substring (Cinder's inexact filters)
        like = q.get(f"{key}~") if rq.at_least("3.34") else None
        if like is not None:
            vols = [v for v in vols if like in (getattr(v, key) or "")]
    if rq.at_least("3.4") and q.get("glance_metadata") is not None:
        want = _dict_filter(q["glance_metadata"], "glance_metadata")
        vols = [v for v in vols if all((v.image_metadata or {}).get(k) == str(x)
                                       for k, x in want.items())]
    if rq.at_least("3.10") and q.get("group_id") is not None:
        vols = []   # the lab has no generic groups, so no volume is in the group asked for
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
        want = _dict_filter(q["metadata"], "metadata")
        vols = [v for v in vols if all(v.metadata.get(k) == str(x) for k, x in want.items())]
    return vols


def _dict_filter(text: str, name: str) -> dict:
    """A dict-valued filter as Cinder parses it (ast.literal_eval): 400 when it is not one."""
    try:
        want = ast.literal_eval(text)
        assert isinstance(want, dict)
    except (ValueError, SyntaxError, AssertionError):
        raise errors.BadRequest(f"Invalid input received: {name} filter must be a dict",
                                kind="InvalidInput") from None
    return want


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
    return accepted({"volume": volume_view(rq, vol, extensions=False)})


def show_volume(rq: Rq) -> Reply:
    return ok({"volume": volume_view(rq, _model(rq).get_volume(_caller(rq), rq.p("volume_id")))})


def update_volume(rq: Rq) -> Reply:
    body = rq.json_object("volume")
    vol = _model(rq).update_volume(
        _caller(rq), rq.p("volume_id"), name=body.get("name", body.get("display_name")),
        description=body.get("description", body.get("display_description")),
        metadata=body.get("metadata"))
    return ok({"volume": volume_view(rq, vol, extensions=False)})


def delete_volume(rq: Rq) -> Reply:
    _model(rq).delete_volume(_caller(rq), rq.p("volume_id"),
                             cascade=_flag(rq.query, "cascade"),
                             force=rq.at_least("3.23") and _flag(rq.query, "force"))
    return accepted()
