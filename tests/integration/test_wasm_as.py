"""The AssemblyScript filter (tests/integration/wasm/as, on npm's @solo-io/proxy-runtime and
the assemblyscript compiler it pins) behind Envoy 1.40 and behind Switchyard's wasm module.

This SDK exports proxy_abi_version_0_2_0 and `malloc`, ends a failed assertion with WASI
proc_exit, and picks its root context by asking the host for the property plugin_root_id: one
.wasm carries three filters (add_header, deny_path, auth) and the root_id chooses.
"""
from wasmutil import as_filter, deploy, echo_header, plugin, pool  # noqa: F401 (fixtures)


def add_header(configuration=None):
    return plugin(as_filter(), "add_header", root_id="add_header", configuration=configuration)


def deny_path(path):
    return plugin(as_filter(), "deny_path", root_id="deny_path", configuration=path)


def test_add_header_without_configuration(deploy):
    d = deploy("plain", [add_header()])
    resp = d.request("POST", "/echo", body=b"abc")
    assert resp.status == 200, resp
    assert resp.all("hello") == ["world!"]
    assert echo_header(resp, "x-as-method") == ["POST"]
    assert resp.json()["body_length"] == 3


def test_add_header_with_configuration(deploy):
    d = deploy("configured", [add_header("foo")])
    resp = d.request("GET", "/echo")
    assert resp.status == 200, resp
    assert resp.all("hello") == ["foo"]


def test_root_id_picks_the_filter(deploy):
    """Both root contexts from one .wasm, in one chain: deny_path answers its path itself,
    and that local reply still passes add_header's response callback (it comes first)."""
    d = deploy("both", [add_header(), deny_path("/deny")])
    resp = d.request("GET", "/deny")
    assert resp.status == 403, resp
    assert resp.body == b"denied by assemblyscript\n"
    assert resp.header("x-as-denied") == "1"
    assert resp.all("hello") == ["world!"]
    assert d.backend.stats()["paths"].get("/deny") is None

    resp = d.request("GET", "/echo")
    assert resp.status == 200, resp
    assert resp.header("x-as-denied") is None
    assert resp.all("hello") == ["world!"]


def test_auth_callout_decides(deploy):
    """The callout goes to the same upstream: /status?code=200 answers 200 (the request goes
    on), /status?code=201 answers 201 (the plugin refuses it)."""
    d = deploy("auth", [plugin(as_filter(), "auth", root_id="auth")])
    resp = d.request("GET", "/status?code=200")
    assert resp.status == 200, resp
    assert d.backend.stats()["paths"]["/status"] == 2, "the callout, then the request itself"
    resp = d.request("GET", "/status?code=201")
    assert resp.status == 403, resp
    assert resp.body == b"denied by callout\n"
    assert d.backend.stats()["paths"]["/status"] == 3, "the callout only"
