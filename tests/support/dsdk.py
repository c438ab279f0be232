"""dfs_sdk 1.2.27, unmodified, for the project's tests: the target's UDC file and a connect()
with safe settings.

dfs_sdk comes through clients.dfs_compat (the one copy of its Python 3.11 shim). `connect()`
always disables the SDK's log files (they would hold Auth-Token values), uses a private
schema cache per API version, fails fast instead of retrying for 5 minutes, and gives each
API object its own thread_local (clients.dfs_compat.safe_options).
"""
import json
from dataclasses import dataclass
from pathlib import Path

from clients import scratch
from clients.dfs_compat import dexc as errors  # noqa: F401  (re-exported for the tests)
from clients.dfs_compat import dfs_sdk, safe_options

# A fresh cache per test process: a schema cached by an earlier run (of an older lab) would
# stick (reference datera-api §0.4).
_SCHEMA_DIR = scratch.make_dir("dsdk")    # removed when the test process exits


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
    """This process's private schema cache for `tag` (an API version such as "v2.2")."""
    return str(_SCHEMA_DIR / f"schema-{tag}.json")


def connect(udc: Udc, *, username: str | None = None, password: str | None = None,
            tenant: str | None = None, version: str | None = None, ldap: str | None = None,
            secure: bool = True, **kwargs):
    """get_api() with the test suite's safe settings; https verified against the lab CA."""
    version = version or ("v" + udc.api_version.lstrip("v"))
    opts = dict(safe_options(schema_file(version)), secure=secure,
                verify=(udc.ca_file or False) if secure else False)
    ldap = udc.ldap if ldap is None else ldap
    if ldap:
        opts["ldap_server"] = ldap
    opts.update(kwargs)
    return dfs_sdk.get_api(udc.mgmt_ip, username or udc.username, password or udc.password,
                           version, tenant=tenant if tenant is not None else udc.tenant, **opts)
