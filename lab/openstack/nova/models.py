"""Nova's state and behaviour, one instance per cloud; no HTTP here (DESIGN §5).

A POST answers at once with the server in BUILD; the compute host's work (attaching the boot
volume through Cinder's reserve -> initialize_connection -> initiator login -> attach flow,
then spawning the guest) runs on the model's worker threads, which move the server through
reference openstack-api §c.3: BUILD -> ACTIVE (or ERROR with a `fault`), delete -> ACTIVE with
task_state `deleting` -> gone. Volume attachments follow the same flow synchronously on a worker
thread, so a refused initiator login is the request's answer. One lock guards every record;
Cinder, the data plane and the guests run outside it.

Neutron's model is not thread-safe (it lives on the event loop), so ports are made and released
by the request handlers' thread, never by the workers.
"""
import base64
import binascii
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

from lab.openstack import errors
from lab.openstack.background import BackgroundWork
from lab.openstack.caller import Caller
from lab.openstack.ports import Volumes

from .guest import Guest, GuestError, device_for

log = logging.getLogger("lab.openstack.nova")

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

    @property
    def boot_volume(self) -> BlockDevice | None:
        return next((d for d in self.devices if d.boot_index == 0), None)


class ComputeModel(BackgroundWork):
    """Nova of one cloud. `volumes` is the Volumes port (ports.py: Cinder's model), None when
    the cloud has no Cinder; `hosts` are the cloud's compute nodes; `run_dir` holds the
    guests' files."""

    def __init__(self, *, profile, hosts: list[ComputeHost], controller: str,
                 volumes: Volumes | None, run_dir, guest_timeout: float = 300,
                 workers: int = 4):
        self.profile = profile
        self.hosts = hosts
        self.controller = controller
        self._volumes = volumes
        self.run_dir = run_dir
        self.guest_timeout = guest_timeout
        self.flavors = {f.id: f for f in DEFAULT_FLAVORS}
        self.servers: dict[str, Server] = {}
        self.quotas: dict[str, dict] = {}
        self._init_background("nova-compute", workers, log)
        self.started = now_iso()

    def close(self) -> None:
        with self.lock:
            guests = [s.guest for s in self.servers.values() if s.guest]
        for g in guests:
            g.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- helpers ---------------------------------------------------------------------------
    def cinder(self) -> Volumes:
        model = self._volumes
        if model is None:
            raise errors.BadRequest("Block Device Mapping is Invalid: this cloud has no volume "
                                    "service.")
        return model

    def _touch(self, server: Server) -> None:
        server.updated = now_iso()
        self.changed.notify_all()

    # -- flavors ---------------------------------------------------------------------------
    def get_flavor(self, flavor_id: str) -> Flavor:
        f = self.flavors.get(flavor_id)
        if f is None:
            raise errors.NotFound(f"Flavor {flavor_id} could not be found.",
                                  kind="FlavorNotFound")
        return f

    def list_flavors(self) -> list[Flavor]:
        return sorted(self.flavors.values(), key=lambda f: int(f.id))

    # -- quotas ----------------------------------------------------------------------------
    def quota_keys(self, version) -> list[str]:
        from lab.openstack.microversion import Microversion
        keys = list(DEFAULT_QUOTAS)
        if version is not None and version >= Microversion(2, 36):
            keys = [k for k in keys if k not in NETWORK_QUOTA_KEYS]
        return keys

    def limits_of(self, project_id: str) -> dict:
        return {**DEFAULT_QUOTAS, **self.quotas.get(project_id, {})}

    def usage_of(self, project_id: str) -> dict:
        with self.lock:
            mine = [s for s in self.servers.values() if s.project_id == project_id]
            return {"instances": len(mine), "cores": sum(s.flavor.vcpus for s in mine),
                    "ram": sum(s.flavor.ram for s in mine)}

    def update_quota(self, caller: Caller, project_id: str, values: dict, version) -> dict:
        if not caller.is_admin:
            raise errors.policy_forbids("os_compute_api:os-quota-sets:update")
        allowed = set(self.quota_keys(version))
        force = values.pop("force", None)
        if force is not None and not self.profile.nova_quota_force_accepted:
            allowed.discard("force")
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise errors.BadRequest(
                f"Invalid input for field/attribute quota_set. Value: {values}. Additional "
                f"properties are not allowed ('{unknown[0]}' was unexpected)")
        clean = {}
        for k, v in values.items():
            try:
                n = int(v)
            except (TypeError, ValueError):
                raise errors.BadRequest(f"Invalid input for field/attribute {k}. Value: {v}. "
                                        f"'{v}' is not of type 'integer'") from None
            if n < -1:
                raise errors.BadRequest(f"Invalid input for field/attribute {k}. Value: {n}. "
                                        f"{n} is less than the minimum of -1")
            clean[k] = n
        with self.lock:
            self.quotas.setdefault(project_id, {}).update(clean)
        return self.limits_of(project_id)

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

    def pick_host(self, zone: str | None, caller: Caller) -> ComputeHost:
        """The scheduler: a forced `nova:<host>` (admin), else the least busy host."""
        if zone and ":" in zone:
            if not caller.is_admin:
                raise errors.policy_forbids("os_compute_api:servers:create:forced_host")
            name = zone.split(":", 1)[1]
            host = next((h for h in self.hosts if h.name == name), None)
            if host is None:
                raise errors.BadRequest(f"No valid host was found. Compute host {name} could "
                                        "not be found.")
            return host
        if zone not in (None, "", "nova"):
            raise errors.BadRequest(f"The requested availability zone is not available")
        with self.lock:
            load = {h.name: 0 for h in self.hosts}
            for s in self.servers.values():
                load[s.host.name] = load.get(s.host.name, 0) + 1
        return min(self.hosts, key=lambda h: (load[h.name], h.id))

    def create_server(self, caller: Caller, *, name: str, flavor_id: str, user_data,
                      metadata: dict, devices: list[dict], zone: str | None,
                      description: str | None = None, tags=None) -> Server:
        flavor = self.flavors.get(str(flavor_id))
        if flavor is None:
            raise errors.BadRequest(f"Flavor {flavor_id} could not be found.")
        if not any(d["boot_index"] == 0 for d in devices):
            raise errors.BadRequest("Block Device Mapping is Invalid: Boot sequence for the "
                                    "instance and image/block device mapping combination is "
                                    "not valid.")
        limits, used = self.limits_of(caller.project_id), self.usage_of(caller.project_id)
        for key, need in (("instances", 1), ("cores", flavor.vcpus), ("ram", flavor.ram)):
            if limits[key] >= 0 and used[key] + need > limits[key]:
                raise errors.Forbidden(f"Quota exceeded for {key}: Requested {need}, but "
                                       f"already used {used[key]} of {limits[key]} {key}",
                                       kind="OverQuota")
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
                        tags=list(tags or []), pending=devices,
                        admin_pass=uuid.uuid4().hex[:12])
        with self.lock:
            self.servers[server.id] = server
            self._touch(server)
        return server

    def start_build(self, caller: Caller, server: Server) -> None:
        self._submit(self._build, caller, server.id)

    # -- the compute host's work -----------------------------------------------------------
    def _set(self, server: Server, **fields) -> None:
        with self.lock:
            if server.deleting and "task_state" in fields:   # a delete wins over the build
                fields["task_state"] = "deleting"
            for k, v in fields.items():
                setattr(server, k, v)
            self._touch(server)

    def _build(self, caller: Caller, server_id: str) -> None:
        server = self.servers[server_id]
        try:
            self._build_steps(caller, server)
        finally:
            server.built.set()

    def _build_steps(self, caller: Caller, server: Server) -> None:
        server_id = server.id
        cinder, cc = self.cinder(), caller
        try:
            self._set(server, task_state="block_device_mapping")
            for request in list(server.pending):
                vol_id = self._volume_for(cinder, cc, server, request)
                letter = DEVICE_LETTERS[len(server.devices)]
                dev = BlockDevice(vol_id, f"/dev/vd{letter}", request["boot_index"],
                                  request["delete_on_termination"])
                self._attach(cinder, cc, server, dev)
                with self.lock:
                    server.devices.append(dev)
                    server.pending.remove(request)
            self._set(server, task_state="networking")
            self._set(server, task_state="spawning")
        except (errors.ApiError, GuestError) as e:
            message = getattr(e, "message", str(e))
            log.warning("server %s failed to build: %s", server_id, message)
            self._set(server, status="ERROR", vm_state="error", task_state=None,
                      fault={"code": 500, "message": message, "created": now_iso()})
            return
        self._set(server, status="ACTIVE", vm_state="active", task_state=None, power_state=1,
                  launched_at=now_iso())
        if not server.deleting:
            self._start_guest(server)

    def _volume_for(self, cinder, cc, server: Server, request: dict) -> str:
        """The volume a BDM names, or the one Nova has Cinder create for image/blank sources."""
        if request["source"] == "volume":
            return request["ref"]
        kwargs = {"size": request["size"], "name": ""}
        if request["source"] == "image":
            kwargs["image_id"] = request["ref"]
        elif request["source"] == "snapshot":
            kwargs["snapshot_id"] = request["ref"]
            kwargs.pop("size")
        vol = cinder.create_volume(cc, **kwargs)
        status = cinder.wait_for_volume(vol.id, ("available", "error"), 600)
        if status != "available":
            raise errors.ApiError(f"Build of instance {server.id} aborted: Volume {vol.id} did "
                                  f"not finish being created (status {status}).")
        return vol.id

    def _attach(self, cinder, cc, server: Server, dev: BlockDevice) -> None:
        """reserve -> initialize_connection -> the host's initiator login -> attach; undone
        (unreserve, terminate_connection) when any step fails, as Nova's compute manager."""
        connector = server.host.connector()
        cinder.reserve(cc, dev.volume_id)
        try:
            info = cinder.initialize_connection(cc, dev.volume_id, connector)
            try:
                self.device(info, server.host, dev.volume_id).check()   # os-brick's connect_volume
                att = cinder.attach(cc, dev.volume_id, instance_uuid=server.id,
                                    host_name=server.host.name, mountpoint=dev.device)
            except Exception:
                cinder.terminate_connection(cc, dev.volume_id, connector)
                raise
        except GuestError as e:
            cinder.unreserve(cc, dev.volume_id)
            raise errors.ApiError(f"Failed to attach volume {dev.volume_id} to server "
                                  f"{server.id} on {server.host.name}: {e}",
                                  kind="VolumeAttachFailed") from None
        except Exception:
            cinder.unreserve(cc, dev.volume_id)
            raise
        dev.attachment_id, dev.connection_info = att.id, info

    def _start_guest(self, server: Server) -> None:
        devices = {d.device: self.device(d.connection_info, server.host, d.volume_id)
                   for d in server.devices}
        guest = Guest(server.id, self.run_dir / server.id, server.user_data or b"", devices,
                      timeout=self.guest_timeout, hostname=server.name)
        with self.lock:
            server.guest = guest
        guest.start()

    def device(self, info: dict, host: ComputeHost, volume_id: str):
        """How `host` reaches a volume given its connection_info (guest.py)."""
        try:
            return device_for(info, host.iqn, lambda: self._rbd_path(volume_id))
        except GuestError as e:
            raise errors.ApiError(str(e)) from None

    def _rbd_path(self, volume_id: str) -> str:
        driver, ref = self.cinder().driver_ref(volume_id)
        with driver.local_access(ref) as path:   # RBD: a file, nothing to undo
            return str(path)

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
            try:
                length = int(length)
            except (TypeError, ValueError):
                raise errors.BadRequest(f"Invalid input for field/attribute length. Value: "
                                        f"{length}. '{length}' is not of type 'integer'") from None
            if length < -1:
                raise errors.BadRequest(f"Invalid input for field/attribute length. Value: "
                                        f"{length}. {length} is less than the minimum of -1")
        lines = guest.console().splitlines(keepends=True)
        if length is not None and length >= 0:
            lines = lines[-length:] if length else []
        return "".join(lines)

    # -- volume attachments ----------------------------------------------------------------
    def attach_volume(self, caller: Caller, server_id: str, volume_id: str) -> BlockDevice:
        """Blocks (Cinder's driver, the initiator login): call from a worker thread."""
        cinder, cc = self.cinder(), caller
        with self.lock:
            server = self._server(caller, server_id)
            if server.status != "ACTIVE" or server.task_state is not None:
                raise errors.Conflict(f"Cannot 'attach_volume' instance {server_id} while it "
                                      f"is in vm_state {server.vm_state}",
                                      kind="InstanceInvalidState")
            if any(d.volume_id == volume_id for d in server.devices):
                raise errors.BadRequest(f"Invalid volume: volume {volume_id} already attached",
                                        kind="InvalidVolume")
        vol = cinder.get_volume(cc, volume_id)
        if vol.status != "available":
            raise errors.BadRequest(f"Invalid volume: volume '{volume_id}' status must be "
                                    f"'available'. Currently in '{vol.status}'",
                                    kind="InvalidVolume")
        with self.lock:
            used = {d.device for d in server.devices}
            letter = next(c for c in DEVICE_LETTERS if f"/dev/vd{c}" not in used)
            dev = BlockDevice(volume_id, f"/dev/vd{letter}", None, False)
            server.devices.append(dev)     # reserves the device name
        try:
            self._attach(cinder, cc, server, dev)
        except Exception:
            with self.lock:
                server.devices.remove(dev)
            raise
        with self.lock:
            self._touch(server)
        return dev

    def attachments(self, caller: Caller, server_id: str) -> tuple[Server, list[BlockDevice]]:
        with self.lock:
            server = self._server(caller, server_id)
            return server, [d for d in server.devices if d.attachment_id]

    def attachment(self, caller: Caller, server_id: str, volume_id: str) -> BlockDevice:
        _, devs = self.attachments(caller, server_id)
        dev = next((d for d in devs if d.volume_id == volume_id), None)
        if dev is None:
            raise errors.NotFound(f"volume_id not found: {volume_id}",
                                  kind="VolumeBDMNotFound")
        return dev

    def detach_volume(self, caller: Caller, server_id: str, volume_id: str) -> None:
        cinder, cc = self.cinder(), caller
        with self.lock:
            server = self._server(caller, server_id)
            dev = self.attachment(caller, server_id, volume_id)
            if dev.boot_index == 0:
                raise errors.BadRequest("Can't detach root device volume")
            if server.task_state is not None:
                raise errors.Conflict(f"Cannot 'detach_volume' instance {server_id} while it "
                                      f"is in task_state {server.task_state}",
                                      kind="InstanceInvalidState")
        cinder.begin_detaching(cc, volume_id)
        self._submit(self._detach, cc, server, dev)

    def _detach(self, cc, server: Server, dev: BlockDevice) -> None:
        cinder = self.cinder()
        try:
            cinder.terminate_connection(cc, dev.volume_id, server.host.connector())
            cinder.detach(cc, dev.volume_id, dev.attachment_id)
        except errors.ApiError as e:
            log.warning("detach of %s from %s failed: %s", dev.volume_id, server.id, e.message)
            cinder.roll_detaching(cc, dev.volume_id)
            return
        with self.lock:
            if dev in server.devices:
                server.devices.remove(dev)
            self._touch(server)

    def swap_volume(self, server_id: str, old_volume_id: str, new_volume_id: str) -> None:
        """Cinder's in-use migration (reference §c.2 step 5): export the new volume to the
        server's host and move the device there. Cinder has copied the bytes and keeps the
        old id, so the block device keeps its volume id and name."""
        cinder = self.cinder()
        with self.lock:
            server = self.servers.get(server_id)
            dev = next((d for d in server.devices if d.volume_id == old_volume_id), None) \
                if server else None
        if dev is None:
            raise errors.NotFound(f"volume {old_volume_id} is not attached to {server_id}")
        admin = Caller(server.project_id, "nova", True)
        info = cinder.initialize_connection(admin, new_volume_id, server.host.connector())
        try:
            self.device(info, server.host, new_volume_id).check()
        except GuestError as e:
            cinder.terminate_connection(admin, new_volume_id, server.host.connector())
            raise errors.ApiError(f"Swap of volume {old_volume_id} on server {server_id} "
                                  f"failed: {e}") from None
        cinder.terminate_connection(admin, old_volume_id, server.host.connector())
        with self.lock:
            dev.connection_info = info
            if server.guest:
                server.guest.devices[dev.device] = self.device(info, server.host, dev.volume_id)
            self._touch(server)

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

    def _delete(self, caller: Caller, server: Server) -> None:
        # A build in progress finishes its Cinder calls first, so nothing stays attached.
        server.built.wait(self.guest_timeout)
        if server.guest:
            server.guest.stop()
        cc = caller
        cinder = self._volumes
        for dev in list(server.devices):
            if cinder is None or not dev.attachment_id:
                continue
            try:
                cinder.terminate_connection(cc, dev.volume_id, server.host.connector())
                cinder.detach(cc, dev.volume_id, dev.attachment_id)
                if dev.delete_on_termination:
                    cinder.delete_volume(cc, dev.volume_id)
            except errors.ApiError as e:
                log.warning("server %s delete: volume %s: %s", server.id, dev.volume_id,
                            e.message)
        with self.lock:
            self.servers.pop(server.id, None)
            self.changed.notify_all()

    # -- hosts -----------------------------------------------------------------------------
    def host_usage(self, host: ComputeHost) -> dict:
        with self.lock:
            mine = [s for s in self.servers.values() if s.host is host]
        return {"vcpus_used": sum(s.flavor.vcpus for s in mine),
                "memory_mb_used": 512 + sum(s.flavor.ram for s in mine),
                "local_gb_used": 0, "running_vms": len(mine)}

    def host(self, ref: str) -> ComputeHost:
        h = next((h for h in self.hosts if ref in (str(h.id), h.uuid)), None)
        if h is None:
            raise errors.NotFound(f"Hypervisor with ID '{ref}' could not be found.",
                                  kind="HypervisorNotFound")
        return h


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")
