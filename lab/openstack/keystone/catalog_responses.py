"""Keystone v3 handlers for catalog administration: regions, services, endpoints and
OS-EP-FILTER endpoint groups (shapes: Identity v3 API reference, Pike; keystone 12.0.0
keystone/catalog/controllers.py). Policy: admin, except that anyone may read regions
(policy.json "identity:get_region"/"list_regions": "")."""
from ..api import Reply, Rq, created, no_content, ok
from .catalog import Endpoint, EndpointGroup, Region, Service
from .responses import _admin, _list_links, _model, _self_link


def region_view(rq: Rq, r: Region) -> dict:
    return {"id": r.id, "description": r.description, "parent_region_id": r.parent_region_id,
            "links": _self_link(rq, "regions", r.id)}


def service_view(rq: Rq, s: Service) -> dict:
    view = {"id": s.id, "type": s.type, "enabled": s.enabled,
            "links": _self_link(rq, "services", s.id)}
    for key in ("name", "description"):
        if getattr(s, key) is not None:
            view[key] = getattr(s, key)
    return view


def endpoint_view(rq: Rq, e: Endpoint) -> dict:
    return {"id": e.id, "service_id": e.service_id, "interface": e.interface, "url": e.url,
            "region_id": e.region_id, "region": e.region_id, "enabled": e.enabled,
            "links": _self_link(rq, "endpoints", e.id)}


def endpoint_group_view(rq: Rq, g: EndpointGroup) -> dict:
    return {"id": g.id, "name": g.name, "description": g.description, "filters": g.filters,
            "links": _self_link(rq, "OS-EP-FILTER", "endpoint_groups", g.id)}


# ---- regions -------------------------------------------------------------------------------

def list_regions(rq: Rq) -> Reply:
    regions = list(_model(rq).regions.values())
    if rq.query.get("parent_region_id"):
        regions = [r for r in regions if r.parent_region_id == rq.query["parent_region_id"]]
    return ok({"regions": [region_view(rq, r) for r in regions], "links": _list_links(rq)})


def get_region(rq: Rq) -> Reply:
    return ok({"region": region_view(rq, _model(rq).get_region(rq.p("region_id")))})


def create_region(rq: Rq) -> Reply:
    _admin(rq, "identity:create_region")
    return created({"region": region_view(rq, _model(rq).create_region(rq.json_object("region")))})


def create_region_with_id(rq: Rq) -> Reply:
    _admin(rq, "identity:create_region")
    r = _model(rq).create_region(rq.json_object("region"), region_id=rq.p("region_id"))
    return created({"region": region_view(rq, r)})


def update_region(rq: Rq) -> Reply:
    _admin(rq, "identity:update_region")
    r = _model(rq).update_region(rq.p("region_id"), rq.json_object("region"))
    return ok({"region": region_view(rq, r)})


