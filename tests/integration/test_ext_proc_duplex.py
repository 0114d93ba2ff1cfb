"""ext_proc FULL_DUPLEX_STREAMED (EP-17, EP-60's NONE -> FULL_DUPLEX override): the body goes
to the processor chunk by chunk as it arrives, the processor answers the headers when it likes
(after the whole body and the trailers, say) and streams back N body chunks for the M it got;
the next hop gets exactly the processor's chunks, with the headers' mutation and without
Content-Length. Built on continue_headers_take_body (ABI 1.2, test_take_body.py)."""
import hashlib
import json

import pytest

import harness
from extproc_peer import answer, kind, streamed_chunk
from h2util import H2Client
from harness import RawClient, chunked, cluster, echo_headers, raw_request
# The processor fixture and the helpers of the ext_proc tests.
from test_ext_proc import (BIG_COUNT, BIG_PIECE, EP_ID, RSS_BUDGET_KIB, call, ended,  # noqa: F401
                           ep_config, processor, stat, upload_big)

DUPLEX_BOTH = {"request_body_mode": "FULL_DUPLEX_STREAMED", "request_trailer_mode": "SEND",
               "response_body_mode": "FULL_DUPLEX_STREAMED", "response_trailer_mode": "SEND"}
DUPLEX_REQUEST = {"request_body_mode": "FULL_DUPLEX_STREAMED", "request_trailer_mode": "SEND"}
DUPLEX_RESPONSE = {"response_body_mode": "FULL_DUPLEX_STREAMED",
                   "response_trailer_mode": "SEND"}


def side_of(msg):
    return "request" if kind(msg).startswith("request") else "response"


def duplex_side(stream, side):
    """Whether SIDE's body is FULL_DUPLEX_STREAMED on this stream (the first message's
    protocol_config says so); the other side's headers are answered at once."""
    return getattr(stream.messages[0].protocol_config, f"{side}_body_mode") == 4


def split(data, n):
    """DATA in N pieces (some may be empty when DATA is short)."""
    step = max(1, -(-len(data) // n))
    pieces = [data[i * step:(i + 1) * step] for i in range(n)]
    return pieces


def buffer_all(stream, msg):
    """EP-17's processor: keeps quiet until it has the whole message (the body's
    end_of_stream, or the trailers), then answers the headers (x-fdx: <side>) and streams back
    the body upper-cased in 2*M+1 chunks for the M it got; trailers get x-fdx-trailer."""
    k, side = kind(msg), side_of(msg)
    st = stream.state.setdefault(side, {"body": b"", "m": 0})
    if k.endswith("_headers"):
        st["headers"] = msg
        if getattr(msg, k).end_of_stream or not duplex_side(stream, side):
            return [answer(msg, set_headers=[("x-fdx", side)])]
        return []
    head = answer(st["headers"], set_headers=[("x-fdx", side)])
    if k.endswith("_body"):
        st["body"] += getattr(msg, k).body
        st["m"] += 1
        if not getattr(msg, k).end_of_stream:
            return []
        pieces = split(st["body"].upper(), 2 * st["m"] + 1)
        return [head] + [streamed_chunk(side, p, i == len(pieces) - 1)
                         for i, p in enumerate(pieces)]
    st["trailers"] = msg
    pieces = split(st["body"].upper(), 2 * st["m"] + 1)
    return ([head] + [streamed_chunk(side, p) for p in pieces]
            + [answer(msg, set_headers=[("x-fdx-trailer", "1")])])


def echo_stream(stream, msg):
    """A streaming processor: answers the headers at the first body chunk and sends every chunk
    back at once, split in two (so a slow upstream or client back-pressures it)."""
    k, side = kind(msg), side_of(msg)
    st = stream.state.setdefault(side, {"n": 0, "answered": False})
    if k.endswith("_headers"):
        st["headers"] = msg
        if getattr(msg, k).end_of_stream or not duplex_side(stream, side):
            return [answer(msg)]
        return []
    out = []
    if not st["answered"]:
        st["answered"] = True
        out.append(answer(st["headers"]))
    if k.endswith("_trailers"):
        return out + [answer(msg)]
    b = getattr(msg, k)
    st["n"] += len(b.body)
    half = len(b.body) // 2
    out.append(streamed_chunk(side, b.body[:half]))
    out.append(streamed_chunk(side, b.body[half:], b.end_of_stream))
    return out


@pytest.fixture(autouse=True)
def scenarios(processor):
    processor.scenario("fdx")(buffer_all)
    processor.scenario("fdx-echo")(echo_stream)


PIECES = [b"first chunk ", b"second one ", b"and the last"]
_h2_ids = iter(range(1, 1 << 30))


def call_on(sy, protocol, scenario, method="POST", path="/echo", body=None):
    """call() over HTTP/1.1, or the same request over HTTP/2 (prior knowledge)."""
    if protocol == "http1":
        return call(sy, scenario, method, path, body=body)
    rid = f"h2-{next(_h2_ids)}"
    with H2Client(sy.port("ingress")) as c:
        sid = c.request(method, path, headers=[("x-ep", scenario), (EP_ID, rid)], body=body)
        return c.response(sid), rid


def post_chunked(sy, scenario, rid, pieces, trailers=(), path="/echo"):
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", path, [("x-ep", scenario), (EP_ID, rid),
                                          ("transfer-encoding", "chunked")],
                           chunked(pieces, trailers)))
        r = c.read_response()
        # The framing of the processor's body was right: the connection goes on.
        c.send(raw_request("GET", "/echo", [("x-ep", "")]))
        assert c.read_response().status == 200
        return r


