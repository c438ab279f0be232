"""A guest disk's NBD relay on the lab's compute host: what lets Nova's swap_volume move a
RUNNING guest's I/O to another volume, as libvirt's blockRebase (copy, then pivot) does.

The guest's fio reaches a Datera volume as `--ioengine=nbd --uri=nbd+unix:///?socket=<sock>`
(guest.py). The relay answers that socket as a fixed-newstyle NBD server (simple replies only)
and forwards each request unchanged to the volume's real export, one backend connection per
guest connection, opened as the compute host's initiator login returned it (nbd://...).

`pivot(new_uri, copy)`: new guest requests wait, in-flight ones finish, `copy(old, new)` runs
(nbdcopy between the two exports: the whole disk, as libvirt's blockRebase copies it; Cinder
copies no attached volume),
every backend connection is reopened on the new export, and the waiting requests go on there.
The guest sees a short pause and no error, as with a live pivot.

Source of the wire layouts: NBD doc/proto.md (lab/datera/nbd_proto.py).
"""
import logging
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Callable

from clients import scratch
from lab.datera import nbd_proto as P

log = logging.getLogger("lab.openstack.nova.relay")

_U16, _U32, _U64 = struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q")
SOCK_PATH_MAX = 100       # bytes; sun_path holds 108 with its NUL
# What clients/scratch.make_dir adds below its root: "/vancouver-relay-<pid>-<8 random>/"
# (pid_max 4194304: 7 digits).
_OWN_DIR_LEN = len("/vancouver-relay-") + 7 + 1 + 8 + 1
RECOVERY_TIMEOUT = 30.0   # s a lost backend may take to come back (open-iscsi waits 120)
RECOVERY_RETRY = 0.1      # s between logins while the target is offline


class RelayError(Exception):
    """The backend export cannot be reached or refuses the relay; secret-free."""


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return bytes(buf)


def _read(f, n: int) -> bytes:
    """n bytes from a buffered socket file (fewer system calls than recv per field)."""
    data = f.read(n)
    if len(data) < n:
        raise ConnectionError("peer closed")
    return data


def open_export(uri: str) -> tuple[socket.socket, int, int]:
    """Connects to nbd://host:port/export (or nbd+unix:///export?socket=path) with OPT_GO and
    no structured replies. Returns (socket, size in bytes, transmission flags); RelayError
    when unreachable or refused."""
    u = urllib.parse.urlsplit(uri)
    name = urllib.parse.unquote(u.path.lstrip("/")).encode()
    unix = urllib.parse.parse_qs(u.query).get("socket", [None])[0]
    try:
        if u.scheme == "nbd+unix" and unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(30)
            sock.connect(unix)
        else:
            sock = socket.create_connection((u.hostname, u.port or 10809), timeout=30)
    except OSError as e:
        # chained: a connection that failed is a lost path (DiskRelay.attach retries it)
        raise RelayError(f"cannot reach the export at {unix or u.netloc}: {e}") from e
    try:
        magic, opt, _flags = P.HANDSHAKE.unpack(_recv(sock, P.HANDSHAKE.size))
        if (magic, opt) != (P.NBDMAGIC, P.IHAVEOPT):
            raise RelayError("the export is not a fixed-newstyle NBD server")
        sock.sendall(_U32.pack(P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES))
        payload = _U32.pack(len(name)) + name + _U16.pack(0)
        sock.sendall(P.OPTION.pack(P.IHAVEOPT, P.OPT_GO, len(payload)) + payload)
        size = flags = None
        while True:
            _m, _o, rtype, length = P.OPTION_REPLY.unpack(_recv(sock, P.OPTION_REPLY.size))
            data = _recv(sock, length)
            if rtype == P.REP_ACK:
                break
            if rtype == P.REP_INFO and _U16.unpack_from(data)[0] == P.INFO_EXPORT:
                _t, size, flags = P.INFO_EXPORT_REPLY.unpack(data)
            elif rtype >= 2**31:
                raise RelayError(f"the export {name.decode(errors='replace')} was refused "
                                 f"({data.decode(errors='replace') or rtype})")
        if size is None:
            raise RelayError("the export sent no size")
        sock.settimeout(None)
        return sock, size, flags
    except (OSError, ConnectionError, struct.error) as e:
        sock.close()
        raise RelayError(f"NBD negotiation with the export failed: {e}") from e
    except RelayError:
        sock.close()
        raise


