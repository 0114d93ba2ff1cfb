"""Slow and greedy clients must not starve the others (issue 13, defect 6): request bodies that
stop arriving (timeouts.request_body_idle: 408), requests that wait too long for an upstream
connection (the cluster's pending_timeout: 503, flag UO), and one address holding too many
connections or requests (limits.connections_per_client: closed at accept;
limits.streams_per_client: 429, flag RL).

The "other" clients connect from 127.0.0.2 (all of 127/8 is loopback), so the per-address caps
tell them apart from the attacker on 127.0.0.1.
"""
import concurrent.futures
import http.client
import select
import socket

from h2util import H2Client
from harness import RawClient, Response, cluster, request, to_cluster, until

OTHER = "127.0.0.2"


def config(upstream_port, limits=None, timeouts=None, cluster_extra=None):
    listener = {"name": "ingress", "protocols": ["http1", "http2"],
                "routes": [to_cluster("all", {"prefix": "/"}, "up")]}
    if limits:
        listener["limits"] = limits
    if timeouts:
        listener["timeouts"] = timeouts
    # One worker: the pools and the per-client caps are per worker, and the test fills them.
    return {"workers": 1, "listeners": [listener],
            "clusters": [cluster("up", upstream_port, **(cluster_extra or {}))]}


def get_from(port, path, source, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return Response(r.status, r.reason, headers=r.getheaders(), body=r.read())
    finally:
        conn.close()


def raw_from(port, source, timeout=30):
    """A RawClient whose connection comes from SOURCE."""
    c = RawClient.__new__(RawClient)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                      source_address=(source, 0))
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.timeout = timeout
    c.buf = b""
    return c


