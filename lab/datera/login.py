"""The Datera lab's initiator login: the lab's stand-in for an iSCSI login.

A host must log in to a storage instance's target before it may open one of its volumes over
NBD; the login tells it the NBD export names to open. The service listens on every access VIP
(VIP1 and VIP2) on TCP port 3260 (`topology.DATERA_LOGIN_PORT`).

Wire format: one JSON object per line (UTF-8, terminated by "\\n", at most 64 KiB), in both
directions. One connection may carry several logins, one after another; the server closes a
connection idle for 30 s, and after any malformed line (not JSON, nested too deeply, not an
object, over 64 KiB), which first gets a refusal (2c below).

1. The client sends
       {"op": "login", "initiator": "<initiator IQN>", "target": "<target IQN>"}
   The target IQN is the storage instance's `access.iqn`; the portal is the VIP the client
   connected to, which must be one of the storage instance's `access.ips`.
2. The server answers one of
   a. success, when the target's auth type is "none":
       {"ok": true, "nbd_port": 10809,
        "luns": [{"lun": 0, "export": "<export name>", "size": <bytes>}, ...]}
      one entry per volume of the storage instance, in LUN order;
   b. a CHAP challenge (RFC 1994), when the target requires CHAP:
       {"chap": {"id": <0-255>, "challenge": "<hex, 16 random bytes>"}}
   c. a refusal:  {"ok": false, "reason": "<why, for a human>"}
3. After a challenge the client sends
       {"chap_user": "<user>", "chap_response": "<hex of md5(bytes([id]) + secret + challenge)>"}
   where secret is the UTF-8 CHAP secret (the storage instance's auth `target_pswd`, user
   `target_user_name`) and challenge the challenge's raw bytes. The secret itself never crosses
   the wire. A client without credentials sends {"chap_user": null} to learn the reason.
   The server answers 2a or 2c; a challenge is good for one answer only.

Any other message gets {"ok": false, "reason": "..."} and the connection is closed.

Export names look like "<target IQN>:lun<N>:<32 hex digits>": unguessable and bound to the
login session, that is to the initiator. An export stays valid until the storage instance's ACL
no longer admits that initiator (re-checked whenever the export is opened), or the volume goes
offline or is deleted; then the host must log in again. The server keeps the newest 8 login
sessions per (initiator, target, portal); older ones' exports are forgotten. Connections already
open are not affected by a newer login; they are closed when the volume goes offline or away.

Open an export with any NBD client (fixed newstyle, NBD_OPT_GO or NBD_OPT_EXPORT_NAME) on the
same VIP and the announced `nbd_port`, e.g. `nbdinfo nbd://127.0.7.11:10809/<export name>`.
`clients/initiator.py` is the client side of this protocol.

Mutual CHAP ("mchap": the initiator also authenticating the target) is not part of this
protocol; the target's half of the check is what is enforced.
"""
import asyncio
import collections
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass

from lab.http.body import BodyError, loads
from lab.datera.contract import ChapRequired, LoginRefused, VolumeHandle

log = logging.getLogger("lab.datera.login")

MAX_LINE = 64 * 1024
IDLE_TIMEOUT = 30.0
SESSIONS_KEPT = 8
MAX_NAME = 223  # iSCSI names are at most 223 bytes (RFC 3720 §3.2.6.1)


def chap_response(ident: int, secret: str, challenge: bytes) -> str:
    """RFC 1994 CHAP with MD5: hex(md5(id || secret || challenge))."""
    return hashlib.md5(bytes([ident]) + secret.encode() + challenge).hexdigest()


@dataclass(frozen=True)
class Export:
    name: str
    initiator: str
    target: str
    lun: int
    vol_uuid: str


class Exports:
    """The export names handed out by logins, and what each one opens."""

    def __init__(self):
        self._by_name: dict[str, Export] = {}
        self._sessions: dict[tuple, collections.deque] = {}

    def __len__(self):
        return len(self._by_name)

    def new_session(self, initiator: str, target: str, portal: str,
                    volumes: list[VolumeHandle]) -> list[Export]:
        token = secrets.token_hex(16)
        made = [Export(f"{target}:lun{i}:{token}", initiator, target, i, v.uuid)
                for i, v in enumerate(volumes)]
        for e in made:
            self._by_name[e.name] = e
        kept = self._sessions.setdefault((initiator, target, portal),
                                         collections.deque(maxlen=SESSIONS_KEPT))
        if len(kept) == kept.maxlen:
            self._forget(kept[0])
        kept.append([e.name for e in made])
        return made

    def _forget(self, names):
        for n in names:
            self._by_name.pop(n, None)

    def resolve(self, name: str) -> Export | None:
        return self._by_name.get(name)

    def revoke(self, name: str):
        self._by_name.pop(name, None)

    def drop_volume(self, vol_uuid: str):
        """The volume went offline or away: every export of it stops working."""
        for name in [n for n, e in self._by_name.items() if e.vol_uuid == vol_uuid]:
            del self._by_name[name]


