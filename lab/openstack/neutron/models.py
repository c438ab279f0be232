"""Neutron's state, the minimum the demo needs: one network with one IPv4 subnet per project,
ports with a fixed address, and per-project quotas. No HTTP.

For Nova (in process, through cloud.model("neutron")):
    networks_for(project_id) -> [Network]          the networks a project may use
    get_network(network_id, project_id, is_admin)  NotFound for unknown or foreign ones
    create_port(project_id, network_id, device_id=..., device_owner="compute:nova") -> Port
    ports_of(device_id) / delete_port(port_id) / release(device_id)
A port's `fixed_ips[0]["ip_address"]` and `mac_address` are what a server's `addresses` show.
"""
import ipaddress
import random
import time
import uuid
from dataclasses import dataclass, field

from ..errors import BadRequest, Conflict, NotFound

DEFAULT_QUOTA = {"network": 100, "subnet": 100, "port": 500, "router": 10,
                 "floatingip": 50, "security_group": 10, "security_group_rule": 100}


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Subnet:
    id: str
    name: str
    network_id: str
    project_id: str
    cidr: str
    gateway_ip: str
    created_at: str = field(default_factory=now_iso)
    allocated: set = field(default_factory=set)

    def pool(self) -> tuple[str, str]:
        net = ipaddress.IPv4Network(self.cidr)
        return str(net.network_address + 2), str(net.broadcast_address - 1)

    def allocate(self) -> str:
        net = ipaddress.IPv4Network(self.cidr)
        for host in net.hosts():
            addr = str(host)
            if addr != self.gateway_ip and addr not in self.allocated:
                self.allocated.add(addr)
                return addr
        raise Conflict(f"No more IP addresses available on network {self.network_id}.",
                       kind="IpAddressGenerationFailure")


@dataclass
class Network:
    id: str
    name: str
    project_id: str
    subnets: list = field(default_factory=list)
    shared: bool = False
    created_at: str = field(default_factory=now_iso)


@dataclass
class Port:
    id: str
    network_id: str
    project_id: str
    mac_address: str
    fixed_ips: list
    device_id: str = ""
    device_owner: str = ""
    name: str = ""
    created_at: str = field(default_factory=now_iso)

    @property
    def status(self) -> str:
        return "ACTIVE" if self.device_id else "DOWN"


