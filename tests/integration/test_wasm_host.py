"""The wasm module (modules/wasm/, build/modules/libsy_wasm.so) with the project's own C filter
(tests/wasm/c/host_test.c, compiled here with clang --target=wasm32-wasi): headers, bodies,
local replies, traps, runaway loops, memory exhaustion, status-code edge cases, shared data
with CAS, queues, ticks, HTTP calls and the failure policies.

Every behaviour is observed from outside: in what upstream.py's /echo saw, in the response, in
GET /stats or in the proxy's log. Waits poll (harness.until); nothing sleeps.
"""
import concurrent.futures
import hashlib
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from harness import REPO, RawClient, cluster, echo_headers, raw_request, request, to_cluster, until
from modules_util import (MODULES, fixture_file, loaded_generations, module_entry, module_file,
                          reload_module)
from tcppeer import Peer

C_DIR = REPO / "tests" / "wasm" / "c"


def compile_filter(out, variant="1"):
    clang = shutil.which("clang")
    assert clang, "clang is missing: tools/install-deps installs it (with lld and wasi-libc)"
    subprocess.run([clang, "--target=wasm32-wasi", "-O2", "-mexec-model=reactor",
                    f'-DVARIANT="{variant}"', "-o", str(out), str(C_DIR / "host_test.c")],
                   check=True)
    return out


@pytest.fixture(scope="module")
def host_test_wasm(tmp_path_factory):
    """host_test.c compiled to a WASI reactor."""
    return compile_filter(tmp_path_factory.mktemp("wasm") / "host_test.wasm")


def wasm_filter(path, configuration="", **extra):
    return {"module": "wasm", "config": {
        "name": "host_test", "root_id": "host_root",
        "vm_config": {"vm_id": "vm1", "runtime": "envoy.wasm.runtime.v8",
                      "code": {"local": {"filename": str(path)}}},
        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                          "value": configuration},
        **extra}}


def proxy_config(upstream, wasm, workers=2, before=(), clusters=(), **filter_extra):
    """One listener `ingress` with the wasm filter (after the filters BEFORE) in front of
    cluster `backend` (upstream.py), plus CLUSTERS."""
    module_file("wasm")
    return {"module_path": [str(MODULES)], "workers": workers,
            "listeners": [{"name": "ingress",
                           "filters": [*before, wasm_filter(wasm, **filter_extra)],
                           "routes": [to_cluster("all", {"prefix": "/"}, "backend")]}],
            "clusters": [cluster("backend", upstream.port), *clusters]}


def start(switchyard, upstream, wasm, tmp_cache=None, **kw):
    if tmp_cache:
        kw["cache_dir"] = str(tmp_cache)
    return switchyard(proxy_config(upstream, wasm, **kw))


def get(sy, action="", path="/echo", **kw):
    headers = dict(kw.pop("headers", {}))
    headers["x-action"] = action or "plain"
    return request(sy.port("ingress"), path=path, headers=headers, **kw)


def log_has(sy, text):
    return text in Path(sy.log_path).read_text(errors="replace")


def stat(sy, name):
    """A module.wasm.* counter for the plugin host_test (0 while absent)."""
    for key, value in sy.stats().items():
        if key.startswith("module.wasm.") and key.endswith("." + name) and "host_test" in key:
            return value
    return 0


def test_headers_config_and_response_phase(switchyard, upstream, host_test_wasm, tmp_path):
    sy = start(switchyard, upstream, host_test_wasm, configuration="hello-config",
               tmp_cache=tmp_path / "cache")
    resp = get(sy)
    assert resp.status == 200, resp
    assert echo_headers(resp.json(), "x-wasm-config") == ["hello-config"]
    assert resp.header("x-wasm") == "host_test"
    assert resp.header("x-wasm-saw-status") == "200"
    # Logging is attributed to the plugin, as Envoy's "wasm log <name> <root_id> <vm_id>:".
    until(lambda: log_has(sy, "wasm log host_test host_root vm1: configured with 'hello-config'"))
    until(lambda: log_has(sy, "wasm log host_test host_root vm1: done"), what="on_log")


def test_plugin_metric_has_envoys_prometheus_name(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm, workers=1)
    for _ in range(3):
        assert get(sy).status == 200
    # Envoy shows a plugin's metric without its wasmcustom. prefix and without envoy_.
    def family_value():
        text = sy.admin("GET", "/stats/prometheus").text()
        m = re.search(r"^host_test_requests(\{[^}]*\})? (\d+)$", text, re.M)
        return m and int(m.group(2)) == 3
    until(family_value, what="host_test_requests 3 in /stats/prometheus")


