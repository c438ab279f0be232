"""The Datera CSI driver's controller service (CreateVolume, DeleteVolume) against the Datera
lab through the unmodified dfs_sdk, as datera-csi v1.0.13 does it (reference kubernetes.md
§10; driver source pkg/driver/controller.go and pkg/client/volume.go).

- one tenant per driver deployment (DAT_TENANT), sent as the `tenant` header on every call;
- app instance `CSI-<CSI volume name>` (name cut to 58 runes), create_mode `kubernetes`,
  storage instance `storage-1`, volume `volume-1`;
- size = floor(limit bytes / GiB), 16 GiB when that is 0 or no capacity was asked for;
- StorageClass parameters parsed like parseVolParams: integers and booleans that do not parse
  fail with gRPC InvalidArgument and Go's strconv message;
- the six QoS limits go into the volume's performance_policy; iops_per_gb/bandwidth_per_gb
  cap total_iops_max/total_bandwidth_max at per-GB x size as SetPerformancePolicy does (the lab
  treats a 0 limit as "no limit" there, where the driver's code would keep 0);
- CHAP from the provisioner secret: `chap`, or `mchap` when username_in is present;
- Datera API errors: an HTTP 503 is retried inside dfs_sdk with its backoff (1, 2, 3 ... s,
  bounded by clients/dfs_compat.py's retry window), as the driver's SDK session retries; what
  is still transient after that (5xx, no connection, a timeout, a garbled answer) is gRPC
  Unavailable, which the lab's kubelet (pods.py) and external-provisioner (csi_controller.py)
  retry with their backoff. No dfs_sdk exception leaves this module: their text carries the
  request body (the login password, a CHAP secret), so messages keep only method, path,
  status and the server's own message.
"""
import functools
import threading

import requests

from clients.dfs_compat import (dexc, dfs_sdk, error_summary, is_transient, safe_options,
                                schema_file)

from .config import DateraAccess

GIB = 1 << 30
DEFAULT_SIZE_GIB = 16
NAME_PREFIX = "CSI-"
LIMITS = ("read_iops_max", "write_iops_max", "total_iops_max",
          "read_bandwidth_max", "write_bandwidth_max", "total_bandwidth_max")
PER_GB = ("iops_per_gb", "bandwidth_per_gb")
QOS_PARAMS = LIMITS + PER_GB
# parseVolParams defaults (placement_policy's default is "hybrid" in the code, "default" in
# the README; the driver never sends it on OS < 3.3 paths, nor does the lab).
DEFAULTS = {"iops_per_gb": "0", "bandwidth_per_gb": "0", "placement_mode": "hybrid",
            "placement_policy": "hybrid", "round_robin": "false", "replica_count": "3",
            "ip_pool": "default", "template": "", "disable_template_override": "false",
            **{k: "0" for k in LIMITS}, "delete_on_unmount": "false"}
INTS = ("iops_per_gb", "bandwidth_per_gb", "replica_count", *LIMITS)
BOOLS = ("round_robin", "disable_template_override", "delete_on_unmount")
DRIVER_HEADER = {"Datera-Driver": "CSI-Lab"}


class CsiError(Exception):
    """A gRPC status the driver returns: `code` is the gRPC code name (InvalidArgument, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"rpc error: code = {code} desc = {message}")
        self.code = code
        self.message = message


def csi_error(e: BaseException) -> CsiError:
    """A dfs_sdk/requests error -> CsiError, secret-free (dfs_compat.error_summary):
    Unavailable when transient (HTTP 5xx, no connection, timeout, an unreadable answer),
    Unauthenticated for a refused login, else Unknown."""
    if isinstance(e, CsiError):
        return e
    detail = error_summary(e)
    if is_transient(e):
        return CsiError("Unavailable", detail)
    if isinstance(e, dexc.ApiAuthError):
        return CsiError("Unauthenticated", detail)
    return CsiError("Unknown", detail)


def _rpc(method):
    """A CSI call: every Datera error it lets out becomes a secret-free CsiError."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except CsiError:
            raise
        except (dexc.ApiError, dexc.SdkError, requests.RequestException) as e:
            raise csi_error(e) from None
    return call


def _go_parse_int(value: str) -> int:
    text = value[1:] if value[:1] in "+-" else value
    if not text.isascii() or not text.isdigit():
        raise CsiError("InvalidArgument", f'strconv.ParseInt: parsing "{value}": invalid syntax')
    return int(value)


def _go_parse_bool(value: str) -> bool:
    # strconv.ParseBool's accepted spellings
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise CsiError("InvalidArgument", f'strconv.ParseBool: parsing "{value}": invalid syntax')


def parse_params(params: dict[str, str] | None) -> dict:
    """StorageClass parameters (csi.storage.k8s.io/* already removed) -> typed options.
    Unknown keys are ignored, as the driver ignores them. Raises CsiError(InvalidArgument)."""
    p = {**DEFAULTS, **(params or {})}
    out: dict = {k: p[k] for k in ("placement_mode", "placement_policy", "ip_pool", "template")}
    if p.get("fs_args"):   # mkfs arguments, used at NodeStage (volumes.DEFAULT_FS_ARGS if unset)
        out["fs_args"] = p["fs_args"]
    for k in INTS:
        out[k] = _go_parse_int(p[k])
    for k in BOOLS:
        out[k] = _go_parse_bool(p[k])
    return out


