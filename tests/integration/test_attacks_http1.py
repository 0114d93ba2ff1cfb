"""The HTTP/1.1 attack suite, kept as data: each case is the raw bytes an attacker sends and the
outcome expected, one row in CASES. Adding a case is adding a row.

Every case runs on a connection that has first carried one good request, so the proxy holds a
warm keep-alive connection to the upstream: a request dispatched too early would reach it at
once, not sit waiting for a connect that a refusal can still cancel. Then, for each case:
  - each exchange gets the status expected, and the connection ends open or closed as expected;
  - the upstream (upstream.py, which counts every request path it parses) received the paths it
    must and none of those it must not, and /echo saw what the case expects;
  - a refused request is logged with no upstream host;
  - the counters named reach their values;
  - a fresh connection is still served.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest

from harness import (RawClient, chunked, cluster, direct, echo_headers, raw_request, request,
                     to_cluster, until)

WARM = raw_request("GET", "/echo?warm")

WS_HEADERS = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]

H2C_HEADERS = [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
               ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]

# A request a route answers itself (403), for checking that bytes after an upgrade are routed.
ADMIN = raw_request("GET", "/admin/secret")


@dataclass(frozen=True)
class Case:
    id: str
    # (bytes sent, status of the response they get); each is sent once the previous response
    # has been read.
    exchanges: tuple
    closed: bool = False  # the proxy closes the connection after the last response
    reaches: tuple = ()   # request paths the upstream must have received
    never: tuple = ()     # request paths the upstream must never have received
    # A check on the /echo JSON answer of the last exchange (the upstream's view of it).
    echo: Optional[Callable] = None
    # The refused request's access log entry has no upstream host (nothing was sent upstream).
    refused: bool = False
    # Fields of some access log entry: the proxy's view of the request it forwarded.
    logged: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)  # /stats name -> value it must reach
    listener: dict = field(default_factory=dict)  # extra listener config


def no_upgrade_headers(echo):
    for name in ("upgrade", "http2-settings", "connection"):
        assert echo_headers(echo, name) == [], f"{name} was forwarded"


def echo_is(path, host):
    def check(echo):
        assert echo["path"] == path
        assert echo_headers(echo, "host") == [host]
    return check


def trailers_are(*expected):
    def check(echo):
        assert [tuple(t) for t in echo["trailers"]] == list(expected)
    return check


def body_length_is(echo, n):
    assert echo["body_length"] == n


def post_te(te, body=chunked([b"hello"]), path="/xc"):
    return raw_request("POST", path, [("Transfer-Encoding", te)], body)


# Trailer fields a client may not use to override what the head or the proxy decides.
# (Transfer-Encoding in a trailer section is refused by the parser itself: see its own case.)
FORBIDDEN_TRAILERS = [
    ("Content-Length", "5"), ("Host", "secret.internal"),
    ("Connection", "close"), ("Keep-Alive", "timeout=1"), ("Upgrade", "h2c"), ("TE", "trailers"),
    ("Trailer", "x-ok"), ("Authorization", "Bearer stolen"), ("Cookie", "a=b"),
    ("Content-Type", "text/evil"), ("Content-Encoding", "gzip"), ("Range", "bytes=0-1"),
    ("Expect", "100-continue"), ("Max-Forwards", "0"), ("If-Match", "*"),
    ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"), ("X-Request-Id", "forged"),
]

CASES = [
    # --- Upgrade: only what the route allows is forwarded (issue 13, defect 1) ---------------
    Case("h2c-upgrade-is-not-tunnelled",
         ((raw_request("GET", "/up101", H2C_HEADERS), 200), (ADMIN, 403)),
         reaches=("/up101",), never=("/admin/secret",),
         counters={"listener.ingress.rq_upgrade_stripped": 1}),
    Case("h2c-upgrade-pipelined-bytes-are-routed",
         ((raw_request("GET", "/up101", H2C_HEADERS) + ADMIN, 200), (b"", 403)),
         never=("/admin/secret",)),
    Case("h2c-upgrade-headers-not-forwarded",
         ((raw_request("GET", "/up101", H2C_HEADERS), 200),), echo=no_upgrade_headers),
    Case("http2-settings-without-upgrade-not-forwarded",
         ((raw_request("GET", "/echo", [("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]), 200),),
         echo=no_upgrade_headers),
    Case("unlisted-upgrade-token-stripped",
         ((raw_request("GET", "/up101", [("Connection", "Upgrade"), ("Upgrade", "x-tunnel")])
           + ADMIN, 200), (b"", 403)),
         never=("/admin/secret",)),
    # An upstream that switches protocols unasked must not get a tunnel either.
    Case("unasked-101-from-upstream",
         ((raw_request("GET", "/up101?always=1"), 502), (ADMIN, 403)),
         reaches=("/up101",), never=("/admin/secret",)),
    Case("websocket-disabled-on-route",
         ((raw_request("GET", "/ws", WS_HEADERS + [("X-No-Upgrade", "1")]), 426),),
         reaches=("/ws",)),
    Case("no-upgrades-on-listener",
         ((raw_request("GET", "/up101", [("Connection", "Upgrade"), ("Upgrade", "websocket")]),
           200),),
         echo=no_upgrade_headers, listener={"upgrade_configs": []}),

    # --- Transfer-Encoding other than exactly "chunked": 501, before any dispatch ------------
    # (issue 13, defects 2 and 3)
    Case("te-xchunked", ((post_te("xchunked"), 501),), closed=True, never=("/xc",), refused=True),
    Case("te-gzip", ((post_te("gzip"), 501),), closed=True, never=("/xc",), refused=True),
    Case("te-identity", ((post_te("identity"), 501),), closed=True, never=("/xc",),
         refused=True),
    Case("te-gzip-then-chunked", ((post_te("gzip, chunked"), 501),), closed=True,
         never=("/xc",), refused=True),
    Case("te-chunked-twice-in-one-field", ((post_te("chunked, chunked"), 501),), closed=True,
         never=("/xc",), refused=True),
    Case("te-chunked-in-two-fields",
         ((raw_request("POST", "/xc", [("Transfer-Encoding", "chunked"),
                                       ("Transfer-Encoding", "chunked")], chunked([b"hello"])),
           501),), closed=True, never=("/xc",), refused=True),
    Case("te-empty", ((post_te(""), 501),), closed=True, never=("/xc",), refused=True),
    Case("te-chunked-then-cl",
         ((raw_request("POST", "/xc", [("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
                       chunked([b"hello"])), 400),), closed=True, never=("/xc",), refused=True),
    Case("cl-then-te-chunked",
         ((raw_request("POST", "/xc", [("Content-Length", "3"), ("Transfer-Encoding", "chunked")],
                       chunked([b"hello"])), 400),), closed=True, never=("/xc",), refused=True),
    Case("te-chunked-any-case-accepted",
         ((post_te("Chunked", path="/echo"), 200),),
         echo=lambda echo: body_length_is(echo, 5)),

    # --- Trailers: framing, routing, control and proxy-owned fields dropped (defect 5) -------
    Case("request-trailers-filtered",
         ((raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")],
                       chunked([b"hello"], FORBIDDEN_TRAILERS + [("X-Ok", "kept")])), 200),
          (raw_request("GET", "/echo?after"), 200)),
         echo=trailers_are(), counters={
             "listener.ingress.rq_trailers_dropped": len(FORBIDDEN_TRAILERS)}),
    Case("te-in-trailers",
         ((raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")],
                       chunked([b"hello"], [("Transfer-Encoding", "chunked")])), 501),),
         closed=True),
    Case("request-trailers-kept",
         ((raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")],
                       chunked([b"hello"], [("X-Ok", "kept"), ("X-Checksum", "abc")])), 200),),
         echo=trailers_are(("x-ok", "kept"), ("x-checksum", "abc")),
         counters={"listener.ingress.rq_trailers_dropped": 0}),

    # --- Host ----------------------------------------------------------------------------------
    Case("empty-host", ((raw_request("GET", "/empty-host", host=""), 400),), closed=True,
         never=("/empty-host",), refused=True),
    Case("blank-host", ((raw_request("GET", "/blank-host", host="   "), 400),), closed=True,
         never=("/blank-host",), refused=True),

    # --- Absolute-form targets (issue 11, §6) ------------------------------------------------
    # upstream.py answers "/" with 404; the access log shows what it was sent.
    Case("absolute-form-query-without-path",
         ((raw_request("GET", "http://h?x", host="other"), 404),),
         reaches=("/",), logged={"authority": "h", "path": "/?x", "status": 404}),
    Case("absolute-form-port-path-query-fragment",
         ((raw_request("GET", "http://h:8080/echo?q=1#f"), 200),),
         echo=echo_is("/echo?q=1", "h:8080")),
    Case("absolute-form-fragment-without-path", ((raw_request("GET", "http://h#f"), 400),),
         closed=True, refused=True),
    Case("absolute-form-authority-only",
         ((raw_request("GET", "http://h:81"), 404),),
         reaches=("/",), logged={"authority": "h:81", "path": "/", "status": 404}),
    Case("absolute-form-https-path",
         ((raw_request("GET", "https://h/echo"), 200),), echo=echo_is("/echo", "h")),
    Case("absolute-form-userinfo", ((raw_request("GET", "http://user@h/echo"), 400),),
         closed=True, refused=True),
    Case("absolute-form-empty-authority", ((raw_request("GET", "http:///echo"), 400),),
         closed=True, refused=True),
]


def config(upstream_port, listener_extra):
    routes = [
        direct("admin", {"prefix": "/admin/"}, 403, "forbidden\n"),
        to_cluster("ws-off", {"prefix": "/ws",
                              "headers": [{"name": "x-no-upgrade", "present": True}]}, "backend",
                   upgrade_configs=[{"upgrade_type": "websocket", "enabled": False}]),
        to_cluster("all", {"prefix": "/"}, "backend"),
    ]
    return {
        "listeners": [{"name": "ingress", "routes": routes, **listener_extra}],
        "clusters": [cluster("backend", upstream_port)],
    }


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_attack(upstream, switchyard, case):
    sy = switchyard(config(upstream.port, case.listener))
    port = sy.port("ingress")
    with RawClient(port) as c:
        c.send(WARM)
        assert c.read_response().status == 200
        responses = []
        for data, _status in case.exchanges:
            if data:
                c.send(data)
            try:
                responses.append(c.read_response())
            except AssertionError as e:  # a closed or silent connection: judged below
                responses.append(e)
                break
        # What reached the upstream is judged first: it is what an attack is after.
        paths = upstream.stats()["paths"]
        for path in case.never:
            assert path not in paths, f"the upstream received {path}: {paths}"
        for path in case.reaches:
            assert paths.get(path), f"the upstream never received {path}: {paths}"
        got = [r.status if not isinstance(r, Exception) else repr(r) for r in responses]
        assert got == [s for _, s in case.exchanges], f"statuses: {got}"
        if case.echo:
            case.echo(responses[-1].json())
        if case.closed:
            c.wait_closed()
        else:
            c.send(raw_request("GET", "/echo?still-open"))
            assert c.read_response().status == 200
    if case.refused:
        status = case.exchanges[-1][1]
        entry = sy.wait_access_entry(lambda e: e["status"] == status,
                                     what=f"the access log entry of the {status}")
        assert entry["upstream_host"] == "", entry
    if case.logged:
        sy.wait_access_entry(lambda e: case.logged.items() <= e.items(),
                             what=f"an access log entry with {case.logged}")
    for name, value in case.counters.items():
        until(lambda: sy.stat(name) == value, what=f"{name} == {value}")
    # The proxy is fine for everyone else.
    assert request(port, "GET", "/echo").status == 200