def test_local_reply_runs_the_plugins_response_phase(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm)
    resp = get(sy, "local")
    assert resp.status == 403
    assert resp.body == b"denied by wasm\n"
    assert resp.header("x-local") == "yes"
    # As in Envoy, the plugin's on_response_headers sees its own local reply.
    assert resp.header("x-wasm-saw-status") == "403"
    assert upstream.stats().get("paths", {}).get("/echo", 0) == 0


def test_request_body_prepend_and_append(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm)
    body = b"x" * 100000
    resp = get(sy, "body", method="POST", body=body)
    assert resp.status == 200, resp
    want = b"[prepended]" + body + b"[appended]"
    echo = resp.json()
    assert echo["body_length"] == len(want)
    assert echo["body_sha256"] == hashlib.sha256(want).hexdigest()


def test_status_codes_of_error_paths(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm)
    resp = get(sy, "codes")
    # NOT_FOUND header, NOT_FOUND property, INVALID_MEMORY_ACCESS, EMPTY queue,
    # BAD_ARGUMENT context, CAS_MISMATCH.
    assert echo_headers(resp.json(), "x-status-codes") == ["1,1,6,7,2,8"]


def test_foreign_functions_compress_and_uncompress(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm)
    text = ("switchyard " * 40).strip()
    resp = get(sy, "foreign", headers={"x-text": text})
    (codes,) = echo_headers(resp.json(), "x-foreign")
    a, b, c, d, size, same = codes.split(",")
    # compress and uncompress OK, an unknown name NOT_FOUND, garbage to uncompress
    # SERIALIZATION_FAILURE (Envoy's codes); zlib shrinks the repetitive text and gives it back.
    assert (a, b, c, d, same) == ("0", "0", "1", "3", "same")
    assert 0 < int(size) < len(text) // 4


@pytest.mark.parametrize("action", ["trap", "oob", "loop"])
def test_trap_and_runaway_fail_closed_and_the_proxy_lives(switchyard, upstream, host_test_wasm,
                                                          action):
    sy = start(switchyard, upstream, host_test_wasm, workers=1, callback_deadline_ms=200)
    resp = get(sy, action)
    assert resp.status == 503
    assert sy.proc.poll() is None
    name = "wasm_deadline_exceeded" if action == "loop" else "wasm_traps"
    until(lambda: stat(sy, name) == 1, what=name)
    # FAIL_CLOSED: the failed VM keeps failing requests closed, and the worker goes on.
    assert get(sy).status == 503
    assert stat(sy, "wasm_failed_streams") >= 2
    assert not log_has(sy, "crash")


def test_memory_limit_stops_growth(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm, workers=1, memory_limit_mb=8)
    resp = get(sy, "oom")
    assert resp.status == 503
    until(lambda: log_has(sy, "memory.grow refused after"))
    assert sy.proc.poll() is None


def test_fail_open_passes_requests_through(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm, workers=1, failure_policy="FAIL_OPEN")
    # As in Envoy, the stream whose callback trapped fails whatever the policy; FAIL_OPEN lets
    # the later ones through without the plugin.
    assert get(sy, "trap").status == 503
    resp = get(sy)
    assert resp.status == 200
    assert resp.header("x-wasm") is None


def test_fail_reload_starts_a_new_vm(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm, workers=1, failure_policy="FAIL_RELOAD")
    assert get(sy, "trap").status == 503
    resp = get(sy)
    assert resp.status == 200
    assert resp.header("x-wasm") == "host_test"
    until(lambda: stat(sy, "wasm_vm_reloads") == 1)


def test_shared_data_cas_across_workers(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm, workers=2)
    # The first increment creates the key, and a create cannot be conditional: cas 0 sets
    # unconditionally (as in Envoy), so two workers that both find the key absent would both
    # write 1. One request creates it; the concurrent ones then race on a real cas, each many
    # times so that both workers are between a get and its set at once on every build.
    assert echo_headers(get(sy, "shared").json(), "x-counter") == ["1"]
    n, k = 16, 500
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda _: get(sy, "shared", headers={"x-increments": str(k)}), range(n)))
    assert all(r.status == 200 for r in results), results
    # No lost update: the last request to finish saw every increment, and no two saw the same.
    last = sorted(int(echo_headers(r.json(), "x-counter")[0]) for r in results)
    assert last[-1] == 1 + n * k
    assert len(set(last)) == n


