"""What every Cinder handler shares: the model and caller of a request, link and boolean
parsing, Cinder's list sorting and paging, and an action body's arguments."""
from urllib.parse import urlencode

from ... import errors
from ...api import Rq, paginate
from ..models import Caller, CinderModel, _boolish

SORT_KEYS = ("created_at", "updated_at", "id", "name", "size", "status")


def _model(rq: Rq) -> CinderModel:
    return rq.model


def _caller(rq: Rq) -> Caller:
    return Caller(project_id=rq.auth.project_id, user_id=rq.auth.user_id,
                  is_admin=rq.auth.is_admin)


def _link(rq: Rq, kind: str, obj_id: str) -> list:
    return [{"rel": "self", "href": f"{rq.base_url}/v3/{rq.auth.project_id}/{kind}/{obj_id}"},
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
    elif rq.query.get("sort_key"):
        keys.append((rq.query["sort_key"], rq.query.get("sort_dir", "desc")))
    for key, direction in reversed(keys):
        if key not in SORT_KEYS or direction not in ("asc", "desc"):
            raise errors.BadRequest(f"Invalid input received: Invalid sort key or direction: "
                                    f"{key}:{direction}", kind="InvalidInput")
        items = sorted(items, key=lambda o: (getattr(o, key) is None, getattr(o, key) or ""),
                       reverse=direction == "desc")
    return items


def _page(rq: Rq, items: list, kind: str) -> tuple[list, list | None]:
    try:
        page, more = paginate(items, rq.query)
    except LookupError:
        raise errors.NotFound(f"Marker {rq.query.get('marker')} could not be found.",
                              kind="MarkerNotFound") from None
    links = None
    if more and page:
        params = [(k, v) for k, v in rq.query.items() if k != "marker"]
        params.append(("marker", page[-1].id))
        links = [{"rel": "next", "href": f"{rq.base_url}/v3/{rq.auth.project_id}/{kind}?"
                                         + urlencode(params)}]
    return page, links


def _action_args(body, name: str) -> dict:
    args = body.get(name)
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise errors.BadRequest(f"Malformed request body: {name} must be an object")
    return args
