"""The node agent's pods (the kubelet's part, DESIGN §3.5; reference kubernetes.md §8.2, §9.1):
each pod bound to the node runs as a *guest*, its first container's command under `sh` in a
directory of its own, with its raw-block PVCs (`volumeDevices`) reached through the Datera data
plane after NodeStage (ACL + this node's initiator login, CHAP from the PV's node-stage secret).

The guest has no kernel, so a `devicePath` cannot be a real block device; before the command
runs, fio's `--filename=<devicePath>` becomes `--ioengine=nbd --uri=<the LUN>` and any other
mention becomes a file that libnbd's nbdfuse exposes the LUN as. Filesystem PVCs
(`volumeMounts`) are refused with a FailedMount event (not implemented yet).

Phases, conditions and container statuses move as a kubelet moves them; a failed NodeStage
leaves the pod Pending/ContainerCreating with a FailedMount event and retries; a deleted pod is
stopped, unstaged and finally removed (grace 0, UID precondition).
"""
import datetime
import functools
import logging
import re
import shlex
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from clients import initiator, ports
from lab.openstack.nova.disk_relay import DiskRelay

from .datera_csi import CsiError, DateraCsi

log = logging.getLogger(__name__)
RETRY_S = (1.0, 30.0)
_FIO = re.compile(r"\bfio\b")
_IOENGINE = re.compile(r"\s--ioengine(?:=|\s+)\S+")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) \
        .isoformat().replace("+00:00", "Z")


@dataclass
class Guest:
    uid: str
    namespace: str
    name: str
    container: str
    dir: Path
    stop: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen | None = None
    staged: list = field(default_factory=list)      # volume handles
    fuse: list = field(default_factory=list)        # nbdfuse mount dirs
    fuse_procs: list = field(default_factory=list)
    relays: list = field(default_factory=list)       # each staged LUN's DiskRelay

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.container}.log"


def nbd_login(ip: str, target_iqn: str, initiator_iqn: str, **chap) -> str:
    luns = initiator.login(ip, ports.ISCSI, initiator_iqn, target_iqn, **chap)
    lun0 = next((l for l in luns if l.lun == 0), None)
    if lun0 is None:
        raise initiator.LoginError("login succeeded but LUN 0 is not presented")
    return lun0.uri


