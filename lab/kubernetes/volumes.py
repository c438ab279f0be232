"""The node's CSI volumes (NodeStage/NodePublish and their undo, as kubelet drives the Datera
driver's node service; reference kubernetes.md §10.5, driver pkg/driver/node.go and
pkg/client/mount.go of datera-csi v1.0.13).

What the real driver does on NodeStage: RegisterVolumeCapability (a filesystem other than
ext4/xfs is InvalidArgument "Unsupported filesystem type: ..."), this host's initiator into the
storage instance's ACL, online, iSCSI login (a /dev/disk/by-path device), then for a
filesystem volume: unless the app instance's metadata says `formatted: "true"` or lsblk finds
a filesystem, `mkfs.<fs> <fs_args> <device>` (ext4 default args
`-E lazy_itable_init=0,lazy_journal_init=0,nodiscard -F`), `mount -t <fs>` at the staging
path, metadata `formatted`/`device_path`/`mount_path`. NodePublish bind-mounts the staging path
to the pod's target path. NodeUnpublish unbinds; NodeUnstage unmounts, logs out, drops the ACL.

What the lab does: the same Datera calls (datera_csi.DateraCsi.node_stage), the documented
initiator login instead of iSCSI, and for the device: libnbd's nbdfuse exposes the LUN as a
file, a loop device over that file is the block device, and Debian's real mkfs.ext4/mkfs.xfs,
mount and bind mount do the rest (the node agent runs as root; the kernel has ext4, xfs, loop
and FUSE). Bytes written by the pod go loop -> FUSE -> NBD -> the Datera data plane.

A volume is staged once per node and unstaged when the last pod using it is done (kubelet's
volume manager), so two pods of one node share one mount and one ACL entry.
"""
import fcntl
import functools
import logging
import os
import re
import shutil
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

# Imported where a relay is made: its package (lab.openstack.nova) pulls aiohttp and the Nova
# models, a second of the node process's start on a loaded machine (python -X importtime).
if TYPE_CHECKING:
    from lab.openstack.nova.disk_relay import DiskRelay

from .datera_csi import CsiError, DateraCsi

log = logging.getLogger(__name__)
SUPPORTED_FS = ("ext4", "xfs")
# DefaultFsArgs of the driver (pkg/driver/driver.go)
DEFAULT_FS_ARGS = {"ext4": "-E lazy_itable_init=0,lazy_journal_init=0,nodiscard -F", "xfs": ""}
FORMAT_TIMEOUT_S = 120     # DAT_FORMAT_TIMEOUT is 60 s of retries; a loaded lab is slower
LOOP_CTL_GET_FREE = 0x4C82
LOOP_MAJOR = 7
MOUNT_TIMEOUT_S = 60


def check_fs_type(fs_type: str) -> None:
    """RegisterVolumeCapability's check of a mount capability's fsType (empty: the driver's
    ext4 default, as its README says). Raises CsiError(InvalidArgument)."""
    if fs_type and fs_type not in SUPPORTED_FS:
        raise CsiError("InvalidArgument", f"Unsupported filesystem type: {fs_type}, supported "
                                          f"types :re [{' '.join(SUPPORTED_FS)}]")


def _run(argv: list[str], what: str, timeout: float = MOUNT_TIMEOUT_S) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CsiError("Unknown", f"{what}: {argv[0]} timed out after {timeout:.0f}s") from None
    except OSError as e:
        raise CsiError("Unknown", f"{what}: {argv[0]}: {e.strerror}") from None
    if r.returncode != 0:
        last = (r.stderr.strip() or r.stdout.strip()).splitlines()
        raise CsiError("Unknown", f"{what}: exit status {r.returncode}: "
                                  f"{last[-1] if last else ''}".rstrip(": "))
    return r.stdout


def _loop_attach(file: Path, dev_dir: Path) -> str:
    """A free loop device over `file` -> its path. /dev may be a static tmpfs (containers)
    holding only a few loop nodes: a device the kernel hands out without a node gets one
    under `dev_dir`."""
    for _ in range(16):
        fd = os.open("/dev/loop-control", os.O_RDWR)
        try:
            n = fcntl.ioctl(fd, LOOP_CTL_GET_FREE)
        finally:
            os.close(fd)
        path = f"/dev/loop{n}"
        if not os.path.exists(path):
            dev_dir.mkdir(parents=True, exist_ok=True)
            path = str(dev_dir / f"loop{n}")
            if not os.path.exists(path):
                os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(LOOP_MAJOR, n))
        # --direct-io: the loop device passes each request on to the FUSE file as it comes
        # (O_DIRECT), so the LUN sees the I/O the pod did, not the page cache's version of it
        r = subprocess.run(["losetup", "--direct-io=on", path, str(file)], capture_output=True,
                           text=True)
        if r.returncode == 0:
            return path
        if "busy" not in r.stderr.lower():   # another host process took it meanwhile: retry
            raise CsiError("Unknown", f"losetup: {r.stderr.strip()}")
    raise CsiError("ResourceExhausted", "no free loop device")


