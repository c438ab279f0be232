"""Fuzzing the lab's HTTP APIs with Hypothesis (tests/test_fuzz_http.py, bench/bench_fuzz.py).

The apps are the lab's own (lab.datera.server.build_app, lab.openstack.server.build_app), served
on a loop thread of the test's own on 127.0.0.1 (random ports), so a fuzz run touches no shared
lab and leaves nothing behind. Requests go over a raw socket (`send`): any method, path bytes,
header and body reach aiohttp's parser exactly as written.

Every request is one of these kinds (`KINDS`); each guarantees the request is wrong, so every
answer must be a 4xx in the API's own error body (`Api.check`), never a 5xx or a dropped
connection:
- auth:    a non-public route with no, a malformed or an unknown credential -> 401;
- method:  a path of the table with a method it does not serve -> 405 (Datera's
           MethodNotAllowedError, Nova's/Cinder's badMethod, ...);
- ids:     hostile path parameters (traversal, odd and invalid-UTF-8 bytes, huge numbers,
           long strings, unknown ids) -> 4xx;
- syntax:  a body-taking route with an unparsable body (invalid UTF-8, truncated or deeply
           nested JSON, a JSON scalar, huge number literals, a wrong Content-Type) -> 4xx;
- values:  well-formed JSON with wrong types, huge values and extra fields, path parameters
           unknown -> 4xx (a known object would let a lenient real API accept a value: that
           case is `lenient`, where a 2xx is allowed but still never a 5xx);
- headers: hostile version, tenant and content headers (microversions, tenant paths) -> 4xx,
           or a 2xx where the header is one the real API ignores (`lenient` again).
"""
import asyncio
import dataclasses
import http.client
import json
import re
import socket
import string
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Profiles: "ci" is what `make test` runs (bounded, reproducible); "long" is bench/bench_fuzz.py's.
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("dev", max_examples=400, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("long", max_examples=2000, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
KINDS = ("auth", "method", "ids", "syntax", "values", "headers")
# Methods aiohttp's parser (llhttp) knows; an unknown token is a framing error (see Req.wire).
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:[^{}]*)?\}")


# ---- the wire ----------------------------------------------------------------------------------

class Dropped(AssertionError):
    """The server closed or reset the connection instead of answering."""


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def content_type(self) -> str:
        return (self.headers.get("content-type") or "").split(";")[0].strip()

    def json(self):
        return json.loads(self.body)


def send(port: int, method: str, path: bytes, headers: list, body: bytes = b"",
         host: str = "127.0.0.1", timeout: float = 20) -> Answer:
    """One request on a fresh connection, exactly as given (path and headers are bytes)."""
    head = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: " + host.encode(),
            b"Connection: close"]
    head += [k + b": " + v for k, v in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        head.append(b"Content-Length: " + str(len(body)).encode())
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        resp = http.client.HTTPResponse(sock, method=method)
        try:
            resp.begin()
            data = resp.read()
        except (http.client.RemoteDisconnected, http.client.IncompleteRead,
                ConnectionError) as e:
            raise Dropped(f"{method} {path!r}: connection dropped ({type(e).__name__})") from None
        return Answer(resp.status, resp.msg, data)
    finally:
        sock.close()


class Served:
    """aiohttp apps on a loop thread of their own, each on 127.0.0.1:<random port>."""

    def __init__(self, lt):
        self.lt = lt
        self.runners = []

    def serve(self, app: web.Application, rejected=None) -> int:
        """rejected: the API's answer to requests the HTTP parser refuses, as its server
        wires it (lab.http.serve_rejects)."""
        async def start():
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            if rejected is not None:
                from lab.http import serve_rejects
                serve_rejects(runner, rejected)
            site = web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=1)
            await site.start()
            self.runners.append(runner)
            return runner.addresses[0][1]
        return self.lt.run(start())

    def close(self):
        for runner in reversed(self.runners):
            self.lt.run(runner.cleanup())


# ---- hostile values ----------------------------------------------------------------------------

