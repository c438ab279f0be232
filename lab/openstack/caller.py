"""Who asks a service model: the token's project and user, and whether the admin rule holds.
One type for every service, so Nova can act on Cinder with the caller it was given."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    project_id: str
    user_id: str
    is_admin: bool = False
