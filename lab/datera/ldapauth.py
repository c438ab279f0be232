"""Directory logins (`remote_server` in PUT /login), checked against the lab's slapd by ldap3.

Directory layout: tenant users at uid=<user>,ou=<tenant name>,ou=people,<base_dn> and
administrators at uid=<user>,ou=admins[,ou=people],<base_dn>. Anonymous search may read `uid`
(never `userPassword`): find the user's DN by uid, then bind as that DN with the password.
ldap3 is synchronous, so each login runs in a worker thread and the event loop keeps serving.
"""
import asyncio
import logging
from dataclasses import dataclass

from .models import AuthFailed

log = logging.getLogger("lab.datera.ldap")
ADMINS_OU = "admins"
TIMEOUT_S = 3


@dataclass(frozen=True)
class Identity:
    user_id: str
    tenant: str | None    # the tenant's name (its ou); None for an administrator


class Directory:
    """The remote servers the cluster knows: {name: {"url": ..., "base_dn": ...}}."""

    def __init__(self, servers: dict):
        self.servers = dict(servers or {})

    async def authenticate(self, server_name: str, user: str, password: str) -> Identity:
        cfg = self.servers.get(server_name)
        if cfg is None:
            raise AuthFailed(f"Unknown remote_server {server_name!r}")
        if not password:
            raise AuthFailed("Invalid credentials")   # an empty password would bind anonymously
        return await asyncio.to_thread(self._check, server_name, cfg["url"], cfg["base_dn"],
                                       user, password)

    @staticmethod
    def _check(server_name: str, url: str, base_dn: str, user: str, password: str) -> Identity:
        # ldap3 takes ~80 ms to import: loaded by the first directory login, off the boot path.
        import ldap3
        from ldap3.core import exceptions as lx
        from ldap3.utils.conv import escape_filter_chars

        server = ldap3.Server(url, connect_timeout=TIMEOUT_S, get_info=ldap3.NONE)
        try:
            with ldap3.Connection(server, auto_bind=True, receive_timeout=TIMEOUT_S,
                                  read_only=True) as anon:
                anon.search(base_dn, f"(uid={escape_filter_chars(user)})",
                            search_scope=ldap3.SUBTREE, attributes=["uid"], size_limit=2)
                dns = [e.entry_dn for e in anon.entries]
            if len(dns) != 1:
                log.info("directory login refused: user %r not found in %s", user, server_name)
                raise AuthFailed("Invalid credentials")
            dn = dns[0]
            conn = ldap3.Connection(server, user=dn, password=password, receive_timeout=TIMEOUT_S,
                                    read_only=True)
            try:
                bound = conn.bind()
            finally:
                conn.unbind()
            if not bound:
                log.info("directory login refused: wrong password for %r", user)
                raise AuthFailed("Invalid credentials")
        except AuthFailed:
            raise
        except (lx.LDAPSocketOpenError, lx.LDAPSocketReceiveError, lx.LDAPSessionTerminatedByServerError,
                lx.LDAPCommunicationError) as e:
            log.warning("directory %s at %s unreachable: %s", server_name, url, type(e).__name__)
            raise AuthFailed(f"Remote server {server_name} ({url}) is unreachable") from None
        except lx.LDAPException as e:
            log.warning("directory %s at %s failed: %s", server_name, url, type(e).__name__)
            raise AuthFailed(f"Remote server {server_name} ({url}) refused the lookup") from None
        return Identity(user_id=user, tenant=_tenant_of(dn))


def _tenant_of(dn: str) -> str | None:
    """uid=u,ou=Vancouver-KU,ou=people,... -> 'Vancouver-KU'; ou=admins -> None."""
    from ldap3.utils.dn import parse_dn

    ous = [value for attr, value, _ in parse_dn(dn) if attr.lower() == "ou"]
    if ous and ous[0] == ADMINS_OU:
        return None
    if len(ous) == 2 and ous[1].lower() == "people":
        return ous[0]
    raise AuthFailed("Directory entry is neither a tenant user nor an administrator")
