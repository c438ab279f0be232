"""The Datera lab's one route table: method, path pattern, handler, and what /api says about it.

Paths are aiohttp templates below the version prefix (/v2, /v2.1, /v2.2, /v2.3: api.py
registers the table under each): `{param}` is one path segment and `{param:[^/].*}` (REST) the
rest of the path (tenant paths such as root/Vancouver-KU). schema.py builds GET /api from this
table alone, so a route added here is both served and advertised.
"""
from dataclasses import dataclass, field

from lab.http import Route as HttpRoute

from . import responses as r
from .contract import POLICY_FIELDS
from .metrics import IO_METRICS
from .models import apps, volume_ops
from .models.access import AUTH_FIELDS

REST = ":[^/].*"   # a path parameter taking the rest of the path (never starting with /)
LIST_QUERY = ("filter", "limit", "offset", "sort")
METRIC_QUERY = ("uuid", "path", "since", "from", "to", "ival")


@dataclass(frozen=True)
class Route(HttpRoute):
    """One Datera route: the core's record (method, path, handler, public) plus what GET /api
    says about it."""
    summary: str = ""
    body: tuple = ()             # fields a create/update body may carry (bodyParamSchema)
    query: tuple = ()            # query parameters (urlParamSchema for reads)
    url_enums: dict = field(default_factory=dict)   # path param -> allowed values
    in_schema: bool = True       # False for aliases that must not become SDK endpoints
    lab_extension: bool = False  # not part of the real DSP's API


def crud(base: str, ent: str, what: str, prefix: str, *, create=(), update=(), delete=True,
         list_fn=None, get_fn=None, parents=()):
    """The five routes of a collection `base` whose entities are `base/:ent`."""
    c = r._call
    key = ent.rstrip("+")   # the handler's parameter name
    one = f"{base}/{{{key}{REST if ent.endswith('+') else ''}}}"
    routes = [Route("GET", base, c(list_fn or f"list_{prefix}s", *parents, listing=True),
                    f"List {what}s", query=LIST_QUERY),
              Route("GET", one, c(get_fn or f"get_{prefix}", *parents, key),
                    f"Read one {what}")]
    if create:
        routes.append(Route("POST", base, c(f"create_{prefix}", *parents, body=True),
                            f"Create a {what}", body=create))
    if update:
        routes.append(Route("PUT", one, c(f"update_{prefix}", *parents, key, body=True),
                            f"Update a {what}", body=update))
    if delete:
        routes.append(Route("DELETE", one,
                            c(f"delete_{prefix}", *parents, key, body=True),
                            f"Delete a {what}", body=("force",)))
    return routes


def tenant_alias(fn_name: str, body: bool = False):
    """A tenant entity's path is /root/<name> and consumers send it back as a URL (tenant.delete()
    goes to /root/<name>): serve it as /tenants/root/<name>. Kept out of /api, so 'root' stays
    the SDK's root endpoint and never becomes a collection."""
    inner = r._call(fn_name, "tenant_path", body=body)

    def handler(rq):
        rq.params = {"tenant_path": "root/" + rq.params["tenant_path"]}
        return inner(rq)
    return handler


AI = "/app_instances/{ai}"
SI = f"{AI}/storage_instances/{{si}}"
VOL = f"{SI}/volumes/{{vol}}"
POLICY_BODY = POLICY_FIELDS
c = r._call

