"""Upgrade passthrough: after the upstream's 101 the proxy is a byte pipe both ways."""
import os

from harness import RawClient, proxy_all, raw_request, request, until

WS_HEADERS = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]


def upgrade(port):
    c = RawClient(port)
    c.send(raw_request("GET", "/ws", WS_HEADERS))
    resp = c.read_response()
    assert resp.status == 101, resp
    assert "websocket" in resp.tokens("upgrade")
    assert "upgrade" in resp.tokens("connection")
    assert resp.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    return c


def test_websocket_upgrade_echoes_bytes(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with upgrade(sy.port("ingress")) as c:
        for message in (b"hello", b"\x81\x05hello", bytes(range(256)), b"GET / HTTP/1.1\r\n\r\n"):
            c.send(message)
            assert c.read_exact(len(message)) == message
        # A large payload both ways at once: the pipe must keep flowing in each direction.
        big = os.urandom(4 * 1024 * 1024)
        got = b""
        for offset in range(0, len(big), 65536):
            c.send(big[offset:offset + 65536])
            while len(got) < offset - 256 * 1024:  # keep at most ~256 KiB unread
                got += c.recv_some()
        while len(got) < len(big):
            got += c.recv_some()
        assert got == big


def test_upgrade_upstream_closes_then_client_sees_close(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    c = upgrade(sy.port("ingress"))
    c.send(b"ping")
    assert c.read_exact(4) == b"ping"
    c.sock.shutdown(1)  # our half-close reaches upstream.py, which then closes its side
    c.wait_closed(timeout=10)
    c.close()
    until(lambda: upstream.stats()["connections_active"] == 0, what="upstream side closed")


def test_upgrade_client_close_closes_upstream(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    c = upgrade(sy.port("ingress"))
    c.send(b"x")
    assert c.read_exact(1) == b"x"
    c.close()
    until(lambda: upstream.stats()["connections_active"] == 0, what="upstream side closed")


def test_upgrade_refused_by_upstream_stays_http(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        # No Upgrade header: upstream.py answers 426, and the connection stays plain HTTP.
        c.send(raw_request("GET", "/ws"))
        resp = c.read_response()
        assert resp.status == 426 and resp.body == b"upgrade required\n"
        c.send(raw_request("GET", "/echo"))
        assert c.read_response().json()["path"] == "/echo"


def test_upgrade_to_non_upgrading_path(upstream, switchyard):
    # An upgrade request the upstream answers with an ordinary 200: no switch happens, and the
    # next request on the connection works.
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/echo", WS_HEADERS))
        resp = c.read_response()
        assert resp.status == 200
        c.send(raw_request("GET", "/status?code=201"))
        assert c.read_response().status == 201
    assert request(sy.port("ingress"), "GET", "/echo").status == 200