def nbdcopy(src_uri: str, dst_uri: str) -> None:
    """libnbd's nbdcopy between two exports (holes stay holes); RelayError on failure."""
    r = subprocess.run(["nbdcopy", "--", src_uri, dst_uri], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        raise RelayError(f"nbdcopy failed: {' '.join(r.stderr.split())[-400:]}")


class _Link:
    """One guest connection and its backend connection. A backend connection that dies under
    the link (the target took the app instance offline: the Datera driver's create_export
    does so to change its IP pool, as for Cinder's own attach during a migration) is
    recovered as open-iscsi recovers a session: log in again within RECOVERY_TIMEOUT and
    re-send the requests that had no reply; the guest only sees a pause."""

    def __init__(self, relay: "DiskRelay", guest: socket.socket):
        self.relay, self.guest = relay, guest
        self.g_in = guest.makefile("rb", buffering=256 * 1024)
        self.backend: socket.socket | None = None
        self.pending: dict[int, tuple[int, bytes]] = {}   # handle -> (READ length, request)
        self.busy = 0                            # requests sent whose reply is not forwarded
        self.recovering = False
        self.closed = False

    # guest side: handshake, then requests
    def serve(self) -> None:
        try:
            if self._handshake():
                self._requests()
        except (OSError, ValueError, ConnectionError, struct.error, RelayError) as e:
            log.debug("relay %s: guest link ends: %s", self.relay.sock_path, e)
        finally:
            self.close()

    def _handshake(self) -> bool:
        g = self.guest
        g.sendall(P.HANDSHAKE.pack(P.NBDMAGIC, P.IHAVEOPT,
                                   P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES))
        client_flags = _U32.unpack(_read(self.g_in, 4))[0]
        while True:
            _magic, opt, length = P.OPTION.unpack(_read(self.g_in, P.OPTION.size))
            if length > P.MAX_OPTION:
                return False
            _read(self.g_in, length)
            if opt == P.OPT_ABORT:
                g.sendall(P.OPTION_REPLY.pack(P.REPLY_MAGIC, opt, P.REP_ACK, 0))
                return False
            if opt in (P.OPT_GO, P.OPT_INFO, P.OPT_EXPORT_NAME):
                size, flags = self.relay.attach(self)
                if opt == P.OPT_EXPORT_NAME:
                    zeroes = b"" if client_flags & P.FLAG_NO_ZEROES else bytes(124)
                    g.sendall(_U64.pack(size) + _U16.pack(flags) + zeroes)
                    return True
                info = P.INFO_EXPORT_REPLY.pack(P.INFO_EXPORT, size, flags)
                g.sendall(P.OPTION_REPLY.pack(P.REPLY_MAGIC, opt, P.REP_INFO, len(info)) + info
                          + P.OPTION_REPLY.pack(P.REPLY_MAGIC, opt, P.REP_ACK, 0))
                if opt == P.OPT_GO:
                    return True
                self.relay.detach(self)
                continue
            # structured replies, meta contexts, lists: the relay speaks simple replies only
            g.sendall(P.OPTION_REPLY.pack(P.REPLY_MAGIC, opt, P.REP_ERR_UNSUP, 0))

    def _requests(self) -> None:
        while True:
            header = _read(self.g_in, P.REQUEST.size)
            _magic, _flags, cmd, handle, _offset, length = P.REQUEST.unpack(header)
            body = _read(self.g_in, length) if cmd == P.CMD_WRITE else b""
            if cmd == P.CMD_DISC:
                return
            request = header + body
            backend = self.relay.begin(self, handle, length if cmd == P.CMD_READ else 0,
                                       request)
            try:
                backend.sendall(request)
            except OSError:      # the reply side sees the loss too and re-sends it
                pass

    # backend side: replies, forwarded as they come
    def replies(self, backend: socket.socket) -> None:
        cond = self.relay.cond
        b_in = backend.makefile("rb", buffering=256 * 1024)
        while True:
            entry = None
            try:
                reply = _read(b_in, P.SIMPLE_REPLY.size)
                _magic, error, handle = P.SIMPLE_REPLY.unpack(reply)
                with cond:
                    entry = self.pending.pop(handle, None)
                length = entry[0] if entry and not error else 0
                data = _read(b_in, length) if length else b""
            except (OSError, ValueError, ConnectionError, struct.error) as e:
                with cond:
                    if entry is not None:
                        self.pending[handle] = entry
                    if backend is not self.backend or self.closed:
                        return       # a pivot or close ended this connection on purpose
                log.info("relay %s: backend connection lost (%s); recovering",
                         self.relay.sock_path, e)
                return self._recover(backend)
            try:
                self.guest.sendall(reply + data)
            except OSError:
                return self.close()
            self.relay.end(self)

    def _recover(self, dead: socket.socket) -> None:
        relay = self.relay
        with relay.cond:
            self.recovering = True
        _close(dead)
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        sock = None
        while sock is None and not self.closed:
            try:
                sock, _size, _flags = open_export(relay.resolve())
            except Exception as e:      # a login refused while the target is offline
                if time.monotonic() > deadline:
                    log.warning("relay %s: no backend after %.0f s: %s", relay.sock_path,
                                RECOVERY_TIMEOUT, e)
                    return self.close()
                relay.closing.wait(RECOVERY_RETRY)
        if sock is None:
            return
        with relay.cond:
            self.backend = sock
            resend = [req for _len, req in self.pending.values()]
            self.recovering = False
            relay.cond.notify_all()
        threading.Thread(target=self.replies, args=(sock,), daemon=True,
                         name="relay-replies").start()
        try:
            for req in resend:
                sock.sendall(req)
        except OSError:
            pass                          # the new replies thread recovers again

    def open_backend(self, uri: str) -> tuple[int, int]:
        sock, size, flags = open_export(uri)
        old, self.backend = self.backend, sock
        if old is not None:
            _close(old)
        threading.Thread(target=self.replies, args=(sock,), daemon=True,
                         name="relay-replies").start()
        return size, flags

    def close(self) -> None:
        self.closed = True
        self.relay.detach(self)
        for s in (self.guest, self.backend):
            if s is not None:
                _close(s)


def _path_lost(e: BaseException) -> bool:
    """The error is (or a login error chains to) a connection that failed: a path lost, not
    a refusal (clients/initiator.py chains a login no portal answered to its socket error).
    The lab CSI's NodeStage answering gRPC Unavailable (a Datera 503 storm) is a lost path too:
    a container's next open of its disk waits it out instead of failing the pod."""
    return isinstance(e, OSError) or isinstance(e.__cause__, OSError) or \
        getattr(e, "code", None) == "Unavailable"


def _own_dir_root(name: str) -> Path | None:
    """Where a relay's own socket directory goes: the temp dir (None) when the socket `name`
    fits under it in SOCK_PATH_MAX, else /tmp. A process's TMPDIR may be deep: the lab's
    vCenter gives its guest agents one under its data dir, which under pytest-xdist's basetemp
    (.../pytest-N/popen-gwK/lab-.../run/vsphere/data/tmp, 73 bytes) made the vSphere guest's
    socket 113 bytes: its bind failed, the agent died without a result and the VM never
    reported done (issue 13)."""
    if len(tempfile.gettempdir()) + _OWN_DIR_LEN + len(name) <= SOCK_PATH_MAX:
        return None
    return Path("/tmp")


def _resolver(backend: str | Callable[[], str]) -> Callable[[], str]:
    return (lambda: backend) if isinstance(backend, str) else backend


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class DiskRelay:
    """A guest disk's relay listening on a unix socket (`uri` for fio's nbd engine).

    `backend` is the export's URI, or a function giving a fresh one (an initiator login):
    the lab's target revokes an export name when the volume's ACL changes, as Cinder's own
    attach for its copy does, so every new connection and the copy log in again.

    `sock_path` None, or longer than a unix socket's path may be (sun_path: 108 bytes), binds
    `<name or lun0.sock>` in a short scratch directory of the relay's own, removed by close()
    (clients/scratch.py: at the process's exit at the latest)."""

    def __init__(self, sock_path: str | os.PathLike | None, backend: str | Callable[[], str]):
        self._own_dir = None
        if sock_path is None or len(str(sock_path)) > SOCK_PATH_MAX:
            name = os.path.basename(sock_path or "") or "lun0.sock"
            self._own_dir = scratch.make_dir("relay", _own_dir_root(name))
            sock_path = self._own_dir / name
        self.sock_path = str(sock_path)
        self.resolve = _resolver(backend)
        self.backend_uri = self.resolve()
        self.cond = threading.Condition()
        self.links: set[_Link] = set()
        self.paused = False
        self.closing = threading.Event()
        self.bytes_forwarded = 0
        self._closed = False
        if os.path.exists(self.sock_path):
            os.unlink(self.sock_path)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.sock_path)
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()

    @property
    def uri(self) -> str:
        return "nbd+unix:///?socket=" + self.sock_path

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=_Link(self, conn).serve, daemon=True,
                             name="relay-link").start()

    # the links' bookkeeping -----------------------------------------------------------------
    def attach(self, link: _Link) -> tuple[int, int]:
        """Opens the guest connection's backend. A lost path (no portal answers the login, or
        the export's address stops answering between the login and the connect: VIP1 going
        down as fio starts) is retried for RECOVERY_TIMEOUT, as a recovery mid-I/O is; a
        refused login refuses the guest's connection at once."""
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while True:
            with self.cond:
                while self.paused:
                    self.cond.wait()
                if self._closed:
                    raise RelayError("the disk is detached")
                try:
                    self.backend_uri = self.resolve()
                    size, flags = link.open_backend(self.backend_uri)
                except Exception as e:
                    if not _path_lost(e) or time.monotonic() > deadline:
                        raise RelayError(str(e)) from None
                else:
                    self.links.add(link)
                    return size, flags
            self.closing.wait(RECOVERY_RETRY)

    def detach(self, link: _Link) -> None:
        with self.cond:
            self.links.discard(link)
            self.cond.notify_all()

    def begin(self, link: _Link, handle: int, read_len: int, request: bytes) -> socket.socket:
        """Waits while a pivot or a recovery runs; returns the backend the request goes to."""
        with self.cond:
            while self.paused or link.recovering:
                self.cond.wait()
            if link.backend is None or link not in self.links:
                raise ConnectionError("link closed")
            link.pending[handle] = (read_len, request)
            link.busy += 1
            return link.backend

    def end(self, link: _Link) -> None:
        with self.cond:
            link.busy -= 1
            self.cond.notify_all()

    @property
    def inflight(self) -> int:
        """Guest requests sent to a backend whose reply the guest has not had yet."""
        return sum(link.busy for link in self.links)

    # the pivot --------------------------------------------------------------------------------
    def pivot(self, new_backend: str | Callable[[], str], copy=nbdcopy,
              timeout: float = 60) -> None:
        """Quiesce, copy(old URI, new URI), reconnect every link to the new export, resume.
        RelayError (links left on the old export) when the copy or a reconnect fails."""
        new_resolve = _resolver(new_backend)
        with self.cond:
            while self.paused:     # one pivot at a time
                self.cond.wait()
            self.paused = True
            try:
                if not self.cond.wait_for(lambda: self.inflight == 0, timeout):
                    raise RelayError(f"guest requests still in flight after {timeout:.0f} s")
                new_uri = new_resolve()
                copy(self.resolve(), new_uri)
                for link in list(self.links):
                    link.open_backend(new_uri)
                self.resolve, self.backend_uri = new_resolve, new_uri
            finally:
                self.paused = False
                self.cond.notify_all()

    def close(self) -> None:
        """Stops listening and drops every link (the guest's fio then sees its disk go)."""
        with self.cond:
            self._closed = True
            self.closing.set()
            links = list(self.links)
        _close(self._listener)
        for link in links:
            link.close()
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        if self._own_dir is not None:
            scratch.remove(self._own_dir)
