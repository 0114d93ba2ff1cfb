"""Bodies both ways: 100 MiB streamed up and down with bounded memory, chunked requests and
responses, trailers, responses that stream, end at close, or are cut short."""
import hashlib
import http.client
import json
import os
import subprocess
import time

import pytest

import harness
from harness import (RawClient, chunked, cluster, proxy_all, raw_request, request,
                     stream_payload, to_cluster, until)

MiB = 1024 * 1024
BIG = 100 * MiB
RSS_BUDGET_KIB = 32 * 1024


def warm_up(port):
    # One small request first, so that what every request allocates once is not counted.
    assert request(port, "POST", "/echo", body=b"warm").status == 200


@pytest.mark.measures_memory
def test_100mib_upload_streams_with_bounded_memory(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    port = sy.port("ingress")
    warm_up(port)
    before = sy.memory_kib("VmHWM")

    digest = hashlib.sha256()
    block = os.urandom(MiB)

    def body():
        for i in range(BIG // MiB):
            piece = block[i:] + block[:i]  # a different MiB each time, never all in memory
            digest.update(piece)
            yield piece

    # upstream.py reads slowly (pauses after every 16 MiB): a proxy that does not stop reading
    # the client when the upstream does not drain would have to hold the difference.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", f"/upload?stall_every={16 * MiB}&stall_ms=300", body=body(),
                 headers={"Content-Length": str(BIG)})
    resp = conn.getresponse()
    result = resp.read()
    conn.close()
    assert resp.status == 200, result
    got = json.loads(result)
    assert got["length"] == BIG
    assert got["sha256"] == digest.hexdigest()
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for a 100 MiB upload"


@pytest.mark.measures_memory
def test_100mib_chunked_upload(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    port = sy.port("ingress")
    warm_up(port)
    before = sy.memory_kib("VmHWM")
    digest = hashlib.sha256()
    block = os.urandom(MiB)

    def body():
        for i in range(BIG // MiB):
            piece = block[: MiB - i]  # uneven chunk sizes
            digest.update(piece)
            yield piece

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/upload", body=body(), encode_chunked=True)
    resp = conn.getresponse()
    got = resp.read()
    conn.close()
    assert resp.status == 200, got
    result = json.loads(got)
    assert result["sha256"] == digest.hexdigest()
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for a chunked upload"


@pytest.mark.measures_memory
def test_100mib_download_streams_with_bounded_memory(nginx, switchyard):
    sy = switchyard({
        "listeners": [{"name": "ingress", "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
        "clusters": [cluster("n", nginx.port)],
    })
    port = sy.port("ingress")
    assert request(port, "GET", "/small").status == 200
    before = sy.memory_kib("VmHWM")

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", "/big")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("content-length") == str(BIG)
    digest = hashlib.sha256()
    length = 0
    next_pause = 16 * MiB
    while True:
        piece = resp.read(256 * 1024)
        if not piece:
            break
        digest.update(piece)
        length += len(piece)
        if length >= next_pause:
            # A slow reader (a stimulus, not a synchronisation): nginx can send far faster
            # than this, so a proxy without back-pressure would buffer what we leave unread.
            next_pause += 16 * MiB
            time.sleep(0.3)
    conn.close()
    assert length == BIG
    assert digest.hexdigest() == hashlib.sha256(bytes(BIG)).hexdigest()
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for a 100 MiB download"


def test_chunked_request_with_curl(upstream, switchyard, tmp_path):
    sy = switchyard(proxy_all(upstream.port))
    data = os.urandom(3 * MiB + 17)
    f = tmp_path / "body.bin"
    f.write_bytes(data)
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "60", "-H", "Transfer-Encoding: chunked",
         "--data-binary", f"@{f}", f"http://127.0.0.1:{sy.port('ingress')}/echo"],
        capture_output=True, check=True)
    echo = json.loads(out.stdout)
    assert echo["body_length"] == len(data)
    assert echo["body_sha256"] == harness.sha256(data)


def test_chunked_request_raw_with_extensions_and_trailers(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    pieces = [b"a" * 1, b"b" * 4095, b"c" * 70000, b"d" * 3]
    body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces)
    body += b"0\r\nx-req-trailer: t1\r\n\r\n"
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")], body))
        echo = c.read_response().json()
        assert echo["body_length"] == sum(map(len, pieces))
        assert echo["body_sha256"] == harness.sha256(b"".join(pieces))
        # Still in step for the next request on the same connection.
        c.send(raw_request("GET", "/echo?next"))
        assert c.read_response().json()["path"] == "/echo?next"


def test_chunked_request_sent_slowly(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    pieces = [os.urandom(n) for n in (10, 1000, 1, 50000)]
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")]))
        for p in pieces:  # one chunk per write, split mid-line too
            framed = b"%x\r\n%s\r\n" % (len(p), p)
            c.send(framed[:1])
            c.send(framed[1:])
        c.send(b"0\r\n\r\n")
        echo = c.read_response().json()
    assert echo["body_sha256"] == harness.sha256(b"".join(pieces))


def test_chunked_response_intact(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    resp = request(sy.port("ingress"), "GET", "/stream?chunks=50&size=1000&ms=5")
    assert resp.status == 200
    assert resp.body == stream_payload(50, 1000)
    big = request(sy.port("ingress"), "GET", "/stream?chunks=40&size=100000")
    assert big.body == stream_payload(40, 100000)


def test_chunked_response_streams_before_upstream_finishes(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/stream?chunks=3&size=100&hold=s1"))
        head = c.read_head()
        assert head.status == 200 and "chunked" in head.tokens("transfer-encoding")
        # upstream.py has sent the first chunk and now waits to be released: the proxy must
        # pass that chunk on at once. If it waited for more, this read would time out.
        first = b""
        while len(first) < 100:
            first += c.read_chunk()
        assert first == b"a" * 100
        assert upstream.stats()["held"] == 1
        upstream.release("s1")
        rest = b""
        while True:
            piece = c.read_chunk()
            if not piece:
                break
            rest += piece
        assert first + rest == stream_payload(3, 100)


def test_trailers_pass_through(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/trailers"))
        resp = c.read_response()
    assert resp.status == 200
    assert resp.body == b"hello from trailers\n"
    assert "chunked" in resp.tokens("transfer-encoding")
    assert resp.trailer("x-checksum") == harness.sha256(resp.body)
    assert resp.trailer("x-extra") == "yes"


def test_trailers_with_curl(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    out = subprocess.run(["curl", "-sS", "--raw", "--max-time", "20",
                          f"http://127.0.0.1:{sy.port('ingress')}/trailers"],
                         capture_output=True, check=True)
    assert b"x-checksum: " + harness.sha256(b"hello from trailers\n").encode() in out.stdout


def test_response_ended_by_close(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/eof?size=300000"))
        resp = c.read_response()  # chunked, or itself ended by a close: both are right
        assert resp.status == 200
        assert resp.body == b"e" * 300000


def test_upstream_cut_short_is_not_completed(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/abort?claim=100000&send=1000"))
        head = c.read_head()
        if head.status == 200:
            # The headers went out before the upstream failed: the client must see the
            # connection end without the body being completed.
            received = c.read_until_close(15)
            if "chunked" in head.tokens("transfer-encoding"):
                assert not received.endswith(b"0\r\n\r\n"), "a cut-short body was completed"
            else:
                assert len(received) < 100000
        else:
            assert head.status == 502


def test_many_bodies_on_one_connection(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        for i in range(30):
            data = os.urandom(i * 997)
            if i % 2:
                c.send(raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")],
                                   chunked([data[: len(data) // 2], data[len(data) // 2:]])))
            else:
                c.send(raw_request("POST", "/echo", [("Content-Length", str(len(data)))], data))
            echo = c.read_response().json()
            assert echo["body_sha256"] == harness.sha256(data), i
    until(lambda: upstream.stats()["requests_active"] == 0)