_SEGMENTS = [b"..", b"../../../../etc/passwd", b"%2e%2e%2f%2e%2e%2fetc%2fpasswd", b"%2F",
             b"%00", b"a%00b", b"%ff%fe", b"\xff\xfe", b"\xc3\x28", b"%c3%28", b"%", b"%zz",
             b"*", b"~", b";x=1", b"%20", b"%0d%0aX-Injected:%201", b"-1", b"0",
             b"99999999999999999999999999999999", b"1e999", b"NaN", b"null", b"%7B%7D",
             b"\xf0\x9f\x92\xa9", b"%F0%9F%92%A9", b"CON", b"a" * 5000, b"x" * 300]


def segments() -> st.SearchStrategy[bytes]:
    """One hostile path segment, as bytes on the wire (percent-encoded or raw)."""
    words = st.text(string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=40)
    odd = st.text(min_size=1, max_size=30).map(lambda s: quote(s, safe="").encode())
    raw = st.binary(min_size=1, max_size=20).map(
        lambda b: bytes(c for c in b if c > 0x20 and c not in b"/?# \x7f") or b"%ff")
    return st.one_of(st.sampled_from(_SEGMENTS), words.map(str.encode), odd, raw,
                     st.uuids().map(lambda u: str(u).encode()))


def json_values(depth: int = 2) -> st.SearchStrategy:
    """JSON values a field does not expect: wrong types, huge numbers and strings, nesting."""
    scalars = st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(1 << 70), max_value=1 << 70),
        st.sampled_from([0, -1, 1 << 31, 1 << 63, 1 << 64, -(1 << 63), 10 ** 30]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1e308, -1e308, 0.5, -0.0, 1.5]),
        st.text(max_size=30), st.sampled_from(["", " ", "a" * 70000, "../../x", "\x00",
                                               "\ud800", "1", "true", "-1", "NaN"]))
    if depth <= 0:
        return scalars
    inner = json_values(depth - 1)
    return st.one_of(scalars, st.lists(inner, max_size=3),
                     st.dictionaries(st.text(max_size=10), inner, max_size=3))


def _nested(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _nested_obj(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


MALFORMED = [b"{", b"{not json", b'{"a": ', b"[1, 2]", b'"string"', b"42", b"null", b"true",
             b'{"a": "\xff\xfe"}', b"\xff\xfe\x00\x00", b"\xef\xbb\xbf{}x", b"{}{}", b"{'a': 1}",
             b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b"1" * 5000,
             b'{"a": ' + b"9" * 5000 + b"}", b'{"a": 1e99999}', b'{"\\ud800": 1}x',
             _nested(100000), _nested_obj(50000), _nested(1000), b"\x00" * 64,
             b"name=x&password=y"]
CONTENT_TYPES = [b"application/json", b"text/plain", b"application/x-www-form-urlencoded",
                 b"multipart/form-data; boundary=x", b"application/octet-stream",
                 b"application/json; charset=latin-1", b"\xff\xfe", b"", b"*/*"]


def malformed_bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from(MALFORMED),
                     st.binary(min_size=1, max_size=200).filter(_unparsable))


def _unparsable(raw: bytes) -> bool:
    try:
        return not isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return True


def header_values() -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from([b"", b" ", b"\xff\xfe", b"%00", b"a" * 7000,
                                      b"../../../", b"/root/../..", b"null", b"-1"]),
                     st.text(string.printable.strip(), max_size=40).map(str.encode))


# ---- the APIs ----------------------------------------------------------------------------------

@dataclass(repr=False)
class Req:
    kind: str
    method: str
    path: bytes
    headers: list
    body: bytes = b""
    lenient: bool = False      # a 2xx is allowed (never a 5xx)

    @property
    def wire(self) -> bool:
        """Refused by the HTTP layer before any API sees it: not HTTP/1.1 (RFC 9112: the request
        target is visible ASCII) or over its 8 KiB line limits (aiohttp's, as eventlet's, nginx's
        and Apache's in front of the real APIs). The HTTP layer answers before the API."""
        return (any(b < 0x21 or b > 0x7e for b in self.path) or len(self.path) > 8000
                or any(len(k) + len(v) > 8000 for k, v in self.headers))

    def __str__(self):
        body = self.body[:120] + (b"..." if len(self.body) > 120 else b"")
        heads = [(k, v[:60]) for k, v in self.headers]
        path = self.path[:200] + (b"..." if len(self.path) > 200 else b"")
        return f"[{self.kind}] {self.method} {path!r} {heads} {body!r}"

    __repr__ = __str__


