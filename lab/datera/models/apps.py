"""Operations on app instances and their storage instances (a mixin of DateraModel).

Rules from reference datera-api §2.3-2.4 and §2.19: access_control_mode goes allow_all ->
deny_all only, one clone source at most (its storage instances come from the source), deleting
an online app instance or storage instance needs force. A storage instance's ACL policy and
CHAP auth are the access family's (access_ops.py); volumes, their performance policies and
snapshots are volume_ops.py's.
"""
from . import validate as v
from .errors import Conflict, InvalidRequest, NotFound
from .events import USER
from .storage import (ACCESS_MODES, ADMIN_STATES, CREATE_MODES, AppInstance, Snapshot,
                      StorageInstance, Volume)
from .tenancy import ALL, Caller
from .volume_ops import no_snapshot_policies

# Fields the lab implements; any other field is refused (400), never silently ignored.
AI_CREATE = ("name", "descr", "create_mode", "uuid", "access_control_mode", "app_template",
             "clone_src", "clone_volume_src", "clone_snapshot_src", "storage_instances",
             "snapshot_policies", "admin_state", "force")
AI_UPDATE = ("name", "descr", "admin_state", "force", "access_control_mode")
SI_CREATE = ("name", "admin_state", "volumes", "access_control_mode", "acl_policy", "ip_pool",
             "auth", "force")
SI_UPDATE = ("admin_state", "auth", "acl_policy", "force", "access_control_mode", "ip_pool")


