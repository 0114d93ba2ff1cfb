"""The HTTP/2 attack suite, kept as data: each case is an attack (frames written by hand, from
h2attacks.py) and the outcome expected, one row in CASES. Adding a case is adding a row.

Each case starts the proxy in front of upstream.py (which counts every request path it parses),
keeps a bystander HTTP/2 connection open from before the attack, and runs legitimate clients
(HTTP/2 and HTTP/1.1, on their own connections) all through it. The attack is repeated, each
time on a new connection, until at least three attacks have run and twenty legitimate requests
have been served meanwhile. Then:
  - every attacker got the verdict expected: its connection closed with the GOAWAY code named,
    or its stream reset with the RST_STREAM code named (the connection then serves another
    stream), or its stream answered with the status named;
  - no legitimate request failed, and the bystander connection still serves;
  - the proxy's peak RSS grew by less than RSS_BUDGET_KIB;
  - the upstream never received the paths it must not, and at most so many requests per attack
    on the paths bounded;
  - the counter named counts each attack once.
bench/h2_attacks.py runs the same table for figures: time to refuse an attacker, and legitimate
throughput during each attack as a ratio to without. Nothing here asserts a duration.
"""
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest

from h2attacks import (Legit, connection_attack, continuation_flood, control_flood,
                       empty_data_flood, hpack_bomb, rapid_reset, stream_attack)
from h2util import (DataFrame, ErrorCodes, H2Client, HeadersFrame, RawH2, SettingsFrame,
                    WindowUpdateFrame)
from harness import cluster, request, to_cluster, until

MAX_WINDOW = 2**31 - 1
RSS_BUDGET_KIB = 32 * 1024
LEGIT_PATH, LEGIT_BODY = "/status?code=200", b"status 200\n"
# Short request timeouts, so the slow attacks end quickly (docs/config.md, timeouts).
HEAD_TIMEOUT = {"request_headers": "1s"}
IDLE_TIMEOUT = {"idle": "1500ms"}
H2_COUNTERS = ("h2_rapid_reset", "h2_continuation_flood", "h2_header_list_too_large",
               "h2_control_flood", "h2_empty_frame_flood")


@dataclass(frozen=True)
class Case:
    id: str
    attack: Callable  # attack(port) -> h2attacks.Outcome, on a connection of its own
    # The verdict: exactly one of these.
    goaway: Optional[int] = None  # the connection ends with a GOAWAY of this code
    reset: Optional[int] = None   # the attacking stream gets RST_STREAM with this code
    status: Optional[int] = None  # the attacking stream is answered with this status
    never: tuple = ()             # request paths the upstream must never receive
    # Paths the upstream may receive only cut off, before the end of their body (upstream.py
    # counts such requests as aborted): a head goes upstream before the body that makes the
    # request malformed has arrived, and then the upstream request must be abandoned.
    cut_off: tuple = ()
    at_most: dict = field(default_factory=dict)  # path -> requests allowed upstream per attack
    counter: Optional[str] = None  # listener counter that counts each attack once
    http2: dict = field(default_factory=dict)     # the listener's http2 settings
    timeouts: dict = field(default_factory=dict)  # the listener's timeouts


# --- raw HPACK: what no encoder would write ----------------------------------------------


def hpack_int(n, prefix_bits=7):
    """An HPACK integer (RFC 7541 5.1) with a PREFIX_BITS prefix and the prefix's flags clear."""
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([n])
    out = [limit]
    n -= limit
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    return bytes(out + [n])


def literal(name, value):
    """A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2): the
    bytes go on the wire exactly as given, CR, LF and NUL included."""
    return b"\x00" + hpack_int(len(name)) + name + hpack_int(len(value)) + value


def headers(raw, sid, fields=(), path="/", method="GET", raw_fields=b"", pseudo=None,
            end_stream=True):
    """A HEADERS frame: PSEUDO (default: a request for PATH) and FIELDS through the encoder,
    then RAW_FIELDS (literal() bytes) as they are."""
    pseudo = raw.request_headers(path, method) if pseudo is None else pseudo
    f = HeadersFrame(sid, flags=["END_HEADERS"] + (["END_STREAM"] if end_stream else []))
    f.data = raw.block(list(pseudo) + list(fields)) + raw_fields
    return f


def pseudo_without(raw, path, name):
    return [(n, v) for n, v in raw.request_headers(path) if n != name]


# --- stream attacks ------------------------------------------------------------------------


