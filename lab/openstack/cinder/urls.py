"""Cinder's one route table: version documents, then /v3/{project_id}/... resources (and the
same resources under /v2/{project_id}, minus those that need a microversion)."""
from ..api import Route
from .responses import (admin_views, attachments, backups, messages, metadata, quotas, service,
                        snapshot_actions, snapshots, volume_actions, volume_types, volumes)

ATTACHMENTS = "3.27"          # Ocata's; so Pike has them and Mitaka/Newton answer 404

METADATA = (("GET", "", metadata.show_metadata), ("POST", "", metadata.create_metadata),
            ("PUT", "", metadata.update_metadata), ("GET", "/{key}", metadata.show_metadata_item),
            ("PUT", "/{key}", metadata.update_metadata_item),
            ("DELETE", "/{key}", metadata.delete_metadata_item))

ROUTES: list[Route] = [
    Route("GET", "/", service.root, public=True),
    Route("GET", "/v3", service.v3_root, public=True),
    Route("GET", "/v2", service.v2_root, public=True),
    # volumes ("detail" is declared before {volume_id} so it is not read as an id)
    Route("GET", "/v3/{project_id}/volumes", volumes.list_volumes),
    Route("GET", "/v3/{project_id}/volumes/detail", volumes.list_volumes_detail),
    Route("POST", "/v3/{project_id}/volumes", volumes.create_volume),
    Route("GET", "/v3/{project_id}/volumes/summary", admin_views.volume_summary,
          min_version="3.12"),
    Route("GET", "/v3/{project_id}/volumes/{volume_id}", volumes.show_volume),
    Route("PUT", "/v3/{project_id}/volumes/{volume_id}", volumes.update_volume),
    Route("DELETE", "/v3/{project_id}/volumes/{volume_id}", volumes.delete_volume),
    Route("POST", "/v3/{project_id}/volumes/{volume_id}/action", volume_actions.volume_action),
    *[Route(method, f"/v3/{{project_id}}/{kind}/{{{kind[:-1]}_id}}/metadata{tail}", handler)
      for kind in ("volumes", "snapshots") for method, tail, handler in METADATA],
    # volume types, extra specs, type access
    Route("GET", "/v3/{project_id}/types", volume_types.list_types),
    Route("POST", "/v3/{project_id}/types", volume_types.create_type),
    Route("GET", "/v3/{project_id}/types/{type_id}", volume_types.show_type),
    Route("PUT", "/v3/{project_id}/types/{type_id}", volume_types.update_type),
    Route("DELETE", "/v3/{project_id}/types/{type_id}", volume_types.delete_type),
    Route("GET", "/v3/{project_id}/types/{type_id}/extra_specs", volume_types.list_extra_specs),
    Route("POST", "/v3/{project_id}/types/{type_id}/extra_specs", volume_types.set_extra_specs),
    Route("GET", "/v3/{project_id}/types/{type_id}/extra_specs/{key}",
          volume_types.show_extra_spec),
    Route("PUT", "/v3/{project_id}/types/{type_id}/extra_specs/{key}",
          volume_types.update_extra_spec),
    Route("DELETE", "/v3/{project_id}/types/{type_id}/extra_specs/{key}",
          volume_types.delete_extra_spec),
    Route("POST", "/v3/{project_id}/types/{type_id}/action", volume_types.type_action),
    Route("GET", "/v3/{project_id}/types/{type_id}/os-volume-type-access",
          volume_types.type_access),
    # QoS specs (associate and disassociate are GETs in Cinder's API)
    Route("GET", "/v3/{project_id}/qos-specs", volume_types.list_qos),
    Route("POST", "/v3/{project_id}/qos-specs", volume_types.create_qos),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}", volume_types.show_qos),
    Route("PUT", "/v3/{project_id}/qos-specs/{qos_id}", volume_types.update_qos),
    Route("DELETE", "/v3/{project_id}/qos-specs/{qos_id}", volume_types.delete_qos),
    Route("PUT", "/v3/{project_id}/qos-specs/{qos_id}/delete_keys", volume_types.delete_qos_keys),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}/associate", volume_types.associate_qos),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}/disassociate",
          volume_types.disassociate_qos),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}/disassociate_all",
          volume_types.disassociate_all_qos),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}/associations",
          volume_types.qos_associations),
    # snapshots
    Route("GET", "/v3/{project_id}/snapshots", snapshots.list_snapshots),
    Route("GET", "/v3/{project_id}/snapshots/detail", snapshots.list_snapshots_detail),
    Route("POST", "/v3/{project_id}/snapshots", snapshots.create_snapshot),
    Route("GET", "/v3/{project_id}/snapshots/{snapshot_id}", snapshots.show_snapshot),
    Route("PUT", "/v3/{project_id}/snapshots/{snapshot_id}", snapshots.update_snapshot),
    Route("DELETE", "/v3/{project_id}/snapshots/{snapshot_id}", snapshots.delete_snapshot),
    Route("POST", "/v3/{project_id}/snapshots/{snapshot_id}/action",
          snapshot_actions.snapshot_action),
    # backups ("detail" and "import_record" before {backup_id}); update is 3.9 (Ocata)
    Route("GET", "/v3/{project_id}/backups", backups.list_backups),
    Route("GET", "/v3/{project_id}/backups/detail", backups.list_backups_detail),
    Route("POST", "/v3/{project_id}/backups", backups.create_backup),
    Route("POST", "/v3/{project_id}/backups/import_record", backups.import_record),
    Route("GET", "/v3/{project_id}/backups/{backup_id}", backups.show_backup),
    Route("PUT", "/v3/{project_id}/backups/{backup_id}", backups.update_backup,
          min_version="3.9"),
    Route("DELETE", "/v3/{project_id}/backups/{backup_id}", backups.delete_backup),
    Route("POST", "/v3/{project_id}/backups/{backup_id}/restore", backups.restore_backup),
    Route("GET", "/v3/{project_id}/backups/{backup_id}/export_record", backups.export_record),
    Route("POST", "/v3/{project_id}/backups/{backup_id}/action", backups.backup_action),
    # the attachments API; os-complete needs 3.44 (Queens), beyond Pike's 3.43
    Route("GET", "/v3/{project_id}/attachments", attachments.list_attachments,
          min_version=ATTACHMENTS),
    Route("GET", "/v3/{project_id}/attachments/detail", attachments.list_attachments_detail,
          min_version=ATTACHMENTS),
    Route("POST", "/v3/{project_id}/attachments", attachments.create_attachment,
          min_version=ATTACHMENTS),
    Route("GET", "/v3/{project_id}/attachments/{attachment_id}", attachments.show_attachment,
          min_version=ATTACHMENTS),
    Route("PUT", "/v3/{project_id}/attachments/{attachment_id}", attachments.update_attachment,
          min_version=ATTACHMENTS),
    Route("DELETE", "/v3/{project_id}/attachments/{attachment_id}", attachments.delete_attachment,
          min_version=ATTACHMENTS),
    Route("POST", "/v3/{project_id}/attachments/{attachment_id}/action",
          attachments.attachment_action, min_version="3.44"),
    # user messages (Newton's 3.3)
    Route("GET", "/v3/{project_id}/messages", messages.list_messages, min_version="3.3"),
    Route("GET", "/v3/{project_id}/messages/{message_id}", messages.show_message,
          min_version="3.3"),
    Route("DELETE", "/v3/{project_id}/messages/{message_id}", messages.delete_message,
          min_version="3.3"),
    # quotas, limits, services, zones
    Route("GET", "/v3/{project_id}/os-quota-sets/{target_id}", quotas.show_quota),
    Route("DELETE", "/v3/{project_id}/os-quota-sets/{target_id}", quotas.delete_quota),
    Route("PUT", "/v3/{project_id}/os-quota-sets/{target_id}", quotas.update_quota),
    Route("GET", "/v3/{project_id}/os-quota-sets/{target_id}/defaults", quotas.quota_defaults),
    Route("GET", "/v3/{project_id}/limits", quotas.limits),
    Route("GET", "/v3/{project_id}/os-services", service.services),
    Route("PUT", "/v3/{project_id}/os-services/{action}", service.service_action),
    Route("GET", "/v3/{project_id}/os-availability-zone", service.availability_zones),
    Route("GET", "/v3/{project_id}/extensions", admin_views.extensions),
    Route("GET", "/v3/{project_id}/os-hosts", admin_views.list_hosts),
    Route("GET", "/v3/{project_id}/os-hosts/{host}", admin_views.show_host),
    Route("GET", "/v3/{project_id}/scheduler-stats/get_pools", admin_views.get_pools),
    Route("GET", "/v3/{project_id}/capabilities/{host}", admin_views.capabilities),
]


# Cinder v2 is the v3 API without microversions (the /v3 microversion middleware does not
# apply to it): every v3 resource that needs no microversion, under /v2/{project_id}.
ROUTES += [Route(r.method, "/v2" + r.path[3:], r.handler)
           for r in list(ROUTES) if r.path.startswith("/v3/{project_id}") and not r.min_version]
