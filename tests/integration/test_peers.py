"""The test peers themselves (upstream.py and the nginx fixture), without the proxy: if these
fail, the other tests' failures say nothing about switchyard."""
import hashlib

import harness
from harness import RawClient, chunked, raw_request, request, stream_payload


def test_upstream_echo_content_length(upstream):
    body = b"x" * 1000
    resp = request(upstream.port, "POST", "/echo?a=1", body=body, headers={"X-Test": "1"})
    assert resp.status == 200
    echo = resp.json()
    assert echo["method"] == "POST" and echo["path"] == "/echo?a=1"
    assert echo["body_length"] == 1000 and echo["body_sha256"] == harness.sha256(body)
    assert harness.echo_headers(echo, "x-test") == ["1"]


def test_upstream_chunked_request_trailers_and_keepalive(upstream):
    with RawClient(upstream.port) as c:
        c.send(raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")],
                           chunked([b"abc", b"defg"], trailers=[("x-t", "1")])))
        first = c.read_response().json()
        c.send(raw_request("GET", "/echo"))
        second = c.read_response().json()
    assert first["body_length"] == 7 and first["body_sha256"] == harness.sha256(b"abcdefg")
    assert first["trailers"] == [["x-t", "1"]]
    assert second["connection"] == first["connection"] and second["connection_request"] == 2


def test_upstream_expect_100(upstream):
    with RawClient(upstream.port) as c:
        c.send(raw_request("POST", "/echo", [("Content-Length", "5"),
                                              ("Expect", "100-continue")]))
        assert c.read_head().status == 100
        c.send(b"hello")
        assert c.read_response().json()["body_length"] == 5


def test_upstream_stream_hold_and_trailers(upstream):
    with RawClient(upstream.port) as c:
        c.send(raw_request("GET", "/stream?chunks=3&size=10&hold=k"))
        head = c.read_head()
        assert head.status == 200 and "chunked" in head.tokens("transfer-encoding")
        assert c.read_line() == b"a"
        assert c.read_exact(12) == b"a" * 10 + b"\r\n"
        harness.until(lambda: upstream.stats()["held"] == 1, what="held")
        upstream.release("k")
        rest = c._chunked()[0]
        assert rest == stream_payload(3, 10)[10:]
    with RawClient(upstream.port) as c:
        c.send(raw_request("GET", "/trailers"))
        resp = c.read_response()
        assert resp.trailer("x-checksum") == hashlib.sha256(resp.body).hexdigest()


def test_upstream_strictness(upstream):
    upstream.expect_clean = False
    with RawClient(upstream.port) as c:
        c.send(b"GET /echo HTTP/1.1\nHost: x\n\n")
        assert c.read_response().status == 400
        c.wait_closed()
    assert upstream.stats()["protocol_errors"] == 1


def test_upstream_ws_and_misc(upstream):
    with RawClient(upstream.port) as c:
        c.send(raw_request("GET", "/ws", [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                          ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]))
        head = c.read_response()
        assert head.status == 101
        assert head.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        c.send(b"ping")
        assert c.read_exact(4) == b"ping"
    assert request(upstream.port, "GET", "/status?code=503").status == 503
    with RawClient(upstream.port) as c:
        c.send(raw_request("GET", "/eof?size=5000"))
        resp = c.read_response()
        assert resp.body == b"e" * 5000


def test_nginx_serves_files_and_logs_connections(nginx):
    assert request(nginx.port, "GET", "/small").body == harness.Nginx.SMALL_BODY
    assert request(nginx.port, "GET", "/file16k").body == nginx.files["file16k"]
    with RawClient(nginx.port) as c:
        for _ in range(3):
            c.send(raw_request("GET", "/small"))
            assert c.read_response().status == 200
        c.send(raw_request("HEAD", "/big"))
        head = c.read_response("HEAD")
        assert head.header("content-length") == str(harness.Nginx.BIG_SIZE)
    body = b"y" * 100000
    resp = request(nginx.port, "PUT", "/uploads/y.bin", body=body)
    assert resp.status == 201
    assert nginx.uploaded("y.bin") == body
    entries = harness.until(lambda: len(nginx.access_entries()) == 7 and nginx.access_entries())
    assert len({e["connection"] for e in entries}) == 4  # 2 single, 1 shared by 4, 1 POST
    assert entries[-1]["request_length"] > 100000