ROUTES: list[Route] = [
    # session and discovery
    Route("PUT", "/login", r.login, "Log in: {name, password[, remote_server]} -> {key}",
          body=("name", "password", "remote_server"), public=True),
    Route("PUT", "/logout", r.logout, "End the session named by the auth-token header"),
    Route("GET", "/api", r.api_schema, "This schema, generated from the lab's route table",
          public=True),
    Route("GET", "/userinfo", r.userinfo, "The current session's user and tenant"),
    Route("GET", "/system", r.system, "The cluster: sw_version, capacities, state"),
    Route("GET", "/system/network", r.system_network, "Access and management networks"),
    Route("GET", "/system/network/access_vip", r.system_network_part("access_vip"),
          "Access VIPs (the data plane's portals)"),
    Route("GET", "/system/network/mgmt_vip", r.system_network_part("mgmt_vip"),
          "Management VIP"),
    Route("GET", "/storage_nodes", r.list_storage_nodes, "List storage nodes", query=LIST_QUERY),
    Route("GET", "/storage_nodes/{node}", r.get_storage_node, "Read one storage node"),
    Route("GET", "/users", r.list_users, "List users", query=LIST_QUERY),
    Route("GET", "/users/{user}", r.get_user, "Read one user"),
    Route("GET", "/roles", r.list_roles, "List roles", query=LIST_QUERY),
    Route("GET", "/roles/{role}", r.get_role, "Read one role"),
    Route("GET", "/events/system", r.list_events("system"),
          "System events: initiator logins (accepted and refused)", query=LIST_QUERY),
    Route("GET", "/events/user", r.list_events("user"),
          "User events: API logins, objects created and deleted", query=LIST_QUERY),
    Route("GET", "/events/{event}", r.get_event, "Read one event by uuid"),
    Route("GET", "/alerts", r.list_alerts, "List alerts", query=LIST_QUERY),
    Route("GET", "/tenant_qos", r.get_tenant_qos,
          "LAB EXTENSION, not in the real Datera DSP API: the per-tenant QoS cap of the tenant "
          "named by the tenant header (fields as performance_policy, 0 = unlimited), enforced "
          "by the lab's data plane across all of the tenant's volumes", lab_extension=True),
    Route("PUT", "/tenant_qos", r.set_tenant_qos,
          "LAB EXTENSION, not in the real Datera DSP API: set the per-tenant QoS cap of the "
          "tenant named by the tenant header (admin sessions only)", body=POLICY_BODY,
          lab_extension=True),

    # tenants; a tenant's own path (/root/x) also answers, since consumers use it as a URL
    *crud("/tenants", "tenant_path+", "tenant", "tenant",
          create=("name", "descr", "parent_path", "id", "force"), update=("descr", "force")),
    Route("GET", f"/root/{{tenant_path{REST}}}", tenant_alias("get_tenant"), "Read a tenant by its path",
          in_schema=False),
    Route("PUT", f"/root/{{tenant_path{REST}}}", tenant_alias("update_tenant", body=True),
          "Update a tenant by its path", body=("descr", "force"), in_schema=False),
    Route("DELETE", f"/root/{{tenant_path{REST}}}", tenant_alias("delete_tenant", body=True),
          "Delete a tenant by its path", in_schema=False),

    # app instances and what hangs below them
    *crud("/app_instances", "ai", "app instance", "app_instance", create=apps.AI_CREATE,
          update=apps.AI_UPDATE),
    Route("GET", f"{AI}/metadata", c("get_metadata", "ai"), "Ecosystem metadata (< 3.3)"),
    Route("PUT", f"{AI}/metadata", r.set_metadata(wrapped=False),
          "Merge flat ecosystem metadata (< 3.3)"),
    Route("GET", f"{AI}/int_ecosystem_data", c("get_metadata", "ai"),
          "Ecosystem metadata (>= 3.3)"),
    Route("PUT", f"{AI}/int_ecosystem_data", r.set_metadata(wrapped=True),
          "Merge ecosystem metadata (>= 3.3): body {data: {...}}", body=("data",)),
    *crud(f"{AI}/storage_instances", "si", "storage instance", "storage_instance",
          create=apps.SI_CREATE, update=apps.SI_UPDATE, parents=("ai",)),
    Route("GET", f"{SI}/acl_policy", c("get_acl_policy", "ai", "si"), "The storage instance's ACL"),
    Route("PUT", f"{SI}/acl_policy", c("set_acl_policy", "ai", "si", body=True),
          "Replace the ACL", body=("initiators", "initiator_groups")),
    Route("GET", f"{SI}/acl_policy/initiators", r.list_acl_links("initiators"), "ACL initiators"),
    Route("PUT", f"{SI}/acl_policy/initiators", r.link_acl("initiators"),
          "Link or unlink an initiator: {op: add|remove, path}", body=("op", "path")),
    Route("GET", f"{SI}/acl_policy/initiator_groups", r.list_acl_links("initiator_groups"),
          "ACL initiator groups"),
    Route("PUT", f"{SI}/acl_policy/initiator_groups", r.link_acl("initiator_groups"),
          "Link or unlink an initiator group: {op: add|remove, path}", body=("op", "path")),
    Route("GET", f"{SI}/auth", c("get_auth", "ai", "si"), "CHAP settings (secrets hidden)"),
    Route("PUT", f"{SI}/auth", c("set_auth", "ai", "si", body=True),
          "Set CHAP: type none|chap|mchap, secrets of 12-16 characters", body=AUTH_FIELDS),
    *crud(f"{SI}/volumes", "vol", "volume", "volume", create=volume_ops.VOL_CREATE,
          update=volume_ops.VOL_UPDATE, parents=("ai", "si")),
    Route("GET", f"{VOL}/performance_policy", c("get_performance_policy", "ai", "si", "vol"),
          "The volume's QoS policy (404 when it has none)"),
    Route("POST", f"{VOL}/performance_policy",
          c("create_performance_policy", "ai", "si", "vol", body=True),
          "Create the QoS policy (IOPS; bandwidth in KiB/s; 0 = unlimited)", body=POLICY_BODY),
    Route("PUT", f"{VOL}/performance_policy",
          c("update_performance_policy", "ai", "si", "vol", body=True),
          "Update the QoS policy; applies live", body=POLICY_BODY),
    Route("DELETE", f"{VOL}/performance_policy",
          c("delete_performance_policy", "ai", "si", "vol", body=True),
          "Remove the QoS policy", body=("force",)),
    *crud(f"{VOL}/snapshots", "ts", "snapshot", "snapshot", create=("uuid", "remote_provider_uuid", "type", "force"),
          parents=("ai", "si", "vol")),

    # access
    *crud("/initiators", "iqn", "initiator", "initiator", create=("id", "name", "force"),
          update=("name", "force")),
    *crud("/initiator_groups", "group", "initiator group", "initiator_group",
          create=("name", "members", "force"), update=("members", "force")),
    Route("GET", "/initiator_groups/{group}/members", c("list_group_members", "group", listing=True),
          "Members of an initiator group"),
    Route("PUT", "/initiator_groups/{group}/members", c("link_group_member", "group", body=True),
          "Add or remove a member: {op: add|remove, path}", body=("op", "path")),
    *crud("/access_network_ip_pools", "pool", "access network IP pool", "ip_pool",
          create=("name", "descr", "network_paths", "force"), update=(),
          list_fn="list_ip_pools", get_fn="get_ip_pool"),

    # metrics
    Route("GET", "/metrics/io/{metric}", r.io_series,
          "Per-second I/O history of a volume or app instance (uuid= or path=) or of the "
          "tenant header's tenant; since=5m or from=/to=", query=METRIC_QUERY,
          url_enums={"metric": IO_METRICS}),
    Route("GET", "/metrics/io/{metric}/latest", r.io_latest, "The last completed second",
          query=METRIC_QUERY),
    Route("GET", "/metrics/hw/{metric}", r.hw_series, "CPU usage of the lab's storage node, %",
          query=METRIC_QUERY, url_enums={"metric": r.HW_METRICS}),
    Route("GET", "/metrics/hw/{metric}/latest", r.hw_latest, "The last sample", query=METRIC_QUERY),
]


# Outside the version prefixes: what a client asks before it picks a version.
UNVERSIONED: list[Route] = [
    Route("GET", "/api_versions", r.api_versions, "The API versions this DSP serves",
          public=True, in_schema=False),
]
