"""The service itself: version documents, os-services, availability zones."""
import weakref

from ... import errors
from ...api import Reply, Rq, ok
from ...microversion import Microversion
from ..models.records import now_iso
from .helpers import _model


def root(rq: Rq) -> Reply:
    return Reply(300, rq.profile.cinder_root(rq.base_url))


def v3_root(rq: Rq) -> Reply:
    return ok(rq.profile.cinder_version(rq.base_url, 3))


def v2_root(rq: Rq) -> Reply:
    return ok(rq.profile.cinder_version(rq.base_url, 2))


def services(rq: Rq) -> Reply:
    rq.require_admin("volume_extension:services:index")
    rows = _rows(rq)
    binary, host = rq.query.get("binary"), rq.query.get("host")
    if binary is None and rq.profile.cinder_max < Microversion(3, 16):
        binary = rq.query.get("service")      # the deprecated alias, gone in Pike's index
    return ok({"services": [_service_view(rq, b, h) for b, h in rows
                            if binary in (None, b) and _on_host(h, host)]})


def _on_host(service_host: str, wanted: str | None) -> bool:
    """Cinder's db host filter: the host itself, each `host@backend` on it and its pools."""
    return (wanted is None or service_host == wanted
            or service_host.startswith((wanted + "@", wanted + "#")))


def _service_view(rq: Rq, binary: str, host: str) -> dict:
    """Cinder's os-services index entry (api/contrib/services.py, os-extended-services on):
    updated_at is the last heartbeat (the lab's services are always up: now); cinder-volume
    rows add the replication fields; 3.7 adds `cluster`."""
    off = _DISABLED.get(_model(rq), {})
    view = {"binary": binary, "host": host, "zone": "nova",
            "status": "disabled" if (binary, host) in off else "enabled",
            "state": "up", "updated_at": now_iso(), "disabled_reason": off.get((binary, host))}
    if binary == "cinder-volume":
        view.update(replication_status="disabled", active_backend_id=None, frozen=False)
    if rq.at_least("3.7"):
        view["cluster"] = None
    return view


def availability_zones(rq: Rq) -> Reply:
    return ok({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]})


# (model -> {(binary, host): disabled_reason or "" when disabled}): the services the admin
# disabled; a WeakKeyDictionary so a closed cloud's state goes with its model.
_DISABLED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _rows(rq: Rq) -> list:
    model = _model(rq)
    backup = [("cinder-backup", model.host)] if model.backup_driver is not None else []
    return [("cinder-scheduler", model.host)] + backup + \
        [("cinder-volume", f"{model.host}@{name}") for name in model.drivers]


def service_action(rq: Rq) -> Reply:
    """PUT /v3/{p}/os-services/{action} (Cinder api/contrib/services.py update): enable,
    disable, disable-log-reason ({"host", "binary"[, "disabled_reason"]}: 404 for an unknown
    service, 400 for a missing reason), freeze and thaw ({"host"}: 400 for a host with no
    cinder-volume)."""
    rq.require_admin("volume_extension:services:update")
    action = rq.p("action")
    body = rq.json_object()
    host, binary = body.get("host"), body.get("binary", body.get("service"))
    if action in ("freeze", "thaw"):
        if not any(b == "cinder-volume" and _on_host(h, host) for b, h in _rows(rq)) \
                or not host:
            raise errors.BadRequest(f"Invalid input received: Host {host} is not a "
                                    f"cinder-volume host", kind="InvalidInput")
        return ok()
    if action not in ("enable", "disable", "disable-log-reason"):
        raise errors.NotFound("Unknown action")
    if not isinstance(host, str) or not isinstance(binary, str):
        raise errors.BadRequest("Missing required element 'host' or 'binary' in request body.")
    reason = body.get("disabled_reason")
    if action == "disable-log-reason" and not (isinstance(reason, str) and reason.strip()
                                               and len(reason) <= 255):
        raise errors.BadRequest("Disabled reason contains invalid characters or is too long")
    if (binary, host) not in _rows(rq):
        raise errors.NotFound(f"Service {binary} on host {host} could not be found.",
                              kind="ServiceNotFound")
    disabled = _DISABLED.setdefault(_model(rq), {})
    if action == "enable":
        disabled.pop((binary, host), None)
    else:
        disabled[(binary, host)] = reason if action == "disable-log-reason" else None
    is_off = (binary, host) in disabled
    return ok({"host": host, "service": binary, "binary": binary, "disabled": is_off,
               "status": "disabled" if is_off else "enabled",
               "disabled_reason": disabled.get((binary, host))})