def size_gib(required_bytes: int | None, limit_bytes: int = 0) -> int:
    """CreateVolume's size rule (controller.go): limit defaults to required; floor to GiB;
    0 GiB (under 1 GiB, or no capacity range) becomes DefaultSize = 16."""
    if required_bytes is None:
        return DEFAULT_SIZE_GIB
    limit = limit_bytes or required_bytes
    if required_bytes > limit:
        raise CsiError("Unknown", f"RequiredBytes must be less than or equal to LimitBytes: "
                                  f"[{required_bytes}, {limit}]")
    return limit // GIB or DEFAULT_SIZE_GIB


def performance_policy(opts: dict, size: int) -> dict:
    """The volume's performance_policy body: the six limits, totals capped by per-GB x size."""
    pol = {k: opts[k] for k in LIMITS}
    for per_gb, total in (("iops_per_gb", "total_iops_max"),
                          ("bandwidth_per_gb", "total_bandwidth_max")):
        if opts[per_gb] > 0:
            cap = opts[per_gb] * size
            pol[total] = min(pol[total], cap) if pol[total] > 0 else cap
    return {k: v for k, v in pol.items() if v > 0}


def ai_name(csi_name: str) -> str:
    return NAME_PREFIX + csi_name[:58]


def chap_auth(secret: dict[str, str] | None) -> dict | None:
    """The storage instance `auth` for a kubernetes.io/iscsi-chap secret's data, or None."""
    if not secret or "node.session.auth.username" not in secret:
        return None
    auth = {"type": "chap", "target_user_name": secret["node.session.auth.username"],
            "target_pswd": secret.get("node.session.auth.password", "")}
    if "node.session.auth.username_in" in secret:
        auth.update(type="mchap", initiator_user_name=secret["node.session.auth.username_in"],
                    initiator_pswd=secret.get("node.session.auth.password_in", ""))
    return auth


