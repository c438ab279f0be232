"""The Datera lab process: the REST API (http and https on MGT1) and the data plane (on both
VIPs), on one asyncio loop, sharing one model.
Its config file: config.py.
"""
import asyncio
import logging
import math
import os
import shutil
import signal
import ssl
import time
from pathlib import Path

from aiohttp import web

from . import api, responses, urls
from .config import Config, ConfigError
from .ldapauth import Directory
from .metrics import Metrics
from .models import DateraModel, ModelConfig
from .models.durable import DurableState
from .models.events import SYSTEM
from lab.http import serve_rejects
from lab.store import Store

log = logging.getLogger("lab.datera")

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


def _record_restart(model: DateraModel) -> None:
    """A restart by the lab's supervisor (lab/restart.py) is a system event, as a real node's
    reboot is one in the DSP's event log: GET /events/system shows it to the admin."""
    count = os.environ.get("VANCOUVER_LAB_RESTART")
    if not count:
        return
    why = os.environ.get("VANCOUVER_LAB_LAST_EXIT") or "unknown reason"
    ev = model.events.record(SYSTEM, "node_restarted",
                             f"storage node {model.config.mgmt_ip} restarted by the lab "
                             f"supervisor (restart {count}; the previous process: {why})",
                             tenant="/root", severity="warning")
    log.warning("%s", ev.message)


async def _sync_now_and_then(durable: DurableState, every_s: float = 1.0,
                             full_every: int = 60) -> None:
    """Writes changes no API request made (the data plane's login events) within a second;
    request-made changes are written before their answer (api.persist). Once a minute every
    object is compared, so a write whose own sync failed (a full disk) is caught up."""
    rounds = 0
    while True:
        await asyncio.sleep(every_s)
        rounds += 1
        try:   # the data plane never alters an app instance: [] skips comparing them
            durable.sync(touched=None if rounds % full_every == 0 else [])
        except Exception:   # logged, retried next round; requests fail 500 meanwhile
            log.exception("store sync failed")


def build_app(services: responses.Services) -> web.Application:
    """The REST API app: services.routes under each version prefix, /api_versions outside."""
    return api.build_app(services, urls.UNVERSIONED)


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
    durable = None
    store = Store.open(config.data_dir / "datera.db")
    if store is not None:
        durable = DurableState(model, store)
        restored = durable.load()   # before any listener: no request sees a half-loaded model
        log.info("store %s: %d app instance(s) restored", store.path, restored)
    _record_restart(model)   # after the restore: the event joins the restored log
    cpu = CpuSampler()
    ldap = {name: server.model_dump() for name, server in config.ldap.items()}
    services = responses.Services(model=model, metrics=metrics, directory=Directory(ldap),
                                  cpu=cpu, routes=urls.ROUTES, durable=durable)
    app = build_app(services)
    fabric = None
    if config.vsphere is not None:
        from .fabric import Fabric
        fabric = Fabric(model, url=config.vsphere.url, user=config.vsphere.user,
                        password=config.vsphere.password,
                        ca_file=str(config.vsphere.ca_file) if config.vsphere.ca_file else None,
                        iscsi_port=config.login_port)
        app.on_response_prepare.append(fabric.on_response_prepare)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    serve_rejects(runner, api.render_rejected)
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
    if durable is not None:
        tasks.append(asyncio.create_task(_sync_now_and_then(durable), name="store-sync"))
    try:
        if dataplane is not None:
            dataplane.bind(model)
            await dataplane.start()
        else:
            tasks.append(asyncio.create_task(metrics.run(), name="metrics-roll"))
        if fabric is not None:
            await fabric.start()
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
        if fabric is not None:
            await fabric.stop()
        if dataplane is not None:
            await dataplane.stop()
        if durable is not None:
            durable.sync()
            store.close()
