"""HTTP/2 attacks, each from raw frames on its own connections while legitimate clients keep
being served: Rapid Reset, CONTINUATION flood, HPACK bomb (and a plain header list over
max_header_list_size), PING / SETTINGS / PRIORITY floods, empty DATA frame floods.

For each: the proxy stays up, every attacking connection is closed (with a GOAWAY saying
ENHANCE_YOUR_CALM on at least one of them), the matching counter counts each attacker once,
and requests on other connections — one opened before the attack, and new ones
made all through it, HTTP/2 and HTTP/1.1 — succeed while the attack runs. Below the limits, the
same frames are an ordinary client's and are served.
"""
import threading
import time

import hpack
import pytest

from h2util import (ContinuationFrame, DataFrame, ErrorCodes, H2Client, HeadersFrame, PingFrame,
                    RawH2, RstStreamFrame, SettingsFrame)
from harness import cluster, request, to_cluster, until
from hyperframe.frame import PriorityFrame

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


class Legit:
    """Legitimate clients in a thread until stopped: ten HTTP/2 requests per connection, then
    one HTTP/1.1 request, over and over; every failure recorded."""

    def __init__(self, port):
        self.port = port
        self.ok = 0
        self.failures = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        until(lambda: self.ok >= 3 or self.failures, what="legitimate traffic to start")
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(30)

    def _check(self, kind, status, body):
        if status == 200 and body == SMALL:
            self.ok += 1
        else:
            self.failures.append(f"{kind}: {status} {body[:100]!r}")

    def _run(self):
        i = 0
        while not self.stop_event.is_set() and len(self.failures) < 20:
            try:
                with H2Client(self.port, timeout=10) as c:
                    for _ in range(10):
                        i += 1
                        r = c.get(f"/small?legit={i}")
                        self._check("h2", r.status, r.body)
                        if self.stop_event.is_set():
                            break
                r = request(self.port, "GET", f"/small?legit={i}", timeout=10)
                self._check("h1", r.status, r.body)
            except Exception as e:  # noqa: BLE001 - every failure is a finding here
                self.failures.append(repr(e))


class Outcome:
    def __init__(self, raw, sent):
        self.sent = sent
        goaway = raw.goaway
        self.goaway = goaway.error_code if goaway is not None else None
        self.closed = raw.closed

    def __repr__(self):
        return f"<Outcome sent={self.sent} goaway={self.goaway} closed={self.closed}>"


def keep_sending(raw, batches, limit=None):
    """Sends each batch of frames from BATCHES (an iterator) until the proxy closes the
    connection or LIMIT batches have gone; then waits for the close. Returns the Outcome."""
    sent = 0
    for batch in batches:
        if not raw.send(*batch):
            break
        sent += len(batch)
        if not raw.is_open_now():
            break
        if limit is not None and sent >= limit:
            break
    raw.wait_closed(10)
    return Outcome(raw, sent)


# --- the attacks: each opens its connection, attacks until closed, returns the Outcome --------


def rapid_reset(port, count=20_000):
    """HEADERS then RST_STREAM(CANCEL) at once, stream after stream."""
    with RawH2(port) as raw:
        def batches():
            sid = 1
            while sid < 2 * count:
                batch = []
                for _ in range(100):
                    batch += [raw.headers_frame(sid, path="/small"),
                              RstStreamFrame(sid, error_code=ErrorCodes.CANCEL)]
                    sid += 2
                yield batch
        return keep_sending(raw, batches())


def continuation_flood(port, count=100_000):
    """One HEADERS without END_HEADERS, then CONTINUATION frames that never end the block."""
    with RawH2(port) as raw:
        raw.handshake()
        first = raw.headers_frame(1, path="/small", end_stream=True, end_headers=False)

        def batches():
            yield [first]
            n = 0
            while n < count:
                batch = []
                for _ in range(20):
                    f = ContinuationFrame(1)
                    f.data = raw.block([(f"x-c{n}", "v")])
                    batch.append(f)
                    n += 1
                yield batch
        return keep_sending(raw, batches())


