"""Glance v2 handlers: images without an envelope, data upload and download, lists with the
filters and paging the clients use. Glance's errors are HTML pages (error_style "glance")."""
from urllib.parse import urlencode

from aiohttp import web

from ..errors import BadRequest, NotFound, UnsupportedMediaType
from ..api import Reply, Rq, created, no_content, ok, paginate
from .models import Image, ImageModel

PATCH_TYPES = ("application/openstack-images-v2.1-json-patch",
               "application/openstack-images-v2.0-json-patch")
CHUNK = 1 << 20


def _model(rq: Rq) -> ImageModel:
    return rq.model


def _image(rq: Rq) -> Image:
    return _model(rq).get(rq.p("image_id"), rq.auth.project_id, rq.auth.is_admin)


def image_view(image: Image) -> dict:
    view = dict(image.properties)
    view.update({
        "id": image.id, "name": image.name, "status": image.status,
        "visibility": image.visibility, "protected": image.protected, "tags": list(image.tags),
        "container_format": image.container_format, "disk_format": image.disk_format,
        "min_disk": image.min_disk, "min_ram": image.min_ram, "size": image.size,
        "virtual_size": None, "checksum": image.checksum, "owner": image.owner,
        "created_at": image.created_at, "updated_at": image.updated_at,
        "file": f"/v2/images/{image.id}/file", "self": f"/v2/images/{image.id}",
        "schema": "/v2/schemas/image"})
    return view


# ---- discovery -----------------------------------------------------------------------------

def root(rq: Rq) -> Reply:
    return Reply(300, rq.profile.glance_root(rq.base_url))


def versions(rq: Rq) -> Reply:
    return ok(rq.profile.glance_root(rq.base_url))


# ---- images --------------------------------------------------------------------------------

# query keys that are not filters (paging, sorting, the ones handled apart)
NOT_FILTERS = {"limit", "marker", "sort", "sort_key", "sort_dir", "visibility", "id", "tag",
               "member_status"}
FILTERABLE = {"name", "status", "owner", "disk_format", "container_format", "size",
              "min_disk", "min_ram", "protected", "checksum"}
SORT_KEYS = ("created_at", "updated_at", "name", "id", "size", "status", "disk_format",
             "container_format", "min_disk", "min_ram", "owner", "visibility")


TIME_OPS = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b, "eq": lambda a, b: a == b, "neq": lambda a, b: a != b}


