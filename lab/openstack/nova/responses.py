"""Nova v2.1 handlers: discovery, flavors, servers, volume attachments, console output,
hypervisors and services (quotas and limits: quota_responses.py; key pairs and zones:
keypair_responses.py). Errors are Nova's faults (error_style "fault")."""
import asyncio
import json
import uuid

from ..errors import BadRequest, Conflict, NotFound
from ..api import Reply, Rq, accepted, no_content, ok, paginate
from .models import Caller, ComputeHost, ComputeModel, Flavor, Server

# Keys of POST /servers' `server` that Nova 13-16's schema and its extensions know.
SERVER_CREATE_KEYS = {"name", "imageRef", "flavorRef", "adminPass", "metadata", "networks",
                      "block_device_mapping", "block_device_mapping_v2", "user_data",
                      "min_count", "max_count", "return_reservation_id", "key_name",
                      "availability_zone", "config_drive", "security_groups", "personality",
                      "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}


def _model(rq: Rq) -> ComputeModel:
    return rq.model


def _caller(rq: Rq) -> Caller:
    return Caller(rq.auth.project_id, rq.auth.user_id, rq.auth.is_admin)


def _link_base(rq: Rq) -> str:
    """Links carry the project in the URL when the catalog does (Mitaka's endpoint)."""
    parts = [p for p in rq.path.split("/") if p]
    if len(parts) > 1 and parts[1] == rq.auth.project_id:
        return f"{rq.base_url}/v2.1/{parts[1]}"
    return f"{rq.base_url}/v2.1"


def _links(rq: Rq, kind: str, oid: str) -> list:
    base = _link_base(rq)
    return [{"rel": "self", "href": f"{base}/{kind}/{oid}"},
            {"rel": "bookmark", "href": f"{base.replace('/v2.1', '')}/{kind}/{oid}"}]


# ---- discovery ---------------------------------------------------------------------------

def root(rq: Rq) -> Reply:
    return ok(rq.profile.nova_root(rq.base_url))


def v20(rq: Rq) -> Reply:
    return ok(rq.profile.nova_v20(rq.base_url))


def v21(rq: Rq) -> Reply:
    return ok(rq.profile.nova_v21(rq.base_url))


# ---- flavors -------------------------------------------------------------------------------

def flavor_view(rq: Rq, f: Flavor, detail: bool = True) -> dict:
    view = {"id": f.id, "name": f.name, "links": _links(rq, "flavors", f.id)}
    if detail:
        view.update({"ram": f.ram, "vcpus": f.vcpus, "disk": f.disk, "swap": f.swap or "",
                     "rxtx_factor": f.rxtx_factor, "OS-FLV-EXT-DATA:ephemeral": f.ephemeral,
                     "os-flavor-access:is_public": f.is_public,
                     "OS-FLV-DISABLED:disabled": False})
    return view


def _flavor_list(rq: Rq, detail: bool) -> Reply:
    flavors = _model(rq).list_flavors()
    # minRam / minDisk: flavors with at least that much (nova/api/openstack/compute/flavors.py)
    for param, attr in (("minRam", "ram"), ("minDisk", "disk")):
        if param in rq.query:
            try:
                floor = int(rq.query[param])
            except ValueError:
                raise BadRequest(f"Invalid {param} filter [{rq.query[param]}]") from None
            flavors = [f for f in flavors if getattr(f, attr) >= floor]
    try:
        page, _ = paginate(flavors, rq.query)
    except LookupError:
        raise BadRequest(f"marker [{rq.query.get('marker')}] not found") from None
    return ok({"flavors": [flavor_view(rq, f, detail) for f in page]})


def list_flavors(rq: Rq) -> Reply:
    return _flavor_list(rq, False)


def list_flavors_detail(rq: Rq) -> Reply:
    return _flavor_list(rq, True)


def get_flavor(rq: Rq) -> Reply:
    return ok({"flavor": flavor_view(rq, _model(rq).get_flavor(rq.p("id")))})


def flavor_extra_specs(rq: Rq) -> Reply:
    return ok({"extra_specs": dict(_model(rq).get_flavor(rq.p("id")).extra_specs)})


# ---- servers -------------------------------------------------------------------------------

def _addresses(s: Server) -> dict:
    out: dict = {}
    for net_name, port in s.ports:
        out.setdefault(net_name, []).extend(
            {"addr": ip["ip_address"], "version": 4, "OS-EXT-IPS:type": "fixed",
             "OS-EXT-IPS-MAC:mac_addr": port.mac_address} for ip in port.fixed_ips)
    return out


def _access(s: Server, i: int) -> str:
    return getattr(s, "access_ips", ("", ""))[i]   # records saved before the field existed


def server_view(rq: Rq, s: Server) -> dict:
    f = s.flavor
    if rq.profile.nova_embedded_flavor and rq.at_least("2.47"):
        flavor = {"vcpus": f.vcpus, "ram": f.ram, "disk": f.disk, "ephemeral": f.ephemeral,
                  "swap": f.swap, "original_name": f.name, "extra_specs": dict(f.extra_specs)}
    else:
        flavor = {"id": f.id, "links": [_links(rq, "flavors", f.id)[1]]}
    volumes = []
    for d in s.devices:
        v = {"id": d.volume_id}
        if rq.at_least("2.3"):
            v["delete_on_termination"] = d.delete_on_termination
        volumes.append(v)
    view = {"id": s.id, "name": s.name, "status": s.status, "tenant_id": s.project_id,
            "user_id": s.user_id, "metadata": dict(s.metadata),
            "hostId": uuid.uuid5(uuid.NAMESPACE_DNS, s.project_id + s.host.name).hex
            if s.status != "BUILD" else "",
            "image": "", "flavor": flavor, "created": s.created, "updated": s.updated,
            "addresses": _addresses(s), "accessIPv4": _access(s, 0), "accessIPv6": _access(s, 1),
            "links": _links(rq, "servers", s.id), "key_name": None, "config_drive": "",
            "progress": 0, "OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": "nova",
            "OS-EXT-STS:vm_state": s.vm_state, "OS-EXT-STS:task_state": s.task_state,
            "OS-EXT-STS:power_state": s.power_state,
            "os-extended-volumes:volumes_attached": volumes,
            "security_groups": [{"name": "default"}],
            "OS-SRV-USG:launched_at": s.launched_at, "OS-SRV-USG:terminated_at": None}
    if s.fault:
        view["fault"] = dict(s.fault)
    if rq.auth.is_admin:
        view.update({"OS-EXT-SRV-ATTR:host": s.host.name,
                     "OS-EXT-SRV-ATTR:hypervisor_hostname": s.host.name,
                     "OS-EXT-SRV-ATTR:instance_name": f"instance-{s.id[:8]}"})
        if rq.at_least("2.16"):
            view["host_status"] = "UP"
    if rq.at_least("2.9"):
        view["locked"] = False
    if rq.at_least("2.19"):
        view["description"] = s.description
    if rq.at_least("2.26"):
        view["tags"] = list(s.tags)
    return view


def _bad_server(body, reason: str) -> BadRequest:
    return BadRequest(f"Invalid input for field/attribute server. Value: {body}. {reason}")


def _networks(rq: Rq, body: dict) -> list | None:
    """The networks to give the server (Neutron networks), per release (§(g))."""
    neutron = rq.cloud.model("neutron") if "neutron" in rq.cloud.services else None
    nets = body.get("networks", None) if "networks" in body else ...
    if nets is ...:
        if rq.profile.nova_networks_required and rq.at_least("2.37"):
            raise _bad_server(body, "'networks' is a required property")
        nets = []         # older Nova: every network the project may use (here: its one)
        return neutron.networks_for(rq.auth.project_id) if neutron is not None else []
    if isinstance(nets, str) and not rq.at_least("2.37"):
        raise BadRequest(f"Invalid input for field/attribute networks. Value: {nets}. "
                         f"'{nets}' is not of type 'array'")
    if nets is None:
        raise BadRequest("Invalid input for field/attribute networks. Value: None. None is not "
                         "of type 'array'")
    if nets == "none" or neutron is None:
        return []
    if nets == "auto":
        mine = neutron.networks_for(rq.auth.project_id)
        if len(mine) > 1:
            raise Conflict("Multiple possible networks found, use a Network ID to be more "
                           "specific.", kind="NetworkAmbiguous")
        if not mine and rq.at_least("2.37"):
            raise BadRequest("Unable to automatically allocate a network for project "
                             f"{rq.auth.project_id}")
        return mine
    if isinstance(nets, str) or not isinstance(nets, list):
        raise BadRequest(f"Invalid input for field/attribute networks. Value: {nets}. "
                         f"{nets!r} is not valid under any of the given schemas")
    out = []
    for n in nets:
        if not isinstance(n, dict) or not isinstance(n.get("uuid"), str):
            raise BadRequest(f"Bad networks format: network uuid is not in proper format "
                             f"({n})")
        try:
            out.append(neutron.get_network(n["uuid"], rq.auth.project_id, rq.auth.is_admin))
        except NotFound:
            raise BadRequest(f"Network {n['uuid']} could not be found.") from None
    return out


def _access_ips(body: dict) -> tuple:
    """accessIPv4/accessIPv6 of a create: valid addresses of their family (Nova's schema
    formats ipv4/ipv6: 400 otherwise), kept in canonical form (an embedded IPv4 tail of a
    non-mapped IPv6 address becomes hex, as netaddr prints it)."""
    import ipaddress
    out = []
    for key, family in (("accessIPv4", ipaddress.IPv4Address), ("accessIPv6",
                                                                  ipaddress.IPv6Address)):
        value = body.get(key) or ""
        if value:
            try:
                value = str(family(value))   # stored canonical (RFC 5952), as Nova does
            except ValueError:
                raise _bad_server(body, f"Invalid input for field/attribute {key}. Value: "
                                        f"{value}. '{value}' is not a '{key[-2:].lower()}'"
                                  ) from None
        out.append(value)
    return tuple(out)


def create_server(rq: Rq) -> Reply:
    model = _model(rq)
    body = rq.json_object("server")
    allowed = set(SERVER_CREATE_KEYS)
    if rq.at_least("2.19"):
        allowed.add("description")
    if rq.profile.nova_tags_at_create and rq.at_least("2.52"):
        allowed.add("tags")
    extra = sorted(set(body) - allowed)
    if extra:
        raise _bad_server(body, f"Additional properties are not allowed ('{extra[0]}' was "
                                "unexpected)")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _bad_server(body, "'name' is a required property" if name is None
                          else f"Invalid input for field/attribute name. Value: {name}.")
    if "flavorRef" not in body:
        raise _bad_server(body, "'flavorRef' is a required property")
    for key in ("min_count", "max_count"):
        if key in body and str(body[key]) != "1":
            raise BadRequest(f"Invalid input for field/attribute {key}: the lab boots one "
                             "server per request, each on its own boot volume")
    if body.get("key_name"):
        raise BadRequest("Invalid key_name provided.")
    if "block_device_mapping_v2" in body:
        devices = model.parse_block_devices(body["block_device_mapping_v2"], legacy=False)
    elif "block_device_mapping" in body:
        devices = model.parse_block_devices(body["block_device_mapping"], legacy=True)
    else:
        devices = []
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str)
                                                for v in metadata.values()):
        raise BadRequest(f"Invalid input for field/attribute metadata. Value: {metadata}.")
    model.check_quota(_caller(rq), str(body["flavorRef"]), metadata)   # before the BDMs
    if body.get("imageRef"):
        if not devices or all(d["boot_index"] != 0 for d in devices):
            raise BadRequest("Block Device Mapping is Invalid: the lab's compute hosts have no "
                             "local disks; boot from a volume (block_device_mapping_v2 with "
                             "destination_type volume)")
    nets = _networks(rq, body)
    server = model.create_server(_caller(rq), name=name, flavor_id=str(body["flavorRef"]),
                                 user_data=body.get("user_data"), metadata=metadata,
                                 devices=devices, zone=body.get("availability_zone"),
                                 description=body.get("description"), tags=body.get("tags"),
                                 access_ips=_access_ips(body))
    neutron = rq.cloud.model("neutron") if nets else None
    for net in nets:
        port = neutron.create_port(rq.auth.project_id, net.id, device_id=server.id)
        server.ports.append((net.name, port))
    model.start_build(_caller(rq), server)
    return accepted({"server": {"id": server.id, "links": _links(rq, "servers", server.id),
                                "adminPass": server.admin_pass, "OS-DCF:diskConfig": "MANUAL",
                                "security_groups": [{"name": "default"}]}})


