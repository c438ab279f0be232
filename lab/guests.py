"""What every lab guest shares (DESIGN §3.5): a Nova server's (lab/openstack/nova/guest.py) and
a vSphere VM's (lab/vsphere/guest.py). A guest runs its job as a shell script whose block
devices are the platform's names (/dev/vdX on KVM, /dev/sdX on ESXi); each line that names
one is rewritten to reach the volume through the Datera data plane (`rewrite_script`); the
host's initiator logs in first (`iscsi_login`), with CHAP when the target asks for it; and
its output is bounded as on a real host (`ConsoleLog`, `GUEST_FILE_LIMIT`).
"""
import re
import shlex
import threading
from pathlib import Path
from typing import Callable

from clients import initiator

GUEST_FILE_LIMIT = 8 * 1024 * 1024   # bytes per file the guest writes (fio JSON is a few KiB)
CONSOLE_MAX_SIZE = 2 * 1024 * 1024   # virtlogd max_size
CONSOLE_BACKUPS = 3                  # virtlogd max_backups


class GuestError(Exception):
    """A device the guest cannot reach (a refused login, a missing image); secret-free."""


def iscsi_login(portals: list[str], initiator_iqn: str, target_iqn: str, lun: int,
                chap: dict | None = None) -> str:
    """The LUN's nbd:// URI after a login through the first portal ("ip:port") that answers
    (a refusal is the target's answer; only an unreachable portal is worth the next one).
    chap: {"chap_user", "chap_secret"} or None. GuestError (secret-free) otherwise."""
    reasons = []
    for portal in portals:
        ip, _, port = portal.rpartition(":")
        try:
            luns = initiator.login(ip, int(port), initiator_iqn, target_iqn, **(chap or {}))
        except initiator.LoginError as e:
            reasons.append(f"{portal}: {e.reason}")
            if not e.reason.startswith("cannot reach"):
                break
            continue
        match = next((l for l in luns if l.lun == lun), None)
        if match is None:
            raise GuestError(f"iSCSI login to {target_iqn} succeeded but LUN {lun} "
                             "is not presented")
        return match.uri
    raise GuestError(f"iSCSI login to {target_iqn} as {initiator_iqn} failed "
                     f"({'; '.join(reasons)})")


_IOENGINE = re.compile(r"\s--ioengine(?:=|\s+)\S+")


def _patterns(prefix: str) -> tuple[re.Pattern, re.Pattern]:
    dev = re.escape(prefix) + r"[a-z]\b"
    return re.compile(r"--filename(?:=|\s+)(" + dev + ")"), re.compile(dev)


def rewrite_script(script: str, devices: dict,
                   nbd_uri: Callable[[str], str] | None = None, prefix: str = "/dev/vd") -> str:
    """The script with every /dev/vdX replaced by what reaches that volume (module doc);
    nbd_uri(device) gives the URI an iSCSI device's fio uses (the guest's relay). A device is
    an object with rewrite_fio(uri) -> fio options, path() -> a file or None, and `nbd`
    (True: reached over NBD, so the line's own --ioengine goes). prefix: the platform's disk
    names (/dev/vd on KVM, /dev/sd on ESXi)."""
    fio_filename, device_re = _patterns(prefix)
    out = []
    for line in script.splitlines():
        if prefix not in line:
            out.append(line)
            continue
        nbd = False
        for dev in set(fio_filename.findall(line)):
            if dev not in devices:
                raise GuestError(f"the script names {dev}, which the server does not have")
            if getattr(devices[dev], "nbd", False):
                nbd = True
        if nbd:
            line = _IOENGINE.sub("", line)
        line = fio_filename.sub(lambda m: devices[m.group(1)].rewrite_fio(
            nbd_uri(m.group(1)) if nbd_uri and getattr(devices[m.group(1)], "nbd", False)
            else None), line)

        def plain(m):
            dev = devices.get(m.group(0))
            path = dev.path() if dev is not None else None
            return shlex.quote(path) if path else m.group(0)
        out.append(device_re.sub(plain, line))
    return "\n".join(out) + "\n"


class ConsoleLog:
    """console.log with virtlogd's rotation: past CONSOLE_MAX_SIZE the file becomes
    console.log.0 (older ones shift to .1, .2; the oldest is dropped) and a new one starts."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > CONSOLE_MAX_SIZE:
                for n in range(CONSOLE_BACKUPS - 1, 0, -1):
                    older = self.path.with_name(f"{self.path.name}.{n - 1}")
                    if older.exists():
                        older.replace(self.path.with_name(f"{self.path.name}.{n}"))
                self.path.replace(self.path.with_name(f"{self.path.name}.0"))
            with open(self.path, "ab") as f:
                f.write(data)

    def pump(self, stream) -> None:
        """Copy a guest's output into the log until every writer has closed it (the script
        and any job it left in the background)."""
        with stream:
            while chunk := stream.read1(65536):
                self.write(chunk)
