"""dfs_sdk 1.2.27, unmodified, made importable on Python 3.11 and safe for tests.

The SDK subclasses collections.Mapping (gone since Python 3.10), so the aliases are restored
before it is imported (reference datera-api §0.1). `connect()` always disables the SDK's log
files (they would hold Auth-Token values), uses a private schema cache, fails fast instead of
retrying for 5 minutes, and gives each API object its own thread_local.
"""
import collections
import collections.abc
import json
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable", "Callable"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import dfs_sdk  # noqa: E402  (after the shim, on purpose)
from dfs_sdk import exceptions as errors  # noqa: E402,F401

_SCHEMA_DIR = Path(tempfile.mkdtemp(prefix="vancouver-dsdk-"))


@dataclass(frozen=True)
class Udc:
    """dfs_sdk's universal config (datera.json) plus where to find the CA."""
    mgmt_ip: str
    username: str
    password: str
    tenant: str
    api_version: str
    ldap: str
    ca_file: str | None = None

    @staticmethod
    def load(path: Path, ca_file: Path | None = None) -> "Udc":
        doc = json.loads(Path(path).read_text())
        return Udc(mgmt_ip=doc["mgmt_ip"], username=doc["username"], password=doc["password"],
                   tenant=doc.get("tenant") or "/root", api_version=str(doc.get("api_version", "2.2")),
                   ldap=doc.get("ldap") or "", ca_file=str(ca_file) if ca_file else None)


def schema_file(tag: str) -> str:
    return str(_SCHEMA_DIR / f"schema-{tag}.json")


def connect(udc: Udc, *, username: str | None = None, password: str | None = None,
            tenant: str | None = None, version: str | None = None, ldap: str | None = None,
            secure: bool = True, **kwargs):
    """get_api() with the test suite's safe settings; https verified against the lab CA."""
    version = version or ("v" + udc.api_version.lstrip("v"))
    opts = dict(disable_log=True, schema_loc=schema_file(version),
                retry_connection_type=None, retry_503_type=None,
                thread_local=threading.local(), secure=secure,
                verify=(udc.ca_file or False) if secure else False)
    ldap = udc.ldap if ldap is None else ldap
    if ldap:
        opts["ldap_server"] = ldap
    opts.update(kwargs)
    return dfs_sdk.get_api(udc.mgmt_ip, username or udc.username, password or udc.password,
                           version, tenant=tenant if tenant is not None else udc.tenant, **opts)
