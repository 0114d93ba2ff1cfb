"""The ext_proc module (modules/ext_proc) against a scripted grpcio processor (extproc_peer.py):
the EP-* acceptance cases of shared/reference/ext_proc-ext_authz.md §6 that the module covers,
the seed's demo, failure modes, many concurrent streams and a hot swap under load."""
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

import extproc_peer
import harness
from extproc_peer import CLOSE, Processor, answer, header, headers_of, hvo, immediate, kind, pb
from harness import RawClient, chunked, cluster, echo_headers, raw_request, request, to_cluster, until
from modules_util import (MODULES, loaded_generations, module_entry, module_file, module_stat,
                          reload_module)

EP_ID = "x-ep-id"
# How much the proxy's peak resident memory may grow while a large body streams through, as in
# test_bodies.py: measured from the proxy's own peak once it is ready, so that the bound does
# not depend on how big the idle process is (13 MiB for the Release build, about 150 MiB under
# ASan, whose shadow memory and larger code count as resident).
RSS_BUDGET_KIB = 32 * 1024


@pytest.fixture(scope="module")
def processor():
    p = Processor()
    yield p
    p.stop()


def ep_filter(cluster_name="extproc", **config):
    cfg = {"@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
           "grpc_service": {"envoy_grpc": {"cluster_name": cluster_name}}}
    cfg.update(config)
    return {"module": "ext_proc", "config": cfg}


def ep_config(upstream_port, processor_port, routes=None, clusters=(), workers=None, limits=None,
              **config):
    """A listener `ingress` with the ext_proc filter (CONFIG) before UPSTREAM_PORT; LIMITS are
    the listener's `limits:`."""
    module_file("ext_proc")  # a clear failure when the module has not been built
    if harness.TIME_SCALE != 1:
        # The default message timeout (200 ms, Envoy's) is a budget the tests that do not set
        # their own need not to fire; on a slower build it is scaled (harness.budget). The
        # Release build keeps the module's default, unset.
        config.setdefault("message_timeout", harness.budget(0.2))
    listener = {"name": "ingress", "protocols": ["http1", "http2"],
                "filters": [ep_filter(**config)],
                "routes": routes or [to_cluster("all", {"prefix": "/"}, "backend")]}
    if limits:
        listener["limits"] = limits
    cfg = {
        "module_path": [str(MODULES)],
        "listeners": [listener],
        "clusters": [cluster("backend", upstream_port),
                     cluster("extproc", processor_port, protocol="http2"), *clusters],
    }
    if workers:
        cfg["workers"] = workers
    return cfg


_ids = iter(range(1, 1 << 30))


def call(sy, scenario="", method="GET", path="/echo", body=None, headers=None, **kw):
    """One request through the proxy with x-ep (the scenario) and a fresh x-ep-id; returns
    (response, id)."""
    rid = str(next(_ids))
    h = {"x-ep": scenario, EP_ID: rid, **(headers or {})}
    return request(sy.port("ingress"), method, path, body=body, headers=h, **kw), rid


def stream_of(processor, rid):
    until(lambda: len(processor.by_id(rid)) == 1, what=f"the side stream of request {rid}")
    return processor.by_id(rid)[0]


def ended(processor, rid):
    s = stream_of(processor, rid)
    until(s.ended.is_set, what="the side stream's end")
    return s


def stat(sy, name):
    return module_stat(sy.stats(), "ext_proc", name) or 0


# The large-body tests' upload: 100 MiB in 64 KiB chunks.
BIG_PIECE = bytes(range(256)) * 256
BIG_COUNT = (100 << 20) // len(BIG_PIECE)


def upload_big(sy, scenario, rid):
    """POST /upload of BIG_COUNT x BIG_PIECE, chunked, with x-ep SCENARIO and the id RID;
    returns the response."""
    with RawClient(sy.port("ingress"), timeout=180) as c:
        c.send(raw_request("POST", "/upload", [("x-ep", scenario), (EP_ID, rid),
                                               ("transfer-encoding", "chunked")]))
        frame = b"%x\r\n%s\r\n" % (len(BIG_PIECE), BIG_PIECE)
        for _ in range(BIG_COUNT):
            c.send(frame)
        c.send(b"0\r\n\r\n")
        return c.read_response()


# ---- EP-01 / EP-02 and the demo --------------------------------------------------------------


def test_demo_adds_hello_headers_both_ways(upstream, processor, switchyard):
    """The seed's Go demo: x-ext-proc-header hello-to-asm upstream, hello-from-asm downstream."""
    @processor.scenario("demo")
    def demo(stream, msg):
        if kind(msg) == "request_headers":
            return [answer(msg, set_headers=[("x-ext-proc-header", "hello-to-asm")])]
        if kind(msg) == "response_headers":
            return [answer(msg, set_headers=[("x-ext-proc-header", "hello-from-asm")])]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, rid = call(sy, "demo")
    assert r.status == 200
    assert echo_headers(r.json(), "x-ext-proc-header") == ["hello-to-asm"]
    assert r.header("x-ext-proc-header") == "hello-from-asm"


def test_ep01_get_sends_headers_with_pseudo_headers_raw_values_and_protocol_config_once(
        upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port))
    r, rid = call(sy, "", path="/echo?q=1")
    assert r.status == 200
    s = ended(processor, rid)
    assert s.kinds() == ["request_headers", "response_headers"]
    req = s.messages[0]
    names = [n for n, _ in headers_of(req)]
    for pseudo in (":method", ":path", ":scheme", ":authority"):
        assert pseudo in names
    assert header(req, ":method") == "GET" and header(req, ":path") == "/echo?q=1"
    assert all(n == n.lower() for n in names)
    assert all(not h.value for h in req.request_headers.headers.headers)
    assert header(req, ":method") and req.request_headers.headers.headers[0].raw_value
    assert req.request_headers.end_of_stream
    assert req.HasField("protocol_config")
    assert not s.messages[1].HasField("protocol_config")
    assert header(s.messages[1], ":status") == "200"


def test_ep02_post_default_modes_sends_no_body(upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port))
    r, rid = call(sy, "", "POST", body=b"x" * 5000)
    assert r.status == 200 and r.json()["body_length"] == 5000
    s = ended(processor, rid)
    assert s.kinds() == ["request_headers", "response_headers"]
    assert not s.messages[0].request_headers.end_of_stream


# ---- header mutations ----------------------------------------------------------------------


def test_ep03_request_header_set_append_remove(upstream, processor, switchyard):
    @processor.scenario("mut")
    def mut(stream, msg):
        if kind(msg) == "request_headers":
            return [answer(msg, set_headers=[hvo("x-set", "new"), hvo("x-add", "two", append=True),
                                             hvo(":path", "/echo?rewritten=1")],
                           remove=["x-gone"])]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, _ = call(sy, "mut", headers={"x-set": "old", "x-add": "one", "x-gone": "bye"})
    echo = r.json()
    assert echo_headers(echo, "x-set") == ["new"]
    assert echo_headers(echo, "x-add") == ["one", "two"]
    assert echo_headers(echo, "x-gone") == []
    assert echo["path"] == "/echo?rewritten=1"


def test_ep04_response_status_mutation(upstream, processor, switchyard):
    @processor.scenario("status")
    def status(stream, msg):
        if kind(msg) == "response_headers":
            code = stream.first_header("x-code")
            return [answer(msg, set_headers=[(":status", code),
                                             hvo(":status", "299", append=True)])]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, _ = call(sy, "status", headers={"x-code": "201"})
    assert r.status == 201  # the second :status is ignored
    r, _ = call(sy, "status", headers={"x-code": "100"})
    assert r.status == 299  # a 1xx is ignored, so the appended one is the first valid


def test_ep05_non_utf8_values_round_trip_in_raw_value(upstream, processor, switchyard):
    @processor.scenario("raw")
    def raw(stream, msg):
        if kind(msg) == "request_headers":
            v = dict(headers_of(msg))[b"x-in".decode()]
            return [answer(msg, set_headers=[("x-out", v + b"\xfe")])]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/echo", [("x-ep", "raw"), ("x-in", "caf\xe9")]))
        resp = c.read_response()
    assert resp.status == 200
    echo = json.loads(resp.body)
    assert [v.encode("latin-1") if isinstance(v, str) else v
            for v in echo_headers(echo, "x-out")] in ([b"caf\xe9\xfe"], [b"caf\xc3\xa9\xc3\xbe"])


