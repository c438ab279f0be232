"""The initiator side of the Datera lab's login (protocol: lab/datera/login.py). Stdlib only
(plus clients.ports), so tests, the harness and the lab's Nova compute hosts can all use it:

    luns = login("127.0.7.11", 3260, "iqn.1993-08.org.debian:01:host1", target_iqn,
                 chap_user="user", chap_secret="secret1234567")
    # fio --ioengine=nbd --uri=luns[0].uri ...   or   nbdinfo luns[0].uri

The CHAP secret is used only to compute the RFC 1994 response; it never goes on the wire and
never appears in an exception or a log line.
"""
import hashlib
import json
import socket
import urllib.parse
from dataclasses import dataclass

from clients import ports

DEFAULT_NBD_PORT = ports.NBD
MAX_LINE = 64 * 1024


class LoginError(Exception):
    """The target refused the login, or did not speak the protocol; str(e) is the reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Lun:
    lun: int
    export: str
    size: int
    uri: str     # nbd://<portal>:<nbd port>/<export>, for fio --uri and nbdinfo


def nbd_uri(portal: str, port: int, export: str) -> str:
    return f"nbd://{portal}:{port}/{urllib.parse.quote(export, safe=':')}"


def _chap_response(ident: int, secret: str, challenge_hex: str) -> str:
    return hashlib.md5(bytes([ident]) + secret.encode() + bytes.fromhex(challenge_hex)).hexdigest()


class _Lines:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def send(self, obj: dict):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def recv(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise LoginError("the target closed the connection")
            self.buf += chunk
            if len(self.buf) > MAX_LINE:
                raise LoginError("the target sent an over-long line")
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except ValueError:
            raise LoginError("the target sent something that is not JSON") from None
        if not isinstance(msg, dict):
            raise LoginError("the target sent a JSON value that is not an object")
        return msg


def login(portal_ip: str, port: int, initiator: str, target: str,
          chap_user: str | None = None, chap_secret: str | None = None,
          timeout: float = 5) -> list[Lun]:
    """Logs `initiator` in to `target` through the portal; returns its LUNs in order."""
    if (chap_user is None) != (chap_secret is None):
        raise LoginError("give both chap_user and chap_secret, or neither")
    try:
        with socket.create_connection((portal_ip, port), timeout=timeout) as sock:
            lines = _Lines(sock)
            lines.send({"op": "login", "initiator": initiator, "target": target})
            msg = lines.recv()
            if "chap" in msg:
                chap = msg["chap"]
                try:
                    ident, challenge = int(chap["id"]), str(chap["challenge"])
                    response = (_chap_response(ident, chap_secret, challenge)
                                if chap_secret is not None else None)
                except (KeyError, TypeError, ValueError):
                    raise LoginError("the target sent a malformed CHAP challenge") from None
                lines.send({"chap_user": chap_user, "chap_response": response})
                msg = lines.recv()
    except OSError as e:
        # `from e`: the OSError (refused, reset, timed out) is what makes this an outage
        # for fixtures/outage/classify.py, not the target refusing the login.
        raise LoginError(f"cannot reach the login portal {portal_ip}:{port}: "
                         f"{e.strerror or 'timed out'}") from e
    if msg.get("ok") is not True:
        raise LoginError(str(msg.get("reason") or "login refused without a reason"))
    nbd_port = int(msg.get("nbd_port") or DEFAULT_NBD_PORT)
    try:
        return [Lun(int(l["lun"]), str(l["export"]), int(l["size"]),
                    nbd_uri(portal_ip, nbd_port, str(l["export"]))) for l in msg["luns"]]
    except (KeyError, TypeError, ValueError):
        raise LoginError("the target's login answer has malformed luns") from None
