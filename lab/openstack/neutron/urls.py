"""The minimal Neutron's one route table (v2.0 only; clients append v2.0 to the catalog URL)."""
from ..api import Route
from . import extensions as ext
from . import responses as r

ROUTES: list[Route] = [
    Route("GET", "/", r.root, public=True),
    Route("GET", "/v2.0", r.v20),
    Route("GET", "/v2.0/extensions", ext.list_extensions),
    Route("GET", "/v2.0/extensions/{alias}", ext.get_extension),
    Route("GET", "/v2.0/networks", r.list_networks),
    Route("GET", "/v2.0/networks/{id}", r.get_network),
    Route("GET", "/v2.0/subnets", r.list_subnets),
    Route("GET", "/v2.0/subnets/{id}", r.get_subnet),
    Route("GET", "/v2.0/ports", r.list_ports),
    Route("POST", "/v2.0/ports", r.create_port),
    Route("GET", "/v2.0/ports/{id}", r.get_port),
    Route("PUT", "/v2.0/ports/{id}", r.update_port),
    Route("DELETE", "/v2.0/ports/{id}", r.delete_port),
    Route("GET", "/v2.0/quotas/{project}", r.get_quota),
    Route("PUT", "/v2.0/quotas/{project}", r.update_quota),
    # No router or floating-IP extension: Neutron answers 404 for their collections, which
    # openstacksdk's cloud layer tolerates (reference §f.4).
]
