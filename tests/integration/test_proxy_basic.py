"""Requests through the proxy to real upstreams: methods, headers it adds and removes, routing,
keep-alive to the upstream, pipelining, HTTP/1.0, HEAD, 100-continue, Connection: close."""
import os
import subprocess

import pytest

import harness
from harness import (RawClient, cluster, direct, echo_headers, proxy_all, raw_request, request,
                     to_cluster, until)


def nginx_config(nginx, **listener_extra):
    return {
        "listeners": [{"name": "ingress",
                       "routes": [to_cluster("nginx", {"prefix": "/"}, "nginx")],
                       **listener_extra}],
        "clusters": [cluster("nginx", nginx.port)],
    }


# --- GET and POST, small and large -----------------------------------------------------------


def test_get_small_and_files_from_nginx(nginx, switchyard):
    sy = switchyard(nginx_config(nginx))
    port = sy.port("ingress")
    resp = request(port, "GET", "/small")
    assert resp.status == 200 and resp.body == harness.Nginx.SMALL_BODY
    for name in ("file16k", "file4m"):
        resp = request(port, "GET", f"/{name}")
        assert resp.status == 200
        assert resp.body == nginx.files[name]
    assert request(port, "GET", "/no-such-file").status == 404  # nginx's 404, passed through


def test_get_with_curl(nginx, switchyard):
    sy = switchyard(nginx_config(nginx))
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}",
                          f"http://127.0.0.1:{sy.port('ingress')}/small"],
                         capture_output=True, check=True)
    body, _, code = out.stdout.rpartition(b"\n")
    assert code == b"200" and body == harness.Nginx.SMALL_BODY


def test_put_to_nginx_stores_the_body(nginx, switchyard):
    sy = switchyard(nginx_config(nginx))
    body = bytes(range(256)) * 4096  # 1 MiB
    resp = request(sy.port("ingress"), "PUT", "/uploads/one.bin", body=body)
    assert resp.status == 201
    assert nginx.uploaded("one.bin") == body


