"""Read-only views Cinder's API has besides the resources: extensions, os-hosts,
scheduler-stats/get_pools, capabilities/{host}, volumes/summary (3.12).

Shapes: Cinder 11.0.0 api/contrib/{hosts,scheduler_stats,capabilities}.py and
api/v3/volumes.py summary; checked against Tempest 47's response schemas."""
from ... import errors
from ...api import Reply, Rq, ok
from ..models.records import now_iso
from .helpers import _caller, _model

# (alias, name, description) of the API extensions a Pike Cinder loads by default.
EXTENSIONS = (
    ("os-admin-actions", "AdminActions", "Enable admin actions."),
    ("os-availability-zone", "AvailabilityZones", "Describe Availability Zones."),
    ("capabilities", "Capabilities", "Capabilities support."),
    ("os-extended-services", "ExtendedServices", "Extended services support."),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes",
     "Extended SnapshotAttributes support."),
    ("os-hosts", "Hosts", "Admin-only host administration."),
    ("os-quota-sets", "Quotas", "Quota management support."),
    ("scheduler-stats", "Scheduler_stats", "Scheduler stats support."),
    ("os-services", "Services", "Services support."),
    ("os-snapshot-actions", "SnapshotActions", "Enable snapshot manager actions."),
    ("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
    ("os-types-manage", "TypesManage", "Types manage support."),
    ("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
    ("os-vol-image-meta", "VolumeImageMetadata", "Show image metadata associated with the volume."),
    ("os-vol-mig-status-attr", "VolumeMigStatusAttribute",
     "Expose migration_status as an attribute of a volume."),
    ("os-vol-tenant-attr", "VolumeTenantAttribute",
     "Expose the internal project_id as an attribute of a volume."),
    ("os-volume-actions", "VolumeActions", "Enable volume actions."),
    ("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
    ("qos-specs", "Qos_specs_manage", "QoS specs support."),
)


def extensions(rq: Rq) -> Reply:
    return ok({"extensions": [
        {"alias": alias, "name": name, "description": text, "links": [],
         "namespace": f"http://docs.openstack.org/volume/ext/{alias}/api/v1",
         "updated": "2012-08-13T00:00:00+00:00"} for alias, name, text in EXTENSIONS]})


def _pool_capabilities(rq: Rq, backend: str) -> dict:
    driver = _model(rq).drivers[backend]
    datera = backend == "datera"
    return {"volume_backend_name": backend, "pool_name": driver.pool,
            "vendor_name": "Datera" if datera else "Open Source",
            "driver_version": rq.profile.datera_driver_version if datera else "1.2.0",
            "storage_protocol": "iSCSI" if datera else "ceph",
            "total_capacity_gb": "infinite" if datera else 1024, "free_capacity_gb":
                "infinite" if datera else 1024, "reserved_percentage": 0,
            "QoS_support": datera, "timestamp": now_iso()}


def get_pools(rq: Rq) -> Reply:
    rq.require_admin("scheduler_extension:scheduler_stats:get_pools")
    model = _model(rq)
    detail = rq.query.get("detail", "").lower() in ("true", "1", "yes", "on")
    pools = []
    for backend in model.drivers:
        pool = {"name": model.host_of(backend)}
        if detail:
            pool["capabilities"] = _pool_capabilities(rq, backend)
        pools.append(pool)
    return ok({"pools": pools})


def capabilities(rq: Rq) -> Reply:
    rq.require_admin("volume_extension:capabilities")
    model = _model(rq)
    host = rq.p("host")
    backend = next((b for b in model.drivers if host in (f"{model.host}@{b}",
                                                       model.host_of(b))), None)
    if backend is None:
        raise errors.NotFound(f"Service {host} could not be found.", kind="ServiceNotFound")
    caps = _pool_capabilities(rq, backend)
    return ok({"namespace": f"OS::Storage::Capabilities::{host}", "volume_backend_name": backend,
               "pool_name": None, "vendor_name": caps["vendor_name"],
               "driver_version": caps["driver_version"],
               "storage_protocol": caps["storage_protocol"], "display_name": None,
               "description": None, "visibility": None, "replication_targets": [],
               "properties": {"compression": {"title": "Compression", "type": "boolean",
                                              "description": "Enables compression."}}})


def _host_rows(rq: Rq) -> list:
    model = _model(rq)
    rows = [("cinder-scheduler", model.host)]
    rows += [("cinder-volume", f"{model.host}@{b}") for b in model.drivers]
    return rows


def list_hosts(rq: Rq) -> Reply:
    rq.require_admin("volume_extension:hosts")
    return ok({"hosts": [{"host_name": host, "service": binary, "zone": "nova",
                          "service-status": "available", "service-state": "enabled",
                          "last-update": now_iso()} for binary, host in _host_rows(rq)]})


def show_host(rq: Rq) -> Reply:
    rq.require_admin("volume_extension:hosts")
    host = rq.p("host")
    if host not in [h for _, h in _host_rows(rq)]:
        raise errors.NotFound(f"Host {host} could not be found.", kind="HostNotFound")
    vols = [v for v in _model(rq).list_volumes(_caller(rq), all_tenants=True)
            if (v.host or "").split("#")[0] == host]
    snaps = [s for s in _model(rq).list_snapshots(_caller(rq), all_tenants=True)
             if s.volume_id in {v.id for v in vols}]
    total = {"host": host, "project": "(total)", "volume_count": str(len(vols)),
             "total_volume_gb": str(sum(v.size for v in vols)),
             "snapshot_count": str(len(snaps)),
             "total_snapshot_gb": str(sum(s.size for s in snaps))}
    return ok({"host": [{"resource": total}]})


def volume_summary(rq: Rq) -> Reply:
    from .helpers import _flag
    vols = _model(rq).list_volumes(_caller(rq), all_tenants=_flag(rq.query, "all_tenants"))
    summary = {"total_size": sum(v.size for v in vols), "total_count": len(vols)}
    if rq.at_least("3.36"):
        metadata: dict = {}
        for v in vols:
            for k, val in v.metadata.items():
                metadata.setdefault(k, [])
                if val not in metadata[k]:
                    metadata[k].append(val)
        summary["metadata"] = metadata
    return ok({"volume-summary": summary})