def malformed(path, fields=(), raw_fields=b"", pseudo=None, method="GET"):
    """One request RFC 9113 8.2 makes malformed."""
    return stream_attack(lambda raw: [headers(
        raw, 1, fields, path, method, raw_fields,
        pseudo(raw) if callable(pseudo) else pseudo)])


# An HTTP/1.1 request hidden in bytes that an h2-to-h1 proxy might copy onto the wire.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n"


def body_over_content_length(raw):
    """content-length 5, then DATA of 5 bytes and a whole HTTP/1.1 request after them: copied
    upstream as it is, the rest would be a second request on the upstream connection."""
    return [headers(raw, 1, [("content-length", "5")], "/cl-over", "POST", end_stream=False),
            DataFrame(1, data=b"hello" + SMUGGLED, flags=["END_STREAM"])]


def body_under_content_length(raw):
    return [headers(raw, 1, [("content-length", "100")], "/cl-under", "POST", end_stream=False),
            DataFrame(1, data=b"hello", flags=["END_STREAM"])]


def chunked_in_h2(raw):
    """transfer-encoding: chunked on an h2 request (connection-specific: malformed), with a
    body that ends the chunked message early and smuggles a request after it."""
    return [headers(raw, 1, [("transfer-encoding", "chunked")], "/te-h2", "POST",
                    end_stream=False),
            DataFrame(1, data=b"0\r\n\r\n" + SMUGGLED, flags=["END_STREAM"])]


def window_update(stream, increment, twice=False):
    """A WINDOW_UPDATE on the connection (STREAM 0) or on an open stream (1, a request whose
    body has not ended, so the stream stays open)."""
    def frames(raw):
        out = [headers(raw, 1, [], "/wu", "POST", end_stream=False)] if stream else []
        out.append(WindowUpdateFrame(stream, window_increment=increment))
        if twice:
            out.append(WindowUpdateFrame(stream, window_increment=increment))
        return out
    return frames


# --- connection attacks ---------------------------------------------------------------------


def once(frames_of, handshake=True):
    """Sends FRAMES_OF(raw) once and waits for the proxy to close the connection."""
    return connection_attack(lambda raw: iter([frames_of(raw)]), handshake=handshake)


def streams_over_the_limit(raw):
    """After acknowledging max_concurrent_streams (4), twenty held requests at once."""
    return [headers(raw, sid, [], f"/slow?hold=limit&sid={sid}") for sid in range(1, 41, 2)]


def open_header_block(raw):
    """slowloris: a header block that never ends (HEADERS without END_HEADERS, then nothing)."""
    f = headers(raw, 1, [], "/slowloris")
    f.flags.discard("END_HEADERS")
    return [f]


def preface_then_nothing(raw):
    return []


def slow_body(raw):
    """A POST that promises 1000 bytes, sends 4 and stops."""
    return [headers(raw, 1, [("content-length", "1000")], "/slow-body", "POST",
                    end_stream=False),
            DataFrame(1, data=b"part")]