@pytest.mark.parametrize("size", [0, 1, 1000, 256 * 1024, 8 * 1024 * 1024])
def test_post_bodies_to_echo(upstream, switchyard, size):
    sy = switchyard(proxy_all(upstream.port))
    body = os.urandom(size)
    resp = request(sy.port("ingress"), "POST", "/echo?size=%d" % size, body=body,
                   headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 200
    echo = resp.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/echo?size=%d" % size
    assert echo["body_length"] == size
    assert echo["body_sha256"] == harness.sha256(body)


@pytest.mark.parametrize("method", ["GET", "DELETE", "OPTIONS", "PATCH", "PUT"])
def test_methods_pass_through(upstream, switchyard, method):
    sy = switchyard(proxy_all(upstream.port))
    body = b"patch" if method in ("PATCH", "PUT") else None
    echo = request(sy.port("ingress"), method, "/echo?x=y&z", body=body).json()
    assert echo["method"] == method and echo["path"] == "/echo?x=y&z"
    assert echo["body_length"] == (5 if body else 0)


def test_upstream_status_codes_pass_through(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    port = sy.port("ingress")
    for code in (201, 301, 404, 418, 500, 503):
        resp = request(port, "GET", f"/status?code={code}")
        assert resp.status == code and resp.body == f"status {code}\n".encode()
    # 204 and 304 have no body: the next response on the same connection must still parse.
    with RawClient(port) as c:
        for code in (204, 304, 200):
            c.send(raw_request("GET", f"/status?code={code}"))
            resp = c.read_response()
            assert resp.status == code
            assert resp.body == (b"status 200\n" if code == 200 else b"")


# --- headers the proxy adds and removes ---------------------------------------------------------


def test_forwarded_headers_added(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    port = sy.port("ingress")
    first = request(port, "GET", "/echo").json()
    assert echo_headers(first, "x-forwarded-for") == ["127.0.0.1"]
    assert echo_headers(first, "x-forwarded-proto") == ["http"]
    ids = echo_headers(first, "x-request-id")
    assert len(ids) == 1 and ids[0].strip()
    second = request(port, "GET", "/echo").json()
    assert echo_headers(second, "x-request-id") != ids, "request ids must differ"


def test_forwarded_for_appended_and_request_id_kept(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    echo = request(sy.port("ingress"), "GET", "/echo",
                   headers={"X-Forwarded-For": "203.0.113.7",
                            "X-Request-Id": "test-id-123"}).json()
    xff = echo_headers(echo, "x-forwarded-for")
    hops = [h.strip() for v in xff for h in v.split(",")]
    assert hops == ["203.0.113.7", "127.0.0.1"]
    assert echo_headers(echo, "x-request-id") == ["test-id-123"]


def test_end_to_end_headers_kept(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    echo = request(sy.port("ingress"), "GET", "/echo",
                   headers={"X-Custom": "one", "Accept": "text/plain",
                            "User-Agent": "switchyard-tests", "Cookie": "a=b"}).json()
    for name, value in (("x-custom", "one"), ("accept", "text/plain"),
                        ("user-agent", "switchyard-tests"), ("cookie", "a=b")):
        assert echo_headers(echo, name) == [value], name


def test_hop_by_hop_request_headers_removed(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/echo", [
            ("Connection", "keep-alive, X-Custom-Hop"),
            ("X-Custom-Hop", "must-not-pass"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "deflate"),
            ("Upgrade", "h2c"),  # not named in Connection: not an upgrade, just a stray header
            ("X-Kept", "yes"),
        ]))
        echo = c.read_response().json()
    for name in ("x-custom-hop", "keep-alive", "proxy-connection", "te", "upgrade",
                 "transfer-encoding"):
        assert echo_headers(echo, name) == [], f"{name} was forwarded"
    for value in echo_headers(echo, "connection"):
        assert "x-custom-hop" not in value.lower()
    assert echo_headers(echo, "x-kept") == ["yes"]


def test_hop_by_hop_response_headers_removed(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/hop_response"))
        resp = c.read_response()
        assert resp.status == 200 and resp.body == b"hop\n"
        assert resp.header("x-hop-resp") is None
        assert resp.header("proxy-connection") is None
        assert "timeout=5, max=77" not in resp.all("keep-alive")
        assert "x-hop-resp" not in resp.tokens("connection")
        assert resp.header("x-end-to-end") == "kept"
        # The connection is still usable: the upstream's Connection header was not obeyed.
        c.send(raw_request("GET", "/status?code=200"))
        assert c.read_response().status == 200


# --- routing ---------------------------------------------------------------------------------


def test_direct_response_routes_and_no_route(switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "routes": [
        direct("health", {"path": "/healthz"}, 200, "ok\n"),
        direct("teapot", {"prefix": "/tea"}, 418, "short and stout\n",
               headers=[("content-type", "text/plain"), ("x-pot", "1")]),
    ]}]})
    port = sy.port("ingress")
    resp = request(port, "GET", "/healthz")
    assert (resp.status, resp.body) == (200, b"ok\n")
    resp = request(port, "GET", "/teapot/x")
    assert (resp.status, resp.body) == (418, b"short and stout\n")
    assert resp.header("content-type") == "text/plain" and resp.header("x-pot") == "1"
    assert request(port, "GET", "/healthz/more").status == 404  # path is exact
    assert request(port, "GET", "/elsewhere").status == 404
    resp = request(port, "POST", "/healthz", body=b"ignored")
    assert (resp.status, resp.body) == (200, b"ok\n")


def test_route_matching(switchyard):
    routes = [
        direct("exact", {"path": "/exact"}, body="exact"),
        direct("regex", {"regex": "/items/[0-9]+"}, body="regex"),
        direct("host", {"prefix": "/", "hosts": ["api.example.com"]}, body="host"),
        direct("wild", {"prefix": "/", "hosts": ["*.example.org"]}, body="wildcard"),
        direct("hexact", {"prefix": "/h", "headers": [{"name": "x-tenant", "exact": "a"}]},
               body="tenant-a"),
        direct("hprefix", {"prefix": "/h", "headers": [{"name": "x-tenant", "prefix": "b"}]},
               body="tenant-b*"),
        direct("hregex", {"prefix": "/h", "headers": [{"name": "x-tenant", "regex": "c[0-9]"}]},
               body="tenant-c#"),
        direct("hpresent", {"prefix": "/h", "headers": [{"name": "x-any", "present": True}]},
               body="present"),
        direct("hinvert", {"prefix": "/h", "headers": [{"name": "x-tenant", "exact": "z",
                                                        "invert": True}]},
               body="not-z"),
        direct("prefix", {"prefix": "/"}, body="fallback"),
    ]
    sy = switchyard({"listeners": [{"name": "ingress", "routes": routes}]})
    port = sy.port("ingress")

    def body(path, **headers):
        resp = request(port, "GET", path, headers={k.replace("_", "-"): v
                                                   for k, v in headers.items()})
        assert resp.status == 200, resp
        return resp.text()

    assert body("/exact") == "exact"
    assert body("/exact?q=1") == "exact"  # the query string is not part of the path
    assert body("/exact/") == "fallback"
    assert body("/items/42") == "regex"
    assert body("/items/42x") == "fallback"  # regex must match the whole path
    assert body("/x", Host="api.example.com") == "host"
    assert body("/x", Host="api.example.com:8080") == "host"  # port ignored
    assert body("/x", Host="a.b.example.org") == "wildcard"
    assert body("/x", Host="example.org") == "fallback"
    assert body("/h", X_Tenant="a") == "tenant-a"
    assert body("/h", X_Tenant="bee") == "tenant-b*"
    assert body("/h", X_Tenant="c7") == "tenant-c#"
    assert body("/h", X_Tenant="c77", X_Any="1") == "present"
    assert body("/h", X_Tenant="y") == "not-z"
    assert body("/h", X_Tenant="z") == "fallback"


def test_route_to_two_clusters(make_upstream, switchyard):
    a, b = make_upstream("a"), make_upstream("b")
    sy = switchyard({
        "listeners": [{"name": "ingress", "routes": [
            to_cluster("to_a", {"prefix": "/a/"}, "a"),
            to_cluster("to_b", {"prefix": "/b/"}, "b"),
        ]}],
        "clusters": [cluster("a", a.port), cluster("b", b.port)],
    })
    port = sy.port("ingress")
    assert request(port, "GET", "/a/echo").status == 404  # upstream.py has no /a/echo ...
    assert a.stats()["paths"] == {"/a/echo": 1}          # ... but it was asked, not b
    assert b.stats()["requests_total"] == 0
    request(port, "GET", "/b/x")
    assert b.stats()["paths"] == {"/b/x": 1}


def test_round_robin_over_endpoints(make_upstream, switchyard):
    a, b = make_upstream("a"), make_upstream("b")
    sy = switchyard({**proxy_all(a.port), "workers": 1,
                     "clusters": [cluster("backend", a.port, b.port)]})
    seen = [request(sy.port("ingress"), "GET", "/echo").json()["server"] for _ in range(10)]
    assert seen.count("a") >= 3 and seen.count("b") >= 3, seen


# --- connections -----------------------------------------------------------------------------


def test_keepalive_reuse_to_nginx(nginx, switchyard):
    sy = switchyard({**nginx_config(nginx), "workers": 1})
    port = sy.port("ingress")
    n = 20
    with RawClient(port) as c:  # one client connection
        for _ in range(n):
            c.send(raw_request("GET", "/small"))
            assert c.read_response().status == 200
    for _ in range(n):  # a fresh client connection each time
        assert request(port, "GET", "/small").status == 200
    entries = until(lambda: len(nginx.access_entries()) >= 2 * n and nginx.access_entries())
    connections = {e["connection"] for e in entries}
    assert len(connections) < n // 2, f"{len(connections)} connections for {2 * n} requests"
    assert max(e["connection_requests"] for e in entries) >= 2


def test_keepalive_client_side(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        for i in range(5):
            c.send(raw_request("POST", f"/echo?i={i}", [("Content-Length", "3")], b"abc"))
            resp = c.read_response()
            assert resp.status == 200 and resp.json()["path"] == f"/echo?i={i}"
        assert c.is_open_now()


def test_pipelined_requests_answered_in_order(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port, routes_before=[
        direct("direct", {"path": "/direct"}, 200, "direct\n")]))
    batch = b"".join([
        raw_request("GET", "/slow?hold=pipe"),
        raw_request("GET", "/direct"),
        raw_request("POST", "/echo?n=1", [("Content-Length", "5")], b"11111"),
        raw_request("POST", "/echo?n=2", [("Transfer-Encoding", "chunked")],
                    harness.chunked([b"22", b"222"])),
        raw_request("HEAD", "/echo?n=3"),
        raw_request("GET", "/echo?n=4"),
    ])
    with RawClient(sy.port("ingress")) as c:
        c.send(batch)  # all six in one write
        until(lambda: upstream.stats()["held"] == 1, what="the first request to reach upstream")
        upstream.release("pipe")
        assert c.read_response().body == b"slow\n"
        assert c.read_response().body == b"direct\n"
        one = c.read_response().json()
        assert one["path"] == "/echo?n=1" and one["body_sha256"] == harness.sha256(b"11111")
        two = c.read_response().json()
        assert two["path"] == "/echo?n=2" and two["body_sha256"] == harness.sha256(b"22222")
        head = c.read_response("HEAD")
        assert head.status == 200 and head.body == b""
        assert c.read_response().json()["path"] == "/echo?n=4"


def test_http10_gets_response_then_close(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port, routes_before=[
        direct("direct", {"path": "/direct"}, 200, "direct\n")]))
    for path in ("/direct", "/echo"):
        with RawClient(sy.port("ingress")) as c:
            c.send(raw_request("GET", path, version="HTTP/1.0"))
            resp = c.read_response()
            assert resp.status == 200
            if path == "/echo":
                assert resp.json()["method"] == "GET"
            else:
                assert resp.body == b"direct\n"
            c.wait_closed()


