"""Keystone's credentials (/v3/credentials) and the OS-EC2 view of them
(/v3/users/{user_id}/credentials/OS-EC2), state only.

Source: keystone 12.0.0 (Pike) keystone/credential/{schema,controllers,core}.py and
keystone/contrib/ec2/controllers.py (Ec2ControllerV3):
- a credential is {id, user_id, project_id, type, blob (a string)}; create needs blob, type
  and user_id; type "ec2" needs a project_id and a JSON blob with "access", and its id is
  sha256(access) so the EC2 API finds it by access key;
- OS-EC2 create makes access and secret (uuid4 hex each) for a user on a project the user
  exists in; the credential is stored as type "ec2" with blob {"access", "secret", "trust_id"};
- deleting a user or a project deletes its credentials.
"""
import hashlib
import json
import uuid
from dataclasses import dataclass

from lab.http.body import BodyError, loads

from ..errors import BadRequest, NotFound


@dataclass
class Credential:
    id: str
    user_id: str
    project_id: str | None
    type: str
    blob: str

    def ec2(self) -> dict:
        """The blob of an "ec2" credential as a dict (access, secret, trust_id)."""
        try:
            data = loads(self.blob)
        except BodyError:   # deep nesting included
            data = {}
        return data if isinstance(data, dict) else {}


def ec2_id(access: str) -> str:
    return hashlib.sha256(access.encode()).hexdigest()


class CredentialMixin:
    """Credential behaviour of IdentityModel; needs get_user() and get_project()."""

    def _init_credentials(self) -> None:
        self.credentials: dict[str, Credential] = {}

    def get_credential(self, credential_id: str) -> Credential:
        try:
            return self.credentials[credential_id]
        except KeyError:
            raise NotFound(f"Could not find credential: {credential_id}.",
                           kind="CredentialNotFound") from None

    def create_credential(self, body: dict) -> Credential:
        for key in ("blob", "type", "user_id"):
            if key not in body:
                raise BadRequest(f"'{key}' is a required property", kind="ValidationError")
            if not isinstance(body[key], str):
                raise BadRequest(f"Invalid input for field '{key}': {body[key]!r} is not of "
                                 "type 'string'", kind="ValidationError")
        project_id = body.get("project_id")
        if body["type"] == "ec2":
            if not project_id:
                raise BadRequest("Invalid blob in credential: Missing project_id",
                                 kind="ValidationError")
            access = Credential("", "", None, "ec2", body["blob"]).ec2().get("access")
            if not access:
                raise BadRequest("Invalid blob in credential: Missing access",
                                 kind="ValidationError")
            cred_id = ec2_id(access)
        else:
            cred_id = uuid.uuid4().hex
        c = Credential(cred_id, body["user_id"], project_id, body["type"], body["blob"])
        self.credentials[c.id] = c
        return c

    def update_credential(self, credential_id: str, body: dict) -> Credential:
        c = self.get_credential(credential_id)
        for key in ("user_id", "project_id", "type", "blob"):
            if key in body:
                setattr(c, key, body[key])
        return c

    def delete_credential(self, credential_id: str) -> None:
        self.get_credential(credential_id)
        del self.credentials[credential_id]

    def list_credentials(self, user_id: str | None = None, type_: str | None = None):
        return [c for c in self.credentials.values()
                if (user_id is None or c.user_id == user_id)
                and (type_ is None or c.type == type_)]

    def drop_credentials(self, *, user_id: str | None = None, project_id: str | None = None):
        self.credentials = {k: c for k, c in self.credentials.items()
                            if not ((user_id and c.user_id == user_id)
                                    or (project_id and c.project_id == project_id))}

    # -- OS-EC2 --------------------------------------------------------------------------

    def create_ec2(self, user_id: str, project_id) -> Credential:
        self.get_user(user_id)
        if not isinstance(project_id, str) or not project_id:
            raise BadRequest("Expecting to find tenant_id in request body.",
                             kind="ValidationError")
        self.get_project(project_id)
        access = uuid.uuid4().hex
        blob = json.dumps({"access": access, "secret": uuid.uuid4().hex, "trust_id": None})
        c = Credential(ec2_id(access), user_id, project_id, "ec2", blob)
        self.credentials[c.id] = c
        return c

    def get_ec2(self, user_id: str, access: str) -> Credential:
        self.get_user(user_id)
        c = self.credentials.get(ec2_id(access))
        if c is None or c.type != "ec2" or c.user_id != user_id:
            raise NotFound(f"Could not find credential: {ec2_id(access)}.",
                           kind="CredentialNotFound")
        return c

    def delete_ec2(self, user_id: str, access: str) -> None:
        del self.credentials[self.get_ec2(user_id, access).id]
