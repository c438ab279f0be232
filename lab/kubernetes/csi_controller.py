"""The Datera CSI controller side as a cluster runs it: csi-provisioner v2.0.2 in front of the
driver's controller service (reference kubernetes.md §9.1, §10; DatVersionGte etc. aside).

- watches PVCs annotated `volume.beta.kubernetes.io/storage-provisioner: dsp.csi.daterainc.io`
  (set by the real PV controller), Pending, unbound, not being deleted;
- CreateVolume (datera_csi.py) named `pvc-<PVC uid>` with the StorageClass parameters minus
  `csi.storage.k8s.io/*` and the provisioner secret's data;
- creates PV `pvc-<uid>` pre-bound by claimRef with the fields csi-provisioner sets; the real
  PV controller then binds the claim;
- events on the PVC: Provisioning, ProvisioningSucceeded, or Warning ProvisioningFailed
  ("failed to provision volume with StorageClass ...: rpc error: code = ... desc = ..."),
  retried with exponential backoff (csi-provisioner's 1 s .. 5 min) while the PVC stays Pending;
- PV Released + reclaim Delete + provisioned-by this driver: DeleteVolume, then DELETE the PV.
"""
import base64
import datetime
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from .datera_csi import CsiError, DateraCsi
from .volumes import check_fs_type
from .watchloop import watch_forever

log = logging.getLogger(__name__)
ANN_PROVISIONER = ("volume.beta.kubernetes.io/storage-provisioner",
                   "volume.kubernetes.io/storage-provisioner")
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
CSI_PREFIX = "csi.storage.k8s.io/"
BACKOFF_S = (1.0, 300.0)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


