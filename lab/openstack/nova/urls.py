"""Nova v2.1's one route table. Mitaka's catalog endpoint carries the project
(/v2.1/{project_id}), Newton's and Pike's do not: every API route is served in both forms."""
from ..api import Route
from . import extensions as ext
from . import keypair_responses as kp
from . import quota_responses as q
from . import responses as r

_API = [
    ("GET", "/extensions", ext.list_extensions),
    ("GET", "/extensions/{alias}", ext.get_extension),
    ("GET", "/os-keypairs", kp.list_keypairs),
    ("POST", "/os-keypairs", kp.create_keypair),
    ("GET", "/os-keypairs/{name}", kp.get_keypair),
    ("DELETE", "/os-keypairs/{name}", kp.delete_keypair),
    ("GET", "/os-availability-zone", kp.list_zones),
    ("GET", "/os-availability-zone/detail", kp.list_zones_detail),
    ("GET", "/flavors", r.list_flavors),
    ("GET", "/flavors/detail", r.list_flavors_detail),
    ("GET", "/flavors/{id}", r.get_flavor),
    ("GET", "/flavors/{id}/os-extra_specs", r.flavor_extra_specs),
    ("GET", "/servers", r.list_servers),
    ("POST", "/servers", r.create_server),
    ("GET", "/servers/detail", r.list_servers_detail),
    ("GET", "/servers/{id}", r.get_server),
    ("DELETE", "/servers/{id}", r.delete_server),
    ("POST", "/servers/{id}/action", r.server_action),
    ("GET", "/servers/{id}/os-volume_attachments", r.list_attachments),
    ("POST", "/servers/{id}/os-volume_attachments", r.attach_volume),
    ("GET", "/servers/{id}/os-volume_attachments/{volume_id}", r.get_attachment),
    ("DELETE", "/servers/{id}/os-volume_attachments/{volume_id}", r.detach_volume),
    ("GET", "/os-hypervisors", r.list_hypervisors),
    ("GET", "/os-hypervisors/detail", r.list_hypervisors_detail),
    ("GET", "/os-hypervisors/statistics", r.hypervisor_statistics),
    ("GET", "/os-hypervisors/{id}", r.get_hypervisor),
    ("GET", "/os-services", r.list_services),
    ("GET", "/os-quota-sets/{project}", q.get_quota),
    ("PUT", "/os-quota-sets/{project}", q.update_quota),
    ("DELETE", "/os-quota-sets/{project}", q.delete_quota),
    ("GET", "/os-quota-sets/{project}/detail", q.get_quota_detail),
    ("GET", "/os-quota-sets/{project}/defaults", q.get_quota_defaults),
    ("GET", "/limits", q.limits),
]

ROUTES: list[Route] = [
    Route("GET", "/", r.root, public=True),
    Route("GET", "/v2", r.v20, public=True),
    Route("GET", "/v2.1", r.v21, public=True),
    *[Route(m, "/v2.1" + p, h) for m, p, h in _API],
    *[Route(m, "/v2.1/{project_id}" + p, h) for m, p, h in _API],
]