def test_ep06_value_only_applies_and_both_set_fails(upstream, processor, switchyard):
    @processor.scenario("value")
    def value(stream, msg):
        if kind(msg) != "request_headers":
            return [answer(msg)]
        h = hvo("x-v", "plain", raw=False)
        if stream.first_header("x-both"):
            h.header.raw_value = b"raw"
        return [answer(msg, set_headers=[h])]

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, _ = call(sy, "value")
    assert echo_headers(r.json(), "x-v") == ["plain"]
    r, _ = call(sy, "value", headers={"x-both": "1"})
    assert r.status == 500


def test_ep07_append_action_when_append_absent(upstream, processor, switchyard):
    O = pb.HeaderMutation().set_headers.add().__class__
    @processor.scenario("action")
    def action(stream, msg):
        if kind(msg) != "request_headers":
            return [answer(msg)]
        return [answer(msg, set_headers=[
            hvo("x-present", "no", action=O.ADD_IF_ABSENT),
            hvo("x-absent", "added", action=O.ADD_IF_ABSENT),
            hvo("x-ow", "over", action=O.OVERWRITE_IF_EXISTS),
            hvo("x-ow-missing", "never", action=O.OVERWRITE_IF_EXISTS),
            hvo("x-wins", "append", append=True, action=O.OVERWRITE_IF_EXISTS),
        ])]

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, _ = call(sy, "action", headers={"x-present": "yes", "x-ow": "old", "x-wins": "first"})
    echo = r.json()
    assert echo_headers(echo, "x-present") == ["yes"]
    assert echo_headers(echo, "x-absent") == ["added"]
    assert echo_headers(echo, "x-ow") == ["over"]
    assert echo_headers(echo, "x-ow-missing") == []
    assert echo_headers(echo, "x-wins") == ["first", "append"]


def test_ep40_default_rules_ignore_routing_and_envoy_headers(upstream, processor, switchyard):
    @processor.scenario("rules")
    def rules(stream, msg):
        if kind(msg) != "request_headers":
            return [answer(msg)]
        return [answer(msg, set_headers=[(":authority", "evil"), (":method", "PUT"),
                                         ("x-envoy-foo", "1"), ("x-ok", "1")],
                       remove=["host", ":path"])]

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, _ = call(sy, "rules")
    echo = r.json()
    assert r.status == 200 and echo["method"] == "GET" and echo["path"] == "/echo"
    assert echo_headers(echo, "x-ok") == ["1"] and echo_headers(echo, "x-envoy-foo") == []
    assert echo_headers(echo, "host") != ["evil"]
    assert stat(sy, "rejected_header_mutations") == 5


def test_ep42_disallow_is_error_and_allow_envoy(upstream, processor, switchyard):
    @processor.scenario("envoyhdr")
    def envoyhdr(stream, msg):
        if kind(msg) != "request_headers":
            return [answer(msg)]
        return [answer(msg, set_headers=[("x-envoy-foo", "1")])]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              mutation_rules={"disallow_is_error": True}))
    r, _ = call(sy, "envoyhdr")
    assert r.status == 500
    sy2 = switchyard(ep_config(upstream.port, processor.port,
                               mutation_rules={"allow_envoy": True, "disallow_is_error": True}),
                     name="allow")
    r, _ = call(sy2, "envoyhdr")
    assert r.status == 200 and echo_headers(r.json(), "x-envoy-foo") == ["1"]


# EP-43: the listener's limits.headers / limits.header_bytes bound what a mutation may make.
# The count cases add 20 headers: no more than the limit (Envoy's pre-check of the mutation's
# lists passes), but the block already has some, so the result is over it.
EP43_LIMITS = {"headers": 20, "header_bytes": "4KiB"}


@pytest.fixture
def over_limits(processor):
    """Scenario "over": the message named by the request's x-at header gets a mutation that adds
    x-many-N headers (as many as x-count says) or one x-big header of x-big bytes."""
    @processor.scenario("over")
    def over(stream, msg):
        if kind(msg) != stream.first_header("x-at"):
            return [answer(msg)]
        count = int(stream.first_header("x-count") or 0)
        big = int(stream.first_header("x-big") or 0)
        sets = [(f"x-many-{i}", "v") for i in range(count)]
        if big:
            sets.append(("x-big", "b" * big))
        return [answer(msg, set_headers=sets)]
    return processor


@pytest.fixture
def many_entries(processor):
    """Scenario "many": extproc_peer.many_entries (long but harmless mutation lists)."""
    processor.scenario("many")(extproc_peer.many_entries)
    return processor


@pytest.mark.parametrize("at", ["request_headers", "response_headers"])
def test_ep43_a_mutation_with_more_entries_than_the_header_limit_is_refused_first(
        upstream, many_entries, switchyard, at):
    """Envoy's pre-check: more set_headers, or more remove_headers, than the header count
    limit (each list on its own, limits.headers here) fails the mutation before anything
    applies, although its result would be within the limits; one rejected mutation each. At
    the limit it applies."""
    sy = switchyard(ep_config(upstream.port, many_entries.port, limits=EP43_LIMITS))
    for extra in ({"x-same": "20"}, {"x-remove": "20"}, {"x-same": "20", "x-remove": "20"}):
        r, _ = call(sy, "many", headers={"x-at": at, **extra})
        assert r.status == 200, (extra, r)
        if "x-same" in extra:
            got = (echo_headers(r.json(), "x-same") if at == "request_headers"
                   else [r.header("x-same")])
            assert got == ["19"], got
    assert stat(sy, "rejected_header_mutations") == 0
    before = upstream.stats()["requests_total"]
    for case, extra in (("set", {"x-same": "21"}), ("remove", {"x-remove": "21"})):
        r, _ = call(sy, "many", path=f"/echo?many={case}", headers={"x-at": at, **extra})
        assert r.status == 500, (case, r)
        assert r.header("x-same") is None
        e = sy.wait_access_entry(lambda e: e.get("path") == f"/echo?many={case}")
        want = "set_headers=21,remove_headers=0" if case == "set" else \
            "set_headers=0,remove_headers=21"
        assert e["details"] == ("ext_proc_error_header_mutation_count_over_limit:"
                                f"{want},limit=20"), e
    # A request refused on its headers never reached the upstream; a response is refused after.
    expected = before if at == "request_headers" else before + 2
    assert upstream.stats()["requests_total"] == expected
    assert stat(sy, "rejected_header_mutations") == 2


def test_ep43_request_header_mutation_over_the_limits_answers_500(upstream, over_limits,
                                                                     switchyard):
    sy = switchyard(ep_config(upstream.port, over_limits.port, limits=EP43_LIMITS))
    # Within the limits the mutation applies.
    r, _ = call(sy, "over", headers={"x-at": "request_headers", "x-count": "5", "x-big": "1000"})
    assert r.status == 200 and len(echo_headers(r.json(), "x-big")[0]) == 1000
    assert echo_headers(r.json(), "x-many-4") == ["v"]
    before = upstream.stats()["requests_total"]
    for case, extra in (("count", {"x-count": "20"}), ("bytes", {"x-big": "5000"})):
        r, _ = call(sy, "over", path=f"/echo?over={case}",
                    headers={"x-at": "request_headers", **extra})
        assert r.status == 500, (case, r)
        e = sy.wait_access_entry(lambda e: e.get("path") == f"/echo?over={case}")
        want = "x-many-" if case == "count" else "x-big"
        assert e["details"].startswith("ext_proc_error_header_mutation_over_limits:" + want), e
    assert upstream.stats()["requests_total"] == before  # the upstream never saw them
    assert stat(sy, "rejected_header_mutations") == 2
    # Under failure_mode_allow too: a mutation the proxy cannot apply is not a processor failure.
    sy2 = switchyard(ep_config(upstream.port, over_limits.port, limits=EP43_LIMITS,
                               failure_mode_allow=True), name="fma")
    r, _ = call(sy2, "over", headers={"x-at": "request_headers", "x-count": "20"})
    assert r.status == 500


def test_ep43_response_header_mutation_over_the_limits_answers_500(upstream, over_limits,
                                                                      switchyard):
    """The response headers are still held (nothing has gone to the client): a 500 instead."""
    sy = switchyard(ep_config(upstream.port, over_limits.port, limits=EP43_LIMITS))
    r, _ = call(sy, "over", headers={"x-at": "response_headers", "x-count": "5"})
    assert r.status == 200 and r.header("x-many-4") == "v"
    r, _ = call(sy, "over", headers={"x-at": "response_headers", "x-count": "20"})
    assert r.status == 500 and r.header("x-many-0") is None
    r, _ = call(sy, "over", headers={"x-at": "response_headers", "x-big": "5000"})
    assert r.status == 500 and r.header("x-big") is None


