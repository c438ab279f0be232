"""Keystone v3's one route table."""
from ..api import Route, collection_routes
from . import assignment_responses as a
from . import catalog_responses as c
from . import responses as r

ACTORS = ("users/{user_id}", "groups/{group_id}")


def _collection(base: str, member: str, handlers, noun: str, **kw) -> list:
    """Keystone's collections: list and create on base; get, PATCH update, delete on members."""
    return collection_routes(base, member, handlers, noun, read="get", update="PATCH", **kw)


def _grant_routes(target: str) -> list[Route]:
    """GET .../roles and PUT/HEAD/DELETE .../roles/{role_id} for users and groups."""
    out = []
    for actor in ACTORS:
        base = f"{target}/{actor}/roles"
        out += [Route("GET", base, a.list_grants),
                Route("PUT", base + "/{role_id}", a.grant_role),
                Route("HEAD", base + "/{role_id}", a.check_grant),
                Route("DELETE", base + "/{role_id}", a.revoke_grant)]
    return out


def _inherited_routes(target: str, listable: bool) -> list[Route]:
    """OS-INHERIT: .../roles/{role_id}/inherited_to_projects (and its list on domains)."""
    out = []
    for actor in ACTORS:
        base = f"{target}/{actor}/roles"
        one = base + "/{role_id}/inherited_to_projects"
        out += [Route("PUT", one, a.grant_role), Route("HEAD", one, a.check_grant),
                Route("DELETE", one, a.revoke_grant)]
        if listable:
            out.append(Route("GET", base + "/inherited_to_projects", a.list_grants))
    return out


ROUTES: list[Route] = [
    # discovery: served without a token (keystoneauth fetches it unauthenticated)
    Route("GET", "/", r.root, public=True),
    Route("GET", "/v3", r.v3, public=True),
    # tokens
    Route("POST", "/v3/auth/tokens", r.issue_token, public=True),
    Route("GET", "/v3/auth/tokens", r.validate_token),
    Route("HEAD", "/v3/auth/tokens", r.check_token),
    Route("DELETE", "/v3/auth/tokens", r.revoke_token),
    Route("GET", "/v3/auth/catalog", r.auth_catalog),
    Route("GET", "/v3/auth/projects", r.auth_projects),
    Route("GET", "/v3/auth/domains", r.auth_domains),
    # domains
    *_collection("/v3/domains", "{domain_id}", r, "domain"),
    # projects
    *_collection("/v3/projects", "{pid}", r, "project"),
    # users
    *_collection("/v3/users", "{user_id}", r, "user"),
    Route("GET", "/v3/users/{user_id}/projects", r.user_projects),
    Route("POST", "/v3/users/{user_id}/password", r.change_password),
    # roles and assignments
    *_collection("/v3/roles", "{role_id}", r, "role"),
    *_grant_routes("/v3/projects/{pid}"),
    *_grant_routes("/v3/domains/{domain_id}"),
    *_inherited_routes("/v3/OS-INHERIT/domains/{domain_id}", listable=True),
    *_inherited_routes("/v3/OS-INHERIT/projects/{pid}", listable=False),
    Route("GET", "/v3/role_assignments", a.list_role_assignments),
    # groups
    *_collection("/v3/groups", "{group_id}", a, "group"),
    Route("GET", "/v3/groups/{group_id}/users", a.group_users),
    Route("PUT", "/v3/groups/{group_id}/users/{user_id}", a.add_member),
    Route("HEAD", "/v3/groups/{group_id}/users/{user_id}", a.check_member),
    Route("DELETE", "/v3/groups/{group_id}/users/{user_id}", a.remove_member),
    Route("GET", "/v3/users/{user_id}/groups", a.user_groups),
    # credentials and OS-EC2
    *_collection("/v3/credentials", "{cred_id}", r, "credential"),
    Route("GET", "/v3/users/{user_id}/credentials/OS-EC2", r.list_ec2),
    Route("POST", "/v3/users/{user_id}/credentials/OS-EC2", r.create_ec2),
    Route("GET", "/v3/users/{user_id}/credentials/OS-EC2/{access}", r.get_ec2),
    Route("DELETE", "/v3/users/{user_id}/credentials/OS-EC2/{access}", r.delete_ec2),
    # catalog administration
    *_collection("/v3/regions", "{region_id}", c, "region"),
    Route("PUT", "/v3/regions/{region_id}", c.create_region_with_id),
    *_collection("/v3/services", "{service_id}", c, "service"),
    *_collection("/v3/endpoints", "{endpoint_id}", c, "endpoint"),
    *_collection("/v3/OS-EP-FILTER/endpoint_groups", "{group_id}", c, "endpoint_group"),
    Route("GET", "/v3/OS-EP-FILTER/endpoint_groups/{group_id}/endpoints", c.group_endpoints),
    Route("PUT", "/v3/OS-EP-FILTER/endpoint_groups/{group_id}/projects/{pid}", c.associate),
    Route("HEAD", "/v3/OS-EP-FILTER/endpoint_groups/{group_id}/projects/{pid}",
          c.check_association),
    Route("DELETE", "/v3/OS-EP-FILTER/endpoint_groups/{group_id}/projects/{pid}", c.dissociate),
    Route("GET", "/v3/OS-EP-FILTER/projects/{pid}/endpoints", c.project_endpoints),
    Route("PUT", "/v3/OS-EP-FILTER/projects/{pid}/endpoints/{endpoint_id}", c.associate),
    Route("HEAD", "/v3/OS-EP-FILTER/projects/{pid}/endpoints/{endpoint_id}", c.check_association),
    Route("DELETE", "/v3/OS-EP-FILTER/projects/{pid}/endpoints/{endpoint_id}", c.dissociate),
]
