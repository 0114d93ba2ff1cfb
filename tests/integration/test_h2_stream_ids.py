"""RFC 9113 §5.1.1 (h2spec http2/5.1.1/2): a client's new stream ids only grow; a HEADERS frame
on an id it skipped (stream 3 after stream 5) is a connection error PROTOCOL_ERROR. HEADERS on
a lower id the client did open (its trailers) stay legal."""
from h2util import DataFrame, ErrorCodes, RawH2
from harness import cluster, to_cluster, until


def config(upstream_port):
    return {"listeners": [{"name": "ingress", "protocols": ["http2"],
                           "routes": [to_cluster("r", {"prefix": "/"}, "up")]}],
            "clusters": [cluster("up", upstream_port)]}


def test_headers_on_a_skipped_lower_stream_id_is_a_connection_error(upstream, switchyard):
    sy = switchyard(config(upstream.port))
    with RawH2(sy.port("ingress")) as raw:
        raw.handshake()
        raw.send(raw.headers_frame(5, path="/echo?five"))
        raw.wait(lambda: raw.streams.get(5) and raw.streams[5].ended, what="stream 5's response")
        assert raw.streams[5].status == 200
        raw.send(raw.headers_frame(3, path="/echo?three"))
        raw.wait_closed()
        assert raw.goaway is not None and raw.goaway.error_code == ErrorCodes.PROTOCOL_ERROR, \
            raw.goaway
    assert 3 not in raw.streams
    until(lambda: sy.stat("listener.ingress.h2_protocol_error") == 1,
          what="h2_protocol_error == 1")
    assert upstream.stats()["requests_total"] == 1


def test_trailers_on_a_lower_open_stream_are_fine(upstream, switchyard):
    sy = switchyard(config(upstream.port))
    with RawH2(sy.port("ingress")) as raw:
        raw.handshake()
        raw.send(raw.headers_frame(1, raw.request_headers("/echo?one", "POST"), end_stream=False))
        raw.send(raw.headers_frame(3, path="/echo?three"))
        raw.wait(lambda: raw.streams.get(3) and raw.streams[3].ended, what="stream 3's response")
        raw.send(DataFrame(1, b"body"),
                 raw.headers_frame(1, [("x-trailer", "1")], end_stream=True))
        raw.wait(lambda: raw.streams.get(1) and raw.streams[1].ended, what="stream 1's response")
        assert raw.streams[1].status == 200 and raw.streams[3].status == 200
        assert raw.is_open_now() and raw.goaway is None
    assert sy.stat("listener.ingress.h2_protocol_error") == 0