def test_ep43_trailer_mutation_over_the_limits(upstream, over_limits, switchyard):
    """Request trailers: 500 (Envoy's HeaderMutationResultSizeFailWithRequestTrailer). Response
    trailers after the response started (its headers skip the processor): the stream is reset
    (...WithResponseTrailer)."""
    sy = switchyard(ep_config(upstream.port, over_limits.port, limits=EP43_LIMITS,
                              processing_mode={"request_trailer_mode": "SEND",
                                               "response_header_mode": "SKIP",
                                               "response_trailer_mode": "SEND"}))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", "/echo", [("x-ep", "over"), ("x-at", "request_trailers"),
                                             ("x-count", "20"), ("transfer-encoding", "chunked")],
                           chunked([b"abc"], [("x-t1", "one")])))
        assert c.read_response().status == 500
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/trailers", [("x-ep", "over"), ("x-at", "response_trailers"),
                                                ("x-count", "20"), ("te", "trailers")]))
        with pytest.raises(harness.ConnectionClosed):
            while True:
                c._fill()
        data = c.buf
    # Closed mid-response: the head (if it had left the proxy's write batch) and maybe part of
    # the body, never the chunked body's end.
    assert data == b"" or data.startswith(b"HTTP/1.1 200"), data[:200]
    assert not data.endswith(b"0\r\n\r\n") and b"x-checksum" not in data, data[-80:]
    e = sy.wait_access_entry(lambda e: e.get("path") == "/trailers")
    assert e["response_flags"] == "FR", e
    assert e["details"].startswith("ext_proc_error_header_mutation_over_limits:x-many-"), e
    assert stat(sy, "rejected_header_mutations") == 2
    assert sy.running() and request(sy.port("ingress"), "GET", "/echo").status == 200


# ---- immediate responses ---------------------------------------------------------------------


def test_ep30_immediate_response_on_request_headers(upstream, processor, switchyard):
    @processor.scenario("deny")
    def deny(stream, msg):
        return [immediate(401, headers=[("x-why", "nope"), ("x-envoy-foo", "x"), (":foo", "y")],
                          body=b"denied\n", details="Got a bad request")]

    sy = switchyard(ep_config(upstream.port, processor.port))
    before = upstream.stats()["requests_total"]
    r, _ = call(sy, "deny")
    assert (r.status, r.body, r.header("x-why")) == (401, b"denied\n", "nope")
    assert r.header("x-envoy-foo") is None and r.header(":foo") is None  # EP-33
    assert upstream.stats()["requests_total"] == before


def test_ep31_immediate_response_on_response_headers_and_body(upstream, processor, switchyard):
    @processor.scenario("late-deny")
    def late(stream, msg):
        if kind(msg) in ("response_headers", "response_body") and \
                kind(msg) == stream.first_header("x-at"):
            return [immediate(403, body=b"late\n")]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"response_body_mode": "BUFFERED"}))
    for at in ("response_headers", "response_body"):
        r, _ = call(sy, "late-deny", headers={"x-at": at})
        assert (r.status, r.body) == (403, b"late\n"), at


def test_ep32_immediate_default_status_and_grpc_status(upstream, processor, switchyard):
    @processor.scenario("imm-default")
    def imm(stream, msg):
        return [immediate(None if stream.first_header("x-none") else 100, grpc_status=7)]

    sy = switchyard(ep_config(upstream.port, processor.port))
    for extra in ({"x-none": "1"}, {}):
        r, _ = call(sy, "imm-default", headers=extra)
        assert r.status == 200 and r.header("grpc-status") == "7"


def test_ep34_disable_immediate_response_continues(upstream, processor, switchyard):
    @processor.scenario("deny2")
    def deny2(stream, msg):
        return [immediate(401)]

    sy = switchyard(ep_config(upstream.port, processor.port, disable_immediate_response=True))
    r, _ = call(sy, "deny2")
    assert r.status == 200 and r.json()["path"] == "/echo"
    assert stat(sy, "spurious_msgs_received") == 1


def test_streamed_immediate_response_is_refused_closed(upstream, processor, switchyard):
    """streamed_immediate_response (ProcessingResponse field 11) is not supported: the stream
    fails with status_on_error and a details string that says so, also under
    failure_mode_allow (a processor meaning to answer must not let the request through)."""
    @processor.scenario("sir")
    def sir(stream, msg):
        r = pb.ProcessingResponse()
        h = r.streamed_immediate_response.headers_response.headers.headers.add()
        h.key, h.raw_value = ":status", b"403"
        r.streamed_immediate_response.headers_response.end_of_stream = True
        return [r]

    sy = switchyard(ep_config(upstream.port, processor.port, failure_mode_allow=True),
                    start=False)
    sy.start(extra_args=["--log-level", "info"])
    before = upstream.stats()["requests_total"]
    r, _ = call(sy, "sir", path="/echo?sir=1")
    assert r.status == 500
    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?sir=1")
    assert e["details"] == "ext_proc_error_streamed_immediate_response_not_supported", e
    assert upstream.stats()["requests_total"] == before
    assert stat(sy, "failure_mode_allowed") == 0
    until(lambda: "streamed_immediate_response is not supported" in
          sy.log_path.read_text(errors="replace"), what="the log line")


# ---- bodies ----------------------------------------------------------------------------------


def test_ep10_buffered_request_body_replaced_with_header_mutation(upstream, processor, switchyard):
    @processor.scenario("buf")
    def buf(stream, msg):
        if kind(msg) == "request_body":
            stream.state["body"] = msg.request_body.body
            stream.state["eos"] = msg.request_body.end_of_stream
            return [answer(msg, body=b"REPLACED:" + msg.request_body.body[:10],
                           set_headers=[("x-from-body", "yes")])]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"request_body_mode": "BUFFERED"}))
    body = bytes(range(256)) * 100
    r, rid = call(sy, "buf", "POST", body=body)
    echo = r.json()
    expected = b"REPLACED:" + body[:10]
    assert echo["body_length"] == len(expected) and echo["body_sha256"] == harness.sha256(expected)
    # A deliberate difference from Envoy: Content-Length follows the new body (Envoy: 500).
    assert echo_headers(echo, "content-length") == [str(len(expected))]
    assert echo_headers(echo, "x-from-body") == ["yes"]
    s = ended(processor, rid)
    assert s.kinds() == ["request_headers", "request_body", "response_headers"]
    assert s.state["body"] == body and s.state["eos"]


def test_ep10_buffered_response_body_clear_and_replace(upstream, processor, switchyard):
    @processor.scenario("resp-buf")
    def resp_buf(stream, msg):
        if kind(msg) == "response_body":
            if stream.first_header("x-clear"):
                return [answer(msg, clear_body=True)]
            return [answer(msg, body=msg.response_body.body.upper())]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"response_body_mode": "BUFFERED"}))
    r, _ = call(sy, "resp-buf", path="/status?code=200")
    assert r.status == 200 and r.body == b"STATUS 200\n"
    r, _ = call(sy, "resp-buf", path="/status?code=200", headers={"x-clear": "1"})
    assert r.status == 200 and r.body == b""


def test_ep13_buffered_partial_sends_a_prefix_and_passes_the_rest(upstream, processor, switchyard):
    @processor.scenario("partial")
    def partial(stream, msg):
        if kind(msg) == "request_body":
            stream.state["got"] = (len(msg.request_body.body), msg.request_body.end_of_stream)
            return [answer(msg, body=b"P" * 10)]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port, partial_buffer_bytes=1000,
                              processing_mode={"request_body_mode": "BUFFERED_PARTIAL"}))
    body = b"a" * 50_000
    r, rid = call(sy, "partial", "POST", body=body)
    echo = r.json()
    s = ended(processor, rid)
    n, eos = s.state["got"]
    assert n >= 1000 and not eos
    assert echo["body_length"] == 10 + len(body) - n
    small, rid = call(sy, "partial", "POST", body=b"b" * 100)
    assert small.json()["body_length"] == 10
    assert ended(processor, rid).state["got"] == (100, True)


@pytest.mark.parametrize("direction", ["request", "response"])
def test_ep12_buffered_body_over_the_buffer_limit(upstream, processor, switchyard, direction):
    """A BUFFERED body larger than limits.buffered_body: 413 for a request, 500 for a
    response, and no body message reaches the processor."""
    cfg = ep_config(upstream.port, processor.port,
                    processing_mode={f"{direction}_body_mode": "BUFFERED"})
    cfg["listeners"][0]["limits"] = {"buffered_body": "64KiB"}
    sy = switchyard(cfg)
    if direction == "request":
        r, rid = call(sy, "", "POST", body=b"x" * (100 << 10))
        assert r.status == 413
    else:
        r, rid = call(sy, "", path="/stream?chunks=10&size=16384&ms=0")
        assert r.status == 500
    assert f"{direction}_body" not in ended(processor, rid).kinds()
    # A body within the limit goes through.
    r, _ = call(sy, "", "POST", body=b"y" * 1000)
    assert r.status == 200 and r.json()["body_length"] == 1000


