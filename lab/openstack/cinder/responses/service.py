"""The service itself: version documents, os-services, availability zones."""
from ...api import Reply, Rq, ok
from ..models.records import now_iso
from .helpers import _model


def root(rq: Rq) -> Reply:
    return Reply(300, rq.profile.cinder_root(rq.base_url))


def v3_root(rq: Rq) -> Reply:
    return ok(rq.profile.cinder_version(rq.base_url, 3))


def services(rq: Rq) -> Reply:
    rq.require_admin("volume_extension:services:index")
    model = _model(rq)
    rows = [("cinder-scheduler", model.host)]
    rows += [("cinder-volume", f"{model.host}@{name}") for name in model.drivers]
    binary, host = rq.query.get("binary"), rq.query.get("host")
    return ok({"services": [_service_view(rq, b, h) for b, h in rows
                            if binary in (None, b) and _on_host(h, host)]})


def _on_host(service_host: str, wanted: str | None) -> bool:
    """Cinder's host filter matches the host itself and each `host@backend` on it."""
    return wanted is None or service_host == wanted or service_host.startswith(wanted + "@")


def _service_view(rq: Rq, binary: str, host: str) -> dict:
    """Cinder's os-services index entry (api/contrib/services.py, os-extended-services on):
    updated_at is the last heartbeat (the lab's services are always up: now); cinder-volume
    rows add the replication fields; 3.7 adds `cluster`."""
    view = {"binary": binary, "host": host, "zone": "nova", "status": "enabled",
            "state": "up", "updated_at": now_iso(), "disabled_reason": None}
    if binary == "cinder-volume":
        view.update(replication_status="disabled", active_backend_id=None, frozen=False)
    if rq.at_least("3.7"):
        view["cluster"] = None
    return view


def availability_zones(rq: Rq) -> Reply:
    return ok({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]})