class DateraCsi:
    """CreateVolume/DeleteVolume of one driver deployment (one tenant). Thread-safe: one
    dfs_sdk session per thread (dfs_sdk keeps per-thread state)."""

    def __init__(self, access: DateraAccess):
        self.access = access
        self.tenant = access.tenant
        self._local = threading.local()

    def _api(self):
        api = getattr(self._local, "api", None)
        if api is None:
            a = self.access
            try:
                api = dfs_sdk.get_api(a.mgmt_ip, a.username, a.password, "v2.2", secure=False,
                                      extra_headers=dict(DRIVER_HEADER),
                                      **safe_options(schema_file("csi", threading.get_ident()),
                                                     retry_503_type="backoff"))
            except dexc.ApiAuthError:
                raise CsiError("Unknown", f"Datera {a.mgmt_ip}: login as {a.username} refused") from None
            except dexc.ApiConnectionError:
                raise CsiError("Unavailable", f"Datera {a.mgmt_ip}: REST API unreachable") from None
            except (dexc.ApiError, dexc.SdkError, requests.RequestException) as e:
                # e.g. a 503 after the SDK's retries: the pod retries NodeStage; e's text
                # has the password, csi_error keeps none of it
                e = csi_error(e)
                raise CsiError(e.code, f"Datera {a.mgmt_ip}: login failed ({e.message})") from None
            self._local.api = api
        return api

    @_rpc
    def ensure_tenant(self) -> None:
        """Creates the driver's tenant (a child of /root) when it does not exist yet."""
        name = self.tenant.rstrip("/").rsplit("/", 1)[-1]
        try:
            self._api().tenants.create(name=name)
        except dexc.ApiConflictError:
            pass

    def _find(self, name: str):
        try:
            return self._api().app_instances.get(name, tenant=self.tenant)
        except dexc.ApiNotFoundError:
            return None

    @_rpc
    def create_volume(self, csi_name: str, required_bytes: int | None, limit_bytes: int,
                      params: dict[str, str], secret: dict[str, str] | None,
                      metadata: dict[str, str]) -> tuple[str, int]:
        """-> (volume id = app instance name, capacity GiB). Raises CsiError."""
        if not csi_name:
            raise CsiError("InvalidArgument", "Name must be provided (currently empty string)")
        name = ai_name(csi_name)
        existing = self._find(name)
        size = size_gib(required_bytes, limit_bytes)
        if existing is not None:
            vol = existing["storage_instances"][0]["volumes"][0]
            if required_bytes is not None and vol["size"] * GIB != (limit_bytes or required_bytes):
                raise CsiError("AlreadyExists", "Requested volume exists, but has a different size")
            return name, int(vol["size"])
        opts = parse_params(params)
        vol = {"name": "volume-1", "size": size, "replica_count": opts["replica_count"],
               "placement_mode": opts["placement_mode"], "snapshot_policies": []}
        pol = performance_policy(opts, size)
        if pol:
            vol["performance_policy"] = pol
        si = {"name": "storage-1", "volumes": [vol],
              "ip_pool": {"path": f"/access_network_ip_pools/{opts['ip_pool']}"}}
        auth = chap_auth(secret)
        if auth:
            si["auth"] = auth
        try:
            ai = self._api().app_instances.create(tenant=self.tenant, name=name,
                                                  create_mode="kubernetes",
                                                  storage_instances=[si])
        except dexc.ApiError as e:
            raise csi_error(e) from None
        md = {**metadata, **{k: str(v).lower() if isinstance(v, bool) else str(v)
                             for k, v in opts.items()}, "size": str(size)}
        try:
            ai.metadata.set(tenant=self.tenant, **md)
        except (dexc.ApiError, requests.RequestException):
            pass   # "Set metadata, fail gracefully" (controller.go)
        return name, size

    @_rpc
    def delete_volume(self, volume_id: str) -> None:
        """Offline (force), then delete; an app instance already gone is success."""
        if not volume_id:
            raise CsiError("InvalidArgument", "VolumeId cannot be empty")
        ai = self._find(volume_id)
        if ai is None:
            return
        try:
            ai.set(tenant=self.tenant, admin_state="offline", force=True)
            ai.delete(tenant=self.tenant, force=True)
        except dexc.ApiNotFoundError:
            pass
        except dexc.ApiError as e:
            raise csi_error(e) from None

    @_rpc
    def get_metadata(self, volume_id: str) -> dict[str, str]:
        """The app instance's metadata (the driver keeps formatted/fs_type/... there)."""
        ai = self._find(volume_id)
        if ai is None:
            raise CsiError("NotFound", f"app_instance {volume_id} not found")
        try:
            return dict(ai.metadata.get(tenant=self.tenant) or {})
        except dexc.ApiError as e:
            raise csi_error(e) from None

    @_rpc
    def set_metadata(self, volume_id: str, **md: str) -> None:
        ai = self._find(volume_id)
        if ai is None:
            raise CsiError("NotFound", f"app_instance {volume_id} not found")
        try:
            ai.metadata.set(tenant=self.tenant, **md)
        except dexc.ApiError as e:
            raise csi_error(e) from None

    # -- node service: NodeStage / NodeUnstage (reference §10.5) -----------------------------
    @_rpc
    def node_stage(self, volume_id: str, initiator_iqn: str, node_name: str,
                   secret: dict[str, str] | None, login) -> str:
        """GetVolume -> this host's Initiator (get or create) -> RegisterAcl -> Online ->
        login (CHAP from the node-stage secret). `login(ip, iqn, chap_user, chap_secret)`
        returns the LUN's nbd URI or raises. -> the URI. Raises CsiError."""
        api, t = self._api(), self.tenant
        ai = self._find(volume_id)
        if ai is None:
            raise CsiError("NotFound", f"app_instance {volume_id} not found")
        try:
            api.initiators.create(id=initiator_iqn, name=node_name, force=True, tenant=t)
        except dexc.ApiConflictError:
            pass
        try:
            si = ai.storage_instances.list(tenant=t)[0]
            acl = [{"path": i["path"]} for i in si["acl_policy"]["initiators"]
                   if not i.get("tenant")]
            if not any(i["path"].endswith("/" + initiator_iqn) for i in acl):
                si.acl_policy.set(tenant=t, initiators=acl + [{"path": f"/initiators/{initiator_iqn}"}])
            if ai["admin_state"] != "online":
                ai.set(tenant=t, admin_state="online")
            si = si.reload(tenant=t)
        except dexc.ApiError as e:
            raise csi_error(e) from None
        chap = {}
        if secret and "node.session.auth.username" in secret:
            chap = {"chap_user": secret["node.session.auth.username"],
                    "chap_secret": secret.get("node.session.auth.password", "")}
        reasons = []
        for ip in si["access"]["ips"]:
            try:
                return login(ip, si["access"]["iqn"], **chap)
            except Exception as e:   # clients.initiator.LoginError: one secret-free line
                reasons.append(f"{ip}: {getattr(e, 'reason', e)}")
                if not str(getattr(e, "reason", "")).startswith("cannot reach"):
                    break
        raise CsiError("Internal", f"iSCSI login to {si['access']['iqn']} failed: "
                                   + "; ".join(reasons))

    @_rpc
    def node_unstage(self, volume_id: str, initiator_iqn: str) -> None:
        """UnregisterAcl: drops this host from the storage instance's ACL."""
        ai = self._find(volume_id)
        if ai is None:
            return
        try:
            si = ai.storage_instances.list(tenant=self.tenant)[0]
            acl = [{"path": i["path"]} for i in si["acl_policy"]["initiators"]
                   if not i.get("tenant") and not i["path"].endswith("/" + initiator_iqn)]
            si.acl_policy.set(tenant=self.tenant, initiators=acl)
        except dexc.ApiNotFoundError:
            pass   # the volume went meanwhile: nothing left to unregister
