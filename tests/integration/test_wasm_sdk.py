"""The Go SDK filters (github.com/proxy-wasm/proxy-wasm-go-sdk, pinned in
tests/integration/wasm/go/go.mod) behind Envoy 1.40 and behind Switchyard's wasm module: the
same .wasm files, the same PluginConfig, the same requests and the same assertions on what the
client and the upstream see, once per proxy.

Each filter is ours and does what the SDK example of the same name documents (the examples
themselves are not fetchable: see tools/build-wasm-fixtures); where an example only logs, our
filter also puts what it saw into a header, so the assertions need no log format.
"""
import hashlib
import re
import threading
import uuid

import pytest

from harness import RawClient, raw_request, until
from wasmutil import deploy, echo_header, go_filter, plugin, pool  # noqa: F401 (fixtures)


def parallel(n, fn):
    """FN(i) for i in range(N), each in its own thread; their results in order."""
    results = [None] * n
    errors = []

    def run(i):
        try:
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def fnv1a32(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


# --- http_headers ----------------------------------------------------------------------------


def test_http_headers(deploy):
    config = '{"header": "x-wasm-header", "value": "demo-wasm"}'
    d = deploy("http_headers", http=[plugin(go_filter("http_headers"), "http_headers",
                                            configuration=config)])
    resp = d.request("GET", "/echo", headers={"test": "worst", "this-is-key": "this-is-value"})
    assert resp.status == 200, resp
    assert resp.all("x-wasm-header") == ["demo-wasm"]
    assert resp.all("x-proxy-wasm-go-sdk-example") == ["http_headers"]
    assert echo_header(resp, "test") == ["best"], "the request header is replaced, not added"
    assert echo_header(resp, "this-is-key") == ["this-is-value"]
    # proxy_log reaches the proxy's log; a stream's lines name the plugin (Envoy leaves the
    # name out of lines logged while the plugin is configured).
    until(lambda: d.log_lines("header from config: x-wasm-header = demo-wasm"),
          what="the plugin's log line about its configuration")
    until(lambda: d.log_lines("http_headers", "request header --> this-is-key: this-is-value"),
          what="the plugin's log line about the request header")


# --- http_body -------------------------------------------------------------------------------

BODY_OPS = {
    "append": (b"[original body]", b"[original body][this is appended body]"),
    "prepend": (b"[original body]", b"[this is prepended body][original body]"),
    "replace": (b"[original body]", b"[this is replaced body]"),
    "invalid": (b"[original body]", b"[this is replaced body]"),  # falls back to replace
}


@pytest.mark.parametrize("op", sorted(BODY_OPS))
def test_http_body_request(deploy, op):
    d = deploy("http_body", http=[plugin(go_filter("http_body"), "http_body")])
    sent, want = BODY_OPS[op]
    resp = d.request("PUT", "/echo", body=sent,
                     headers={"buffer-operation": op, "buffer-replace-at": "request"})
    assert resp.status == 200, resp
    echo = resp.json()
    assert (echo["body_length"], echo["body_sha256"]) == (
        len(want), hashlib.sha256(want).hexdigest()), f"upstream should have got {want!r}"


@pytest.mark.parametrize("op", ["append", "prepend", "replace"])
def test_http_body_response(deploy, op):
    d = deploy("http_body", http=[plugin(go_filter("http_body"), "http_body")])
    resp = d.request("PUT", "/status?code=200", body=b"ignored",
                     headers={"buffer-operation": op, "buffer-replace-at": "response"})
    assert resp.status == 200, resp
    added = {"append": b"status 200\n[this is appended body]",
             "prepend": b"[this is prepended body]status 200\n",
             "replace": b"[this is replaced body]"}
    assert resp.body == added[op]


def test_http_body_without_content_length_is_refused(deploy):
    d = deploy("http_body", http=[plugin(go_filter("http_body"), "http_body")])
    resp = d.request("GET", "/refused")
    assert resp.status == 400, resp
    assert resp.body == b"content must be provided"
    assert d.backend.stats()["paths"].get("/refused") is None, "it must not go upstream"


# --- http_body_chunk -------------------------------------------------------------------------


def test_http_body_chunk_pattern_is_refused(deploy):
    d = deploy("http_body_chunk", http=[plugin(go_filter("http_body_chunk"), "http_body_chunk")])
    body = b"x" * 200_000 + b"a pattern here" + b"y" * 1000
    resp = d.request("POST", "/echo", body=body)
    assert resp.status == 403, resp
    assert re.fullmatch(rb"pattern found in chunk: [1-9][0-9]*", resp.body), resp.body
    assert resp.header("powered-by") == "proxy-wasm-go-sdk"


def test_http_body_chunk_clean_body_passes(deploy):
    d = deploy("http_body_chunk", http=[plugin(go_filter("http_body_chunk"), "http_body_chunk")])
    body = bytes(range(256)).replace(b"p", b"q") * 1000
    resp = d.request("POST", "/echo", body=body)
    assert resp.status == 200, resp
    assert resp.json()["body_sha256"] == hashlib.sha256(body).hexdigest()


# --- http_auth_random ------------------------------------------------------------------------


def auth_codes():
    """A status code whose /status body hashes even (granted) and one that hashes odd."""
    codes = {}
    for code in (200, 201, 202, 203, 205, 206):
        parity = fnv1a32(f"status {code}\n".encode()) % 2
        codes.setdefault("granted" if parity == 0 else "denied", code)
    return codes


def test_http_auth_random(deploy):
    d = deploy("http_auth_random",
               http=[plugin(go_filter("http_auth_random"), "http_auth_random")])
    codes = auth_codes()
    assert set(codes) == {"granted", "denied"}, codes

    resp = d.request("GET", f"/status?code={codes['granted']}")
    assert resp.status == codes["granted"], resp
    assert resp.header("x-auth-random-response") == "seen"
    assert d.backend.stats()["paths"]["/status"] == 2, "the callout, then the request itself"

    resp = d.request("GET", f"/status?code={codes['denied']}")
    assert resp.status == 403, resp
    assert resp.body == b"access forbidden"
    assert resp.header("powered-by") == "proxy-wasm-go-sdk!!"
    # Envoy runs a plugin's response callbacks on the plugin's own local reply too.
    assert resp.header("x-auth-random-response") == "seen"
    assert d.backend.stats()["paths"]["/status"] == 3, "the callout only"


def test_http_auth_random_callout_fails(deploy):
    """A callout that cannot connect still ends in the plugin's callback (Envoy hands it a
    503 of its own; no headers at all would do too), which refuses the request."""
    d = deploy("http_auth_random_dead", dead=["httpbin"],
               http=[plugin(go_filter("http_auth_random"), "http_auth_random")])
    resp = d.request("GET", "/status?code=200")
    assert resp.status == 403, resp
    assert resp.body == b"access forbidden"
    assert resp.header("x-auth-random-response") == "seen"
    assert d.backend.stats()["paths"].get("/status") is None


# --- multiple_dispatches --------------------------------------------------------------------


def test_multiple_dispatches_resume_the_response(deploy):
    d = deploy("multiple_dispatches",
               http=[plugin(go_filter("multiple_dispatches"), "multiple_dispatches")])
    resp = d.request("GET", "/echo")
    assert resp.status == 200, resp
    assert resp.header("x-dispatches") == "10/10", "upstream.py answers each /dispatch/i 404"
    assert resp.json()["path"] == "/echo", "the held response goes on unchanged"
    paths = d.backend.stats()["paths"]
    assert [paths.get(f"/dispatch/{i}") for i in range(10)] == [1] * 10


# --- dispatch_call_on_tick -------------------------------------------------------------------


def test_dispatch_call_on_tick(deploy):
    d = deploy("dispatch_call_on_tick",
               http=[plugin(go_filter("dispatch_call_on_tick"), "dispatch_call_on_tick")])
    until(lambda: d.backend.stats()["paths"].get("/tick", 0) >= 5,
          what="five callouts to /tick from on_tick")

    def answered():
        resp = d.request("GET", "/echo")
        assert resp.status == 200, resp
        return int(resp.header("x-tick-responses")) >= 1 and resp

    resp = until(answered, what="a callout answer counted by the plugin")
    assert resp.header("x-tick-statuses") == "404", "upstream.py has no /tick"


# --- postpone_requests -----------------------------------------------------------------------


def test_postpone_requests(deploy):
    d = deploy("postpone_requests",
               http=[plugin(go_filter("postpone_requests"), "postpone_requests")])
    resps = parallel(6, lambda i: d.request("GET", f"/echo?i={i}"))
    for resp in resps:
        assert resp.status == 200, resp
        assert echo_header(resp, "x-resumed-by") == ["tick"]


# --- shared_data -----------------------------------------------------------------------------


def test_shared_data_counts_without_lost_updates(deploy):
    d = deploy("shared_data", http=[plugin(go_filter("shared_data"), "shared_data")])
    first = [int(d.request("GET", "/echo").header("x-shared-value")) for _ in range(5)]
    assert first == list(range(first[0], first[0] + 5)), first

    def burst(i):
        values = []
        for _ in range(5):
            resp = d.request("GET", "/echo")
            assert resp.status == 200, resp
            values.append(int(resp.header("x-shared-value")))
        return values

    values = sorted(v for vs in parallel(8, burst) for v in vs)
    start = first[-1] + 1
    assert values == list(range(start, start + 40)), "each increment exactly once (CAS)"


# --- shared_queue ----------------------------------------------------------------------------


def test_shared_queue(deploy):
    receiver = plugin(go_filter("shared_queue/receiver"), "receiver", root_id="receiver",
                      vm_id="receiver", configuration="http_request_headers")
    sender = plugin(go_filter("shared_queue/sender"), "sender", vm_id="sender")
    d = deploy("shared_queue", http=[receiver, sender])
    probe = uuid.uuid4().hex
    resp = d.request("GET", "/echo", headers={"x-queue-probe": probe})
    assert resp.status == 200, resp
    assert not echo_header(resp, "x-queue-error"), resp.json()
    item = f'{{"key": "x-queue-probe","value": "{probe}"}}'

    def seen():
        r = d.request("GET", "/echo", headers={"x-queue-ask": item})
        assert r.status == 200, r
        return r.header("x-queue-seen") == "1" and r

    resp = until(seen, what="the receiver dequeued the probe header")
    assert int(resp.header("x-queue-dequeued")) >= 3


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_in_prometheus(deploy):
    d = deploy("metrics", http=[plugin(go_filter("metrics"), "metrics")])
    for value, count in (("foo", 3), ("bar", 5)):
        for _ in range(count):
            assert d.request("GET", "/echo", headers={"my-custom-header": value}).status == 200
    # Envoy lists a plugin's metrics without the wasmcustom. prefix it keeps them under, with
    # the name's other characters sanitized for Prometheus.
    until(lambda: d.metric("custom_header_value_counts_value_foo_reporter_wasmgosdk") == 3,
          what="the foo counter at 3")
    assert d.metric("custom_header_value_counts_value_bar_reporter_wasmgosdk") == 5
    assert d.metric("custom_header_last_length") == 3
    # Eight lengths of 3, all in the bucket up to 5. (No check of the sum: Envoy's is an
    # approximation from its log-linear buckets.)
    until(lambda: d.metric("custom_header_length_count") == 8, what="8 histogram samples")
    assert d.metric('custom_header_length_bucket{le="1"}') == 0
    assert d.metric('custom_header_length_bucket{le="5"}') == 8


# --- properties ------------------------------------------------------------------------------


def test_properties(deploy):
    d = deploy("properties", http=[plugin(go_filter("properties"), "properties",
                                          root_id="props_root", vm_id="props_vm")])
    with RawClient(d.http_port) as c:
        c.send(raw_request("GET", "/echo?x=1", host="example.com"))
        resp = c.read_response()
        client_port = c.sock.getsockname()[1]
    assert resp.status == 200, resp
    want = {
        "request.path": "/echo?x=1", "request.url_path": "/echo", "request.host": "example.com",
        "request.method": "GET", "request.scheme": "http", "request.protocol": "HTTP/1.1",
        "request.query": "x=1",
        "source.address": f"127.0.0.1:{client_port}", "source.port": str(client_port),
        "destination.address": f"127.0.0.1:{d.http_port}", "destination.port": str(d.http_port),
        "plugin_name": "properties", "plugin_root_id": "props_root", "plugin_vm_id": "props_vm",
        "request.size": "0",
    }
    got = {k: resp.header(f"x-prop-{k}") for k in want}
    assert got == want


# --- vm_plugin_configuration -----------------------------------------------------------------


def test_vm_plugin_configuration(deploy):
    vm_cfg = '{"name": "vm configuration"}'
    plugin_cfg = '{"name": "plugin configuration"}'
    d = deploy("vm_plugin_configuration",
               http=[plugin(go_filter("vm_plugin_configuration"), "vm_plugin_configuration",
                            configuration=plugin_cfg, vm_configuration=vm_cfg)])
    resp = d.request("GET", "/echo")
    assert resp.status == 200, resp
    assert resp.header("x-vm-config") == vm_cfg
    assert resp.header("x-plugin-config") == plugin_cfg


# --- network ---------------------------------------------------------------------------------


def test_network(deploy):
    d = deploy("network", network=[plugin(go_filter("network"), "network")])
    req = raw_request("GET", "/echo", headers=[("Connection", "close")])
    with RawClient(d.tcp_port) as c:
        c.send(req)
        data = c.read_until_close()
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    until(lambda: d.metric("network_go_completed") == 1, what="network_go.completed == 1")
    assert d.metric("network_go_connections") == 1
    assert d.metric("network_go_downstream_bytes") == len(req)
    assert d.metric("network_go_upstream_bytes") == len(data)
    assert d.metric("network_go_downstream_closed") == 1


# --- failure_policy (the panic filter) -------------------------------------------------------
# One worker, so that every request meets the VM that failed (each worker has its own).


def panic_deployment(deploy, policy):
    d = deploy(f"panic_{policy}", workers=1,
               http=[plugin(go_filter("panic"), "panic", failure_policy=policy)])
    resp = d.request("GET", "/echo")
    assert (resp.status, resp.header("x-plugin")) == (200, "alive"), resp
    resp = d.request("GET", "/echo", headers={"x-panic": "1"})
    assert resp.status == 503, "the stream that trapped fails, whatever the policy"
    return d


def test_fail_closed_refuses_every_later_request(deploy):
    d = panic_deployment(deploy, "FAIL_CLOSED")
    for _ in range(3):
        assert d.request("GET", "/echo").status == 503
    assert d.backend.stats()["paths"]["/echo"] == 1, "only the request before the panic"


def test_fail_open_lets_later_requests_pass_without_the_plugin(deploy):
    d = panic_deployment(deploy, "FAIL_OPEN")
    for _ in range(3):
        resp = d.request("GET", "/echo")
        assert (resp.status, resp.header("x-plugin")) == (200, None), resp
    assert d.backend.stats()["paths"]["/echo"] == 4


def test_fail_reload_brings_the_plugin_back(deploy):
    """Until the VM is made again (Envoy waits out a backoff first) requests are refused;
    none passes without the plugin."""
    d = panic_deployment(deploy, "FAIL_RELOAD")
    seen = []

    def reloaded():
        resp = d.request("GET", "/echo")
        seen.append((resp.status, resp.header("x-plugin")))
        return resp.status == 200

    until(reloaded, timeout=15, what="a request served by the reloaded plugin")
    assert set(seen[:-1]) <= {(503, None)} and seen[-1] == (200, "alive"), seen
