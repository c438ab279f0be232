"""The Datera lab's data plane: volumes' bytes, served over NBD on the access VIPs.

- Bytes: one sparse file per volume under `data_dir/volumes/`, snapshots as sparse files under
  `data_dir/snapshots/<volume uuid>/` (lab/datera/volume_file.py: zeroing, layout, copies).
- NBD (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md): handshake and
  options in lab/datera/nbd_negotiation.py (structured replies, `base:allocation`), commands in
  lab/datera/nbd_connection.py (READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, BLOCK_STATUS, DISC),
  the protocol's values in lab/datera/nbd_proto.py. Export names come from the initiator login
  (lab/datera/login.py); opening one re-checks the ACL through the model
  (`LoginAuthority.may_access`).
- QoS: replies wait for the volume's and its tenants' token buckets (lab/datera/qos.py); the
  unthrottled path never touches a timer.
- Metrics: every op is counted in its volume's accumulator (lab/datera/metrics.py), with its
  latency from request received to reply sent; what counts as what: nbd_connection.py.

The model drives everything through `contract.DataPlaneHooks`, all on one asyncio loop.
"""
import asyncio
import logging
import os
from pathlib import Path

from lab import chaos
from lab.datera.contract import VolumeHandle
from lab.datera.login import Exports, LoginService
from lab.datera.metrics import Metrics
from lab.datera.nbd_connection import NbdConnection
from lab.datera.nbd_proto import REP_ERR_POLICY, REP_ERR_UNKNOWN
from lab.datera.qos import Limiter, Pacer
from lab.datera.volume_file import Volume, check_id as _check_id, copy_sparse

log = logging.getLogger("lab.datera.dataplane")
PATH_WATCH_S = 0.1   # how soon a vip-down rule takes effect (and ends)