def _server_list(rq: Rq, detail: bool) -> Reply:
    all_tenants = rq.query.get("all_tenants") not in (None, "0", "false", "False")
    servers = _model(rq).list_servers(_caller(rq), all_tenants=all_tenants,
                                      name=rq.query.get("name"), status=rq.query.get("status"),
                                      host=rq.query.get("host"))
    try:
        page, more = paginate(servers, rq.query, full_page_has_more=True)
    except LookupError:
        raise BadRequest(f"marker [{rq.query.get('marker')}] not found") from None
    if detail:
        views = [server_view(rq, s) for s in page]
    else:
        views = [{"id": s.id, "name": s.name, "links": _links(rq, "servers", s.id)}
                 for s in page]
    body = {"servers": views}
    if more and page:
        body["servers_links"] = [{"rel": "next", "href": f"{_link_base(rq)}/servers"
                                  f"{'/detail' if detail else ''}?limit="
                                  f"{rq.query.get('limit')}&marker={page[-1].id}"}]
    return ok(body)


def list_servers(rq: Rq) -> Reply:
    return _server_list(rq, False)


def list_servers_detail(rq: Rq) -> Reply:
    return _server_list(rq, True)


def get_server(rq: Rq) -> Reply:
    return ok({"server": server_view(rq, _model(rq).get_server(_caller(rq), rq.p("id")))})