def test_ep16_get_sends_no_body_message_in_buffered_mode(upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"request_body_mode": "BUFFERED",
                                               "response_body_mode": "BUFFERED"}))
    r, rid = call(sy, "", path="/status?code=204")
    assert r.status == 204
    assert ended(processor, rid).kinds() == ["request_headers", "response_headers"]


def test_ep11_buffered_with_headers_skipped(upstream, processor, switchyard):
    @processor.scenario("skiphdr")
    def skiphdr(stream, msg):
        if kind(msg) == "request_body":
            return [answer(msg, body=msg.request_body.body + b"!")]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"request_header_mode": "SKIP",
                                               "response_header_mode": "SKIP",
                                               "request_body_mode": "BUFFERED"}))
    # x-ep is not sent (headers are skipped): the default scenario answers CONTINUE.
    r = request(sy.port("ingress"), "POST", "/echo", body=b"hello")
    assert r.json()["body_length"] == 5  # default: CONTINUE, body unchanged
    assert r.status == 200


# ---- trailers --------------------------------------------------------------------------------


def test_ep20_response_trailers_sent_and_mutated(upstream, processor, switchyard):
    @processor.scenario("trl")
    def trl(stream, msg):
        if kind(msg) == "response_trailers":
            return [answer(msg, set_headers=[("x-added", "yes")])]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"response_trailer_mode": "SEND"}))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/trailers", [("x-ep", "trl"), ("te", "trailers"),
                                                (EP_ID, "trl-1")]))
        resp = c.read_response()
    assert resp.status == 200
    s = ended(processor, "trl-1")
    assert resp.trailer("x-checksum"), (resp.trailers, s.kinds())
    assert resp.trailer("x-added") == "yes", (resp.trailers, s.kinds())
    s = ended(processor, "trl-1")
    assert s.kinds()[-1] == "response_trailers"
    # Trailer mode SEND without trailers: no trailers message, the request completes.
    r, rid = call(sy, "trl")
    assert r.status == 200 and "response_trailers" not in ended(processor, rid).kinds()


def test_ep21_request_trailers_with_buffered_body(upstream, processor, switchyard):
    @processor.scenario("reqtrl")
    def reqtrl(stream, msg):
        if kind(msg) == "request_body":
            stream.state["eos"] = msg.request_body.end_of_stream
        if kind(msg) == "request_trailers":
            return [answer(msg, set_headers=[("x-t2", "added")])]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"request_body_mode": "BUFFERED",
                                               "request_trailer_mode": "SEND"}))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", "/echo", [("x-ep", "reqtrl"), (EP_ID, "rt-1"),
                                             ("transfer-encoding", "chunked")],
                           chunked([b"abc", b"def"], [("x-t1", "one")])))
        resp = c.read_response()
    assert resp.status == 200
    echo = json.loads(resp.body)
    assert echo["body_length"] == 6
    assert dict(echo["trailers"]).get("x-t2") == "added"
    s = ended(processor, "rt-1")
    assert s.kinds()[:3] == ["request_headers", "request_body", "request_trailers"]
    assert s.state["eos"] is False


# ---- errors and timeouts ---------------------------------------------------------------------


def test_ep50_processor_aborts(upstream, processor, switchyard):
    import grpc

    @processor.scenario("abort")
    def abort(stream, msg):
        stream.context.abort(grpc.StatusCode.INTERNAL, "boom")

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, _ = call(sy, "abort")
    assert r.status == 500
    assert stat(sy, "streams_failed") == 1
    sy2 = switchyard(ep_config(upstream.port, processor.port, failure_mode_allow=True),
                     name="fma")
    r, _ = call(sy2, "abort")
    assert r.status == 200
    assert stat(sy2, "failure_mode_allowed") == 1


def test_ep51_processor_closes_ok_after_request_headers(upstream, processor, switchyard):
    @processor.scenario("close")
    def close(stream, msg):
        if kind(msg) == "request_headers":
            stream.state["n"] = 1
            return [answer(msg, set_headers=[("x-seen", "1")])] + []
        return CLOSE

    @processor.scenario("close-now")
    def close_now(stream, msg):
        return CLOSE

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, rid = call(sy, "close-now")
    assert r.status == 200
    assert stat(sy, "streams_closed") >= 1


def test_side_stream_closed_while_the_upstream_works(upstream, processor, switchyard):
    """With every response phase SKIP nothing of the response goes to the processor, so the side
    stream is closed as soon as the request headers are answered, while the upstream still
    works, and not when the response ends (on the response's path). It is closed as Envoy
    closes it once processing is complete, with a cancel: the processor's call terminates
    while its handler still runs, which a half-close never does (the call then waits for the
    handler's status). grpcio may or may not run the request iterator out on the reset, so
    the test looks at the call's termination, not at the iterator."""
    import threading

    @processor.scenario("early-close")
    def early_close(stream, msg):
        def half_closed():
            stream.state["half_closed"] = not stream.terminated.wait(5)
        stream.state["after_end"] = half_closed
        return [answer(msg, set_headers=[("x-seen", "1")])]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"response_header_mode": "SKIP"}))
    got = {}
    rid = "early-close-1"
    t = threading.Thread(target=lambda: got.update(r=call(
        sy, "early-close", path="/slow?hold=early-close", headers={EP_ID: rid})[0]))
    t.start()
    try:
        s = stream_of(processor, rid)
        until(s.ended.is_set, what="the side stream's end while the upstream holds the response")
        assert not s.state.get("half_closed"), "the side stream was half-closed, not cancelled"
        assert s.kinds() == ["request_headers"]
        until(lambda: stat(sy, "streams_closed") == 1, what="the side stream counted closed")
    finally:
        upstream.release("early-close")
        t.join(30)
    r = got["r"]
    assert r.status == 200 and r.body == b"slow\n"
    assert stat(sy, "streams_failed") == 0 and stat(sy, "failure_mode_allowed") == 0


def test_ep52_processor_unreachable(upstream, switchyard, free_port):
    dead = free_port()
    sy = switchyard(ep_config(upstream.port, dead))
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 500
    sy2 = switchyard(ep_config(upstream.port, dead, failure_mode_allow=True), name="fma")
    r = request(sy2.port("ingress"), "GET", "/echo")
    assert r.status == 200
    assert stat(sy2, "failure_mode_allowed") == 1


def test_ep53_message_timeout(upstream, processor, switchyard):
    @processor.scenario("silent")
    def silent(stream, msg):
        return []

    sy = switchyard(ep_config(upstream.port, processor.port, message_timeout="0.05s"))
    r, rid = call(sy, "silent")
    assert r.status == 504
    assert stat(sy, "message_timeouts") == 1
    until(stream_of(processor, rid).ended.is_set, what="the side stream cancelled")
    sy2 = switchyard(ep_config(upstream.port, processor.port, message_timeout="0.05s",
                               failure_mode_allow=True), name="fma")
    r, _ = call(sy2, "silent")
    assert r.status == 200


def test_each_message_waits_its_own_message_timeout(upstream, processor, switchyard):
    """One timer serves a direction's messages in turn, yet each message waits for its answer
    for the whole message_timeout from when it went out: a headers answer and a BUFFERED body
    answer that each come in time pass, though together they take longer than the timeout; a
    body answer that never comes times out."""
    import time

    @processor.scenario("each-in-time")
    def each_in_time(stream, msg):
        time.sleep(1.2 * harness.TIME_SCALE)  # a slow processor: 60% of the timeout per answer
        return [answer(msg)]

    @processor.scenario("body-silent")
    def body_silent(stream, msg):
        return [answer(msg)] if kind(msg) == "request_headers" else []

    sy = switchyard(ep_config(upstream.port, processor.port, message_timeout=harness.budget(2),
                              processing_mode={"request_body_mode": "BUFFERED",
                                               "response_header_mode": "SKIP"}))
    r, rid = call(sy, "each-in-time", "POST", body=b"abc")
    assert r.status == 200
    assert stream_of(processor, rid).kinds() == ["request_headers", "request_body"]
    r, _ = call(sy, "body-silent", "POST", body=b"abc")
    assert r.status == 504
    assert stat(sy, "message_timeouts") == 1


