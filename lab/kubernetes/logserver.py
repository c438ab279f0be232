"""The kubelet's log endpoint, which the apiserver proxies `pods/log` to (read_namespaced_pod_log,
`kubectl logs`): GET https://<node>:10250/containerLogs/<namespace>/<pod>/<container>
[?tailLines=N][&limitBytes=N][&previous=true]. The apiserver does not verify the kubelet's certificate unless
--kubelet-certificate-authority is set; the lab serves its node certificate anyway.
Unknown pods/containers get 404 as the kubelet answers; `previous` of a container that has not
restarted gets kubelet's 400 "previous terminated container ... not found".
"""
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def serve_logs(address: str, port: int, cert: str, key: str, lookup) -> ThreadingHTTPServer:
    """Starts the server in a daemon thread.
    lookup(ns, pod, container, previous) -> Path | None."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):   # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) != 4 or parts[0] != "containerLogs":
                return self._send(404, b"404 page not found\n")
            q = parse_qs(url.query)
            previous = q.get("previous", ["false"])[0] == "true"
            path = lookup(*parts[1:], previous)
            if previous and path is not None and not path.exists():
                return self._send(400, f'previous terminated container "{parts[3]}" in pod '
                                       f'"{parts[2]}" not found\n'.encode())
            if path is None or not path.exists():
                return self._send(404, f'container "{parts[3]}" in pod "{parts[2]}" is not '
                                       f'available\n'.encode())
            data = path.read_bytes()
            if "tailLines" in q:
                n = int(q["tailLines"][0])
                lines = data.splitlines(keepends=True)
                data = b"".join(lines[-n:]) if n > 0 else b""
            if "limitBytes" in q:
                data = data[:int(q["limitBytes"][0])]
            self._send(200, data)

        def _send(self, code: int, body: bytes):
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):   # the apiserver polls; keep the node log quiet
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="kubelet-logs", daemon=True).start()
    return server