def delete_server(rq: Rq) -> Reply:
    server = _model(rq).delete_server(_caller(rq), rq.p("id"))
    if "neutron" in rq.cloud.services:
        rq.cloud.model("neutron").release(server.id)
    return no_content()


def server_action(rq: Rq) -> Reply:
    body = rq.json_object()
    if len(body) != 1:
        raise BadRequest("Malformed request body: one action per request")
    action, args = next(iter(body.items()))
    if action == "os-getConsoleOutput":
        length = (args or {}).get("length") if isinstance(args, dict) else None
        text = _model(rq).console_output(_caller(rq), rq.p("id"), length)
        return ok({"output": text})
    raise BadRequest(f"There is no such action: {action}")


# ---- volume attachments --------------------------------------------------------------------

def _attachment_view(server_id: str, d) -> dict:
    return {"id": d.volume_id, "volumeId": d.volume_id, "serverId": server_id,
            "device": d.device}


def list_attachments(rq: Rq) -> Reply:
    server, devs = _model(rq).attachments(_caller(rq), rq.p("id"))
    return ok({"volumeAttachments": [_attachment_view(server.id, d) for d in devs]})


def get_attachment(rq: Rq) -> Reply:
    dev = _model(rq).attachment(_caller(rq), rq.p("id"), rq.p("volume_id"))
    return ok({"volumeAttachment": _attachment_view(rq.p("id"), dev)})


