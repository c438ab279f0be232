"""Glance v2's one route table."""
from ..api import Route, collection_routes
from . import member_responses as m
from . import responses as r

ROUTES: list[Route] = [
    Route("GET", "/", r.root, public=True),
    Route("GET", "/versions", r.versions, public=True),
    *collection_routes("/v2/images", "{image_id}", r, "image", read="get", update="PATCH"),
    Route("PUT", "/v2/images/{image_id}/file", r.upload, stream=True),
    Route("GET", "/v2/images/{image_id}/file", r.download),
    Route("PUT", "/v2/images/{image_id}/tags/{tag}", r.add_tag),
    Route("DELETE", "/v2/images/{image_id}/tags/{tag}", r.remove_tag),
    Route("POST", "/v2/images/{image_id}/actions/deactivate", r.deactivate),
    Route("POST", "/v2/images/{image_id}/actions/reactivate", r.reactivate),
    Route("GET", "/v2/schemas/{name}", m.schema),
    Route("POST", "/v2/images/{image_id}/members", m.add_member),
    Route("GET", "/v2/images/{image_id}/members", m.list_members),
    Route("GET", "/v2/images/{image_id}/members/{member_id}", m.get_member),
    Route("PUT", "/v2/images/{image_id}/members/{member_id}", m.update_member),
    Route("DELETE", "/v2/images/{image_id}/members/{member_id}", m.remove_member),
]
