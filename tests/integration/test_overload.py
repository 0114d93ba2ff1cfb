"""Overload protection (issue 13, Build §4): process-wide caps on downstream connections and on
the bytes all streams hold in buffers. Past the first, new connections are closed at accept
(overload.cx_refused); past the second, new streams get 503 with flag OL (overload.rq_refused)
while the streams in flight carry on. Each test drives the proxy into its cap and out again,
watching the gauges overload.downstream_connections and overload.buffered_bytes.
"""
import resource
import socket

from h2.settings import SettingCodes
from h2util import H2Client
from harness import LOCALHOST, RawClient, cluster, request, run_switchyard, to_cluster, until


def config(upstream_port, overload=None):
    cfg = {"workers": 2,
           "listeners": [{"name": "ingress", "protocols": ["http1", "http2"],
                          "routes": [to_cluster("all", {"prefix": "/"}, "up")]}],
           "clusters": [cluster("up", upstream_port)]}
    if overload is not None:
        cfg["overload"] = overload
    return cfg


def kept_alive(port, tag):
    """A connection that has had one request answered and stays open."""
    c = RawClient(port)
    c.send(f"GET /echo?{tag} HTTP/1.1\r\nHost: test\r\n\r\n")
    resp = c.read_response()
    assert resp.status == 200, resp
    return c


def test_connections_past_the_cap_are_refused_until_some_close(upstream, switchyard):
    cap = 20
    sy = switchyard(config(upstream.port, {"max_downstream_connections": cap}))
    port = sy.port("ingress")
    assert sy.stat("overload.max_downstream_connections") == cap
    held = []
    try:
        for i in range(cap):
            held.append(kept_alive(port, f"held{i}"))
        # Both workers have accepted every one of them (each was answered).
        assert sy.stat("overload.downstream_connections") == cap
        with RawClient(port) as extra:
            extra.wait_closed()
        until(lambda: sy.stat("overload.cx_refused") == 1, what="overload.cx_refused == 1")
        assert sy.stat("overload.downstream_connections") == cap
        # The connections already open are served as before.
        held[0].send("GET /echo?still HTTP/1.1\r\nHost: test\r\n\r\n")
        assert held[0].read_response().status == 200

        for c in held[:5]:
            c.close()
        held = held[5:]
        until(lambda: sy.stat("overload.downstream_connections") == cap - 5,
              what=f"overload.downstream_connections == {cap - 5}")
        for i in range(5):
            held.append(kept_alive(port, f"again{i}"))
        assert sy.stat("overload.downstream_connections") == cap
        assert sy.stat("overload.cx_refused") == 1
    finally:
        for c in held:
            c.close()
    until(lambda: sy.stat("overload.downstream_connections") == 0,
          what="overload.downstream_connections == 0")


