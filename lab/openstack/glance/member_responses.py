"""Glance v2 handlers of image members and of the /v2/schemas documents."""
from ..api import Reply, Rq, no_content, ok
from ..errors import BadRequest, NotFound
from .members import Members
from .schemas import SCHEMAS


def _members(rq: Rq) -> Members:
    return Members(rq.model)


def _image(rq: Rq):
    return rq.model.get(rq.p("image_id"), rq.auth.project_id, rq.auth.is_admin)


def schema(rq: Rq) -> Reply:
    """GET /v2/schemas/{name}: image, images, member, members (glance/api/v2/schemas.py)."""
    make = SCHEMAS.get(rq.p("name"))
    if make is None:
        raise NotFound("The resource could not be found.")
    return ok(make(rq.profile))


def add_member(rq: Rq) -> Reply:
    body = rq.json_object()
    if "member" not in body:
        raise BadRequest("Member to be added not specified")
    member = _members(rq).add(_image(rq), body["member"], rq.auth.project_id,
                              rq.auth.is_admin)
    return ok(member.view())


def list_members(rq: Rq) -> Reply:
    members = _members(rq).listing(_image(rq), rq.auth.project_id, rq.auth.is_admin)
    return ok({"members": [m.view() for m in members], "schema": "/v2/schemas/members"})


def get_member(rq: Rq) -> Reply:
    return ok(_members(rq).get(_image(rq), rq.p("member_id"), rq.auth.project_id,
                               rq.auth.is_admin).view())


def update_member(rq: Rq) -> Reply:
    body = rq.json_object()
    if "status" not in body:
        raise BadRequest("Status not specified")
    member = _members(rq).update(_image(rq), rq.p("member_id"), body["status"],
                                 rq.auth.project_id, rq.auth.is_admin)
    return ok(member.view())


def remove_member(rq: Rq) -> Reply:
    _members(rq).remove(_image(rq), rq.p("member_id"), rq.auth.project_id, rq.auth.is_admin)
    return no_content()
