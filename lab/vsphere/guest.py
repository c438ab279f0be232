"""A vSphere VM's guest (DESIGN §3.5): its `guestinfo.userdata` run as a shell script, its
disks reached through the Datera data plane, its results published as `guestinfo.*` values
the way VMware Tools publishes them.

The lab's vCenter (lab/vsphere, Go) starts `python -m lab.vsphere.guest` when a VM whose
extraConfig has `guestinfo.userdata` powers on, in a process group of its own that PowerOff
and Destroy kill, with one JSON document on stdin:

    {"vm": moref, "name": str, "userdata": str,
     "host": {"iqn", "chap_user", "chap_secret"},          # the ESXi host's software iSCSI
     "disks": [{"label", "datastore", "naa", "target_iqn", "portals": ["ip:port"], "lun_id",
                "capacity_bytes", "vmdk_path"}],            # in the VM's SCSI unit order
     "guestinfo_url": "https://.../guestinfo?vm=<moref>",
     ["auth": {"user", "password"}], ["ca_file": path], ["result_file": path]}

Disks are the guest's /dev/sda, /dev/sdb, ... in that order. A disk on a VMFS datastore lives
on the datastore's Datera LUN (`naa`): the host's initiator logs in to the LUN's target with
the host's IQN and CHAP (as an ESXi host does at rescan time), and fio lines naming the disk
run against the LUN's NBD export, restricted to the virtual disk's region of the LUN: the VMFS
partition starts at 1 MiB (sector 2048, as ESXi lays out a VMFS 6 partition) and the flat
VMDK is modelled as the first `capacity_bytes` of it. So the Datera metrics of the LUN's
volume show the VM's I/O.

Results go to `guestinfo_url` as {"guestinfo.<key>": "<value>"} (HTTP basic auth: `auth`,
else the URL's user info, else VANCOUVER_VSPHERE_USER/PASSWORD): guestinfo.state
(running, then done), guestinfo.exitcode and guestinfo.output (the last OUTPUT_MAX bytes of
the console); the script may publish its own values as with VMware Tools,
`vmware-rpctool "info-set guestinfo.<key> <value>"` (a shim on the script's PATH). Output is
bounded as for the lab's Nova guests (lab/guests.py): a rotating console file and
RLIMIT_FSIZE on every file the script writes.

The final values are also written to `result_file` (0600) before they are posted, and the
file is removed once the post is answered: a vCenter killed meanwhile applies them from there
when the agent exits or the vCenter comes back (lab/vsphere/guest_result.go), so a result is
never lost and the job never runs twice for want of one.

Exit codes: 0 the script ran (whatever its status, which is in guestinfo.exitcode; -1 when the
agent itself failed to run it, the error in guestinfo.output and its traceback on stderr), 2 a bad
document on stdin (one line on stderr), 3 the vCenter refused the first report because it does
not have the VM powered on (404/409: a power-on lost to a vCenter kill -9 before it was saved,
or the VM gone since): the script is not run, as a VM that is off runs no guest.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import shlex
import signal
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from clients import scratch
from lab.guests import GUEST_FILE_LIMIT, ConsoleLog, GuestError, iscsi_login, rewrite_script
from lab.openstack.nova.disk_relay import DiskRelay

DISK_PREFIX = "/dev/sd"
VMFS_PARTITION_OFFSET = 1 << 20    # bytes: sector 2048
OUTPUT_MAX = 64 * 1024             # bytes of console a guestinfo.output value carries
DEFAULT_TIMEOUT_S = 900.0          # VANCOUVER_VSPHERE_GUEST_TIMEOUT overrides
PUBLISH_RETRY_S = 120.0            # how long a post waits for a restarting vCenter
PUBLISH_RETRY_ENV = "VANCOUVER_VSPHERE_GUEST_PUBLISH_S"   # overrides PUBLISH_RETRY_S
EXIT_NOT_ON = 3                    # the vCenter does not have the VM powered on (main)
RPCTOOL = """#!/bin/sh
# VMware Tools' rpctool, as far as the lab's guests need it: info-set guestinfo.<key> <value>
printf '%s\\n' "$*" >> "$VANCOUVER_RPC"
"""


@dataclass
class VmfsDisk:
    """A virtual disk on a VMFS datastore on a Datera LUN, reached through the host's login."""
    disk: dict
    host: dict
    nbd = True

    def check(self) -> str:
        d, h = self.disk, self.host
        chap = ({"chap_user": h["chap_user"], "chap_secret": h.get("chap_secret") or ""}
                if h.get("chap_user") else None)
        return iscsi_login(list(d.get("portals") or []), h["iqn"], d["target_iqn"],
                           int(d.get("lun_id") or 0), chap)

    def rewrite_fio(self, uri: str | None = None) -> str:
        size = int(self.disk.get("capacity_bytes") or 0)
        region = f" --offset={VMFS_PARTITION_OFFSET}" + (f" --size={size}" if size else "")
        return f"--ioengine=nbd --uri={shlex.quote(uri or self.check())}{region}"

    def path(self) -> str | None:
        return None


