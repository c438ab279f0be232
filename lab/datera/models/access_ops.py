"""Who may reach a storage instance (a mixin of DateraModel): initiators and initiator groups
(resolved up the tenant tree), access network IP pools, each storage instance's ACL policy and
CHAP auth, and contract.LoginAuthority: the data plane's question whether an initiator may log
in (ACL, then CHAP) or reach a volume. The records are in access.py."""
from .. import contract
from ..contract import LoginRefused, VolumeHandle
from . import validate as v
from .access import Initiator, InitiatorGroup, IpPool, network_path
from .errors import Conflict, InvalidRequest, NotFound
from .events import SYSTEM, USER
from .storage import StorageInstance
from .tenancy import ALL, ROOT, Caller, ancestry

# A login without CHAP to a CHAP target: the login service answers it with a challenge. Until
# the contract names this subclass, any refusal of a CHAP-less login is treated that way.
ChapRequired = contract.ChapRequired


class AccessOps:
    # -- initiators and groups (resolved up the tenant tree) -----------------------------------
    def _resolve_initiator(self, tenant: str, iqn: str) -> Initiator:
        for t in ancestry(tenant):
            ini = self._initiators.get(t, {}).get(iqn)
            if ini:
                return ini
        raise NotFound(f"/initiators/{iqn}")

    def _resolve_group(self, tenant: str, name: str) -> InitiatorGroup:
        for t in ancestry(tenant):
            grp = self._groups.get(t, {}).get(name)
            if grp:
                return grp
        raise NotFound(f"/initiator_groups/{name}")

    def _scoped(self, store: dict, c: Caller) -> list:
        if c.tenant == ALL:
            return [x for t, objs in store.items() if c.sees(t) for x in objs.values()]
        return list(store.get(c.tenant, {}).values())

    def _lookup(self, store: dict, c: Caller, key: str, resolve):
        if c.tenant == ALL:
            found = next((x for x in self._scoped(store, c) if key in (getattr(x, "id", None), x.name)), None)
            if found:
                return found
            raise NotFound()
        try:
            return resolve(c.tenant, key)
        except NotFound:
            raise NotFound() from None

    def _own(self, store: dict, c: Caller, key: str):
        obj = store.get(self.write_tenant(c), {}).get(key)
        if obj is None:
            raise NotFound()
        return obj

    def list_initiators(self, c: Caller) -> list[dict]:
        return [i.to_dict() for i in self._scoped(self._initiators, c)]

    def get_initiator(self, c: Caller, iqn: str) -> dict:
        return self._lookup(self._initiators, c, iqn, self._resolve_initiator).to_dict()

    def create_initiator(self, c: Caller, body: dict) -> dict:
        v.only(body, ("id", "name", "force"), "initiator")
        iqn = body.get("id")
        if not isinstance(iqn, str) or not v.INITIATOR_RE.match(iqn):
            raise InvalidRequest(f"id: {iqn!r} is not an iSCSI initiator name (iqn., eui. or naa.)")
        tenant = self.write_tenant(c)
        if iqn in self._initiators.get(tenant, {}):
            raise Conflict(f"initiator {iqn} already exists in {tenant}")
        ini = Initiator(id=iqn, name=v.name(body.get("name")), tenant=tenant)
        self._initiators.setdefault(tenant, {})[iqn] = ini
        self.events.record(USER, "initiator_created", f"initiator {iqn} created", tenant=tenant,
                           object_path=ini.path)
        return ini.to_dict()

    def update_initiator(self, c: Caller, iqn: str, body: dict) -> dict:
        ini = self._own(self._initiators, c, iqn)
        v.only(body, ("name", "force"), "initiator")
        if "name" in body:
            ini.name = v.name(body["name"])
        return ini.to_dict()

    def delete_initiator(self, c: Caller, iqn: str, body: dict) -> dict:
        ini = self._own(self._initiators, c, iqn)
        v.only(body, ("force",), "delete")
        users = [si for si in self._targets.values() if (ini.tenant, iqn) in si.acl.initiators]
        if users and not body.get("force"):
            raise Conflict(f"initiator {iqn} is in the ACL of {users[0].path}")
        for si in users:
            si.acl.initiators.remove((ini.tenant, iqn))
        for grp in self._groups.get(ini.tenant, {}).values():
            if (ini.tenant, iqn) in grp.members:
                grp.members.remove((ini.tenant, iqn))
        del self._initiators[ini.tenant][iqn]
        self.events.record(USER, "initiator_deleted", f"initiator {iqn} deleted",
                           tenant=ini.tenant, object_path=ini.path)
        return ini.to_dict()

    def list_initiator_groups(self, c: Caller) -> list[dict]:
        return [g.to_dict() for g in self._scoped(self._groups, c)]

    def get_initiator_group(self, c: Caller, name: str) -> dict:
        return self._lookup(self._groups, c, name, self._resolve_group).to_dict()

    def _members(self, tenant: str, body_members, where: str) -> list[tuple[str, str]]:
        out = []
        for p in v.ref_list(body_members, where, "/initiators/"):
            ini = self._resolve_initiator(tenant, p[len("/initiators/"):])
            if (ini.tenant, ini.id) not in out:
                out.append((ini.tenant, ini.id))
        return out

    def create_initiator_group(self, c: Caller, body: dict) -> dict:
        v.only(body, ("name", "members", "force"), "initiator_group")
        tenant = self.write_tenant(c)
        name = v.name(body.get("name"))
        if name in self._groups.get(tenant, {}):
            raise Conflict(f"initiator_group {name} already exists in {tenant}")
        grp = InitiatorGroup(name=name, tenant=tenant,
                             members=self._members(tenant, body.get("members", []), "members"))
        self._groups.setdefault(tenant, {})[name] = grp
        self.events.record(USER, "initiator_group_created", f"initiator_group {name} created",
                           tenant=tenant, object_path=grp.path)
        return grp.to_dict()

    def update_initiator_group(self, c: Caller, name: str, body: dict) -> dict:
        grp = self._own(self._groups, c, name)
        v.only(body, ("members", "force"), "initiator_group")
        if "members" in body:
            grp.members = self._members(grp.tenant, body["members"], "members")
        return grp.to_dict()

    def link_group_member(self, c: Caller, name: str, body: dict) -> dict:
        grp = self._own(self._groups, c, name)
        op, path = v.link_op(body, "members", "/initiators/")
        iqn = path[len("/initiators/"):]
        if op == "add":
            ini = self._resolve_initiator(grp.tenant, iqn)
            if (ini.tenant, iqn) not in grp.members:
                grp.members.append((ini.tenant, iqn))
        else:
            kept = [m for m in grp.members if m[1] != iqn]
            if len(kept) == len(grp.members):
                raise NotFound(path)
            grp.members = kept
        return grp.to_dict()

    def list_group_members(self, c: Caller, name: str) -> list[dict]:
        return self._lookup(self._groups, c, name, self._resolve_group).to_dict()["members"]

    def delete_initiator_group(self, c: Caller, name: str, body: dict) -> dict:
        grp = self._own(self._groups, c, name)
        v.only(body, ("force",), "delete")
        users = [si for si in self._targets.values() if (grp.tenant, name) in si.acl.initiator_groups]
        if users and not body.get("force"):
            raise Conflict(f"initiator_group {name} is in the ACL of {users[0].path}")
        for si in users:
            si.acl.initiator_groups.remove((grp.tenant, name))
        del self._groups[grp.tenant][name]
        return grp.to_dict()

    # -- access network IP pools -----------------------------------------------------------------
    def _resolve_pool(self, tenant: str, path: str) -> tuple[str, str]:
        name = path[len("/access_network_ip_pools/"):]
        for t in ancestry(tenant):
            if name in self._pools.get(t, {}):
                return t, name
        raise NotFound(path)

    def list_ip_pools(self, c: Caller) -> list[dict]:
        """The caller's pools and those it inherits (nearest wins), as Cinder expects when it
        looks for the pool whose network holds a connector's IP."""
        if c.tenant == ALL:
            return [p.to_dict() for p in self._scoped(self._pools, c)]
        seen = {}
        for t in ancestry(c.tenant):
            for name, pool in self._pools.get(t, {}).items():
                seen.setdefault(name, pool)
        return [p.to_dict() for p in seen.values()]

    def get_ip_pool(self, c: Caller, name: str) -> dict:
        tenant = self.write_tenant(c)
        try:
            t, name = self._resolve_pool(tenant, f"/access_network_ip_pools/{name}")
        except NotFound:
            raise NotFound() from None
        return self._pools[t][name].to_dict()

    def create_ip_pool(self, c: Caller, body: dict) -> dict:
        self._admin_only(c, "access_network_ip_pools")
        v.only(body, ("name", "descr", "network_paths", "force"), "access_network_ip_pool")
        tenant = self.write_tenant(c)
        name = v.name(body.get("name"))
        if name in self._pools.get(tenant, {}):
            raise Conflict(f"access_network_ip_pool {name} already exists in {tenant}")
        paths = body.get("network_paths", [])
        if not isinstance(paths, list) or not paths:
            raise InvalidRequest("network_paths: expected a non-empty list")
        pool = IpPool(name=name, tenant=tenant, descr=v.text(body.get("descr"), "descr"),
                      network_paths=[network_path(p, f"network_paths[{i}]") for i, p in enumerate(paths)])
        self._pools.setdefault(tenant, {})[name] = pool
        return pool.to_dict()

    def delete_ip_pool(self, c: Caller, name: str, body: dict) -> dict:
        self._admin_only(c, "access_network_ip_pools")
        pool = self._own(self._pools, c, name)
        if pool.tenant == ROOT and name == "default":
            raise InvalidRequest("the default access_network_ip_pool cannot be deleted")
        if any(si.ip_pool == (pool.tenant, name) for si in self._targets.values()):
            raise Conflict(f"access_network_ip_pool {name} is in use")
        del self._pools[pool.tenant][name]
        return pool.to_dict()

    # -- contract.LoginAuthority ------------------------------------------------------------------
    def _acl_allows(self, si: StorageInstance, initiator: str) -> bool:
        if si.access_control_mode == "allow_all":
            return True
        if any(iqn == initiator for _, iqn in si.acl.initiators):
            return True
        for t, name in si.acl.initiator_groups:
            grp = self._groups.get(t, {}).get(name)
            if grp and any(iqn == initiator for _, iqn in grp.members):
                return True
        return False

    def login(self, *, initiator: str, target: str, portal: str, chap_user: str | None,
              chap_response_check) -> list[VolumeHandle]:
        si = self._targets.get(target)
        tenant = si.parent.tenant if si else ROOT
        try:
            if si is None:
                raise LoginRefused(f"unknown target {target}")
            host = portal.rsplit(":", 1)[0] if portal.count(":") == 1 else portal
            if host not in self.vips:
                raise LoginRefused(f"target {target} is not served on {portal}")
            if not si.online:
                raise LoginRefused(f"target {target} is offline")
            if not self._acl_allows(si, initiator):
                raise LoginRefused(f"initiator {initiator} is not in the ACL of {target}")
            if si.auth.type in ("chap", "mchap"):
                if not chap_user:
                    raise ChapRequired(f"target {target} requires CHAP")
                if chap_user != si.auth.target_user_name or not chap_response_check(si.auth.target_pswd):
                    raise LoginRefused(f"CHAP authentication failed for {initiator}")
        except LoginRefused as e:
            self.events.record(SYSTEM, "initiator_login_refused", str(e), tenant=tenant,
                               object_path=si.path if si else "", severity="warning")
            raise
        self.events.record(SYSTEM, "initiator_login", f"initiator {initiator} logged in to {target} "
                           f"on {portal}", tenant=tenant, object_path=si.path)
        return [vol.handle() for vol in si.volumes.values()]

    def may_access(self, *, initiator: str, vol_uuid: str) -> bool:
        vol = self._volumes.get(vol_uuid)
        return bool(vol and vol.parent.online and self._acl_allows(vol.parent, initiator))

    # -- acl_policy and auth --------------------------------------------------------------
    def get_acl_policy(self, c, ai_id, si_name) -> dict:
        si = self._si(c, ai_id, si_name)
        return si.acl.to_dict() | {"path": f"{si.path}/acl_policy"}

    def set_acl_policy(self, c, ai_id, si_name, body) -> dict:
        si = self._si(c, ai_id, si_name)
        self._apply_acl(si.parent.tenant, si, body, "acl_policy")
        return self.get_acl_policy(c, ai_id, si_name)

    def list_acl_links(self, c, ai_id, si_name, kind) -> list[dict]:
        return self.get_acl_policy(c, ai_id, si_name)[kind]

    def link_acl(self, c, ai_id, si_name, kind, body) -> dict:
        si = self._si(c, ai_id, si_name)
        prefix = "/initiators/" if kind == "initiators" else "/initiator_groups/"
        op, path = v.link_op(body, f"acl_policy/{kind}", prefix)
        key = path[len(prefix):]
        links = getattr(si.acl, kind)
        if op == "add":
            resolved = (self._resolve_initiator(si.parent.tenant, key).tenant if kind == "initiators"
                        else self._resolve_group(si.parent.tenant, key).tenant, key)
            if resolved not in links:
                links.append(resolved)
        else:
            kept = [x for x in links if x[1] != key]
            if len(kept) == len(links):
                raise NotFound(path)
            links[:] = kept
        return self.get_acl_policy(c, ai_id, si_name)

    def _apply_acl(self, tenant: str, si: StorageInstance, body: dict, where: str) -> None:
        v.only(body, ("initiators", "initiator_groups", "path", "force"), where)
        inits, groups = si.acl.initiators, si.acl.initiator_groups
        if "initiators" in body:
            inits = []
            for p in v.ref_list(body["initiators"], f"{where}.initiators", "/initiators/"):
                ini = self._resolve_initiator(tenant, p[len("/initiators/"):])
                if (ini.tenant, ini.id) not in inits:
                    inits.append((ini.tenant, ini.id))
        if "initiator_groups" in body:
            groups = []
            for p in v.ref_list(body["initiator_groups"], f"{where}.initiator_groups",
                                "/initiator_groups/"):
                grp = self._resolve_group(tenant, p[len("/initiator_groups/"):])
                if (grp.tenant, grp.name) not in groups:
                    groups.append((grp.tenant, grp.name))
        si.acl.initiators, si.acl.initiator_groups = inits, groups

    def get_auth(self, c, ai_id, si_name) -> dict:
        si = self._si(c, ai_id, si_name)
        return si.auth.to_dict() | {"path": f"{si.path}/auth"}

    def set_auth(self, c, ai_id, si_name, body) -> dict:
        self._si(c, ai_id, si_name).auth.update(body)
        return self.get_auth(c, ai_id, si_name)