def test_queue_enqueue_reaches_on_queue_ready(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm)
    assert get(sy, "enqueue", headers={"x-item": "job-42"}).status == 200
    until(lambda: log_has(sy, "dequeued 'job-42'"))


def test_tick(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm, configuration="tick", workers=1)
    until(lambda: log_has(sy, "tick 3"))


def test_http_call_pauses_and_resumes(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm)
    resp = get(sy, "call")
    assert resp.status == 200, resp
    assert echo_headers(resp.json(), "x-call")[0].startswith("200 1 ")


def test_http_call_reply_reads_and_edits_the_paused_request(switchyard, upstream, host_test_wasm):
    # The Go and Rust SDKs' http_auth_random pattern: pause in on_http_request_headers, call
    # out, and in the reply's callback make the request the effective context, read and change
    # its headers, and resume it.
    sy = start(switchyard, upstream, host_test_wasm)
    resp = get(sy, "call", path="/echo?from=call")
    assert resp.status == 200, resp
    assert echo_headers(resp.json(), "x-call-saw-path") == ["/echo?from=call"]


def test_grpc_call_to_a_grpc_server(switchyard, upstream, host_test_wasm):
    from test_grpc import GrpcServer
    server = GrpcServer()
    try:
        sy = start(switchyard, upstream, host_test_wasm,
                   clusters=[cluster("grpc", server.port, protocol="http2")])
        resp = get(sy, "grpc")
        assert resp.status == 200, resp
        # The server's Unary echoes the request: status 0 (OK) and the message.
        assert echo_headers(resp.json(), "x-grpc") == ["0 hello grpc"]
    finally:
        server.stop()


def test_close_stream_resets(switchyard, upstream, host_test_wasm):
    sy = start(switchyard, upstream, host_test_wasm)
    with pytest.raises(Exception):
        get(sy, "close")
    assert get(sy).status == 200


def test_network_filter_sees_and_edits_the_bytes(switchyard, upstream, host_test_wasm):
    module_file("wasm")
    net = wasm_filter(host_test_wasm)
    net["filter"] = "wasm_network"
    sy = switchyard({"module_path": [str(MODULES)],
                     "listeners": [{"name": "tcp", "tcp_proxy": {"cluster": "backend"},
                                    "network_filters": [net]}],
                     "clusters": [cluster("backend", upstream.port)]})
    req = raw_request("GET", "/echo", headers=[("Connection", "close")])
    with RawClient(sy.port("tcp")) as c:
        c.send(req)
        data = c.read_until_close()
    assert data.startswith(b"WASM:HTTP/1.1 200 "), data[:100]
    assert data.count(b"WASM:") == 1
    until(lambda: log_has(sy, f"downstream data {len(req)} bytes"))
    until(lambda: log_has(sy, "new connection") and log_has(sy, "closed (peer 2)"))


def test_network_pause_holds_the_bytes_until_continue_stream(switchyard, host_test_wasm):
    # Pause from proxy_on_downstream_data holds the client's bytes (they used to be dropped);
    # proxy_continue_stream(DOWNSTREAM) from another connection's context passes them on, in
    # order; proxy_close_stream(DOWNSTREAM) ends that other connection after what it has queued,
    # with a FIN each way (Envoy closes with FlushWrite). One worker: one VM for both.
    module_file("wasm")
    net = wasm_filter(host_test_wasm)
    net["filter"] = "wasm_network"
    peer = Peer()
    try:
        sy = switchyard({"module_path": [str(MODULES)], "workers": 1,
                         "listeners": [{"name": "tcp", "tcp_proxy": {"cluster": "backend"},
                                        "network_filters": [net]}],
                         "clusters": [cluster("backend", peer.port)]})
        with RawClient(sy.port("tcp")) as a, RawClient(sy.port("tcp")) as b:
            up_a = peer.accept()
            a.send(b"HOLD-one")
            until(lambda: log_has(sy, "holding 8 bytes"), what="connection a paused")
            a.send(b"-two")
            # Called again with the held bytes and the new ones, which it pauses too.
            until(lambda: log_has(sy, "holding 12 bytes"), what="the next bytes paused too")
            assert peer.nothing_readable(up_a), "paused bytes must not reach the upstream"
            up_b = peer.accept()
            b.send(b"RELEASE")
            assert peer.read_exact(12, up_a) == b"HOLD-one-two"
            assert b.read_until_close() == b"", "proxy_close_stream ends the other connection"
            assert up_b.recv(1) == b""
            until(lambda: log_has(sy, ": 0 0 0, closed"), what="the calls' status codes")
            # Continued: the rest of connection a flows, and its end is passed on as a FIN.
            a.send(b"-three")
            assert peer.read_exact(6, up_a) == b"-three"
            a.sock.shutdown(socket.SHUT_WR)
            assert up_a.recv(1) == b""
            up_a.sendall(b"reply")
            assert a.read_exact(5) == b"WASM:"
            assert a.read_exact(5) == b"reply"
    finally:
        peer.close()


