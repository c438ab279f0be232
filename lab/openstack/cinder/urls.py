"""Cinder v3's one route table: version documents, then /v3/{project_id}/... resources."""
from ..api import Route
from . import responses as r

P = "/v3/{project_id}"
VOL = f"{P}/volumes/{{volume_id}}"
TYPE = f"{P}/types/{{type_id}}"
QOS = f"{P}/qos-specs/{{qos_id}}"
SNAP = f"{P}/snapshots/{{snapshot_id}}"
QUOTA = f"{P}/os-quota-sets/{{target_id}}"
ATT = f"{P}/attachments/{{attachment_id}}"
ATTACHMENTS = "3.27"          # Ocata's; so Pike has them and Mitaka/Newton answer 404

ROUTES: list[Route] = [
    Route("GET", "/", r.root, public=True),
    Route("GET", "/v3", r.v3_root, public=True),
    # volumes ("detail" is declared before {volume_id} so it is not read as an id)
    Route("GET", f"{P}/volumes", r.list_volumes),
    Route("GET", f"{P}/volumes/detail", r.list_volumes_detail),
    Route("POST", f"{P}/volumes", r.create_volume),
    Route("GET", VOL, r.show_volume),
    Route("PUT", VOL, r.update_volume),
    Route("DELETE", VOL, r.delete_volume),
    Route("POST", f"{VOL}/action", r.volume_action),
    # volume types, extra specs, type access
    Route("GET", f"{P}/types", r.list_types),
    Route("POST", f"{P}/types", r.create_type),
    Route("GET", TYPE, r.show_type),
    Route("PUT", TYPE, r.update_type),
    Route("DELETE", TYPE, r.delete_type),
    Route("GET", f"{TYPE}/extra_specs", r.list_extra_specs),
    Route("POST", f"{TYPE}/extra_specs", r.set_extra_specs),
    Route("GET", f"{TYPE}/extra_specs/{{key}}", r.show_extra_spec),
    Route("PUT", f"{TYPE}/extra_specs/{{key}}", r.update_extra_spec),
    Route("DELETE", f"{TYPE}/extra_specs/{{key}}", r.delete_extra_spec),
    Route("POST", f"{TYPE}/action", r.type_action),
    Route("GET", f"{TYPE}/os-volume-type-access", r.type_access),
    # QoS specs (associate and disassociate are GETs in Cinder's API)
    Route("GET", f"{P}/qos-specs", r.list_qos),
    Route("POST", f"{P}/qos-specs", r.create_qos),
    Route("GET", QOS, r.show_qos),
    Route("PUT", QOS, r.update_qos),
    Route("DELETE", QOS, r.delete_qos),
    Route("PUT", f"{QOS}/delete_keys", r.delete_qos_keys),
    Route("GET", f"{QOS}/associate", r.associate_qos),
    Route("GET", f"{QOS}/disassociate", r.disassociate_qos),
    Route("GET", f"{QOS}/disassociate_all", r.disassociate_all_qos),
    Route("GET", f"{QOS}/associations", r.qos_associations),
    # snapshots
    Route("GET", f"{P}/snapshots", r.list_snapshots),
    Route("GET", f"{P}/snapshots/detail", r.list_snapshots_detail),
    Route("POST", f"{P}/snapshots", r.create_snapshot),
    Route("GET", SNAP, r.show_snapshot),
    Route("PUT", SNAP, r.update_snapshot),
    Route("DELETE", SNAP, r.delete_snapshot),
    # the attachments API; os-complete needs 3.44 (Queens), beyond Pike's 3.43
    Route("GET", f"{P}/attachments", r.list_attachments, min_version=ATTACHMENTS),
    Route("GET", f"{P}/attachments/detail", r.list_attachments_detail,
          min_version=ATTACHMENTS),
    Route("POST", f"{P}/attachments", r.create_attachment, min_version=ATTACHMENTS),
    Route("GET", ATT, r.show_attachment, min_version=ATTACHMENTS),
    Route("PUT", ATT, r.update_attachment, min_version=ATTACHMENTS),
    Route("DELETE", ATT, r.delete_attachment, min_version=ATTACHMENTS),
    Route("POST", f"{ATT}/action", r.attachment_action, min_version="3.44"),
    # quotas, limits, services, zones
    Route("GET", QUOTA, r.show_quota),
    Route("PUT", QUOTA, r.update_quota),
    Route("GET", f"{QUOTA}/defaults", r.quota_defaults),
    Route("GET", f"{P}/limits", r.limits),
    Route("GET", f"{P}/os-services", r.services),
    Route("GET", f"{P}/os-availability-zone", r.availability_zones),
]
