"""ABI 1.2 streaming callouts (stream_callout_*), http_callout_start/cancel and stream_reset,
driven through tests/abi/fx_stream_callout.c (a C module on the public header only) against
real peers: an h2 server (h2side.py) over h2c and over TLS with a client certificate, and a
grpcio bidirectional-streaming server over h2c and TLS with a client certificate.
"""
import hashlib
import json

import grpc
import pytest

import harness
from h2side import H2Side
from h2util import ErrorCodes, H2Client
from harness import LOCALHOST, cluster, free_port, request, to_cluster, until
from modules_util import fixture_file
from test_grpc import SERVICE, GrpcServer
from tlsutil import certs  # noqa: F401 (fixture)

MiB = 1024 * 1024
RSS_BUDGET_KIB = 32 * 1024

# sy_callout_failure_t
RESET, TIMEOUT, CONNECT = 0, 1, 2
SY_ERR_NOT_FOUND, SY_ERR_INVALID = 1, 2


@pytest.fixture
def side():
    s = H2Side()
    yield s
    s.stop()


@pytest.fixture
def grpc_side():
    s = GrpcServer()
    yield s
    s.stop()


def config(upstream_port, clusters, workers=2):
    """Listener `ingress` with the fixture filter on every stream that has x-mode, routed to
    `backend` (upstream.py); CLUSTERS are the callout targets."""
    cfg = harness.proxy_all(upstream_port)
    cfg["listeners"][0]["filters"] = [{"module": "stream_callout"}]
    cfg["listeners"][0]["protocols"] = ["http1", "http2"]
    cfg["modules"] = [{"name": "stream_callout", "path": str(fixture_file("stream_callout"))}]
    cfg["clusters"] += clusters
    cfg["workers"] = workers
    return cfg


def h2_cluster(name, port, **extra):
    return cluster(name, port, protocol="http2", **extra)


def call(sy, mode, body=b"", **headers):
    h = {"x-mode": mode, **{k.replace("_", "-"): str(v) for k, v in headers.items()}}
    return request(sy.port("ingress"), "POST", "/fx", body=body, headers=h, timeout=60)


# --- the peers alone -------------------------------------------------------------------------


def test_peer_h2side_echo(side):
    with H2Client(side.port) as c:
        r = c.get("/echo", method="POST", body=b"ping")
        assert r.status == 200 and r.body == b"ping"
        r = c.get("/trailers", method="POST", body=b"abc")
        assert r.trailer("x-sum") == "3"


# --- echo, pieces, trailers ------------------------------------------------------------------


@pytest.mark.parametrize("piece", [1, 5, 0], ids=["1-byte", "5-bytes", "whole"])
def test_echo_through_a_callout_stream_over_h2c(upstream, side, switchyard, piece):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    body = b"hello, streaming callout world " * 3
    r = call(sy, "echo", body, x_piece=piece)
    assert r.status == 200, r
    assert r.body == body
    assert r.header("x-callout-status") == "200"
    assert r.header("x-callout-end") == "data"
    # Each callout is its own stream on the side server, with the HTTP stream's id.
    assert len(side.find("open", "/echo")) == 1


def test_a_request_sent_whole_at_once_is_one_data_frame_with_its_end(upstream, side, switchyard):
    # A module that starts a callout and sends its whole request in the same callback (as
    # ext_authz sends a Check) gets HEADERS and a single DATA frame carrying END_STREAM, written
    # together; before, the body and its end went in separate writes, the end as an empty DATA
    # frame, each a wake-up of the server. The first call dials the connection (the request
    # waits for it), the second finds it ready in the pool.
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)], workers=1))
    body = b"a whole check request"
    for _ in range(2):
        r = call(sy, "echo", body)
        assert r.status == 200, r
        assert r.body == body
    frames = [info for _, _, info in side.find("data", "/echo")]
    by_id = {}
    for fx_id, length, ended in frames:
        by_id.setdefault(fx_id, []).append((length, ended))
    assert len(by_id) == 2, frames
    assert all(v == [(len(body), True)] for v in by_id.values()), frames


