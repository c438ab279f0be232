"""The lab's LDAP directory: who is in it and how it is written as LDIF.

Layout under the base DN (lab.topology.LDAP_BASE_DN):

    ou=people                       one ou per Vancouver tenant, one user each:
      ou=Vancouver-KU                 uid=vancouver_ku (tenant /root/Vancouver-KU)
      ...
    ou=admins                       uid=vancouver_admin (tenant /root)

Passwords are stored only as salted SHA-1 ({SSHA}), the scheme slapd checks natively.
"""
import base64
import hashlib
import os
from dataclasses import dataclass

from lab import topology

ADMIN_UID = "vancouver_admin"


@dataclass(frozen=True)
class LdapUser:
    uid: str
    dn: str
    tenant: str     # the Datera tenant path this user works in
    password: str   # clear text: goes only into 0600 files of the target dir


def uid_for_tenant(tenant: str) -> str:
    return tenant.lower().replace("-", "_")


def lab_users(passwords: dict[str, str]) -> list[LdapUser]:
    """The directory's users; `passwords` maps every uid to its clear-text password."""
    base = topology.LDAP_BASE_DN
    users = [LdapUser(uid_for_tenant(t), f"uid={uid_for_tenant(t)},ou={t},ou=people,{base}",
                      f"/root/{t}", passwords[uid_for_tenant(t)])
             for t in topology.TENANTS]
    users.append(LdapUser(ADMIN_UID, f"uid={ADMIN_UID},ou=admins,{base}", "/root",
                          passwords[ADMIN_UID]))
    return users


def all_uids() -> list[str]:
    return [uid_for_tenant(t) for t in topology.TENANTS] + [ADMIN_UID]


def ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _entry(dn: str, *attrs: tuple[str, str]) -> str:
    return "\n".join([f"dn: {dn}", *(f"{k}: {v}" for k, v in attrs)]) + "\n"


def ldif(users: list[LdapUser]) -> str:
    base = topology.LDAP_BASE_DN
    dc = base.split(",")[0].split("=")[1]
    entries = [
        _entry(base, ("objectClass", "dcObject"), ("objectClass", "organization"),
               ("dc", dc), ("o", "Vancouver lab")),
        _entry(f"ou=people,{base}", ("objectClass", "organizationalUnit"), ("ou", "people")),
        _entry(f"ou=admins,{base}", ("objectClass", "organizationalUnit"), ("ou", "admins")),
    ]
    entries += [_entry(f"ou={t},ou=people,{base}", ("objectClass", "organizationalUnit"),
                       ("ou", t)) for t in topology.TENANTS]
    entries += [_entry(u.dn, ("objectClass", "inetOrgPerson"), ("uid", u.uid), ("cn", u.uid),
                       ("sn", u.uid), ("userPassword", ssha(u.password))) for u in users]
    return "\n".join(entries)
