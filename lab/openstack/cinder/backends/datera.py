"""The `datera` backend: Cinder's Datera iSCSI driver, driving the Datera lab (or a real
cluster) through the unmodified dfs_sdk exactly as the real driver did (reference datera-api
§3.1-3.11):

- one Datera tenant per cloud (`datera_tenant_id` set to Vancouver-OM/-ON/-OP), created on
  every create_volume with a POST that ignores 409; with `datera_tenant_id` unset the driver
  works in `/root` (POSTs `{"name": "root"}`, expects 409), which for a directory user confined
  to its tenant is that tenant (the LDAP cloud: `datera_ldap_server` + a tenant user);
- one app instance per volume, named `OS-<volume id>`, with `storage-1` / `volume-1`,
  created deny_all;
- policies: vendor defaults, overlaid by the type's `DF:*` extra specs (prefix stripped), then
  by the associated QoS spec's keys, which win; `*_max` keys above 0 become the volume's
  performance_policy. Per-GB keys are computed correctly: per_gb * size, capped by the
  matching `*_max` only when that cap is set (the real driver's fallback cap of 1 is a bug);
- CHAP when the volume type asks for it (`DF:use_chap_auth`, named after the out-of-tree
  driver's option): credentials per volume in provider_auth, set on the storage instance by
  create_export and returned in connection_info;
- create_export / initialize_connection / detach_volume / delete_volume in the driver's order;
- retype: the fast in-place path (new performance policy live) only where the release's driver
  has it (Pike's 2.4.0); elsewhere False, so Cinder migrates.
"""
import contextlib
import os
import random
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from clients import initiator as lab_initiator
from clients import ports
from clients.datera_acl import acl_with, acl_without, tenant_initiator
from clients.dfs_compat import dexc, dfs_sdk, error_summary
from lab.openstack.cinder.backends import (BackendError, ModelUpdate, SnapshotRef, VolumeRef,
                                           as_bool)

DRIVER_HEADER = {"Datera-Driver": "OpenStack-Cinder-Lab"}
POLICY_FIELDS = ("total_iops_max", "read_iops_max", "write_iops_max",
                 "total_bandwidth_max", "read_bandwidth_max", "write_bandwidth_max")
# Vendor defaults (reference openstack-api §f.2, datera-api §3.1); keys without the DF: prefix.
DEFAULTS = {"replica_count": 3, "placement_mode": "hybrid", "placement_policy": "default",
            "ip_pool": "default", "round_robin": False, "template": "", "use_chap_auth": False,
            "iops_per_gb": 0, "bandwidth_per_gb": 0, **{f: 0 for f in POLICY_FIELDS}}
SI_POLL_S = 10.0
ISCSI_PORT = ports.ISCSI


def _cast(value):
    if isinstance(value, (bool, int)):
        return value
    text = str(value).strip()
    if text.lower().removeprefix("<is>").strip() in ("true", "false"):
        return as_bool(text)
    try:
        return int(text)
    except ValueError:
        return text


def policies(extra_specs: dict, qos_specs: dict) -> dict:
    """The driver's merged view of one volume type (`_get_policies_for_resource`)."""
    out = dict(DEFAULTS)
    for key, value in extra_specs.items():
        if key.startswith("DF:"):
            out[key[3:]] = _cast(value)
    for key, value in qos_specs.items():
        out[key.split(":")[-1]] = _cast(value)
    return out


def performance_policy(pol: dict, size_gib: int) -> dict:
    """The non-zero performance_policy fields, per-GB values expanded by the volume size."""
    out = {f: int(pol.get(f) or 0) for f in POLICY_FIELDS}
    for per_gb, field in (("iops_per_gb", "total_iops_max"),
                          ("bandwidth_per_gb", "total_bandwidth_max")):
        rate = int(pol.get(per_gb) or 0)
        if rate > 0:
            scaled = rate * size_gib
            out[field] = min(scaled, out[field]) if out[field] > 0 else scaled
    return {k: v for k, v in out.items() if v > 0}