CASES = [
    # --- floods (docs/config.md, http2: each limit has its counter) --------------------------
    # Rapid Reset (CVE-2023-44487): a stream reset in the same batch as its HEADERS is dropped
    # before dispatch, so none of them reaches the upstream.
    Case("rapid-reset", rapid_reset("/rapid-reset"), goaway=ErrorCodes.ENHANCE_YOUR_CALM,
         never=("/rapid-reset",), counter="h2_rapid_reset"),
    # The same, one stream to a write: a stream may now be started before its reset arrives,
    # and reach the upstream; max_resets bounds how many per connection.
    Case("rapid-reset-one-per-write", rapid_reset("/rapid-reset-1", per_batch=1),
         goaway=ErrorCodes.ENHANCE_YOUR_CALM, at_most={"/rapid-reset-1": 200},
         counter="h2_rapid_reset"),
    Case("continuation-flood", continuation_flood("/continuation"),
         goaway=ErrorCodes.ENHANCE_YOUR_CALM, never=("/continuation",),
         counter="h2_continuation_flood"),
    Case("hpack-bomb", hpack_bomb("/hpack-bomb", seed_path="/hpack-seed"),
         goaway=ErrorCodes.ENHANCE_YOUR_CALM, never=("/hpack-bomb",),
         counter="h2_header_list_too_large"),
    Case("ping-flood", control_flood("ping"), goaway=ErrorCodes.ENHANCE_YOUR_CALM,
         counter="h2_control_flood"),
    Case("settings-flood", control_flood("settings"), goaway=ErrorCodes.ENHANCE_YOUR_CALM,
         counter="h2_control_flood"),
    Case("priority-flood", control_flood("priority"), goaway=ErrorCodes.ENHANCE_YOUR_CALM,
         counter="h2_control_flood"),
    Case("empty-data-flood", empty_data_flood("/empty-data", "POST"),
         goaway=ErrorCodes.ENHANCE_YOUR_CALM, counter="h2_empty_frame_flood"),
    # More streams at once than the acknowledged limit: GOAWAY PROTOCOL_ERROR, and no more than
    # the limit ever reached the upstream.
    Case("too-many-concurrent-streams", once(streams_over_the_limit),
         goaway=ErrorCodes.PROTOCOL_ERROR, at_most={"/slow": 4},
         http2={"max_concurrent_streams": 4}),

    # --- flow-control abuse (RFC 9113 6.9) ---------------------------------------------------
    Case("window-update-zero-on-connection", once(window_update(0, 0)),
         goaway=ErrorCodes.PROTOCOL_ERROR),
    # A stream error by RFC 9113 6.9; nghttp2 makes it a connection error, as 5.4.1 allows.
    Case("window-update-zero-on-stream", once(window_update(1, 0)),
         goaway=ErrorCodes.PROTOCOL_ERROR),
    Case("window-update-overflow-on-connection",
         once(window_update(0, MAX_WINDOW, twice=True)), goaway=ErrorCodes.FLOW_CONTROL_ERROR),
    Case("window-update-overflow-on-stream", stream_attack(window_update(1, MAX_WINDOW)),
         reset=ErrorCodes.FLOW_CONTROL_ERROR),
    Case("settings-initial-window-over-max",
         once(lambda raw: [SettingsFrame(0, {SettingsFrame.INITIAL_WINDOW_SIZE: 2**31})]),
         goaway=ErrorCodes.FLOW_CONTROL_ERROR),

    # --- malformed requests: stream errors, nothing forwarded (RFC 9113 8.2) ----------------
    Case("uppercase-header-name", malformed("/upper", [("X-Upper", "1")]),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/upper",), counter="h2_stream_error"),
    Case("connection-header", malformed("/conn", [("connection", "close")]),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/conn",), counter="h2_stream_error"),
    Case("keep-alive-header", malformed("/ka", [("keep-alive", "timeout=5")]),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/ka",), counter="h2_stream_error"),
    Case("upgrade-header", malformed("/up101", [("upgrade", "h2c")]),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/up101",), counter="h2_stream_error"),
    Case("te-not-trailers", malformed("/te", [("te", "gzip")]),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/te",), counter="h2_stream_error"),
    Case("unknown-pseudo-header", malformed("/pseudo", [(":foo", "bar")]),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/pseudo",), counter="h2_stream_error"),
    Case("response-pseudo-in-request", malformed("/status-pseudo", [(":status", "200")]),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/status-pseudo",), counter="h2_stream_error"),
    Case("missing-method",
         malformed("/no-method", pseudo=lambda raw: pseudo_without(raw, "/no-method", ":method")),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/no-method",), counter="h2_stream_error"),
    Case("pseudo-after-regular",
         malformed("/late", pseudo=lambda raw: pseudo_without(raw, "/late", ":path")
                   + [("x-a", "1"), (":path", "/late")]),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/late",), counter="h2_stream_error"),

    # --- h2 -> h1 smuggling probes --------------------------------------------------------------
    # Whatever the proxy has forwarded of these, no second request may come out of them.
    # (A body that contradicts its content-length is reset by nghttp2 after the head was taken:
    # h2_stream_error does not count it, so these two name no counter.)
    Case("content-length-under-data", stream_attack(body_over_content_length),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/smuggled",), cut_off=("/cl-over",)),
    Case("content-length-over-data", stream_attack(body_under_content_length),
         reset=ErrorCodes.PROTOCOL_ERROR, cut_off=("/cl-under",)),
    Case("transfer-encoding-chunked", stream_attack(chunked_in_h2),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/smuggled", "/te-h2"),
         counter="h2_stream_error"),
    Case("crlf-in-header-value",
         malformed("/crlf", raw_fields=literal(b"x-a", b"1\r\nx-injected: 1")),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/crlf",), counter="h2_stream_error"),
    Case("lf-in-header-value",
         malformed("/lf", raw_fields=literal(b"x-a", b"1\nhost: evil")),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/lf",), counter="h2_stream_error"),
    Case("nul-in-header-value",
         malformed("/nul", raw_fields=literal(b"x-a", b"1\x00x")),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/nul",), counter="h2_stream_error"),
    Case("request-line-in-path",
         malformed("", raw_fields=literal(b":path", b"/rl HTTP/1.1\r\nhost: x\r\n\r\n" + SMUGGLED),
                   pseudo=lambda raw: pseudo_without(raw, "", ":path")),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/rl", "/smuggled"), counter="h2_stream_error"),
    Case("space-in-method",
         malformed("/sp", pseudo=lambda raw: [(":method", "GET /smuggled HTTP/1.1\r\nx: ")]
                   + pseudo_without(raw, "/sp", ":method")),
         reset=ErrorCodes.PROTOCOL_ERROR, never=("/sp", "/smuggled"), counter="h2_stream_error"),

    # --- slow clients (timeouts.request_headers, timeouts.idle) -----------------------------
    # An open header block blocks the whole connection: the connection goes (GOAWAY NO_ERROR).
    Case("slowloris-open-header-block", once(open_header_block),
         goaway=ErrorCodes.NO_ERROR, never=("/slowloris",), counter="rq_header_timeout",
         timeouts=HEAD_TIMEOUT),
    Case("preface-then-silence", once(preface_then_nothing, handshake=False),
         goaway=ErrorCodes.NO_ERROR, timeouts=IDLE_TIMEOUT),
    # A body that stops: 408 on that stream once request_body_idle passes (its own counter
    # since issue 13's defect 6); the connection serves on.
    Case("slow-body", stream_attack(slow_body), status=408, counter="rq_body_timeout",
         timeouts={"request_body_idle": "1500ms"}),
]


def config(upstream_port, case):
    listener = {"name": "ingress", "protocols": ["http1", "http2"],
                "routes": [to_cluster("all", {"prefix": "/"}, "backend")]}
    if case.http2:
        listener["http2"] = case.http2
    if case.timeouts:
        listener["timeouts"] = case.timeouts
    # The bystander's request waits at the upstream all through the attacks.
    return {"listeners": [listener],
            "clusters": [cluster("backend", upstream_port, timeout="120s")]}


def verdict_problems(case, outcomes):
    """What in OUTCOMES differs from the verdict CASE expects."""
    bad = []
    for o in outcomes:
        if case.goaway is not None:
            if not o.closed or o.goaway != case.goaway:
                bad.append(o)
        elif case.reset is not None:
            if o.reset != case.reset or o.closed or o.after != 200:
                bad.append(o)
        elif o.status != case.status or o.closed or o.after != 200:
            bad.append(o)
    return bad


def run_attacks(case, port, legit, min_attacks=3, min_legit=20, budget=60):
    """Attack after attack until MIN_ATTACKS have run and MIN_LEGIT legitimate requests were
    served meanwhile. Returns the outcomes."""
    served_before = legit.ok
    deadline = time.monotonic() + budget
    outcomes = []
    while (len(outcomes) < min_attacks or legit.ok - served_before < min_legit) \
            and len(outcomes) < 200:
        assert time.monotonic() < deadline, (
            f"{len(outcomes)} attacks, {legit.ok - served_before} legitimate requests served "
            f"meanwhile: legitimate clients starved? failures: {legit.failures[:5]}")
        outcomes.append(case.attack(port))
    return outcomes


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
@pytest.mark.measures_memory
def test_attack(upstream, switchyard, case):
    sy = switchyard(config(upstream.port, case))
    port = sy.port("ingress")
    # A bystander connection, opened before the attacks, with a request held at the upstream
    # all through them (so that no idle timeout applies to it): it must come out untouched.
    bystander = H2Client(port)
    assert bystander.get(LEGIT_PATH).status == 200
    held = bystander.request("GET", "/slow?hold=bystander")
    until(lambda: upstream.stats()["held"] == 1, what="the bystander's request at the upstream")
    before_kib = sy.memory_kib("VmHWM")
    with Legit(port, LEGIT_PATH, LEGIT_BODY) as legit:
        outcomes = run_attacks(case, port, legit)
        assert sy.running(), f"the proxy died under {case.id}"
    upstream.release("limit")
    # What reached the upstream is judged first: it is what an attack is after.
    paths = upstream.stats()["paths"]
    for path in case.never:
        assert path not in paths, f"the upstream received {path}: {paths}"
    cut_off = sum(paths.get(p, 0) for p in case.cut_off)
    assert cut_off <= upstream.stats()["aborted"], (
        f"the upstream received {cut_off} requests for {case.cut_off} but saw only "
        f"{upstream.stats()['aborted']} cut off: some were whole")
    for path, per_attack in case.at_most.items():
        assert paths.get(path, 0) <= per_attack * len(outcomes), (
            f"the upstream received {paths.get(path)} requests for {path} from "
            f"{len(outcomes)} attacks: {paths}")
    bad = verdict_problems(case, outcomes)
    assert not bad, f"{len(bad)} of {len(outcomes)} attackers got another verdict: {bad[:5]}"
    assert legit.failures == [], f"legitimate requests failed: {legit.failures[:5]}"
    growth = sy.memory_kib("VmHWM") - before_kib
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB under {case.id}"
    if case.counter:
        until(lambda: sy.stat(f"listener.ingress.{case.counter}") == len(outcomes),
              what=f"{case.counter} == {len(outcomes)} (one per attack)")
    # The flood counters count only their own flood.
    others = {c: sy.stat(f"listener.ingress.{c}") or 0 for c in H2_COUNTERS
              if c != case.counter}
    assert not any(others.values()), f"other counters moved: {others}"
    # The bystander's connection was never touched, and the proxy serves everyone.
    upstream.release("bystander")
    resp = bystander.response(held)
    assert resp.status == 200 and resp.body == b"slow\n", resp
    resp = bystander.get(LEGIT_PATH + "&after=1")
    assert resp.status == 200 and bystander.goaway is None, resp
    bystander.close()
    assert sy.admin("GET", "/ready").status == 200
    assert request(port, "GET", LEGIT_PATH).body == LEGIT_BODY


def _no_window_updates(send):
    def filtered(*frames):
        return send(*[f for f in frames if not isinstance(f, WindowUpdateFrame)])
    return filtered


def received(raw):
    return sum(len(s.data) for s in raw.streams.values())


@pytest.mark.measures_memory
def test_stream_window_abuse_holds_the_upstream_back(upstream, switchyard):
    """Stream-window abuse: a client asks for 100 MiB bodies on 20 streams and never opens its
    windows beyond the 64 KiB it starts with. The proxy must hold the upstream back, not buffer
    the bodies: RSS stays bounded while the attacker holds on, the upstream is still writing,
    and legitimate clients are served. The attacker lets go on its own, before
    timeouts.response_send_idle (60 s) would reset its streams (test_h2_timeouts.py tests
    that reset)."""
    streams = 20
    sy = switchyard(config(upstream.port, Case("window-abuse", None)))
    port = sy.port("ingress")
    assert request(port, "GET", LEGIT_PATH).status == 200
    before_kib = sy.memory_kib("VmHWM")
    with Legit(port, LEGIT_PATH, LEGIT_BODY) as legit:
        with RawH2(port) as raw:
            raw.handshake()
            # RawH2 returns credit for what it reads; this client must not.
            raw.send = _no_window_updates(raw.send)
            raw.send(*[headers(raw, sid, [], f"/stream?chunks=1600&size=65536&sid={sid}")
                       for sid in range(1, 2 * streams, 2)])
            raw.wait(lambda: received(raw) >= 65535, 20,
                     "the first 64 KiB (the connection window)")
            until(lambda: upstream.stats()["requests_active"] == streams, 20,
                  what=f"{streams} responses under way at the upstream")
            served_before = legit.ok
            until(lambda: legit.ok - served_before >= 50, 30,
                  what="50 legitimate requests served while the attacker holds on")
            # The attacker got no more than its window, and every upstream response is still
            # being written: the proxy has not read the bodies into memory.
            raw.read(0.1)
            assert received(raw) <= 65535, received(raw)
            assert upstream.stats()["requests_active"] == streams
            assert raw.goaway is None and not raw.closed
            growth = sy.memory_kib("VmHWM") - before_kib
            assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB"
    assert legit.failures == [], f"legitimate requests failed: {legit.failures[:5]}"
    # Once the attacker has gone, the proxy lets go of the upstream too.
    until(lambda: upstream.stats()["requests_active"] == 0, 20,
          what="the upstream's responses to end once the attacker left")
