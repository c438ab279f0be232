"""The API extensions the minimal Neutron advertises: exactly those whose attributes its
views carry (an attribute of an extension not loaded is never shown by Neutron, and a client
such as Tempest or openstacksdk decides what to use from GET /v2.0/extensions).

Facts (name, description, updated): neutron-lib 1.9.1's API definitions (net-mtu,
port-security, address-scope, binding, extra_dhcp_opt) and neutron/extensions/*.py at
11.0.0 (Pike) for those still in Neutron's tree. ATTRIBUTES: the resource attributes each
one adds (the same sources' RESOURCE_ATTRIBUTE_MAP / EXTENDED_ATTRIBUTES_2_0)."""
from ..api import Reply, Rq, ok
from ..errors import NotFound

_STD = ("networks", "subnets", "ports")
# alias: (name, description, updated, {collection: attributes})
TABLE = {
    "external-net": ("Neutron external network",
                     "Adds external network attribute to network resource.",
                     "2013-01-14T10:00:00-00:00", {"networks": ("router:external",)}),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource.",
                "2015-03-25T10:00:00-00:00", {"networks": ("mtu",)}),
    "port-security": ("Port Security", "Provides port security",
                      "2012-07-23T10:00:00-00:00",
                      {"networks": ("port_security_enabled",),
                       "ports": ("port_security_enabled",)}),
    "availability_zone": ("Availability Zone", "The availability zone extension.",
                          "2015-01-01T10:00:00-00:00", {}),
    "network_availability_zone": ("Network Availability Zone",
                                  "Availability zone support for network.",
                                  "2015-01-01T10:00:00-00:00",
                                  {"networks": ("availability_zones",
                                                "availability_zone_hints")}),
    "address-scope": ("Address scope", "Address scopes extension.",
                      "2015-07-26T10:00:00-00:00",
                      {"networks": ("ipv4_address_scope", "ipv6_address_scope")}),
    "standard-attr-description": ("standard-attr-description",
                                  "Extension to add descriptions to standard attributes",
                                  "2016-02-10T10:00:00-00:00",
                                  {c: ("description",) for c in _STD}),
    "standard-attr-timestamp": ("Resource timestamps",
                                "Adds created_at and updated_at fields to all Neutron "
                                "resources that have Neutron standard attributes.",
                                "2016-09-12T10:00:00-00:00",
                                {c: ("created_at", "updated_at") for c in _STD}),
    "standard-attr-revisions": ("Resource revision numbers",
                                "This extension will display the revision number of "
                                "neutron resources.", "2016-04-11T10:00:00-00:00",
                                {c: ("revision_number",) for c in _STD}),
    "standard-attr-tag": ("Tag support for resources with standard attribute: subnet, "
                          "trunk, router, network, policy, subnetpool, port, "
                          "security_group, floatingip",
                          "Enables to set tag on resources with standard attribute.",
                          "2017-01-01T00:00:00-00:00", {c: ("tags",) for c in _STD}),
    "security-group": ("security-group", "The security groups extension.",
                       "2012-10-05T10:00:00-00:00", {"ports": ("security_groups",)}),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs",
                              "2013-07-23T10:00:00-00:00",
                              {"ports": ("allowed_address_pairs",)}),
    "extra_dhcp_opt": ("Neutron Extra DHCP options",
                       "Extra options configuration for DHCP. For example PXE boot options "
                       "to DHCP clients can be specified (e.g. tftp-server, "
                       "server-ip-address, bootfile-name)", "2013-03-17T12:00:00-00:00",
                       {"ports": ("extra_dhcp_opts",)}),
    "binding": ("Port Binding",
                "Expose port bindings of a virtual port to external application",
                "2014-02-03T10:00:00-00:00", {"ports": ("binding:vnic_type",)}),
    "quotas": ("Quota management support", "Expose functions for quotas management per "
               "tenant", "2012-07-29T10:00:00-00:00", {}),
    "project-id": ("project_id field enabled",
                   "Extension that indicates that project_id field is enabled.",
                   "2016-09-09T09:09:09-09:09", {c: ("project_id",) for c in _STD}),
}


def _view(alias: str) -> dict:
    name, description, updated, _ = TABLE[alias]
    return {"alias": alias, "name": name, "description": description, "updated": updated,
            "links": []}


def list_extensions(rq: Rq) -> Reply:
    return ok({"extensions": [_view(a) for a in TABLE]})


def get_extension(rq: Rq) -> Reply:
    alias = rq.p("alias")
    if alias not in TABLE:
        raise NotFound(f"Extension with alias {alias} does not exist", kind="HTTPNotFound")
    return ok({"extension": _view(alias)})
