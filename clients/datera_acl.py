"""A host's initiator on a Datera storage instance's ACL, the way the Datera Cinder driver's
create_export / initialize_connection adds it and detach_volume removes it (reference
datera-api §3.7, §3.9), through dfs_sdk: shared by the driver (fixtures/datera.py) and the
lab's Cinder `datera` backend.

An initiator visible in a tenant may be inherited from a parent tenant (/root); the driver then
makes a tenant-local copy with the same IQN (force=True), since the ACL must name the tenant's
own. A 409 means another host made the copy meanwhile: it is read back.
"""
from clients.dfs_compat import dexc


def tenant_initiator(api, tenant: str, iqn: str, name: str):
    """The initiator entity for `iqn` that belongs to `tenant` itself, created as `name` when
    the tenant has only an inherited one or none. Raises dfs_sdk's ApiError on other faults."""
    try:
        init = api.initiators.get(iqn, tenant=tenant)
        if init.get("tenant") == tenant:
            return init
    except dexc.ApiNotFoundError:
        pass
    try:
        return api.initiators.create(tenant=tenant, id=iqn, name=name, force=True)
    except dexc.ApiConflictError:
        return api.initiators.get(iqn, tenant=tenant)


def acl_with(acl: dict, initiator_path: str) -> dict:
    """The acl_policy PUT body that keeps `acl` (the current GET) and adds `initiator_path`
    ("/initiators/<iqn>") once: {"initiators": [...], "initiator_groups": [...]}."""
    paths = [{"path": e["path"]} for e in acl.get("initiators", [])]
    if all(p["path"] != initiator_path for p in paths):
        paths.append({"path": initiator_path})
    return {"initiators": paths,
            "initiator_groups": [{"path": g["path"]} for g in acl.get("initiator_groups", [])]}


def acl_without(acl: dict, iqn: str) -> dict:
    """The acl_policy PUT body that keeps `acl` (the current GET) but every entry for `iqn`
    (the tenant's copy or an inherited one): {"initiators": [...], "initiator_groups": [...]}."""
    return {"initiators": [{"path": e["path"]} for e in acl.get("initiators", [])
                           if e["path"].rsplit("/", 1)[-1] != iqn],
            "initiator_groups": [{"path": g["path"]} for g in acl.get("initiator_groups", [])]}