def test_ep54_override_message_timeout(upstream, processor, switchyard):
    @processor.scenario("override")
    def override(stream, msg):
        if kind(msg) == "request_headers":
            o = pb.ProcessingResponse()
            o.override_message_timeout.FromMilliseconds(int(stream.first_header("x-ms")))
            stream.state["msg"] = msg
            out = [o]
            if stream.first_header("x-twice"):
                o2 = pb.ProcessingResponse()
                o2.override_message_timeout.FromMilliseconds(20_000)
                out.append(o2)
            return out + ([answer(msg)] if stream.first_header("x-answer") else [])
        return [answer(msg)]

    # The base timeout is a budget the first message (its side stream's connect included) must
    # not overrun before the override comes; only the over-the-max case waits it out.
    sy = switchyard(ep_config(upstream.port, processor.port, message_timeout=harness.budget(0.2),
                              max_message_timeout="30s"))
    r, _ = call(sy, "override", headers={"x-ms": "20000", "x-answer": "1"})
    assert r.status == 200
    assert stat(sy, "override_message_timeout_received") == 1
    r, _ = call(sy, "override", headers={"x-ms": "60000"})  # over the max: ignored -> 504
    assert r.status == 504
    assert stat(sy, "override_message_timeout_ignored") == 1
    r, _ = call(sy, "override", headers={"x-ms": "100", "x-twice": "1"})  # second ignored
    assert r.status == 504
    assert stat(sy, "override_message_timeout_ignored") == 2


def test_ep55_wrong_type_answer_fails_closed(upstream, processor, switchyard):
    @processor.scenario("wrong")
    def wrong(stream, msg):
        if kind(msg) == "request_headers":
            r = pb.ProcessingResponse()
            r.request_body.response.SetInParent()
            return [r]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, _ = call(sy, "wrong")
    assert r.status == 500
    assert stat(sy, "spurious_msgs_received") == 1
    sy2 = switchyard(ep_config(upstream.port, processor.port, failure_mode_allow=True),
                     name="fma")
    r, _ = call(sy2, "wrong")
    assert r.status == 200


# ---- modes, attributes, routing ---------------------------------------------------------------


def test_ep60_mode_override_needs_allow_and_the_allow_list(upstream, processor, switchyard):
    @processor.scenario("override-mode")
    def om(stream, msg):
        if kind(msg) == "request_headers":
            r = answer(msg)
            r.mode_override.response_header_mode = 2  # SKIP
            return [r]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port))
    r, rid = call(sy, "override-mode")
    assert "response_headers" in ended(processor, rid).kinds()
    sy2 = switchyard(ep_config(upstream.port, processor.port, allow_mode_override=True),
                     name="allow")
    r, rid = call(sy2, "override-mode")
    assert r.status == 200 and ended(processor, rid).kinds() == ["request_headers"]
    sy3 = switchyard(ep_config(upstream.port, processor.port, allow_mode_override=True,
                               allowed_override_modes=[{"response_header_mode": "SEND"}]),
                     name="listed")
    r, rid = call(sy3, "override-mode")
    assert "response_headers" in ended(processor, rid).kinds()


def test_ep62_request_and_response_attributes(upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port,
                              request_attributes=["request.path", "request.method",
                                                  "response.code"],
                              response_attributes=["response.code"]))
    r, rid = call(sy, "", path="/echo?a=b")
    s = ended(processor, rid)
    req_attrs = s.messages[0].attributes["envoy.filters.http.ext_proc"].fields
    assert req_attrs["request.path"].string_value == "/echo?a=b"
    assert req_attrs["request.method"].string_value == "GET"
    assert "response.code" not in req_attrs
    resp_attrs = s.messages[1].attributes["envoy.filters.http.ext_proc"].fields
    assert resp_attrs["response.code"].number_value == 200


def test_ep64_forward_rules(upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port, forward_rules={
        "allowed_headers": {"patterns": [{"prefix": "x-"}, {"exact": ":path"}]},
        "disallowed_headers": {"patterns": [{"exact": "x-secret"}]}}))
    r, rid = call(sy, "", headers={"x-secret": "s", "x-open": "o", "other": "1"})
    names = [n for n, _ in headers_of(stream_of(processor, rid).messages[0])]
    assert "x-open" in names and ":path" in names
    assert "x-secret" not in names and "other" not in names


def test_ep65_clear_route_cache_reroutes(upstream, make_upstream, processor, switchyard):
    other = make_upstream("other")

    @processor.scenario("reroute")
    def reroute(stream, msg):
        if kind(msg) == "request_headers":
            return [answer(msg, set_headers=[("x-route", "b")],
                           clear_route_cache=bool(stream.first_header("x-clear")))]
        return [answer(msg)]

    routes = [to_cluster("b", {"prefix": "/", "headers": [{"name": "x-route", "exact": "b"}]},
                         "other"),
              to_cluster("all", {"prefix": "/"}, "backend")]
    sy = switchyard(ep_config(upstream.port, processor.port, routes=routes,
                              clusters=[cluster("other", other.port)]))
    r, _ = call(sy, "reroute", headers={"x-clear": "1"})
    assert r.json()["server"] == "other"
    r, _ = call(sy, "reroute")
    assert r.json()["server"] == "upstream"
    assert stat(sy, "clear_route_cache_ignored") == 0


def test_ep66_per_route_disabled_and_mode_override(upstream, processor, switchyard):
    routes = [
        to_cluster("off", {"prefix": "/echo", "headers": [{"name": "x-r", "exact": "off"}]},
                   "backend", per_filter={"ext_proc": {"disabled": True}}),
        to_cluster("skip", {"prefix": "/echo", "headers": [{"name": "x-r", "exact": "skip"}]},
                   "backend", per_filter={"ext_proc": {"overrides": {"processing_mode": {
                       "response_header_mode": "SKIP"}}}}),
        to_cluster("all", {"prefix": "/"}, "backend"),
    ]
    sy = switchyard(ep_config(upstream.port, processor.port, routes=routes))
    r, rid = call(sy, "", headers={"x-r": "off"})
    assert r.status == 200 and processor.by_id(rid) == []
    r, rid = call(sy, "", headers={"x-r": "skip"})
    assert ended(processor, rid).kinds() == ["request_headers"]


def test_ep67_counters_for_the_simplest_post(upstream, processor, switchyard):
    sy = switchyard(ep_config(upstream.port, processor.port))
    r, rid = call(sy, "", "POST", body=b"abc")
    ended(processor, rid)
    until(lambda: stat(sy, "streams_closed") == 1, what="streams_closed")
    assert (stat(sy, "streams_started"), stat(sy, "stream_msgs_sent"),
            stat(sy, "stream_msgs_received")) == (1, 2, 2)
    text = sy.admin("GET", "/stats/prometheus").text()
    assert "streams_started" in text


def test_ep61_observability_mode_sends_and_goes_on(upstream, processor, switchyard):
    """observability_mode: every message says so; nothing waits for the processor (the response
    arrives while it has not answered anything); answers are ignored; a BUFFERED body is not
    sent, a STREAMED one is; the side stream is half-closed when the request is over."""
    import threading
    gate = threading.Event()

    @processor.scenario("obs-gate")
    def obs_gate(stream, msg):
        if kind(msg) == "request_headers":
            gate.wait(30)  # the processor sits on the first message
        return [answer(msg, set_headers=[("x-obs", "1")])]

    @processor.scenario("obs-answers")
    def obs_answers(stream, msg):
        # Mutations and an immediate response: all ignored.
        if kind(msg) == "response_headers":
            return [immediate(403, body=b"no\n")]
        return [answer(msg, set_headers=[("x-obs", "1")], body=b"REPLACED")]

    sy = switchyard(ep_config(upstream.port, processor.port, observability_mode=True,
                              processing_mode={"request_body_mode": "STREAMED",
                                               "response_body_mode": "BUFFERED",
                                               "response_trailer_mode": "SEND"}))
    try:
        r, rid = call(sy, "obs-gate", "POST", body=b"abcdef")
        assert r.status == 200 and r.json()["body_length"] == 6
        assert echo_headers(r.json(), "x-obs") == [] and r.header("x-obs") is None
        assert stream_of(processor, rid).messages[0].observability_mode
    finally:
        gate.set()
    s = ended(processor, rid)
    # The body chunk by chunk as it passed (the end may come as an empty chunk of its own).
    k = s.kinds()
    assert k[0] == "request_headers" and k[-1] == "response_headers", k
    bodies = [m.request_body for m in s.messages[1:-1]]
    assert set(k[1:-1]) == {"request_body"} and b"".join(b.body for b in bodies) == b"abcdef"
    assert [b.end_of_stream for b in bodies][-1] and not any(
        b.end_of_stream for b in bodies[:-1])
    assert all(m.observability_mode for m in s.messages)
    assert s.messages[0].HasField("protocol_config")
    r, rid = call(sy, "obs-answers", "POST", body=b"abcdef")
    assert r.status == 200 and r.json()["body_length"] == 6
    assert r.json()["body_sha256"] == __import__("hashlib").sha256(b"abcdef").hexdigest()
    assert echo_headers(r.json(), "x-obs") == []
    s2 = ended(processor, rid)
    until(lambda: stat(sy, "streams_closed") == 2, what="both side streams counted closed")
    assert stat(sy, "streams_started") == 2
    assert stat(sy, "stream_msgs_sent") == len(s.messages) + len(s2.messages)
    assert stat(sy, "message_timeouts") == 0 and stat(sy, "spurious_msgs_received") == 0


