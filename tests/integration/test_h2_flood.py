"""HTTP/2 flood limits at their edges: the configured limits (max_resets,
max_continuation_frames, max_control_frames, max_empty_frames) let a client through just below
them and close it just above; the defaults let an ordinary client's bursts through; a header
list over max_header_list_size ends the connection.

The floods themselves (Rapid Reset, CONTINUATION, HPACK bomb, PING / SETTINGS / PRIORITY, empty
DATA), run against the default limits while legitimate clients are served, are rows of the
attack suite in test_attacks_h2.py.
"""
from h2attacks import keep_sending
from h2util import (ContinuationFrame, DataFrame, ErrorCodes, H2Client, HeadersFrame, PingFrame,
                    RawH2, RstStreamFrame)
from harness import cluster, to_cluster, until

SMALL = b"hello from nginx\n"
# A connection over a limit gets GOAWAY ENHANCE_YOUR_CALM (docs/config.md, http2).
ABUSE_CODES = (ErrorCodes.ENHANCE_YOUR_CALM,)
H2_COUNTERS = ("h2_rapid_reset", "h2_continuation_flood", "h2_header_list_too_large",
               "h2_control_flood", "h2_empty_frame_flood")


def flood_config(nginx, **http2):
    listener = {"name": "ingress", "protocols": ["http1", "http2"],
                "routes": [to_cluster("n", {"prefix": "/"}, "n")]}
    if http2:
        listener["http2"] = http2
    return {"listeners": [listener], "clusters": [cluster("n", nginx.port)]}


# --- the same frames below the limits: an ordinary client ----------------------------------


def served_after(raw, sid=None):
    """Sends a GET on RAW and returns its response stream once ended (fails if closed)."""
    sid = sid or (max([s for s in raw.streams if s % 2] or [-1]) + 2)
    raw.send(raw.headers_frame(sid, path="/small"))
    raw.wait(lambda: sid in raw.streams and raw.streams[sid].ended, what=f"stream {sid}")
    return raw.streams[sid]


def test_configured_limits_below_and_above(nginx, switchyard):
    sy = switchyard(flood_config(
        nginx, max_resets={"count": 20, "window": "10s"}, max_continuation_frames=2,
        max_control_frames={"count": 50, "window": "10s"}, max_empty_frames=3))
    port = sy.port("ingress")

    def resets(n):
        with RawH2(port) as raw:
            for sid in range(1, 2 * n, 2):
                raw.send(raw.headers_frame(sid, path="/small"),
                         RstStreamFrame(sid, error_code=ErrorCodes.CANCEL))
            if n <= 20:
                assert served_after(raw, 2 * n + 1).status == 200
                return None
            return keep_sending(raw, iter(()))

    def continuations(n):
        with RawH2(port) as raw:
            raw.handshake()
            frames = [raw.headers_frame(1, path="/small", end_headers=False)]
            for i in range(n):
                f = ContinuationFrame(1)
                f.data = raw.block([(f"x-c{i}", "v")])
                frames.append(f)
            frames[-1].flags.add("END_HEADERS")
            raw.send(*frames)
            if n <= 2:
                raw.wait(lambda: 1 in raw.streams and raw.streams[1].ended, what="stream 1")
                assert raw.streams[1].status == 200 and raw.streams[1].data == SMALL
                return None
            return keep_sending(raw, iter(()))

    def pings(n):
        with RawH2(port) as raw:
            raw.send(*[PingFrame(0, opaque_data=i.to_bytes(8, "big")) for i in range(n)])
            if n <= 30:
                assert served_after(raw, 1).status == 200
                raw.wait(lambda: sum(isinstance(f, PingFrame) and "ACK" in f.flags
                                     for f in raw.frames) == n, what="every PING acknowledged")
                return None
            return keep_sending(raw, iter(()))

    def empties(n):
        with RawH2(port) as raw:
            frames = [raw.headers_frame(1, raw.request_headers(f"/uploads/e{n}", "PUT"),
                                        end_stream=False)]
            frames += [DataFrame(1, data=b"") for _ in range(n)]
            frames.append(DataFrame(1, data=b"body", flags=["END_STREAM"]))
            raw.send(*frames)
            if n <= 2:
                raw.wait(lambda: 1 in raw.streams and raw.streams[1].ended, what="stream 1")
                assert raw.streams[1].status in (201, 204), raw.streams[1]
                assert nginx.uploaded(f"e{n}") == b"body"
                return None
            return keep_sending(raw, iter(()))

    for check, below, above, counter in ((resets, 15, 40, "h2_rapid_reset"),
                                         (continuations, 2, 12, "h2_continuation_flood"),
                                         (pings, 30, 120, "h2_control_flood"),
                                         (empties, 2, 20, "h2_empty_frame_flood")):
        assert check(below) is None
        assert (sy.stat(f"listener.ingress.{counter}") or 0) == 0, f"{counter} below the limit"
        outcome = check(above)
        assert outcome.closed, (counter, outcome)
        assert outcome.goaway is None or outcome.goaway in ABUSE_CODES, (counter, outcome)
        until(lambda c=counter: sy.stat(f"listener.ingress.{c}") == 1, what=f"{counter} == 1")