def test_http10_streamed_response_is_not_chunked(upstream, switchyard):
    # An HTTP/1.0 client does not know chunked: a body of unknown length ends with the close.
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/stream?chunks=5&size=100", version="HTTP/1.0"))
        resp = c.read_response()
        assert resp.status == 200
        assert "chunked" not in resp.tokens("transfer-encoding")
        assert resp.body == harness.stream_payload(5, 100)
        c.wait_closed()


def test_http10_without_host(switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "routes": [
        direct("any", {"prefix": "/"}, 200, "hi\n")]}]})
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/", version="HTTP/1.0", host=None))
        assert c.read_response().body == b"hi\n"
        c.wait_closed()


def test_head_gets_no_body(nginx, switchyard):
    sy = switchyard(nginx_config(nginx))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("HEAD", "/file16k"))
        head = c.read_response("HEAD")
        assert head.status == 200 and head.header("content-length") == "16384"
        # If the proxy sent a body after the HEAD response, this would read garbage.
        c.send(raw_request("GET", "/small"))
        resp = c.read_response()
        assert resp.status == 200 and resp.body == harness.Nginx.SMALL_BODY


def test_expect_100_continue(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    body = b"z" * 10000
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", "/echo", [("Content-Length", str(len(body))),
                                              ("Expect", "100-continue")]))
        interim = c.read_head()  # the body is not sent until the proxy says so
        assert interim.status == 100
        c.send(body)
        resp = c.read_response()
        assert resp.status == 200
        assert resp.json()["body_sha256"] == harness.sha256(body)


def test_connection_close_closes_after_response(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port, routes_before=[
        direct("direct", {"path": "/direct"}, 200, "direct\n")]))
    for path in ("/direct", "/echo"):
        with RawClient(sy.port("ingress")) as c:
            c.send(raw_request("GET", path, [("Connection", "close")]))
            resp = c.read_response()
            assert resp.status == 200
            c.wait_closed()