@pytest.mark.measures_memory
def test_ep61_observability_a_processor_that_does_not_read_costs_no_memory_and_no_delay(
        upstream, processor, switchyard):
    """A processor that reads nothing while 100 MiB of STREAMED request body pass: the request
    completes all the same (nothing waits for the processor), the proxy's peak memory stays
    bounded (the side stream's queue does not grow with the body: chunks it cannot take are
    dropped) and stream_msgs_dropped counts them. Once the processor reads again it gets the
    headers, the chunks that were sent, the end of the body and the response headers."""
    import threading
    gate = threading.Event()

    @processor.scenario("obs-stuck")
    def obs_stuck(stream, msg):
        if kind(msg) == "request_headers":
            gate.wait(120)  # reads nothing more until the upload is over
        return []

    sy = switchyard(ep_config(upstream.port, processor.port, observability_mode=True,
                              deferred_close_timeout="120s",
                              processing_mode={"request_body_mode": "STREAMED"}))
    before = sy.memory_kib("VmHWM")
    total = BIG_COUNT * len(BIG_PIECE)
    try:
        r = upload_big(sy, "obs-stuck", "obs-big")
        assert r.status == 200, r
        assert json.loads(r.body)["length"] == total
        growth = sy.memory_kib("VmHWM") - before
        assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for a 100 MiB upload"
        assert stat(sy, "stream_msgs_dropped") > 0
    finally:
        gate.set()
    s = ended(processor, "obs-big")
    k = s.kinds()
    assert k[0] == "request_headers" and k[-1] == "response_headers", k[:3] + k[-3:]
    bodies = [m.request_body for m in s.messages if kind(m) == "request_body"]
    assert bodies[-1].end_of_stream and not any(b.end_of_stream for b in bodies[:-1])
    assert sum(len(b.body) for b in bodies) < total
    until(lambda: stat(sy, "streams_closed") == 1, what="the side stream counted closed")
    assert stat(sy, "stream_msgs_sent") == len(s.messages)


def test_ep61_observability_side_stream_closed_after_deferred_close_timeout(
        upstream, processor, switchyard):
    """A processor that keeps the call open after the proxy's END_STREAM is reset once
    deferred_close_timeout has passed, after the HTTP stream itself has ended."""

    @processor.scenario("obs-linger")
    def obs_linger(stream, msg):
        def linger():
            stream.state["cancelled"] = stream.terminated.wait(30)
        stream.state["after_end"] = linger
        return []

    # The processor must have read both messages before the deferred close: a budget.
    sy = switchyard(ep_config(upstream.port, processor.port, observability_mode=True,
                              deferred_close_timeout=harness.budget(0.2)))
    r, rid = call(sy, "obs-linger")
    assert r.status == 200
    s = ended(processor, rid)
    assert s.state["cancelled"], "the call ended without the proxy resetting it"
    assert s.kinds() == ["request_headers", "response_headers"]
    until(lambda: stat(sy, "streams_closed") == 1, what="the side stream counted closed")
    assert sy.running() and request(sy.port("ingress"), "GET", "/echo").status == 200


def test_ep61_observability_processor_unreachable_changes_nothing(upstream, switchyard,
                                                                    free_port):
    """Without failure_mode_allow: a processor that cannot be reached fails its side stream
    (counted), never the request."""
    sy = switchyard(ep_config(upstream.port, free_port(), observability_mode=True,
                              processing_mode={"request_body_mode": "STREAMED"}))
    for _ in range(3):
        r = request(sy.port("ingress"), "POST", "/echo", body=b"abc")
        assert r.status == 200 and r.json()["body_length"] == 3
    until(lambda: stat(sy, "streams_failed") == 3, what="three failed side streams")
    assert stat(sy, "failure_mode_allowed") == 0


def test_ep61_observability_side_streams_across_hot_swaps(upstream, processor, switchyard):
    """Side streams outlive their requests on the worker, not on the stream. Under load, with a
    processor that keeps every call open, hot swaps lose no request; a swap retires the old
    config, whose lingering side streams are then closed at once (deferred_close_timeout is far
    longer than the test), so the retired generations can go."""
    import threading

    @processor.scenario("obs-hold")
    def obs_hold(stream, msg):
        def hold():
            stream.terminated.wait(60)
        stream.state["after_end"] = hold
        return []

    sy = switchyard(ep_config(upstream.port, processor.port, workers=2, observability_mode=True,
                              deferred_close_timeout="60s"))
    stop = False
    failures = []
    done = [0]

    def load():
        while not stop:
            r, _ = call(sy, "obs-hold", "POST", body=b"x" * 2000)
            if r.status != 200 or r.json()["body_length"] != 2000:
                failures.append(r)
            done[0] += 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        futs = [pool.submit(load) for _ in range(8)]
        until(lambda: done[0] > 50, what="traffic before the swap")
        for _ in range(3):
            resp = reload_module(sy, "ext_proc", str(module_file("ext_proc")))
            assert resp.status == 200, resp.body
            mark = done[0]
            until(lambda: done[0] > mark + 50, what="traffic after the swap")
        stop = True
        for f in futs:
            f.result()
    assert failures == []
    # One more swap retires the config every side stream so far belongs to.
    assert reload_module(sy, "ext_proc", str(module_file("ext_proc"))).status == 200

    def held():
        with processor.lock:
            mine = [x for x in processor.streams if x.name == "obs-hold"]
        return [x for x in mine if not x.ended.is_set()]
    until(lambda: not held(), what="every lingering side stream closed")
    until(lambda: loaded_generations(module_entry(sy, "ext_proc")) <= 2,
          what="the retired generations unloaded")


def test_ep63_metadata_forwarded_untyped_and_typed_received_only_for_listed(
        upstream, processor, switchyard):
    """The first filter takes dynamic metadata into its receiving namespaces only; the second
    sends the stream's namespaces in metadata_context: untyped as Structs, typed as Structs
    packed in Anys; a namespace nobody wrote is left out. A route's metadata_options replace
    the filter's."""
    from google.protobuf import struct_pb2

    @processor.scenario("meta63")
    def meta63(stream, msg):
        r = answer(msg)
        r.dynamic_metadata.update({"team": {"owner": "payments", "tier": 2},
                                   "other": {"ok": True},
                                   "unlisted": {"x": "y"}})
        return [r]

    second = ep_filter(metadata_options={"forwarding_namespaces": {
        "untyped": ["team", "unlisted"], "typed": ["other", "absent"]}},
        grpc_service={"envoy_grpc": {"cluster_name": "extproc"},
                      "initial_metadata": [{"key": "x-filter", "value": "second"}]})
    route_options = {"overrides": {"metadata_options": {
        "forwarding_namespaces": {"untyped": ["other"]}}}}
    cfg = ep_config(upstream.port, processor.port, routes=[
        to_cluster("routed", {"prefix": "/echo", "headers": [{"name": "x-r", "exact": "1"}]},
                   "backend", per_filter={"ext_proc": route_options}),
        to_cluster("all", {"prefix": "/"}, "backend")],
        metadata_options={"receiving_namespaces": {"untyped": ["team", "other"]}})
    cfg["listeners"][0]["filters"].append(second)
    sy = switchyard(cfg)

    def contexts(headers):
        r, rid = call(sy, "meta63", headers=headers)
        assert r.status == 200
        until(lambda: len(processor.by_id(rid)) == 2 and
              all(x.ended.is_set() for x in processor.by_id(rid)), what="both side streams")
        [s] = [x for x in processor.by_id(rid) if x.metadata.get("x-filter") == "second"]
        return [m.metadata_context for m in s.messages]

    got = contexts({})
    assert len(got) == 2  # request and response headers
    for mc in got:
        assert dict(mc.filter_metadata) == {"team": struct(owner="payments", tier=2)}, mc
        assert set(mc.typed_filter_metadata) == {"other"}, mc
        any_ = mc.typed_filter_metadata["other"]
        assert any_.type_url == "type.googleapis.com/google.protobuf.Struct"
        other = struct_pb2.Struct()
        assert any_.Unpack(other) and other == struct(ok=True)
    # On the route "routed" its forwarding list replaces the filter's (typed included).
    for mc in contexts({"x-r": "1"}):
        assert dict(mc.filter_metadata) == {"other": struct(ok=True)}, mc
        assert not mc.typed_filter_metadata