async def attach_volume(rq: Rq) -> Reply:
    body = rq.json_object("volumeAttachment")
    volume_id = body.get("volumeId")
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest(f"Invalid input for field/attribute volumeAttachment. Value: {body}. "
                         "'volumeId' is a required property")
    device = body.get("device")
    if device is not None and not isinstance(device, str):
        raise BadRequest(f"Invalid input for field/attribute device. Value: {device}.")
    # Cinder's driver and the initiator login block: off the event loop.
    dev = await asyncio.to_thread(_model(rq).attach_volume, _caller(rq), rq.p("id"), volume_id)
    return ok({"volumeAttachment": _attachment_view(rq.p("id"), dev)})


def detach_volume(rq: Rq) -> Reply:
    _model(rq).detach_volume(_caller(rq), rq.p("id"), rq.p("volume_id"))
    return accepted()


# ---- hypervisors and services --------------------------------------------------------------

def _host_id(rq: Rq, h: ComputeHost):
    return h.uuid if rq.at_least("2.53") else h.id


CPU_INFO = {"arch": "x86_64", "model": "Haswell", "vendor": "Intel"}


def hypervisor_view(rq: Rq, h: ComputeHost, detail: bool) -> dict:
    view = {"id": _host_id(rq, h), "hypervisor_hostname": h.name, "state": "up",
            "status": "enabled"}
    if detail:
        use = _model(rq).host_usage(h)
        view.update({"vcpus": 8, "memory_mb": 16384, "local_gb": 100,
                     "vcpus_used": use["vcpus_used"], "memory_mb_used": use["memory_mb_used"],
                     "local_gb_used": use["local_gb_used"], "running_vms": use["running_vms"],
                     "free_ram_mb": 16384 - use["memory_mb_used"], "free_disk_gb": 100,
                     "disk_available_least": 100, "current_workload": 0,
                     "hypervisor_type": "QEMU", "hypervisor_version": 2005000,
                     "host_ip": h.address,
                     # a JSON string before 2.28, the object itself from 2.28 on
                     "cpu_info": CPU_INFO if rq.at_least("2.28") else json.dumps(CPU_INFO),
                     "service": {"host": h.name, "id": _service_id(rq, h, "nova-compute"),
                                 "disabled_reason": None}})
    return view


