"""Glance v2's one route table."""
from ..api import Route
from . import responses as r

IMG = "/v2/images/{image_id}"

ROUTES: list[Route] = [
    Route("GET", "/", r.root, public=True),
    Route("GET", "/versions", r.versions, public=True),
    Route("GET", "/v2/images", r.list_images),
    Route("POST", "/v2/images", r.create_image),
    Route("GET", IMG, r.get_image),
    Route("PATCH", IMG, r.update_image),
    Route("DELETE", IMG, r.delete_image),
    Route("PUT", f"{IMG}/file", r.upload, stream=True),
    Route("GET", f"{IMG}/file", r.download),
    Route("PUT", f"{IMG}/tags/{{tag}}", r.add_tag),
    Route("DELETE", f"{IMG}/tags/{{tag}}", r.remove_tag),
]
