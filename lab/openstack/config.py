"""One cloud's config file (written by lab/components.py, read by `python -m lab.openstack`).

    {"cloud": "newton", "release": "newton", "address": "127.0.2.1", "data_dir": "...",
     "admin": {"user", "password", "project"}, "tenant": {...},
     "compute_nodes": [{"name", "address"}], "services": {"cinder": {...}}, "region": "RegionOne"}

`services` holds opaque per-service settings (Cinder's backends), checked by the service.
"""
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from lab.config_file import ConfigError, ConfigModel, LoopbackIP, load

from .releases import RELEASES

REGION = "RegionOne"

__all__ = ["CloudConfig", "ComputeNode", "ConfigError", "Credentials", "REGION"]


class Credentials(ConfigModel):
    user: str
    password: str = Field(repr=False)   # never printed
    project: str

    def __init__(self, *args: str, **kw):
        # Also positional, Credentials(user, password, project), as tests and models build it.
        kw.update(zip(("user", "password", "project"), args))
        super().__init__(**kw)


class ComputeNode(ConfigModel):
    name: str
    address: LoopbackIP


class CloudConfig(ConfigModel):
    cloud: str
    release: Literal[RELEASES]      # type: ignore[valid-type]
    address: LoopbackIP
    data_dir: Path
    admin: Credentials
    tenant: Credentials
    compute_nodes: tuple[ComputeNode, ...] = ()
    services: dict[str, Any] = Field(default_factory=dict)
    region: str = REGION

    @staticmethod
    def load(path) -> "CloudConfig":
        """Raises ConfigError: one line naming the file and the key path."""
        return load(path, CloudConfig)