def stalled_post(port, source="127.0.0.1", path="/echo"):
    """A POST that promises 100 body bytes, sends one, and stops."""
    c = raw_from(port, source)
    c.send(f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nx")
    return c


def test_a_request_waiting_for_a_full_pool_gets_503_after_pending_timeout(upstream, switchyard):
    sy = switchyard(config(upstream.port, cluster_extra={"max_connections": 1,
                                                         "pending_timeout": "1s"}))
    port = sy.port("ingress")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(request, port, "GET", "/slow?hold=pending")
        until(lambda: upstream.stats()["held"] == 1, what="the pool's one connection in use")
        queued = request(port, "GET", "/echo?queued", timeout=30)
        assert queued.status == 503, queued
        upstream.release("pending")
        assert held.result(timeout=30).status == 200
    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?queued")
    assert e["response_flags"] == "UO" and e["details"] == "upstream pending queue timeout", e
    assert sy.stat("cluster.up.rq_pending_timeout") == 1
    assert sy.stat("cluster.up.rq_overflow") == 0


def test_a_body_that_stops_gets_408_and_frees_its_upstream_connection(upstream, switchyard):
    sy = switchyard(config(upstream.port, timeouts={"request_body_idle": "1s"},
                           cluster_extra={"max_connections": 1}))
    port = sy.port("ingress")
    with stalled_post(port, path="/echo?stalled") as c:
        resp = c.read_response()
        assert resp.status == 408, resp
        c.wait_closed()
    # The upstream request was under way (its one connection was taken): it is freed.
    assert request(port, "GET", "/echo?after").status == 200
    assert sy.stat("listener.ingress.rq_body_timeout") == 1
    assert sy.stat("listener.ingress.rq_header_timeout") == 0
    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?stalled")
    assert e["status"] == 408 and e["upstream_host"], e


def test_a_client_over_connections_per_client_is_closed_others_are_not(upstream, switchyard):
    sy = switchyard(config(upstream.port, limits={"connections_per_client": 2}))
    port = sy.port("ingress")
    held = []
    try:
        for i in range(2):
            c = RawClient(port)
            c.send(f"GET /echo?held{i} HTTP/1.1\r\nHost: test\r\n\r\n")
            assert c.read_response().status == 200  # accepted, and kept alive
            held.append(c)
        with RawClient(port) as extra:
            extra.wait_closed()
        until(lambda: sy.stat("listener.ingress.cx_client_limit") == 1,
              what="cx_client_limit == 1")
        assert get_from(port, "/echo?other", OTHER).status == 200
    finally:
        for c in held:
            c.close()
    # Places are given back when connections close.
    until(lambda: request(port, "GET", "/echo?again").status == 200, ignore=(OSError,),
          what="a new connection once the held ones closed")


def test_a_client_over_streams_per_client_gets_429_others_are_served(upstream, switchyard):
    sy = switchyard(config(upstream.port, limits={"streams_per_client": 2}))
    port = sy.port("ingress")
    with H2Client(port) as c:
        held = [c.request("GET", f"/slow?hold=streams&i={i}") for i in range(2)]
        until(lambda: upstream.stats()["held"] == 2, what="two streams held upstream")
        over = c.response(c.request("GET", "/echo?over"), timeout=30)
        assert over.status == 429, over
        assert get_from(port, "/echo?other", OTHER).status == 200
        upstream.release("streams")
        for sid in held:
            assert c.response(sid, timeout=30).status == 200
        # Their places are free again.
        assert c.get("/echo?after", timeout=30).status == 200
    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?over")
    assert e["response_flags"] == "RL" and e["details"] == "client_stream_limit", e
    assert sy.stat("listener.ingress.rq_client_limit") == 1


def test_trickling_bodies_do_not_starve_a_cluster(upstream, switchyard):
    # The battery's attack, scaled to a pool of 4: slow POSTs from one address, more than the
    # pool holds, each sending one body byte and then nothing. Ordinary GETs from other
    # addresses must still be served, and every slow request ends, refused (429) or timed
    # out (408), instead of holding the pool forever.
    slow_count, cap = 12, 2
    sy = switchyard(config(upstream.port,
                           limits={"streams_per_client": cap},
                           timeouts={"request_body_idle": "2s"},
                           cluster_extra={"max_connections": 4, "pending_timeout": "30s"}))
    port = sy.port("ingress")
    slow = [stalled_post(port, path=f"/echo?slow{i}") for i in range(slow_count)]
    try:
        until(lambda: sy.stat("listener.ingress.rq_client_limit") == slow_count - cap,
              what="the slow requests over the cap refused")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            # Sixteen ordinary clients, each from its own address.
            gets = list(pool.map(lambda i: get_from(port, f"/echo?get{i}", f"127.0.1.{i + 1}"),
                                 range(16)))
        assert [r.status for r in gets] == [200] * 16, gets
        statuses = sorted(c.read_response().status for c in slow)
        assert statuses == [408] * cap + [429] * (slow_count - cap), statuses
    finally:
        for c in slow:
            c.close()
    assert sy.stat("listener.ingress.rq_body_timeout") == cap


def test_a_body_the_proxy_holds_back_is_not_timed(upstream, switchyard):
    # The body clock stops while the proxy itself stops reading (here: the request waits for
    # the pool's one connection and has buffered all it may): that wait is not the client's.
    sy = switchyard(config(upstream.port, timeouts={"request_body_idle": "1s"},
                           cluster_extra={"max_connections": 1, "pending_timeout": "60s"}))
    port = sy.port("ingress")
    total = 4 << 20
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(request, port, "GET", "/slow?hold=pool")
        until(lambda: upstream.stats()["held"] == 1, what="the pool's one connection in use")
        big = RawClient(port)
        big.send(f"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: {total}\r\n\r\n")
        # More than the proxy buffers for a waiting request (256 KiB) and one read: from here
        # on it has stopped reading this client.
        chunk = b"b" * 65536
        sent = 0
        big.sock.setblocking(False)
        while sent < (1 << 20):
            select.select([], [big.sock], [], 30)
            try:
                sent += big.sock.send(chunk)
            except BlockingIOError:
                continue
        # A body that really stopped, started after that, times out: the clock has run
        # request_body_idle for the held-back one too.
        with stalled_post(port, path="/echo?canary") as canary:
            assert canary.read_response().status == 408
        assert not select.select([big.sock], [], [], 0)[0], "the held-back client got an answer"
        upstream.release("pool")
        assert held.result(timeout=30).status == 200
        big.sock.setblocking(True)
        big.sock.settimeout(30)
        while sent < total:
            sent += big.sock.send(chunk[: total - sent])
        resp = big.read_response()
        assert resp.status == 200 and resp.json()["length"] == total, resp
        big.close()
    assert sy.stat("listener.ingress.rq_body_timeout") == 1