@dataclass
class Api:
    """One API as the fuzzer sees it: its routes (method, full path template, public, body
    fields or None when unknown), the credential headers, the ids it knows (path parameter ->
    wire value), and how its error bodies look."""
    name: str
    port: int
    routes: list
    auth: list
    known: dict
    shape: callable              # (status, Answer) -> problem or None
    health: tuple                # (method, path, headers) of a request that must answer 2xx
    version_headers: tuple = ()  # header names carrying a version (microversions)
    tenant_header: bytes | None = None
    body_methods: tuple = ("POST", "PUT", "PATCH")
    # (method, template) where the real API takes any id (Nova's and Cinder's quota defaults
    # of any project; Keystone's PUT /v3/regions/{id} creates the region): a 2xx is right.
    any_id: tuple = ()
    # other callers: (credential headers, known-id overrides), e.g. an admin token and its
    # project; each request is made as one of them or as `auth`
    alt: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def paths(self) -> dict:
        """path template -> the set of methods served there (HEAD where GET is, if served)."""
        out: dict = {}
        for r in self.routes:
            out.setdefault(r[1], set()).add(r[0])
        return out

    def check(self, req: Req, ans: Answer) -> str | None:
        """None when the answer is right for the request, else what is wrong."""
        if ans.status >= 500:
            return f"{ans.status} for {req}: {ans.body[:300]!r}"
        if ans.status < 400:
            return None if req.lenient else f"{ans.status} (not a 4xx) for {req}"
        if req.method == "HEAD":
            return None
        # Refused by the HTTP layer: Datera answers its error object (the shape below);
        # OpenStack's eventlet.wsgi its own bare 400 or http.server's error page, or hands the
        # request to the API (lab/http/rejects.py, lab/openstack/rejects.py).
        if req.wire and self.name != "datera" and ans.status in (400, 505) and (
                not ans.body or b"Error code: " in ans.body):
            return None
        return self.shape(ans.status, ans)

    def served(self) -> Answer:
        """The answer to the health request (a 2xx while the API serves)."""
        method, path, headers = self.health
        return send(self.port, method, path, headers)


def fill(template: str, values: dict) -> bytes:
    """'/v3/{project_id}/volumes/{volume_id}' with values (param -> bytes) -> the path bytes."""
    out, pos = b"", 0
    for m in _PARAM.finditer(template):
        out += template[pos:m.start()].encode() + values[m.group(1)]
        pos = m.end()
    return out + template[pos:].encode()


def params(template: str) -> list[str]:
    return [m.group(1) for m in _PARAM.finditer(template)]


