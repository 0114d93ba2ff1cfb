"""ABI 1.2 flow control a filter drives: SY_STOP_AND_WATERMARK. A filter
(tests/abi/fx_watermark.c) holds every request body chunk and hands it on later, slower than
the client sends, as ext_proc's STREAMED mode does while its processor answers. The proxy must
pause the client at the watermark instead of holding the body: 100 MiB pass with bounded
memory, byte for byte."""
import hashlib
import json

import pytest

from h2util import H2Client
from harness import RawClient, proxy_all
from modules_util import fixture_file

MiB = 1024 * 1024
RSS_BUDGET_KIB = 32 * 1024


def watermark_config(upstream_port):
    cfg = proxy_all(upstream_port)
    cfg["listeners"][0]["filters"] = [{"module": "watermark"}]
    cfg["modules"] = [{"name": "watermark", "path": str(fixture_file("watermark"))}]
    return cfg


def upload(port, total, headers=()):
    """POSTs TOTAL bytes of a known pattern to upstream.py's /upload; returns the response."""
    piece = bytes(range(256)) * 1024  # 256 KiB
    with RawClient(port, timeout=120) as c:
        head = ["POST /upload HTTP/1.1", "host: test", f"content-length: {total}",
                *(f"{k}: {v}" for k, v in headers)]
        c.send("\r\n".join(head) + "\r\n\r\n")
        sent = 0
        try:
            while sent < total:
                n = min(len(piece), total - sent)
                c.send(piece[:n])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early (413) and closed: the answer is still there to read
        return c.read_response()


def pattern_sha256(total):
    piece = bytes(range(256)) * 1024
    h = hashlib.sha256()
    for start in range(0, total, len(piece)):
        h.update(piece[:min(len(piece), total - start)])
    return h.hexdigest()


@pytest.mark.measures_memory
def test_watermark_status_moves_100mib_with_bounded_memory(upstream, switchyard):
    sy = switchyard(watermark_config(upstream.port))
    assert upload(sy.port("ingress"), 1000).status == 200
    before = sy.memory_kib("VmHWM")
    total = 100 * MiB
    r = upload(sy.port("ingress"), total)
    assert r.status == 200, r
    assert r.json() == {"length": total, "sha256": pattern_sha256(total)}
    # The filter handed the body on in pieces, from its timer, while the client waited.
    assert int(r.header("x-watermark-ticks")) >= total // (64 * 1024)
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for 100 MiB"


def test_watermark_status_is_not_held_to_the_buffer_limit(upstream, switchyard):
    # The same body through SY_STOP_AND_BUFFER passes the listener's 1 MiB buffered_body and is
    # refused; with the watermark status the peer is paused instead and the whole body passes.
    sy = switchyard(watermark_config(upstream.port))
    total = 4 * MiB
    assert upload(sy.port("ingress"), total, [("x-status", "buffer")]).status == 413
    r = upload(sy.port("ingress"), total)
    assert r.status == 200, r
    assert r.json() == {"length": total, "sha256": pattern_sha256(total)}


def typed_md_config(upstream_port):
    cfg = proxy_all(upstream_port, listener_extra={"protocols": ["http1", "http2"]})
    cfg["listeners"][0]["filters"] = [{"module": "typed_md"}]
    cfg["modules"] = [{"name": "typed_md", "path": str(fixture_file("typed_md"))}]
    return cfg


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_a_filter_adds_a_body_to_a_bodiless_request(upstream, switchyard, protocol):
    # tests/abi/fx_typed_md.cc holds the headers of a GET without body, then continues them
    # with continue_headers_with_body and injects x-add-body as the body, from a timer.
    sy = switchyard(typed_md_config(upstream.port))
    if protocol == "http1":
        with RawClient(sy.port("ingress")) as c:
            c.send("GET /echo HTTP/1.1\r\nhost: test\r\nx-add-body: added by the filter\r\n\r\n")
            r = c.read_response()
            # The connection stays usable: the upstream framing of the added body was right.
            c.send("GET /echo HTTP/1.1\r\nhost: test\r\n\r\n")
            assert c.read_response().status == 200
    else:
        with H2Client(sy.port("ingress")) as c:
            sid = c.request("GET", "/echo", headers=[("x-add-body", "added by the filter")])
            r = c.response(sid)
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo["body_length"] == len("added by the filter"), echo
    assert echo["method"] == "GET"