def test_configure_false_is_a_config_error(switchyard, upstream, host_test_wasm):
    sy = switchyard(proxy_config(upstream, host_test_wasm, configuration="reject"), start=False)
    sy.start(wait_ready=False)
    assert sy.wait_exit() != 0
    text = Path(sy.log_path).read_text()
    assert "proxy_on_configure returned false" in text
    assert "switchyard.yaml:" in text


def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def wasm_binary(types, imports=(), funcs=(), exports=()):
    """A minimal .wasm: TYPES as (params, results) byte strings of value types, IMPORTS as
    (module, name, type), FUNCS as the type index of each defined function (empty bodies),
    EXPORTS as (name, function index)."""
    def vec(items):
        return leb(len(items)) + b"".join(items)

    def name(s):
        return leb(len(s)) + s.encode()

    def section(sid, body):
        return bytes([sid]) + leb(len(body)) + body

    out = b"\0asm\x01\0\0\0"
    out += section(1, vec([b"\x60" + vec([bytes([t]) for t in p]) + vec([bytes([t]) for t in r])
                           for p, r in types]))
    if imports:
        out += section(2, vec([name(m) + name(n) + b"\x00" + leb(t) for m, n, t in imports]))
    out += section(3, vec([leb(t) for t in funcs]))
    out += section(7, vec([name(n) + b"\x00" + leb(i) for n, i in exports]))
    out += section(10, vec([b"\x02\x00\x0b" for _ in funcs]))
    return out


I32, V128 = 0x7F, 0x7B


# Wasmtime's C API aborts the process when asked the kind of a v128 (or GC reference) value
# type, which the module must know for the imports it stubs and the callbacks it calls. Found by
# the wasm_load fuzz target: such a module is refused with a message, and the proxy lives.
@pytest.mark.parametrize("case", ["import", "export"])
def test_a_v128_signature_at_the_boundary_is_refused_not_an_abort(switchyard, upstream,
                                                                   host_test_wasm, tmp_path,
                                                                   case):
    if case == "import":
        bad = wasm_binary(types=[((), ()), ((), (V128,))], imports=[("env", "returns_v128", 1)],
                          funcs=[0], exports=[("proxy_abi_version_0_2_1", 1)])
        what = "imported function env.returns_v128"
    else:
        bad = wasm_binary(types=[((), ()), ((I32, V128), ())], funcs=[0, 1],
                          exports=[("proxy_abi_version_0_2_1", 0),
                                   ("proxy_on_request_headers", 1)])
        what = "exported function proxy_on_request_headers"
    path = tmp_path / f"v128-{case}.wasm"
    path.write_bytes(bad)

    sy = switchyard(proxy_config(upstream, path, cache_dir=str(tmp_path / "c")), start=False)
    sy.start(wait_ready=False)
    assert sy.wait_exit() == 1  # a config error, not SIGABRT
    text = Path(sy.log_path).read_text()
    assert what in text and "v128" in text, text
    assert "switchyard.yaml:" in text

    # The same file given to a running proxy by a reload: refused, and the proxy serves on.
    good = start(switchyard, upstream, host_test_wasm, tmp_cache=tmp_path / "c2")
    assert get(good).status == 200
    good.write_config(proxy_config(upstream, path, cache_dir=str(tmp_path / "c2")))
    assert good.reload().status != 200
    assert good.proc.poll() is None
    assert get(good).status == 200


