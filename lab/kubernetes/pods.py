"""The node agent's pods (the kubelet's part, DESIGN §3.5; reference kubernetes.md §8.2, §9.1):
each pod bound to the node runs as a *guest*: its init containers one after another, then all
its containers at once, each container's command under its own log, with the pod's volumes
in place:

- raw-block PVCs (`volumeDevices`): NodeStage (ACL + this node's initiator login, CHAP from
  the PV's node-stage secret). The guest has no kernel of its own, so a `devicePath` is not a
  block device: fio's `--filename=<devicePath>` becomes `--ioengine=nbd --uri=<the LUN>` and
  any other mention becomes a file that libnbd's nbdfuse exposes the LUN as;
- filesystem PVCs (`volumeMounts`): NodeStage formats (real mkfs) and mounts the volume once
  per node, NodePublish bind-mounts it into the pod's directory (volumes.py);
- emptyDir volumes: a directory of the pod's, shared by its containers;
- configMap and secret volumes: their keys as files, refreshed while the pod runs when the
  object changes (podvolumes.py, podrefresh.py); any other type is
  refused as a kubelet without its plugin refuses it (FailedMount, ContainerCreating).
A container runs on the node's own filesystem, so each mention of a mountPath in its command
becomes the pod's path of that volume.

Containers restart as kubelet restarts them (restartPolicy Always, OnFailure; init containers
too, except under Never): at once the first time, then after CrashLoopBackOff's 10 s doubling
to 5 min, with restartCount, lastState and a BackOff event; the previous run's log stays
readable as `kubectl logs --previous` reads it (podstatus.Backoff).

Phases, conditions and container statuses move as a kubelet moves them (podstatus.py); a
failed NodeStage (a Datera 503 too: CsiError Unavailable) leaves the pod
Pending/ContainerCreating with a FailedMount event and retries; any other failure of the pod's
worker is a Failed event and a Failed pod (podfailure.py), never a dead thread; a deleted pod is stopped, its volumes unpublished and unstaged, and it is finally
removed (grace 0, UID precondition).
"""
import base64
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

from . import podfailure, podstatus, podsync, podvolumes
from .datera_csi import CsiError, DateraCsi
from .podstatus import ContainerState, now
from .podrefresh import VolumeRefresher
from .podvolumes import MountError
from .volumes import NodeVolumes, Staged, rewrite_mount_paths

log = logging.getLogger(__name__)
RETRY_S = (1.0, 30.0)
STOP_WAIT_S = 150     # a stopped pod's thread finishing a NodeStage (format timeout + mount)
_FIO = re.compile(r"\bfio\b")
_IOENGINE = re.compile(r"\s--ioengine(?:=|\s+)\S+")
# The volume plugins of the lab's node; a pod with any other volume type stays
# ContainerCreating with kubelet's "no volume plugin matched" (podvolumes.py).
SUPPORTED_VOLUMES = ("persistentVolumeClaim", "emptyDir", "configMap", "secret")


@dataclass
class Guest:
    uid: str
    namespace: str
    name: str
    dir: Path
    inits: list[ContainerState]
    containers: list[ContainerState]
    stop: threading.Event = field(default_factory=threading.Event)
    procs: dict = field(default_factory=dict)          # container name -> Popen
    staged: list[Staged] = field(default_factory=list)
    published: list[Path] = field(default_factory=list)
    fuse: list = field(default_factory=list)           # (mount dir, nbdfuse Popen)
    started: str | None = None
    policy: str = "Always"                              # spec.restartPolicy (API default)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None              # runs the pod (_run)

    def log_path(self, container: str, previous: bool = False) -> Path:
        return self.dir / "logs" / f"{container}{'.previous' if previous else ''}.log"


def nbd_login(ip: str, target_iqn: str, initiator_iqn: str, **chap) -> str:
    luns = initiator.login(ip, ports.ISCSI, initiator_iqn, target_iqn, **chap)
    lun0 = next((l for l in luns if l.lun == 0), None)
    if lun0 is None:
        raise initiator.LoginError("login succeeded but LUN 0 is not presented")
    return lun0.uri


def _argv(c) -> list[str]:
    return list(c.command or []) + list(c.args or []) or ["true"]