def test_default_limits_let_ordinary_clients_through(nginx, switchyard):
    # A header block split over HEADERS and 3 CONTINUATIONs, 50 cancelled streams, 100 PINGs
    # and 5 empty DATA frames are all within the defaults.
    sy = switchyard(flood_config(nginx))
    port = sy.port("ingress")
    with RawH2(port) as raw:
        raw.handshake()
        block = raw.block(raw.request_headers("/small", extra=[("x-pad", "p" * 3000)]))
        quarter = len(block) // 4
        first = HeadersFrame(1, data=block[:quarter], flags=["END_STREAM"])
        rest = [ContinuationFrame(1, data=block[quarter * i:quarter * (i + 1)])
                for i in (1, 2)]
        last = ContinuationFrame(1, data=block[quarter * 3:], flags=["END_HEADERS"])
        raw.send(first, *rest, last)
        raw.wait(lambda: 1 in raw.streams and raw.streams[1].ended, what="stream 1")
        assert raw.streams[1].status == 200 and raw.streams[1].data == SMALL
        for sid in range(3, 103, 2):
            raw.send(raw.headers_frame(sid, path="/small"),
                     RstStreamFrame(sid, error_code=ErrorCodes.CANCEL))
        raw.send(*[PingFrame(0, opaque_data=i.to_bytes(8, "big")) for i in range(100)])
        put = raw.headers_frame(103, raw.request_headers("/uploads/five", "PUT"),
                                end_stream=False)
        raw.send(put, *[DataFrame(103, data=b"") for _ in range(5)],
                 DataFrame(103, data=b"x", flags=["END_STREAM"]))
        raw.wait(lambda: 103 in raw.streams and raw.streams[103].ended, what="stream 103")
        assert raw.streams[103].status in (201, 204), raw.streams[103]
        assert nginx.uploaded("five") == b"x"
        assert served_after(raw, 105).data == SMALL
        assert raw.goaway is None and not raw.closed
    stats = sy.stats()
    assert not any(stats.get(f"listener.ingress.{c}") for c in H2_COUNTERS), stats


# --- header list size ----------------------------------------------------------------------


def test_header_list_over_max_header_list_size(nginx, switchyard):
    sy = switchyard(flood_config(nginx, max_header_list_size="16KiB"))
    port = sy.port("ingress")
    with H2Client(port) as c:
        c.wait(lambda: c.remote_settings_seen, what="the server's SETTINGS")
        advertised = c.conn.remote_settings.max_header_list_size
        assert advertised == 16 * 1024, advertised
        resp = c.get("/small", headers=[("x-big", "b" * 6_000)])
        assert resp.status == 200, resp
    with RawH2(port) as raw:
        raw.handshake()
        # 20 KB in one header: over the limit (split over HEADERS and a CONTINUATION).
        block = raw.block(raw.request_headers("/small", extra=[("x-big", "b" * 20_000)]))
        raw.send(HeadersFrame(1, data=block[:16_000], flags=["END_STREAM"]),
                 ContinuationFrame(1, data=block[16_000:], flags=["END_HEADERS"]))
        raw.wait_closed(10)
        assert raw.goaway is not None, raw.frames[-5:]
        assert raw.goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM, raw.goaway
    until(lambda: sy.stat("listener.ingress.h2_header_list_too_large") == 1,
          what="h2_header_list_too_large == 1")
    with H2Client(port) as c:
        assert c.get("/small").body == SMALL
