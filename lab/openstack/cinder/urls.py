"""Cinder's one route table: version documents, then /v3/{project_id}/... resources (and the
same resources under /v2/{project_id}, minus those that need a microversion)."""
from ..api import COLLECTION_OPS, Route, collection_routes
from .responses import (admin_views, attachments, backups, messages, metadata, quotas, service,
                        snapshot_actions, snapshots, volume_actions, volume_types, volumes)

ATTACHMENTS = "3.27"          # Ocata's; so Pike has them and Mitaka/Newton answer 404
V3 = "/v3/{project_id}"
NO_DETAIL = ("list", "create", "read", "update", "delete")

METADATA = (("GET", "", metadata.show_metadata), ("POST", "", metadata.create_metadata),
            ("PUT", "", metadata.update_metadata), ("GET", "/{key}", metadata.show_metadata_item),
            ("PUT", "/{key}", metadata.update_metadata_item),
            ("DELETE", "/{key}", metadata.delete_metadata_item))

ROUTES: list[Route] = [
    Route("GET", "/", service.root, public=True),
    Route("GET", "/v3", service.v3_root, public=True),
    Route("GET", "/v2", service.v2_root, public=True),
    # volumes ("summary" is declared before {volume_id} so it is not read as an id)
    Route("GET", V3 + "/volumes/summary", admin_views.volume_summary, min_version="3.12"),
    *collection_routes(V3 + "/volumes", "{volume_id}", volumes, "volume", ops=COLLECTION_OPS),
    Route("POST", V3 + "/volumes/{volume_id}/action", volume_actions.volume_action),
    *[Route(method, V3 + f"/{kind}/{{{kind[:-1]}_id}}/metadata{tail}", handler)
      for kind in ("volumes", "snapshots") for method, tail, handler in METADATA],
    # volume types, extra specs, type access
    *collection_routes(V3 + "/types", "{type_id}", volume_types, "type", ops=NO_DETAIL),
    Route("GET", V3 + "/types/{type_id}/extra_specs", volume_types.list_extra_specs),
    Route("POST", V3 + "/types/{type_id}/extra_specs", volume_types.set_extra_specs),
    Route("GET", V3 + "/types/{type_id}/extra_specs/{key}", volume_types.show_extra_spec),
    Route("PUT", V3 + "/types/{type_id}/extra_specs/{key}", volume_types.update_extra_spec),
    Route("DELETE", V3 + "/types/{type_id}/extra_specs/{key}", volume_types.delete_extra_spec),
    Route("POST", V3 + "/types/{type_id}/action", volume_types.type_action),
    Route("GET", V3 + "/types/{type_id}/os-volume-type-access", volume_types.type_access),
    # QoS specs (associate and disassociate are GETs in Cinder's API)
    *collection_routes(V3 + "/qos-specs", "{qos_id}", volume_types, "qos", plural="qos",
                       ops=NO_DETAIL),
    Route("PUT", V3 + "/qos-specs/{qos_id}/delete_keys", volume_types.delete_qos_keys),
    Route("GET", V3 + "/qos-specs/{qos_id}/associate", volume_types.associate_qos),
    Route("GET", V3 + "/qos-specs/{qos_id}/disassociate", volume_types.disassociate_qos),
    Route("GET", V3 + "/qos-specs/{qos_id}/disassociate_all", volume_types.disassociate_all_qos),
    Route("GET", V3 + "/qos-specs/{qos_id}/associations", volume_types.qos_associations),
    # snapshots
    *collection_routes(V3 + "/snapshots", "{snapshot_id}", snapshots, "snapshot",
                       ops=COLLECTION_OPS),
    Route("POST", V3 + "/snapshots/{snapshot_id}/action", snapshot_actions.snapshot_action),
    # backups ("import_record" before {backup_id}); update is 3.9 (Ocata)
    Route("POST", V3 + "/backups/import_record", backups.import_record),
    *collection_routes(V3 + "/backups", "{backup_id}", backups, "backup", ops=COLLECTION_OPS,
                       min_versions={"update": "3.9"}),
    Route("POST", V3 + "/backups/{backup_id}/restore", backups.restore_backup),
    Route("GET", V3 + "/backups/{backup_id}/export_record", backups.export_record),
    Route("POST", V3 + "/backups/{backup_id}/action", backups.backup_action),
    # the attachments API; os-complete needs 3.44 (Queens), beyond Pike's 3.43
    *collection_routes(V3 + "/attachments", "{attachment_id}", attachments, "attachment",
                       ops=COLLECTION_OPS, min_version=ATTACHMENTS),
    Route("POST", V3 + "/attachments/{attachment_id}/action",
          attachments.attachment_action, min_version="3.44"),
    # user messages (Newton's 3.3)
    *collection_routes(V3 + "/messages", "{message_id}", messages, "message",
                       ops=("list", "read", "delete"), min_version="3.3"),
    # quotas, limits, services, zones
    Route("GET", V3 + "/os-quota-sets/{target_id}", quotas.show_quota),
    Route("DELETE", V3 + "/os-quota-sets/{target_id}", quotas.delete_quota),
    Route("PUT", V3 + "/os-quota-sets/{target_id}", quotas.update_quota),
    Route("GET", V3 + "/os-quota-sets/{target_id}/defaults", quotas.quota_defaults),
    Route("GET", V3 + "/limits", quotas.limits),
    Route("GET", V3 + "/os-services", service.services),
    Route("PUT", V3 + "/os-services/{action}", service.service_action),
    Route("GET", V3 + "/os-availability-zone", service.availability_zones),
    Route("GET", V3 + "/extensions", admin_views.extensions),
    Route("GET", V3 + "/os-hosts", admin_views.list_hosts),
    Route("GET", V3 + "/os-hosts/{host}", admin_views.show_host),
    Route("GET", V3 + "/scheduler-stats/get_pools", admin_views.get_pools),
    Route("GET", V3 + "/capabilities/{host}", admin_views.capabilities),
]


# Cinder v2 is the v3 API without microversions (the /v3 microversion middleware does not
# apply to it): every v3 resource that needs no microversion, under /v2/{project_id}.
ROUTES += [Route(r.method, "/v2" + r.path[3:], r.handler)
           for r in list(ROUTES) if r.path.startswith("/v3/{project_id}") and not r.min_version]
