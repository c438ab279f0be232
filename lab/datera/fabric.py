"""The Datera lab's side of the iSCSI fabric the lab's vCenter sees (DESIGN §3.4).

A real ESXi host discovers a Datera LUN by logging in to the storage instance's target on
its portals; the lab's vCenter simulator cannot reach the lab's data plane, so this module
tells it which LUNs exist and who may see them: the simulator's fabric endpoint (reference
vsphere.md §3.2.1) holds that table, and its RescanAllHba applies it (portal, ACL and CHAP
checked there, as a target would).

    PUT    <url>/datera/luns          {naa, capacity_bytes, vendor, model, target_iqn,
                                       portals ["ip:port"], lun_id, initiators [IQNs],
                                       chap_user, chap_secret}      (upsert by naa)
    DELETE <url>/datera/luns?naa=<naa>
    GET    <url>/datera/luns          the table (never chap_secret)
    HTTP basic auth with the vCenter's user/password.

The table is a pure function of the model (`desired_luns`): after every change the REST API
answered with success, `Fabric.sync` diffs it against what was pushed and sends only the
difference, in order, from one background task; every `resync_s` it also reads the remote
table and repairs it (a restarted simulator, a push that failed). A push that fails is logged
and never fails the Datera API call that caused it.

LUN identity as Datera presents it (reference vsphere.md §5): NAA `6001405` (the LIO OUI) +
25 hex digits of the volume uuid, vendor DATERA, model IBLOCK, the target on both VIPs' iSCSI
ports, LUN ids in the storage instance's volume order. An ACL with no initiator (deny_all)
means no host sees the LUN: such a storage instance is not on the fabric at all (the
endpoint reads an empty initiator list as "any").
"""
from __future__ import annotations

import asyncio
import logging
import ssl

import aiohttp

from clients.naa import naa_for

log = logging.getLogger("lab.datera.fabric")

VENDOR = "DATERA"
MODEL = "IBLOCK"
ISCSI_PORT = 3260


def _allowed_initiators(model, si) -> list[str] | None:
    """The IQNs the storage instance's ACL lets in (groups expanded); [] for allow_all (any);
    None when nobody may log in."""
    if si.access_control_mode == "allow_all":
        return []
    iqns = [iqn for _, iqn in si.acl.initiators]
    for tenant, name in si.acl.initiator_groups:
        grp = model._groups.get(tenant, {}).get(name)
        if grp is not None:
            iqns += [iqn for _, iqn in grp.members]
    iqns = sorted(set(iqns))
    return iqns or None


def desired_luns(model, iscsi_port: int = ISCSI_PORT) -> dict[str, dict]:
    """naa -> the fabric entry of every LUN some host may see now: online storage instances
    with someone in their ACL. CHAP is the target's (1-way; mchap's target side alike)."""
    out: dict[str, dict] = {}
    portals = [f"{vip}:{iscsi_port}" for vip in model.vips]
    for iqn, si in model._targets.items():
        if not si.online:
            continue
        initiators = _allowed_initiators(model, si)
        if initiators is None:
            continue
        chap = si.auth.type in ("chap", "mchap")
        for lun_id, vol in enumerate(si.volumes.values()):
            naa = naa_for(vol.uuid)
            out[naa] = {"naa": naa, "capacity_bytes": vol.handle().size_bytes,
                        "vendor": VENDOR, "model": MODEL, "target_iqn": iqn,
                        "portals": list(portals), "lun_id": lun_id,
                        "initiators": initiators,
                        "chap_user": si.auth.target_user_name if chap else "",
                        "chap_secret": si.auth.target_pswd if chap else ""}
    return out


class Fabric:
    """Pushes `desired_luns(model)` to the vCenter simulator's fabric endpoint.

    url: the simulator's base URL (https://host:port); user/password: its login;
    ca_file: the lab CA that signed its certificate (None: system trust)."""

    def __init__(self, model, *, url: str, user: str, password: str, ca_file: str | None,
                 iscsi_port: int = ISCSI_PORT, resync_s: float = 5.0, timeout_s: float = 5.0):
        self.model = model
        self.url = url.rstrip("/") + "/datera/luns"
        self._auth = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self._https = url.startswith("https")
        self._ca_file = ca_file
        self._ssl_ctx: ssl.SSLContext | None = None
        self.iscsi_port = iscsi_port
        self.resync_s = resync_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.pushed: dict[str, dict] = {}      # what the endpoint holds, as far as we know
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self.failures = 0

    # -- wiring ------------------------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(headers=self._auth, timeout=self.timeout)
        self._task = asyncio.create_task(self._run(), name="datera-fabric")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def on_response_prepare(self, request, response) -> None:
        """aiohttp signal: a change the API accepted may change the fabric."""
        if request.method not in ("GET", "HEAD", "OPTIONS") and response.status < 400:
            self.sync()

    def sync(self) -> None:
        """Schedules a push of the difference (cheap: the diff runs in the background task)."""
        self._wake.set()

    @property
    def _ssl(self):
        """The TLS context, made on first use: the vCenter's CA file is written when its
        component is prepared, which may be after this process started."""
        if not self._https:
            return None
        if self._ssl_ctx is None:
            self._ssl_ctx = ssl.create_default_context(cafile=self._ca_file)
        return self._ssl_ctx

    # -- the background task -----------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_resync = 0.0
        while True:
            delay = next_resync - loop.time()
            if delay > 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the result
                # when a cancel lands as the wake-up does (CPython gh-86296), and stop() waits
                # forever for a task that never saw its cancel.
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            try:
                if loop.time() >= next_resync:
                    await self._read_remote()
                    next_resync = loop.time() + self.resync_s
                await self._push(desired_luns(self.model, self.iscsi_port))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
                self.failures += 1
                # the next resync repairs what this push missed
                next_resync = loop.time() + self.resync_s
                log.warning("fabric push to %s failed: %s", self.url,
                            str(e).splitlines()[0] if str(e) else type(e).__name__)

    async def _read_remote(self) -> None:
        """What the endpoint really holds (a restarted simulator holds nothing). chap_secret is
        never listed, so an entry that matches except for it is trusted as pushed."""
        async with self._session.get(self.url, ssl=self._ssl) as resp:
            resp.raise_for_status()
            body = await resp.json(content_type=None)
        rows = body.get("luns", body) if isinstance(body, dict) else body
        remote = {r["naa"]: r for r in rows or [] if isinstance(r, dict) and "naa" in r}
        self.pushed = {naa: entry for naa, entry in self.pushed.items()
                       if naa in remote and _same_listed(entry, remote[naa])}
        for naa in remote:
            if naa not in self.pushed:
                self.pushed[naa] = {"naa": naa, "stale": True}   # withdrawn by the next push

    async def _push(self, want: dict[str, dict]) -> None:
        for naa in [n for n in self.pushed if n not in want]:
            async with self._session.delete(self.url, params={"naa": naa}, ssl=self._ssl) as resp:
                if resp.status not in (200, 204, 404):
                    resp.raise_for_status()
            del self.pushed[naa]
            log.info("fabric: withdrew %s", naa)
        for naa, entry in want.items():
            if self.pushed.get(naa) == entry:
                continue
            async with self._session.put(self.url, json=entry, ssl=self._ssl) as resp:
                resp.raise_for_status()
            self.pushed[naa] = entry
            log.info("fabric: presented %s (%s lun %d)", naa, entry["target_iqn"], entry["lun_id"])


def _same_listed(pushed: dict, listed: dict) -> bool:
    return all(listed.get(k) == v for k, v in pushed.items() if k != "chap_secret" and k in listed)