def _loop_backing(path: str) -> Path:
    return Path(f"/sys/block/loop{os.minor(os.stat(path).st_rdev)}/loop/backing_file")


def _loop_detach(path: str) -> None:
    backing = _loop_backing(path)
    subprocess.run(["losetup", "-d", path], capture_output=True, timeout=30)
    deadline = time.monotonic() + 10
    while backing.exists() and time.monotonic() < deadline:
        time.sleep(0.02)   # the kernel clears a loop device once its last opener is gone


def _mounts() -> list[str]:
    """Mount points now, from /proc/mounts (os.path.ismount is False for a FUSE mount whose
    server died: stat fails with ENOTCONN)."""
    return [line.split()[1].encode().decode("unicode_escape")
            for line in Path("/proc/mounts").read_text().splitlines()]


def _is_mounted(path: Path) -> bool:
    return str(path) in _mounts()


def _unmount(path: Path, fuse: bool = False) -> None:
    if not _is_mounted(path):
        return
    # fusermount3 (Debian fuse3) when installed; root can umount a FUSE mount itself
    argv = ["fusermount3", "-u", str(path)] if fuse and shutil.which("fusermount3") \
        else ["umount", str(path)]
    for _ in range(50):
        if subprocess.run(argv, capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(0.1)   # still busy: a loop device or process letting go
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def _fuse_export(uri: str, mnt: Path, stop: threading.Event) -> subprocess.Popen:
    """nbdfuse serves the export at `uri` as the file <mnt>/nbd until unmounted; its pid file
    appears once the mount is ready."""
    mnt.mkdir(parents=True, exist_ok=True)
    pidfile = mnt.with_suffix(".pid")
    pidfile.unlink(missing_ok=True)
    # a session of its own: stopping the node's process group must not take the FUSE file
    # from under a mounted filesystem; the node agent unmounts it (or sweeps it next start)
    proc = subprocess.Popen(["nbdfuse", "-P", str(pidfile), str(mnt), uri],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while not pidfile.exists():
        if proc.poll() is not None:
            raise CsiError("Unknown", f"nbdfuse exited {proc.returncode}: "
                           f"{proc.stderr.read().decode(errors='replace').strip()[:200]}")
        if time.monotonic() > deadline or stop.wait(0.02):
            proc.kill()
            raise CsiError("DeadlineExceeded", "nbdfuse did not mount within 30 s")
    return proc


@dataclass
class Staged:
    """One volume staged on this node."""
    handle: str
    pv: str
    uri: str
    fs_type: str | None            # None: raw block
    dir: Path                      # .../plugins/kubernetes.io/csi/pv/<pv>
    users: set = field(default_factory=set)   # pod uids
    fuse_proc: subprocess.Popen | None = None
    loop: str | None = None
    relay: "DiskRelay | None" = None

    @property
    def fuse_dir(self) -> Path:
        return self.dir / "nbd"

    @property
    def staging(self) -> Path:
        return self.dir / "globalmount"


class NodeVolumes:
    """Stage/publish of Datera volumes on this node, reference-counted by pod."""

    def __init__(self, csi: DateraCsi, iqn: str, node_name: str, work_dir: Path, login):
        self.csi, self.iqn, self.node, self.login = csi, iqn, node_name, login
        self.dir = work_dir.resolve()   # as /proc/mounts names it
        self.plugin_dir = self.dir / "plugins" / "kubernetes.io" / "csi" / "pv"
        self._staged: dict[str, Staged] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _vol_lock(self, handle: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(handle, threading.Lock())

    # -- NodeStage / NodeUnstage ---------------------------------------------------------------
    def stage(self, pod_uid: str, handle: str, pv: str, fs_type: str | None,
              secret: dict | None, stop: threading.Event) -> Staged:
        """NodeStage for `pod_uid` (a no-op but for the count when staged already).
        fs_type None: raw block; "" or a name: filesystem. Raises CsiError."""
        with self._vol_lock(handle):
            s = self._staged.get(handle)
            if s is None:
                if fs_type is not None:
                    check_fs_type(fs_type)
                # The LUN is reached through a relay that stages again (login through the
                # first portal that answers) when the target drops it: a Datera restart or a
                # lost path is a pause for the pod, as with the kubelet's multipath iSCSI, not
                # an error. Its socket sits in a short scratch directory of its own (a unix
                # socket's path has at most 107 bytes), removed when the relay closes.
                from lab.openstack.nova.disk_relay import DiskRelay
                relay = DiskRelay(None,
                                  functools.partial(self.csi.node_stage, handle, self.iqn,
                                                    self.node, secret, self.login))
                s = Staged(handle, pv, relay.uri, fs_type, self.plugin_dir / pv, relay=relay)
                try:
                    if fs_type is not None:
                        self._stage_fs(s, stop)
                except BaseException:
                    self._teardown(s)
                    raise
                self._staged[handle] = s
            s.users.add(pod_uid)
            return s

    def _stage_fs(self, s: Staged, stop: threading.Event) -> None:
        s.fuse_proc = _fuse_export(s.uri, s.fuse_dir, stop)
        s.loop = _loop_attach(s.fuse_dir / "nbd", self.dir / "dev")
        md = self.csi.get_metadata(s.handle)
        fs = s.fs_type or md.get("fs_type") or "ext4"
        check_fs_type(fs)
        found = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", s.loop],
                               capture_output=True, text=True).stdout.strip()
        if md.get("formatted") != "true" and not found:
            args = (md.get("fs_args") or DEFAULT_FS_ARGS[fs]).split()
            _run([f"mkfs.{fs}", *args, s.loop], f"format {s.handle} as {fs}", FORMAT_TIMEOUT_S)
        elif found and found != fs:
            log.warning("%s already holds %s (asked for %s): mounting it as is", s.handle,
                        found, fs)
            fs = found
        s.staging.mkdir(parents=True, exist_ok=True)
        _run(["mount", "-t", fs, s.loop, str(s.staging)], f"mount {s.handle}")
        s.fs_type = fs
        self.csi.set_metadata(s.handle, formatted="true", fs_type=fs, device_path=s.loop,
                              mount_path=str(s.staging))

    def release(self, pod_uid: str, handle: str) -> None:
        """The pod is done with the volume: NodeUnstage once no pod uses it."""
        with self._vol_lock(handle):
            s = self._staged.get(handle)
            if s is None:
                return
            s.users.discard(pod_uid)
            if s.users:
                return
            del self._staged[handle]
            self._teardown(s)
            try:
                self.csi.node_unstage(handle, self.iqn)
            except Exception as e:   # the driver logs and goes on ("fail gracefully")
                log.warning("NodeUnstage %s: %s", handle, e)

    def _teardown(self, s: Staged) -> None:
        if s.fs_type is not None:
            _unmount(s.staging)
        if s.loop:
            _loop_detach(s.loop)
            if not s.loop.startswith("/dev/"):
                Path(s.loop).unlink(missing_ok=True)
        self._stop_fuse(s.fuse_dir, s.fuse_proc)
        if s.relay is not None:
            s.relay.close()
        shutil.rmtree(s.dir, ignore_errors=True)

    @staticmethod
    def _stop_fuse(mnt: Path, proc: subprocess.Popen | None) -> None:
        _unmount(mnt, fuse=True)
        if proc is not None:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def block_file(self, s: Staged, pod_dir: Path, path: str, stop: threading.Event,
                   procs: list) -> str:
        """A raw block volume as a file for commands other than fio (dd, head, sha256sum):
        nbdfuse in the pod's directory, stopped with the pod (`procs` collects it)."""
        mnt = pod_dir / ("fuse-" + path.strip("/").replace("/", "-"))
        if not _is_mounted(mnt):
            procs.append((mnt, _fuse_export(s.uri, mnt, stop)))
        return str(mnt / "nbd")

    # -- NodePublish / NodeUnpublish -------------------------------------------------------------
    @staticmethod
    def target_path(pod_dir: Path, pv: str) -> Path:
        return pod_dir / "volumes" / "kubernetes.io~csi" / pv / "mount"

    def publish(self, s: Staged, target: Path, read_only: bool = False) -> None:
        """Bind-mounts the staged filesystem at `target` (the pod's view of the volume)."""
        if _is_mounted(target):
            return
        target.mkdir(parents=True, exist_ok=True)
        _run(["mount", "--bind", str(s.staging), str(target)], f"publish {s.handle}")
        if read_only:
            _run(["mount", "-o", "remount,bind,ro", str(target)], f"publish {s.handle} read-only")

    @staticmethod
    def unpublish(target: Path) -> None:
        _unmount(target)

    # -- a restarted node ---------------------------------------------------------------------
    def sweep(self) -> None:
        """Undoes what a killed node agent left mounted under its work dir (deepest first:
        pod binds, staging mounts, then loop devices over nbdfuse files, then nbdfuse)."""
        root = str(self.dir.resolve()) + "/"
        ours = sorted((m for m in _mounts() if m.startswith(root)), key=len, reverse=True)
        for m in ours:
            if not m.endswith("/nbd") and "/fuse-" not in m:
                _unmount(Path(m))
        r = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True,
                           text=True)
        for line in r.stdout.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].startswith(root):
                _loop_detach(parts[0])
        for m in ours:
            if m.endswith("/nbd") or "/fuse-" in m:
                _unmount(Path(m), fuse=True)
        if ours:
            log.info("swept %d mount(s) a previous node agent left", len(ours))


MOUNT_PATH_END = r"(?=/|[^\w.-]|$)"


def rewrite_mount_paths(text: str, mounts: dict[str, str]) -> str:
    """Every mention of a container's mountPath in `text` -> the pod's target path (the guest
    runs on the node's own filesystem, not in a mount namespace of its own)."""
    for path, target in sorted(mounts.items(), key=lambda kv: len(kv[0]), reverse=True):
        text = re.sub(r"(?<![\w./-])" + re.escape(path.rstrip("/") or "/") + MOUNT_PATH_END,
                      lambda _m, t=target: t, text)
    return text
