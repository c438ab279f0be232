"""The Datera lab process's config file (written by lab/components.py, read by
`python -m lab.datera --config F`): a pydantic model, so a bad file is one line naming the key.

    {"mgmt_ip", "http_port", "https_port", "tls_cert", "tls_key", "vips": [two], "nbd_port",
     "login_port", "data_dir", "sw_version", "admin_user", "admin_password", "session_ttl_s",
     "ldap": {"<remote_server name>": {"url", "base_dn"}},
     "vsphere": {"url", "user", "password", "ca_file"}}   (only when the lab has a vCenter)
"""
from pathlib import Path
from typing import Annotated

from pydantic import Field, PositiveFloat

from lab.config_file import ConfigError, ConfigModel, LoopbackIP, Port, load

__all__ = ["Config", "ConfigError", "LdapServer"]


class LdapServer(ConfigModel):
    url: str
    base_dn: str


class VsphereFabric(ConfigModel):
    """The lab's vCenter simulator, whose fabric endpoint learns the LUNs (fabric.py)."""
    url: str                                   # https://<address>:<port>
    user: str
    password: str = Field(repr=False)
    ca_file: Path | None = None


class Config(ConfigModel):
    """The Datera lab process's config file (written by lab/components.py)."""
    mgmt_ip: LoopbackIP
    http_port: Port
    https_port: Port
    tls_cert: Path
    tls_key: Path
    vips: Annotated[list[LoopbackIP], Field(min_length=2, max_length=2)]
    nbd_port: Port
    login_port: Port
    data_dir: Path
    admin_user: str
    admin_password: str = Field(repr=False)
    sw_version: str = "3.3.5.0"
    session_ttl_s: PositiveFloat = 900.0
    ldap: dict[str, LdapServer] = Field(default_factory=dict)   # remote_server name -> server
    vsphere: VsphereFabric | None = None

    @staticmethod
    def load(path) -> "Config":
        """Raises ConfigError: one line naming the file and the key path."""
        return load(path, Config)
