"""Neutron v2.0 handlers: networks, subnets, ports and quotas as the clients read them.
Errors are {"NeutronError": {type, message, detail}} (error_style "neutron")."""
from ..errors import BadRequest, Forbidden, NotFound
from ..api import Reply, Rq, created, no_content, ok, paginate
from .models import Network, NetworkModel, Port, Subnet

PAGING_KEYS = ("fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse")


def _model(rq: Rq) -> NetworkModel:
    return rq.model


def _who(rq: Rq) -> tuple:
    return rq.auth.project_id, rq.auth.is_admin


def network_view(n: Network) -> dict:
    return {"id": n.id, "name": n.name, "status": "ACTIVE", "subnets": list(n.subnets),
            "admin_state_up": True, "shared": n.shared, "tenant_id": n.project_id,
            "project_id": n.project_id, "router:external": False, "mtu": 1450,
            "port_security_enabled": True, "availability_zones": ["nova"],
            "availability_zone_hints": [], "ipv4_address_scope": None,
            "ipv6_address_scope": None, "description": "", "tags": [],
            "created_at": n.created_at, "updated_at": n.created_at, "revision_number": 2}


def subnet_view(s: Subnet) -> dict:
    start, end = s.pool()
    return {"id": s.id, "name": s.name, "network_id": s.network_id, "tenant_id": s.project_id,
            "project_id": s.project_id, "ip_version": 4, "cidr": s.cidr,
            "gateway_ip": s.gateway_ip, "allocation_pools": [{"start": start, "end": end}],
            "dns_nameservers": [], "host_routes": [], "enable_dhcp": True,
            "ipv6_ra_mode": None, "ipv6_address_mode": None, "subnetpool_id": None,
            "description": "", "tags": [], "created_at": s.created_at,
            "updated_at": s.created_at, "revision_number": 0}


def port_view(p: Port) -> dict:
    return {"id": p.id, "name": p.name, "network_id": p.network_id, "tenant_id": p.project_id,
            "project_id": p.project_id, "mac_address": p.mac_address,
            "fixed_ips": [dict(ip) for ip in p.fixed_ips], "device_id": p.device_id,
            "device_owner": p.device_owner, "status": p.status, "admin_state_up": True,
            "security_groups": [], "allowed_address_pairs": [], "extra_dhcp_opts": [],
            "port_security_enabled": True, "binding:vnic_type": "normal", "description": "",
            "tags": [], "created_at": p.created_at, "updated_at": p.created_at,
            "revision_number": 1}


def _listing(rq: Rq, plural: str, views: list[dict]) -> Reply:
    """Neutron's list semantics: every other query key filters on the field of that name
    (repeat a key for any-of); `fields` trims the views; marker/limit page."""
    for key in set(rq.query) - set(PAGING_KEYS):
        wanted = rq.query.getall(key)
        views = [v for v in views if key not in v or _text(v[key]) in wanted
                 or (isinstance(v[key], bool) and _text(v[key]).lower() in
                     [w.lower() for w in wanted])]
    try:
        views, more = paginate(views, rq.query)
    except LookupError:
        raise NotFound(f"Marker {rq.query.get('marker')} could not be found.") from None
    fields = rq.query.getall("fields", [])
    if fields:
        views = [{k: v[k] for k in fields if k in v} for v in views]
    body = {plural: views}
    if more and views and "id" in views[-1]:
        body[f"{plural}_links"] = [{"rel": "next", "href": f"{rq.base_url}/v2.0/{plural}?"
                                    f"limit={rq.query.get('limit')}&marker={views[-1]['id']}"}]
    return ok(body)


def _text(value) -> str:
    return str(value) if not isinstance(value, bool) else ("True" if value else "False")


# ---- discovery -----------------------------------------------------------------------------

def root(rq: Rq) -> Reply:
    return ok(rq.profile.neutron_root(rq.base_url))


def v20(rq: Rq) -> Reply:
    return ok({"resources": [{"name": n, "collection": f"{n}s",
                              "links": [{"rel": "self", "href": f"{rq.base_url}/v2.0/{n}s"}]}
                             for n in ("network", "subnet", "port")]})


def no_extension(rq: Rq) -> Reply:
    raise NotFound("The resource could not be found.", kind="HTTPNotFound")


# ---- networks, subnets, ports --------------------------------------------------------------

def list_networks(rq: Rq) -> Reply:
    return _listing(rq, "networks", [network_view(n) for n in _model(rq).list_networks(*_who(rq))])


def get_network(rq: Rq) -> Reply:
    return ok({"network": network_view(_model(rq).get_network(rq.p("id"), *_who(rq)))})


def list_subnets(rq: Rq) -> Reply:
    return _listing(rq, "subnets", [subnet_view(s) for s in _model(rq).list_subnets(*_who(rq))])


def get_subnet(rq: Rq) -> Reply:
    return ok({"subnet": subnet_view(_model(rq).get_subnet(rq.p("id"), *_who(rq)))})


def list_ports(rq: Rq) -> Reply:
    return _listing(rq, "ports", [port_view(p) for p in _model(rq).list_ports(*_who(rq))])


def get_port(rq: Rq) -> Reply:
    return ok({"port": port_view(_model(rq).get_port(rq.p("id"), *_who(rq)))})


def _port_body(rq: Rq) -> dict:
    body = rq.json_object("port")
    allowed = {"network_id", "name", "device_id", "device_owner", "admin_state_up",
               "tenant_id", "project_id", "description"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'",
                         kind="HTTPBadRequest")
    return body


def create_port(rq: Rq) -> Reply:
    body = _port_body(rq)
    if not isinstance(body.get("network_id"), str):
        raise BadRequest("Failed to parse request. Required attribute 'network_id' not "
                         "specified", kind="HTTPBadRequest")
    project = body.get("project_id") or body.get("tenant_id") or rq.auth.project_id
    if project != rq.auth.project_id and not rq.auth.is_admin:
        raise BadRequest("Specifying 'project_id' or 'tenant_id' other than the authenticated "
                         "project in request requires admin privileges",
                         kind="HTTPBadRequest")
    port = _model(rq).create_port(project, body["network_id"], device_id=body.get("device_id", ""),
                                  device_owner=body.get("device_owner", ""),
                                  name=body.get("name", ""), is_admin=rq.auth.is_admin)
    return created({"port": port_view(port)})


def update_port(rq: Rq) -> Reply:
    port = _model(rq).get_port(rq.p("id"), *_who(rq))
    return ok({"port": port_view(_model(rq).update_port(port, _port_body(rq)))})


def delete_port(rq: Rq) -> Reply:
    port = _model(rq).get_port(rq.p("id"), *_who(rq))
    _model(rq).delete_port(port.id)
    return no_content()


# ---- quotas --------------------------------------------------------------------------------

def get_quota(rq: Rq) -> Reply:
    project = rq.p("project")
    if project != rq.auth.project_id and not rq.auth.is_admin:
        raise Forbidden("Only admin is authorized to access quotas for another tenant",
                        kind="AdminRequired")
    return ok({"quota": _model(rq).quota(project)})


def update_quota(rq: Rq) -> Reply:
    if not rq.auth.is_admin:
        raise Forbidden("Only admin can update quotas", kind="AdminRequired")
    return ok({"quota": _model(rq).set_quota(rq.p("project"), rq.json_object("quota"))})
