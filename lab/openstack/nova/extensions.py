"""GET /extensions of Nova v2.1: the v2-compatible extension list, a fixed table in these
releases (nova/api/openstack/compute/extension_info.py builds each entry as
{alias, description, links: [], name, namespace, updated} with
namespace "http://docs.openstack.org/compute/ext/fake_xml" and updated "2014-12-03T00:00:00Z").
The table lists the extensions of the APIs the lab serves (and the always-listed core ones);
GET /extensions/{alias} shows one, 404 for others."""
from ..api import Reply, Rq, ok
from ..errors import NotFound

NAMESPACE = "http://docs.openstack.org/compute/ext/fake_xml"
UPDATED = "2014-12-03T00:00:00Z"
# (name, alias, description)
TABLE = (
    ("AvailabilityZone", "os-availability-zone", "1. Add availability_zone to the Create "
     "Server API. 2. Add availability zones describing."),
    ("BlockDeviceMappingV2Boot", "os-block-device-mapping-v2-boot",
     "Allow boot with the new BDM data format."),
    ("Consoles", "os-consoles", "Interactive Console support."),
    ("ConsoleOutput", "os-console-output", "Console log output support, with tailing ability."),
    ("ExtendedAvailabilityZone", "OS-EXT-AZ", "Extended Availability Zone support."),
    ("ExtendedServerAttributes", "OS-EXT-SRV-ATTR", "Extended Server Attributes support."),
    ("ExtendedStatus", "OS-EXT-STS", "Extended Status support."),
    ("ExtendedVolumes", "os-extended-volumes", "Extended Volumes support."),
    ("FlavorAccess", "os-flavor-access", "Flavor access support."),
    ("FlavorDisabled", "OS-FLV-DISABLED", "Support to show the disabled status of a flavor."),
    ("FlavorExtraData", "OS-FLV-EXT-DATA", "Provide additional data for flavors."),
    ("FlavorExtraSpecs", "os-flavor-extra-specs", "Flavors extra specs support."),
    ("FlavorRxtx", "os-flavor-rxtx", "Support to show the rxtx status of a flavor."),
    ("FlavorSwap", "os-flavor-swap", "Support to show the swap status of a flavor."),
    ("Hosts", "os-hosts", "Admin-only host administration."),
    ("Hypervisors", "os-hypervisors", "Admin-only hypervisor administration."),
    ("Keypairs", "os-keypairs", "Keypair Support."),
    ("Quotas", "os-quota-sets", "Quotas management support."),
    ("Services", "os-services", "Services support."),
    ("UsedLimits", "os-used-limits", "Provide data on limited resources that are being used."),
    ("Volumes", "os-volumes", "Volumes support."),
)


def _view(name: str, alias: str, description: str) -> dict:
    return {"alias": alias, "description": description, "links": [], "name": name,
            "namespace": NAMESPACE, "updated": UPDATED}


def list_extensions(rq: Rq) -> Reply:
    return ok({"extensions": [_view(*e) for e in sorted(TABLE, key=lambda e: e[1])]})


def get_extension(rq: Rq) -> Reply:
    for entry in TABLE:
        if entry[1] == rq.p("alias"):
            return ok({"extension": _view(*entry)})
    raise NotFound("The resource could not be found.")
