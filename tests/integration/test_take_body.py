"""ABI 1.2 continue_headers_take_body: a filter lets a message's headers go before its body is
done and then alone decides the body that follows (ext_proc's FULL_DUPLEX_STREAMED needs it).
tests/abi/fx_take_body.c takes the body over from a timer and re-writes it as "[" + the
original upper-cased, each chunk injected as two pieces, + "]"; trailers get x-took."""
import hashlib

import pytest

from h2util import H2Client
from harness import RawClient, chunked, echo_headers, proxy_all
from modules_util import fixture_file

SY_ERR_WRONG_PHASE = "6"


def take_config(upstream_port):
    cfg = proxy_all(upstream_port, listener_extra={"protocols": ["http1", "http2"]})
    cfg["listeners"][0]["filters"] = [{"module": "take_body"}]
    cfg["modules"] = [{"name": "take_body", "path": str(fixture_file("take_body"))}]
    return cfg


def taken(pieces):
    return b"[" + b"".join(pieces).upper() + b"]"


def send(sy, protocol, path, headers, pieces=None, trailers=(), content_length=False):
    """Sends a request (PIECES as separate chunks or DATA frames, then TRAILERS) and returns the
    response; over HTTP/1.1 a second request on the same connection checks the framing."""
    if protocol == "http1":
        with RawClient(sy.port("ingress")) as c:
            head = [f"{'GET' if pieces is None else 'POST'} {path} HTTP/1.1", "host: test",
                    *(f"{k}: {v}" for k, v in headers)]
            if pieces is None:
                c.send("\r\n".join(head) + "\r\n\r\n")
            elif content_length:
                body = b"".join(pieces)
                c.send(("\r\n".join(head + [f"content-length: {len(body)}"]) + "\r\n\r\n").encode()
                       + body)
            else:
                c.send(("\r\n".join(head + ["transfer-encoding: chunked"]) + "\r\n\r\n").encode()
                       + chunked(pieces, trailers))
            r = c.read_response()
            c.send("GET /echo HTTP/1.1\r\nhost: test\r\n\r\n")
            again = c.read_response()
            assert again.status == 200, again
            assert again.json()["body_length"] == 0
            return r
    with H2Client(sy.port("ingress")) as c:
        if pieces is None:
            sid = c.request("GET", path, headers=list(headers))
        else:
            sid = c.request("POST", path, headers=list(headers), end_stream=False)
            for i, p in enumerate(pieces):
                c.send_body(sid, p, end_stream=not trailers and i == len(pieces) - 1)
            if trailers:
                c.send_trailers(sid, trailers)
        return c.response(sid)


PIECES = [b"hello ", b"taken ", b"body"]


@pytest.mark.parametrize("protocol", ["http1", "http2"])
@pytest.mark.parametrize("content_length", [False, True])
def test_a_filter_takes_the_request_body_over(upstream, switchyard, protocol, content_length):
    sy = switchyard(take_config(upstream.port))
    r = send(sy, protocol, "/echo", [("x-take", "request")], PIECES,
             content_length=content_length)
    assert r.status == 200, r
    echo = r.json()
    want = taken(PIECES)
    assert echo["body_length"] == len(want), echo
    assert echo["body_sha256"] == hashlib.sha256(want).hexdigest()
    # The client's Content-Length no longer described the body: it went on without it.
    assert echo_headers(echo, "content-length") in ([], [str(len(want))]), echo["headers"]
    assert r.header("x-take-rc") == "0"
    # The direction is the filter's already: a second call is refused.
    assert r.header("x-take-again") == SY_ERR_WRONG_PHASE


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_resume_sends_the_original_trailers_after_the_filters_body(upstream, switchyard,
                                                                  protocol):
    sy = switchyard(take_config(upstream.port))
    r = send(sy, protocol, "/echo", [("x-take", "request")], PIECES,
             trailers=[("x-sum", "abc")])
    assert r.status == 200, r
    echo = r.json()
    want = taken(PIECES)
    assert echo["body_sha256"] == hashlib.sha256(want).hexdigest(), echo
    trailers = {n.lower(): v for n, v in echo["trailers"]}
    assert trailers.get("x-sum") == "abc", echo["trailers"]
    assert trailers.get("x-took") == str(len(b"".join(PIECES))), echo["trailers"]


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_inject_with_end_of_stream_ends_the_body_without_the_trailers(upstream, switchyard,
                                                                     protocol):
    sy = switchyard(take_config(upstream.port))
    r = send(sy, protocol, "/echo", [("x-take", "request"), ("x-take-end", "inject")], PIECES,
             trailers=[("x-sum", "abc")])
    assert r.status == 200, r
    echo = r.json()
    assert echo["body_sha256"] == hashlib.sha256(taken(PIECES)).hexdigest(), echo
    assert echo["trailers"] == [], echo["trailers"]


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_a_filter_takes_the_response_body_over(upstream, switchyard, protocol):
    sy = switchyard(take_config(upstream.port))
    r = send(sy, protocol, "/stream?chunks=4&size=1000", [("x-take", "response")])
    assert r.status == 200, r
    want = taken([bytes([97 + i]) * 1000 for i in range(4)])
    assert r.body == want, (len(r.body), r.body[:20], r.body[-20:])


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_response_trailers_follow_the_filters_body(upstream, switchyard, protocol):
    sy = switchyard(take_config(upstream.port))
    r = send(sy, protocol, "/trailers", [("x-take", "response")])
    assert r.status == 200, r
    assert r.body == b"[HELLO FROM TRAILERS\n]", r
    assert r.trailer("x-extra") == "yes", r.trailers
    assert r.trailer("x-took") == str(len(b"hello from trailers\n")), r.trailers


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_both_directions_taken_over_on_one_stream(upstream, switchyard, protocol):
    sy = switchyard(take_config(upstream.port))
    big = [bytes([97 + i % 26]) * 70000 for i in range(8)]  # past the watermarks
    r = send(sy, protocol, "/echo", [("x-take", "both")], big)
    assert r.status == 200, r
    assert r.body.startswith(b"[{") and r.body.endswith(b"}]"), r.body[:40]
    echo_upper = r.body[1:-1]
    assert echo_upper == echo_upper.upper()
    want = taken(big)
    assert b'"BODY_LENGTH": %d' % len(want) in echo_upper, echo_upper
    assert hashlib.sha256(want).hexdigest().upper().encode() in echo_upper
