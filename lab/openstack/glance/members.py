"""Glance v2 image members: sharing an image with other projects. No HTTP.

Facts: glance/api/v2/image_members.py and glance/domain (ImageMemberFactory, the
ImmutableMemberProxy rules of glance/api/authorization.py) at 12.0.0 / 15.0.0:
- only the image's owner adds or removes members; only the member changes its own status
  (pending -> accepted | rejected, any order); the owner changing a status is 403;
- from 14.0.0 (Ocata) only images with visibility `shared` may have members ("Only shared
  images have members."); earlier, any non-public image;
- a member sees the image (get, and in lists when accepted, or with member_status);
- each member: {created_at, updated_at, image_id, member_id, status, schema}.
"""
from dataclasses import dataclass, field

from ..errors import BadRequest, Conflict, Forbidden, NotFound
from .models import Image, now_iso

STATUSES = ("pending", "accepted", "rejected")


@dataclass
class Member:
    image_id: str
    member_id: str
    status: str = "pending"
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    def view(self) -> dict:
        return {"created_at": self.created_at, "updated_at": self.updated_at,
                "image_id": self.image_id, "member_id": self.member_id,
                "status": self.status, "schema": "/v2/schemas/member"}


class Members:
    """The members of every image: {image_id: {member_id: Member}} (ImageModel.members)."""

    def __init__(self, model):
        self.model = model

    @property
    def table(self) -> dict:
        return self.model.members

    def of(self, image: Image) -> dict:
        return self.table.get(image.id, {})

    def status_of(self, image: Image, project_id: str | None) -> str | None:
        m = self.of(image).get(project_id)
        return m.status if m else None

    def add(self, image: Image, member_id, caller: str, is_admin: bool) -> Member:
        if image.owner != caller and not is_admin:
            raise Forbidden(f"Not allowed to create members for image {image.id}.")
        if self.model.profile.glance_members_need_shared:
            if image.visibility != "shared":
                raise Forbidden(f"Not allowed to create members for image {image.id}.")
        elif image.visibility == "public":
            raise Forbidden(f"Not allowed to create members for image {image.id}.")
        if not isinstance(member_id, str) or not member_id:
            raise BadRequest("Member to be added not specified")
        members = self.table.setdefault(image.id, {})
        if member_id in members:
            raise Conflict(f"Member {member_id} is duplicated for image {image.id}")
        members[member_id] = member = Member(image.id, member_id)
        return member

    def get(self, image: Image, member_id: str, caller: str, is_admin: bool) -> Member:
        member = self.of(image).get(member_id)
        visible = image.owner == caller or is_admin or member_id == caller
        if member is None or not visible:
            raise NotFound(f"{member_id} not found in the member list of the image "
                           f"{image.id}.")
        return member

    def listing(self, image: Image, caller: str, is_admin: bool) -> list[Member]:
        if image.visibility == "public":
            raise Forbidden(f"Not allowed to list members for image {image.id}.")
        members = list(self.of(image).values())
        if image.owner == caller or is_admin:
            return members
        return [m for m in members if m.member_id == caller]

    def update(self, image: Image, member_id: str, status, caller: str,
               is_admin: bool) -> Member:
        member = self.get(image, member_id, caller, is_admin)
        if member_id != caller:
            raise Forbidden(f"Not allowed to update members for image {image.id}.")
        if status not in STATUSES:
            raise BadRequest(f"Incorrect request: Status must be one of "
                             f"{', '.join(STATUSES)}")
        member.status = status
        member.updated_at = now_iso()
        return member

    def remove(self, image: Image, member_id: str, caller: str, is_admin: bool) -> None:
        self.get(image, member_id, caller, is_admin)
        if image.owner != caller and not is_admin:
            raise Forbidden(f"Not allowed to delete members for image {image.id}.")
        del self.table[image.id][member_id]

    def forget(self, image_id: str) -> None:
        self.table.pop(image_id, None)