def struct(**fields):
    from google.protobuf import struct_pb2
    st = struct_pb2.Struct()
    st.update(fields)
    return st


# ---- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize("config,message", [
    ({"grpc_service": {"envoy_grpc": {"cluster_name": "extproc"}}, "bogus": 1},
     'unknown field "bogus"'),
    ({}, "needs grpc_service"),
    ({"grpc_service": {"envoy_grpc": {"cluster_name": "extproc"}},
      "processing_mode": {"request_body_mode": "SOMETIMES"}}, "must be one of"),
    ({"grpc_service": {"envoy_grpc": {"cluster_name": "extproc"}},
      "processing_mode": {"response_body_mode": "GRPC"}},
     "ext_proc.processing_mode.response_body_mode: GRPC is not supported (Envoy 1.40"),
    ({"grpc_service": {"envoy_grpc": {"cluster_name": "extproc"}},
      "message_timeout": "soon"}, "must be a duration"),
    ({"grpc_service": {"envoy_grpc": {"cluster_name": "extproc"}}, "observability_mode": True,
      "deferred_close_timeout": "later"}, "ext_proc.deferred_close_timeout"),
])
def test_config_errors_are_clear(upstream, switchyard, config, message):
    cfg = ep_config(upstream.port, 1)
    cfg["listeners"][0]["filters"] = [{"module": "ext_proc", "config": config}]
    sy = switchyard(cfg, start=False)
    out = harness.run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode != 0 and message in text, text
    assert str(sy.config_path) + ":" in text  # file:line:col


# ---- load: many streams, hot swap -------------------------------------------------------------


def test_a_thousand_streams_do_not_mix(upstream, switchyard):
    # grpcio's sync server holds a thread per open call: enough for every stream at once.
    processor = Processor(workers=1100)

    @processor.scenario("echo-id")
    def echo_id(stream, msg):
        rid = stream.first_header(EP_ID)
        if kind(msg) in ("request_headers", "response_headers"):
            return [answer(msg, set_headers=[("x-seen-id", rid)])]
        if kind(msg) == "request_body":
            return [answer(msg, body=rid.encode())]
        return [answer(msg)]

    # The point is isolation, not latency: a generous message timeout for a loaded machine.
    sy = switchyard(ep_config(upstream.port, processor.port, workers=2, message_timeout="60s",
                              processing_mode={"request_body_mode": "BUFFERED"}))

    def one(_):
        r, rid = call(sy, "echo-id", "POST", body=b"body", timeout=60)
        if r.status != 200:
            return (r.status, r.body[:200])
        echo = r.json()
        return (r.status == 200 and r.header("x-seen-id") == rid
                and echo_headers(echo, "x-seen-id") == [rid]
                and echo["body_sha256"] == harness.sha256(rid.encode()))

    try:
        with ThreadPoolExecutor(max_workers=1000) as pool:
            results = list(pool.map(one, range(1000)))
    finally:
        processor.stop()
    assert results.count(True) == 1000, [x for x in results if x is not True][:5]


def test_hot_swap_under_load_loses_nothing(upstream, processor, switchyard):
    # Eight clients and the processor share one Python interpreter while swaps spawn their
    # preflight children: a message timeout for a loaded machine, so that only a request the
    # swap loses can fail the test.
    sy = switchyard(ep_config(upstream.port, processor.port, workers=2,
                              message_timeout=harness.budget(10),
                              processing_mode={"request_body_mode": "BUFFERED"}))
    stop = False
    failures = []
    done = [0]

    def load():
        while not stop:
            r, _ = call(sy, "", "POST", body=b"x" * 2000)
            if r.status != 200 or r.json()["body_length"] != 2000:
                failures.append(r)
            done[0] += 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        futs = [pool.submit(load) for _ in range(8)]
        until(lambda: done[0] > 50, what="traffic before the swap")
        for _ in range(3):
            resp = reload_module(sy, "ext_proc", str(module_file("ext_proc")))
            assert resp.status == 200, resp.body
            mark = done[0]
            until(lambda: done[0] > mark + 50, what="traffic after the swap")
        stop = True
        for f in futs:
            f.result()
    assert failures == []


# ---- STREAMED -----------------------------------------------------------------------------------


def test_ep14_streamed_chunks_each_answered_in_order(upstream, processor, switchyard):
    @processor.scenario("stream-upper")
    def upper(stream, msg):
        if kind(msg) == "request_body":
            stream.state.setdefault("chunks", []).append(
                (len(msg.request_body.body), msg.request_body.end_of_stream))
            return [answer(msg, body=msg.request_body.body.upper())]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"request_body_mode": "STREAMED"}))
    pieces = [b"abc" * 1000, b"def" * 1000, b"ghi" * 1000]
    with RawClient(sy.port("ingress")) as c:
        # Each chunk after the previous one reached the processor: really streamed, not
        # collected while the headers were with the processor.
        c.send(raw_request("POST", "/echo", [("x-ep", "stream-upper"), (EP_ID, "st-1"),
                                             ("transfer-encoding", "chunked")]))
        s = stream_of(processor, "st-1")
        until(lambda: s.messages and s.kinds()[0] == "request_headers", what="the headers")
        for i, p in enumerate(pieces):
            c.send(b"%x\r\n%s\r\n" % (len(p), p))
            until(lambda: s.kinds().count("request_body") == i + 1, what=f"chunk {i}")
        c.send(b"0\r\n\r\n")
        resp = c.read_response()
    echo = json.loads(resp.body)
    expected = b"".join(pieces).upper()
    assert echo["body_length"] == len(expected)
    assert echo["body_sha256"] == harness.sha256(expected)
    assert echo_headers(echo, "content-length") == []
    chunks = ended(processor, "st-1").state["chunks"]
    assert sum(n for n, _ in chunks) == len(expected)
    assert chunks[-1][1] is True and all(not eos for _, eos in chunks[:-1])


def test_ep15_streamed_with_trailers_multi_chunk(upstream, processor, switchyard):
    @processor.scenario("stream-trl")
    def strl(stream, msg):
        if kind(msg) == "request_trailers":
            return [answer(msg, set_headers=[("x-t-added", "1")])]
        if kind(msg) == "request_body":
            return [answer(msg, body=msg.request_body.body[::-1])]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"request_body_mode": "STREAMED",
                                               "request_trailer_mode": "SEND"}))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", "/echo", [("x-ep", "stream-trl"), (EP_ID, "st-2"),
                                             ("transfer-encoding", "chunked")],
                           chunked([b"ab", b"cd", b"ef"], [("x-t", "v")])))
        resp = c.read_response()
    assert resp.status == 200
    echo = json.loads(resp.body)
    assert echo["body_length"] == 6
    assert dict(echo["trailers"]).get("x-t-added") == "1"
    s = ended(processor, "st-2")
    assert s.kinds()[0] == "request_headers" and "request_trailers" in s.kinds()
    assert s.kinds().index("request_trailers") > max(
        i for i, k in enumerate(s.kinds()) if k == "request_body")


@pytest.mark.measures_memory
@pytest.mark.parametrize("path,size", [("/file4m", 4 << 20), ("/big", 100 << 20)])
def test_streamed_response_body_large(upstream, nginx, processor, switchyard, path, size):
    @processor.scenario("count")
    def count_bytes(stream, msg):
        if kind(msg) == "response_body":
            stream.state["n"] = stream.state.get("n", 0) + len(msg.response_body.body)
        return [answer(msg)]

    cfg = ep_config(upstream.port, processor.port,
                    processing_mode={"response_body_mode": "STREAMED"})
    cfg["clusters"][0] = cluster("backend", nginx.port)
    sy = switchyard(cfg)
    before = sy.memory_kib("VmHWM")
    r, rid = call(sy, "count", path=path, timeout=120)
    assert r.status == 200 and len(r.body) == size
    assert ended(processor, rid).state["n"] == size
    # Bounded: far below the body's size (the response side's flow control reaches the origin).
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for {path}"


