"""The service itself: version documents, os-services, availability zones."""
from ...api import Reply, Rq, ok
from ...microversion import Microversion
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
    if binary is None and rq.profile.cinder_max < Microversion(3, 16):
        binary = rq.query.get("service")      # the deprecated alias, gone in Pike's index
    # The db's host filter: `host` matches itself and its backends (host@...) and pools.
    return ok({"services": [{"binary": b, "host": h, "zone": "nova", "status": "enabled",
                             "state": "up", "updated_at": None, "disabled_reason": None}
                            for b, h in rows
                            if binary in (None, b) and (host is None or h == host or
                                                        h.startswith((host + "@", host + "#")))
                            ]})


def availability_zones(rq: Rq) -> Reply:
    return ok({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]})
