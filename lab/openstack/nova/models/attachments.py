"""A server's volume attachments (os-volume_attachments): attach, list, show, detach. Attach
blocks on Cinder and the initiator login (call it from a worker thread); detach is finished by
compute.py's worker."""
from lab.openstack import errors
from lab.openstack.caller import Caller

from .records import DEVICE_LETTERS, BlockDevice, Server


class AttachmentsMixin:
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
