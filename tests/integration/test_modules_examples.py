"""The example modules (modules/examples/) loaded into the real proxy, each with a config that
uses it, driven with real requests: hello, body_transform, async_gate (thread and callout),
tcp_tap, metrics_demo."""
import concurrent.futures
import re

from harness import (RawClient, cluster, echo_headers, raw_request, request, run_switchyard,
                     stream_payload, to_cluster, until)
from modules_util import MODULES, module_file, module_stat, with_filters

# --- hello -----------------------------------------------------------------------------------


def test_hello_adds_configured_header(upstream, switchyard):
    module_file("hello")
    sy = switchyard(with_filters(upstream.port, [
        {"module": "hello", "config": {"name": "x-hello", "value": "world"}}]))
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 200, r
    assert r.all("x-hello") == ["world"]


def test_hello_defaults_and_named_filter(upstream, switchyard):
    module_file("hello")
    sy = switchyard(with_filters(upstream.port, [{"module": "hello", "filter": "add_header"}]))
    r = request(sy.port("ingress"), "GET", "/status?code=404")
    assert r.status == 404
    assert r.header("x-hello") == "world"


def test_hello_bad_config_refused_with_location(upstream, switchyard):
    module_file("hello")
    sy = switchyard(with_filters(upstream.port, [
        {"module": "hello", "config": {"name": "bad name", "value": "world"}}]), start=False)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "not a valid header name" in text and "bad name" in text, text
    assert re.search(r"switchyard\.yaml:\d+:\d+", text), f"no file:line:col in {text!r}"


def test_hello_non_object_config_refused(upstream, switchyard):
    module_file("hello")
    sy = switchyard(with_filters(upstream.port, [{"module": "hello", "config": "x-hello"}]),
                    start=False)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "must be a JSON object" in text, text


# --- body_transform --------------------------------------------------------------------------


def test_body_transform_rewrites_across_chunk_borders(upstream, switchyard):
    # upstream.py's /stream sends "aaaa...", "bbbb...", ... as separate chunks 20 ms apart, so
    # every "ab" straddles two chunks: found only if the filter carries bytes across.
    module_file("body_transform")
    sy = switchyard(with_filters(upstream.port, [
        {"module": "body_transform", "config": {"from": "ab", "to": "<A|B>"}}]))
    chunks, size = 6, 64
    r = request(sy.port("ingress"), "GET", f"/stream?chunks={chunks}&size={size}&ms=20")
    assert r.status == 200, r
    expected = stream_payload(chunks, size).replace(b"ab", b"<A|B>")
    assert r.body == expected
    # Counted when the stream completes, which may be just after the client has its response.
    until(lambda: module_stat(sy.stats(), "body_transform", "replacements") == 1,
          what="the replacement counted")