class AppInstanceOps:
    """App instances and storage instances: lookups by id or path, create (plain or clone),
    update, delete, metadata. A mixin of DateraModel (backend.py), which holds the state."""

    # -- lookups ------------------------------------------------------------------------
    def _ais_in(self, c: Caller):
        if c.tenant == ALL:
            return [ai for t, ais in self._ais.items() if c.sees(t) for ai in ais.values()]
        return list(self._ais.get(c.tenant, {}).values())

    def _ai(self, c: Caller, ident: str) -> AppInstance:
        ais = self._ais_in(c)
        found = next((ai for ai in ais if ai.id == ident), None) or \
            next((ai for ai in ais if ai.name == ident), None)
        if not found:
            raise NotFound()
        return found

    def _si(self, c, ai_id, si_name) -> StorageInstance:
        si = self._ai(c, ai_id).storage_instances.get(si_name)
        if not si:
            raise NotFound()
        return si

    def _vol(self, c, ai_id, si_name, vol_name) -> Volume:
        vol = self._si(c, ai_id, si_name).volumes.get(vol_name)
        if not vol:
            raise NotFound()
        return vol

    def _by_path(self, c: Caller, path: str):
        """The object an API path names, if the caller may see it: an app instance, storage
        instance, volume or snapshot (clone sources, metrics)."""
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2 or parts[0] != "app_instances":
            raise NotFound(path)
        try:
            obj = self._ai(c, parts[1])
            if len(parts) >= 4 and parts[2] == "storage_instances":
                obj = obj.storage_instances[parts[3]]
                if len(parts) >= 6 and parts[4] == "volumes":
                    obj = obj.volumes[parts[5]]
                    if len(parts) == 8 and parts[6] == "snapshots":
                        return obj.snapshots[parts[7]]
                    if len(parts) != 6:
                        raise KeyError(path)
                elif len(parts) != 4:
                    raise KeyError(path)
            elif len(parts) != 2:
                raise KeyError(path)
        except (KeyError, NotFound):
            raise NotFound(path)
        return obj

    def ai_dict(self, ai: AppInstance) -> dict:
        return ai.to_dict(self.vips)

    # -- building from a create body ------------------------------------------------------
    def _build_si(self, c: Caller, tenant: str, body: dict, ai: AppInstance, where: str) -> StorageInstance:
        v.only(body, SI_CREATE, where)
        si = StorageInstance(name=v.name(body.get("name"), f"{where}.name"), parent=ai,
                             access_control_mode=ai.access_control_mode)
        if "admin_state" in body:
            si.admin_state = v.choice(body["admin_state"], f"{where}.admin_state", ADMIN_STATES)
        if "access_control_mode" in body:
            si.access_control_mode = v.choice(body["access_control_mode"],
                                              f"{where}.access_control_mode", ACCESS_MODES)
        if "ip_pool" in body:
            si.ip_pool = self._resolve_pool(tenant, v.ref_path(body["ip_pool"], f"{where}.ip_pool",
                                                               "/access_network_ip_pools/"))
        if "auth" in body:
            si.auth.update(body["auth"], f"{where}.auth")
        if "acl_policy" in body:
            self._apply_acl(tenant, si, body["acl_policy"], f"{where}.acl_policy")
        vols = body.get("volumes", [])
        if not isinstance(vols, list):
            raise InvalidRequest(f"{where}.volumes: expected a list")
        for i, vb in enumerate(vols):
            vol = self._build_volume(vb, si, f"{where}.volumes[{i}]")
            if vol.name in si.volumes:
                raise Conflict(f"{where}: duplicate volume name {vol.name}")
            si.volumes[vol.name] = vol
        return si

    # -- app instances ------------------------------------------------------------------
    def list_app_instances(self, c: Caller) -> list[dict]:
        return [self.ai_dict(ai) for ai in self._ais_in(c)]

    def get_app_instance(self, c: Caller, ident: str) -> dict:
        return self.ai_dict(self._ai(c, ident))

    def create_app_instance(self, c: Caller, body: dict) -> dict:
        v.only(body, AI_CREATE, "app_instance")
        no_snapshot_policies(body, "app_instance")
        tenant = self.write_tenant(c)
        ai = AppInstance(name=v.name(body.get("name"), "name", allow_uuid=True), tenant=tenant)
        if any(x.name == ai.name for x in self._ais.get(tenant, {}).values()):
            raise Conflict(f"app_instance {ai.name} already exists in {tenant}")
        ai.descr = v.text(body.get("descr"), "descr")
        ai.create_mode = v.choice(body.get("create_mode", "normal"), "create_mode", CREATE_MODES)
        if body.get("uuid"):
            if not isinstance(body["uuid"], str) or not v.UUID_RE.match(body["uuid"]):
                raise InvalidRequest("uuid: expected a UUID")
            ai.uuid = body["uuid"]
        ai.access_control_mode = v.choice(body.get("access_control_mode", "deny_all"),
                                          "access_control_mode", ACCESS_MODES)
        ai.admin_state = v.choice(body.get("admin_state", "online"), "admin_state", ADMIN_STATES)
        if body.get("app_template") and v.ref_path(body["app_template"], "app_template"):
            raise NotFound(body["app_template"]["path"])   # the lab has no templates
        sources = [k for k in ("clone_src", "clone_volume_src", "clone_snapshot_src") if body.get(k)]
        if len(sources) > 1:
            raise InvalidRequest("give only one of clone_src, clone_volume_src, clone_snapshot_src")
        copies = []   # (source uuid or snapshot, new volume)
        if sources:
            if body.get("storage_instances"):
                raise InvalidRequest(f"{sources[0]}: storage_instances come from the source")
            copies = self._build_clone(c, ai, sources[0], v.ref_path(body[sources[0]], sources[0]))
        else:
            sis = body.get("storage_instances", [])
            if not isinstance(sis, list):
                raise InvalidRequest("storage_instances: expected a list")
            for i, sb in enumerate(sis):
                si = self._build_si(c, tenant, sb, ai, f"storage_instances[{i}]")
                if si.name in ai.storage_instances:
                    raise Conflict(f"duplicate storage_instance name {si.name}")
                ai.storage_instances[si.name] = si
        self._register_ai(ai, copies)
        self.events.record(USER, "app_instance_created", f"app_instance {ai.name} created",
                           tenant=tenant, object_path=ai.path)
        return self.ai_dict(ai)

    def _build_clone(self, c: Caller, ai: AppInstance, kind: str, path: str):
        src = self._by_path(c, path)
        wanted = {"clone_src": AppInstance, "clone_volume_src": Volume,
                  "clone_snapshot_src": Snapshot}[kind]
        if not isinstance(src, wanted):
            raise InvalidRequest(f"{kind}: {path} is not a {wanted.__name__} path")
        copies = []
        if isinstance(src, AppInstance):
            pairs = [(si, list(si.volumes.values())) for si in src.storage_instances.values()]
        else:
            vol = src if isinstance(src, Volume) else self._snapshot_volume(src)
            pairs = [(vol.parent, [vol])]
        for i, (src_si, vols) in enumerate(pairs):
            si = StorageInstance(name=src_si.name if kind == "clone_src" else "storage-1", parent=ai,
                                 access_control_mode=ai.access_control_mode, ip_pool=src_si.ip_pool)
            for src_vol in vols:
                vol = Volume(name=src_vol.name if kind == "clone_src" else "volume-1",
                             size=src_vol.size, parent=si, replica_count=src_vol.replica_count,
                             placement_mode=src_vol.placement_mode,
                             placement_policy=src_vol.placement_policy)
                si.volumes[vol.name] = vol
                copies.append((src if isinstance(src, Snapshot) else src_vol, vol))
            ai.storage_instances[si.name] = si
        return copies

    def _register_ai(self, ai: AppInstance, copies=()) -> None:
        sources = {vol.uuid: src for src, vol in copies}
        self._ais.setdefault(ai.tenant, {})[ai.id] = ai
        for si in ai.storage_instances.values():
            self._targets[si.iqn] = si
            for vol in si.volumes.values():
                self._add_volume(vol, sources.get(vol.uuid))

    def update_app_instance(self, c: Caller, ident: str, body: dict) -> dict:
        ai = self._ai(c, ident)
        v.only(body, AI_UPDATE, "app_instance")
        name = ai.name
        if "name" in body:
            name = v.name(body["name"], "name", allow_uuid=True)
            if name != ai.name and any(x.name == name for x in self._ais[ai.tenant].values()):
                raise Conflict(f"app_instance {name} already exists in {ai.tenant}")
        state = v.choice(body.get("admin_state", ai.admin_state), "admin_state", ADMIN_STATES)
        if "descr" in body:
            ai.descr = v.text(body["descr"], "descr")
        if "access_control_mode" in body:
            mode = v.choice(body["access_control_mode"], "access_control_mode", ACCESS_MODES)
            if ai.access_control_mode == "deny_all" and mode == "allow_all":
                raise InvalidRequest("access_control_mode: can only change from allow_all to deny_all")
            ai.access_control_mode = mode
        ai.name = name
        if state != ai.admin_state:
            self._set_ai_state(ai, state)
        return self.ai_dict(ai)

    def _set_ai_state(self, ai: AppInstance, state: str) -> None:
        ai.admin_state = state
        for si in ai.storage_instances.values():
            for vol in si.volumes.values():
                self._hook("volume_online", vol.uuid, si.online)
        self.events.record(USER, f"app_instance_{state}", f"app_instance {ai.name} {state}",
                           tenant=ai.tenant, object_path=ai.path)

    def delete_app_instance(self, c: Caller, ident: str, body: dict) -> dict:
        ai = self._ai(c, ident)
        v.only(body, ("force",), "delete")
        force = v.boolean(body.get("force", False), "force")
        if ai.admin_state == "online" and not force:
            raise InvalidRequest(f"app_instance {ai.name} is online: set it offline or pass force")
        out = self.ai_dict(ai)
        for si in ai.storage_instances.values():
            self._drop_si(si)
        del self._ais[ai.tenant][ai.id]
        self.events.record(USER, "app_instance_deleted", f"app_instance {ai.name} deleted",
                           tenant=ai.tenant, object_path=ai.path)
        return out

    def _drop_si(self, si: StorageInstance) -> None:
        for vol in si.volumes.values():
            self._drop_volume(vol)
        self._targets.pop(si.iqn, None)

    # -- metadata (flat /metadata, or {"data": {...}} on /int_ecosystem_data) --------------
    def get_metadata(self, c: Caller, ident: str) -> dict:
        return dict(self._ai(c, ident).metadata)

    def set_metadata(self, c: Caller, ident: str, body: dict, *, wrapped: bool) -> dict:
        ai = self._ai(c, ident)
        if wrapped:
            v.only(body, ("data",), "int_ecosystem_data")
            body = body.get("data", {})
        if not isinstance(body, dict) or any(
                not isinstance(x, (str, int, bool, float)) and x is not None for x in body.values()):
            raise InvalidRequest("metadata: expected a flat object of strings, numbers or booleans")
        ai.metadata.update(body)
        if len(str(ai.metadata)) > 16384:
            raise InvalidRequest("metadata: too large (16 KiB at most)")
        return dict(ai.metadata)

    # -- storage instances ----------------------------------------------------------------
    def list_storage_instances(self, c, ai_id) -> list[dict]:
        return [si.to_dict(self.vips) for si in self._ai(c, ai_id).storage_instances.values()]

    def get_storage_instance(self, c, ai_id, si_name) -> dict:
        return self._si(c, ai_id, si_name).to_dict(self.vips)

    def create_storage_instance(self, c, ai_id, body) -> dict:
        ai = self._ai(c, ai_id)
        si = self._build_si(c, ai.tenant, body, ai, "storage_instance")
        if si.name in ai.storage_instances:
            raise Conflict(f"storage_instance {si.name} already exists")
        ai.storage_instances[si.name] = si
        self._targets[si.iqn] = si
        for vol in si.volumes.values():
            self._add_volume(vol)
        return si.to_dict(self.vips)

    def update_storage_instance(self, c, ai_id, si_name, body) -> dict:
        si = self._si(c, ai_id, si_name)
        v.only(body, SI_UPDATE, "storage_instance")
        tenant = si.parent.tenant
        state = v.choice(body.get("admin_state", si.admin_state), "admin_state", ADMIN_STATES)
        mode = si.access_control_mode
        if "access_control_mode" in body:
            mode = v.choice(body["access_control_mode"], "access_control_mode", ACCESS_MODES)
            if si.access_control_mode == "deny_all" and mode == "allow_all":
                raise InvalidRequest("access_control_mode: can only change from allow_all to deny_all")
        pool = si.ip_pool
        if "ip_pool" in body:
            pool = self._resolve_pool(tenant, v.ref_path(body["ip_pool"], "ip_pool",
                                                         "/access_network_ip_pools/"))
        if "auth" in body:
            si.auth.update(body["auth"])
        if "acl_policy" in body:
            self._apply_acl(tenant, si, body["acl_policy"], "acl_policy")
        si.access_control_mode, si.ip_pool = mode, pool
        if state != si.admin_state:
            si.admin_state = state
            for vol in si.volumes.values():
                self._hook("volume_online", vol.uuid, si.online)
        return si.to_dict(self.vips)

    def delete_storage_instance(self, c, ai_id, si_name, body) -> dict:
        si = self._si(c, ai_id, si_name)
        v.only(body, ("force",), "delete")
        if si.online and not body.get("force"):
            raise InvalidRequest(f"storage_instance {si.name} is online: set it offline or pass force")
        out = si.to_dict(self.vips)
        self._drop_si(si)
        del si.parent.storage_instances[si.name]
        return out