class CsiController:
    def __init__(self, api: client.ApiClient, csi: DateraCsi, driver: str):
        self.core = client.CoreV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.csi = csi
        self.driver = driver
        # csi-provisioner's event source component and provisioner identity (§9.1)
        self.component = f"{driver}_csi-provisioner-0_{uuid.uuid4()}"
        self.identity = f"{int(time.time() * 1000)}-{random.randint(0, 9999)}-{driver}"
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="csi")
        self._busy: set[str] = set()
        self._backoff: dict[str, tuple[float, float]] = {}   # uid -> (delay, not before)
        self._lock = threading.Lock()
        self.stop = threading.Event()
        # Set once both the PVC and the PV informers have listed (the provisioner watches).
        self.synced = (threading.Event(), threading.Event())

    # -- the driver object -----------------------------------------------------------------
    def register_driver(self) -> None:
        """The CSIDriver object of Datera's manifest (attachRequired false, podInfoOnMount)."""
        body = client.V1CSIDriver.from_dict({
            "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
            "metadata": {"name": self.driver},
            "spec": {"attachRequired": False, "podInfoOnMount": True, "fsGroupPolicy": "File",
                     "volumeLifecycleModes": ["Persistent"]}})
        try:
            self.storage.create_csi_driver(body)
        except ApiException as e:
            if e.status != 409:
                raise

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=watch_forever, name="csi-pvc-watch", daemon=True,
                             args=("pvc", self.core.list_persistent_volume_claim_for_all_namespaces,
                                   self._on_pvc, self.stop, self.synced[0])),
            threading.Thread(target=watch_forever, name="csi-pv-watch", daemon=True,
                             args=("pv", self.core.list_persistent_volume, self._on_pv, self.stop,
                                   self.synced[1])),
        ]
        for t in threads:
            t.start()
        return threads

    def shutdown(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- dispatch --------------------------------------------------------------------------
    def _submit(self, key: str, fn, *args) -> None:
        with self._lock:
            if key in self._busy or self.stop.is_set():
                return
            self._busy.add(key)

        def run():
            try:
                fn(*args)
            except Exception:
                log.exception("%s failed", key)
            finally:
                with self._lock:
                    self._busy.discard(key)
        self.pool.submit(run)

    def _on_pvc(self, kind: str, pvc) -> None:
        if kind == "DELETED":
            self._backoff.pop(pvc.metadata.uid, None)
            return
        ann = pvc.metadata.annotations or {}
        if (not any(ann.get(a) == self.driver for a in ANN_PROVISIONER)
                or pvc.spec.volume_name or pvc.metadata.deletion_timestamp
                or (pvc.status and pvc.status.phase not in (None, "Pending"))):
            return
        delay = self._backoff.get(pvc.metadata.uid)
        if delay and time.monotonic() < delay[1]:
            return
        self._submit(pvc.metadata.uid, self._provision, pvc.metadata.namespace, pvc.metadata.name)

    def _on_pv(self, kind: str, pv) -> None:
        if kind == "DELETED" or pv.status is None or pv.status.phase != "Released":
            return
        ann = pv.metadata.annotations or {}
        if (pv.spec.persistent_volume_reclaim_policy == "Delete"
                and ann.get(ANN_PROVISIONED_BY) == self.driver and pv.spec.csi is not None):
            self._submit("pv:" + pv.metadata.name, self._delete, pv.metadata.name)

    # -- provisioning ----------------------------------------------------------------------
    def _provision(self, namespace: str, name: str) -> None:
        try:
            pvc = self.core.read_namespaced_persistent_volume_claim(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return
            raise
        if pvc.spec.volume_name or pvc.metadata.deletion_timestamp:
            return
        sc_name = pvc.spec.storage_class_name
        try:
            sc = self.storage.read_storage_class(sc_name)
        except ApiException as e:
            if e.status != 404:
                raise
            return self._failed(pvc, sc_name, f'storageclass.storage.k8s.io "{sc_name}" not found')
        if sc.provisioner != self.driver:
            return
        pv_name = f"pvc-{pvc.metadata.uid}"
        try:
            self.core.read_persistent_volume(pv_name)
            return   # provisioned already (a restart between PV create and bind)
        except ApiException as e:
            if e.status != 404:
                raise
        self._event(pvc, "Normal", "Provisioning",
                    f'External provisioner is provisioning volume for claim "{namespace}/{name}"')
        params = dict(sc.parameters or {})
        csi_params = {k[len(CSI_PREFIX):]: v for k, v in params.items() if k.startswith(CSI_PREFIX)}
        driver_params = {k: v for k, v in params.items() if not k.startswith(CSI_PREFIX)}
        try:
            secret = self._secret(csi_params, "provisioner-secret", pvc)
            requests = (pvc.spec.resources.requests or {}) if pvc.spec.resources else {}
            limits = (pvc.spec.resources.limits or {}) if pvc.spec.resources else {}
            required = int(parse_quantity(requests["storage"])) if "storage" in requests else None
            limit = int(parse_quantity(limits["storage"])) if "storage" in limits else 0
            block = pvc.spec.volume_mode == "Block"
            fs_type = csi_params.get("fstype", "")
            if not block:   # CreateVolume's RegisterVolumeCapability of the mount capability
                check_fs_type(fs_type)
            metadata = {"display_name": pv_name[:100], "access_type": "block" if block else "mount",
                        "fs_type": fs_type or "ext4"}
            handle, gib = self.csi.create_volume(pv_name, required, limit, driver_params, secret,
                                                 metadata)
        except CsiError as e:
            return self._failed(pvc, sc_name, str(e))
        self._create_pv(pvc, sc, pv_name, handle, gib, fs_type, csi_params)
        self._backoff.pop(pvc.metadata.uid, None)
        self._event(pvc, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")

    def _secret(self, csi_params: dict, prefix: str, pvc) -> dict[str, str] | None:
        name = csi_params.get(f"{prefix}-name")
        if not name:
            return None
        ns = csi_params.get(f"{prefix}-namespace", "")
        # csi-provisioner's templates for these two keys
        name = name.replace("${pvc.name}", pvc.metadata.name).replace("${pvc.namespace}", pvc.metadata.namespace)
        ns = ns.replace("${pvc.namespace}", pvc.metadata.namespace)
        try:
            s = self.core.read_namespaced_secret(name, ns)
        except ApiException as e:
            if e.status == 404:
                raise CsiError("Internal", f'error getting secret {name} in namespace {ns}: '
                                           f'secrets "{name}" not found') from None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}

    def _create_pv(self, pvc, sc, pv_name: str, handle: str, gib: int, fs_type: str,
                   csi_params: dict) -> None:
        csi = {"driver": self.driver, "volumeHandle": handle,
               "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity": self.identity}}
        if fs_type:
            csi["fsType"] = fs_type
        for key, field in (("node-stage-secret", "nodeStageSecretRef"),
                           ("controller-expand-secret", "controllerExpandSecretRef"),
                           ("node-publish-secret", "nodePublishSecretRef")):
            if csi_params.get(f"{key}-name"):
                csi[field] = {"name": csi_params[f"{key}-name"]
                              .replace("${pvc.name}", pvc.metadata.name)
                              .replace("${pvc.namespace}", pvc.metadata.namespace),
                              "namespace": csi_params.get(f"{key}-namespace", "")
                              .replace("${pvc.namespace}", pvc.metadata.namespace)}
        spec = {"capacity": {"storage": f"{gib}Gi"},
                "accessModes": list(pvc.spec.access_modes or []),
                "persistentVolumeReclaimPolicy": sc.reclaim_policy or "Delete",
                "storageClassName": sc.metadata.name,
                "volumeMode": pvc.spec.volume_mode or "Filesystem",
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "namespace": pvc.metadata.namespace, "name": pvc.metadata.name,
                             "uid": pvc.metadata.uid,
                             "resourceVersion": pvc.metadata.resource_version},
                "csi": csi}
        if sc.mount_options:
            spec["mountOptions"] = list(sc.mount_options)
        body = client.V1PersistentVolume.from_dict({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "annotations": {ANN_PROVISIONED_BY: self.driver}},
            "spec": spec})
        try:
            self.core.create_persistent_volume(body)
        except ApiException as e:
            if e.status != 409:
                raise

    def _failed(self, pvc, sc_name: str, why: str) -> None:
        uid = pvc.metadata.uid
        delay = min(self._backoff.get(uid, (BACKOFF_S[0] / 2, 0))[0] * 2, BACKOFF_S[1])
        self._backoff[uid] = (delay, time.monotonic() + delay)
        self._event(pvc, "Warning", "ProvisioningFailed",
                    f'failed to provision volume with StorageClass "{sc_name}": {why}')
        log.info("provisioning %s/%s failed (retry in %.0fs): %s", pvc.metadata.namespace,
                 pvc.metadata.name, delay, why)
        timer = threading.Timer(delay, self._retry, (pvc.metadata.namespace, pvc.metadata.name, uid))
        timer.daemon = True
        timer.start()

    def _retry(self, namespace: str, name: str, uid: str) -> None:
        if uid in self._backoff and not self.stop.is_set():
            self._submit(uid, self._provision, namespace, name)

    def _retry_delete(self, pv_name: str) -> None:
        if "delete:" + pv_name in self._backoff and not self.stop.is_set():
            self._submit("pv:" + pv_name, self._delete, pv_name)

    # -- deletion --------------------------------------------------------------------------
    def _delete(self, pv_name: str) -> None:
        try:
            pv = self.core.read_persistent_volume(pv_name)
        except ApiException as e:
            if e.status == 404:
                return
            raise
        if pv.status.phase != "Released" or pv.metadata.deletion_timestamp:
            return
        try:
            self.csi.delete_volume(pv.spec.csi.volume_handle)
        except CsiError as e:
            # csi-provisioner requeues a failed delete with backoff: without a retry a PV
            # that met one Datera 503 stayed Released (and its app instance) for good
            key = "delete:" + pv_name
            delay = min(self._backoff.get(key, (BACKOFF_S[0] / 2, 0))[0] * 2, BACKOFF_S[1])
            self._backoff[key] = (delay, time.monotonic() + delay)
            self._event_pv(pv, "Warning", "VolumeFailedDelete", str(e))
            log.info("deleting %s failed (retry in %.0fs): %s", pv_name, delay, e)
            timer = threading.Timer(delay, self._retry_delete, (pv_name,))
            timer.daemon = True
            timer.start()
            return
        self._backoff.pop("delete:" + pv_name, None)
        try:
            self.core.delete_persistent_volume(pv_name, body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(uid=pv.metadata.uid)))
        except ApiException as e:
            if e.status not in (404, 409):
                raise

    # -- events ----------------------------------------------------------------------------
    def _event(self, pvc, type_: str, reason: str, message: str) -> None:
        self._post_event(pvc.metadata.namespace, {
            "kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "namespace": pvc.metadata.namespace, "name": pvc.metadata.name,
            "uid": pvc.metadata.uid, "resourceVersion": pvc.metadata.resource_version},
            pvc.metadata.name, type_, reason, message)

    def _event_pv(self, pv, type_: str, reason: str, message: str) -> None:
        self._post_event("default", {"kind": "PersistentVolume", "apiVersion": "v1",
                                     "name": pv.metadata.name, "uid": pv.metadata.uid},
                         pv.metadata.name, type_, reason, message)

    def _post_event(self, namespace: str, involved: dict, name: str, type_: str, reason: str,
                    message: str) -> None:
        now = _now().isoformat().replace("+00:00", "Z")
        body = client.CoreV1Event.from_dict({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": involved, "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component}, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "reportingComponent": "",
            "reportingInstance": ""})
        try:
            self.core.create_namespaced_event(namespace, body)
        except ApiException as e:
            log.warning("event %s on %s: HTTP %s", reason, name, e.status)
