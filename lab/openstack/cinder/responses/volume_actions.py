"""POST /volumes/{volume_id}/action: one handler per os-* action, dispatched through ACTIONS.
The legacy attach flow Nova drives (os-reserve ... os-detach) is models/attachments.py's API,
os-retype and os-migrate_volume models/migration.py's."""
import asyncio

from ... import errors
from ...api import Reply, Rq, accepted, ok
from .helpers import _action_args, _caller, _model


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


def _image_metadata(m, c, vid) -> dict:
    return dict(m.get_volume(c, vid).image_metadata or {})


def _set_image_metadata(rq, m, c, vid, a):
    meta = a.get("metadata")
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise errors.BadRequest("Malformed request body: metadata must be an object of strings")
    with m.lock:
        v = m.get_volume(c, vid)
        v.image_metadata = dict(v.image_metadata or {}, **meta)
        return ok({"metadata": dict(v.image_metadata)})


def _unset_image_metadata(rq, m, c, vid, a):
    key = a.get("key")
    with m.lock:
        v = m.get_volume(c, vid)
        if not isinstance(key, str) or key not in (v.image_metadata or {}):
            raise errors.NotFound(f"Glance metadata for volume {vid} with key {key} "
                                  f"could not be found.", kind="GlanceMetadataNotFound")
        del v.image_metadata[key]
    return ok()


def _show_image_metadata(rq, m, c, vid, a):
    return ok({"metadata": _image_metadata(m, c, vid)})


def _revert(rq, m, c, vid, a):
    """`revert` (3.40, cinder/api/v3/volumes.py): below 3.40 no such action (404)."""
    if not rq.at_least("3.40"):
        raise errors.NotFound("The resource could not be found.")
    m.revert_to_snapshot(c, vid, a.get("snapshot_id"))
    return accepted()


def _upload_image(rq, m, c, vid, a):
    """os-volume_upload_image: 202 with the image Cinder created (models/upload.py)."""
    return accepted({"os-volume_upload_image": m.upload_to_image(c, vid, a, rq.version)})


def _readonly(rq, m, c, vid, a):
    if "readonly" not in a:
        raise errors.BadRequest("Must specify readonly in request.")
    m.update_readonly_flag(c, vid, a["readonly"])
    return accepted()


ACTIONS = {
    "os-set_image_metadata": _set_image_metadata,
    "os-unset_image_metadata": _unset_image_metadata,
    "os-show_image_metadata": _show_image_metadata,
    "os-extend": _extend, "os-retype": _retype, "os-reset_status": _reset_status,
    "os-initialize_connection": _initialize, "os-terminate_connection": _terminate,
    "os-attach": _attach, "os-detach": _detach, "os-reserve": _simple("reserve"),
    "os-unreserve": _simple("unreserve"), "os-begin_detaching": _simple("begin_detaching"),
    "os-roll_detaching": _simple("roll_detaching"), "os-set_bootable": _set_bootable,
    "os-migrate_volume": _migrate, "os-force_delete": _force_delete,
    "os-update_readonly_flag": _readonly, "revert": _revert,
    "os-volume_upload_image": _upload_image,
}
