"""Nova's os-keypairs and os-availability-zone handlers (nova/api/openstack/compute/
keypairs.py and availability_zone.py at 13.0.0 / 16.0.0).

Key pairs by microversion: 2.2 adds `type` (ssh | x509) and answers create 201 and delete
204 (202 and 200 before); 2.10 lets an admin act for another user (`user_id`); 2.35 pages the
list (limit, marker). Availability zones: `nova` holds the compute hosts; the detail view
(admin) adds `internal` for the controller's services, with each service's state.
"""
from ..api import Reply, Rq, accepted, created, no_content, ok, paginate
from ..errors import BadRequest, Forbidden


def _user(rq: Rq, requested) -> str:
    """The key pairs' owner: the caller, or with 2.10+ an admin's `user_id`."""
    if requested is None or not rq.at_least("2.10"):
        return rq.auth.user_id
    if requested != rq.auth.user_id and not rq.auth.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-keypairs:create to be "
                        "performed.")
    return requested


def _view(rq: Rq, kp, *, full: bool) -> dict:
    view = {"name": kp.name, "public_key": kp.public_key, "fingerprint": kp.fingerprint}
    if rq.at_least("2.2"):
        view["type"] = kp.type
    if full:
        view.update({"user_id": kp.user_id, "deleted": False, "created_at": kp.created_at,
                     "updated_at": None, "deleted_at": None, "id": kp.id})
    return view


def create_keypair(rq: Rq) -> Reply:
    body = rq.json_object("keypair")
    allowed = {"name", "public_key"} | ({"type"} if rq.at_least("2.2") else set()) \
        | ({"user_id"} if rq.at_least("2.10") else set())
    extra = sorted(set(body) - allowed)
    if extra:
        raise BadRequest("Invalid input for field/attribute keypair. Value: "
                         f"{body}. Additional properties are not allowed ('{extra[0]}' was "
                         "unexpected)")
    if "name" not in body:
        raise BadRequest("Invalid input for field/attribute keypair. Value: "
                         f"{body}. 'name' is a required property")
    kind = body.get("type", "ssh")
    if kind not in ("ssh", "x509"):
        raise BadRequest(f"Invalid input for field/attribute type. Value: {kind}. "
                         f"'{kind}' is not one of ['ssh', 'x509']")
    public_key = body.get("public_key")
    if public_key is not None and not isinstance(public_key, str):
        raise BadRequest(f"Invalid input for field/attribute public_key. Value: "
                         f"{public_key}. {public_key!r} is not of type 'string'")
    user = _user(rq, body.get("user_id"))
    kp, private = rq.model.create_keypair(user, rq.auth.project_id, body["name"], public_key,
                                          kind)
    view = _view(rq, kp, full=False)
    view["user_id"] = kp.user_id
    if private is not None:
        view["private_key"] = private
    return (created if rq.at_least("2.2") else ok)({"keypair": view})


def list_keypairs(rq: Rq) -> Reply:
    keypairs = sorted(rq.model.keypairs_of(_user(rq, rq.query.get("user_id"))),
                      key=lambda k: k.name)
    if rq.at_least("2.35"):
        try:
            keypairs, _ = paginate(keypairs, rq.query, key="name")
        except LookupError:
            raise BadRequest(f"marker [{rq.query.get('marker')}] not found") from None
    return ok({"keypairs": [{"keypair": _view(rq, k, full=False)} for k in keypairs]})


def get_keypair(rq: Rq) -> Reply:
    kp = rq.model.get_keypair(_user(rq, rq.query.get("user_id")), rq.p("name"))
    return ok({"keypair": _view(rq, kp, full=True)})


def delete_keypair(rq: Rq) -> Reply:
    rq.model.delete_keypair(_user(rq, rq.query.get("user_id")), rq.p("name"))
    return no_content() if rq.at_least("2.2") else accepted()


# ---- availability zones ----------------------------------------------------------------

def list_zones(rq: Rq) -> Reply:
    """GET /os-availability-zone: the zones with an enabled compute service."""
    return ok({"availabilityZoneInfo": [
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]})


def list_zones_detail(rq: Rq) -> Reply:
    rq.require_admin("os_compute_api:os-availability-zone:detail")
    model = rq.model
    started = model.started

    def svc(binary):
        return {binary: {"available": True, "active": True, "updated_at": started}}

    internal = {model.controller: {**svc("nova-conductor"), **svc("nova-scheduler"),
                                   **svc("nova-consoleauth")}}
    zone = {h.name: svc("nova-compute") for h in model.hosts}
    return ok({"availabilityZoneInfo": [
        {"zoneName": "internal", "zoneState": {"available": True}, "hosts": internal},
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": zone}]})
