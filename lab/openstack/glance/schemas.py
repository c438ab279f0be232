"""The JSON schemas Glance v2 serves at /v2/schemas/{image,images,member,members}, per release.

Facts (Glance 12.0.0 / 13.0.0 / 15.0.0 = Mitaka / Newton / Pike): glance/api/v2/images.py
get_base_properties() and _get_base_links(), glance/api/v2/image_members.py _MEMBER_SCHEMA,
glance/schema.py (PermissiveSchema.raw: additionalProperties {"type": "string"} because
allow_additional_image_properties defaults to True; CollectionSchema.raw), the default
etc/schema-image.json custom properties (merged with "is_base": false), and the default
[image_format] disk_formats / container_formats of glance/common/config.py.
Release differences: the visibility enum (community and shared arrive in 14.0.0, Ocata) and
the disk formats (vhdx from 13.0.0, ploop from 15.0.0): ReleaseProfile.glance_visibilities
and .glance_disk_formats.
"""
import copy

from ..releases import ReleaseProfile

CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker")
UUID_PATTERN = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$")
_OS_DOC = "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"
_OS_DOC_OLD = "http://docs.openstack.org/trunk/openstack-compute/admin/content/adding-images.html"


def _s(type_, description, **extra) -> dict:
    return {"type": type_, "description": description, **extra}


def _base_properties(profile: ReleaseProfile) -> dict:
    ro = {"readOnly": True}
    return {
        "id": _s("string", "An identifier for the image", pattern=UUID_PATTERN),
        "name": _s(["null", "string"], "Descriptive name for the image", maxLength=255),
        "status": {"type": "string", **ro, "description": "Status of the image",
                   "enum": ["queued", "saving", "active", "killed", "deleted",
                            "pending_delete", "deactivated"]},
        "visibility": _s("string", "Scope of image accessibility",
                         enum=list(profile.glance_visibilities)),
        "protected": _s("boolean", "If true, image will not be deletable."),
        "checksum": {"type": ["null", "string"], **ro,
                     "description": "md5 hash of image contents.", "maxLength": 32},
        "owner": _s(["null", "string"], "Owner of the image", maxLength=255),
        "size": {"type": ["null", "integer"], **ro,
                 "description": "Size of image file in bytes"},
        "virtual_size": {"type": ["null", "integer"], **ro,
                         "description": "Virtual size of image in bytes"},
        "container_format": _s(["null", "string"], "Format of the container",
                               enum=[None, *CONTAINER_FORMATS]),
        "disk_format": _s(["null", "string"], "Format of the disk",
                          enum=[None, *profile.glance_disk_formats]),
        "created_at": {"type": "string", **ro,
                       "description": "Date and time of image registration"},
        "updated_at": {"type": "string", **ro,
                       "description": "Date and time of the last image modification"},
        "tags": {"type": "array", "description": "List of strings related to the image",
                 "items": {"type": "string", "maxLength": 255}},
        "direct_url": {"type": "string", **ro,
                       "description": "URL to access the image file kept in external store"},
        "min_ram": _s("integer", "Amount of ram (in MB) required to boot image."),
        "min_disk": _s("integer", "Amount of disk space (in GB) required to boot image."),
        "self": {"type": "string", **ro, "description": "An image self url"},
        "file": {"type": "string", **ro, "description": "An image file url"},
        "schema": {"type": "string", **ro, "description": "An image schema url"},
        "locations": {"type": "array", "items": {
            "type": "object",
            "properties": {"url": {"type": "string", "maxLength": 255},
                           "metadata": {"type": "object"}},
            "required": ["url", "metadata"]},
            "description": "A set of URLs to access the image file kept in external store"},
    }


def _custom_properties(profile: ReleaseProfile) -> dict:
    """etc/schema-image.json as shipped (the doc link changed in 15.0.0)."""
    doc = _OS_DOC if "ploop" in profile.glance_disk_formats else _OS_DOC_OLD
    ami = ("ID of image stored in Glance that should be used as the {} when booting an "
           "AMI-style image.")
    props = {
        "kernel_id": _s(["null", "string"], ami.format("kernel"), pattern=UUID_PATTERN),
        "ramdisk_id": _s(["null", "string"], ami.format("ramdisk"), pattern=UUID_PATTERN),
        "instance_uuid": _s("string", "Metadata which can be used to record which instance "
                            "this image is associated with. (Informational only, does not "
                            "create an instance snapshot.)"),
        "architecture": _s("string", f"Operating system architecture as specified in {doc}"),
        "os_distro": _s("string", "Common name of operating system distribution as "
                        f"specified in {doc}"),
        "os_version": _s("string", "Operating system version as specified by the "
                         "distributor"),
    }
    for p in props.values():
        p["is_base"] = False
    return props


def image_schema(profile: ReleaseProfile) -> dict:
    """GET /v2/schemas/image: PermissiveSchema('image', ...).raw()."""
    properties = _base_properties(profile)
    properties.update(_custom_properties(profile))
    return {"name": "image", "properties": properties,
            "additionalProperties": {"type": "string"},
            "links": [{"rel": "self", "href": "{self}"},
                      {"rel": "enclosure", "href": "{file}"},
                      {"rel": "describedby", "href": "{schema}"}]}


def _collection(name: str, item: dict) -> dict:
    return {"name": name,
            "properties": {name: {"type": "array", "items": item},
                           "first": {"type": "string"}, "next": {"type": "string"},
                           "schema": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


def images_schema(profile: ReleaseProfile) -> dict:
    """GET /v2/schemas/images: CollectionSchema('images', image).raw()."""
    return _collection("images", image_schema(profile))


_MEMBER = {
    "member_id": _s("string", "An identifier for the image member (tenantId)"),
    "image_id": _s("string", "An identifier for the image", pattern=UUID_PATTERN),
    "created_at": _s("string", "Date and time of image member creation"),
    "updated_at": _s("string", "Date and time of last modification of image member"),
    "status": _s("string", "The status of this image member",
                 enum=["pending", "accepted", "rejected"]),
    "schema": {"readOnly": True, "type": "string"},
}


def member_schema(profile: ReleaseProfile | None = None) -> dict:
    """GET /v2/schemas/member: Schema('member', ...).raw() (not permissive)."""
    return {"name": "member", "properties": copy.deepcopy(_MEMBER),
            "additionalProperties": False}


def members_schema(profile: ReleaseProfile | None = None) -> dict:
    return _collection("members", member_schema())


SCHEMAS = {"image": image_schema, "images": images_schema,
           "member": member_schema, "members": members_schema}
