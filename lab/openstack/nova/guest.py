"""A Nova server's guest (DESIGN §3.5): its user_data run as cloud-init would, with the
server's block devices reached through the volume's data plane, its output the console log.

The guest has no kernel, so `/dev/vdX` cannot be real block devices. Instead, each line of the
script that names one is rewritten before it runs:
  * fio with `--filename=/dev/vdX` on a Datera (iSCSI) volume becomes
    `--ioengine=nbd --uri=nbd+unix:///?socket=<server dir>/vdX.sock` (any other --ioengine on
    that line is dropped): the disk's relay (disk_relay.py), which forwards to the LUN the
    compute host's initiator login returned (with the attachment's CHAP) and lets
    swap_volume copy and pivot the running guest's I/O to a new volume (live blockRebase);
  * on a Ceph (RBD) volume, `/dev/vdX` becomes the RBD image's file (no relay: a running
    guest's I/O on a Ceph disk stays on the old file across a swap).
The script runs under `sh` in the server's directory with a bounded timeout; stdout and stderr
go to the console log, framed by cloud-init style lines.

A guest's output is bounded as on a real compute host, so a guest that writes without end (fio's
nbd engine prints a line per poll forever once its connection dies) cannot fill the lab
machine's disk: the console log rotates as virtlogd rotates it (max_size 2 MiB, 3 backups:
libvirt's qemu.conf defaults; Nova reads the current file), and every file the guest writes is
bounded by RLIMIT_FSIZE (a real guest's disk is finite), so such a program ends with SIGXFSZ.
The pieces every lab guest shares (login, script rewrite, console) live in lab/guests.py.
"""
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab.guests import (CONSOLE_BACKUPS, CONSOLE_MAX_SIZE, GUEST_FILE_LIMIT,  # noqa: F401
                        ConsoleLog, GuestError, iscsi_login, rewrite_script)

from .disk_relay import DiskRelay, RelayError

log = logging.getLogger("lab.openstack.nova.guest")


@dataclass
class IscsiDevice:
    """A Datera volume: logged in as the compute host's initiator through the first portal
    that answers (both VIPs are in connection_info)."""
    data: dict
    initiator_iqn: str

    nbd = True   # fio reaches it over NBD (lab.guests.rewrite_script)

    def check(self) -> str:
        """The LUN's nbd:// URI after a successful login; GuestError otherwise."""
        d = self.data
        chap = None
        if d.get("auth_method") == "CHAP":
            chap = {"chap_user": d.get("auth_username"), "chap_secret": d.get("auth_password")}
        return iscsi_login(d.get("target_portals") or [d["target_portal"]], self.initiator_iqn,
                           d["target_iqn"], int(d.get("target_lun", 0)), chap)

    def rewrite_fio(self, uri: str | None = None) -> str:
        """fio's options for this disk; `uri` is the guest's relay (disk_relay.py) if any."""
        return f"--ioengine=nbd --uri={shlex.quote(uri or self.check())}"

    def path(self) -> str | None:
        return None


@dataclass
class FileDevice:
    """A Ceph (RBD) volume: the image file of the lab's pool."""
    resolve: Callable[[], str]

    def check(self) -> str:
        path = self.resolve()
        if not os.path.exists(path):
            raise GuestError(f"rbd image {path} does not exist")
        return path

    def rewrite_fio(self, uri: str | None = None) -> str:
        return f"--filename={shlex.quote(self.check())}"

    def path(self) -> str | None:
        return self.check()


def copy_device(old, new) -> None:
    """A disk's bytes onto a fresh (zeroed) disk, holes skipped: a file or the LUN's nbd://
    URI after the host's login on either side (nbdcopy). GuestError on failure."""
    from lab.openstack.cinder.backends import BackendError
    from lab.openstack.cinder.backends.copy import copy_bytes
    src, dst = old.path() or old.check(), new.path() or new.check()
    try:
        copy_bytes(src, dst, 0 if dst.startswith("nbd://") else os.path.getsize(dst))
    except BackendError as e:
        raise GuestError(str(e)) from None


def device_for(connection_info: dict, initiator_iqn: str,
               rbd_path: Callable[[], str] | None = None):
    kind = connection_info.get("driver_volume_type")
    if kind == "iscsi":
        return IscsiDevice(connection_info["data"], initiator_iqn)
    if kind == "rbd" and rbd_path is not None:
        return FileDevice(rbd_path)
    raise GuestError(f"the lab's hypervisor cannot connect {kind} volumes")