def _int_param(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequest("Unable to filter on a range with a non-numeric value.") from None


def _sort_spec(q) -> list[tuple[str, str]]:
    """[(key, dir)] from sort=k1:d1,k2 (v2.2+) or sort_key/sort_dir (repeatable); the two
    styles cannot mix (glance/api/v2/images.py _get_sorting_params)."""
    if "sort" in q:
        if "sort_key" in q or "sort_dir" in q:
            raise BadRequest("The 'sort' parameter cannot be combined with 'sort_key' or "
                             "'sort_dir'.")
        spec = []
        for part in q["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            spec.append((key, direction or "desc"))
    else:
        keys = q.getall("sort_key", []) or ["created_at"]
        dirs = q.getall("sort_dir", []) or ["desc"]
        spec = [(k, dirs[i] if i < len(dirs) else dirs[-1]) for i, k in enumerate(keys)]
    for key, direction in spec:
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: "
                             f"{', '.join(SORT_KEYS)}.")
    return spec


def _matches(image: Image, rq: Rq) -> bool:
    q = rq.query
    visibility = q.get("visibility")
    if visibility is None and image.visibility == "community" and image.owner != rq.auth.project_id:
        return False
    if visibility not in (None, "all") and image.visibility != visibility:
        return False
    if (image.owner != rq.auth.project_id and not rq.auth.is_admin
            and image.visibility not in ("public", "community")):
        # an image shared with the caller: listed when its membership has member_status
        # (default accepted; `all` for any), as Glance's image list does
        wanted = q.get("member_status", "accepted")
        status = _model(rq).members.get(image.id, {}).get(rq.auth.project_id)
        if wanted != "all" and (status is None or status.status != wanted):
            return False
    ids = q.get("id")
    if ids is not None:
        wanted = ids[3:].split(",") if ids.startswith("in:") else [ids]
        if image.id not in wanted:
            return False
    for key, want in q.items():
        if key in NOT_FILTERS:
            continue
        if key in ("size_min", "size_max"):
            bound = _int_param(key, want)
            if image.size is None or (image.size < bound if key == "size_min"
                                      else image.size > bound):
                return False
            continue
        if key in ("created_at", "updated_at"):   # op:ISO time (gt, gte, lt, lte, eq, neq)
            op, _, when = want.partition(":") if ":" in want.split("T")[0] else ("eq", "", want)
            have = getattr(image, key)
            if op not in TIME_OPS:
                raise BadRequest(f"Invalid operator {op} for {key}")
            if not TIME_OPS[op](have, when.replace("+00:00", "Z")):
                return False
            continue
        # any other key filters on an attribute or an extra property (Glance's db filters)
        have = getattr(image, key, None) if key in FILTERABLE else image.properties.get(key)
        values = want[3:].split(",") if want.startswith("in:") else [want]
        if have is None or str(have) not in values and not (
                isinstance(have, bool) and str(have).lower() in values):
            return False
    for tag in q.getall("tag", []):
        if tag not in image.tags:
            return False
    return True


def list_images(rq: Rq) -> Reply:
    if rq.query.get("member_status", "all") not in ("pending", "accepted", "rejected", "all"):
        raise BadRequest("Invalid status value: " + rq.query["member_status"])
    images = [i for i in _model(rq).listing(rq.auth.project_id, rq.auth.is_admin)
              if _matches(i, rq)]
    spec = _sort_spec(rq.query)
    if spec != [("created_at", "desc")]:
        for key, direction in reversed(spec):   # stable sorts, least significant key first
            present = [i for i in images if getattr(i, key) is not None]
            absent = [i for i in images if getattr(i, key) is None]
            present.sort(key=lambda i: getattr(i, key), reverse=direction == "desc")
            images = present + absent if direction == "desc" else absent + present
    try:
        page, more = paginate(images, rq.query, default_limit=25, full_page_has_more=True)
    except LookupError:
        raise BadRequest(f"Invalid marker. Image {rq.query.get('marker')} could not be "
                         "found.") from None
    body = {"images": [image_view(i) for i in page], "first": "/v2/images",
            "schema": "/v2/schemas/images"}
    if more and page:
        params = [(k, v) for k, v in rq.query.items() if k != "marker"]
        params.append(("marker", page[-1].id))
        body["next"] = "/v2/images?" + urlencode(params)
    return ok(body)


def create_image(rq: Rq) -> Reply:
    body = rq.json_object()
    image = _model(rq).create(body, rq.auth.project_id, rq.auth.is_admin)
    return created(image_view(image), {"Location": f"{rq.base_url}/v2/images/{image.id}"})


def get_image(rq: Rq) -> Reply:
    return ok(image_view(_image(rq)))


def update_image(rq: Rq) -> Reply:
    if rq.http.content_type not in PATCH_TYPES:
        raise UnsupportedMediaType(f"Unsupported Content-Type: use {PATCH_TYPES[0]}")
    image = _image(rq)
    ops = rq.json()
    if not isinstance(ops, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    draft4 = rq.http.content_type == PATCH_TYPES[1]
    changes = [_change(op, draft4) for op in ops]
    if image.owner != rq.auth.project_id and not rq.auth.is_admin:
        raise NotFound(f"No image found with ID {image.id}")
    return ok(image_view(_model(rq).update(image, changes, rq.auth.is_admin)))


def _change(op, draft4: bool) -> tuple[str, str, object]:
    """One JSON-patch operation -> (op, attribute, value). The v2.1 media type is RFC 6902
    ({"op": "replace", "path": "/name"}); the v2.0 one is the JSON-pointer draft 4 form
    ({"replace": "/name", "value": ...}): glance/api/v2/images.py _get_change_operation_d4/d10."""
    ops = ("replace", "add", "remove")
    if not isinstance(op, dict):
        raise BadRequest("Operation objects must be JSON objects.")
    if draft4:
        named = [k for k in ops if k in op]
        if len(named) > 1:
            raise BadRequest('Operation objects must contain only one member named "add", '
                             '"remove", or "replace".')
        if not named:
            raise BadRequest('Operation objects must contain exactly one member named '
                             '"add", "remove", or "replace".')
        kind, path = named[0], op[named[0]]
    else:
        kind = op.get("op")
        if kind is None:
            raise BadRequest("Unable to find `op` in JSON Schema change. It must be one of "
                             f"the following: {', '.join(ops)}.")
        if kind not in ops:
            raise BadRequest(f"Invalid operation: `{kind}`. It must be one of the "
                             f"following: {', '.join(ops)}.")
        if "path" not in op:
            raise BadRequest("Unable to find '/' in JSON Schema change")
        path = op["path"]
    if not isinstance(path, str) or not path.startswith("/"):
        raise BadRequest("Pointer `%s` does not start with \"/\"." % path)
    if kind != "remove" and "value" not in op:
        raise BadRequest(f'Operation "{kind}" requires a member named "value".')
    return kind, path[1:].replace("~1", "/").replace("~0", "~"), op.get("value")


def delete_image(rq: Rq) -> Reply:
    image = _image(rq)
    if image.owner != rq.auth.project_id and not rq.auth.is_admin:
        from ..errors import Forbidden
        raise Forbidden("You are not permitted to delete this image.")
    _model(rq).delete(image)
    return no_content()


def add_tag(rq: Rq) -> Reply:
    _model(rq).add_tag(_image(rq), rq.p("tag"))
    return no_content()


def remove_tag(rq: Rq) -> Reply:
    _model(rq).remove_tag(_image(rq), rq.p("tag"))
    return no_content()


# ---- data ----------------------------------------------------------------------------------

async def upload(rq: Rq) -> Reply:
    if rq.http.content_type != "application/octet-stream":
        raise UnsupportedMediaType("Unsupported Content-Type; use application/octet-stream.")
    image = _image(rq)
    if image.owner != rq.auth.project_id and not rq.auth.is_admin:
        raise NotFound(f"No image found with ID {image.id}")
    up = _model(rq).begin_upload(image)
    try:
        while chunk := await rq.http.content.read(CHUNK):
            up.write(chunk)
    except BaseException:
        up.fail()
        raise
    up.finish()
    return no_content()


async def download(rq: Rq):
    image = _image(rq)
    path = _model(rq).data_path(image.id)
    if image.status not in ("active", "deactivated") or not path.exists():
        return no_content()   # Glance answers 204 for an image without data
    if image.status == "deactivated" and not rq.auth.is_admin:
        from ..errors import Forbidden
        raise Forbidden("The requested image has been deactivated. Image data download is "
                        "forbidden.")
    resp = web.StreamResponse(status=200, headers={
        "Content-Type": "application/octet-stream", "Content-MD5": image.checksum,
        "Content-Length": str(image.size)})
    for h in rq.service.request_id_headers:
        resp.headers[h] = rq.request_id
    await resp.prepare(rq.http)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            await resp.write(chunk)
    await resp.write_eof()
    return resp


# ---- actions (Glance v2.3+: images/{id}/actions/deactivate|reactivate) -------------------

def _set_active(rq: Rq, action: str, to: str) -> Reply:
    """Glance's image actions: policy deactivate/reactivate = "" in the releases'
    policy.json, so the owner or an admin (another project's image is immutable to it: 403);
    only between `active` and `deactivated` (403 otherwise); 204 with no body."""
    from ..errors import Forbidden
    image = _image(rq)
    if image.owner != rq.auth.project_id and not rq.auth.is_admin:
        raise Forbidden(f"You are not authorized to {action} this image.")
    if image.status not in ("active", "deactivated"):
        raise Forbidden(f"Not allowed to {action} image in status '{image.status}'")
    image.status = to   # the model's handlers run on the event loop: no lock needed
    image.touch()
    return no_content()


def deactivate(rq: Rq) -> Reply:
    return _set_active(rq, "deactivate", "deactivated")


def reactivate(rq: Rq) -> Reply:
    return _set_active(rq, "reactivate", "active")