def stalled_download(port, tag):
    """A GET for a 16 MiB response whose client never reads: the proxy's write queue to it
    fills (to its high watermark) and stays full."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A small receive window, so that the kernel takes little and the proxy holds the rest.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(15)
    s.connect((LOCALHOST, port))
    s.sendall(f"GET /stream?chunks=256&size=65536&ms=0&{tag} HTTP/1.1\r\n"
              f"Host: test\r\n\r\n".encode())
    return s


def test_new_streams_past_the_memory_cap_get_503_until_buffers_drain(upstream, switchyard):
    cap = 1 << 20
    sy = switchyard(config(upstream.port, {"max_buffered_bytes": "1MiB"}))
    port = sy.port("ingress")
    assert sy.stat("overload.max_buffered_bytes") == cap
    assert sy.stat("overload.buffered_bytes") == 0
    downloads = []
    try:
        for i in range(8):
            downloads.append(stalled_download(port, f"dl{i}"))
        until(lambda: sy.stat("overload.buffered_bytes") >= cap, timeout=30,
              what="overload.buffered_bytes past the cap")

        over = request(port, "GET", "/echo?over")
        assert over.status == 503, over
        with H2Client(port) as c:
            over2 = c.get("/echo?over_h2", timeout=30)
            assert over2.status == 503, over2
        assert sy.stat("overload.rq_refused") == 2
        # The downloads in flight are not cut: each still has its connection.
        assert sy.stat("overload.downstream_connections") >= len(downloads)
    finally:
        for s in downloads:
            s.close()
    # Their queues are dropped with their connections, and the count comes back to nothing.
    until(lambda: sy.stat("overload.buffered_bytes") == 0, timeout=30,
          what="overload.buffered_bytes == 0")
    after = request(port, "GET", "/echo?after")
    assert after.status == 200, after
    with H2Client(port) as c:
        assert c.get("/echo?after_h2", timeout=30).status == 200
    assert sy.stat("overload.rq_refused") == 2
    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?over")
    assert e["status"] == 503 and e["response_flags"] == "OL" and e["details"] == "overload", e


def test_http2_bodies_waiting_for_credit_count_against_the_cap(upstream, switchyard):
    # An HTTP/2 client that grants no window: the response bodies wait in the proxy's per-stream
    # queues (not the socket's), and those count too.
    cap = 1 << 20
    sy = switchyard(config(upstream.port, {"max_buffered_bytes": cap}))
    port = sy.port("ingress")
    with H2Client(port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 0}) as c:
        for i in range(8):
            c.request("GET", f"/stream?chunks=64&size=65536&ms=0&h2dl{i}")
        until(lambda: sy.stat("overload.buffered_bytes") >= cap, timeout=30,
              what="overload.buffered_bytes past the cap")
        assert request(port, "GET", "/echo?over").status == 503
    until(lambda: sy.stat("overload.buffered_bytes") == 0, timeout=30,
          what="overload.buffered_bytes == 0")
    assert request(port, "GET", "/echo?after").status == 200


def test_defaults_are_derived_and_shown(upstream, switchyard):
    sy = switchyard(config(upstream.port))
    assert sy.stat("overload.max_downstream_connections") > 0
    assert sy.stat("overload.max_buffered_bytes") > 0
    prom = sy.admin("GET", "/stats/prometheus").text()
    for name in ("switchyard_overload_downstream_connections",
                 "switchyard_overload_buffered_bytes", "switchyard_overload_cx_refused",
                 "switchyard_overload_rq_refused"):
        assert f"\n{name} " in prom, name


def test_the_derived_connection_cap_keeps_idle_clients_beyond_half_the_file_limit(upstream,
                                                                                   switchyard):
    # Idle keep-alive clients hold no upstream socket (upstream connections are pooled), so the
    # derived cap must not halve the open-file limit: with 1024 descriptors, 600 idle clients
    # fit, as they do on Envoy, nginx and HAProxy. The proxy inherits the lowered limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        sy = switchyard(config(upstream.port))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert sy.stat("overload.max_downstream_connections") == 1024 - 128
    port = sy.port("ingress")
    held = []
    try:
        for i in range(600):
            held.append(kept_alive(port, f"idle{i}"))
        assert sy.stat("overload.downstream_connections") == 600
        assert sy.stat("overload.cx_refused") == 0
    finally:
        for c in held:
            c.close()


def test_an_unknown_overload_key_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("listeners: []\nclusters: []\noverload:\n  max_connections: 5\n")
    r = run_switchyard(["--validate", "-c", str(path)])
    assert r.returncode != 0
    assert f"{path}:4:3" in r.stderr and "max_connections" in r.stderr, r.stderr


def test_a_reload_changes_the_caps(upstream, switchyard):
    sy = switchyard(config(upstream.port, {"max_downstream_connections": 1}))
    port = sy.port("ingress")
    held = kept_alive(port, "one")
    try:
        with RawClient(port) as extra:
            extra.wait_closed()
        sy.write_config(config(upstream.port, {"max_downstream_connections": 2,
                                               "max_buffered_bytes": "2MiB"}))
        assert sy.reload().status == 200
        assert sy.stat("overload.max_downstream_connections") == 2
        assert sy.stat("overload.max_buffered_bytes") == 2 << 20
        kept_alive(port, "two").close()
    finally:
        held.close()
    assert sy.stat("overload.cx_refused") == 1