@st.composite
def requests(draw, api: Api, kinds=KINDS) -> Req:
    """One wrong request to `api`, of one of `kinds`."""
    kind = draw(st.sampled_from(kinds))
    if api.alt and kind != "auth":
        auth, known = draw(st.sampled_from([(api.auth, {}), *api.alt]))
        api = dataclasses.replace(api, auth=auth, known={**api.known, **known})
    if kind == "method":
        template = draw(st.sampled_from(sorted(api.paths)))
        method = draw(st.sampled_from([m for m in METHODS if m not in api.paths[template]
                                       and not (m == "HEAD" and "GET" in api.paths[template])]))
        values = {p: api.known.get(p, b"x") for p in params(template)}
        return Req(kind, method, fill(template, values), api.auth + _ctype())
    if kind == "auth":
        routes = [r for r in api.routes if not r[2]]
        method, template, _public, _body = draw(st.sampled_from(routes))
        values = {p: api.known.get(p, b"x") for p in params(template)}
        cred = draw(st.one_of(st.just([]), header_values().map(
            lambda v: [(api.auth[0][0], v)] if v.strip() and b"\xff" not in v else [])))
        extra = [h for h in api.auth[1:]]
        return Req(kind, method, fill(template, values), cred + extra + _ctype(),
                   b"{}" if method in api.body_methods else b"")
    if kind == "ids":
        routes = [r for r in api.routes if params(r[1]) and set(params(r[1])) - _fixed(api)]
        method, template, _public, _body = draw(st.sampled_from(routes))
        values = {}
        for p in params(template):
            if p in _fixed(api):
                values[p] = api.known[p]
            else:
                values[p] = draw(segments())
        if all(values[p] == api.known.get(p) for p in params(template)):
            values[params(template)[-1]] = draw(segments())
        return Req(kind, method, fill(template, values), api.auth + _ctype(),
                   b"{}" if method in api.body_methods else b"",
                   lenient=any(m in (method, "GET" if method == "HEAD" else method)
                               and re.fullmatch(t, template) for m, t in api.any_id))
    if kind == "syntax":
        routes = [r for r in api.routes if r[0] in api.body_methods and r[3] != ()]
        method, template, _public, _body = draw(st.sampled_from(routes))
        values = {p: api.known.get(p, b"x") if p in _fixed(api) else _unknown(p)
                  for p in params(template)}
        ctype = draw(st.sampled_from(CONTENT_TYPES))
        return Req(kind, method, fill(template, values),
                   api.auth + ([(b"Content-Type", ctype)] if ctype else []),
                   draw(malformed_bodies()))
    if kind == "values":
        routes = [r for r in api.routes if r[0] in api.body_methods and r[3] != ()
                  and not r[1].endswith("/logout")]   # a valid logout ends the fuzzer's session
        method, template, _public, fields = draw(st.sampled_from(routes))
        # known ids, where a lenient API may accept the body; never to DELETE the fixture's
        # own objects (the tenant the health request reads)
        known = method != "DELETE" and draw(st.booleans())
        values = {p: api.known.get(p, _unknown(p)) if known or p in _fixed(api)
                  else _unknown(p) for p in params(template)}
        names = list(fields or ()) + [draw(st.sampled_from(_guess_keys(template)))]
        body = draw(st.fixed_dictionaries(
            {}, optional={n: json_values() for n in names}))
        extra = draw(st.dictionaries(st.text(max_size=12), json_values(1), max_size=2))
        body.update(extra)
        if draw(st.booleans()) and body:      # the API's wrapper key, when it has one
            body = {_guess_keys(template)[0]: body}
        lenient = known or not values or all(
            p in _fixed(api) for p in params(template))
        return Req(kind, method, fill(template, values), api.auth + _ctype(),
                   json.dumps(body).encode(), lenient=lenient)
    # headers (a logout with a hostile header is still a logout of the fuzzer's own session)
    method, template, public, _fields = draw(st.sampled_from(
        [r for r in api.routes if not r[1].endswith("/logout")]))
    values = {p: api.known.get(p, b"x") for p in params(template)}
    names = [n for n in (*api.version_headers, api.tenant_header) if n]
    hdrs = [(n, draw(header_values())) for n in draw(st.lists(st.sampled_from(names),
                                                              min_size=1, max_size=2,
                                                              unique=True))] if names else []
    hdrs = [(n, v) for n, v in hdrs if n != api.tenant_header or v.strip()]
    auth = [h for h in api.auth if h[0] not in {n for n, _ in hdrs}]
    return Req(kind, method, fill(template, values), auth + hdrs + _ctype(),
               b"{}" if method in api.body_methods else b"", lenient=True)


def _fixed(api: Api) -> set:
    """Parameters that must hold the known value (a project id that is not the token's is a
    400 for a reason other than the one a kind tests)."""
    return {p for p in ("project_id",) if p in api.known}


def _unknown(param: str) -> bytes:
    return b"00000000-0000-4000-8000-00000000f022"


def _guess_keys(template: str) -> list[str]:
    """Body keys an API wraps its objects in, guessed from the path's last literal segment
    ("/v3/{p}/volumes/{id}/action" -> ["volume", "os-extend", ...])."""
    literals = [s for s in template.split("/") if s and not s.startswith("{")]
    last = literals[-1] if literals else "x"
    singular = last[:-1] if last.endswith("s") else last
    return [singular, last, "os-extend", "os-retype", "os-attach", "os-reset_status",
            "os-initialize_connection", "addFloatingIp", "os-start", "reboot", "auth",
            "volume", "name", "size"]


