"""ABI 1.2 flow control a filter drives: SY_STOP_AND_WATERMARK. A filter
(tests/abi/fx_watermark.c) holds every request body chunk and hands it on later, slower than
the client sends, as ext_proc's STREAMED mode does while its processor answers. The proxy must
pause the client at the watermark instead of holding the body: 100 MiB pass with bounded
memory, byte for byte."""
import hashlib
import json

import pytest

from h2util import H2Client
from harness import RawClient, echo_headers, proxy_all, request, until
from modules_util import fixture_file, module_stat

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


def test_post_to_main_runs_on_the_main_thread_and_gets_back_to_the_stream(upstream, switchyard):
    # tests/abi/fx_main_post.c: request -> post_to_main -> post_to_filter -> header + resume.
    cfg = proxy_all(upstream.port)
    cfg["listeners"][0]["filters"] = [{"module": "main_post"}]
    cfg["modules"] = [{"name": "main_post", "path": str(fixture_file("main_post"))}]
    sy = switchyard(cfg)
    for _ in range(3):
        r = request(sy.port("ingress"), "GET", "/echo")
        assert r.status == 200, r
        assert echo_headers(r.json(), "x-on-main") == ["yes"], r.json()["headers"]


def test_the_sdk_posts_to_main_and_back(upstream, switchyard):
    sy = switchyard(typed_md_config(upstream.port))
    r = request(sy.port("ingress"), "GET", "/echo", headers={"x-via-main": "1"})
    assert r.status == 200, r
    assert echo_headers(r.json(), "x-via-main") == ["back"], r.json()["headers"]


def test_the_sdk_posts_to_a_worker_sets_a_worker_timer_and_learns_of_a_drop(upstream,
                                                                             switchyard):
    sy = switchyard(typed_md_config(upstream.port))
    r = request(sy.port("ingress"), "GET", "/echo", headers={"x-via-worker": "1"})
    assert r.status == 200, r
    assert echo_headers(r.json(), "x-via-worker") == ["back"], r.json()["headers"]
    # SY_ERR_NOT_FOUND for a worker that does not exist, and the task's ON_DROP ran.
    not_found = 1
    assert r.header("x-rc-drop") == f"{not_found}:dropped", r.headers


def test_filters_hear_the_clients_write_buffer_cross_the_watermarks(upstream, switchyard):
    # A 32 MiB response to a client that reads nothing yet: the proxy's queue toward the client
    # passes the high watermark (fx_watermark counts on_watermark calls); once the client reads
    # it all, the queue drains below the low one.
    cfg = watermark_config(upstream.port)
    # fx_typed_md hears them through the SDK (HttpFilter::on_watermark).
    cfg["listeners"][0]["filters"].append({"module": "typed_md"})
    cfg["modules"].append({"name": "typed_md", "path": str(fixture_file("typed_md"))})
    cfg["access_log"] = {"path": "access.log", "fields": {
        "wm": "%FILTER_STATE(watermarks)%", "sdk_wm": "%FILTER_STATE(sdk_watermarks)%"}}
    sy = switchyard(cfg)

    def crossings(name):
        return module_stat(sy.stats(), "watermark", name) or 0

    with RawClient(sy.port("ingress"), timeout=60) as c:
        c.send("GET /stream?chunks=128&size=262144&ms=0 HTTP/1.1\r\nhost: test\r\n"
               "x-request-id: wm-1\r\n\r\n")
        until(lambda: crossings("above_response") >= 1, timeout=30,
              what="on_watermark(SY_RESPONSE, above)")
        assert crossings("below_response") == 0
        tail = b""
        while not tail.endswith(b"0\r\n\r\n"):  # the end of the chunked body
            data = c.sock.recv(1 << 20)
            assert data, "the proxy closed the connection"
            tail = (tail + data)[-16:]
    until(lambda: crossings("below_response") >= 1, what="on_watermark(SY_RESPONSE, below)")
    e = sy.wait_access_entry(lambda e: e.get("request_id") == "wm-1")
    assert e["wm"].startswith("response:above,response:below"), e["wm"]
    assert e["sdk_wm"].startswith("response:above,response:below"), e["sdk_wm"]