def _hypervisors(rq: Rq, detail: bool) -> Reply:
    rq.require_admin("os_compute_api:os-hypervisors")
    return ok({"hypervisors": [hypervisor_view(rq, h, detail) for h in _model(rq).hosts]})


def list_hypervisors(rq: Rq) -> Reply:
    return _hypervisors(rq, False)


def list_hypervisors_detail(rq: Rq) -> Reply:
    return _hypervisors(rq, True)


def get_hypervisor(rq: Rq) -> Reply:
    rq.require_admin("os_compute_api:os-hypervisors")
    return ok({"hypervisor": hypervisor_view(rq, _model(rq).host(rq.p("id")), True)})


def hypervisor_statistics(rq: Rq) -> Reply:
    rq.require_admin("os_compute_api:os-hypervisors")
    views = [hypervisor_view(rq, h, True) for h in _model(rq).hosts]
    keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
            "running_vms", "free_ram_mb", "free_disk_gb", "disk_available_least",
            "current_workload")
    stats = {k: sum(v[k] for v in views) for k in keys}
    stats["count"] = len(views)
    return ok({"hypervisor_statistics": stats})


def _service_id(rq: Rq, h_or_name, binary: str):
    name = h_or_name.name if isinstance(h_or_name, ComputeHost) else h_or_name
    sid = uuid.uuid5(uuid.NAMESPACE_URL, f"{rq.cloud.config.cloud}/{name}/{binary}")
    return str(sid) if rq.at_least("2.53") else sid.int % 1000 + 1


def list_services(rq: Rq) -> Reply:
    rq.require_admin("os_compute_api:os-services")
    model = _model(rq)
    rows = [(model.controller, b, "internal") for b in ("nova-conductor", "nova-scheduler",
                                                       "nova-consoleauth")]
    rows += [(h.name, "nova-compute", "nova") for h in model.hosts]
    out = []
    for host, binary, zone in rows:
        if rq.query.get("host") and rq.query.get("host") != host:
            continue
        if rq.query.get("binary") and rq.query.get("binary") != binary:
            continue
        view = {"id": _service_id(rq, host, binary), "binary": binary, "host": host,
                "zone": zone, "status": "enabled", "state": "up",
                "updated_at": model.started, "disabled_reason": None}
        if rq.at_least("2.11"):
            view["forced_down"] = False
        out.append(view)
    return ok({"services": out})