def test_response_trailers_end_the_callout(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    r = call(sy, "echo", b"12345", x_callout_path="/trailers")
    assert r.status == 200, r
    assert r.body == b"12345"
    assert r.header("x-callout-end") == "trailers"
    assert r.header("x-callout-trailers") == "x-sum=5;x-end=yes;"


def test_echo_over_http1_cluster(upstream, switchyard):
    # The same API over an HTTP/1.1 cluster (upstream.py answers /echo with JSON about the
    # request it got).
    sy = switchyard(config(upstream.port, [cluster("side", upstream.port)]))
    r = call(sy, "echo", b"abcdef", x_piece=2)
    assert r.status == 200, r
    got = json.loads(r.body)
    assert got["method"] == "POST" and got["path"] == "/echo"
    assert got["body_length"] == 6, got
    # The module ended the request before the connection was ready: it went with its length.
    assert ["content-length", "6"] in [[n.lower(), v] for n, v in got["headers"]], got
    assert r.header("x-callout-end") == "data"


def test_callout_from_a_worker_without_a_stream(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    r = call(sy, "worker", b"from the worker")
    assert r.status == 200, r
    assert r.header("x-callout-from") == "worker"
    assert r.body == b"from the worker"


# --- gRPC ------------------------------------------------------------------------------------


def test_grpc_bidi_ping_pong_over_h2c(upstream, grpc_side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("grpc", grpc_side.port)]))
    messages = [b"first", b"", b"x" * 70000, b"last"]
    r = call(sy, "grpc", b"\n".join(messages), x_cluster="grpc",
             x_callout_path=f"/{SERVICE}/Bidi")
    assert r.status == 200, r
    assert r.body == b"".join(m + b"\n" for m in messages)
    assert r.header("x-callout-messages") == str(len(messages))
    assert "grpc-status=0;" in r.header("x-callout-trailers")
    assert r.header("x-callout-end") == "trailers"


def test_grpc_error_status_arrives_as_trailers(upstream, grpc_side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("grpc", grpc_side.port)]))
    r = call(sy, "grpc", b"NOT_FOUND", x_cluster="grpc", x_callout_path=f"/{SERVICE}/Fail")
    assert r.status == 200, r
    # A trailers-only response: grpc-status in the head, which ends the stream.
    assert r.header("x-callout-end") in ("headers", "trailers"), r
    assert r.header("x-callout-messages") == "0"


@pytest.fixture
def grpc_mtls_side(certs):
    creds = grpc.ssl_server_credentials(
        [(certs.a.key.read_bytes(), certs.a.chain.read_bytes())],
        root_certificates=certs.ca.read_bytes(), require_client_auth=True)
    s = GrpcServer(creds)
    yield s
    s.stop()


def client_tls(certs, with_cert=True):
    tls = {"ca": str(certs.ca), "sni": "a.test"}
    if with_cert:
        tls.update(certificate=str(certs.client.cert), private_key=str(certs.client.key))
    return tls


def test_grpc_over_tls_with_a_client_certificate(upstream, grpc_mtls_side, certs, switchyard):
    sy = switchyard(config(upstream.port, [
        h2_cluster("grpc", grpc_mtls_side.port, tls=client_tls(certs)),
        h2_cluster("nocert", grpc_mtls_side.port, tls=client_tls(certs, with_cert=False))]))
    r = call(sy, "grpc", b"one\ntwo", x_cluster="grpc", x_callout_path=f"/{SERVICE}/Bidi")
    assert r.status == 200, r
    assert r.body == b"one\ntwo\n"
    assert "grpc-status=0;" in r.header("x-callout-trailers")
    # Without the certificate the server refuses the handshake: the cluster's TLS settings
    # are what made the call above work.
    r = call(sy, "grpc", b"one", x_cluster="nocert", x_callout_path=f"/{SERVICE}/Bidi")
    assert r.status == 502, r
    assert r.header("x-callout-failure") in (str(CONNECT), str(RESET)), r


