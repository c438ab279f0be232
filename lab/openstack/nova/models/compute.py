"""The compute host's work: every change to a server that happens off the request (the
nova-compute service). Builds (boot volumes through Cinder's reserve ->
initialize_connection -> initiator login -> attach, then the guest), detaches, Cinder's swap of
a migrating volume (the Compute port, lab/openstack/ports.py) and deletes run here, on the
model's worker threads; Cinder, the data plane and the guests run outside the lock."""
import logging
import time

from lab.openstack import errors
from lab.openstack.background import BackgroundWork
from lab.openstack.caller import Caller
from lab.openstack.microversion import Microversion

from ..guest import Guest, GuestError, copy_device, device_for
from .records import DEVICE_LETTERS, BlockDevice, ComputeHost, Server, now_iso

log = logging.getLogger("lab.openstack.nova")


class BuildAborted(errors.ApiError):
    """nova.exception.BuildAbortException: the server goes to ERROR with this fault."""
    kind = "BuildAbortException"

# NovaException's default text: what a fault says when the cause is no modelled failure.
UNKNOWN = "An unknown exception occurred."


class ComputeManager(BackgroundWork):
    # -- build ---------------------------------------------------------------------------
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
            try:
                self._prep_block_devices(cinder, cc, server)
            except Exception as e:
                raise BuildAborted(self._bdm_failure(server, e)) from None
            self._set(server, task_state="networking")
            self._set(server, task_state="spawning")
        except Exception as e:
            if isinstance(e, (errors.ApiError, GuestError)):
                message = getattr(e, "message", str(e))
            else:     # a lab bug: the traceback to the log, Nova's generic words to the user
                log.exception("server %s: unexpected failure while building", server_id)
                message = UNKNOWN
            log.warning("server %s failed to build: %s", server_id, message)
            self._set(server, status="ERROR", vm_state="error", task_state=None,
                      fault={"code": 500, "message": message, "created": now_iso()})
            return
        self._set(server, status="ACTIVE", vm_state="active", task_state=None, power_state=1,
                  launched_at=now_iso())
        if not server.deleting:
            self._start_guest(server)

    def _bdm_failure(self, server: Server, e: Exception) -> str:
        """The fault of a build whose block devices failed (compute/manager.py
        _prep_block_device -> InvalidBDM -> BuildAbortException): Mitaka to Ocata say only
        InvalidBDM's default; Pike (16.0.0) keeps the cause's own message."""
        if not isinstance(e, (errors.ApiError, GuestError)):
            log.error("server %s: block device setup failed", server.id, exc_info=e)
        if self.profile.nova_max > Microversion(2, 42) and isinstance(
                e, (errors.ApiError, GuestError)):
            reason = getattr(e, "message", None) or str(e)
        else:
            reason = "Block Device Mapping is Invalid."
        return f"Build of instance {server.id} aborted: {reason}"

    def _prep_block_devices(self, cinder, cc, server: Server) -> None:
        for request in list(server.pending):
                vol_id = self._volume_for(cinder, cc, server, request)
                with self.lock:
                    request["volume_id"] = vol_id   # the BDM's volume id, saved before its attach
                self.write_ahead()
                letter = DEVICE_LETTERS[len(server.devices)]
                dev = BlockDevice(vol_id, f"/dev/vd{letter}", request["boot_index"],
                                  request["delete_on_termination"])
                self._attach(cinder, cc, server, dev)
                with self.lock:
                    server.devices.append(dev)
                    server.pending.remove(request)

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
        started = time.monotonic()
        status = cinder.wait_for_volume(vol.id, ("available", "error"), 600)
        if status != "available":
            # nova.exception.VolumeNotCreated; Nova polls every 3 s (block_device_allocate_*)
            waited = int(time.monotonic() - started)
            raise errors.ApiError(f"Volume {vol.id} did not finish being created even after "
                                  f"we waited {waited} seconds or {waited // 3 + 1} attempts. "
                                  f"And its status is {status}.", kind="VolumeNotCreated")
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
                                    host_name=server.host.name, mountpoint=dev.device,
                                    mode=info.get("data", {}).get("access_mode", "rw"))
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

    # -- detach, and Cinder's swap of a migrating volume ----------------------------------
    def _detach(self, cc, server: Server, dev: BlockDevice) -> None:
        cinder = self.cinder()
        if server.guest:                  # the guest lets go of the disk first, as libvirt's
            server.guest.release(dev.device)
        try:
            cinder.terminate_connection(cc, dev.volume_id, server.host.connector())
            cinder.detach(cc, dev.volume_id, dev.attachment_id)
        except Exception as e:     # the volume goes back to in-use, as Nova's detach does
            log.warning("detach of %s from %s failed: %s", dev.volume_id, server.id,
                        getattr(e, "message", None) or UNKNOWN, exc_info=not isinstance(
                            e, errors.ApiError))
            cinder.roll_detaching(cc, dev.volume_id)
            return
        with self.lock:
            if dev in server.devices:
                server.devices.remove(dev)
            self._touch(server)

    def swap_volume(self, server_id: str, old_volume_id: str, new_volume_id: str) -> None:
        """Cinder's in-use migration (reference §c.2 step 5): export the new volume to the
        server's host, copy the disk onto it (Cinder copies no attached volume) and move the
        device there; a running guest's I/O follows through its disk relay (quiesce, copy,
        pivot: disk_relay.py).
        Cinder keeps the old id, so the block device keeps its volume id and name."""
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
            self.device(info, server.host, new_volume_id).check()   # os-brick's connect
            new_device = self.device(info, server.host, dev.volume_id)
            # libvirt's blockRebase copies the whole disk (Cinder's generic migration leaves
            # an attached volume's bytes to Nova): a disk with running I/O copies in its
            # relay's pivot; any other disk is copied here
            if not (server.guest and server.guest.relayed(dev.device)):
                copy_device(self.device(dev.connection_info, server.host, dev.volume_id),
                            new_device)
            if server.guest:
                server.guest.swap_device(dev.device, new_device)
        except GuestError as e:
            cinder.terminate_connection(admin, new_volume_id, server.host.connector())
            raise errors.ApiError(f"Swap of volume {old_volume_id} on server {server_id} "
                                  f"failed: {e}") from None
        cinder.terminate_connection(admin, old_volume_id, server.host.connector())
        with self.lock:
            dev.connection_info = info
            self._touch(server)

    # -- delete --------------------------------------------------------------------------
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
            except Exception as e:   # the server goes anyway, as Nova's delete does
                log.warning("server %s delete: volume %s: %s", server.id, dev.volume_id,
                            getattr(e, "message", None) or UNKNOWN,
                            exc_info=not isinstance(e, errors.ApiError))
        for request in list(server.pending) if cinder is not None else ():
            self._release_pending(cinder, cc, server, request)
        with self.lock:
            self.servers.pop(server.id, None)
            self.changed.notify_all()

    def _release_pending(self, cinder, cc, server: Server, request: dict) -> None:
        """A block device whose build died with the process (nova-compute's restart: the
        server is ERROR, the device never listed): what Cinder holds for it is undone as
        Nova's delete undoes a BDM (_shutdown_instance, _cleanup_volumes): its attachment to
        this server detached, a reservation released, the volume deleted if the BDM says
        delete_on_termination."""
        vol_id = request.get("volume_id")
        if not vol_id:
            return   # not created yet: nothing of Cinder's to undo
        try:
            vol = cinder.get_volume(cc, vol_id)
            ours = [a for a in vol.attachments if a.instance_uuid == server.id]
            if ours or vol.status == "attaching":
                cinder.terminate_connection(cc, vol_id, server.host.connector())
            for a in ours:
                cinder.detach(cc, vol_id, a.id)
            cinder.unreserve(cc, vol_id)   # only an `attaching` one changes
            if request["delete_on_termination"]:
                cinder.delete_volume(cc, vol_id)
        except Exception as e:   # the server goes anyway, as Nova's delete does
            log.warning("server %s delete: volume %s: %s", server.id, vol_id,
                        getattr(e, "message", None) or UNKNOWN,
                        exc_info=not isinstance(e, errors.ApiError))
