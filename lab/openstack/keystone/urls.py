"""Keystone v3's one route table."""
from ..api import Route
from . import assignment_responses as a
from . import catalog_responses as c
from . import responses as r

ACTORS = ("users/{user_id}", "groups/{group_id}")


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
    Route("GET", "/v3/domains", r.list_domains),
    Route("POST", "/v3/domains", r.create_domain),
    Route("GET", "/v3/domains/{domain_id}", r.get_domain),
    Route("PATCH", "/v3/domains/{domain_id}", r.update_domain),
    Route("DELETE", "/v3/domains/{domain_id}", r.delete_domain),
    # projects
    Route("GET", "/v3/projects", r.list_projects),
    Route("POST", "/v3/projects", r.create_project),
    Route("GET", "/v3/projects/{pid}", r.get_project),
    Route("PATCH", "/v3/projects/{pid}", r.update_project),
    Route("DELETE", "/v3/projects/{pid}", r.delete_project),
    # users
    Route("GET", "/v3/users", r.list_users),
    Route("POST", "/v3/users", r.create_user),
    Route("GET", "/v3/users/{user_id}", r.get_user),
    Route("PATCH", "/v3/users/{user_id}", r.update_user),
    Route("DELETE", "/v3/users/{user_id}", r.delete_user),
    Route("GET", "/v3/users/{user_id}/projects", r.user_projects),
    Route("POST", "/v3/users/{user_id}/password", r.change_password),
    # roles and assignments
    Route("GET", "/v3/roles", r.list_roles),
    Route("POST", "/v3/roles", r.create_role),
    Route("GET", "/v3/roles/{role_id}", r.get_role),
    Route("PATCH", "/v3/roles/{role_id}", r.update_role),
    Route("DELETE", "/v3/roles/{role_id}", r.delete_role),
    *_grant_routes("/v3/projects/{pid}"),
    *_grant_routes("/v3/domains/{domain_id}"),
    *_inherited_routes("/v3/OS-INHERIT/domains/{domain_id}", listable=True),
    *_inherited_routes("/v3/OS-INHERIT/projects/{pid}", listable=False),
    Route("GET", "/v3/role_assignments", a.list_role_assignments),
    # groups
    Route("GET", "/v3/groups", a.list_groups),
    Route("POST", "/v3/groups", a.create_group),
    Route("GET", "/v3/groups/{group_id}", a.get_group),
    Route("PATCH", "/v3/groups/{group_id}", a.update_group),
    Route("DELETE", "/v3/groups/{group_id}", a.delete_group),
    Route("GET", "/v3/groups/{group_id}/users", a.group_users),
    Route("PUT", "/v3/groups/{group_id}/users/{user_id}", a.add_member),
    Route("HEAD", "/v3/groups/{group_id}/users/{user_id}", a.check_member),
    Route("DELETE", "/v3/groups/{group_id}/users/{user_id}", a.remove_member),
    Route("GET", "/v3/users/{user_id}/groups", a.user_groups),
    # credentials and OS-EC2
    Route("GET", "/v3/credentials", r.list_credentials),
    Route("POST", "/v3/credentials", r.create_credential),
    Route("GET", "/v3/credentials/{cred_id}", r.get_credential),
    Route("PATCH", "/v3/credentials/{cred_id}", r.update_credential),
    Route("DELETE", "/v3/credentials/{cred_id}", r.delete_credential),
    Route("GET", "/v3/users/{user_id}/credentials/OS-EC2", r.list_ec2),
    Route("POST", "/v3/users/{user_id}/credentials/OS-EC2", r.create_ec2),
    Route("GET", "/v3/users/{user_id}/credentials/OS-EC2/{access}", r.get_ec2),
    Route("DELETE", "/v3/users/{user_id}/credentials/OS-EC2/{access}", r.delete_ec2),
    # catalog administration
    Route("GET", "/v3/regions", c.list_regions),
    Route("POST", "/v3/regions", c.create_region),
    Route("GET", "/v3/regions/{region_id}", c.get_region),
    Route("PUT", "/v3/regions/{region_id}", c.create_region_with_id),
    Route("PATCH", "/v3/regions/{region_id}", c.update_region),
    Route("DELETE", "/v3/regions/{region_id}", c.delete_region),
    Route("GET", "/v3/services", c.list_services),
    Route("POST", "/v3/services", c.create_service),
    Route("GET", "/v3/services/{service_id}", c.get_service),
    Route("PATCH", "/v3/services/{service_id}", c.update_service),
    Route("DELETE", "/v3/services/{service_id}", c.delete_service),
    Route("GET", "/v3/endpoints", c.list_endpoints),
    Route("POST", "/v3/endpoints", c.create_endpoint),
    Route("GET", "/v3/endpoints/{endpoint_id}", c.get_endpoint),
    Route("PATCH", "/v3/endpoints/{endpoint_id}", c.update_endpoint),
    Route("DELETE", "/v3/endpoints/{endpoint_id}", c.delete_endpoint),
    Route("GET", "/v3/OS-EP-FILTER/endpoint_groups", c.list_endpoint_groups),
    Route("POST", "/v3/OS-EP-FILTER/endpoint_groups", c.create_endpoint_group),
    Route("GET", "/v3/OS-EP-FILTER/endpoint_groups/{group_id}", c.get_endpoint_group),
    Route("PATCH", "/v3/OS-EP-FILTER/endpoint_groups/{group_id}", c.update_endpoint_group),
    Route("DELETE", "/v3/OS-EP-FILTER/endpoint_groups/{group_id}", c.delete_endpoint_group),
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