class NoDisk:
    """A disk the lab cannot back with a LUN (not on a VMFS datastore on a Datera LUN)."""
    nbd = False

    def __init__(self, disk: dict):
        self.disk = disk

    def _refuse(self):
        raise GuestError(f"{self.disk.get('label') or 'a disk'} on datastore "
                         f"{self.disk.get('datastore')!r} is not on a Datera LUN")

    def rewrite_fio(self, uri: str | None = None) -> str:
        self._refuse()

    def path(self) -> str | None:
        self._refuse()


def devices_for(doc: dict) -> dict:
    """/dev/sdX -> its device, in the VM's disk order."""
    out = {}
    for n, disk in enumerate(doc.get("disks") or []):
        name = f"{DISK_PREFIX}{chr(ord('a') + n)}"
        out[name] = VmfsDisk(disk, doc.get("host") or {}) if disk.get("naa") else NoDisk(disk)
    return out


# -- guestinfo: the channel back to the vSphere API --------------------------------------------

class GuestInfo:
    def __init__(self, doc: dict):
        url = doc["guestinfo_url"]
        parts = urllib.parse.urlsplit(url)
        auth = doc.get("auth") or {}
        user = auth.get("user") or urllib.parse.unquote(parts.username or "") or \
            os.environ.get("VANCOUVER_VSPHERE_USER", "")
        password = auth.get("password") or urllib.parse.unquote(parts.password or "") or \
            os.environ.get("VANCOUVER_VSPHERE_PASSWORD", "")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        self.headers = {"Content-Type": "application/json"}
        self.refused: int | None = None   # the HTTP status of a final refusal (publish)
        if user:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.context = None
        if parts.scheme == "https":
            ca = doc.get("ca_file") or os.environ.get("VANCOUVER_VSPHERE_CA")
            if ca:
                self.context = ssl.create_default_context(cafile=ca)
            elif parts.hostname and parts.hostname.startswith("127."):
                # as pyvmomi does for a loopback vCenter without a CA file
                self.context = ssl._create_unverified_context()

    def publish(self, values: dict[str, str]) -> bool:
        """POSTs {"guestinfo.<key>": value}; True once answered 2xx. A failure is one line on
        stderr (the VM runs on). While the vCenter does not answer, or answers 5xx/429 (it
        restarts after a crash, or is still resuming its guests: 503; the guest outlives it
        and the new process adopts it, lab/vsphere/guest_resume.go), the post is retried, with
        a backoff, for up to PUBLISH_RETRY_S (env VANCOUVER_VSPHERE_GUEST_PUBLISH_S); another
        HTTP error (401, 404 no such VM, 409 VM not powered on) is final, its status kept in
        `refused`."""
        body = json.dumps({k: str(v) for k, v in values.items()}).encode()
        deadline = time.monotonic() + float(os.environ.get(PUBLISH_RETRY_ENV, PUBLISH_RETRY_S))
        delay = 0.2
        while True:
            req = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=10, context=self.context) as resp:
                    resp.read()
                return True
            except urllib.error.HTTPError as e:
                if e.code < 500 and e.code != 429:
                    self.refused = e.code
                    print(f"guest: cannot publish guestinfo to {self.url}: {e.code} {e.reason}",
                          file=sys.stderr)
                    return False
                reason = f"{e.code} {e.reason}"
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                # HTTPException: an answer cut short by the kill (IncompleteRead, BadStatusLine)
                reason = getattr(e, 'reason', None) or repr(e)
            if time.monotonic() + delay > deadline:
                print(f"guest: cannot publish guestinfo to {self.url}: {reason}", file=sys.stderr)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _rpc_values(path: Path) -> dict[str, str]:
    out = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        cmd, _, rest = line.partition(" ")
        key, _, value = rest.partition(" ")
        if cmd == "info-set" and key.startswith("guestinfo.") and len(key) > len("guestinfo."):
            out[key] = value
    return out


def _tail(path: Path, limit: int = OUTPUT_MAX) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


# -- the run -----------------------------------------------------------------------------------