class PodRunner:
    def __init__(self, core: client.CoreV1Api, csi: DateraCsi, node_name: str, address: str,
                 driver: str, work_dir: Path, iqn: str):
        self.core, self.csi, self.node, self.address = core, csi, node_name, address
        self.driver, self.dir, self.iqn = driver, work_dir, iqn
        self.guests: dict[str, Guest] = {}
        self._lock = threading.Lock()

    def log_file(self, namespace: str, name: str, container: str) -> Path | None:
        with self._lock:
            for g in self.guests.values():
                if (g.namespace, g.name, g.container) == (namespace, name, container):
                    return g.log_path
        return None

    # -- events from the pod watch -----------------------------------------------------------
    def on_pod(self, kind: str, pod) -> None:
        uid = pod.metadata.uid
        if kind == "DELETED":
            self._stop(uid)
            return
        if pod.metadata.deletion_timestamp is not None:
            threading.Thread(target=self._finish_delete, args=(pod,), daemon=True).start()
            return
        if pod.status and pod.status.phase not in (None, "Pending"):
            return
        with self._lock:
            if uid in self.guests:
                return
            c = pod.spec.containers[0]
            g = Guest(uid, pod.metadata.namespace, pod.metadata.name, c.name,
                      self.dir / "pods" / uid)
            self.guests[uid] = g
        g.dir.mkdir(parents=True, exist_ok=True)
        g.log_path.touch()
        threading.Thread(target=self._run, args=(g, pod), name=f"pod-{pod.metadata.name}",
                         daemon=True).start()

    def _finish_delete(self, pod) -> None:
        self._stop(pod.metadata.uid)
        try:
            self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace,
                                            body=client.V1DeleteOptions(
                                                grace_period_seconds=0,
                                                preconditions=client.V1Preconditions(
                                                    uid=pod.metadata.uid)))
        except ApiException as e:
            if e.status not in (404, 409):
                log.warning("final delete of pod %s/%s: HTTP %s", pod.metadata.namespace,
                            pod.metadata.name, e.status)

    def _stop(self, uid: str) -> None:
        with self._lock:
            g = self.guests.pop(uid, None)
        if g is None:
            return
        g.stop.set()
        if g.proc is not None and g.proc.poll() is None:
            g.proc.terminate()
            try:
                g.proc.wait(5)
            except subprocess.TimeoutExpired:
                g.proc.kill()
        self._unstage(g)
        shutil.rmtree(g.dir, ignore_errors=True)

    def _unstage(self, g: Guest) -> None:
        for d in g.fuse:
            # fusermount3 (Debian fuse3) when installed; root can umount a FUSE mount itself
            unmount = ["fusermount3", "-u"] if shutil.which("fusermount3") else ["umount"]
            subprocess.run([*unmount, str(d)], capture_output=True, timeout=30)
        for p in g.fuse_procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        g.fuse.clear()
        g.fuse_procs.clear()
        for relay in g.relays:
            relay.close()
        g.relays.clear()
        for handle in g.staged:
            try:
                self.csi.node_unstage(handle, self.iqn)
            except Exception as e:
                log.warning("NodeUnstage %s: %s", handle, e)
        g.staged.clear()

    # -- one pod ---------------------------------------------------------------------------
    def _event(self, g: Guest, type_: str, reason: str, message: str) -> None:
        now = _now()
        body = client.CoreV1Event.from_dict({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{g.name}.{uuid.uuid4().hex[:16]}", "namespace": g.namespace},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": g.namespace,
                               "name": g.name, "uid": g.uid},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": "kubelet", "host": self.node}, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now})
        try:
            self.core.create_namespaced_event(g.namespace, body)
        except ApiException as e:
            log.warning("event %s on pod %s: HTTP %s", reason, g.name, e.status)

    def _status(self, g: Guest, status: dict) -> None:
        try:
            self.core.patch_namespaced_pod_status(g.name, g.namespace, {"status": status})
        except ApiException as e:
            if e.status != 404:
                log.warning("status of pod %s/%s: HTTP %s", g.namespace, g.name, e.status)

    def _conditions(self, ready: bool, reason: str | None = None) -> list[dict]:
        now = _now()
        r = {"status": "True" if ready else "False", "lastProbeTime": None,
             "lastTransitionTime": now}
        if reason:
            r["reason"] = reason
        return [{"type": "Initialized", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": now},
                {"type": "Ready", **r}, {"type": "ContainersReady", **r}]

    def _devices(self, g: Guest, pod) -> dict[str, str]:
        """NodeStage every PVC of the pod -> {devicePath: nbd URI}. Raises CsiError."""
        claims = {v.name: v.persistent_volume_claim.claim_name
                  for v in pod.spec.volumes or [] if v.persistent_volume_claim}
        c = pod.spec.containers[0]
        for m in c.volume_mounts or []:
            if m.name in claims:
                raise CsiError("Unimplemented", f"volume {m.name}: filesystem PVCs (volumeMounts) "
                                                "are not supported by the lab's node agent yet; "
                                                "use volumeDevices")
        devices = {}
        for d in c.volume_devices or []:
            claim = claims.get(d.name)
            if claim is None:
                continue
            pvc = self.core.read_namespaced_persistent_volume_claim(claim, g.namespace)
            pv = self.core.read_persistent_volume(pvc.spec.volume_name)
            if pv.spec.csi is None or pv.spec.csi.driver != self.driver:
                raise CsiError("InvalidArgument", f"volume {pv.metadata.name} is not a "
                                                  f"{self.driver} volume")
            secret = None
            ref = pv.spec.csi.node_stage_secret_ref
            if ref is not None:
                import base64
                s = self.core.read_namespaced_secret(ref.name, ref.namespace)
                secret = {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}
            handle = pv.spec.csi.volume_handle
            stage = functools.partial(
                self.csi.node_stage, handle, self.iqn, self.node, secret,
                lambda ip, iqn, **chap: nbd_login(ip, iqn, self.iqn, **chap))
            # The pod reaches the LUN through a relay that stages again (login through the
            # first portal that answers) when the target drops it: a Datera restart or a lost
            # path is a pause for the pod, as with the kubelet's multipath iSCSI, not an error.
            # Its socket sits in /tmp: a unix socket's path has at most 107 bytes.
            relay = DiskRelay(f"/tmp/vancouver-lun-{uuid.uuid4().hex[:16]}.sock", stage)
            g.staged.append(handle)
            g.relays.append(relay)
            devices[d.device_path] = relay.uri
        return devices

    def _rewrite(self, g: Guest, text: str, devices: dict[str, str]) -> str:
        out = []
        for line in text.splitlines():
            for path, uri in devices.items():
                if path not in line:
                    continue
                pat = re.compile(r"--filename(?:=|\s+)" + re.escape(path) + r"(?![\w/])")
                if _FIO.search(line) and pat.search(line):
                    line = pat.sub(f"--ioengine=nbd --uri={shlex.quote(uri)}",
                                   _IOENGINE.sub("", line))
                if path in line:
                    line = re.sub(re.escape(path) + r"(?![\w/])",
                                  shlex.quote(self._fuse_file(g, path, uri)), line)
            out.append(line)
        return "\n".join(out)

    def _fuse_file(self, g: Guest, path: str, uri: str) -> str:
        """The LUN as a file: nbdfuse serves it in the foreground until unmounted; its pid
        file appears once the mount is ready."""
        mnt = g.dir / ("fuse-" + path.strip("/").replace("/", "-"))
        if mnt not in g.fuse:
            mnt.mkdir(exist_ok=True)
            pidfile = g.dir / (mnt.name + ".pid")
            proc = subprocess.Popen(["nbdfuse", "-P", str(pidfile), str(mnt), uri],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            while not pidfile.exists():
                if proc.poll() is not None:
                    raise OSError(f"nbdfuse exited {proc.returncode}: "
                                  f"{proc.stderr.read().decode(errors='replace').strip()[:200]}")
                if time.monotonic() > deadline or g.stop.wait(0.05):
                    proc.kill()
                    raise OSError("nbdfuse did not mount within 30 s")
            g.fuse.append(mnt)
            g.fuse_procs.append(proc)
        return str(mnt / "nbd")

    def _run(self, g: Guest, pod) -> None:
        c = pod.spec.containers[0]
        self._status(g, {"phase": "Pending", "hostIP": self.address,
                         "conditions": self._conditions(False, "ContainersNotReady"),
                         "containerStatuses": [{"name": c.name, "ready": False, "restartCount": 0,
                                                "image": c.image or "", "imageID": "",
                                                "state": {"waiting": {"reason": "ContainerCreating"}}}]})
        delay = RETRY_S[0]
        while not g.stop.is_set():
            try:
                devices = self._devices(g, pod)
                break
            except (CsiError, ApiException) as e:
                self._unstage(g)
                self._event(g, "Warning", "FailedMount",
                            f"MountVolume.MountDevice failed for pod {g.name}: {e}"
                            if isinstance(e, CsiError) else f"MountVolume failed: HTTP {e.status}")
                g.stop.wait(delay)
                delay = min(delay * 2, RETRY_S[1])
        else:
            return
        argv = list(c.command or []) + list(c.args or [])
        if not argv:
            argv = ["true"]
        try:
            argv = [self._rewrite(g, a, devices) for a in argv]
        except (subprocess.SubprocessError, OSError) as e:
            self._event(g, "Warning", "FailedMount", f"cannot expose a device: {e}")
            return
        started = _now()
        cid = f"vancouver://{uuid.uuid4().hex}"
        self._event(g, "Normal", "Started", f"Started container {c.name}")
        self._status(g, {"phase": "Running", "hostIP": self.address, "podIP": self.address,
                         "podIPs": [{"ip": self.address}], "startTime": started,
                         "conditions": self._conditions(True),
                         "containerStatuses": [{"name": c.name, "ready": True, "restartCount": 0,
                                                "image": c.image or "", "imageID": "",
                                                "containerID": cid, "started": True,
                                                "state": {"running": {"startedAt": started}}}]})
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(g.dir),
               **{e.name: e.value or "" for e in c.env or []}}
        with open(g.log_path, "ab") as out:
            try:
                g.proc = subprocess.Popen(argv, cwd=g.dir, env=env, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT)
                rc = g.proc.wait()
            except OSError as e:
                out.write(f"{argv[0]}: {e.strerror}\n".encode())
                rc = 127
        if g.stop.is_set():
            return
        self._unstage(g)
        phase, reason = ("Succeeded", "Completed") if rc == 0 else ("Failed", "Error")
        self._status(g, {"phase": phase,
                         "conditions": self._conditions(False, "PodCompleted"),
                         "containerStatuses": [{"name": c.name, "ready": False, "restartCount": 0,
                                                "image": c.image or "", "imageID": "",
                                                "containerID": cid, "started": False,
                                                "state": {"terminated": {
                                                    "exitCode": rc, "reason": reason,
                                                    "startedAt": started, "finishedAt": _now(),
                                                    "containerID": cid}}}]})
