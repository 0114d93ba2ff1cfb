"""Upstream failures and timeouts (502, 504, connect retry, connection cap), and the client-side
timeouts that protect the proxy (slowloris, idle connections)."""
import socket
import threading
import time

from harness import (RawClient, cluster, direct, free_port, proxy_all, raw_request, request,
                     until)


def test_upstream_down_502(switchyard):
    dead = free_port()  # nobody listens here
    sy = switchyard(proxy_all(dead, cluster_extra={"connect_timeout": "1s"}))
    resp = request(sy.port("ingress"), "GET", "/anything")
    assert resp.status == 502
    # The connection to the client survives a 502.
    with RawClient(sy.port("ingress")) as c:
        for _ in range(2):
            c.send(raw_request("GET", "/again"))
            assert c.read_response().status == 502


def test_slow_upstream_504_then_pool_is_clean(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port, cluster_extra={"timeout": "1s"}))
    port = sy.port("ingress")
    resp = request(port, "GET", "/slow?ms=3000")
    assert resp.status == 504
    # The upstream connection that timed out must not be reused: its late "slow\n" response
    # would otherwise be read as the answer to the next request.
    for _ in range(3):
        resp = request(port, "GET", "/echo?after-timeout")
        assert resp.status == 200 and resp.json()["path"] == "/echo?after-timeout"


def test_route_timeout_overrides_cluster(upstream, switchyard):
    sy = switchyard({
        "listeners": [{"name": "ingress", "routes": [
            {"name": "short", "match": {"prefix": "/slow"}, "cluster": "backend",
             "timeout": "500ms"},
        ]}],
        "clusters": [cluster("backend", upstream.port, timeout="15s")],
    })
    assert request(sy.port("ingress"), "GET", "/slow?ms=3000").status == 504


def test_connect_failure_retries_another_endpoint(upstream, switchyard):
    dead = free_port()
    sy = switchyard({**proxy_all(upstream.port), "workers": 1,
                     "clusters": [cluster("backend", dead, upstream.port, connect_retries=1)]})
    for i in range(6):  # round-robin lands on the dead endpoint about half of the time
        resp = request(sy.port("ingress"), "GET", f"/echo?i={i}")
        assert resp.status == 200, f"request {i}: {resp.status}"
    until(lambda: (sy.stat("cluster.backend.cx_connect_fail") or 0) >= 1,
          what="cluster.backend.cx_connect_fail >= 1")


def test_connect_retries_zero_gives_502(upstream, switchyard):
    dead = free_port()
    sy = switchyard({**proxy_all(upstream.port), "workers": 1,
                     "clusters": [cluster("backend", dead, upstream.port, connect_retries=0)]})
    statuses = [request(sy.port("ingress"), "GET", "/echo").status for _ in range(6)]
    assert 502 in statuses and 200 in statuses, statuses


def test_max_connections_caps_upstream_connections(upstream, switchyard):
    sy = switchyard({**proxy_all(upstream.port), "workers": 1,
                     "clusters": [cluster("backend", upstream.port, max_connections=2)]})
    port = sy.port("ingress")
    results = []

    def one(i):
        results.append(request(port, "GET", f"/slow?hold=cap&i={i}").status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    until(lambda: upstream.stats()["held"] == 2, what="two requests held upstream")
    # The other three wait in the proxy's queue, not on new connections.
    assert upstream.stats()["connections_total"] == 2
    upstream.release("cap")
    for t in threads:
        t.join(30)
    assert results == [200] * 5
    assert upstream.stats()["connections_total"] == 2


def slowloris_closed(port, first, trickle, deadline=10):
    """Sends FIRST, then one TRICKLE every 0.25 s, until the proxy closes the connection.
    Returns what it answered (b"" or a 408)."""
    with RawClient(port) as c:
        c.send(first)
        c.sock.settimeout(0.25)
        end = time.monotonic() + deadline
        received = b""
        while time.monotonic() < end:
            try:
                data = c.sock.recv(4096)
            except socket.timeout:
                try:
                    c.sock.sendall(trickle)
                except (BrokenPipeError, ConnectionResetError):
                    return received
                continue
            except ConnectionResetError:
                return received
            if not data:
                return received
            received += data
        raise AssertionError(f"the proxy kept a slowloris connection open for {deadline}s")


def test_slowloris_headers_closed(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port, listener_extra={
        "timeouts": {"request_headers": "1s", "idle": "60s"}}))
    answer = slowloris_closed(sy.port("ingress"), b"GET /echo HTTP/1.1\r\nHost: t\r\n",
                              b"X-Slow: 1\r\n")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert upstream.stats()["requests_total"] == 0


def test_slowloris_request_line_closed(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port, listener_extra={
        "timeouts": {"request_headers": "1s", "idle": "60s"}}))
    answer = slowloris_closed(sy.port("ingress"), b"GET /", b"a")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_slowloris_after_a_good_request(upstream, switchyard):
    # The header timer also runs for the second request on a keep-alive connection.
    sy = switchyard(proxy_all(upstream.port, listener_extra={
        "timeouts": {"request_headers": "1s", "idle": "60s"}}))
    first = raw_request("GET", "/echo") + b"GET /echo HTTP/1.1\r\n"
    answer = slowloris_closed(sy.port("ingress"), first, b"X-Slow: 1\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert upstream.stats()["requests_total"] == 1


def test_silent_connection_closed(switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "timeouts": {
        "request_headers": "1s", "idle": "2s"}, "routes": [direct("any", {"prefix": "/"})]}]})
    with RawClient(sy.port("ingress")) as c:  # connects and never sends a byte
        c.wait_closed(timeout=10)


def test_idle_keepalive_connection_closed(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port, listener_extra={"timeouts": {"idle": "1s"}}))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/echo"))
        assert c.read_response().status == 200
        c.wait_closed(timeout=10)


def test_slow_response_is_not_an_idle_connection(upstream, switchyard):
    # The idle timeout is for connections with nothing in flight: a request waiting on a slow
    # upstream is not idle.
    sy = switchyard(proxy_all(upstream.port, listener_extra={"timeouts": {"idle": "1s"}}))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/slow?ms=2500"))
        resp = c.read_response()
        assert resp.status == 200 and resp.body == b"slow\n"
