"""Who may reach a storage instance: initiators, initiator groups, ACLs, CHAP, IP pools."""
import ipaddress
from dataclasses import dataclass, field

from . import validate as v
from .errors import InvalidRequest

HIDDEN = "(hidden)"   # what reads show instead of a CHAP secret (real v2.1 behaviour)


@dataclass
class Initiator:
    id: str       # the IQN
    name: str
    tenant: str

    @property
    def path(self) -> str:
        return f"/initiators/{self.id}"

    def to_dict(self) -> dict:
        return {"path": self.path, "id": self.id, "name": self.name, "tenant": self.tenant}


@dataclass
class InitiatorGroup:
    name: str
    tenant: str
    members: list[tuple[str, str]] = field(default_factory=list)   # (tenant, iqn)

    @property
    def path(self) -> str:
        return f"/initiator_groups/{self.name}"

    def to_dict(self) -> dict:
        return {"path": self.path, "name": self.name, "tenant": self.tenant,
                "members": [{"path": f"/initiators/{iqn}", "tenant": t} for t, iqn in self.members]}


@dataclass
class AclPolicy:
    """References are resolved when set (tenant, key), so reads can name their tenant."""
    owner_path: str     # the storage instance's path
    initiators: list[tuple[str, str]] = field(default_factory=list)
    initiator_groups: list[tuple[str, str]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.owner_path}/acl_policy"

    def to_dict(self) -> dict:
        return {"path": self.path,
                "initiators": [{"path": f"/initiators/{k}", "tenant": t}
                               for t, k in self.initiators],
                "initiator_groups": [{"path": f"/initiator_groups/{k}", "tenant": t}
                                     for t, k in self.initiator_groups]}


AUTH_TYPES = ("none", "chap", "mchap")
AUTH_FIELDS = ("type", "initiator_user_name", "initiator_pswd", "target_user_name", "target_pswd")


@dataclass
class Auth:
    owner_path: str
    type: str = "none"
    initiator_user_name: str = ""
    initiator_pswd: str = ""
    target_user_name: str = ""
    target_pswd: str = ""

    @property
    def path(self) -> str:
        return f"{self.owner_path}/auth"

    def update(self, body: dict, where: str = "auth") -> None:
        """Validates the whole change before applying any of it."""
        v.only(body, AUTH_FIELDS + ("force", "path"), where)
        new = {f: getattr(self, f) for f in AUTH_FIELDS}
        if "type" in body:
            new["type"] = v.choice(body["type"], "type", AUTH_TYPES)
        for f in ("initiator_user_name", "target_user_name"):
            if f in body:
                new[f] = v.name(body[f], f) if body[f] else ""
        for f in ("initiator_pswd", "target_pswd"):
            if f in body and body[f] != HIDDEN:
                value = body[f]
                if value and (not isinstance(value, str) or not 12 <= len(value) <= 16):
                    raise InvalidRequest(f"{f}: a CHAP secret must be 12-16 characters")
                new[f] = value or ""
        if new["type"] in ("chap", "mchap") and not (new["target_user_name"] and new["target_pswd"]):
            raise InvalidRequest(f"{where}: type {new['type']} needs target_user_name and target_pswd")
        if new["type"] == "mchap" and not (new["initiator_user_name"] and new["initiator_pswd"]):
            raise InvalidRequest(f"{where}: type mchap needs initiator_user_name and initiator_pswd")
        if new["type"] == "none":
            new.update(initiator_user_name="", initiator_pswd="", target_user_name="", target_pswd="")
        for f, value in new.items():
            setattr(self, f, value)

    def to_dict(self) -> dict:
        return {"path": self.path, "type": self.type,
                "initiator_user_name": self.initiator_user_name,
                "initiator_pswd": HIDDEN if self.initiator_pswd else "",
                "target_user_name": self.target_user_name,
                "target_pswd": HIDDEN if self.target_pswd else ""}


NETWORK_PATH_FIELDS = ("name", "netmask", "vlan", "start_ip", "range", "mtu", "gateway")


def network_path(body: dict, where: str) -> dict:
    v.only(body, NETWORK_PATH_FIELDS, where)
    try:
        ipaddress.IPv4Address(body.get("start_ip"))
    except (ValueError, TypeError):
        raise InvalidRequest(f"{where}.start_ip: expected an IPv4 address")
    return {"name": v.name(body.get("name", "path-1"), f"{where}.name"),
            "start_ip": body["start_ip"],
            "netmask": v.integer(body.get("netmask", 16), f"{where}.netmask", 8, 30),
            "range": v.integer(body.get("range", 6), f"{where}.range", 2, 254),
            "vlan": v.integer(body.get("vlan", 0), f"{where}.vlan", 0, 4094),
            "mtu": v.integer(body.get("mtu", 1500), f"{where}.mtu", 1500, 9198),
            "gateway": body.get("gateway") or ""}


@dataclass
class IpPool:
    name: str
    tenant: str
    descr: str | None
    network_paths: list[dict]

    @property
    def path(self) -> str:
        return f"/access_network_ip_pools/{self.name}"

    def addresses(self) -> list[str]:
        """The access IPs this pool hands to storage instances: start_ip .. start_ip+range-1."""
        out = []
        for np_ in self.network_paths:
            start = ipaddress.IPv4Address(np_["start_ip"])
            out.extend(str(start + i) for i in range(np_["range"]))
        return out

    def to_dict(self) -> dict:
        return {"path": self.path, "name": self.name, "descr": self.descr,
                "tenant": self.tenant, "network_paths": self.network_paths}