def test_h2_over_tls_with_a_client_certificate(upstream, certs, switchyard):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(certs.a.chain), str(certs.a.key))
    ctx.load_verify_locations(str(certs.ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    side = H2Side(tls=ctx)
    try:
        sy = switchyard(config(upstream.port,
                               [h2_cluster("side", side.port, tls=client_tls(certs))]))
        r = call(sy, "echo", b"secret", x_piece=2)
        assert r.status == 200, r
        assert r.body == b"secret"
        subjects = [dict(x[0] for x in s) for s in side.peer_subjects]
        assert any(s.get("commonName") == "client-one" for s in subjects), subjects
        opened = side.find("open", "/echo")
        assert opened, side.events
    finally:
        side.stop()


# --- flow control ----------------------------------------------------------------------------


@pytest.mark.measures_memory
def test_slow_server_back_pressures_100mib_with_bounded_memory(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    assert call(sy, "generate", x_generate=1000, x_callout_path="/count").status == 200
    before = sy.memory_kib("VmHWM")
    total = 100 * MiB
    r = call(sy, "generate", x_generate=total, x_callout_path="/slowcount")
    assert r.status == 200, r
    got = json.loads(r.body)
    assert got["length"] == total
    assert got["sha256"] == hashlib.sha256(b"g" * total).hexdigest()
    # The module was told to wait, and waited: the bytes never piled up in the proxy.
    assert int(r.header("x-callout-writable")) > 0
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for 100 MiB"


def test_http1_cluster_streams_a_chunked_request_with_back_pressure(upstream, switchyard):
    # Over HTTP/1.1 an open request side goes chunked; upstream.py stalls after every 4 MiB, so
    # the socket's watermark holds the module back (on_writable) instead of memory.
    sy = switchyard(config(upstream.port, [cluster("side", upstream.port)]))
    total = 16 * MiB
    r = call(sy, "generate", x_generate=total,
             x_callout_path=f"/upload?stall_every={4 * MiB}&stall_ms=200")
    assert r.status == 200, r
    got = json.loads(r.body)
    assert got == {"length": total, "sha256": hashlib.sha256(b"g" * total).hexdigest()}, got
    assert int(r.header("x-callout-writable")) > 0


def test_http1_cluster_keeps_the_callers_content_length(upstream, switchyard):
    # An open request side with the module's own content-length goes framed by it, not chunked
    # (1 MiB: past the watermark, so the head leaves before the module ends the body).
    sy = switchyard(config(upstream.port, [cluster("side", upstream.port)]))
    total = MiB
    r = call(sy, "generate", x_generate=total, x_callout_length=total)
    assert r.status == 200, r
    got = json.loads(r.body)
    headers = [[n.lower(), v] for n, v in got["headers"]]
    assert ["content-length", str(total)] in headers, headers
    assert "transfer-encoding" not in [n for n, _ in headers], headers
    assert got["body_length"] == total, got


@pytest.mark.parametrize("length", [1000, 2 * MiB], ids=["longer", "shorter"])
def test_a_body_that_does_not_match_its_content_length_fails_the_callout(
        upstream, switchyard, length):
    # A wrong length would desynchronise the HTTP/1.1 connection: the callout fails instead.
    sy = switchyard(config(upstream.port, [cluster("side", upstream.port)]))
    r = call(sy, "generate", x_generate=MiB, x_callout_length=length)
    assert r.status == 502, r
    assert r.header("x-callout-failure") == str(RESET)
    word = "longer" if length < MiB else "shorter"
    assert f"{word} than its content-length {length}" in r.header("x-callout-details")


def test_a_content_length_that_is_not_a_number_is_refused(upstream, switchyard):
    sy = switchyard(config(upstream.port, [cluster("side", upstream.port)]))
    r = call(sy, "echo", b"abc", x_callout_length="3x")
    assert r.status == 404, r
    assert r.header("x-callout-start") == str(SY_ERR_INVALID)


def test_pause_reading_closes_the_servers_window(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    with H2Client(sy.port("ingress")) as c:
        sid = c.request("POST", "/fx", headers=[("x-mode", "paused"),
                                                ("x-callout-path", "/flood")], body=b"")
        blocked = until(lambda: side.find("blocked", "/flood"), what="the flood to block")
        # What the server could send is one stream window (256 KiB), not 100 MiB.
        assert blocked[0][2] <= 256 * 1024, blocked
        c.reset_stream(sid)
    until(lambda: side.find("reset", "/flood"), what="the paused callout to be reset")


# --- lifetimes -------------------------------------------------------------------------------


def test_callouts_are_reset_when_the_http_stream_ends(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    with H2Client(sy.port("ingress")) as c:
        sid = c.request("POST", "/fx", headers=[("x-mode", "hold"),
                                                ("x-callout-path", "/hold")], body=b"")
        until(lambda: side.find("open", "/hold"), what="the callout to open")
        assert not side.find("reset", "/hold")
        c.reset_stream(sid)
        resets = until(lambda: side.find("reset", "/hold"), what="the callout's reset")
    assert resets[0][2] == int(ErrorCodes.CANCEL), resets
    # The proxy is fine afterwards.
    assert call(sy, "echo", b"after").body == b"after"


def test_a_thousand_concurrent_callout_streams(upstream, side, switchyard):
    # One HTTP stream opens 1,000 callouts at once, each echoing its own body over the h2
    # cluster's pooled connection(s); every answer must be its own.
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)], workers=1))
    r = call(sy, "fanout", x_fanout=1000)
    assert r.status == 200, r
    assert (r.header("x-fanout-ok"), r.header("x-fanout-bad"),
            r.header("x-fanout-failed")) == ("1000", "0", "0"), r
    assert len(side.find("open", "/echo")) == 1000
    # Multiplexed: far fewer connections than streams (the pool lets up to 100 streams wait for
    # each connection still being set up, so 1,000 at once open at most 10).
    assert side.connections <= 10, side.connections


def test_many_http_streams_each_with_callouts(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    with H2Client(sy.port("ingress")) as c:
        sids = {c.request("POST", "/fx", headers=[("x-mode", "echo")], body=b"body-%d" % i): i
                for i in range(100)}
        for sid, i in sids.items():
            r = c.response(sid)
            assert r.status == 200 and r.body == b"body-%d" % i, r


# --- failures --------------------------------------------------------------------------------


def test_server_reset_timeout_and_refused_connection(upstream, side, switchyard):
    refused = free_port()
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port),
                                           h2_cluster("down", refused, connect_retries=0)]))
    r = call(sy, "echo", b"x", x_callout_path="/reset")
    assert (r.status, r.header("x-callout-failure")) == (502, str(RESET)), r
    # Long enough (scaled on a slower build) for the callout to reach the server first.
    r = call(sy, "echo", b"x", x_callout_path="/hold", x_timeout=int(300 * harness.TIME_SCALE))
    assert (r.status, r.header("x-callout-failure")) == (502, str(TIMEOUT)), r
    # The timed-out callout was cancelled at the server.
    until(lambda: side.find("reset", "/hold"), what="the timed-out callout's reset")
    r = call(sy, "echo", b"x", x_cluster="down")
    assert (r.status, r.header("x-callout-failure")) == (502, str(CONNECT)), r
    r = call(sy, "echo", b"x", x_cluster="no-such-cluster")
    assert (r.status, r.header("x-callout-start")) == (404, str(SY_ERR_NOT_FOUND)), r


