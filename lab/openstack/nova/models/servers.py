"""Servers: the API half of create (user data, block device mappings, quota), show/list,
console output and delete; the compute host's work that follows is in compute.py."""
import base64
import binascii
import re
import uuid

from lab.openstack import errors
from lab.openstack.caller import Caller

from .records import BDM_KEYS, MAX_USER_DATA, Server, _bool, integer_from_minus_one


class ServersMixin:
    # -- servers: create -------------------------------------------------------------------
    def _server(self, caller: Caller, server_id: str) -> Server:
        s = self.servers.get(server_id)
        if s is None or (s.project_id != caller.project_id and not caller.is_admin):
            raise errors.NotFound(f"Instance {server_id} could not be found.",
                                  kind="InstanceNotFound")
        return s

    def get_server(self, caller: Caller, server_id: str) -> Server:
        with self.lock:
            return self._server(caller, server_id)

    def list_servers(self, caller: Caller, *, all_tenants=False, name=None, status=None,
                     host=None) -> list[Server]:
        with self.lock:
            out = [s for s in self.servers.values()
                   if s.project_id == caller.project_id or (caller.is_admin and all_tenants)]
        if name:
            try:
                pattern = re.compile(name)
            except re.error:
                pattern = re.compile(re.escape(name))
            out = [s for s in out if pattern.search(s.name)]
        if status:
            out = [s for s in out if s.status == status.upper()]
        if host and caller.is_admin:
            out = [s for s in out if s.host.name == host]
        return sorted(out, key=lambda s: s.created, reverse=True)

    @staticmethod
    def decode_user_data(text) -> bytes | None:
        if text is None:
            return None
        if not isinstance(text, str) or len(text) > MAX_USER_DATA:
            raise errors.BadRequest("User data needs to be valid base 64.")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise errors.BadRequest("User data needs to be valid base 64.") from None

    def parse_block_devices(self, bdms: list, legacy: bool) -> list[dict]:
        """BDM v2 (or legacy v1) requests -> [{volume_id | source, boot_index, ...}]; 400 on
        what Nova's schema or its API checks refuse."""
        if not isinstance(bdms, list):
            raise errors.BadRequest("Invalid input for field/attribute block_device_mapping_v2. "
                                    f"Value: {bdms}. {bdms!r} is not of type 'array'")
        out = []
        for i, b in enumerate(bdms):
            if not isinstance(b, dict):
                raise errors.BadRequest(f"Invalid input for field/attribute "
                                        f"block_device_mapping_v2. Value: {b}. "
                                        f"{b!r} is not of type 'object'")
            if legacy:   # v1: {volume_id, device_name, delete_on_termination}
                b = {"source_type": "volume", "destination_type": "volume",
                     "uuid": b.get("volume_id"), "boot_index": 0 if i == 0 else None,
                     "delete_on_termination": b.get("delete_on_termination", False),
                     "device_name": b.get("device_name")}
            extra = sorted(set(b) - BDM_KEYS)
            if extra:
                raise errors.BadRequest(
                    f"Invalid input for field/attribute block_device_mapping_v2. Value: {bdms}. "
                    f"Additional properties are not allowed ('{extra[0]}' was unexpected)")
            boot = b.get("boot_index")
            try:
                boot = None if boot in (None, "", "none", "None") else int(boot)
            except (TypeError, ValueError):
                raise errors.BadRequest(f"Block Device Mapping is Invalid: Boot index {boot!r} "
                                        "is invalid.") from None
            if boot is not None and boot < 0:   # Nova: a negative index is "not bootable"
                boot = None
            src, dst = b.get("source_type", "volume"), b.get("destination_type", "volume")
            if src not in ("volume", "image", "snapshot", "blank") or dst not in ("local",
                                                                                 "volume"):
                raise errors.BadRequest(f"Block Device Mapping is Invalid: source_type {src} "
                                        f"to destination_type {dst} is not supported.")
            if dst == "local":
                raise errors.BadRequest("Block Device Mapping is Invalid: the lab's compute "
                                        "hosts have no local disks; use destination_type "
                                        "volume.")
            ref = b.get("uuid") or b.get("volume_id")
            if src != "blank" and not isinstance(ref, str):
                raise errors.BadRequest(f"Block Device Mapping is Invalid: {src} source needs a "
                                        "uuid.")
            size = b.get("volume_size")
            if src in ("image", "blank"):
                try:
                    size = int(size)
                except (TypeError, ValueError):
                    raise errors.BadRequest("Block Device Mapping is Invalid: volume_size "
                                            "must be an integer for new volumes.") from None
            out.append({"source": src, "ref": ref, "boot_index": boot, "size": size,
                        "delete_on_termination": _bool(b.get("delete_on_termination", False))})
        boots = sorted(x["boot_index"] for x in out if x["boot_index"] is not None)
        if boots and boots != list(range(len(boots))):
            raise errors.BadRequest("Block Device Mapping is Invalid: Boot sequence for the "
                                    "instance and image/block device mapping combination is "
                                    "not valid.")
        return sorted(out, key=lambda x: (x["boot_index"] is None, x["boot_index"] or 0))

    def check_quota(self, caller: Caller, flavor_id: str, metadata: dict):
        """The flavor, after Nova's create-time checks in its order (compute/api.py
        _validate_and_build_base_options, then _provision_instances): the flavor exists, the
        metadata items fit the quota (403), the instances, cores and ram fit (403). Block
        devices are validated after these."""
        flavor = self.flavors.get(str(flavor_id))
        if flavor is None:
            raise errors.BadRequest(f"Flavor {flavor_id} could not be found.")
        limits, used = self.limits_of(caller.project_id), self.usage_of(caller.project_id)
        allowed = limits["metadata_items"]
        if allowed >= 0 and len(metadata) > allowed:
            raise errors.Forbidden(f"Quota exceeded for metadata_items: Requested "
                                   f"{len(metadata)}, but already used 0 of {allowed} "
                                   "metadata_items", kind="OverQuota")
        for key, need in (("instances", 1), ("cores", flavor.vcpus), ("ram", flavor.ram)):
            if limits[key] >= 0 and used[key] + need > limits[key]:
                raise errors.Forbidden(f"Quota exceeded for {key}: Requested {need}, but "
                                       f"already used {used[key]} of {limits[key]} {key}",
                                       kind="OverQuota")
        return flavor

    def create_server(self, caller: Caller, *, name: str, flavor_id: str, user_data,
                      metadata: dict, devices: list[dict], zone: str | None,
                      description: str | None = None, tags=None,
                      access_ips: tuple = ("", "")) -> Server:
        flavor = self.check_quota(caller, flavor_id, metadata)
        if not any(d["boot_index"] == 0 for d in devices):
            raise errors.BadRequest("Block Device Mapping is Invalid: Boot sequence for the "
                                    "instance and image/block device mapping combination is "
                                    "not valid.")
        data = self.decode_user_data(user_data)
        cinder, cc = self.cinder(), caller
        # Nova's API checks each existing volume before it accepts the request.
        for d in devices:
            if d["source"] == "volume":
                vol = cinder.get_volume(cc, d["ref"])
                if vol.status != "available":
                    raise errors.BadRequest(f"Invalid volume: volume '{vol.id}' status must be "
                                            f"'available'. Currently in '{vol.status}'")
        host = self.pick_host(zone, caller)
        server = Server(id=str(uuid.uuid4()), name=name, project_id=caller.project_id,
                        user_id=caller.user_id, flavor=flavor, host=host, user_data=data,
                        metadata=dict(metadata), description=description,
                        tags=list(tags or []), pending=devices, access_ips=access_ips,
                        admin_pass=uuid.uuid4().hex[:12])
        with self.lock:
            self.servers[server.id] = server
            self._touch(server)
        return server

    def start_build(self, caller: Caller, server: Server) -> None:
        self._submit(self._build, caller, server.id)

    # -- console ---------------------------------------------------------------------------
    def console_output(self, caller: Caller, server_id: str, length) -> str:
        with self.lock:
            server = self._server(caller, server_id)
            if server.status not in ("ACTIVE", "SHUTOFF", "ERROR") or server.guest is None:
                raise errors.Conflict(f"Cannot 'get_console_output' instance {server_id} while "
                                      f"it is in vm_state {server.vm_state}",
                                      kind="InstanceInvalidState")
            guest = server.guest
        if length is not None:
            length = integer_from_minus_one("length", length)
        lines = guest.console().splitlines(keepends=True)
        if length is not None and length >= 0:
            lines = lines[-length:] if length else []
        return "".join(lines)

    # -- delete ----------------------------------------------------------------------------
    def delete_server(self, caller: Caller, server_id: str) -> Server:
        with self.lock:
            server = self._server(caller, server_id)
            if server.deleting:
                return server
            server.deleting, server.task_state = True, "deleting"
            self._touch(server)
        self._submit(self._delete, caller, server)
        return server
