"""The minimal Neutron's one route table (v2.0 only; clients append v2.0 to the catalog URL)."""
from ..api import Route, collection_routes
from . import extensions as ext
from . import responses as r

READ_ONLY = ("list", "read")   # the demo's networks and subnets are made by the lab, not by clients

ROUTES: list[Route] = [
    Route("GET", "/", r.root, public=True),
    Route("GET", "/v2.0", r.v20),
    Route("GET", "/v2.0/extensions", ext.list_extensions),
    Route("GET", "/v2.0/extensions/{alias}", ext.get_extension),
    *collection_routes("/v2.0/networks", "{id}", r, "network", ops=READ_ONLY, read="get"),
    *collection_routes("/v2.0/subnets", "{id}", r, "subnet", ops=READ_ONLY, read="get"),
    *collection_routes("/v2.0/ports", "{id}", r, "port", read="get"),
    Route("GET", "/v2.0/quotas/{project}", r.get_quota),
    Route("PUT", "/v2.0/quotas/{project}", r.update_quota),
    # No router or floating-IP extension: Neutron answers 404 for their collections, which
    # openstacksdk's cloud layer tolerates (reference §f.4).
]
