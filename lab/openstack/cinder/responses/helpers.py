"""What every Cinder handler shares: the model and caller of a request, link and boolean
parsing, Cinder's list sorting and paging, and an action body's arguments."""
from urllib.parse import urlencode

from ... import errors
from ...api import Rq, paginate
from ..models import Caller, CinderModel, _boolish

# Sort keys Cinder's DB layer accepts (model columns; `name`/`description` are the API's
# words for display_name/display_description), mapped to the lab records' attributes.
SORT_KEYS = {"created_at": "created_at", "updated_at": "updated_at", "id": "id",
             "name": "name", "display_name": "name", "description": "description",
             "display_description": "description", "size": "size", "status": "status",
             "availability_zone": "availability_zone", "project_id": "project_id",
             "user_id": "user_id", "volume_id": "volume_id", "bootable": "bootable",
             "host": "host"}


def _model(rq: Rq) -> CinderModel:
    return rq.model


def _caller(rq: Rq) -> Caller:
    return Caller(project_id=rq.auth.project_id, user_id=rq.auth.user_id,
                  is_admin=rq.auth.is_admin)


def _api(rq: Rq) -> str:
    """The API version segment the request used: "v3" or "v2"."""
    return "v2" if rq.path.startswith("/v2/") else "v3"


def _link(rq: Rq, kind: str, obj_id: str) -> list:
    return [{"rel": "self",
             "href": f"{rq.base_url}/{_api(rq)}/{rq.auth.project_id}/{kind}/{obj_id}"},
            {"rel": "bookmark", "href": f"{rq.base_url}/{rq.auth.project_id}/{kind}/{obj_id}"}]


def _flag(query, name: str) -> bool:
    value = query.get(name)
    return value is not None and _boolish(value, name)


def _sorted(rq: Rq, items: list) -> list:
    """Cinder's sort=key:dir,... (or sort_key/sort_dir); created_at desc by default."""
    keys = []
    if rq.query.get("sort"):
        for part in rq.query["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            keys.append((key, direction or "desc"))
    elif rq.query.get("sort_key"):   # sort_key=a,b&sort_dir=asc,desc (dirs default desc)
        dirs = rq.query.get("sort_dir", "").split(",")
        for i, key in enumerate(rq.query["sort_key"].split(",")):
            keys.append((key.strip(), (dirs[i] if i < len(dirs) else "").strip() or "desc"))
    if not keys:
        keys = [("created_at", "desc"), ("id", "desc")]
    for key, direction in reversed(keys):
        attr = SORT_KEYS.get(key)
        if attr is None or direction not in ("asc", "desc") or \
                any(not hasattr(o, attr) for o in items):
            raise errors.BadRequest(f"Invalid input received: Invalid sort key or direction: "
                                    f"{key}:{direction}", kind="InvalidInput")
        items = sorted(items, key=lambda o, a=attr: (getattr(o, a) is None, getattr(o, a) or ""),
                       reverse=direction == "desc")
    return items


def _page(rq: Rq, items: list, kind: str) -> tuple[list, list | None]:
    try:
        page, more = paginate(items, rq.query, full_page_has_more=True, offset=True)
    except LookupError:
        raise errors.NotFound(f"Marker {rq.query.get('marker')} could not be found.",
                              kind="MarkerNotFound") from None
    links = None
    if more and page:
        params = [(k, v) for k, v in rq.query.items() if k != "marker"]
        params.append(("marker", page[-1].id))
        links = [{"rel": "next", "href": f"{rq.base_url}/{_api(rq)}/{rq.auth.project_id}/{kind}?"
                                         + urlencode(params)}]
    return page, links


def _action_args(body, name: str) -> dict:
    args = body.get(name)
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise errors.BadRequest(f"Malformed request body: {name} must be an object")
    return args