class NetworkModel:
    def __init__(self):
        self.networks: dict[str, Network] = {}
        self.subnets: dict[str, Subnet] = {}
        self.ports: dict[str, Port] = {}
        self.quotas: dict[str, dict] = {}
        self._macs: set[str] = set()

    # -- networks and subnets ------------------------------------------------------------

    def create_network(self, project_id: str, name: str, cidr: str) -> Network:
        """A network with one subnet of `cidr`, gateway at its first address."""
        net = Network(str(uuid.uuid4()), name, project_id)
        gateway = str(next(ipaddress.IPv4Network(cidr).hosts()))
        subnet = Subnet(str(uuid.uuid4()), f"{name}-subnet", net.id, project_id, cidr, gateway)
        net.subnets.append(subnet.id)
        self.networks[net.id] = net
        self.subnets[subnet.id] = subnet
        return net

    @staticmethod
    def _visible(owner: str, shared: bool, project_id: str | None, is_admin: bool) -> bool:
        return is_admin or shared or owner == project_id

    def list_networks(self, project_id: str | None, is_admin: bool) -> list[Network]:
        return [n for n in self.networks.values()
                if self._visible(n.project_id, n.shared, project_id, is_admin)]

    def networks_for(self, project_id: str) -> list[Network]:
        """The networks a server of `project_id` may attach to (its own and shared ones)."""
        return [n for n in self.networks.values() if n.shared or n.project_id == project_id]

    def get_network(self, network_id: str, project_id: str | None, is_admin: bool) -> Network:
        net = self.networks.get(network_id)
        if net is None or not self._visible(net.project_id, net.shared, project_id, is_admin):
            raise NotFound(f"Network {network_id} could not be found.", kind="NetworkNotFound")
        return net

    def list_subnets(self, project_id: str | None, is_admin: bool) -> list[Subnet]:
        return [s for s in self.subnets.values()
                if self._visible(s.project_id, self.networks[s.network_id].shared,
                                 project_id, is_admin)]

    def get_subnet(self, subnet_id: str, project_id: str | None, is_admin: bool) -> Subnet:
        s = self.subnets.get(subnet_id)
        if s is None or not self._visible(s.project_id, self.networks[s.network_id].shared,
                                          project_id, is_admin):
            raise NotFound(f"Subnet {subnet_id} could not be found.", kind="SubnetNotFound")
        return s

    # -- ports ---------------------------------------------------------------------------

    def _mac(self) -> str:
        while True:
            mac = "fa:16:3e:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))
            if mac not in self._macs:
                self._macs.add(mac)
                return mac

    def create_port(self, project_id: str, network_id: str, *, device_id: str = "",
                    device_owner: str = "", name: str = "", is_admin: bool = False) -> Port:
        net = self.get_network(network_id, project_id, is_admin)
        if not net.subnets:
            raise BadRequest(f"Network {network_id} has no subnet to allocate an address from.")
        used = sum(1 for p in self.ports.values() if p.project_id == project_id)
        if used >= self.quota(project_id)["port"]:
            raise Conflict(f"Quota exceeded for resources: ['port'].", kind="OverQuota")
        subnet = self.subnets[net.subnets[0]]
        port = Port(str(uuid.uuid4()), net.id, project_id, self._mac(),
                    [{"subnet_id": subnet.id, "ip_address": subnet.allocate()}],
                    device_id, device_owner, name)
        self.ports[port.id] = port
        return port

    def get_port(self, port_id: str, project_id: str | None, is_admin: bool) -> Port:
        port = self.ports.get(port_id)
        if port is None or not (is_admin or port.project_id == project_id):
            raise NotFound(f"Port {port_id} could not be found.", kind="PortNotFound")
        return port

    def list_ports(self, project_id: str | None, is_admin: bool) -> list[Port]:
        return [p for p in self.ports.values() if is_admin or p.project_id == project_id]

    def ports_of(self, device_id: str) -> list[Port]:
        return [p for p in self.ports.values() if p.device_id == device_id]

    def update_port(self, port: Port, body: dict) -> Port:
        for key in ("name", "device_id", "device_owner"):
            if key in body:
                if not isinstance(body[key], str):
                    raise BadRequest(f"Invalid input for {key}. Reason: '{body[key]}' is not a "
                                     "valid string.", kind="HTTPBadRequest")
                setattr(port, key, body[key])
        return port

    def delete_port(self, port_id: str) -> None:
        port = self.ports.pop(port_id)
        for ip in port.fixed_ips:
            self.subnets[ip["subnet_id"]].allocated.discard(ip["ip_address"])
        self._macs.discard(port.mac_address)

    def release(self, device_id: str) -> None:
        """Deletes every port of a device (Nova, when the server goes)."""
        for port in self.ports_of(device_id):
            self.delete_port(port.id)

    # -- quotas --------------------------------------------------------------------------

    def quota(self, project_id: str) -> dict:
        return dict(DEFAULT_QUOTA, **self.quotas.get(project_id, {}))

    def set_quota(self, project_id: str, changes: dict) -> dict:
        unknown = sorted(set(changes) - set(DEFAULT_QUOTA))
        if unknown:
            raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'",
                             kind="HTTPBadRequest")
        for key, value in changes.items():
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not an "
                                 "integer.", kind="HTTPBadRequest") from None
            if number < -1:
                raise BadRequest(f"Invalid input for {key}. Reason: '{value}' should be "
                                 "greater than or equal to -1.", kind="HTTPBadRequest")
            self.quotas.setdefault(project_id, {})[key] = number
        return self.quota(project_id)
