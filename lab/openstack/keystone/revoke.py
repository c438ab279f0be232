"""Keystone's revocation events: what makes a token that has not expired invalid.

Source: keystone 12.0.0 (Pike) keystone/revoke/core.py (which notifications record an event)
and keystone/models/revoke_model.py (how an event matches a token). An event names some of
user, project, domain, audit id and audit chain id; a token issued at or before the event's
`issued_before` that matches every named field is revoked. Tokens issued later are not, so a
user may log in again right after a password change.

Events Keystone records (and the lab too):
    user disabled, deleted, password changed       user_id
    project disabled or deleted                    project_id
    domain disabled                                domain_id (the user's, the project's or the
                                                   scope's domain)
    DELETE /v3/auth/tokens                         audit_id (that token only, not its re-scopes)
Role removal records no event: roles are computed anew at each validation and a scoped token
whose user has no role left on its scope fails (keystone/token/providers/common.py
_populate_roles).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class RevokeEvent:
    issued_before: float             # epoch seconds: tokens issued later are untouched
    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    audit_id: str | None = None
    audit_chain_id: str | None = None


@dataclass(frozen=True)
class TokenValues:
    """The token fields an event is matched against (revoke_model.build_token_values)."""
    issued_at: float
    user_id: str
    project_id: str | None
    identity_domain_id: str           # the user's domain
    assignment_domain_id: str | None  # the project's domain, or the domain of a domain scope
    audit_id: str
    audit_chain_id: str


def matches(event: RevokeEvent, token: TokenValues) -> bool:
    """revoke_model.matches: every field the event names must match the token."""
    if token.issued_at > event.issued_before:
        return False
    if event.user_id is not None and event.user_id != token.user_id:
        return False
    if event.project_id is not None and event.project_id != token.project_id:
        return False
    if event.domain_id is not None and event.domain_id not in (token.identity_domain_id,
                                                               token.assignment_domain_id):
        return False
    if event.audit_id is not None and event.audit_id != token.audit_id:
        return False
    if event.audit_chain_id is not None and event.audit_chain_id != token.audit_chain_id:
        return False
    return True


class RevocationList:
    """The events of one Keystone, forgotten once no token they could match is still alive."""

    def __init__(self, token_ttl_s: float):
        self.ttl = token_ttl_s
        self.events: list[RevokeEvent] = []

    def add(self, event: RevokeEvent) -> None:
        # A token lives at most ttl seconds, so an event older than that matches nothing alive.
        self.events = [e for e in self.events if e.issued_before > event.issued_before - self.ttl]
        self.events.append(event)

    def is_revoked(self, token: TokenValues) -> bool:
        return any(matches(e, token) for e in self.events)