def delete_region(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_region")
    _model(rq).delete_region(rq.p("region_id"))
    return no_content()


# ---- services ------------------------------------------------------------------------------

def list_services(rq: Rq) -> Reply:
    _admin(rq, "identity:list_services")
    services = _model(rq).list_services()
    if rq.query.get("type"):
        services = [s for s in services if s.type == rq.query["type"]]
    return ok({"services": [service_view(rq, s) for s in services], "links": _list_links(rq)})


def get_service(rq: Rq) -> Reply:
    _admin(rq, "identity:get_service")
    return ok({"service": service_view(rq, _model(rq).get_service(rq.p("service_id")))})


def create_service(rq: Rq) -> Reply:
    _admin(rq, "identity:create_service")
    s = _model(rq).create_service(rq.json_object("service"))
    return created({"service": service_view(rq, s)})


def update_service(rq: Rq) -> Reply:
    _admin(rq, "identity:update_service")
    s = _model(rq).update_service(rq.p("service_id"), rq.json_object("service"))
    return ok({"service": service_view(rq, s)})


def delete_service(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_service")
    _model(rq).delete_service(rq.p("service_id"))
    return no_content()


# ---- endpoints -----------------------------------------------------------------------------

def list_endpoints(rq: Rq) -> Reply:
    _admin(rq, "identity:list_endpoints")
    endpoints = _model(rq).list_endpoints()
    for key in ("service_id", "interface", "region_id"):
        if rq.query.get(key):
            endpoints = [e for e in endpoints if getattr(e, key) == rq.query[key]]
    return ok({"endpoints": [endpoint_view(rq, e) for e in endpoints], "links": _list_links(rq)})


def get_endpoint(rq: Rq) -> Reply:
    _admin(rq, "identity:get_endpoint")
    return ok({"endpoint": endpoint_view(rq, _model(rq).get_endpoint(rq.p("endpoint_id")))})


def create_endpoint(rq: Rq) -> Reply:
    _admin(rq, "identity:create_endpoint")
    e = _model(rq).create_endpoint(rq.json_object("endpoint"))
    return created({"endpoint": endpoint_view(rq, e)})


def update_endpoint(rq: Rq) -> Reply:
    _admin(rq, "identity:update_endpoint")
    e = _model(rq).update_endpoint(rq.p("endpoint_id"), rq.json_object("endpoint"))
    return ok({"endpoint": endpoint_view(rq, e)})


def delete_endpoint(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_endpoint")
    _model(rq).delete_endpoint(rq.p("endpoint_id"))
    return no_content()


# ---- OS-EP-FILTER endpoint groups ----------------------------------------------------------

def list_endpoint_groups(rq: Rq) -> Reply:
    _admin(rq, "identity:list_endpoint_groups")
    groups = list(_model(rq).endpoint_groups.values())
    if rq.query.get("name"):
        groups = [g for g in groups if g.name == rq.query["name"]]
    return ok({"endpoint_groups": [endpoint_group_view(rq, g) for g in groups],
               "links": _list_links(rq)})


def get_endpoint_group(rq: Rq) -> Reply:
    _admin(rq, "identity:get_endpoint_group")
    g = _model(rq).get_endpoint_group(rq.p("group_id"))
    return ok({"endpoint_group": endpoint_group_view(rq, g)})


def create_endpoint_group(rq: Rq) -> Reply:
    _admin(rq, "identity:create_endpoint_group")
    g = _model(rq).create_endpoint_group(rq.json_object("endpoint_group"))
    return created({"endpoint_group": endpoint_group_view(rq, g)})


def update_endpoint_group(rq: Rq) -> Reply:
    _admin(rq, "identity:update_endpoint_group")
    g = _model(rq).update_endpoint_group(rq.p("group_id"), rq.json_object("endpoint_group"))
    return ok({"endpoint_group": endpoint_group_view(rq, g)})


def delete_endpoint_group(rq: Rq) -> Reply:
    _admin(rq, "identity:delete_endpoint_group")
    _model(rq).delete_endpoint_group(rq.p("group_id"))
    return no_content()


def _association(rq: Rq) -> dict:
    if "endpoint_id" in rq.params:
        return {"endpoint_id": rq.p("endpoint_id")}
    return {"group_id": rq.p("group_id")}


def associate(rq: Rq) -> Reply:
    _admin(rq, "identity:add_endpoint_to_project")
    _model(rq).associate(rq.p("pid"), **_association(rq))
    return no_content()


def check_association(rq: Rq) -> Reply:
    _admin(rq, "identity:check_endpoint_in_project")
    _model(rq).check_association(rq.p("pid"), **_association(rq))
    return no_content()


def dissociate(rq: Rq) -> Reply:
    _admin(rq, "identity:remove_endpoint_from_project")
    _model(rq).dissociate(rq.p("pid"), **_association(rq))
    return no_content()


def project_endpoints(rq: Rq) -> Reply:
    _admin(rq, "identity:list_endpoints_for_project")
    m = _model(rq)
    m.get_project(rq.p("pid"))
    ids = m.filtered_endpoint_ids(rq.p("pid")) or set()
    endpoints = [e for e in m.list_endpoints() if e.id in ids]
    return ok({"endpoints": [endpoint_view(rq, e) for e in endpoints], "links": _list_links(rq)})


def group_endpoints(rq: Rq) -> Reply:
    _admin(rq, "identity:list_endpoints_associated_with_endpoint_group")
    endpoints = _model(rq).group_endpoints(rq.p("group_id"))
    return ok({"endpoints": [endpoint_view(rq, e) for e in endpoints], "links": _list_links(rq)})
