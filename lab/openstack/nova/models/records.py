"""Nova's records (reference openstack-api §a.4, §c.3) and the limits its checks use."""
import threading
import time
from dataclasses import dataclass, field

from lab.openstack import errors

from ..guest import Guest

MAX_USER_DATA = 65535
DEVICE_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Quota keys of these releases (reference §a.4); the network ones are gone at >= 2.36.
NETWORK_QUOTA_KEYS = ("floating_ips", "fixed_ips", "security_groups", "security_group_rules")
DEFAULT_QUOTAS = {"instances": 10, "cores": 20, "ram": 51200, "floating_ips": 10,
                  "fixed_ips": -1, "metadata_items": 128, "injected_files": 5,
                  "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
                  "key_pairs": 100, "security_groups": 10, "security_group_rules": 20,
                  "server_groups": 10, "server_group_members": 10}
BDM_KEYS = {"source_type", "destination_type", "uuid", "boot_index", "volume_size",
            "delete_on_termination", "device_name", "device_type", "disk_bus", "guest_format",
            "no_device", "connection_info", "volume_id", "snapshot_id", "image_id",
            "virtual_name", "tag"}


def now_iso(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t or time.time()))


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram: int          # MiB
    disk: int         # GiB
    ephemeral: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    extra_specs: dict = field(default_factory=dict)


DEFAULT_FLAVORS = (Flavor("1", "m1.tiny", 1, 512, 1), Flavor("2", "m1.small", 1, 2048, 20),
                   Flavor("3", "m1.medium", 2, 4096, 40), Flavor("4", "m1.large", 4, 8192, 80))


@dataclass
class ComputeHost:
    """A nova-compute node: its hypervisor and the initiator its guests log in as."""
    id: int
    uuid: str
    name: str
    address: str
    iqn: str

    def connector(self) -> dict:
        """What os-brick would report for this host (Cinder's `connector`)."""
        return {"initiator": self.iqn, "ip": self.address, "host": self.name,
                "multipath": True, "platform": "x86_64", "os_type": "linux"}


@dataclass
class BlockDevice:
    volume_id: str
    device: str                       # /dev/vda, /dev/vdb, ...
    boot_index: int | None
    delete_on_termination: bool
    attachment_id: str | None = None  # Cinder's attachment
    connection_info: dict | None = None


@dataclass
class Server:
    id: str
    name: str
    project_id: str
    user_id: str
    flavor: Flavor
    host: ComputeHost
    user_data: bytes | None
    metadata: dict
    description: str | None = None
    tags: list = field(default_factory=list)
    access_ips: tuple = ("", "")          # accessIPv4, accessIPv6 as the user set them
    status: str = "BUILD"
    vm_state: str = "building"
    task_state: str | None = "scheduling"
    power_state: int = 0
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    launched_at: str | None = None
    fault: dict | None = None
    ports: list = field(default_factory=list)        # [(network name, Port)]
    devices: list = field(default_factory=list)      # [BlockDevice], in device order
    pending: list = field(default_factory=list)      # BDM requests not attached yet
    admin_pass: str = ""
    guest: Guest | None = None
    deleting: bool = False
    built: threading.Event = field(default_factory=threading.Event)

    def __getstate__(self) -> dict:
        # Saved by lab/openstack/durable.py: the guest process and the build's Event are this
        # process's; a restored server has neither (restart.py settles its state).
        state = dict(self.__dict__)
        state["guest"], state["built"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.built = threading.Event()

    @property
    def boot_volume(self) -> BlockDevice | None:
        return next((d for d in self.devices if d.boot_index == 0), None)


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def integer_from_minus_one(field: str, value) -> int:
    """`value` as Nova's request schemas take an integer with minimum -1 (-1: unlimited; quota
    sets, os-getConsoleOutput's length): errors.BadRequest in jsonschema's words otherwise."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise errors.BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                                f"'{value}' is not of type 'integer'") from None
    if n < -1:
        raise errors.BadRequest(f"Invalid input for field/attribute {field}. Value: {n}. "
                                f"{n} is less than the minimum of -1")
    return n
