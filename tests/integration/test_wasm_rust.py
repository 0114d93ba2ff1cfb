"""The Rust filter (tests/integration/wasm/rust, on crates.io's proxy-wasm 0.2.1, compiled by
Debian's rustc 1.63 for wasm32-wasi) behind Envoy 1.40 and behind Switchyard's wasm module.

This SDK exports proxy_abi_version_0_2_1 and proxy_on_memory_allocate, and starts as a WASI
reactor through _initialize, which runs its main! block.
"""
from harness import until
from wasmutil import deploy, plugin, pool, rust_filter  # noqa: F401 (fixtures)


def test_hello_is_answered_by_the_plugin(deploy):
    d = deploy("plain", [plugin(rust_filter(), "rust_filter")])
    resp = d.request("GET", "/hello")
    assert resp.status == 200, resp
    assert resp.body == b"Hello, World!\n"
    assert resp.header("hello") == "World"
    assert resp.header("powered-by") == "proxy-wasm"
    assert d.backend.stats()["paths"].get("/hello") is None, "the upstream is not asked"


def test_configured_response_header_and_on_log(deploy):
    d = deploy("configured",
               [plugin(rust_filter(), "rust_filter", configuration="the secret to life")])
    for _ in range(3):
        resp = d.request("GET", "/echo")
        assert resp.status == 200, resp
        assert resp.all("custom-header") == ["the secret to life"]
    # Also on the plugin's own reply.
    assert d.request("GET", "/hello").all("custom-header") == ["the secret to life"]
    until(lambda: d.metric("rust_filter_completed") == 4, what="on_log ran for all 4 streams")