class Guest:
    """One server's guest: `start()` runs the user_data once, `console()` is its log."""

    def __init__(self, server_id: str, workdir: Path, user_data: bytes, devices: dict, *,
                 timeout: float, hostname: str):
        self.server_id = server_id
        self.workdir = Path(workdir)
        self.user_data = user_data
        self.devices = devices
        self.timeout = timeout
        self.hostname = hostname
        self.console_path = self.workdir / "console.log"
        self._console = ConsoleLog(self.console_path)
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._proc_lock = threading.Lock()    # stop() never misses a process being started
        self.finished = threading.Event()
        self._watchdog: threading.Timer | None = None
        self.returncode: int | None = None
        self.relays: dict[str, DiskRelay] = {}   # /dev/vdX -> its relay (iSCSI devices)
        self._relay_lock = threading.Lock()

    # -- disks: a relay per iSCSI device, so swap_volume can pivot a running guest ------------
    def _relay_uri(self, dev: str) -> str:
        with self._relay_lock:
            relay = self.relays.get(dev)
            if relay is None:
                sock = self.workdir / f"{dev.rsplit('/', 1)[-1]}.sock"
                relay = self.relays[dev] = DiskRelay(sock, self.devices[dev].check)
            return relay.uri

    def relayed(self, dev: str) -> bool:
        """True when the guest's I/O on `dev` runs through a relay (swap_device copies)."""
        with self._relay_lock:
            return dev in self.relays

    def swap_device(self, dev: str, new_device) -> None:
        """Moves `dev` to new_device; a running guest's I/O goes on there after the relay's
        copy and pivot (disk_relay.py). GuestError when the pivot fails (the old disk stays)."""
        with self._relay_lock:
            relay = self.relays.get(dev)
        if relay is not None:
            try:
                relay.pivot(new_device.check)
            except RelayError as e:
                raise GuestError(f"pivot of {dev} failed: {e}") from None
        self.devices[dev] = new_device

    def release(self, dev: str) -> None:
        """The device is detached: its relay closes (the guest's I/O on it ends)."""
        with self._relay_lock:
            relay = self.relays.pop(dev, None)
        if relay is not None:
            relay.close()

    def _log(self, text: str) -> None:
        self._console.write((text if text.endswith("\n") else text + "\n").encode())

    def console(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log(f"[    0.000000] Linux version 4.4.0 (lab guest of server {self.server_id})")
        self._log(f"Cloud-init v. 0.7.9 running 'init' at {time.strftime('%a, %d %b %Y %H:%M:%S')} "
                  f"+0000. Up 1.00 seconds.")
        self._thread = threading.Thread(target=self._run, name=f"guest-{self.server_id[:8]}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        try:
            self._run_user_data()
        except GuestError as e:
            self._log(f"cloud-init[1]: user-data failed: {e}")
        except Exception as e:   # keep the console truthful even when the lab has a bug
            log.exception("guest of %s failed", self.server_id)
            self._log(f"cloud-init[1]: user-data failed: {type(e).__name__}")
        finally:
            self._log(f"Cloud-init v. 0.7.9 finished at {time.strftime('%a, %d %b %Y %H:%M:%S')}"
                      f" +0000. Up {1 + time.monotonic() - started:.2f} seconds")
            self.finished.set()

    def _run_user_data(self) -> None:
        text = self.user_data.decode("utf-8", errors="replace")
        if not text.strip():
            self._log("cloud-init[1]: no user-data")
            return
        if text.startswith("#cloud-config"):
            self._log("cloud-init[1]: #cloud-config user-data is not supported by the lab's "
                      "guests; give a shell script")
            return
        started = time.monotonic()
        script = self.workdir / "user-data.sh"
        script.write_text(rewrite_script(text, self.devices, self._relay_uri))
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(self.workdir),
               "HOSTNAME": self.hostname, "LANG": "C.UTF-8"}
        with self._proc_lock:
            if self._stopping.is_set():
                return
            # prlimit (util-linux) sets RLIMIT_FSIZE without a preexec_fn in this threaded server
            self._proc = subprocess.Popen(["prlimit", f"--fsize={GUEST_FILE_LIMIT}",
                                           "sh", str(script)], cwd=self.workdir, env=env,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        pump = threading.Thread(target=self._console.pump, args=(self._proc.stdout,),
                                name=f"console-{self.server_id[:8]}", daemon=True)
        pump.start()
        try:
            self.returncode = self._proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self.returncode = self._proc.wait()
            self._log(f"cloud-init[1]: user-data killed after {self.timeout:.0f} s")
        # the script's last lines reach the log before the exit line; a background job that
        # still holds the console keeps writing to it after that, as on a real console
        pump.join(1.0)
        # a job the script left in the background lives on, as in a real guest, until the
        # server is stopped or the guest's time is up
        left = self.timeout - (time.monotonic() - started)
        self._watchdog = threading.Timer(max(left, 0), self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()
        self._log(f"cloud-init[1]: user-data exited with status {self.returncode}")

    def _kill(self) -> None:
        """SIGKILL to the guest's whole process group, also after its script has exited: a job
        the script started in the background must not outlive the server."""
        proc = self._proc
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10) -> None:
        with self._proc_lock:
            self._stopping.set()
            self._kill()
            if self._watchdog is not None:
                self._watchdog.cancel()
        if self._thread is not None and self._thread.ident is not None:   # started
            self._thread.join(timeout)
        for dev in list(self.relays):
            self.release(dev)