def test_streamed_end_of_body_during_the_header_hold_is_sent(upstream, processor, switchyard):
    """The whole chunked body (no Content-Length) arrives in the same read as the headers, so
    its end comes while the filter holds the direction for the headers' answer: the processor
    must still get a body message with end_of_stream (it used to get none)."""
    @processor.scenario("stream-eos")
    def seos(stream, msg):
        if kind(msg) == "request_body":
            stream.state.setdefault("eos", []).append(msg.request_body.end_of_stream)
            return [answer(msg, body=msg.request_body.body.upper())]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"request_body_mode": "STREAMED"}))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", "/echo", [("x-ep", "stream-eos"), (EP_ID, "st-eos"),
                                             ("transfer-encoding", "chunked")],
                           chunked([b"abc", b"def"])))
        resp = c.read_response()
    assert resp.status == 200
    echo = json.loads(resp.body)
    assert echo["body_sha256"] == harness.sha256(b"ABCDEF")
    eos = ended(processor, "st-eos").state["eos"]
    assert eos[-1] is True and not any(eos[:-1]), eos


@pytest.mark.measures_memory
@pytest.mark.parametrize("trailers", [False, True], ids=["plain", "trailer-send"])
def test_streamed_request_body_large_is_bounded(upstream, processor, switchyard, trailers):
    """100 MiB of chunked request body through STREAMED (with trailer mode SEND too, which used
    to give up the back-pressure): every byte reaches the processor and the upstream, and the
    proxy's peak memory stays far below the body's size."""
    @processor.scenario("count-req")
    def count_req(stream, msg):
        if kind(msg) == "request_body":
            stream.state["n"] = stream.state.get("n", 0) + len(msg.request_body.body)
            stream.state["eos"] = msg.request_body.end_of_stream
        return [answer(msg)]

    mode = {"request_body_mode": "STREAMED"}
    if trailers:
        mode["request_trailer_mode"] = "SEND"
    # A generous message timeout: the scripted processor is slow on a busy machine, and the
    # default 200 ms is not what this test is about.
    sy = switchyard(ep_config(upstream.port, processor.port, processing_mode=mode,
                              message_timeout="10s"))
    before = sy.memory_kib("VmHWM")
    rid = f"big-{trailers}"
    piece = bytes(range(256)) * 256  # 64 KiB
    count = (100 << 20) // len(piece)
    with RawClient(sy.port("ingress"), timeout=120) as c:
        c.send(raw_request("POST", "/echo", [("x-ep", "count-req"), (EP_ID, rid),
                                             ("transfer-encoding", "chunked")]))
        frame = b"%x\r\n%s\r\n" % (len(piece), piece)
        for _ in range(count):
            c.send(frame)
        c.send(b"0\r\nx-t: v\r\n\r\n" if trailers else b"0\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 200
    assert json.loads(resp.body)["body_length"] == count * len(piece)
    s = ended(processor, rid)
    assert s.state["n"] == count * len(piece)
    assert ("request_trailers" in s.kinds()) == trailers
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for a 100 MiB upload"


# ---- CONTINUE_AND_REPLACE ----------------------------------------------------------------------


def test_ep35_continue_and_replace_adds_a_body_to_a_get(upstream, processor, switchyard):
    """CONTINUE_AND_REPLACE on the headers of a bodiless GET, with :method POST and a body: the
    upstream gets a POST with that body, and no body message goes to the processor even though
    the body mode is BUFFERED."""
    @processor.scenario("replace-get")
    def replace_get(stream, msg):
        if kind(msg) == "request_headers":
            return [answer(msg, set_headers=[(":method", "POST"), ("content-type", "text/plain")],
                           body=b"a body from the processor", replace=True)]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port,
                              processing_mode={"request_body_mode": "BUFFERED"}))
    r, rid = call(sy, "replace-get")
    assert r.status == 200
    echo = r.json()
    assert echo["method"] == "POST"
    assert echo["body_sha256"] == harness.sha256(b"a body from the processor")
    assert echo_headers(echo, "content-type") == ["text/plain"]
    assert ended(processor, rid).kinds() == ["request_headers", "response_headers"]


def test_ep56_client_gone_while_waiting_cancels_the_side_stream(upstream, processor, switchyard):
    """The client closes its connection while the processor sits on the request headers: the
    side stream is cancelled (the processor sees its end) long before the message timeout, and
    the proxy serves the next request."""
    @processor.scenario("sit")
    def sit(stream, msg):
        return []

    sy = switchyard(ep_config(upstream.port, processor.port, message_timeout="30s"))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/echo", [("x-ep", "sit"), (EP_ID, "gone-1")]))
        s = stream_of(processor, "gone-1")
    until(s.ended.is_set, timeout=10, what="the side stream cancelled after the client left")
    assert s.kinds() == ["request_headers"]
    until(lambda: stat(sy, "streams_started") == 1 and stat(sy, "message_timeouts") == 0,
          what="the counters")
    r, _ = call(sy, "")
    assert r.status == 200


def test_ep41_allow_all_routing_reroutes_on_authority(upstream, make_upstream, processor,
                                                      switchyard):
    """With mutation_rules.allow_all_routing, a new :authority plus clear_route_cache picks the
    route for that host (404 when none matches); without it the change is rejected and the
    request stays on its route."""
    other = make_upstream("other-host")

    @processor.scenario("authority")
    def authority(stream, msg):
        if kind(msg) == "request_headers":
            return [answer(msg, set_headers=[(":authority", stream.first_header("x-to"))],
                           clear_route_cache=True)]
        return [answer(msg)]

    routes = [to_cluster("b", {"host": "b.example", "prefix": "/"}, "other"),
              to_cluster("local", {"host": "127.0.0.1", "prefix": "/"}, "backend")]
    clusters = [cluster("other", other.port)]
    sy = switchyard(ep_config(upstream.port, processor.port, routes=routes, clusters=clusters,
                              mutation_rules={"allow_all_routing": True}))
    r, _ = call(sy, "authority", headers={"x-to": "b.example"})
    assert r.status == 200 and r.json()["server"] == "other-host"
    r, _ = call(sy, "authority", headers={"x-to": "nowhere.example"})
    assert r.status == 404
    strict = switchyard(ep_config(upstream.port, processor.port, routes=routes,
                                  clusters=clusters), name="strict")
    r, _ = call(strict, "authority", headers={"x-to": "b.example"})
    assert r.status == 200 and r.json()["server"] == "upstream"
    assert stat(strict, "rejected_header_mutations") == 1


@pytest.mark.parametrize("pieces", [1, 3])
def test_ep18_body_without_waiting_for_the_header_answer(upstream, processor, switchyard,
                                                         pieces):
    """send_body_without_waiting_for_header_response with STREAMED: the body's chunks reach the
    processor while the headers are unanswered (each piece is sent by the client only once the
    previous one got there); the processor answers the headers only after the whole body, then
    every chunk; the upstream gets the mutated headers and body."""
    @processor.scenario("sbww")
    def sbww(stream, msg):
        if kind(msg) == "request_headers":
            stream.state["headers"] = msg
            return []
        if kind(msg) == "request_body":
            stream.state.setdefault("bodies", []).append(msg)
            if not msg.request_body.end_of_stream:
                return []
            out = [answer(stream.state["headers"], set_headers=[("x-after-body", "1")])]
            return out + [answer(m, body=m.request_body.body.upper())
                          for m in stream.state["bodies"]]
        return [answer(msg)]

    sy = switchyard(ep_config(upstream.port, processor.port, message_timeout="10s",
                              send_body_without_waiting_for_header_response=True,
                              processing_mode={"request_body_mode": "STREAMED"}))
    rid = f"sbww-{pieces}"
    parts = [b"piece%d-" % i * 100 for i in range(pieces)]
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("POST", "/echo", [("x-ep", "sbww"), (EP_ID, rid),
                                             ("transfer-encoding", "chunked")]))
        s = stream_of(processor, rid)
        for p in parts:
            n = sum(len(m.request_body.body) for m in s.messages if kind(m) == "request_body")
            c.send(b"%x\r\n%s\r\n" % (len(p), p))
            until(lambda: sum(len(m.request_body.body) for m in s.messages
                              if kind(m) == "request_body") == n + len(p),
                  what="the piece at the processor before any answer")
        c.send(b"0\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 200
    echo = json.loads(resp.body)
    assert echo["body_sha256"] == harness.sha256(b"".join(parts).upper())
    assert echo_headers(echo, "x-after-body") == ["1"]
    s = ended(processor, rid)
    eos = [m.request_body.end_of_stream for m in s.messages if kind(m) == "request_body"]
    assert eos[-1] is True and not any(eos[:-1])
    assert s.messages[0].protocol_config.send_body_without_waiting_for_header_response