def test_ep17_processor_buffers_the_body_then_streams_n_chunks(upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_REQUEST))
    r = post_chunked(sy, "fdx", "fdx-1", PIECES)
    assert r.status == 200, r
    echo = json.loads(r.body)
    want = b"".join(PIECES).upper()
    assert echo["body_sha256"] == harness.sha256(want), echo
    assert echo_headers(echo, "x-fdx") == ["request"]
    s = ended(processor, "fdx-1")
    assert s.messages[0].protocol_config.request_body_mode == 4  # FULL_DUPLEX_STREAMED
    bodies = [m.request_body for m in s.messages if kind(m) == "request_body"]
    assert b"".join(b.body for b in bodies) == b"".join(PIECES)
    assert bodies[-1].end_of_stream and not any(b.end_of_stream for b in bodies[:-1])


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_ep17_content_length_is_removed(upstream, processor, switchyard, protocol):
    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_REQUEST))
    body = b"x" * 10000
    r, rid = call_on(sy, protocol, "fdx", body=body)
    assert r.status == 200, r
    echo = r.json()
    assert echo["body_sha256"] == harness.sha256(body.upper())
    assert echo_headers(echo, "content-length") == [], echo["headers"]


def test_ep17_trailers_end_the_body_and_follow_the_processors_chunks(upstream, processor,
                                                                    switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_REQUEST))
    r = post_chunked(sy, "fdx", "fdx-tr", PIECES, trailers=[("x-t", "v")])
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo["body_sha256"] == harness.sha256(b"".join(PIECES).upper()), echo
    trailers = dict((n.lower(), v) for n, v in echo["trailers"])
    assert trailers.get("x-t") == "v" and trailers.get("x-fdx-trailer") == "1", trailers
    s = ended(processor, "fdx-tr")
    kinds = s.kinds()
    assert kinds.index("request_trailers") > max(
        i for i, k in enumerate(kinds) if k == "request_body"), kinds
    bodies = [m.request_body for m in s.messages if kind(m) == "request_body"]
    assert not any(b.end_of_stream for b in bodies)  # the trailers mark the end


def test_ep17_response_direction(upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_RESPONSE))
    r, rid = call(sy, "fdx", path="/stream?chunks=5&size=3000")
    assert r.status == 200, r
    assert r.body == b"".join(bytes([65 + i]) * 3000 for i in range(5))
    assert r.header("x-fdx") == "response"
    assert r.header("content-length") in (None, str(len(r.body)))


def test_ep17_response_trailers(upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_RESPONSE))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/trailers", [("x-ep", "fdx"), (EP_ID, "fdx-rtr")]))
        r = c.read_response()
    assert r.status == 200, r
    assert r.body == b"HELLO FROM TRAILERS\n"
    assert r.trailer("x-extra") == "yes" and r.trailer("x-fdx-trailer") == "1", r.trailers


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_ep17_both_directions(upstream, processor, switchyard, protocol):
    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_BOTH))
    body = b"both ways " * 3000
    r, rid = call_on(sy, protocol, "fdx", body=body)
    assert r.status == 200, r
    assert r.header("x-fdx") == "response"
    # The client gets the upstream's JSON upper-cased; in it, what the upstream got.
    text = r.body.decode()
    assert text == text.upper()
    echo = json.loads(text.lower())
    assert echo["body_sha256"] == harness.sha256(body.upper())
    assert ["x-fdx", "request"] in echo["headers"]


def test_ep17_large_bodies_many_requests(upstream, processor, switchyard):
    """Envoy's LargeBodyTestDuplexStreamed: 2 MiB up, 50 x 64 KiB back, many times."""
    @processor.scenario("fdx-large")
    def large(stream, msg):
        k = kind(msg)
        if k == "request_headers":
            stream.state["h"] = msg
            return []
        if k == "request_body":
            stream.state["n"] = stream.state.get("n", 0) + len(msg.request_body.body)
            if not msg.request_body.end_of_stream:
                return []
            piece = b"r" * 65536
            return [answer(stream.state["h"], set_headers=[("x-new-header", "new")])] + [
                streamed_chunk("request", piece, i == 49) for i in range(50)]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_REQUEST))
    body = b"s" * (2 << 20)
    want = hashlib.sha256(b"r" * (50 * 65536)).hexdigest()
    for i in range(12):
        r, rid = call(sy, "fdx-large", "POST", body=body, timeout=60)
        assert r.status == 200, r
        echo = r.json()
        assert echo["body_length"] == 50 * 65536 and echo["body_sha256"] == want, i
        assert echo_headers(echo, "x-new-header") == ["new"]
        assert ended(processor, rid).state["n"] == len(body)


