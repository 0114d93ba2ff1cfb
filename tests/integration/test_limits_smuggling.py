"""Limits (431, 414, 413) and malformed or ambiguous requests (request smuggling): each gets its
error status and a closed connection, and a request the proxy refused never reaches upstream."""
import pytest

from harness import RawClient, proxy_all, raw_request, request


def start(switchyard, upstream, **limits):
    return switchyard(proxy_all(upstream.port, listener_extra={"limits": limits} if limits else {}))


def refused(port, data, statuses=(400,)):
    """Sends DATA on a fresh connection; expects one of STATUSES and then the close."""
    with RawClient(port) as c:
        c.send(data)
        resp = c.read_response()
        assert resp.status in statuses, f"got {resp.status} for {data[:120]!r}"
        c.wait_closed()
    return resp


# --- limits ----------------------------------------------------------------------------------


def test_header_bytes_limit(upstream, switchyard):
    sy = start(switchyard, upstream, header_bytes=8192)
    port = sy.port("ingress")
    # One 16 KiB header, then 16 headers of 1 KiB: both over 8 KiB.
    refused(port, raw_request("GET", "/echo", [("X-Big", "a" * 16384)]), (431,))
    refused(port, raw_request("GET", "/echo", [(f"X-H{i}", "b" * 1024) for i in range(16)]),
            (431,))
    # Under the limit is fine.
    resp = request(port, "GET", "/echo", headers={"X-Fine": "c" * 4096})
    assert resp.status == 200
    assert upstream.stats()["requests_total"] == 1


def test_header_count_limit(upstream, switchyard):
    sy = start(switchyard, upstream, headers=20)
    port = sy.port("ingress")
    refused(port, raw_request("GET", "/echo", [(f"X-N{i}", "1") for i in range(50)]), (431,))
    with RawClient(port) as c:
        c.send(raw_request("GET", "/echo", [(f"X-N{i}", "1") for i in range(10)]))
        assert c.read_response().status == 200
    assert upstream.stats()["requests_total"] == 1


def test_request_line_limit(upstream, switchyard):
    sy = start(switchyard, upstream, header_bytes=8192)
    refused(sy.port("ingress"), raw_request("GET", "/echo?" + "q" * 16384), (414, 431))
    assert upstream.stats()["requests_total"] == 0


def test_request_body_limit_content_length(upstream, switchyard):
    sy = start(switchyard, upstream, request_body=1024)
    port = sy.port("ingress")
    refused(port, raw_request("POST", "/echo", [("Content-Length", "4096")], b"x" * 4096),
            (413,))
    assert upstream.stats()["requests_total"] == 0
    resp = request(port, "POST", "/echo", body=b"y" * 1000)
    assert resp.status == 200 and resp.json()["body_length"] == 1000


def test_request_body_limit_chunked(upstream, switchyard):
    sy = start(switchyard, upstream, request_body=1024)
    body = b"".join(b"200\r\n" + b"z" * 512 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    refused(sy.port("ingress"),
            raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")], body), (413,))


# --- smuggling-class and malformed input -----------------------------------------------------

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"

# (id, request bytes, accepted statuses, refused before anything reaches the upstream)
MALFORMED = [
    ("cl-and-te",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
     b"\r\n0\r\n\r\n" + SMUGGLED, (400,), True),
    ("te-and-cl",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n"
     b"\r\n0\r\n\r\n" + SMUGGLED, (400,), True),
    ("duplicate-differing-cl",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
     (400,), True),
    ("cl-list",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!", (400,), True),
    ("cl-plus-sign",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello", (400,), True),
    ("cl-not-a-number",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello", (400,), True),
    ("cl-negative",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", (400,), True),
    ("bad-chunk-size",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nhello\r\n0\r\n\r\n", (400,), False),
    ("chunk-size-overflow",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", (400, 413), False),
    ("chunk-data-overrun",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3\r\nhello\r\n0\r\n\r\n", (400,), False),
    ("te-not-chunked",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nhello", (400, 501), True),
    ("te-chunked-not-last",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
     b"0\r\n\r\n", (400, 501), True),
    ("obs-fold",
     b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n  b\r\n\r\n", (400,), True),
    ("obs-fold-tab",
     b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n\tb\r\n\r\n", (400,), True),
    ("bare-lf-header",
     b"GET /echo HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n", (400,), True),
    ("bare-lf-everywhere",
     b"GET /echo HTTP/1.1\nHost: t\n\n", (400,), True),
    ("bare-lf-request-line",
     b"GET /echo HTTP/1.1\nHost: t\r\n\r\n", (400,), True),
    ("nul-in-value",
     b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", (400,), True),
    ("ctl-in-value",
     b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n", (400,), True),
    ("bare-cr-in-value",
     b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n", (400,), True),
    ("space-before-colon",
     b"GET /echo HTTP/1.1\r\nHost: t\r\nX-A : b\r\n\r\n", (400,), True),
    ("bad-header-name",
     b"GET /echo HTTP/1.1\r\nHost: t\r\nX(A): b\r\n\r\n", (400,), True),
    # Found by the http1_request fuzzer: llhttp takes a line starting with ':' as a field with
    # an empty name.
    ("empty-header-name",
     b"GET /echo HTTP/1.1\r\nHost: t\r\n: b\r\n\r\n", (400,), True),
    ("empty-trailer-name",
     b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"1\r\na\r\n0\r\n: b\r\n\r\n", (400,), False),
    ("space-in-target",
     b"GET /echo x HTTP/1.1\r\nHost: t\r\n\r\n", (400,), True),
    ("two-hosts",
     b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", (400,), True),
    ("no-host-http11",
     b"GET /echo HTTP/1.1\r\nX-A: b\r\n\r\n", (400,), True),
]


@pytest.mark.parametrize("data,statuses,before_upstream",
                         [pytest.param(d, s, b, id=i) for i, d, s, b in MALFORMED])
def test_malformed_request_refused(upstream, switchyard, data, statuses, before_upstream):
    sy = start(switchyard, upstream)
    refused(sy.port("ingress"), data, statuses)
    stats = upstream.stats()
    assert "/smuggled" not in stats["paths"]
    if before_upstream:
        assert stats["requests_total"] == 0, f"the upstream saw {stats['paths']}"
    # And the proxy is fine afterwards.
    assert request(sy.port("ingress"), "GET", "/echo").status == 200


@pytest.mark.parametrize("bad", [
    b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
    b"\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
], ids=["second-request", "after-empty-lines"])
def test_folded_header_refused_on_a_reused_connection(upstream, switchyard, bad):
    # Found by the http1 fuzzers: the raw-byte head checks (obs-fold, bare LF) used to look at a
    # connection's first request only, or stop at empty lines before a request line.
    sy = start(switchyard, upstream)
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/echo"))
        assert c.read_response().status == 200
        c.send(bad)
        assert c.read_response().status == 400
        c.wait_closed()
    assert upstream.stats()["requests_total"] == 1


def test_refusal_after_good_request_on_same_connection(upstream, switchyard):
    # A good request first, then a malformed one on the same keep-alive connection: the good
    # one is answered, the bad one gets 400 and the close.
    sy = start(switchyard, upstream)
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/echo"))
        assert c.read_response().status == 200
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
               b"\r\nab")
        assert c.read_response().status == 400
        c.wait_closed()
    assert upstream.stats()["requests_total"] == 1