def _ctype() -> list:
    return [(b"Content-Type", b"application/json")]


# ---- error shapes, per reference/datera-api.md §1.8 and reference/openstack-api.md ----------

def _json_of(ans: Answer):
    if ans.content_type != "application/json":
        return None, f"Content-Type {ans.content_type!r}, not application/json: {ans.body[:200]!r}"
    try:
        return ans.json(), None
    except ValueError:
        return None, f"not JSON: {ans.body[:200]!r}"


def datera_shape(status: int, ans: Answer) -> str | None:
    body, problem = _json_of(ans)
    if problem:
        return problem
    if not (isinstance(body, dict) and body.get("http") == status
            and isinstance(body.get("name"), str) and isinstance(body.get("code"), int)
            and isinstance(body.get("message"), str) and body["message"]):
        return f"not a Datera error object: {body!r:.300}"
    return None


def keystone_shape(status: int, ans: Answer) -> str | None:
    body, problem = _json_of(ans)
    if problem:
        return problem
    err = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(err, dict) and err.get("code") == status
            and isinstance(err.get("title"), str) and isinstance(err.get("message"), str)):
        return f"not Keystone's {{error: {{code, title, message}}}}: {body!r:.300}"
    return None


def fault_shape(status: int, ans: Answer) -> str | None:
    if status == 401:
        return keystone_shape(status, ans) or _www_authenticate(ans)
    body, problem = _json_of(ans)
    if problem:
        return problem
    if not (isinstance(body, dict) and len(body) == 1):
        return f"not a Nova/Cinder fault: {body!r:.300}"
    (inner,) = body.values()
    if not (isinstance(inner, dict) and inner.get("code") == status
            and isinstance(inner.get("message"), str)):
        return f"not a Nova/Cinder fault: {body!r:.300}"
    return None


def neutron_shape(status: int, ans: Answer) -> str | None:
    if status == 401:
        return keystone_shape(status, ans) or _www_authenticate(ans)
    body, problem = _json_of(ans)
    if problem:
        return problem
    err = body.get("NeutronError") if isinstance(body, dict) else None
    if not (isinstance(err, dict) and isinstance(err.get("type"), str)
            and isinstance(err.get("message"), str) and "detail" in err):
        return f"not a NeutronError: {body!r:.300}"
    return None


def glance_shape(status: int, ans: Answer) -> str | None:
    """Glance's errors are webob's HTML pages (reference openstack-api: "Error bodies are plain
    text or HTML"); its 401 is keystonemiddleware's JSON."""
    if status == 401:
        return keystone_shape(status, ans) or _www_authenticate(ans)
    text = ans.body.decode("utf-8", "replace")
    if ans.content_type != "text/html" or f"<h1>{status} " not in text:
        return f"not Glance's webob page for {status}: {ans.content_type} {text[:200]!r}"
    return None


def _www_authenticate(ans: Answer) -> str | None:
    if not (ans.headers.get("WWW-Authenticate") or "").startswith("Keystone uri="):
        return "401 without WWW-Authenticate: Keystone uri=..."
    return None


SHAPES = {"datera": datera_shape, "keystone": keystone_shape, "cinder": fault_shape,
          "nova": fault_shape, "neutron": neutron_shape, "glance": glance_shape}


def exercise(api: Api, req: Req) -> Answer:
    """Sends one fuzzed request and checks the answer and that the API still serves."""
    ans = send(api.port, req.method, req.path, req.headers, req.body)
    tally = api.counts.setdefault(req.kind, [0, 0])
    tally[0] += 1
    problem = api.check(req, ans)
    assert problem is None, f"{api.name}: {problem}"
    health = api.served()
    assert 200 <= health.status < 300, \
        f"{api.name} stopped serving after {req}: {health.status} {health.body[:300]!r}"
    tally[1] += 1
    return ans
