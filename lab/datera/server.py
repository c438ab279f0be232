"""The Datera lab process: the REST API (http and https on MGT1) and the data plane (on both
VIPs), on one asyncio loop, sharing one model.

Config JSON keys: mgmt_ip, http_port, https_port, tls_cert, tls_key, vips (two), nbd_port,
login_port, data_dir, sw_version, admin_user, admin_password, session_ttl_s, ldap
({"<remote_server name>": {"url", "base_dn"}}).
"""
import asyncio
import ipaddress
import json
import logging
import math
import shutil
import signal
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from . import responses, urls
from .ldapauth import Directory
from .metrics import Metrics
from .models import DateraModel, ModelConfig

log = logging.getLogger("lab.datera")

REQUIRED = ("mgmt_ip", "http_port", "https_port", "tls_cert", "tls_key", "vips", "nbd_port",
            "login_port", "data_dir", "admin_user", "admin_password")


class ConfigError(Exception):
    """A one-line reason the config cannot be used."""


@dataclass(frozen=True)
class Config:
    mgmt_ip: str
    http_port: int
    https_port: int
    tls_cert: Path
    tls_key: Path
    vips: list
    nbd_port: int
    login_port: int
    data_dir: Path
    admin_user: str
    admin_password: str
    sw_version: str = "3.3.5.0"
    session_ttl_s: float = 900.0
    ldap: dict | None = None

    @staticmethod
    def load(path: Path) -> "Config":
        try:
            doc = json.loads(Path(path).read_text())
        except OSError as e:
            raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
        except ValueError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        missing = [k for k in REQUIRED if k not in doc]
        if missing:
            raise ConfigError(f"{path}: missing key '{missing[0]}'")
        unknown = sorted(set(doc) - set(Config.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"{path}: unknown key '{unknown[0]}'")
        vips = doc["vips"]
        if not isinstance(vips, list) or len(vips) != 2:
            raise ConfigError(f"{path}: vips must list exactly two addresses")
        for key, value in [("mgmt_ip", doc["mgmt_ip"])] + [(f"vips[{i}]", x) for i, x in enumerate(vips)]:
            _check_loopback(path, key, value)
        for key in ("http_port", "https_port", "nbd_port", "login_port"):
            if not isinstance(doc[key], int) or not 1 <= doc[key] <= 65535:
                raise ConfigError(f"{path}: {key} must be a port number")
        ttl = doc.get("session_ttl_s", 900)
        if not isinstance(ttl, (int, float)) or ttl <= 0:
            raise ConfigError(f"{path}: session_ttl_s must be a positive number of seconds")
        ldap = doc.get("ldap") or {}
        for name, spec in ldap.items():
            if not isinstance(spec, dict) or not {"url", "base_dn"} <= set(spec):
                raise ConfigError(f"{path}: ldap.{name} needs url and base_dn")
        return Config(mgmt_ip=doc["mgmt_ip"], http_port=doc["http_port"],
                      https_port=doc["https_port"], tls_cert=Path(doc["tls_cert"]),
                      tls_key=Path(doc["tls_key"]), vips=list(doc["vips"]),
                      nbd_port=doc["nbd_port"], login_port=doc["login_port"],
                      data_dir=Path(doc["data_dir"]), admin_user=doc["admin_user"],
                      admin_password=doc["admin_password"],
                      sw_version=doc.get("sw_version", "3.3.5.0"), session_ttl_s=float(ttl),
                      ldap=ldap)


def _check_loopback(path, key: str, value) -> None:
    try:
        ok = ipaddress.IPv4Address(value).is_loopback
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: {key} {value!r} is not an IPv4 address") from None
    if not ok:
        raise ConfigError(f"{path}: {key} {value} is not in 127.0.0.0/8 (the lab binds to loopback only)")


class CpuSampler:
    """CPU usage of this process (the lab's one storage node), in percent, once a second,
    kept for 20 minutes: what /metrics/hw/cpu_usage serves."""

    def __init__(self, history_seconds: int = 1200):
        self._points: list[dict] = []
        self._n = history_seconds

    async def run(self) -> None:
        last_cpu, last_wall = time.process_time(), time.monotonic()
        while True:
            now = time.time()
            await asyncio.sleep(math.floor(now) + 1.0 - now)
            cpu, wall = time.process_time(), time.monotonic()
            usage = 100.0 * (cpu - last_cpu) / max(wall - last_wall, 1e-6)
            last_cpu, last_wall = cpu, wall
            self._points.append({"time": int(time.time()) - 1, "value": round(usage, 2)})
            del self._points[:-self._n]

    def series(self, since: float | None, until: float | None) -> list[dict]:
        return [p for p in self._points if (since is None or p["time"] >= since)
                and (until is None or p["time"] <= until)]

    def latest(self) -> dict:
        return self._points[-1] if self._points else {"time": int(time.time()), "value": 0.0}


def build_app(services: responses.Services) -> web.Application:
    app = web.Application(client_max_size=4 << 20)
    handler = responses.make_handler(services)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def _capacity(data_dir: Path):
    def capacity() -> tuple[int, int]:
        usage = shutil.disk_usage(data_dir)
        return usage.total, usage.free
    return capacity


async def serve(config: Config, *, with_data_plane: bool = True) -> None:
    """Runs until SIGTERM or SIGINT; then closes every listener and connection."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    dataplane = None
    if with_data_plane:
        from .dataplane import DataPlane
        dataplane = DataPlane(data_dir=config.data_dir, metrics=metrics, vips=config.vips,
                              nbd_port=config.nbd_port, login_port=config.login_port)
    model = DateraModel(ModelConfig(vips=config.vips, mgmt_ip=config.mgmt_ip,
                                    admin_user=config.admin_user,
                                    admin_password=config.admin_password,
                                    sw_version=config.sw_version,
                                    session_ttl_s=config.session_ttl_s,
                                    capacity=_capacity(config.data_dir)), hooks=dataplane)
    cpu = CpuSampler()
    services = responses.Services(model=model, metrics=metrics, directory=Directory(config.ldap),
                                  cpu=cpu, routes=urls.ROUTES)
    app = build_app(services)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        tls.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"tls_cert/tls_key: cannot load ({e})") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(cpu.run(), name="cpu-sampler")]
    try:
        if dataplane is not None:
            dataplane.bind(model)
            await dataplane.start()
        else:
            tasks.append(asyncio.create_task(metrics.run(), name="metrics-roll"))
        for port, ctx in ((config.http_port, None), (config.https_port, tls)):
            site = web.TCPSite(runner, config.mgmt_ip, port, ssl_context=ctx,
                               reuse_address=True, shutdown_timeout=2)
            await site.start()
        log.info("Datera lab API on http://%s:%d and https://%s:%d (sw_version %s)",
                 config.mgmt_ip, config.http_port, config.mgmt_ip, config.https_port,
                 config.sw_version)
        await stop.wait()
        log.info("stopping")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        if dataplane is not None:
            await dataplane.stop()
