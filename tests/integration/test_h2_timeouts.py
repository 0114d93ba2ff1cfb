"""HTTP/2 requests that stop arriving: the same bounds as HTTP/1.1 (timeouts.request_headers for
the head, timeouts.request_body_idle between body bytes), answered 408 on that stream only; and
responses that the client stops taking (timeouts.response_send_idle), reset."""
from h2util import ErrorCodes, H2Client, RawH2, WindowUpdateFrame
from harness import cluster, to_cluster, until


def config(upstream_port):
    return {"listeners": [{"name": "ingress", "protocols": ["http2"],
                           "timeouts": {"request_headers": "300ms", "request_body_idle": "400ms"},
                           "routes": [to_cluster("r", {"prefix": "/"}, "up")]}],
            "clusters": [cluster("up", upstream_port)]}


def test_a_body_that_stops_gets_408_and_the_connection_lives(upstream, switchyard):
    sy = switchyard(config(upstream.port))
    with H2Client(sy.port("ingress")) as c:
        sid = c.request("POST", "/echo", body=b"part", end_stream=False)
        resp = c.response(sid, timeout=10)
        assert resp.status == 408, resp
        # Other streams on the same connection are unaffected.
        ok = c.get("/echo?after")
        assert ok.status == 200, ok
    until(lambda: sy.stat("listener.ingress.rq_body_timeout") == 1,
          what="rq_body_timeout == 1")
    assert sy.stat("listener.ingress.rq_header_timeout") == 0


def test_a_head_that_never_ends_closes_the_connection(upstream, switchyard):
    # An open header block blocks the whole connection, so it is the connection that goes.
    sy = switchyard(config(upstream.port))
    with RawH2(sy.port("ingress")) as raw:
        # Settings first: an ACK inside the open header block would be a protocol error.
        raw.wait(lambda: raw.server_settings, what="the server's SETTINGS")
        raw.send(raw.headers_frame(1, path="/echo", end_stream=True, end_headers=False))
        raw.wait_closed(timeout=10)
        assert raw.goaway is not None and raw.goaway.error_code == 0, raw.goaway
    with H2Client(sy.port("ingress")) as c:
        assert c.get("/echo?next").status == 200
    until(lambda: sy.stat("listener.ingress.rq_header_timeout") == 1,
          what="rq_header_timeout == 1")
    assert upstream.stats()["requests_total"] == 1


def test_a_response_the_client_never_takes_is_reset(upstream, switchyard):
    """A client that opens no flow-control window for the response (window 0 for good) holds
    the stream, and the upstream behind it, only for timeouts.response_send_idle: then the
    stream is reset (RST_STREAM CANCEL, rs_send_timeout) and the upstream request ends."""
    cfg = config(upstream.port)
    cfg["listeners"][0]["timeouts"]["response_send_idle"] = "500ms"
    sy = switchyard(cfg)
    with RawH2(sy.port("ingress")) as raw:
        raw.handshake()
        # RawH2 returns credit for every DATA frame it reads; this client returns none.
        send = raw.send
        raw.send = lambda *frames: send(*[f for f in frames
                                          if not isinstance(f, WindowUpdateFrame)])
        raw.send(raw.headers_frame(1, path="/stream?chunks=64&size=65536"))
        raw.wait(lambda: 1 in raw.streams and raw.streams[1].reset is not None, 20,
                 "the stream waiting on a closed window to be reset")
        assert raw.streams[1].reset == ErrorCodes.CANCEL, raw.streams[1]
        # The client got its initial window's worth and no more; the connection lives.
        assert len(raw.streams[1].data) <= 65535
        assert raw.goaway is None and not raw.closed
    until(lambda: sy.stat("listener.ingress.rs_send_timeout") == 1, what="rs_send_timeout == 1")
    until(lambda: upstream.stats()["requests_active"] == 0,
          what="the upstream response to be abandoned")
    with H2Client(sy.port("ingress")) as c:
        assert c.get("/echo?next").status == 200
