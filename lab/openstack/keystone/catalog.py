"""Keystone's catalog administration: regions, services, endpoints and OS-EP-FILTER endpoint
groups, state only.

Source: keystone 12.0.0 (Pike) keystone/catalog/{schema,controllers,core}.py and
keystone/catalog/backends/sql.py: an endpoint names an existing service and an interface
(public, internal, admin); a region named by an endpoint is created if missing; deleting a
service deletes its endpoints; the token catalog holds the enabled services with their
enabled endpoints, `$(project_id)s` / `%(project_id)s` filled in (left out when it cannot be).

The lab's own services (those the cloud runs) come first and are read-only here: their
entries are derived from what runs (`builtin(project_id)` = Cloud.catalog), so changing them
would describe a cloud that does not exist. Services and endpoints an admin adds are stored
and appear in every token's catalog as Keystone's do. Projects associated with endpoints or
endpoint groups (OS-EP-FILTER) see only those endpoints in their tokens.
"""
import uuid
from dataclasses import dataclass, field
from typing import Callable

import re

from ..errors import BadRequest, Conflict, Forbidden, NotFound
from . import schema

INTERFACES = ("admin", "internal", "public")
URL = re.compile(r"^[a-zA-Z0-9+.-]+:.+")          # parameter_types.url
TEMPLATE = "$(project_id)s"


@dataclass
class Region:
    id: str
    description: str = ""
    parent_region_id: str | None = None


@dataclass
class Service:
    id: str
    type: str
    name: str | None = None
    description: str | None = None
    enabled: bool = True
    builtin: bool = False


@dataclass
class Endpoint:
    id: str
    service_id: str
    interface: str
    url: str
    region_id: str | None = None
    enabled: bool = True
    builtin: bool = False


@dataclass
class EndpointGroup:
    id: str
    name: str
    filters: dict = field(default_factory=dict)
    description: str | None = None


def _check_string(body: dict, key: str, *, required: bool = False, enum=None) -> None:
    if key not in body:
        if required:
            raise BadRequest(f"'{key}' is a required property", kind="ValidationError")
        return
    value = body[key]
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{key}': {value!r} is not of type 'string'",
                         kind="ValidationError")
    if enum and value not in enum:
        raise BadRequest(f"Invalid input for field '{key}': {value!r} is not one of "
                         f"{list(enum)!r}", kind="ValidationError")