def hpack_bomb(port, streams=50):
    """A 4 KB header put in the dynamic table, then referenced 16,000 times in one 16 KB header
    block (64 MB once decoded), stream after stream."""
    with RawH2(port) as raw:
        raw.handshake()
        table = raw.server_settings.get(SettingsFrame.HEADER_TABLE_SIZE, 4096)
        if table < 200:
            pytest.skip(f"the proxy allows a dynamic table of {table} bytes: no HPACK bomb")
        raw.encoder.header_table_size = table
        pseudo = [hpack.NeverIndexedHeaderTuple(n, v) for n, v in raw.request_headers("/small")]
        # Stream 1 is an ordinary request that leaves x-bomb as the newest table entry (62),
        # as large as the table allows.
        h = HeadersFrame(1)
        h.data = raw.block(pseudo + [("x-bomb", "A" * min(4000, table - 64))])
        h.flags.add("END_HEADERS")
        h.flags.add("END_STREAM")

        def batches():
            yield [h]
            for sid in range(3, 3 + 2 * streams, 2):
                f = HeadersFrame(sid)
                f.data = raw.block(pseudo) + b"\xbe" * 16_000
                f.flags.add("END_HEADERS")
                f.flags.add("END_STREAM")
                yield [f]
        return keep_sending(raw, batches())


def control_flood(kind):
    def attack(port, count=100_000):
        with RawH2(port) as raw:
            def frame(i):
                if kind == "ping":
                    return PingFrame(0, opaque_data=i.to_bytes(8, "big"))
                if kind == "settings":
                    return SettingsFrame(0)
                return PriorityFrame(1 + 2 * (i % 1000), depends_on=0, stream_weight=16)

            def batches():
                for start in range(0, count, 100):
                    yield [frame(i) for i in range(start, start + 100)]
            return keep_sending(raw, batches())
    return attack


def empty_data_flood(port, count=100_000):
    """A PUT (nginx reads the whole body before it answers: the stream stays open) whose body
    is DATA frames with nothing in them, without END_STREAM."""
    with RawH2(port) as raw:
        def batches():
            yield [raw.headers_frame(1, raw.request_headers("/uploads/flood", "PUT"),
                                     end_stream=False)]
            for _ in range(0, count, 50):
                yield [DataFrame(1, data=b"") for _ in range(50)]
        return keep_sending(raw, batches())


ATTACKS = {
    "rapid_reset": (rapid_reset, "h2_rapid_reset"),
    "continuation_flood": (continuation_flood, "h2_continuation_flood"),
    "hpack_bomb": (hpack_bomb, "h2_header_list_too_large"),
    "ping_flood": (control_flood("ping"), "h2_control_flood"),
    "settings_flood": (control_flood("settings"), "h2_control_flood"),
    "priority_flood": (control_flood("priority"), "h2_control_flood"),
    "empty_data_flood": (empty_data_flood, "h2_empty_frame_flood"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_closes_attacker_and_spares_others(nginx, switchyard, name):
    attack, counter = ATTACKS[name]
    sy = switchyard(flood_config(nginx))
    port = sy.port("ingress")
    bystander = H2Client(port)  # opened before the attack, used again after it
    assert bystander.get("/small").status == 200
    outcomes = []
    with Legit(port) as legit:
        served_before = legit.ok
        deadline = time.monotonic() + 40
        # Attack after attack, until at least 3 attackers and 20 legitimate requests served
        # while they ran.
        while (len(outcomes) < 3 or legit.ok - served_before < 20) and len(outcomes) < 200:
            assert time.monotonic() < deadline, (
                f"{len(outcomes)} attacks, {legit.ok - served_before} legitimate requests "
                f"served meanwhile: legitimate clients starved? failures: {legit.failures[:5]}")
            outcomes.append(attack(port))
            assert sy.running(), f"the proxy died under {name}"
        served_during = legit.ok - served_before
    assert legit.failures == [], f"legitimate requests failed during {name}: {legit.failures[:5]}"
    assert served_during >= 20
    assert all(o.closed for o in outcomes), outcomes
    with_goaway = [o for o in outcomes if o.goaway is not None]
    assert with_goaway, f"no attacker got a GOAWAY: {outcomes[:5]}"
    assert all(o.goaway in ABUSE_CODES for o in with_goaway), with_goaway[:5]
    until(lambda: sy.stat(f"listener.ingress.{counter}") == len(outcomes),
          what=f"{counter} == {len(outcomes)} (one per attacking connection)")
    others = {c: sy.stat(f"listener.ingress.{c}") or 0 for c in H2_COUNTERS if c != counter}
    assert not any(others.values()), f"other counters moved: {others}"
    # The bystander's connection was never touched.
    resp = bystander.get("/small?after")
    assert resp.status == 200 and resp.body == SMALL and bystander.goaway is None, resp
    bystander.close()
    assert sy.admin("GET", "/ready").status == 200
    assert request(port, "GET", "/small").body == SMALL


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