class DataPlane:
    """Implements contract.DataPlaneHooks; serves NBD and the initiator login on every VIP."""

    def __init__(self, data_dir: Path, metrics: Metrics, vips: list[str], nbd_port: int,
                 login_port: int):
        for ip in vips:
            if not ip.startswith("127."):
                raise ValueError(f"VIP {ip}: the lab binds to 127.0.0.0/8 only")
        self.data_dir = Path(data_dir)
        self.metrics = metrics
        self.vips = list(vips)
        self.nbd_port = nbd_port        # the bound ports once started (0 = pick a free one)
        self.login_port = login_port
        self.authority = None
        self.exports = Exports()
        self.volumes: dict[str, Volume] = {}
        self.tenant_limiters: dict[str, Limiter] = {}
        self.pacer: Pacer | None = None
        self._servers = []
        self._by_vip: dict[str, tuple] = {}   # VIP address -> its (NBD, login) listeners
        self._tasks = []
        self._login = None
        self.chaos = chaos.Control.from_env()
        (self.data_dir / "volumes").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "snapshots").mkdir(parents=True, exist_ok=True)

    def bind(self, authority):
        """authority implements contract.LoginAuthority."""
        self.authority = authority

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self):
        loop = asyncio.get_running_loop()
        self.pacer = Pacer(loop)
        self._login = LoginService(self)
        for ip in self.vips:
            await self._listen(ip)
        self._tasks.append(loop.create_task(self.metrics.run()))
        self._tasks.append(loop.create_task(self._watch_paths()))
        log.info("data plane on %s: NBD port %d, login port %d", ", ".join(self.vips),
                 self.nbd_port, self.login_port)

    async def _listen(self, ip: str) -> None:
        """The VIP's portal: NBD and the initiator login on the VIP's address."""
        loop = asyncio.get_running_loop()
        nbd = await loop.create_server(lambda: NbdConnection(self), ip, self.nbd_port,
                                       reuse_address=True)
        self.nbd_port = nbd.sockets[0].getsockname()[1]
        login = await asyncio.start_server(self._login.handle, ip, self.login_port,
                                           reuse_address=True, limit=64 * 1024)
        self.login_port = login.sockets[0].getsockname()[1]
        self._servers.extend((nbd, login))
        self._by_vip[ip] = (nbd, login)

    async def _watch_paths(self) -> None:
        """The chaos switch's `vip-down` (lab/chaos.py): a VIP whose path is down stops
        answering on its portal (no listener, its connections dropped) until the rule ends;
        hosts that use both portals (multipath) go on through the other VIP."""
        names = {f"VIP{i + 1}": ip for i, ip in enumerate(self.vips)}
        while True:
            await asyncio.sleep(PATH_WATCH_S)
            down = {names[n] for n in self.chaos.vips_down() if n in names}
            for ip in self.vips:
                try:
                    if ip in down and ip in self._by_vip:
                        self._path_down(ip)
                    elif ip not in down and ip not in self._by_vip:
                        await self._listen(ip)
                        log.warning("path to %s is back (chaos rule ended)", ip)
                except OSError as e:   # the port is briefly taken: try again next round
                    log.warning("path to %s: cannot listen again yet: %s", ip, e)

    def _path_down(self, ip: str) -> None:
        for srv in self._by_vip.pop(ip):
            srv.close()
            self._servers.remove(srv)
        dropped = 0
        for vol in self.volumes.values():
            for conn in list(vol.conns):
                t = conn.transport
                if t is not None and (t.get_extra_info("sockname") or ("",))[0] == ip:
                    conn.closing = True
                    t.abort()      # a lost path: no goodbye, the host notices the drop
                    dropped += 1
        log.warning("path to %s is down (chaos vip-down): %d NBD connection(s) dropped",
                    ip, dropped)

    async def stop(self):
        for srv in self._servers:
            srv.close()
        for vol in self.volumes.values():
            self._close_conns(vol)
        for srv in self._servers:
            await srv.wait_closed()
        self._servers.clear()
        self._by_vip.clear()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.pacer is not None:
            self.pacer.close()
        for vol in self.volumes.values():
            os.close(vol.fd)
        self.volumes.clear()

    # ---- DataPlaneHooks -----------------------------------------------------------------------
    def _vol_path(self, uuid: str) -> Path:
        return self.data_dir / "volumes" / f"{_check_id(uuid, 'volume')}.img"

    def _snap_path(self, vol_uuid: str, snap_id: str) -> Path:
        return (self.data_dir / "snapshots" / _check_id(vol_uuid, "volume")
                / f"{_check_id(snap_id, 'snapshot')}.img")

    def volume_created(self, vol: VolumeHandle) -> None:
        existing = self.volumes.get(vol.uuid)
        if existing is not None:
            self.volume_resized(vol)
            return
        v = Volume(vol, self._vol_path(vol.uuid), self.metrics.add_volume(vol))
        self.volumes[vol.uuid] = v
        self._relimit(v)

    def ensure_volume(self, vol: VolumeHandle) -> None:
        if vol.uuid not in self.volumes:
            self.volume_created(vol)

    def volume_resized(self, vol: VolumeHandle) -> None:
        v = self._volume(vol.uuid)
        if vol.size_bytes > os.fstat(v.fd).st_size:
            os.ftruncate(v.fd, vol.size_bytes)
        v.handle = vol

    def volume_deleted(self, uuid: str) -> None:
        v = self.volumes.pop(uuid, None)
        if v is None:
            return
        self.exports.drop_volume(uuid)
        self._close_conns(v)
        self.metrics.remove_volume(uuid)
        os.close(v.fd)
        # Freeing a large, fragmented sparse file keeps the file system busy for up to a
        # second: never on the event loop, where it would stall every other volume's I/O.
        self._discard(v.path, self.data_dir / "snapshots" / uuid)

    @staticmethod
    def _discard(*paths: Path) -> None:
        def discard():
            for p in paths:
                if p.is_dir():
                    for f in p.iterdir():
                        f.unlink(missing_ok=True)
                    p.rmdir()
                else:
                    p.unlink(missing_ok=True)
        try:
            asyncio.get_running_loop().run_in_executor(None, discard)
        except RuntimeError:   # no loop running (a hook called outside the server)
            discard()

    def volume_online(self, uuid: str, online: bool) -> None:
        v = self._volume(uuid)
        v.online = bool(online)
        if not online:
            self.exports.drop_volume(uuid)
            self._close_conns(v)

    def volume_qos(self, uuid: str, policy: dict) -> None:
        v = self._volume(uuid)
        v.limiter.set_policy(policy)
        self._relimit(v)

    def tenant_qos(self, tenant: str, policy: dict) -> None:
        lim = self.tenant_limiters.get(tenant)
        if lim is None:
            lim = self.tenant_limiters[tenant] = Limiter(f"tenant {tenant}")
        lim.set_policy(policy)
        if not lim.active:
            del self.tenant_limiters[tenant]
        for v in self.volumes.values():
            self._relimit(v)

    def clone_bytes(self, src_uuid: str, dst_uuid: str) -> None:
        src = self._find_bytes(src_uuid)
        dst = self.volumes.get(dst_uuid)
        copy_sparse(src, dst.path if dst else self._vol_path(dst_uuid))
        if dst is not None and os.fstat(dst.fd).st_size < dst.size:
            os.ftruncate(dst.fd, dst.size)

    def snapshot_bytes(self, vol_uuid: str, snap_id: str) -> None:
        v = self._volume(vol_uuid)
        path = self._snap_path(vol_uuid, snap_id)
        path.parent.mkdir(exist_ok=True)
        copy_sparse(v.path, path)

    def restore_bytes(self, vol_uuid: str, snap_id: str) -> None:
        v = self._volume(vol_uuid)
        path = self._snap_path(vol_uuid, snap_id)
        if not path.exists():
            raise KeyError(f"snapshot {snap_id} of volume {vol_uuid}: no bytes")
        copy_sparse(path, v.path)
        if os.fstat(v.fd).st_size < v.size:
            os.ftruncate(v.fd, v.size)

    def drop_snapshot(self, vol_uuid: str, snap_id: str) -> None:
        self._snap_path(vol_uuid, snap_id).unlink(missing_ok=True)

    # ---- helpers ------------------------------------------------------------------------------
    def _volume(self, uuid: str) -> Volume:
        try:
            return self.volumes[uuid]
        except KeyError:
            raise KeyError(f"volume {uuid}: not known to the data plane") from None

    def _find_bytes(self, src: str) -> Path:
        """A volume's file, or a snapshot's (by snapshot id, under any volume)."""
        if src in self.volumes:
            return self.volumes[src].path
        _check_id(src, "source")
        found = list((self.data_dir / "snapshots").glob(f"*/{src}.img"))
        if len(found) != 1:
            raise KeyError(f"clone source {src}: no such volume or snapshot"
                           if not found else f"clone source {src}: ambiguous snapshot id")
        return found[0]

    def _relimit(self, v: Volume):
        parts = [p for p in v.handle.tenant.split("/") if p]
        tenants = ["/" + "/".join(parts[:i]) for i in range(len(parts), 0, -1)]
        chain = [v.limiter] if v.limiter.active else []
        chain += [self.tenant_limiters[t] for t in tenants if t in self.tenant_limiters]
        v.limiters = tuple(chain)

    def _close_conns(self, v: Volume):
        for conn in list(v.conns):
            conn.close_cleanly()

    def open_export(self, name: str) -> tuple[Volume | None, int, str]:
        """(volume, 0, '') or (None, NBD error reply type, message). An export opens on either
        VIP, whichever the login went through (multipath)."""
        e = self.exports.resolve(name)
        if e is None:
            return None, REP_ERR_UNKNOWN, ("no such export: never issued, or revoked since (volume "
                                           "offline or deleted, ACL changed); log in to the target")
        v = self.volumes.get(e.vol_uuid)
        if v is None or not v.online:
            self.exports.revoke(name)
            return None, REP_ERR_UNKNOWN, "the volume is offline or gone; log in again"
        if self.authority is None or not self.authority.may_access(initiator=e.initiator,
                                                                    vol_uuid=e.vol_uuid):
            self.exports.revoke(name)
            return None, REP_ERR_POLICY, (f"initiator {e.initiator} is no longer allowed by "
                                          f"the target's ACL")
        return v, 0, ""