class CatalogMixin:
    """Catalog administration of IdentityModel. `builtin` is set by the service factory."""

    builtin: Callable[[str | None], list] = staticmethod(lambda project_id: [])

    def _init_catalog(self, region: str) -> None:
        self.regions: dict[str, Region] = {region: Region(region)}
        self.services_added: dict[str, Service] = {}
        self.endpoints_added: dict[str, Endpoint] = {}
        self.endpoint_groups: dict[str, EndpointGroup] = {}
        self.project_endpoints: set[tuple[str, str]] = set()     # (project_id, endpoint_id)
        self.project_groups: set[tuple[str, str]] = set()        # (project_id, group_id)

    # -- the running services, as Keystone records ---------------------------------------

    def _builtin_records(self) -> tuple[list[Service], list[Endpoint]]:
        services, endpoints = [], []
        for entry in self.builtin(TEMPLATE):
            services.append(Service(entry["id"], entry["type"], entry["name"], builtin=True))
            endpoints += [Endpoint(e["id"], entry["id"], e["interface"], e["url"],
                                   e["region_id"], builtin=True) for e in entry["endpoints"]]
        return services, endpoints

    def list_services(self) -> list[Service]:
        return self._builtin_records()[0] + list(self.services_added.values())

    def list_endpoints(self) -> list[Endpoint]:
        return self._builtin_records()[1] + list(self.endpoints_added.values())

    # -- regions -------------------------------------------------------------------------

    def get_region(self, region_id: str) -> Region:
        try:
            return self.regions[region_id]
        except KeyError:
            raise NotFound(f"Could not find region: {region_id}.", kind="RegionNotFound") from None

    def create_region(self, body: dict, region_id: str | None = None) -> Region:
        region_id = region_id or body.get("id") or uuid.uuid4().hex
        if region_id in self.regions:
            raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, "
                           f"{region_id}.", kind="Conflict")
        parent = body.get("parent_region_id")
        if parent:
            self.get_region(parent)
        r = Region(region_id, body.get("description") or "", parent)
        self.regions[r.id] = r
        return r

    def update_region(self, region_id: str, body: dict) -> Region:
        r = self.get_region(region_id)
        schema.non_empty(body)
        if body.get("parent_region_id"):
            self.get_region(body["parent_region_id"])
        for key in ("description", "parent_region_id"):
            if key in body:
                setattr(r, key, body[key])
        return r

    def delete_region(self, region_id: str) -> None:
        self.get_region(region_id)
        if any(e.region_id == region_id for e in self.list_endpoints() if e.builtin):
            raise Forbidden(f"Region {region_id} holds the lab's own endpoints.",
                            kind="ForbiddenAction")
        del self.regions[region_id]
        for e in self.endpoints_added.values():
            if e.region_id == region_id:
                e.region_id = None

    # -- services ------------------------------------------------------------------------

    def get_service(self, service_id: str) -> Service:
        for s in self.list_services():
            if s.id == service_id:
                return s
        raise NotFound(f"Could not find service: {service_id}.", kind="ServiceNotFound")

    def _added_service(self, service_id: str) -> Service:
        s = self.get_service(service_id)
        if s.builtin:
            raise Forbidden(f"Service {service_id} is one of the services the lab runs; its "
                            "catalog entry follows what runs.", kind="ForbiddenAction")
        return s

    def create_service(self, body: dict) -> Service:
        _check_string(body, "type", required=True)
        if not 1 <= len(body["type"]) <= 255:
            raise BadRequest(f"Invalid input for field 'type': {body['type']!r} is too long",
                             kind="ValidationError")
        if "name" in body:
            schema.name(body["name"], "role")            # parameter_types.name: 1..255
        schema.boolean(body, "enabled")
        s = Service(uuid.uuid4().hex, body["type"], body.get("name"), body.get("description"),
                    body.get("enabled", True))
        self.services_added[s.id] = s
        return s

    def update_service(self, service_id: str, body: dict) -> Service:
        s = self._added_service(service_id)
        schema.non_empty(body)
        _check_string(body, "type")
        schema.boolean(body, "enabled")
        for key in ("type", "name", "description", "enabled"):
            if key in body:
                setattr(s, key, body[key])
        return s

    def delete_service(self, service_id: str) -> None:
        self._added_service(service_id)
        del self.services_added[service_id]
        self.endpoints_added = {k: e for k, e in self.endpoints_added.items()
                                if e.service_id != service_id}

    # -- endpoints -----------------------------------------------------------------------

    def get_endpoint(self, endpoint_id: str) -> Endpoint:
        for e in self.list_endpoints():
            if e.id == endpoint_id:
                return e
        raise NotFound(f"Could not find endpoint: {endpoint_id}.", kind="EndpointNotFound")

    def _endpoint_fields(self, body: dict, *, create: bool) -> None:
        _check_string(body, "interface", required=create, enum=INTERFACES)
        _check_string(body, "service_id", required=create)
        _check_string(body, "url", required=create)
        if "url" in body and (len(body["url"]) > 225 or not URL.match(body["url"])):
            raise BadRequest(f"Invalid input for field 'url': {body['url']!r} does not match "
                             "'^[a-zA-Z0-9+.-]+:.+'", kind="ValidationError")
        _check_string(body, "region_id")
        _check_string(body, "region")
        schema.boolean(body, "enabled")
        if "service_id" in body:
            self.get_service(body["service_id"])
        region = body.get("region_id") or body.get("region")
        if region and region not in self.regions:
            self.create_region({}, region_id=region)      # controllers.py: made on demand
        if region:
            body["region_id"] = region

    def create_endpoint(self, body: dict) -> Endpoint:
        self._endpoint_fields(body, create=True)
        e = Endpoint(uuid.uuid4().hex, body["service_id"], body["interface"], body["url"],
                     body.get("region_id"), body.get("enabled", True))
        self.endpoints_added[e.id] = e
        return e

    def update_endpoint(self, endpoint_id: str, body: dict) -> Endpoint:
        e = self.get_endpoint(endpoint_id)
        schema.non_empty(body)
        self._endpoint_fields(body, create=False)
        if e.builtin:
            raise Forbidden(f"Endpoint {endpoint_id} belongs to a service the lab runs.",
                            kind="ForbiddenAction")
        for key in ("service_id", "interface", "url", "region_id", "enabled"):
            if key in body:
                setattr(e, key, body[key])
        return e

    def delete_endpoint(self, endpoint_id: str) -> None:
        if self.get_endpoint(endpoint_id).builtin:
            raise Forbidden(f"Endpoint {endpoint_id} belongs to a service the lab runs.",
                            kind="ForbiddenAction")
        del self.endpoints_added[endpoint_id]

    # -- OS-EP-FILTER endpoint groups ----------------------------------------------------

    def get_endpoint_group(self, group_id: str) -> EndpointGroup:
        try:
            return self.endpoint_groups[group_id]
        except KeyError:
            raise NotFound(f"Could not find endpoint group: {group_id}.",
                           kind="EndpointGroupNotFound") from None

    def create_endpoint_group(self, body: dict) -> EndpointGroup:
        schema.name(body.get("name"), "role")
        if not isinstance(body.get("filters"), dict):
            raise BadRequest("Invalid input for field 'filters': expected an object",
                             kind="ValidationError")
        g = EndpointGroup(uuid.uuid4().hex, body["name"], body["filters"], body.get("description"))
        self.endpoint_groups[g.id] = g
        return g

    def update_endpoint_group(self, group_id: str, body: dict) -> EndpointGroup:
        g = self.get_endpoint_group(group_id)
        schema.non_empty(body)
        if "name" in body:
            schema.name(body["name"], "role")
        for key in ("name", "filters", "description"):
            if key in body:
                setattr(g, key, body[key])
        return g

    def delete_endpoint_group(self, group_id: str) -> None:
        self.get_endpoint_group(group_id)
        del self.endpoint_groups[group_id]
        self.project_groups = {x for x in self.project_groups if x[1] != group_id}

    def group_endpoints(self, group_id: str) -> list[Endpoint]:
        """The endpoints whose attributes match every filter of the group."""
        filters = self.get_endpoint_group(group_id).filters
        return [e for e in self.list_endpoints()
                if all(getattr(e, k, None) == v for k, v in filters.items())]

    def associate(self, project_id: str, *, endpoint_id=None, group_id=None) -> None:
        self.get_project(project_id)
        if endpoint_id:
            self.get_endpoint(endpoint_id)
            self.project_endpoints.add((project_id, endpoint_id))
        else:
            self.get_endpoint_group(group_id)
            self.project_groups.add((project_id, group_id))

    def check_association(self, project_id: str, *, endpoint_id=None, group_id=None) -> None:
        pair = (project_id, endpoint_id or group_id)
        pairs = self.project_endpoints if endpoint_id else self.project_groups
        if pair not in pairs:
            raise NotFound(f"Could not find the association of project {project_id} with "
                           f"{'endpoint' if endpoint_id else 'endpoint group'} "
                           f"{endpoint_id or group_id}.", kind="NotFound")

    def dissociate(self, project_id: str, *, endpoint_id=None, group_id=None) -> None:
        self.check_association(project_id, endpoint_id=endpoint_id, group_id=group_id)
        pairs = self.project_endpoints if endpoint_id else self.project_groups
        pairs.discard((project_id, endpoint_id or group_id))

    def filtered_endpoint_ids(self, project_id: str | None) -> set[str] | None:
        """OS-EP-FILTER: the endpoints associated with the project directly or through
        endpoint groups; None when there are none ([endpoint_filter]
        return_all_endpoints_if_no_filter = True: the whole catalog)."""
        if project_id is None:
            return None
        ids = {e for p, e in self.project_endpoints if p == project_id}
        for p, g in self.project_groups:
            if p == project_id and g in self.endpoint_groups:
                ids |= {e.id for e in self.group_endpoints(g)}
        return ids or None

    # -- the token catalog ---------------------------------------------------------------

    def catalog_for(self, project_id: str | None) -> list[dict]:
        """The lab's running services, then the enabled services an admin added with their
        enabled endpoints (core.py _get_catalog / format_url)."""
        out = list(self.builtin(project_id))
        for s in self.services_added.values():
            if not s.enabled:
                continue
            endpoints = []
            for e in self.endpoints_added.values():
                if e.service_id != s.id or not e.enabled:
                    continue
                url = e.url
                if TEMPLATE in url or "%(project_id)s" in url:
                    if project_id is None:
                        continue
                    url = url.replace(TEMPLATE, project_id).replace("%(project_id)s", project_id)
                endpoints.append({"id": e.id, "interface": e.interface, "region": e.region_id,
                                  "region_id": e.region_id, "url": url})
            out.append({"type": s.type, "name": s.name or "", "id": s.id,
                        "endpoints": endpoints})
        keep = self.filtered_endpoint_ids(project_id)
        if keep is not None:
            out = [dict(svc, endpoints=[e for e in svc["endpoints"] if e["id"] in keep])
                   for svc in out]
            out = [svc for svc in out if svc["endpoints"]]
        return out
