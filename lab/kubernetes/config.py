"""The config file `python -m lab.kubernetes` reads (written by lab/components.py).

Shape (JSON): address, apiserver_port, etcd_port, etcd_peer_port, kubelet_port, bin_dir, work_dir,
token_file, kubeconfig, tls_cert, tls_key, ca_file, sa_key, sa_pub, node_name, driver,
datera {mgmt_ip, http_port, username, password, tenant}.
"""
import json
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """A one-line reason the config cannot be used."""


@dataclass(frozen=True)
class DateraAccess:
    mgmt_ip: str
    http_port: int
    username: str
    password: str
    tenant: str          # the driver's DAT_TENANT, e.g. /root/Vancouver-KU

    def __repr__(self) -> str:   # never print the password
        return f"DateraAccess({self.username}@{self.mgmt_ip}:{self.http_port} {self.tenant})"


@dataclass(frozen=True)
class Config:
    address: str
    apiserver_port: int
    etcd_port: int
    etcd_peer_port: int
    kubelet_port: int
    bin_dir: Path
    work_dir: Path
    token_file: Path
    kubeconfig: Path
    tls_cert: Path
    tls_key: Path
    ca_file: Path
    sa_key: Path
    sa_pub: Path
    node_name: str
    driver: str
    datera: DateraAccess

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.apiserver_port}"

    @classmethod
    def load(cls, path: str) -> "Config":
        try:
            doc = json.loads(Path(path).read_text())
            paths = {k: Path(doc[k]) for k in ("bin_dir", "work_dir", "token_file", "kubeconfig",
                                                "tls_cert", "tls_key", "ca_file", "sa_key",
                                                "sa_pub")}
            return cls(address=doc["address"], apiserver_port=int(doc["apiserver_port"]),
                       etcd_port=int(doc["etcd_port"]), etcd_peer_port=int(doc["etcd_peer_port"]),
                       kubelet_port=int(doc["kubelet_port"]),
                       node_name=doc["node_name"], driver=doc["driver"],
                       datera=DateraAccess(**doc["datera"]), **paths)
        except OSError as e:
            raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}: bad config ({type(e).__name__}: {e})") from None