def run(doc: dict, workdir: Path, timeout: float) -> dict[str, str]:
    """Runs the userdata in `workdir`; returns the guestinfo values to publish at the end."""
    console = ConsoleLog(workdir / "console.log")
    rpc = workdir / "rpc.log"
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    (bin_dir / "vmware-rpctool").write_text(RPCTOOL)
    (bin_dir / "vmware-rpctool").chmod(0o755)
    text = doc.get("userdata") or ""
    if not text.strip():
        return {"guestinfo.state": "done", "guestinfo.exitcode": "0",
                "guestinfo.output": "no userdata"}
    devices = devices_for(doc)
    relays: dict[str, DiskRelay] = {}

    def relay_uri(dev: str) -> str:
        """The disk's LUN through a relay that logs in again, through the first portal that
        answers, when the target drops it: a lost path (VIP1 down) or a Datera restart is a
        pause for the VM's I/O, as with the ESXi host's multipathed software iSCSI."""
        if dev not in relays:
            sock = workdir / f"{dev.rsplit('/', 1)[-1]}.sock"
            relays[dev] = DiskRelay(str(sock), devices[dev].check)
        return relays[dev].uri
    try:
        script = rewrite_script(text, devices, nbd_uri=relay_uri, prefix=DISK_PREFIX)
    except GuestError as e:
        _close_relays(relays)
        return {"guestinfo.state": "done", "guestinfo.exitcode": "-1",
                "guestinfo.output": f"userdata failed: {e}"}
    (workdir / "userdata.sh").write_text(script)
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
           "HOME": str(workdir), "HOSTNAME": str(doc.get("name") or "vm"), "LANG": "C.UTF-8",
           "VANCOUVER_RPC": str(rpc)}
    # The script stays in this process group, so the vCenter's kill of the group (PowerOff,
    # Destroy) ends everything it started.
    proc = subprocess.Popen(["prlimit", f"--fsize={GUEST_FILE_LIMIT}", "sh", "userdata.sh"],
                            cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pump = threading.Thread(target=console.pump, args=(proc.stdout,), daemon=True)
    pump.start()
    try:
        code = str(proc.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        _stop_group()
        proc.wait()
        code = "timeout"
        console.write(f"guest: userdata killed after {timeout:.0f} s\n".encode())
    pump.join(2.0)
    _close_relays(relays)
    values = _rpc_values(rpc)
    values.update({"guestinfo.state": "done", "guestinfo.exitcode": code,
                   "guestinfo.output": _tail(console.path)})
    return values


def _close_relays(relays: dict) -> None:
    for relay in relays.values():
        relay.close()


def _stop_group() -> None:
    """SIGTERM to everything the script started (this process's group), sparing this one."""
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(0, signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, old)


def read_doc(stream) -> dict:
    """The document on stdin; ValueError naming what is wrong."""
    try:
        doc = json.load(stream)
    except json.JSONDecodeError as e:
        raise ValueError(f"stdin: not JSON ({e.msg})") from None
    if not isinstance(doc, dict):
        raise ValueError("stdin: expected a JSON object")
    if not isinstance(doc.get("guestinfo_url"), str) or not doc["guestinfo_url"].startswith("http"):
        raise ValueError("stdin: guestinfo_url: expected an http(s) URL")
    if not isinstance(doc.get("disks", []), list):
        raise ValueError("stdin: disks: expected a list")
    return doc


def main() -> int:
    try:
        doc = read_doc(sys.stdin)
    except ValueError as e:
        print(f"guest: {e}", file=sys.stderr)
        return 2
    if os.getpgid(0) != os.getpid():
        # a group of our own, so _stop_group never reaches whoever started us
        try:
            os.setpgid(0, 0)
        except PermissionError:
            pass
    # PowerOff/Destroy: the vCenter's SIGTERM to the group ends the script with us; exiting
    # through SystemExit still removes the work directory.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    timeout = float(os.environ.get("VANCOUVER_VSPHERE_GUEST_TIMEOUT", DEFAULT_TIMEOUT_S))
    info = GuestInfo(doc)
    info.publish({"guestinfo.state": "running",
                  "guestinfo.started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    if info.refused in (HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT):
        # The vCenter has no such VM powered on: it was killed after this power-on started us
        # and before it saved the VM as on (its caller got no answer), or the VM went since.
        # A VM that is off runs no guest: no job (its fio and writes would run unseen on the
        # VM's LUNs while the demo tears them down; issue 13).
        print(f"guest {doc.get('vm')}: the vCenter does not have the VM powered on "
              f"({info.refused}): not running its job", file=sys.stderr)
        return EXIT_NOT_ON
    workdir = scratch.make_dir("vm")   # a killed guest's is swept by the next one
    try:
        result = run(doc, workdir, timeout)
    except Exception as e:  # noqa: BLE001
        # Whatever breaks the agent itself still ends in a result: without one the VM would
        # stay "running" and the demo wait its whole guest timeout for nothing (issue 13: a
        # relay socket's bind failing left only "timed out after 128 s").
        traceback.print_exc()
        result = {"guestinfo.state": "done", "guestinfo.exitcode": "-1",
                  "guestinfo.output": f"guest agent failed: {type(e).__name__}: {e}"}
    finally:
        scratch.remove(workdir)
    left = leave_result(doc.get("result_file"), result)
    if info.publish(result) and left is not None:
        left.unlink(missing_ok=True)
    return 0


def leave_result(path: str | None, values: dict[str, str]) -> Path | None:
    """Writes the final values to `path` (0600, temp file and rename) for the vCenter to
    apply if the post is never answered; None without a path or when it cannot be written
    (one line on stderr: the post is then the only way)."""
    if not path:
        return None
    dest = Path(path)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(values, f)
        os.replace(tmp, dest)
    except OSError as e:
        print(f"guest: cannot leave the result in {dest}: {e.strerror}", file=sys.stderr)
        tmp.unlink(missing_ok=True)
        return None
    return dest


if __name__ == "__main__":
    sys.exit(main())