@pytest.mark.measures_memory
def test_ep17_100mib_request_body_is_bounded(upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_REQUEST))
    before = sy.memory_kib("VmHWM")
    r = upload_big(sy, "fdx-echo", "fdx-big")
    assert r.status == 200, r
    h = hashlib.sha256()
    for _ in range(BIG_COUNT):
        h.update(BIG_PIECE)
    total = BIG_COUNT * len(BIG_PIECE)
    assert json.loads(r.body) == {"length": total, "sha256": h.hexdigest()}
    assert ended(processor, "fdx-big").state["request"]["n"] == total
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for a 100 MiB upload"


@pytest.mark.measures_memory
def test_ep17_100mib_response_body_is_bounded(upstream, nginx, processor, switchyard):
    cfg = ep_config(upstream.port, processor.port, processing_mode=DUPLEX_RESPONSE)
    cfg["clusters"][0] = cluster("backend", nginx.port)
    sy = switchyard(cfg)
    before = sy.memory_kib("VmHWM")
    r, rid = call(sy, "fdx-echo", path="/big", timeout=180)
    assert r.status == 200 and len(r.body) == 100 << 20
    assert r.body.count(0) == len(r.body)
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for a 100 MiB download"


def test_ep17_body_before_the_headers_answer_fails_with_500(upstream, processor, switchyard):
    @processor.scenario("fdx-ooo")
    def ooo(stream, msg):
        if kind(msg) == "request_body" and msg.request_body.end_of_stream:
            return [streamed_chunk("request", b"too early", True)]
        return []

    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_REQUEST))
    r, rid = call(sy, "fdx-ooo", "POST", body=b"abc")
    assert r.status == 500
    assert stat(sy, "spurious_msgs_received") == 1


def test_ep17_no_message_timeout(upstream, processor, switchyard):
    # A message timeout of 0 fires at once in every other mode; here it does not apply.
    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_BOTH,
                              message_timeout="0s"))
    r, rid = call(sy, "fdx", "POST", body=b"no hurry")
    assert r.status == 200, r
    assert stat(sy, "message_timeouts") == 0


def test_ep17_stream_idle_timeout_answers_504(upstream, processor, switchyard):
    @processor.scenario("fdx-silent")
    def silent(stream, msg):
        return []

    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=DUPLEX_REQUEST,
                              stream_idle_timeout="0.3s"))
    r, rid = call(sy, "fdx-silent", "POST", body=b"abc")
    assert r.status == 504


def test_ep60_override_from_none_to_full_duplex(upstream, processor, switchyard):
    @processor.scenario("fdx-override")
    def override(stream, msg):
        k = kind(msg)
        if k == "request_headers":
            r = answer(msg, set_headers=[("x-overridden", "1")])
            r.mode_override.request_body_mode = 4  # FULL_DUPLEX_STREAMED
            r.mode_override.request_trailer_mode = 1  # SEND
            return [r]
        if k == "request_body":
            st = stream.state
            st["body"] = st.get("body", b"") + msg.request_body.body
            if not msg.request_body.end_of_stream:
                return []
            return [streamed_chunk("request", p, i == 2)
                    for i, p in enumerate(split(st["body"][::-1], 3))]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port, allow_mode_override=True))
    r, rid = call(sy, "fdx-override", "POST", body=b"0123456789")
    assert r.status == 200, r
    echo = r.json()
    assert echo["body_sha256"] == harness.sha256(b"9876543210")
    assert echo_headers(echo, "x-overridden") == ["1"]
    # Without allow_mode_override the body passes unprocessed.
    sy2 = switchyard(ep_config(upstream.port, processor.port), name="no-override")
    r, rid = call(sy2, "fdx-override", "POST", body=b"0123456789")
    assert r.status == 200 and r.json()["body_sha256"] == harness.sha256(b"0123456789")


@pytest.mark.parametrize("config,message", [
    ({"processing_mode": {"request_body_mode": "FULL_DUPLEX_STREAMED"}},
     "If the ext_proc filter has the request_body_mode set to FULL_DUPLEX_STREAMED, then the "
     "request_trailer_mode has to be set to SEND"),
    ({"processing_mode": {"response_body_mode": "FULL_DUPLEX_STREAMED",
                          "response_trailer_mode": "SKIP"}},
     "then the response_trailer_mode has to be set to SEND"),
    ({"processing_mode": DUPLEX_REQUEST, "failure_mode_allow": True},
     "then the failure_mode_allow has to be left as false"),
    ({"processing_mode": {"request_body_mode": "GRPC"}}, "not supported"),
])
def test_full_duplex_config_rules_as_envoy(upstream, switchyard, config, message):
    cfg = ep_config(upstream.port, 1)
    cfg["listeners"][0]["filters"] = [{"module": "ext_proc", "config": {
        "grpc_service": {"envoy_grpc": {"cluster_name": "extproc"}}, **config}}]
    sy = switchyard(cfg, start=False)
    out = harness.run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode != 0 and message in text, text
    assert str(sy.config_path) + ":" in text  # file:line:col