class PodRunner:
    def __init__(self, core: client.CoreV1Api, csi: DateraCsi, node_name: str, address: str,
                 driver: str, node_dir: Path, iqn: str):
        self.core, self.csi, self.node, self.address = core, csi, node_name, address
        self.driver, self.dir, self.iqn = driver, node_dir, iqn
        self.volumes = NodeVolumes(csi, iqn, node_name, node_dir,
                                   lambda ip, iqn_, **chap: nbd_login(ip, iqn_, iqn, **chap))
        self.guests: dict[str, Guest] = {}
        self._lock = threading.Lock()
        self.refresh = VolumeRefresher(core)

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.volumes.sweep()

    def shutdown(self) -> None:
        """Stops every guest and unstages its volumes (the node process is stopping)."""
        self.refresh.shutdown()
        for uid in list(self.guests):
            self._stop(uid)

    def log_file(self, namespace: str, name: str, container: str,
                 previous: bool = False) -> Path | None:
        with self._lock:
            for g in self.guests.values():
                if (g.namespace, g.name) == (namespace, name) and \
                        any(c.name == container for c in g.inits + g.containers):
                    return g.log_path(container, previous)
        return self._ended_log_file(namespace, name, container, previous)

    def _ended_log_file(self, namespace: str, name: str, container: str,
                        previous: bool) -> Path | None:
        """The log of a pod of this node that ended before this agent started (a kill -9 of
        the previous one fell between the pod's end and a read of its log): still on disk
        under the pod's uid, served as a restarted kubelet serves a terminated container's
        log from /var/log/pods (the runtime keeps it until the pod is removed)."""
        try:
            pod = self.core.read_namespaced_pod(name, namespace, _request_timeout=5)
        except Exception as e:  # noqa: BLE001  (gone, or no answer: the kubelet's 404)
            log.info("log of pod %s/%s: %s", namespace, name,
                     f"HTTP {e.status}" if isinstance(e, ApiException) else type(e).__name__)
            return None
        if pod.spec.node_name != self.node or container not in \
                {c.name for c in (pod.spec.init_containers or []) + pod.spec.containers}:
            return None
        return Guest(pod.metadata.uid, namespace, name, self.dir / "pods" / pod.metadata.uid,
                     [], []).log_path(container, previous)

    # -- events from the pod watch -----------------------------------------------------------
    def on_pod(self, kind: str, pod) -> None:
        uid = pod.metadata.uid
        if kind == "DELETED":   # not on the watch thread: stopping waits for the pod's thread
            threading.Thread(target=self._stop, args=(uid,), daemon=True).start()
            return
        if pod.metadata.deletion_timestamp is not None:
            threading.Thread(target=self._finish_delete, args=(pod,), daemon=True).start()
            return
        if pod.status and pod.status.phase not in (None, "Pending"):
            if pod.status.phase == "Running":
                self._adopt(pod)
            return
        with self._lock:
            if uid in self.guests:
                return
            has_inits = bool(pod.spec.init_containers)
            g = Guest(uid, pod.metadata.namespace, pod.metadata.name, self.dir / "pods" / uid,
                      inits=[ContainerState(c.name, c.image or "", True, reason="PodInitializing")
                             for c in pod.spec.init_containers or []],
                      containers=[ContainerState(c.name, c.image or "", False,
                                                 reason="PodInitializing" if has_inits
                                                 else "ContainerCreating")
                                  for c in pod.spec.containers],
                      policy=pod.spec.restart_policy or "Always")
            self.guests[uid] = g
        (g.dir / "logs").mkdir(parents=True, exist_ok=True)
        for c in g.inits + g.containers:
            g.log_path(c.name).touch()
        g.thread = threading.Thread(target=self._run, args=(g, pod),
                                    name=f"pod-{pod.metadata.name}", daemon=True)
        g.thread.start()

    def _adopt(self, pod) -> None:
        """A Running pod this agent does not run: the previous agent was killed and its
        containers with it. Reported lost, then restarted or failed per restartPolicy as a
        restarted kubelet's sync does (podsync.py)."""
        uid = pod.metadata.uid
        inits, containers, started = podsync.states(pod)
        with self._lock:
            if uid in self.guests:
                return
            g = Guest(uid, pod.metadata.namespace, pod.metadata.name, self.dir / "pods" / uid,
                      inits=inits, containers=containers, started=started,
                      policy=pod.spec.restart_policy or "Always")
            self.guests[uid] = g
        (g.dir / "logs").mkdir(parents=True, exist_ok=True)
        restarting = podsync.restart_lost(g.inits + g.containers, g.policy)
        for st in g.inits + g.containers:
            current = g.log_path(st.name)
            if st in restarting and current.exists():   # the lost run is `logs --previous`
                current.replace(g.log_path(st.name, previous=True))
            current.touch()
        lost = [st.name for st in g.containers if podsync.lost(st) or st in restarting]
        log.info("pod %s/%s: container(s) %s lost with the previous node agent; %s",
                 g.namespace, g.name, ", ".join(lost) or "none",
                 "restarting" if restarting else f"restartPolicy {g.policy}: not restarted")
        if not any(podsync.to_run(st, g.policy) for st in g.inits + g.containers):
            self._publish_status(g)   # e.g. Never: terminated 137, the pod Failed
            return
        g.thread = threading.Thread(target=self._run, args=(g, pod),
                                    name=f"pod-{pod.metadata.name}", daemon=True)
        g.thread.start()

    def _finish_delete(self, pod) -> None:
        try:
            self._stop(pod.metadata.uid)
        except Exception:  # noqa: BLE001  a failed unstage must not keep the pod forever
            log.warning("stopping pod %s/%s", pod.metadata.namespace, pod.metadata.name,
                        exc_info=True)
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
        for p in list(g.procs.values()):
            if p.poll() is None:
                p.terminate()
        for p in list(g.procs.values()):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        # the pod's thread may be staging a volume (mkfs): let it finish, so nothing it
        # stages afterwards is left behind
        if g.thread is not None and g.thread is not threading.current_thread():
            g.thread.join(STOP_WAIT_S)
        self._detach(g)
        shutil.rmtree(g.dir, ignore_errors=True)

    def _detach(self, g: Guest) -> None:
        """NodeUnpublish every volume of the pod, then NodeUnstage those no other pod uses."""
        self.refresh.forget(g.uid)
        for mnt, proc in g.fuse:
            NodeVolumes._stop_fuse(mnt, proc)
        g.fuse.clear()
        for target in g.published:
            self.volumes.unpublish(target)
        g.published.clear()
        for s in g.staged:
            self.volumes.release(g.uid, s.handle)
        g.staged.clear()

    # -- API writes --------------------------------------------------------------------------
    def _event(self, g: Guest, type_: str, reason: str, message: str) -> None:
        at = now()
        body = client.CoreV1Event.from_dict({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{g.name}.{uuid.uuid4().hex[:16]}", "namespace": g.namespace},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": g.namespace,
                               "name": g.name, "uid": g.uid},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": "kubelet", "host": self.node}, "count": 1,
            "firstTimestamp": at, "lastTimestamp": at})
        try:
            self.core.create_namespaced_event(g.namespace, body)
        except ApiException as e:
            log.warning("event %s on pod %s: HTTP %s", reason, g.name, e.status)

    def _publish_status(self, g: Guest) -> None:
        with g.lock:
            status = podstatus.pod_status(g.inits, g.containers, self.address, g.started,
                                          g.policy)
            try:
                self.core.patch_namespaced_pod_status(g.name, g.namespace, {"status": status})
            except ApiException as e:
                if e.status != 404:
                    log.warning("status of pod %s/%s: HTTP %s", g.namespace, g.name, e.status)

    # -- volumes -----------------------------------------------------------------------------
    def _attach(self, g: Guest, pod) -> dict[str, dict]:
        """Stages and publishes the pod's volumes -> {volume name: {"block": Staged} or
        {"dir": path}}. Raises CsiError, MountError or ApiException (the caller retries)."""
        out: dict[str, dict] = {}
        block = {d.name for c in pod.spec.containers + (pod.spec.init_containers or [])
                 for d in c.volume_devices or []}
        for v in pod.spec.volumes or []:   # before anything is staged
            podvolumes.check_supported(v, SUPPORTED_VOLUMES)
        for v in pod.spec.volumes or []:
            if v.config_map is not None or v.secret is not None:
                d = g.dir / "volumes" / v.name
                self.refresh.set_up(g.uid, g.namespace, v, d)
                out[v.name] = {"dir": str(d), "projected": True}
            elif v.empty_dir is not None:
                d = g.dir / "volumes" / "kubernetes.io~empty-dir" / v.name
                d.mkdir(parents=True, exist_ok=True)
                out[v.name] = {"dir": str(d)}
            elif v.persistent_volume_claim is not None:
                claim = v.persistent_volume_claim.claim_name
                pvc = self.core.read_namespaced_persistent_volume_claim(claim, g.namespace)
                pv = self.core.read_persistent_volume(pvc.spec.volume_name)
                if pv.spec.csi is None or pv.spec.csi.driver != self.driver:
                    raise CsiError("InvalidArgument", f"volume {pv.metadata.name} is not a "
                                                      f"{self.driver} volume")
                is_block = v.name in block
                try:
                    s = self.volumes.stage(g.uid, pv.spec.csi.volume_handle, pv.metadata.name,
                                           None if is_block else (pv.spec.csi.fs_type or ""),
                                           self._secret(pv.spec.csi.node_stage_secret_ref),
                                           g.stop)
                    g.staged.append(s)
                    if is_block:
                        out[v.name] = {"block": s}
                        continue
                    target = NodeVolumes.target_path(g.dir, pv.metadata.name)
                    self.volumes.publish(s, target, bool(v.persistent_volume_claim.read_only))
                    g.published.append(target)
                    out[v.name] = {"dir": str(target)}
                except CsiError as e:
                    e.volume = pv.metadata.name
                    raise
        return out

    def _secret(self, ref) -> dict | None:
        if ref is None:
            return None
        s = self.core.read_namespaced_secret(ref.name, ref.namespace)
        return {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}

    def _rewrite(self, g: Guest, c, text: str, vols: dict[str, dict]) -> str:
        """One argument of container `c`'s command with its volumes' paths made real."""
        mounts = {}
        for i, m in enumerate(c.volume_mounts or []):
            if m.name not in vols or "dir" not in vols[m.name]:
                continue
            path = Path(vols[m.name]["dir"]) / (m.sub_path or "")
            if m.sub_path and vols[m.name].get("projected"):
                path = podvolumes.subpath_copy(g.dir, c.name, m.name, i, path)
            elif not path.exists():
                path.mkdir(parents=True)
            mounts[m.mount_path] = str(path)
        text = rewrite_mount_paths(text, mounts)
        devices = {d.device_path: vols[d.name]["block"] for d in c.volume_devices or []
                   if d.name in vols and "block" in vols[d.name]}
        out = []
        for line in text.splitlines():
            for path, s in devices.items():
                if path not in line:
                    continue
                pat = re.compile(r"--filename(?:=|\s+)" + re.escape(path) + r"(?![\w/])")
                if _FIO.search(line) and pat.search(line):
                    line = pat.sub(f"--ioengine=nbd --uri={shlex.quote(s.uri)}",
                                   _IOENGINE.sub("", line))
                if path in line:
                    f = self.volumes.block_file(s, g.dir, path, g.stop, g.fuse)
                    line = re.sub(re.escape(path) + r"(?![\w/])", shlex.quote(f), line)
            out.append(line)
        return "\n".join(out)

    # -- one pod ---------------------------------------------------------------------------
    def _run(self, g: Guest, pod) -> None:
        """The pod's worker: whatever goes wrong ends in an event and a retry or a Failed pod
        (podfailure.py), never in a dead thread that leaves the pod as it was."""
        try:
            self._run_pod(g, pod)
        except Exception as e:  # noqa: BLE001
            log.error("pod %s/%s: worker failed", g.namespace, g.name, exc_info=True)
            if not g.stop.is_set():
                self._event(g, "Warning", "Failed", podfailure.give_up(g.inits + g.containers, e))
                g.policy = "Never"   # given up: no restart keeps it Running
                for step in (self._detach, self._publish_status):
                    try:
                        step(g)
                    except Exception:  # noqa: BLE001
                        log.warning("pod %s/%s: %s after a failure", g.namespace, g.name,
                                    step.__name__, exc_info=True)

    def _run_pod(self, g: Guest, pod) -> None:
        self._publish_status(g)
        delay = RETRY_S[0]
        while not g.stop.is_set():
            try:
                vols = self._attach(g, pod)
                if g.stop.is_set():
                    return   # _stop detaches once this thread is done
                break
            except Exception as e:  # noqa: BLE001  any failure: an event and a retry (podfailure)
                if not isinstance(e, (CsiError, MountError, ApiException)):
                    log.warning("pod %s/%s: volume setup failed", g.namespace, g.name,
                                exc_info=True)
                self._detach(g)
                self._event(g, "Warning", "FailedMount", podfailure.mount_failed(e))
                g.stop.wait(delay)
                delay = min(delay * 2, RETRY_S[1])
        else:
            return
        g.started = g.started or now()
        specs = {c.name: c for c in (pod.spec.init_containers or []) + pod.spec.containers}
        # Init containers one after another (a failed one is restarted, or under Never fails
        # the pod), then every container at once.
        for st in g.inits:
            if st.succeeded:   # an adopted pod's init containers ran before (podsync.py)
                continue
            if not self._restarting(g, st, specs[st.name], vols) or g.stop.is_set():
                break
        else:
            failed: list[Exception] = []   # a container thread's failure fails the pod (_run)

            def container(st: ContainerState) -> None:
                try:
                    self._restarting(g, st, specs[st.name], vols)
                except Exception as e:  # noqa: BLE001
                    failed.append(e)
            threads = [threading.Thread(target=container, args=(st,),
                                        name=f"pod-{g.name}-{st.name}", daemon=True)
                       for st in g.containers if podsync.to_run(st, g.policy)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if failed:
                raise failed[0]
        if g.stop.is_set():
            return
        self._detach(g)   # kubelet unmounts the volumes of a terminated pod
        self._publish_status(g)

    def _restarting(self, g: Guest, st: ContainerState, c, vols: dict) -> bool:
        """Runs a container and restarts it while the pod's restartPolicy says so (kubelet's
        SyncPod + doBackOff) -> its last run exited 0. An init container's restart policy is
        the pod's (OnFailure for Always: a succeeded init container is done)."""
        backoff = podstatus.Backoff()
        policy = "OnFailure" if st.init and g.policy == "Always" else g.policy
        while True:
            ok = self._container(g, st, c, vols)
            if g.stop.is_set() or not podstatus.should_restart(policy, st.exit_code):
                return ok
            finished = time.monotonic()
            wait = backoff.delay(finished, finished)
            st.last = st.terminated()
            if wait > 0:
                st.state, st.reason = "waiting", "CrashLoopBackOff"
                st.message = (f"back-off {backoff.backoff:.0f}s restarting failed "
                              f"container={st.name} pod={g.name}_{g.namespace}({g.uid})")
                self._event(g, "Warning", "BackOff", "Back-off restarting failed container")
                self._publish_status(g)
                if g.stop.wait(wait):
                    return False
            backoff.next(finished, time.monotonic())
            st.restart_count += 1
            st.message = None
            # the run that ended becomes --previous only now: through the backoff,
            # `kubectl logs` still shows it, as kubelet shows the last container's log
            current = g.log_path(st.name)
            if current.exists():
                current.replace(g.log_path(st.name, previous=True))
            current.touch()

    def _container(self, g: Guest, st: ContainerState, c, vols: dict) -> bool:
        """Runs one container to its end -> it exited 0."""
        try:
            argv = [self._rewrite(g, c, a, vols) for a in _argv(c)]
        except (CsiError, OSError) as e:
            self._event(g, "Warning", "FailedMount", f"cannot expose a device: {e}")
            st.state, st.reason, st.exit_code = "terminated", "ContainerCannotRun", 128
            st.started_at = st.finished_at = now()
            self._publish_status(g)
            return False
        st.container_id = f"vancouver://{uuid.uuid4().hex}"
        self._event(g, "Normal", "Pulled",
                    f'Container image "{st.image}" already present on machine')
        self._event(g, "Normal", "Created", f"Created container {st.name}")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(g.dir),
               "HOSTNAME": g.name, **{e.name: e.value or "" for e in c.env or []}}
        cwd = g.dir / "containers" / st.name
        cwd.mkdir(parents=True, exist_ok=True)
        with open(g.log_path(st.name), "ab") as out:
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT)
            except OSError as e:
                out.write(f"{argv[0]}: {e.strerror}\n".encode())
                st.state, st.reason, st.exit_code = "terminated", "ContainerCannotRun", 127
                st.started_at = st.finished_at = now()
                self._publish_status(g)
                return False
            g.procs[st.name] = proc
            st.state, st.started_at = "running", now()
            self._event(g, "Normal", "Started", f"Started container {st.name}")
            self._publish_status(g)
            rc = proc.wait()
        if g.stop.is_set():
            return False
        st.state, st.exit_code, st.finished_at = "terminated", rc, now()
        st.reason = "Completed" if rc == 0 else "Error"
        self._publish_status(g)
        return rc == 0