def test_unary_callout_cancel(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    r = request(sy.port("ingress"), "GET", "/echo",
                headers={"x-mode": "unary-cancel", "x-callout-path": "/hold"})
    assert r.status == 200, r
    # Cancelled before its connection was even ready: the callback never ran, neither inside
    # http_callout_cancel nor later.
    assert r.header("x-unary-fn-calls") == "0"
    r = request(sy.port("ingress"), "GET", "/echo",
                headers={"x-mode": "unary-cancel", "x-callout-path": "/hold"})
    assert r.header("x-unary-fn-calls") == "0"


# --- stream reset ----------------------------------------------------------------------------


def test_stream_reset_after_the_response_started_h2(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    with H2Client(sy.port("ingress")) as c:
        r = c.get("/stream?chunks=50&size=16384", headers=[("x-mode", "reset-response")])
        # The head was handed to the connection, but nghttp2 may drop a HEADERS frame still
        # queued for a stream it resets: the client sees the reset, with or without the head.
        assert r.reset == ErrorCodes.INTERNAL_ERROR, r
        assert not r.ended and r.status in (200, None), r
        assert r.length < 50 * 16384, r
        # The connection goes on.
        assert c.get("/echo").status == 200
    e = sy.wait_access_entry(lambda e: e.get("path", "").startswith("/stream"))
    assert (e["status"], e["response_flags"], e["details"]) == (
        200, "FR", "fx reset in response body"), e


def test_stream_reset_after_the_response_started_http1(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    with harness.RawClient(sy.port("ingress")) as c:
        c.send(harness.raw_request("GET", "/stream?chunks=50&size=16384",
                                   [("x-mode", "reset-response")]))
        with pytest.raises(harness.ConnectionClosed):
            while True:
                c._fill()
        data = c.buf
    # The connection closed mid-response: the head (if it had left the proxy's write batch)
    # and part of the body, never the chunked body's end.
    assert data == b"" or data.startswith(b"HTTP/1.1 200"), data[:200]
    assert not data.endswith(b"0\r\n\r\n"), data[-50:]
    e = sy.wait_access_entry(lambda e: e.get("path", "").startswith("/stream"))
    assert (e["status"], e["response_flags"]) == (200, "FR"), e


def test_stream_reset_before_the_response(upstream, side, switchyard):
    sy = switchyard(config(upstream.port, [h2_cluster("side", side.port)]))
    with H2Client(sy.port("ingress")) as c:
        r = c.get("/echo", headers=[("x-mode", "reset-request")])
        assert r.status is None and r.reset == ErrorCodes.INTERNAL_ERROR, r
        # The connection goes on.
        assert c.get("/echo").status == 200
    assert upstream.stats()["requests_total"] == 1  # only the second request went upstream


# --- the C++ SDK -----------------------------------------------------------------------------


def test_sdk_callout_stream_and_grpc_framing(upstream, grpc_side, switchyard):
    # tests/abi/fx_sdk_callout.cc: sy::sdk::CalloutStream and sy::sdk::grpc framing.
    cfg = harness.proxy_all(upstream.port)
    cfg["listeners"][0]["filters"] = [{"module": "sdk_callout"}]
    cfg["modules"] = [{"name": "sdk_callout", "path": str(fixture_file("sdk_callout"))}]
    cfg["clusters"].append(h2_cluster("grpc", grpc_side.port))
    sy = switchyard(cfg)
    port = sy.port("ingress")
    big = b"y" * 100000
    r = request(port, "POST", "/", body=b"alpha\n" + big + b"\nomega",
                headers={"x-callout-path": f"/{SERVICE}/Bidi"})
    assert r.status == 200, r
    assert r.body == b"alpha\n" + big + b"\nomega\n"
    assert r.header("x-grpc-status") == "0"
    r = request(port, "POST", "/", body=b"PERMISSION_DENIED",
                headers={"x-callout-path": f"/{SERVICE}/Fail"})
    assert (r.status, r.header("x-grpc-status")) == (200, "7"), r
    r = request(port, "POST", "/", body=b"x", headers={"x-cluster": "nope"})
    assert r.status == 404, r


def test_worker_callout_fails_with_shutdown_when_the_proxy_stops(upstream, side, switchyard):
    # A callout started from a worker outlives streams; the worker's stop ends it (the module
    # hears SY_CALLOUT_SHUTDOWN and its post to the gone stream is dropped), the server sees
    # the stream reset, and the proxy exits cleanly.
    cfg = config(upstream.port, [h2_cluster("side", side.port)])
    cfg["listeners"][0]["timeouts"] = {"drain": "200ms"}
    sy = switchyard(cfg)
    with H2Client(sy.port("ingress")) as c:
        c.request("POST", "/fx", headers=[("x-mode", "worker"), ("x-callout-path", "/hold")],
                  body=b"wait")
        until(lambda: side.find("open", "/hold"), what="the worker's callout to open")
        assert sy.stop() == 0, sy.log_tail()
    until(lambda: side.find("reset", "/hold") or side.find("closed", "/hold"),
          what="the server to see the callout end")
