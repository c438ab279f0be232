"""Cinder v3's one route table: version documents, then /v3/{project_id}/... resources."""
from ..api import Route
from . import responses as r

ATTACHMENTS = "3.27"          # Ocata's; so Pike has them and Mitaka/Newton answer 404

ROUTES: list[Route] = [
    Route("GET", "/", r.root, public=True),
    Route("GET", "/v3", r.v3_root, public=True),
    # volumes ("detail" is declared before {volume_id} so it is not read as an id)
    Route("GET", "/v3/{project_id}/volumes", r.list_volumes),
    Route("GET", "/v3/{project_id}/volumes/detail", r.list_volumes_detail),
    Route("POST", "/v3/{project_id}/volumes", r.create_volume),
    Route("GET", "/v3/{project_id}/volumes/{volume_id}", r.show_volume),
    Route("PUT", "/v3/{project_id}/volumes/{volume_id}", r.update_volume),
    Route("DELETE", "/v3/{project_id}/volumes/{volume_id}", r.delete_volume),
    Route("POST", "/v3/{project_id}/volumes/{volume_id}/action", r.volume_action),
    # volume types, extra specs, type access
    Route("GET", "/v3/{project_id}/types", r.list_types),
    Route("POST", "/v3/{project_id}/types", r.create_type),
    Route("GET", "/v3/{project_id}/types/{type_id}", r.show_type),
    Route("PUT", "/v3/{project_id}/types/{type_id}", r.update_type),
    Route("DELETE", "/v3/{project_id}/types/{type_id}", r.delete_type),
    Route("GET", "/v3/{project_id}/types/{type_id}/extra_specs", r.list_extra_specs),
    Route("POST", "/v3/{project_id}/types/{type_id}/extra_specs", r.set_extra_specs),
    Route("GET", "/v3/{project_id}/types/{type_id}/extra_specs/{key}", r.show_extra_spec),
    Route("PUT", "/v3/{project_id}/types/{type_id}/extra_specs/{key}", r.update_extra_spec),
    Route("DELETE", "/v3/{project_id}/types/{type_id}/extra_specs/{key}", r.delete_extra_spec),
    Route("POST", "/v3/{project_id}/types/{type_id}/action", r.type_action),
    Route("GET", "/v3/{project_id}/types/{type_id}/os-volume-type-access", r.type_access),
    # QoS specs (associate and disassociate are GETs in Cinder's API)
    Route("GET", "/v3/{project_id}/qos-specs", r.list_qos),
    Route("POST", "/v3/{project_id}/qos-specs", r.create_qos),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}", r.show_qos),
    Route("PUT", "/v3/{project_id}/qos-specs/{qos_id}", r.update_qos),
    Route("DELETE", "/v3/{project_id}/qos-specs/{qos_id}", r.delete_qos),
    Route("PUT", "/v3/{project_id}/qos-specs/{qos_id}/delete_keys", r.delete_qos_keys),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}/associate", r.associate_qos),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}/disassociate", r.disassociate_qos),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}/disassociate_all", r.disassociate_all_qos),
    Route("GET", "/v3/{project_id}/qos-specs/{qos_id}/associations", r.qos_associations),
    # snapshots
    Route("GET", "/v3/{project_id}/snapshots", r.list_snapshots),
    Route("GET", "/v3/{project_id}/snapshots/detail", r.list_snapshots_detail),
    Route("POST", "/v3/{project_id}/snapshots", r.create_snapshot),
    Route("GET", "/v3/{project_id}/snapshots/{snapshot_id}", r.show_snapshot),
    Route("PUT", "/v3/{project_id}/snapshots/{snapshot_id}", r.update_snapshot),
    Route("DELETE", "/v3/{project_id}/snapshots/{snapshot_id}", r.delete_snapshot),
    # the attachments API; os-complete needs 3.44 (Queens), beyond Pike's 3.43
    Route("GET", "/v3/{project_id}/attachments", r.list_attachments, min_version=ATTACHMENTS),
    Route("GET", "/v3/{project_id}/attachments/detail", r.list_attachments_detail,
          min_version=ATTACHMENTS),
    Route("POST", "/v3/{project_id}/attachments", r.create_attachment, min_version=ATTACHMENTS),
    Route("GET", "/v3/{project_id}/attachments/{attachment_id}", r.show_attachment,
          min_version=ATTACHMENTS),
    Route("PUT", "/v3/{project_id}/attachments/{attachment_id}", r.update_attachment,
          min_version=ATTACHMENTS),
    Route("DELETE", "/v3/{project_id}/attachments/{attachment_id}", r.delete_attachment,
          min_version=ATTACHMENTS),
    Route("POST", "/v3/{project_id}/attachments/{attachment_id}/action", r.attachment_action,
          min_version="3.44"),
    # quotas, limits, services, zones
    Route("GET", "/v3/{project_id}/os-quota-sets/{target_id}", r.show_quota),
    Route("PUT", "/v3/{project_id}/os-quota-sets/{target_id}", r.update_quota),
    Route("GET", "/v3/{project_id}/os-quota-sets/{target_id}/defaults", r.quota_defaults),
    Route("GET", "/v3/{project_id}/limits", r.limits),
    Route("GET", "/v3/{project_id}/os-services", r.services),
    Route("GET", "/v3/{project_id}/os-availability-zone", r.availability_zones),
]