@dataclass(frozen=True)
class DateraConfig:
    """cinder.conf's [datera] section as the lab writes it."""
    san_ip: str
    san_login: str
    san_password: str
    tenant: str                         # datera_tenant_id: Vancouver-OM, -ON, -OP; "": unset
    fast_retype: bool                   # the release's driver has in-place retype (Pike)
    host_iqn: str                       # the Cinder host's initiator, for its own copies
    host_ip: str
    api_version: str = "2.2"
    secure: bool = True
    ca_file: str | None = None          # verify= for https; None: do not verify
    ldap_server: str | None = None      # datera_ldap_server
    login_port: int = ISCSI_PORT        # the lab's initiator login stands in for iSCSI
    backend_name: str = "datera"
    pool: str = "datera"
    driver_version: str = "2.4.0"       # the release's driver: 2.0 Mitaka, 2.2 Newton, 2.4.0 Pike
    capacity_gib: int = 10240           # what the stats report (the lab's cluster is sparse)


class DateraDriver:
    def __init__(self, config: DateraConfig):
        self.config = config
        self.backend_name = config.backend_name
        self.pool = config.pool
        self.tenant_path = f"/root/{config.tenant}" if config.tenant else "/root"
        self._local = threading.local()
        self._schema_dir = Path(tempfile.gettempdir()) / f"vancouver-cinder-dsdk-{os.getuid()}"

    def volume_stats(self) -> dict:
        """The driver's get_volume_stats (datera_api21._update_cluster_stats), static: the
        lab reports its nominal capacity instead of asking /system on every schedule."""
        c = self.config
        return {"volume_backend_name": c.backend_name, "vendor_name": "Datera",
                "driver_version": c.driver_version, "storage_protocol": "iSCSI",
                "total_capacity_gb": c.capacity_gib, "free_capacity_gb": c.capacity_gib,
                "reserved_percentage": 0, "QoS_support": True}

    # -- session (one per worker thread: dfs_sdk keeps per-thread state) ------------------------
    def _api(self):
        api = getattr(self._local, "api", None)
        if api is None:
            c = self.config
            self._schema_dir.mkdir(mode=0o700, exist_ok=True)
            try:
                api = dfs_sdk.get_api(
                    c.san_ip, c.san_login, c.san_password, f"v{c.api_version}",
                    secure=c.secure, verify=c.ca_file or False,
                    # 503: dfs_sdk's default backoff, which the real driver keeps (its
                    # get_api passes no retry arguments); no connection retries for minutes.
                    disable_log=True, retry_connection_type=None, retry_503_type="backoff",
                    schema_loc=str(self._schema_dir / f"schema-{os.getpid()}.json"),
                    thread_local=threading.local(), extra_headers=dict(DRIVER_HEADER),
                    ldap_server=c.ldap_server)
            except dexc.ApiAuthError:
                raise BackendError(f"Datera {c.san_ip}: login as {c.san_login} refused") from None
            except dexc.ApiConnectionError:
                raise BackendError(f"Datera {c.san_ip}: REST API unreachable") from None
            except (dexc.ApiError, dexc.SdkError, requests.RequestException) as e:
                # e.g. a 500/502/504 on login: e's text holds the login body (san_password)
                raise BackendError(f"Datera {c.san_ip}: login failed "
                                   f"({error_summary(e)})") from None
            self._local.api = api
        return api

    def _call(self, what: str, fn, *args, **kwargs):
        """Runs one SDK step; Datera's errors become a one-line BackendError."""
        try:
            return fn(*args, **kwargs)
        except dexc.ApiNotFoundError:
            raise
        except (dexc.ApiError, requests.RequestException) as e:
            why = getattr(e, "message", None) or error_summary(e)
            raise BackendError(f"Datera {what} failed: {why}".splitlines()[0][:300]) from None

    @staticmethod
    def ai_name(volume_id: str) -> str:
        return f"OS-{volume_id}"

    def _create_tenant(self) -> None:
        try:
            self._api().tenants.create(name=self.config.tenant or "root")
        except dexc.ApiConflictError:
            pass

    def _ai_required(self, volume_id: str):
        """_ai for the paths where a missing app instance is a failure (export, attach,
        snapshot, extend, copies): a BackendError naming it."""
        try:
            return self._ai(volume_id)
        except dexc.ApiNotFoundError:
            raise BackendError(f"Datera app_instance {self.ai_name(volume_id)} not found in "
                               f"{self.tenant_path}") from None

    def _ai(self, volume_id: str):
        """cvol_to_ai: the first app instance whose name matches the volume id."""
        api, t = self._api(), self.tenant_path
        ais = self._call("app_instance lookup", api.app_instances.list, tenant=t,
                         filter=f"match(name,.*{volume_id}.*)")
        ais = [ai for ai in ais if ai["name"] == self.ai_name(volume_id)] or ais
        if not ais:
            raise dexc.ApiNotFoundError(f"no app_instance for volume {volume_id}")
        return ais[0]

    def _si_vol(self, ai):
        t = self.tenant_path
        si = ai.storage_instances.list(tenant=t)[0]
        return si, si.volumes.list(tenant=t)[0]

    # -- create / delete --------------------------------------------------------------------------
    def create_volume(self, ref: VolumeRef) -> ModelUpdate:
        pol = policies(ref.extra_specs, ref.qos_specs)
        self._create_tenant()
        vol = {"name": "volume-1", "size": ref.size_gib, "replica_count": int(pol["replica_count"]),
               "snapshot_policies": [],
               "placement_policy": {"path": f"/placement_policies/{pol['placement_policy']}"}}
        si = {"name": "storage-1",
              "ip_pool": {"path": f"/access_network_ip_pools/{self._pick_pool(pol)}"},
              "volumes": [vol]}
        ai = self._call("app_instance create", self._api().app_instances.create,
                        tenant=self.tenant_path, create_mode="openstack", uuid=ref.id,
                        name=self.ai_name(ref.id), access_control_mode="deny_all",
                        storage_instances=[si])
        self._update_qos(ai, ref, pol)
        self._add_vol_meta(ai, ref)
        return self._chap_update(ref, pol)

    def create_cloned_volume(self, ref: VolumeRef, src: VolumeRef) -> ModelUpdate:
        _, src_vol = self._si_vol(self._ai_required(src.id))
        return self._clone(ref, {"clone_volume_src": {"path": src_vol["path"]}}, src.size_gib)

    def create_volume_from_snapshot(self, ref: VolumeRef, snap: SnapshotRef) -> ModelUpdate:
        _, src_vol = self._si_vol(self._ai_required(snap.volume_id))
        t = self.tenant_path
        dsnap = self._call("snapshot lookup", src_vol.snapshots.get, snap.provider_location,
                           tenant=t)
        return self._clone(ref, {"clone_snapshot_src": {"path": dsnap["path"]}}, snap.size_gib)

    def _clone(self, ref: VolumeRef, source: dict, src_size: int) -> ModelUpdate:
        pol = policies(ref.extra_specs, ref.qos_specs)
        self._create_tenant()
        ai = self._call("app_instance clone", self._api().app_instances.create,
                        tenant=self.tenant_path, create_mode="openstack", uuid=ref.id,
                        name=self.ai_name(ref.id), **source)
        if ref.size_gib > src_size:
            self._extend(ai, ref.size_gib)
        # The real driver forgets the new type's QoS on clones; the lab applies it.
        self._update_qos(ai, ref, pol)
        self._add_vol_meta(ai, ref)
        return self._chap_update(ref, pol)

    def _extend(self, ai, size_gib: int) -> None:
        t = self.tenant_path
        online = ai["admin_state"] == "online"
        if online:
            ai.set(tenant=t, admin_state="offline")
        _, vol = self._si_vol(ai)
        self._call("volume extend", vol.set, tenant=t, size=size_gib)
        if online:
            ai.set(tenant=t, admin_state="online")

    def extend_volume(self, ref: VolumeRef, new_size_gib: int) -> None:
        self._extend(self._ai_required(ref.id), new_size_gib)

    def delete_volume(self, ref: VolumeRef) -> None:
        t = self.tenant_path
        try:
            ai = self._ai(ref.id)
            si, _ = self._si_vol(ai)
            si.acl_policy.set(tenant=t, initiators=[])
            ai.set(tenant=t, admin_state="offline", force=True)
            self._call("app_instance delete", ai.delete, tenant=t, force=True)
        except dexc.ApiNotFoundError:
            pass

    # -- QoS, CHAP, metadata ----------------------------------------------------------------------
    def _update_qos(self, ai, ref: VolumeRef, pol: dict, clear_old: bool = False) -> dict:
        body = performance_policy(pol, ref.size_gib)
        if not body and not clear_old:
            return body
        t = self.tenant_path
        _, vol = self._si_vol(ai)
        pp = vol.performance_policy
        try:
            pp.get(tenant=t).delete(tenant=t)
        except dexc.ApiNotFoundError:
            pass
        if body:
            self._call("performance_policy create", pp.create, tenant=t, **body)
        return body

    def current_policy(self, ref: VolumeRef) -> dict:
        """The volume's performance_policy as the cluster holds it (for tests and the demo)."""
        _, vol = self._si_vol(self._ai(ref.id))
        try:
            pp = vol.performance_policy.get(tenant=self.tenant_path)
        except dexc.ApiNotFoundError:
            return {}
        return {f: int(pp.get(f) or 0) for f in POLICY_FIELDS if int(pp.get(f) or 0) > 0}

    def _chap_update(self, ref: VolumeRef, pol: dict) -> ModelUpdate:
        if not as_bool(pol.get("use_chap_auth", False)):
            return ModelUpdate(provider_auth=None)
        if ref.provider_auth:
            return ModelUpdate(provider_auth=ref.provider_auth)
        user = f"chap_{secrets.token_hex(4)}"
        secret = secrets.token_urlsafe(12)[:16]     # Datera wants 12-16 characters
        return ModelUpdate(provider_auth=f"CHAP {user} {secret}")

    def _add_vol_meta(self, ai, ref: VolumeRef, **extra) -> None:
        meta = {"display_name": ref.display_name, "project_id": ref.project_id, **extra}
        self._call("metadata update", ai.metadata.set, tenant=self.tenant_path, **meta)

    def _pick_pool(self, pol: dict) -> str:
        pools = [p.strip() for p in str(pol["ip_pool"]).split(",") if p.strip()]
        return random.choice(pools) if pools else "default"

    # -- attach -----------------------------------------------------------------------------------
    def create_export(self, ref: VolumeRef, connector: dict) -> None:
        api, t = self._api(), self.tenant_path
        pol = policies(ref.extra_specs, ref.qos_specs)
        ai = self._ai_required(ref.id)
        ai.set(tenant=t, admin_state="offline", force=True)
        si, _ = self._si_vol(ai)
        if connector.get("ip") and not (ai.get("app_template") or {}).get("path"):
            pool = self._pool_for(connector["ip"], pol)
            self._call("storage_instance update", si.set, tenant=t, ip_pool={"path": pool})
        ai.set(tenant=t, admin_state="online")
        si, _ = self._si_vol(ai)
        if connector.get("initiator"):
            init = tenant_initiator(api, t, connector["initiator"],
                                    name=f"OpenStack-{secrets.token_hex(4)}")
            self._call("acl update", si.acl_policy.set, tenant=t,
                       **acl_with(si.acl_policy.get(tenant=t), init["path"]))
        if ref.provider_auth:
            _, user, secret = ref.provider_auth.split(" ", 2)
            self._call("auth update", si.auth.set, tenant=t, type="chap",
                       target_user_name=user, target_pswd=secret)
        self._si_poll(si)
        self._add_vol_meta(ai, ref, **{f"connector_{k}": str(v) for k, v in connector.items()
                                       if k in ("host", "ip", "initiator")})

    def _pool_for(self, ip: str, pol: dict) -> str:
        import ipaddress
        api = self._api()
        if pol["ip_pool"] != "default":
            return api.access_network_ip_pools.get(self._pick_pool(pol))["path"]
        addr = ipaddress.ip_address(ip)
        for pool in api.access_network_ip_pools.list():
            for np_ in pool.get("network_paths", []):
                try:
                    net = ipaddress.ip_network(f"{np_['start_ip']}/{np_['netmask']}", strict=False)
                except (KeyError, ValueError):
                    continue
                if addr in net:
                    return pool["path"]
        return api.access_network_ip_pools.get("default")["path"]

    def _si_poll(self, si) -> None:
        deadline = time.monotonic() + SI_POLL_S
        while True:
            si = si.reload(tenant=self.tenant_path)
            if si["op_state"] == "available":
                return
            if time.monotonic() > deadline:
                raise BackendError("Datera storage instance not ready: Resource not ready")
            time.sleep(0.05)

    def initialize_connection(self, ref: VolumeRef, connector: dict) -> dict:
        t = self.tenant_path
        pol = policies(ref.extra_specs, ref.qos_specs)
        ai = self._ai_required(ref.id)
        ai.set(tenant=t, admin_state="online")
        si, _ = self._si_vol(ai)
        ips, iqn = list(si["access"]["ips"]), si["access"]["iqn"]
        portal = ips[random.randint(0, 1)] if as_bool(pol["round_robin"]) else ips[0]
        data = {"target_discovered": False, "target_iqn": iqn,
                "target_portal": f"{portal}:{ISCSI_PORT}", "target_lun": 0,
                "volume_id": ref.id, "discard": False}
        # Both VIPs always: Nova's multipath and the lab's guests fail over between them.
        data.update(target_iqns=[iqn] * len(ips),
                    target_portals=[f"{ip}:{ISCSI_PORT}" for ip in ips],
                    target_luns=[0] * len(ips))
        if ref.provider_auth:
            method, user, secret = ref.provider_auth.split(" ", 2)
            data.update(auth_method=method, auth_username=user, auth_password=secret)
        return {"driver_volume_type": "iscsi", "data": data}

    def detach_volume(self, ref: VolumeRef, connector: dict | None) -> None:
        t = self.tenant_path
        try:
            ai = self._ai(ref.id)
            si, _ = self._si_vol(ai)
            body = acl_without(si.acl_policy.get(tenant=t), (connector or {}).get("initiator"))
            si.acl_policy.set(tenant=t, **body)
            if not body["initiators"]:
                ai.set(tenant=t, admin_state="offline", force=True)
        except dexc.ApiNotFoundError:
            pass

    # -- snapshots --------------------------------------------------------------------------------
    def create_snapshot(self, snap: SnapshotRef, ref: VolumeRef) -> ModelUpdate:
        t = self.tenant_path
        _, vol = self._si_vol(self._ai_required(ref.id))
        dsnap = self._call("snapshot create", vol.snapshots.create, tenant=t, uuid=snap.id)
        deadline = time.monotonic() + 20
        while dsnap.get("op_state") != "available":
            if time.monotonic() > deadline:
                raise BackendError(f"Datera snapshot {snap.id} not available")
            time.sleep(0.05)
            dsnap = dsnap.reload(tenant=t)
        return ModelUpdate(provider_location=dsnap["timestamp"])

    def delete_snapshot(self, snap: SnapshotRef, ref: VolumeRef) -> None:
        t = self.tenant_path
        if not snap.provider_location:
            return        # never made on Datera (its creation failed): nothing to delete
        try:
            _, vol = self._si_vol(self._ai(ref.id))
            vol.snapshots.get(snap.provider_location, tenant=t).delete(tenant=t)
        except dexc.ApiNotFoundError:
            pass

    def revert_to_snapshot(self, ref: VolumeRef, snap: SnapshotRef) -> None:
        """The Datera driver's revert_to_snapshot: the app instance offline, the volume's
        `restore_point` set to the snapshot's timestamp (its provider_location), back online
        (the DSP restores only offline volumes)."""
        t = self.tenant_path
        if not snap.provider_location:
            raise BackendError(f"Datera snapshot {snap.id} has no timestamp to restore")
        ai = self._ai_required(ref.id)
        _, vol = self._si_vol(ai)
        self._call("snapshot lookup", vol.snapshots.get, snap.provider_location, tenant=t)
        online = ai["admin_state"] == "online"
        if online:
            self._call("app_instance offline", ai.set, tenant=t, admin_state="offline")
        try:
            self._call("volume restore", vol.set, tenant=t,
                       restore_point=snap.provider_location)
        finally:
            if online:
                self._call("app_instance online", ai.set, tenant=t, admin_state="online")

    # -- retype and migration ---------------------------------------------------------------------
    def retype(self, ref: VolumeRef, new_specs: dict, new_qos: dict, diff: dict) -> bool:
        """Pike's fast retype: the new policy applied live, replicas and placement updated.
        Mitaka's 2.0 and Newton's 2.2 drivers have no retype: False makes Cinder migrate."""
        if not self.config.fast_retype:
            return False
        t = self.tenant_path
        old, new = policies(ref.extra_specs, ref.qos_specs), policies(new_specs, new_qos)
        ai = self._ai_required(ref.id)
        self._update_qos(ai, ref, new, clear_old=True)
        si, vol = self._si_vol(ai)
        if (new["replica_count"] != old["replica_count"] or new["ip_pool"] != old["ip_pool"]):
            online = ai["admin_state"] == "online"
            if online:
                ai.set(tenant=t, admin_state="offline")
            if new["ip_pool"] != old["ip_pool"]:
                pool = f"/access_network_ip_pools/{self._pick_pool(new)}"
                self._call("storage_instance update", si.set, tenant=t, ip_pool={"path": pool})
            self._call("volume update", vol.set, tenant=t,
                       replica_count=max(int(new["replica_count"]), vol["replica_count"]),
                       placement_policy={"path": f"/placement_policies/{new['placement_policy']}"})
            if online:
                ai.set(tenant=t, admin_state="online")
        elif new["placement_policy"] != old["placement_policy"]:
            self._call("volume update", vol.set, tenant=t, placement_policy={
                "path": f"/placement_policies/{new['placement_policy']}"})
        return True

    def update_migrated_volume(self, original: VolumeRef, new: VolumeRef) -> ModelUpdate:
        """Renames the new app instance after the original volume (reference §3.11)."""
        ai = self._ai(new.id)
        self._call("app_instance rename", ai.set, tenant=self.tenant_path,
                   name=self.ai_name(original.id))
        return ModelUpdate(extra={"name_id": None})

    @contextlib.contextmanager
    def local_access(self, ref: VolumeRef):
        """The Cinder host attaches the volume as any initiator would: export to its IQN, log in
        through the first portal (with CHAP when the volume has it), then NBD."""
        connector = {"initiator": self.config.host_iqn, "ip": self.config.host_ip,
                     "host": "cinder-volume", "multipath": False}
        self.create_export(ref, connector)
        try:
            info = self.initialize_connection(ref, connector)["data"]
            chap = {}
            if info.get("auth_method") == "CHAP":
                chap = {"chap_user": info["auth_username"], "chap_secret": info["auth_password"]}
            portal = info["target_portal"].rsplit(":", 1)[0]
            try:
                luns = lab_initiator.login(portal, self.config.login_port, self.config.host_iqn,
                                           info["target_iqn"], **chap)
            except lab_initiator.LoginError as e:
                raise BackendError(f"login to {info['target_iqn']} refused: {e.reason}") from None
            yield luns[0].uri
        finally:
            self.detach_volume(ref, connector)