async def _discard_line(reader, budget: int = 1 << 20, timeout: float = 2.0):
    """Reads the rest of an over-long line (bounded): closing with unread input would reset
    the connection, and the client would lose the refusal just sent."""
    try:
        while budget > 0:
            async with asyncio.timeout(timeout):   # not wait_for: see fabric.Fabric._run
                chunk = await reader.read(65536)
            budget -= len(chunk)
            if not chunk or b"\n" in chunk:
                return
    except (asyncio.TimeoutError, ConnectionError):
        return


def _reply(writer, obj: dict):
    writer.write(json.dumps(obj).encode() + b"\n")


class LoginService:
    """Serves the login protocol for one data plane (`dp.authority`, `dp.exports`,
    `dp.ensure_volume(handle)`, `dp.nbd_port`)."""

    def __init__(self, dp):
        self.dp = dp

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        portal = writer.get_extra_info("sockname")[0]
        try:
            while True:
                msg = await self._read(reader, writer)
                if msg is None:
                    return
                if msg.get("op") != "login":
                    _reply(writer, {"ok": False, "reason": "expected {\"op\": \"login\", ...}"})
                    return
                if not await self._login(msg, portal, reader, writer):
                    return
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug, not the initiator's fault: say so, keep the service up
            log.exception("login from %s failed", writer.get_extra_info("peername"))
            _reply(writer, {"ok": False, "reason": "internal error in the target"})
        finally:
            writer.close()

    async def _read(self, reader, writer) -> dict | None:
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):   # not wait_for: see fabric.Fabric._run
                line = await reader.readline()
        except asyncio.TimeoutError:
            return None
        except ValueError:   # over the stream's limit: say so before closing, as for any bad line
            _reply(writer, {"ok": False, "reason": f"bad request: line over {MAX_LINE} bytes"})
            await _discard_line(reader)
            return None
        if not line:
            return None
        try:
            msg = loads(line)
        except BodyError:
            msg = None
        if not isinstance(msg, dict):
            _reply(writer, {"ok": False, "reason": "bad request: expected one JSON object per line"})
            return None
        return msg

    async def _login(self, msg: dict, portal: str, reader, writer) -> bool:
        """One login exchange; False when the connection should close."""
        initiator, target = msg.get("initiator"), msg.get("target")
        for field, value in (("initiator", initiator), ("target", target)):
            if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
                _reply(writer, {"ok": False, "reason": f"{field}: expected an iSCSI name "
                                                       f"of 1-{MAX_NAME} characters"})
                return False
        authority = self.dp.authority
        if authority is None:
            _reply(writer, {"ok": False, "reason": "target not ready"})
            return False
        try:
            volumes = authority.login(initiator=initiator, target=target, portal=portal,
                                      chap_user=None, chap_response_check=lambda secret: False)
            return self._succeed(writer, initiator, target, portal, volumes)
        except ChapRequired as first:
            refusal = first
        except LoginRefused as e:
            _reply(writer, {"ok": False, "reason": str(e)})
            return True

        ident, challenge = secrets.randbelow(256), secrets.token_bytes(16)
        _reply(writer, {"chap": {"id": ident, "challenge": challenge.hex()}})
        answer = await self._read(reader, writer)
        if answer is None:
            return False
        user, response = answer.get("chap_user"), answer.get("chap_response")
        if user is None:
            _reply(writer, {"ok": False, "reason": str(refusal)})
            return True
        if not isinstance(user, str) or not isinstance(response, str):
            _reply(writer, {"ok": False, "reason": "bad CHAP answer: expected chap_user and "
                                                   "chap_response strings"})
            return False
        response = response.lower()

        def check(secret: str) -> bool:
            return hmac.compare_digest(chap_response(ident, secret, challenge), response)

        try:
            volumes = authority.login(initiator=initiator, target=target, portal=portal,
                                      chap_user=user, chap_response_check=check)
        except LoginRefused as e:
            _reply(writer, {"ok": False, "reason": str(e)})
            return True
        return self._succeed(writer, initiator, target, portal, volumes)

    def _succeed(self, writer, initiator, target, portal, volumes) -> bool:
        for v in volumes:
            self.dp.ensure_volume(v)
        made = self.dp.exports.new_session(initiator, target, portal, volumes)
        sizes = {v.uuid: v.size_bytes for v in volumes}
        log.info("login: %s to %s via %s, %d LUN(s)", initiator, target, portal, len(made))
        _reply(writer, {"ok": True, "nbd_port": self.dp.nbd_port,
                        "luns": [{"lun": e.lun, "export": e.name, "size": sizes[e.vol_uuid]}
                                 for e in made]})
        return True