def test_body_transform_large_body_with_length_change(nginx, switchyard):
    # 1 MiB with ~87k matches arrives in reads of arbitrary size: many matches fall across a
    # border. from and to differ in length, so Content-Length must go and the host re-frame.
    module_file("body_transform")
    text = b"hello world, " * ((1 << 20) // 13)
    (nginx.dir / "docroot" / "hello.txt").write_bytes(text)
    sy = switchyard(with_filters(nginx.port, [
        {"module": "body_transform", "config": {"from": "hello", "to": "HELLO!"}}]))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/hello.txt"))
        r = c.read_response()
    assert r.status == 200, r
    assert r.body == text.replace(b"hello", b"HELLO!")
    lengths = r.all("content-length")
    assert not lengths or lengths == [str(len(r.body))], r.headers
    until(lambda: module_stat(sy.stats(), "body_transform", "replacements") == text.count(b"hello"),
          what="replacements counted")


# --- async_gate ------------------------------------------------------------------------------


def test_async_gate_resumes_from_its_thread(upstream, switchyard):
    module_file("async_gate")
    sy = switchyard(with_filters(upstream.port, [{"module": "async_gate"}]))
    port = sy.port("ingress")

    def one(i):
        r = request(port, "GET", f"/echo?i={i}")
        assert r.status == 200, r
        return echo_headers(r.json(), "x-gate")

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        seen = list(pool.map(one, range(64)))
    assert all(v == ["thread"] for v in seen), seen
    assert module_stat(sy.stats(), "async_gate", "resumed_by_thread") == 64


def test_async_gate_callout_allows_and_denies(make_upstream, switchyard):
    backend, authz = make_upstream("backend"), make_upstream("authz")
    module_file("async_gate")

    def listener(name, code):
        return {"name": name,
                "filters": [{"module": "async_gate", "config": {
                    "mode": "callout", "cluster": "authz", "path": f"/status?code={code}"}}],
                "routes": [to_cluster("all", {"prefix": "/"}, "backend")]}

    sy = switchyard({
        "module_path": [str(MODULES)],
        "listeners": [listener("allow", 200), listener("deny", 403)],
        "clusters": [cluster("backend", backend.port), cluster("authz", authz.port)],
    })
    r = request(sy.port("allow"), "GET", "/echo")
    assert r.status == 200, r
    assert echo_headers(r.json(), "x-gate") == ["callout"]
    r = request(sy.port("deny"), "GET", "/echo")
    assert r.status == 403, r
    assert b"denied by async_gate" in r.body
    stats = sy.stats()
    assert module_stat(stats, "async_gate", "callout_allowed") == 1
    assert module_stat(stats, "async_gate", "callout_denied") == 1
    # The gate was asked with the original path; the denied request never reached the backend.
    assert authz.stats()["paths"].get("/status") == 2
    assert backend.stats()["paths"].get("/echo") == 1


# --- tcp_tap ---------------------------------------------------------------------------------


def test_tcp_tap_counts_and_tags(upstream, switchyard):
    module_file("tcp_tap")
    sy = switchyard({
        "module_path": [str(MODULES)],
        "listeners": [{"name": "tcp", "tcp_proxy": {"cluster": "backend"},
                       "network_filters": [{"module": "tcp_tap",
                                            "config": {"prefix": "TAP:"}}]}],
        "clusters": [cluster("backend", upstream.port)],
    })
    req = raw_request("GET", "/echo", headers=[("Connection", "close")])
    with RawClient(sy.port("tcp")) as c:
        c.send(req)
        data = c.read_until_close()
    assert data.startswith(b"TAP:HTTP/1.1 200 "), data[:100]
    assert data.count(b"TAP:") == 1, "the prefix goes before the first bytes only"
    until(lambda: module_stat(sy.stats(), "tcp_tap", "bytes_in") == len(req),
          what=f"bytes_in == {len(req)}")
    until(lambda: module_stat(sy.stats(), "tcp_tap", "bytes_out") == len(data) - len(b"TAP:"),
          what=f"bytes_out == {len(data) - 4}")


# --- metrics_demo ----------------------------------------------------------------------------


def test_metrics_demo_counter_gauge_histogram(upstream, switchyard):
    module_file("metrics_demo")
    sy = switchyard(with_filters(upstream.port, [
        {"module": "metrics_demo", "config": {"route": "checkout"}}]))
    port = sy.port("ingress")
    for i in range(5):
        assert request(port, "GET", f"/status?code=200&i={i}").status == 200
    until(lambda: module_stat(sy.stats(), "metrics_demo", "requests", "checkout") == 5,
          what="requests == 5")
    until(lambda: module_stat(sy.stats(), "metrics_demo", "in_flight", "checkout") == 0,
          what="in_flight back to 0")
    hist = module_stat(sy.stats(), "metrics_demo", "response_bytes", "checkout")
    assert isinstance(hist, str) and "count=5" in hist, hist
    prom = sy.admin("GET", "/stats/prometheus").text()
    assert re.search(r'requests\{[^}]*route="checkout"[^}]*\} 5', prom), prom[-2000:]


def test_metrics_demo_gauge_counts_streams_in_flight(upstream, switchyard):
    module_file("metrics_demo")
    sy = switchyard(with_filters(upstream.port, [{"module": "metrics_demo"}]))
    port = sy.port("ingress")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        held = [pool.submit(request, port, "GET", f"/slow?hold=gauge&i={i}") for i in range(3)]
        until(lambda: upstream.stats()["held"] == 3, what="3 requests held upstream")
        assert module_stat(sy.stats(), "metrics_demo", "in_flight", "default") == 3
        upstream.release("gauge")
        assert all(f.result().status == 200 for f in held)
    until(lambda: module_stat(sy.stats(), "metrics_demo", "in_flight", "default") == 0,
          what="in_flight back to 0")