def test_compiled_code_is_cached_by_sha256(switchyard, upstream, host_test_wasm, tmp_path):
    cache = tmp_path / "cache"
    sy = start(switchyard, upstream, host_test_wasm, tmp_cache=cache)
    digest = hashlib.sha256(host_test_wasm.read_bytes()).hexdigest()
    entries = [p.name for p in cache.iterdir()]
    assert entries == [f"{digest}-wasmtime-50.0.1.cwasm"]
    assert get(sy).status == 200
    # A damaged entry is not trusted: the module compiles again and replaces it.
    (cache / entries[0]).write_bytes(b"not compiled code")
    sy.stop()
    sy2 = start(switchyard, upstream, host_test_wasm, tmp_cache=cache)
    assert get(sy2).status == 200
    assert (cache / entries[0]).stat().st_size > 1000


@pytest.mark.parametrize("how", ["module_reload", "watch"])
def test_wasm_swap_under_load_loses_nothing(switchyard, upstream, tmp_path, how):
    wasm = compile_filter(tmp_path / "filter.wasm", "1")
    extra = {"watch": True} if how == "watch" else {}
    sy = start(switchyard, upstream, wasm, tmp_cache=tmp_path / "cache", **extra)
    assert get(sy).header("x-wasm-variant") == "1"
    # The new .wasm replaces the file atomically. A module reload makes a new generation whose
    # filter configs read it; a watched file is re-read by the module itself. Either way
    # streams in flight finish on the old VMs.
    staged = compile_filter(tmp_path / "staged.wasm", "2")
    stop = False
    failures, variants = [], []

    def load():
        while not stop:
            try:
                r = get(sy)
                variants.append(r.header("x-wasm-variant"))
                if r.status != 200:
                    failures.append(r.status)
            except Exception as e:  # noqa: BLE001 - any failure counts
                failures.append(repr(e))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(load) for _ in range(4)]
        until(lambda: len(variants) > 50, what="load before the swap")
        staged.replace(wasm)
        if how == "module_reload":
            resp = reload_module(sy, "wasm")
            assert resp.status == 200, resp
        until(lambda: variants[-8:] == ["2"] * 8, what="requests on the new .wasm")
        stop = True
        for f in futures:
            f.result()
    assert failures == []
    assert get(sy).header("x-wasm-variant") == "2"
    if how == "watch":
        assert log_has(sy, f"reloaded {wasm}")
    else:
        # The loader keeps the previous generation for rollback and unloads the one before:
        # the module keeps nothing (threads, thread_locals) that would pin its copy in memory.
        assert reload_module(sy, "wasm").status == 200
        until(lambda: loaded_generations(module_entry(sy, "wasm")) == 2,
              what="generation 1 unloaded")
        assert not log_has(sy, "still mapped after dlclose")


def test_watched_file_that_does_not_start_keeps_the_old_version(switchyard, upstream, tmp_path,
                                                                host_test_wasm):
    wasm = tmp_path / "filter.wasm"
    wasm.write_bytes(host_test_wasm.read_bytes())
    sy = start(switchyard, upstream, wasm, watch=True)
    assert get(sy).header("x-wasm") == "host_test"
    broken = tmp_path / "broken.wasm"
    broken.write_bytes(b"\0asm\1\0\0\0 not a module")
    broken.replace(wasm)
    until(lambda: log_has(sy, "is refused, the running one stays"))
    assert get(sy).header("x-wasm") == "host_test"


@pytest.mark.crashes_on_purpose
def test_wasmtime_leaves_the_crash_handler_in_place(switchyard, upstream, host_test_wasm):
    """Wasmtime runs with signal-based traps off: its out-of-bounds access is a trap (503), and
    a native module's SIGSEGV afterwards is still caught and recorded by the proxy's crash
    handler, not by a handler Wasmtime put in its place."""
    # fx_segfault first: the wasm filter fails its VM closed, and its 503s would keep the
    # crashing request from fx_segfault.
    cfg = proxy_config(upstream, host_test_wasm, workers=1, before=[{"module": "fx_segfault"}])
    cfg["modules"] = [{"name": "fx_segfault", "path": str(fixture_file("segfault_v2"))}]
    sy = switchyard(cfg)
    assert get(sy, "oob").status == 503
    assert get(sy, "trap").status == 503
    with RawClient(sy.port("ingress"), timeout=30) as c:
        c.send(raw_request("GET", "/echo", headers=[("x-action", "plain"), ("x-crash", "headers")]))
        assert c.read_until_close() == b""
    sy.wait_exit(30)
    text = Path(sy.log_path).read_text(errors="replace")
    assert "module fx_segfault generation 1" in text and "signal 11 (SIGSEGV)" in text, text
