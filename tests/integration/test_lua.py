"""The Lua filter module (modules/lua/, build/modules/libsy_lua.so) in the real proxy, driven by
real clients: Envoy's script API at its edges (0-based indexes, joined values, dead objects,
unexpected yields, trailers), the limits (instruction budget, memory cap, buffered body),
per-route configs, httpCall against real clusters, fail-open with its counters, scripts refused
at config time, what goes beyond Envoy (ctx, sharedDict, respond() on responses, require,
watched scripts, module reload, shared VMs) and the LuaJIT compat prelude.

Every script result is observed from outside: in the headers upstream.py's /echo saw, in a
respond() body, in the response, in GET /stats or in the proxy's log. Nothing sleeps to
synchronise: waits poll a condition until a deadline (harness.until), and slow upstream
behaviour is an upstream.py hold released by the test.
"""
import concurrent.futures
import os
import re
import threading
import time
from pathlib import Path

import pytest

from harness import (TIME_SCALE, RawClient, chunked, cluster, echo_headers, free_port,
                     raw_request, request, run_switchyard, sha256, stream_payload, to_cluster,
                     until)
from modules_util import MODULES, module_file, reload_module

# ------------------------------------------------------------------------------------------
# Config and observation helpers


def lua_filter(script=None, **config):
    """The lua filter entry; SCRIPT becomes default_source_code.inline_string."""
    cfg = dict(config)
    if script is not None:
        cfg["default_source_code"] = {"inline_string": script}
    return {"module": "lua", "config": cfg}


def listener(name, script=None, routes=None, listener_limits=None, **config):
    """A listener running SCRIPT with the lua filter CONFIG (its `limits` are the Lua ones;
    LISTENER_LIMITS are the listener's)."""
    out = {"name": name, "filters": [lua_filter(script, **config)],
           "routes": routes or [to_cluster("all", {"prefix": "/"}, "backend")]}
    if listener_limits:
        out["limits"] = listener_limits
    return out


def lua_config(upstream_port, *listeners, clusters=(), workers=None):
    cfg = {"module_path": [str(MODULES)], "listeners": list(listeners),
           "clusters": [cluster("backend", upstream_port), *clusters]}
    if workers is not None:
        cfg["workers"] = workers
    return cfg


def start(switchyard, config, name="switchyard"):
    module_file("lua")  # a clear failure when the module has not been built
    return switchyard(config, name=name)


def one_script(switchyard, upstream, script, workers=None, **config):
    """A proxy with one listener `ingress` running SCRIPT (filter CONFIG) before UPSTREAM."""
    return start(switchyard, lua_config(upstream.port, listener("ingress", script, **config),
                                        workers=workers))


def stat_name(name, prefix=None):
    return "module.lua." + (f"{prefix}." if prefix else "") + name


def lua_stat(sy, name, prefix=None):
    """The value of module.lua.[PREFIX.]NAME, 0 while it does not exist."""
    return sy.stats().get(stat_name(name, prefix)) or 0


def wait_stat(sy, name, expected, prefix=None, timeout=10, at_least=False):
    """Waits until the counter reads EXPECTED (or more, with AT_LEAST); counters may move just
    after a response. Returns the value."""
    key = stat_name(name, prefix)
    seen = {}

    def check():
        seen["value"] = sy.stats().get(key) or 0
        return seen["value"] >= expected if at_least else seen["value"] == expected

    want = f"{'>= ' if at_least else ''}{expected}"
    try:
        until(check, timeout, what=f"{key} {want}")
    except AssertionError as e:
        raise AssertionError(f"{key}: expected {want}, last seen {seen.get('value')!r}") from e
    return seen["value"]


def log_text(sy):
    return Path(sy.log_path).read_text(errors="replace")


def wait_log(sy, text, timeout=10):
    until(lambda: text in log_text(sy), timeout, what=f"{text!r} in the proxy's log")


def echo(port, method="GET", path="/echo", body=None, headers=None):
    r = request(port, method, path, body=body, headers=headers)
    assert r.status == 200, r
    return r.json()


def one(echo_json, name):
    """The single value of NAME the upstream saw (None if absent); fails on several."""
    values = echo_headers(echo_json, name)
    assert len(values) <= 1, f"{name} more than once: {values}"
    return values[0] if values else None


def lines(body):
    """A respond() body of "key=value" lines as a dict."""
    out = {}
    for line in body.decode("latin-1").splitlines():
        k, sep, v = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        out[k] = v
    return out


def write_atomically(path, text):
    """Replaces PATH the way a deploy does: a temporary file beside it renamed over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def raw_exchange(port, data, method="GET"):
    with RawClient(port) as c:
        c.send(data)
        return c.read_response(method)


def spread_requests(port, count, path="/echo", headers=None, threads=16):
    """COUNT requests, each on a fresh connection, from THREADS threads: SO_REUSEPORT spreads
    the connections over the workers."""
    def go(i):
        return request(port, "GET", f"{path}{'&' if '?' in path else '?'}i={i}",
                       headers=headers)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(go, range(count)))


# ==========================================================================================
# 1. Objects at their edges


HEADER_MATRIX = r"""
function envoy_on_request(h)
  local hd = h:headers()
  local function s(v) if v == nil then return "nil" end return v end
  local out = {}
  out[#out + 1] = "idx0=" .. s(hd:getAtIndex("x-multi", 0))
  out[#out + 1] = "idx1=" .. s(hd:getAtIndex("x-multi", 1))
  out[#out + 1] = "idx2=" .. s(hd:getAtIndex("X-Multi", 2))
  out[#out + 1] = "idx3=" .. s(hd:getAtIndex("x-multi", 3))
  out[#out + 1] = "idxneg=" .. s(hd:getAtIndex("x-multi", -1))
  out[#out + 1] = "idxabsent=" .. s(hd:getAtIndex("x-absent", 0))
  out[#out + 1] = "num=" .. hd:getNumValues("x-multi")
  out[#out + 1] = "numcase=" .. hd:getNumValues("X-MULTI")
  out[#out + 1] = "numabsent=" .. hd:getNumValues("x-absent")
  out[#out + 1] = "get=" .. s(hd:get("x-multi"))
  out[#out + 1] = "getcase=" .. s(hd:get("X-Multi"))
  out[#out + 1] = "getabsent=" .. s(hd:get("x-absent"))
  local n, vals = 0, {}
  for k, v in pairs(hd) do
    if k == "x-multi" then n = n + 1; vals[#vals + 1] = v end
  end
  out[#out + 1] = "pairs=" .. n
  out[#out + 1] = "pairvals=" .. table.concat(vals, "|")
  h:respond({[":status"] = "200"}, table.concat(out, "\n"))
end
"""


def test_header_index_count_join_and_pairs(upstream, switchyard):
    sy = one_script(switchyard, upstream, HEADER_MATRIX)
    r = raw_exchange(sy.port("ingress"), raw_request(
        "GET", "/echo", [("X-Multi", "a"), ("x-multi", "b"), ("X-MULTI", "c")]))
    assert r.status == 200, r
    assert lines(r.body) == {
        "idx0": "a", "idx1": "b", "idx2": "c", "idx3": "nil", "idxneg": "nil", "idxabsent": "nil",
        "num": "3", "numcase": "3", "numabsent": "0",
        "get": "a,b,c", "getcase": "a,b,c", "getabsent": "nil",
        "pairs": "3", "pairvals": "a|b|c",
    }


MODIFY_WHILE_ITERATING = r"""
function envoy_on_request(h)
  local hd = h:headers()
  if hd:get("x-case") == "pcall" then
    local ok, err = pcall(function()
      for k, v in pairs(hd) do hd:add("x-added", "1") end
    end)
    h:respond({[":status"] = "200"}, "ok=" .. tostring(ok) .. "\nerr=" .. tostring(err))
  else
    for k, v in pairs(hd) do hd:remove("x-case") end
  end
end
"""


def test_header_modified_while_iterating_is_an_error(upstream, switchyard):
    sy = one_script(switchyard, upstream, MODIFY_WHILE_ITERATING)
    port = sy.port("ingress")
    r = request(port, "GET", "/echo", headers={"x-case": "pcall"})
    assert r.status == 200, r
    got = lines(r.body)
    assert got["ok"] == "false", got
    assert "header map cannot be modified while iterating" in got["err"], got
    # Uncaught: logged and counted, and the request goes on unmodified (fail-open).
    e = echo(port, headers={"x-case": "uncaught"})
    assert one(e, "x-case") == "uncaught"
    wait_stat(sy, "errors", 1)
    wait_log(sy, "header map cannot be modified while iterating")


HEADER_LIMITS = r"""
function envoy_on_request(h)
  local hd = h:headers()
  local n = tonumber(hd:get("x-count") or "0")
  local big = tonumber(hd:get("x-big") or "0")
  local ok, err = pcall(function()
    for i = 1, n do hd:add("x-many-" .. i, "v") end
    if big > 0 then hd:replace("x-big", string.rep("b", big)) end
  end)
  if not ok then h:respond({[":status"] = "200"}, "ok=false\nerr=" .. tostring(err)) end
end
"""


def test_headers_over_the_listener_limits_are_an_error(upstream, switchyard):
    """add/replace that would take the headers past the listener's limits.headers or
    limits.header_bytes fail (the host's SY_ERR_TOO_LARGE), as a client's headers would."""
    sy = one_script(switchyard, upstream, HEADER_LIMITS,
                    listener_limits={"headers": 20, "header_bytes": "4KiB"})
    port = sy.port("ingress")
    e = echo(port, headers={"x-count": "5", "x-big": "1000"})
    assert one(e, "x-many-5") == "v" and len(one(e, "x-big")) == 1000
    for extra in ({"x-count": "30"}, {"x-big": "5000"}):
        r = request(port, "GET", "/echo", headers=extra)
        assert r.status == 200 and r.body.startswith(b"ok=false"), (extra, r)
        assert "over the listener's limits" in lines(r.body)["err"], (extra, r.body)
    assert upstream.stats()["requests_total"] == 1


def test_headers_modified_after_continue_is_an_error(upstream, switchyard):
    # bodyChunks() lets the headers go on; a header edit after that is refused.
    script = r"""
function envoy_on_request(h)
  h:headers():add("x-before", "1")
  for chunk in h:bodyChunks() do end
  h:headers():add("x-late", "1")
end
"""
    sy = one_script(switchyard, upstream, script)
    e = echo(sy.port("ingress"), "POST", body=b"hello", headers={"content-type": "text/plain"})
    assert one(e, "x-before") == "1"
    assert one(e, "x-late") is None
    assert e["body_length"] == 5
    wait_stat(sy, "errors", 1)
    wait_log(sy, "header map can no longer be modified")


BUFFER_BOUNDS = r"""
function envoy_on_request(h)
  local b = h:body()
  local out = {}
  out[#out + 1] = "len=" .. b:length()
  out[#out + 1] = "head=" .. b:getBytes(0, 5)
  out[#out + 1] = "tail=" .. b:getBytes(6, 5)
  out[#out + 1] = "empty=[" .. b:getBytes(11, 0) .. "]"
  for _, a in ipairs({{5, 7}, {-1, 2}, {0, -1}, {12, 0}}) do
    local ok, err = pcall(b.getBytes, b, a[1], a[2])
    out[#out + 1] = "err" .. a[1] .. "," .. a[2] .. "=" .. tostring(ok) .. ":" .. tostring(err)
  end
  h:respond({[":status"] = "200"}, table.concat(out, "\n"))
end
"""


def test_buffer_get_bytes_zero_based_and_bounds(upstream, switchyard):
    sy = one_script(switchyard, upstream, BUFFER_BOUNDS)
    r = request(sy.port("ingress"), "POST", "/echo", body=b"hello world")
    assert r.status == 200, r
    got = lines(r.body)
    assert (got["len"], got["head"], got["tail"], got["empty"]) == ("11", "hello", "world", "[]")
    text = "index/length must be >= 0 and (index + length) must be <= buffer size"
    for key in ("err5,7", "err-1,2", "err0,-1", "err12,0"):
        assert got[key].startswith("false:") and text in got[key], (key, got[key])


BINARY = b"a\x00b\x00\xffc"


def test_set_bytes_binary_round_trips_and_fixes_content_length(upstream, switchyard):
    lua_binary = r'"a\0b\0\255c"'
    request_side = f"""
function envoy_on_request(h)
  local n = h:body():setBytes({lua_binary})
  h:headers():add("x-set", n)
end
"""
    response_side = f"""
function envoy_on_response(h)
  local n = h:body():setBytes({lua_binary})
  h:headers():add("x-set", n)
end
"""
    sy = start(switchyard, lua_config(upstream.port, listener("req", request_side),
                                      listener("resp", response_side)))
    e = echo(sy.port("req"), "POST", body=b"the original, longer body")
    assert e["body_length"] == len(BINARY) and e["body_sha256"] == sha256(BINARY), e
    assert one(e, "content-length") == str(len(BINARY))
    assert one(e, "x-set") == str(len(BINARY))
    # Response side, from a Content-Length response and from a chunked one.
    for path in ("/echo", "/stream?chunks=3&size=100"):
        r = raw_exchange(sy.port("resp"), raw_request("GET", path))
        assert r.status == 200, r
        assert r.body == BINARY, (path, r)
        assert r.header("x-set") == str(len(BINARY)), (path, r.headers)
        assert r.all("content-length") in ([], [str(len(BINARY))]), (path, r.headers)


def test_body_chunk_dead_after_next_iteration(upstream, switchyard):
    script = r"""
function envoy_on_response(h)
  local saved
  for chunk in h:bodyChunks() do
    if saved then saved:length() end
    saved = chunk
  end
end
"""
    sy = one_script(switchyard, upstream, script)
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/stream?chunks=3&size=10&hold=chunks"))
        head = c.read_head()
        assert head.status == 200, head
        first = b""
        while len(first) < 10:  # the first chunk went through the script
            first += c.read_chunk()
        assert first == b"a" * 10
        upstream.release("chunks")
        rest = b""
        while True:
            data = c.read_chunk()
            if not data:
                break
            rest += data
    # The script failed on the second chunk; the stream went on unmodified.
    assert rest == b"b" * 10 + b"c" * 10
    wait_stat(sy, "errors", 1)
    wait_log(sy, "object used outside of proper scope")


def test_handle_kept_in_a_global_is_dead_in_the_next_request(upstream, switchyard):
    script = r"""
function envoy_on_request(h)
  local previous = saved_handle
  saved_handle = h
  if previous == nil then
    h:respond({[":status"] = "200"}, "stored")
  end
  local ok, err = pcall(function() return previous:headers() end)
  h:respond({[":status"] = "200"}, tostring(ok) .. ":" .. tostring(err))
end
"""
    # One worker: both requests meet the same Lua state.
    sy = one_script(switchyard, upstream, script, workers=1)
    port = sy.port("ingress")
    assert request(port, "GET", "/echo").body == b"stored"
    r = request(port, "GET", "/echo")
    assert r.status == 200, r
    assert r.body.startswith(b"false:") and b"object used outside of proper scope" in r.body, r


def test_coroutine_yield_is_an_unexpected_yield(upstream, switchyard):
    script = r"""
function envoy_on_request(h)
  coroutine.yield()
  h:headers():add("x-after-yield", "1")
end
"""
    sy = one_script(switchyard, upstream, script)
    e = echo(sy.port("ingress"))
    assert one(e, "x-after-yield") is None
    wait_stat(sy, "errors", 1)
    wait_log(sy, "script performed an unexpected yield")


def test_trailers_nil_without_and_readable_with_chunked_trailers(upstream, switchyard):
    request_side = r"""
function envoy_on_request(h)
  local b = h:body()
  local t = h:trailers()
  if t then t:add("x-lua-trailer", "added") end
  local hd = h:headers()
  hd:add("x-body", b and b:length() or "nil")
  hd:add("x-trailer", t and (t:get("x-tr") or "absent") or "nil")
end
"""
    response_side = r"""
function envoy_on_response(h)
  h:body()
  local t = h:trailers()
  if t then t:add("x-lua-trailer", "added") end
  h:headers():add("x-trailer", t and (t:get("x-extra") or "absent") or "nil")
end
"""
    sy = start(switchyard, lua_config(upstream.port, listener("req", request_side),
                                      listener("resp", response_side)))
    port = sy.port("req")
    e = echo(port)  # no body at all
    assert (one(e, "x-body"), one(e, "x-trailer")) == ("nil", "nil"), e["headers"]
    e = echo(port, "POST", body=b"12345")  # a body without trailers
    assert (one(e, "x-body"), one(e, "x-trailer")) == ("5", "nil"), e["headers"]
    r = raw_exchange(port, raw_request(
        "POST", "/echo", [("Transfer-Encoding", "chunked")],
        chunked([b"hello ", b"world"], trailers=[("x-tr", "from-client")])))
    assert r.status == 200, r
    e = r.json()
    assert (one(e, "x-body"), one(e, "x-trailer")) == ("11", "from-client"), e["headers"]
    assert ["x-lua-trailer", "added"] in [[n.lower(), v] for n, v in e["trailers"]], e
    # Response side: upstream.py's /trailers ends with x-checksum and x-extra.
    r = raw_exchange(sy.port("resp"), raw_request("GET", "/trailers"))
    assert r.status == 200 and r.body == b"hello from trailers\n", r
    assert r.header("x-trailer") == "yes", r.headers
    assert r.trailer("x-lua-trailer") == "added", r.trailers
    r = raw_exchange(sy.port("resp"), raw_request("GET", "/echo"))
    assert r.header("x-trailer") == "nil", r.headers


# ==========================================================================================
# 2. Limits

LIMITS_SCRIPT = r"""
function envoy_on_request(h)
  local mode = h:headers():get("x-mode")
  if mode == "spin" then
    while true do end
  elseif mode == "grow" then
    local t, i = {}, 0
    while true do
      i = i + 1
      t[i] = string.rep("x", 4096) .. i
    end
  elseif mode == "some" then
    local n = 0
    for i = 1, 1000 do n = n + i end
    h:headers():add("x-sum", n)
  end
  h:headers():add("x-lua", "ok")
end
function envoy_on_response(h)
  if h:headers():get(":status") == "299" then
    while true do end
  end
end
"""
LIMITS = {"instructions": 1000000, "memory": "16MiB"}


def test_instruction_budget_500_and_worker_goes_on(upstream, switchyard):
    # One worker, so the requests after the runaway one are served by that same worker.
    sy = one_script(switchyard, upstream, LIMITS_SCRIPT, workers=1, limits=LIMITS)
    port = sy.port("ingress")
    r = request(port, "GET", "/echo", headers={"x-mode": "spin"})
    assert r.status == 500, r
    wait_stat(sy, "budget_exceeded", 1)
    e = echo(port, headers={"x-mode": "some"})
    assert (one(e, "x-lua"), one(e, "x-sum")) == ("ok", "500500")
    # The response handler has the same budget.
    r = request(port, "GET", "/status?code=299")
    assert r.status == 500, r
    wait_stat(sy, "budget_exceeded", 2)
    assert request(port, "GET", "/echo", headers={"x-mode": "spin"}).status == 500
    wait_stat(sy, "budget_exceeded", 3)
    assert one(echo(port), "x-lua") == "ok"
    assert upstream.stats()["paths"].get("/echo") == 2, "a runaway request reached upstream"
    assert lua_stat(sy, "memory_exceeded") == 0
    assert sy.running()


def test_memory_cap_500_and_process_lives(upstream, switchyard):
    sy = one_script(switchyard, upstream, LIMITS_SCRIPT, workers=1, limits=LIMITS)
    port = sy.port("ingress")
    for n in (1, 2):  # twice: the state recovers after the first one
        r = request(port, "GET", "/echo", headers={"x-mode": "grow"})
        assert r.status == 500, r
        wait_stat(sy, "memory_exceeded", n)
        assert sy.running()
        for _ in range(3):
            assert one(echo(port, headers={"x-mode": "some"}), "x-sum") == "500500"
    assert lua_stat(sy, "budget_exceeded") == 0
    assert sy.admin("GET", "/ready").status == 200


def test_buffered_body_over_listener_limit_413_request_500_response(upstream, switchyard):
    request_side = r"""
function envoy_on_request(h)
  local b = h:body()
  h:headers():add("x-len", b and b:length() or 0)
end
"""
    response_side = r"""
function envoy_on_response(h)
  local b = h:body()
  h:headers():add("x-len", b and b:length() or 0)
end
"""
    limits = {"buffered_body": "64KiB"}
    sy = start(switchyard, lua_config(
        upstream.port, listener("req", request_side, listener_limits=limits),
        listener("resp", response_side, listener_limits=limits)))
    port = sy.port("req")
    big = b"x" * (128 * 1024)
    r = raw_exchange(port, raw_request("POST", "/echo", [("Content-Length", str(len(big)))],
                                       big))
    assert r.status == 413, r
    r = raw_exchange(port, raw_request("POST", "/echo", [("Transfer-Encoding", "chunked")],
                                       chunked([big[:40000], big[40000:]])))
    assert r.status == 413, r
    assert upstream.stats()["requests_total"] == 0, "a refused body reached upstream"
    e = echo(port, "POST", body=b"y" * 10000)
    assert one(e, "x-len") == "10000" and e["body_length"] == 10000
    # Responses: 160 KiB buffered -> 500; 4 KiB -> fine.
    r = request(sy.port("resp"), "GET", "/stream?chunks=40&size=4096")
    assert r.status == 500, r
    r = request(sy.port("resp"), "GET", "/stream?chunks=4&size=1024")
    assert r.status == 200 and r.body == stream_payload(4, 1024), r
    assert r.header("x-len") == "4096"


# ==========================================================================================
# 3. Per-route configs

PER_ROUTE_DEFAULT = r"""
function envoy_on_request(h)
  h:headers():add("x-code", "default")
  h:headers():add("x-who", h:filterContext():get("who") or "nil")
end
"""
PER_ROUTE_HELLO = r"""
function envoy_on_request(h) h:headers():add("x-code", "hello") end
"""
PER_ROUTE_CTX = r"""
function envoy_on_request(h)
  local fc = h:filterContext()
  h:headers():add("x-code", "ctx")
  h:headers():add("x-who", fc:get("who") or "nil")
  h:headers():add("x-other", fc:get("other") or "nil")
end
"""
PER_ROUTE_INLINE = r"""
function envoy_on_request(h) h:headers():add("x-code", "inline") end
"""


def by_header(name, value, per_filter):
    return to_cluster(name, {"prefix": "/", "headers": [{"name": "x-r", "exact": value}]},
                      "backend", per_filter={"lua": per_filter})


def test_per_route_disabled_named_inline_unknown_and_filter_context(upstream, switchyard):
    routes = [
        by_header("disabled", "disabled", {"disabled": True}),
        by_header("named", "named", {"name": "hello.lua"}),
        by_header("inline", "inline", {"source_code": {"inline_string": PER_ROUTE_INLINE}}),
        by_header("unknown", "unknown", {"name": "nope.lua"}),
        by_header("ctx", "ctx", {"name": "ctx.lua", "filter_context": {"who": "route"}}),
        to_cluster("all", {"prefix": "/"}, "backend"),
    ]
    sy = start(switchyard, lua_config(upstream.port, listener(
        "ingress", PER_ROUTE_DEFAULT, routes=routes,
        source_codes={"hello.lua": {"inline_string": PER_ROUTE_HELLO},
                      "ctx.lua": {"inline_string": PER_ROUTE_CTX}},
        filter_context={"who": "filter", "other": "from-filter"})))
    port = sy.port("ingress")

    def seen(route):
        e = echo(port, headers={"x-r": route} if route else None)
        return one(e, "x-code"), one(e, "x-who"), one(e, "x-other")

    assert seen(None) == ("default", "filter", None)
    assert seen("disabled") == (None, None, None)
    assert seen("named") == ("hello", None, None)
    assert seen("inline") == ("inline", None, None)
    assert seen("unknown") == (None, None, None)
    # The route's filter_context wins per key; the filter's fills the rest.
    assert seen("ctx") == ("ctx", "route", "from-filter")
    wait_stat(sy, "executions", 4)  # default, named, inline, ctx: the others ran nothing
    assert lua_stat(sy, "errors") == 0


# ==========================================================================================
# 4. httpCall to real clusters

HTTP_CALL = r"""
function envoy_on_request(h)
  local hd = h:headers()
  local mode = hd:get("x-call")
  if mode == nil then return end
  local cluster = hd:get("x-cluster") or "side"
  local path = hd:get("x-call-path") or "/echo"
  local timeout = tonumber(hd:get("x-timeout") or "5000")
  local req = {[":method"] = "POST", [":path"] = path, [":authority"] = "side.local",
               ["x-from-lua"] = "yes"}
  if mode == "async" then
    h:httpCall(cluster, req, "ping", timeout, true)
    hd:add("x-after", "async")
    return
  end
  local rh, body = h:httpCall(cluster, req, "hello world", timeout)
  hd = h:headers()
  hd:add("x-call-status", rh[":status"])
  if rh[":status"] == "200" then
    hd:add("x-call-ctype", rh["content-type"] or "none")
    hd:add("x-call-server", string.match(body, '"server": "([^"]*)"') or "?")
    hd:add("x-call-body-length", string.match(body, '"body_length": (%d+)') or "?")
    hd:add("x-call-saw-header",
           tostring(string.find(body, '"x-from-lua", "yes"', 1, true) ~= nil))
  else
    hd:add("x-call-body", body or "nil")
  end
end
"""


def http_call_proxy(switchyard, upstream, side, dead_port=None):
    clusters = [cluster("side", side.port)]
    if dead_port is not None:
        clusters.append(cluster("dead", dead_port, connect_timeout="1s"))
    return start(switchyard, lua_config(upstream.port, listener("ingress", HTTP_CALL),
                                        clusters=clusters))


def test_http_call_success_returns_headers_and_body(make_upstream, switchyard):
    backend, side = make_upstream("backend"), make_upstream("side")
    sy = http_call_proxy(switchyard, backend, side)
    e = echo(sy.port("ingress"), headers={"x-call": "sync"})
    got = {n: one(e, n) for n in ("x-call-status", "x-call-ctype", "x-call-server",
                                  "x-call-body-length", "x-call-saw-header")}
    assert got == {"x-call-status": "200", "x-call-ctype": "application/json",
                   "x-call-server": "side", "x-call-body-length": "11",
                   "x-call-saw-header": "true"}, got
    assert side.stats()["paths"] == {"/echo": 1}
    assert lua_stat(sy, "errors") == 0


CONNECT_FAILURE = ("upstream connect error or disconnect/reset before headers. reset reason: "
                   "remote connection failure")


def test_http_call_refused_endpoint_is_503_connect_failure(make_upstream, switchyard):
    # No error for the script: the answer Envoy's router gives a call it cannot connect.
    backend, side = make_upstream("backend"), make_upstream("side")
    sy = http_call_proxy(switchyard, backend, side, dead_port=free_port())
    e = echo(sy.port("ingress"), headers={"x-call": "sync", "x-cluster": "dead"})
    assert (one(e, "x-call-status"), one(e, "x-call-body")) == ("503", CONNECT_FAILURE)
    assert lua_stat(sy, "errors") == 0


def test_http_call_timeout_is_504_upstream_request_timeout(make_upstream, switchyard):
    # As Envoy's router answers a call that times out.
    backend, side = make_upstream("backend"), make_upstream("side")
    sy = http_call_proxy(switchyard, backend, side)
    try:
        # Long enough (scaled on a slower build) for the call to reach the side upstream first.
        e = echo(sy.port("ingress"), headers={
            "x-call": "sync", "x-call-path": "/slow?hold=callout",
            "x-timeout": str(int(300 * TIME_SCALE))})
        assert (one(e, "x-call-status"), one(e, "x-call-body")) == (
            "504", "upstream request timeout")
        # It failed by the timeout: the call did reach the side upstream, which holds it.
        until(lambda: side.stats()["paths"].get("/slow") == 1, what="the callout at side")
    finally:
        side.release("callout")
    assert lua_stat(sy, "errors") == 0


def test_http_call_asynchronous_is_fire_and_forget(make_upstream, switchyard):
    backend, side = make_upstream("backend"), make_upstream("side")
    sy = http_call_proxy(switchyard, backend, side)
    try:
        # The callout is held by the side upstream, yet the request is answered.
        e = echo(sy.port("ingress"), headers={"x-call": "async",
                                              "x-call-path": "/slow?hold=async"})
        assert one(e, "x-after") == "async"
        until(lambda: side.stats()["held"] == 1, what="the async callout held by side")
    finally:
        side.release("async")
    assert lua_stat(sy, "errors") == 0


def test_http_call_unknown_cluster_is_a_script_error(make_upstream, switchyard):
    backend, side = make_upstream("backend"), make_upstream("side")
    sy = http_call_proxy(switchyard, backend, side)
    e = echo(sy.port("ingress"), headers={"x-call": "sync", "x-cluster": "nowhere"})
    assert one(e, "x-call-status") is None  # the script stopped at the call; the request went on
    wait_stat(sy, "errors", 1)
    wait_log(sy, "http call cluster invalid")
    assert side.stats()["requests_total"] == 0


# ==========================================================================================
# 5. Fail-open and the counters

FAILING = r"""
function envoy_on_request(h)
  if h:headers():get("x-fail") == "request" then
    error("boom in request")
  end
end
function envoy_on_response(h)
  if h:headers():get(":status") == "201" then
    error("boom in response")
  end
  h:headers():add("x-resp-ran", "1")
end
"""


def test_script_errors_fail_open_and_are_counted(upstream, switchyard):
    sy = start(switchyard, lua_config(upstream.port, listener("plain", FAILING),
                                      listener("prefixed", FAILING, stat_prefix="foo")))
    port = sy.port("plain")
    r = request(port, "GET", "/echo")
    assert r.status == 200 and r.header("x-resp-ran") == "1", r
    wait_stat(sy, "executions", 2)  # one per handler invocation
    assert lua_stat(sy, "errors") == 0
    # A failing request handler: the request still reaches upstream, the response handler runs.
    r = request(port, "GET", "/echo", headers={"x-fail": "request"})
    assert r.status == 200 and r.header("x-resp-ran") == "1", r
    assert echo_headers(r.json(), "x-fail") == ["request"]
    wait_stat(sy, "errors", 1)
    wait_stat(sy, "executions", 4)
    # A failing response handler: the upstream's response passes as it was.
    r = request(port, "GET", "/status?code=201")
    assert r.status == 201 and r.body == b"status 201\n" and r.header("x-resp-ran") is None, r
    wait_stat(sy, "errors", 2)
    wait_stat(sy, "executions", 6)
    log = log_text(sy)
    assert re.search(r":\d+: boom in request", log), log[-2000:]
    assert re.search(r":\d+: boom in response", log), log[-2000:]
    # stat_prefix renames the counters of that filter only.
    r = request(sy.port("prefixed"), "GET", "/echo", headers={"x-fail": "request"})
    assert r.status == 200, r
    wait_stat(sy, "errors", 1, prefix="foo")
    wait_stat(sy, "executions", 2, prefix="foo")
    stats = sy.stats()
    assert stats.get(stat_name("errors")) == 2 and stats.get(stat_name("executions")) == 6, {
        k: v for k, v in stats.items() if k.startswith("module.lua.")}


def test_script_without_entry_points_counts_nothing(upstream, switchyard):
    sy = one_script(switchyard, upstream, "local x = 1\n")
    for _ in range(3):
        echo(sy.port("ingress"))
    # Each request has completed upstream and back; a handler invocation would have been
    # counted by the time its response left.
    stats = sy.stats()
    assert (stats.get(stat_name("executions")) or 0) == 0, stats
    assert (stats.get(stat_name("errors")) or 0) == 0, stats


# ==========================================================================================
# 6. Scripts refused at config time

SYNTAX_ERROR = "-- line 1\nfunction envoy_on_request(h)\n  h:headers():add('x' 'y')\nend\n"


def check_load_error(text, line):
    assert "script load error" in text, text
    assert re.search(rf"\]:{line}:", text), f"no line {line} in: {text}"
    assert re.search(r"switchyard\.yaml:\d+:\d+", text), f"no file:line:col in: {text}"


def start_refusing(switchyard, upstream, script, **config):
    """The config for SCRIPT written, the proxy not started."""
    module_file("lua")
    return switchyard(lua_config(upstream.port, listener("ingress", script, **config)),
                      start=False)


def test_syntax_error_refused_at_start_with_line_and_location(upstream, switchyard):
    sy = start_refusing(switchyard, upstream, SYNTAX_ERROR)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    assert out.returncode != 0, out.stdout + out.stderr
    check_load_error(out.stdout + out.stderr, 3)
    out = run_switchyard(["-c", str(sy.config_path)], timeout=30)
    assert out.returncode != 0, out.stdout + out.stderr
    check_load_error(out.stdout + out.stderr, 3)


def test_syntax_error_on_reload_is_refused_and_old_script_serves(upstream, switchyard):
    good = 'function envoy_on_response(h) h:headers():add("x-ver", "1") end\n'
    sy = one_script(switchyard, upstream, good)
    port = sy.port("ingress")
    assert request(port, "GET", "/echo").header("x-ver") == "1"
    sy.write_config(lua_config(upstream.port, listener("ingress", SYNTAX_ERROR)))
    resp = sy.reload()
    assert 400 <= resp.status < 500, resp
    check_load_error(resp.text(), 3)
    assert sy.running()
    assert request(port, "GET", "/echo").header("x-ver") == "1"
    # A good config after the bad one applies.
    sy.write_config(lua_config(upstream.port, listener(
        "ingress", 'function envoy_on_response(h) h:headers():add("x-ver", "2") end\n')))
    assert sy.reload().status == 200
    until(lambda: request(port, "GET", "/echo").header("x-ver") == "2", what="x-ver 2")


@pytest.mark.parametrize("name", ["ffi", "jit"])
def test_require_luajit_module_refused_at_load(upstream, switchyard, name):
    script = f'local m = require("{name}")\nfunction envoy_on_request(h) end\n'
    sy = start_refusing(switchyard, upstream, script)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert re.search(rf"\b{name}\b", text), text
    assert re.search(r"switchyard\.yaml:\d+:\d+", text), f"no file:line:col in: {text}"
    # Clear: says LuaJIT's module is not there on purpose, not Lua's generic search list.
    assert re.search(r"not supported|unsupported|not available|LuaJIT", text, re.I), text
    assert "no field package.preload" not in text, text


# ==========================================================================================
# 7. Beyond Envoy

CTX = r"""
function envoy_on_request(h)
  local c = h:ctx()
  local hd = h:headers()
  hd:add("x-ctx-fresh", tostring(type(c) == "table" and next(c) == nil))
  c.value = hd:get("x-in")
  c.n = 1
end
function envoy_on_response(h)
  local c = h:ctx()
  c.n = (c.n or 0) + 1
  h:headers():add("x-out", c.value or "nil")
  h:headers():add("x-n", c.n)
end
"""


def test_ctx_shared_between_request_and_response_per_request(upstream, switchyard):
    sy = one_script(switchyard, upstream, CTX)
    port = sy.port("ingress")
    # Sequential requests on one connection (one worker, one Lua state): a fresh table each.
    with RawClient(port) as c:
        for i in range(3):
            c.send(raw_request("GET", "/echo", [("x-in", f"seq{i}")]))
            r = c.read_response()
            assert r.status == 200, r
            assert one(r.json(), "x-ctx-fresh") == "true"
            assert (r.header("x-out"), r.header("x-n")) == (f"seq{i}", "2"), r.headers
    # Concurrent requests, all in flight at once: each sees its own table.
    n = 12
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(request, port, "GET", f"/slow?hold=ctx&i={i}",
                               headers={"x-in": f"par{i}"}) for i in range(n)]
        try:
            until(lambda: upstream.stats()["held"] == n, what=f"{n} requests held upstream")
        finally:
            upstream.release("ctx")
        results = [f.result() for f in futures]
    for i, r in enumerate(results):
        assert r.status == 200, r
        assert (r.header("x-out"), r.header("x-n")) == (f"par{i}", "2"), (i, r.headers)


DICT = r"""
local function show(v)
  if v == nil then return "nil" end
  if type(v) == "number" then return "number:" .. string.format("%.14g", v) end
  return type(v) .. ":" .. tostring(v)
end
function envoy_on_request(h)
  local hd = h:headers()
  local op = hd:get("x-op")
  if op == nil then return end
  local d = h:sharedDict(hd:get("x-dict") or "main")
  local k, v, ty = hd:get("x-key"), hd:get("x-val"), hd:get("x-type")
  local ttl = tonumber(hd:get("x-ttl") or "")
  if ty == "number" then v = tonumber(v) elseif ty == "bool" then v = (v == "true")
  elseif ty == "nil" then v = nil end
  local out
  if op == "set" then
    if ttl then d:set(k, v, ttl) else d:set(k, v) end
    out = "ok"
  elseif op == "get" then
    out = show(d:get(k))
  elseif op == "incr" then
    local init = tonumber(hd:get("x-init") or "")
    if ttl then out = show(d:incr(k, tonumber(v), init, ttl))
    elseif init then out = show(d:incr(k, tonumber(v), init))
    else out = show(d:incr(k, tonumber(v))) end
  elseif op == "delete" then
    d:delete(k)
    out = "ok"
  elseif op == "ttl" then
    local t = d:ttl(k)
    out = t == nil and "nil" or string.format("%.3f", t)
  end
  h:respond({[":status"] = "200"}, out)
end
"""


class Dict:
    def __init__(self, port):
        self.port = port

    def op(self, op, key, val=None, type_=None, ttl=None, init=None, dict_name=None):
        headers = {"x-op": op, "x-key": key}
        for name, value in (("x-val", val), ("x-type", type_), ("x-ttl", ttl),
                            ("x-init", init), ("x-dict", dict_name)):
            if value is not None:
                headers[name] = str(value)
        r = request(self.port, "GET", "/echo", headers=headers)
        assert r.status == 200, r
        return r.text()


def test_shared_dict_set_get_incr_delete_ttl(upstream, switchyard):
    sy = one_script(switchyard, upstream, DICT)
    d = Dict(sy.port("ingress"))
    assert d.op("get", "s") == "nil"
    assert d.op("set", "s", "hello") == "ok"
    assert d.op("get", "s") == "string:hello"
    assert d.op("set", "n", 5, "number") == "ok"
    assert d.op("get", "n") == "number:5"
    assert d.op("incr", "n", 2) == "number:7"
    assert d.op("get", "n") == "number:7"
    assert d.op("set", "b", "true", "bool") == "ok"
    assert d.op("get", "b") == "boolean:true"
    assert d.op("set", "b", "false", "bool") == "ok"
    assert d.op("get", "b") == "boolean:false"  # false is a value, not an absence
    assert d.op("incr", "c", 1, init=10) == "number:11"
    assert d.op("incr", "c", -3, init=10) == "number:8"
    assert d.op("delete", "s") == "ok"
    assert d.op("get", "s") == "nil"
    assert d.op("set", "n", type_="nil") == "ok"  # nil deletes
    assert d.op("get", "n") == "nil"
    # Dictionaries are separate by name.
    assert d.op("set", "iso", "main-value") == "ok"
    assert d.op("get", "iso", dict_name="other") == "nil"
    assert d.op("get", "iso") == "string:main-value"
    # TTL: counted down, then gone.
    assert d.op("ttl", "absent") == "nil"
    assert d.op("set", "t", "short-lived", ttl=1) == "ok"
    left = float(d.op("ttl", "t"))
    assert 0 < left <= 1, left
    assert d.op("incr", "ti", 1, init=0, ttl=1) == "number:1"
    left = float(d.op("ttl", "ti"))
    assert 0 < left <= 1, left
    until(lambda: d.op("get", "t") == "nil", timeout=10, what="the 1 s TTL of t to expire")
    until(lambda: d.op("get", "ti") == "nil", timeout=10, what="the 1 s TTL of ti to expire")
    assert d.op("ttl", "t") == "nil"
    assert d.op("get", "iso") == "string:main-value"  # no TTL: still there


SHARED_COUNT = r"""
local hits = 0  -- per Lua state, that is per worker
function envoy_on_request(h)
  local d = h:sharedDict("hits")
  if h:headers():get("x-read") then
    h:respond({[":status"] = "200"}, string.format("%d", d:get("total") or -1))
  end
  hits = hits + 1
  local n = d:incr("total", 1, 0)
  h:respond({[":status"] = "200", ["x-local"] = hits, ["x-shared"] = n}, "")
end
"""


def test_shared_dict_counts_add_up_exactly_across_workers(upstream, switchyard):
    sy = one_script(switchyard, upstream, SHARED_COUNT, workers=2)
    port = sy.port("ingress")
    n = 300
    results = spread_requests(port, n, threads=24)
    assert all(r.status == 200 for r in results), [r for r in results if r.status != 200][:3]
    shared = sorted(int(r.header("x-shared")) for r in results)
    assert shared == list(range(1, n + 1)), "incr is not atomic across workers"
    local = [int(r.header("x-local")) for r in results]
    assert max(local) < n, "one Lua state served everything: the test did not use two workers"
    r = request(port, "GET", "/echo", headers={"x-read": "1"})
    assert r.body == str(n).encode(), r


def test_shared_dict_survives_module_swaps(upstream, switchyard):
    # sharedDict is process-wide: a hot swap of the Lua module (a new generation, its own copy
    # of the module's static memory) must find the same dictionaries, and so must the swap
    # after that, and a rollback to the generation before.
    sy = one_script(switchyard, upstream, DICT, workers=2)
    d = Dict(sy.port("ingress"))
    assert d.op("set", "kept", "before-swap") == "ok"
    assert d.op("incr", "count", 1, init=0) == "number:1"
    assert d.op("set", "short", "gone-soon", ttl=1) == "ok"
    for swap in range(2):
        resp = reload_module(sy, "lua")
        assert resp.status == 200, resp
        assert d.op("get", "kept") == "string:before-swap", f"after swap {swap + 1}"
        assert d.op("incr", "count", 1, init=0) == f"number:{swap + 2}"
    # The TTL keeps running across swaps.
    until(lambda: d.op("get", "short") == "nil", timeout=10, what="the 1 s TTL to expire")
    resp = sy.admin("POST", "/modules/lua/rollback", timeout=30)
    assert resp.status == 200, resp
    assert d.op("get", "kept") == "string:before-swap"
    assert d.op("incr", "count", 1, init=0) == "number:4"


def test_invalid_status_from_a_filter_is_a_502(upstream, switchyard):
    # A :status that is not three digits in 100-599 is no status, whatever atoi would read.
    script = r"""
function envoy_on_response(h)
  h:headers():replace(":status", h:headers():get("x-new-status") or "200abc")
end
"""
    sy = one_script(switchyard, upstream, script)
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 502 and r.body == b"filter set an invalid :status\n", r


def test_respond_in_response_handler_replaces_upstream_response(upstream, switchyard):
    script = r"""
function envoy_on_response(h)
  if h:headers():get(":status") == "503" then
    h:respond({[":status"] = "200", ["x-replaced"] = "yes"}, "replaced body")
  end
end
"""
    sy = one_script(switchyard, upstream, script)
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/status?code=503"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"replaced body", r
        assert r.header("x-replaced") == "yes"
        assert r.all("content-length") in ([], ["13"]), r.headers
        # The connection goes on with the next request, untouched by the script.
        c.send(raw_request("GET", "/status?code=404"))
        r = c.read_response()
        assert r.status == 404 and r.body == b"status 404\n" and r.header("x-replaced") is None
    assert lua_stat(sy, "errors") == 0


def test_require_from_package_paths(tmp_path, upstream, switchyard):
    lib = tmp_path / "lualib"
    (lib / "util").mkdir(parents=True)
    (lib / "greet.lua").write_text(
        'local M = {}\nfunction M.greet(name) return "hello " .. name end\nreturn M\n')
    (lib / "util" / "strings.lua").write_text(
        "local M = {}\nfunction M.shout(s) return string.upper(s) .. '!' end\nreturn M\n")
    script = r"""
local greet = require("greet")
local strings = require("util.strings")
function envoy_on_request(h)
  h:headers():add("x-greet", greet.greet("lua"))
  h:headers():add("x-shout", strings.shout("hi"))
  h:headers():add("x-same", tostring(require("greet") == greet))
end
"""
    sy = one_script(switchyard, upstream, script, package_paths=[str(lib / "?.lua")])
    e = echo(sy.port("ingress"))
    assert (one(e, "x-greet"), one(e, "x-shout"), one(e, "x-same")) == (
        "hello lua", "HI!", "true")


def versioned_script(version):
    return f'function envoy_on_response(h) h:headers():add("x-ver", "{version}") end\n'


def test_watched_script_file_reloads_and_broken_edit_keeps_old(tmp_path, upstream, switchyard):
    script = tmp_path / "scripts" / "watched.lua"
    script.parent.mkdir()
    script.write_text(versioned_script(1))
    sy = start(switchyard, lua_config(upstream.port, listener(
        "ingress", default_source_code={"filename": str(script)}, watch=True)))
    port = sy.port("ingress")

    def version():
        r = request(port, "GET", "/echo")
        assert r.status == 200, r
        return r.header("x-ver")

    assert version() == "1"
    assert lua_stat(sy, "script_reloads") == 0
    write_atomically(script, versioned_script(2))
    until(lambda: version() == "2", what="the edited script (x-ver 2)")
    # One replace may reach a watcher as more than one event: at least one reload.
    reloads = wait_stat(sy, "script_reloads", 1, at_least=True)
    assert lua_stat(sy, "script_reload_errors") == 0
    # A broken edit: refused, counted, and the last good script keeps serving.
    write_atomically(script, "function envoy_on_response(h)\n  h:headers(:add()\nend\n")
    errors = wait_stat(sy, "script_reload_errors", 1, at_least=True)
    for _ in range(5):
        assert version() == "2"
    wait_log(sy, "script load error")
    # Fixed again: picked up.
    write_atomically(script, versioned_script(3))
    until(lambda: version() == "3", what="the fixed script (x-ver 3)")
    wait_stat(sy, "script_reloads", reloads + 1, at_least=True)
    assert lua_stat(sy, "script_reload_errors") == errors


class Traffic:
    """GET /echo in a loop from one thread, each on a fresh connection, recording every
    response that is not a 200 with HEADER set. Bounded in time."""

    def __init__(self, port, header, max_seconds=60):
        self.port = port
        self.header = header
        self.stop_event = threading.Event()
        self.failures = []
        self.ok = 0
        self.deadline = time.monotonic() + max_seconds
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        until(lambda: self.ok or self.failures, what="traffic to start")
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(30)

    def _run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            try:
                r = request(self.port, "GET", "/echo", timeout=10)
                if r.status != 200 or r.header(self.header) is None:
                    self.failures.append(f"{r.status} {r.headers}")
                else:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is a finding here
                self.failures.append(repr(e))


def test_module_reload_rereads_scripts_and_keeps_serving(tmp_path, upstream, switchyard):
    script = tmp_path / "script.lua"
    script.write_text(versioned_script(1))
    sy = start(switchyard, lua_config(upstream.port, listener(
        "ingress", default_source_code={"filename": str(script)})))
    port = sy.port("ingress")
    assert request(port, "GET", "/echo").header("x-ver") == "1"
    with RawClient(port, timeout=60) as slow:
        # A stream in flight across the reload: it finishes on the generation it started on.
        slow.send(raw_request("GET", "/slow?hold=span"))
        until(lambda: upstream.stats()["held"] == 1, what="the slow request upstream")
        write_atomically(script, versioned_script(2))
        assert request(port, "GET", "/echo").header("x-ver") == "1", "no watch, yet re-read"
        with Traffic(port, "x-ver") as traffic:
            for _ in range(3):
                resp = reload_module(sy, "lua")
                assert resp.status == 200, resp
            assert request(port, "GET", "/echo").header("x-ver") == "2"
            ok_before = traffic.ok
            until(lambda: traffic.ok > ok_before, what="traffic after the reloads")
        assert traffic.failures == [], traffic.failures[:5]
        upstream.release("span")
        r = slow.read_response()
    assert r.status == 200 and r.body == b"slow\n", r
    assert r.header("x-ver") == "1", r.headers


VM_SCRIPT = 'function envoy_on_response(h) h:headers():add("x-vm", "a") end\n'
VM_SCRIPT_2 = 'function envoy_on_response(h) h:headers():add("x-vm", "b") end\n'


def vm_count_after_traffic(sy, ports_and_headers):
    for port, headers in ports_and_headers:
        for r in spread_requests(port, 40, headers=headers):
            assert r.status == 200 and r.header("x-vm"), r
    value = sy.stats().get("module.lua.vm_count")
    assert isinstance(value, int), f"no module.lua.vm_count gauge: {value!r}"
    return value


def test_identical_scripts_share_one_vm_per_worker(upstream, switchyard):
    # One script once.
    single = start(switchyard, lua_config(upstream.port, listener("a", VM_SCRIPT), workers=2),
                   name="single")
    base = vm_count_after_traffic(single, [(single.port("a"), None)])
    single.stop()
    assert base == 2, f"vm_count {base}: one script, 2 workers that both served"
    # The same script three times: two filters' default and one route's inline source.
    routes = [by_header("inline", "inline", {"source_code": {"inline_string": VM_SCRIPT}}),
              to_cluster("all", {"prefix": "/"}, "backend")]
    same = start(switchyard, lua_config(upstream.port, listener("a", VM_SCRIPT, routes=routes),
                                        listener("b", VM_SCRIPT), workers=2), name="same")
    shared = vm_count_after_traffic(same, [(same.port("a"), None),
                                           (same.port("a"), {"x-r": "inline"}),
                                           (same.port("b"), None)])
    same.stop()
    assert shared == base, f"identical scripts: vm_count {shared}, one script: {base}"
    # Two different scripts: a state each per worker.
    diff = start(switchyard, lua_config(upstream.port, listener("a", VM_SCRIPT),
                                        listener("b", VM_SCRIPT_2), workers=2), name="diff")
    different = vm_count_after_traffic(diff, [(diff.port("a"), None), (diff.port("b"), None)])
    assert different == 2 * base, f"two scripts: vm_count {different}, one script: {base}"


# ==========================================================================================
# 8. LuaJIT compat prelude

# try(name, f): header x-NAME with f's result as it is (numbers go to headers as numbers), or
# x-NAME-error with the error, so one missing function does not hide the others.
TRY = r"""
  local function try(name, f)
    local ok, v = pcall(f)
    if not ok then hd:add("x-" .. name .. "-error", tostring(v))
    elseif v == nil then hd:add("x-" .. name, "nil")
    else hd:add("x-" .. name, v) end
  end
"""

COMPAT = r"""
function envoy_on_request(h)
  local hd = h:headers()
""" + TRY + r"""
  try("unpack", function() local a, b, c = unpack({1, 2, 3}); return a + b + c end)
  try("unpack-n", function() return select("#", unpack({1, 2, 3})) end)
  try("loadstring", function() return loadstring("return 6 * 7")() end)
  try("loadstring-bad", function()
    local f, err = loadstring("return +")
    return tostring(f == nil and type(err) == "string")
  end)
  try("band", function() return bit.band(0xff, 0x0f) end)
  try("bor", function() return bit.bor(0xf0, 0x0f) end)
  try("bxor", function() return bit.bxor(5, 3) end)
  try("lshift", function() return bit.lshift(1, 4) end)
  try("rshift", function() return bit.rshift(256, 4) end)
  try("tohex", function() return bit.tohex(255) end)
  try("tohex2", function() return bit.tohex(255, 2) end)
  try("getn", function() return table.getn({1, 2, 3, 4}) end)
  try("maxn", function() return table.maxn({[1] = 1, [7] = 1}) end)
  try("pow", function() return math.pow(2, 10) end)
  try("log10", function() return math.log10(1000) end)
  try("mod", function() return math.mod(7, 3) end)
  try("five", function() return 5.0 end)
  try("div", function() return 10 / 2 end)
  try("half", function() return 5 / 2 end)
  try("int", function() return 42 end)
  hd:replace("x-replaced", 3.0)
end
"""
COMPAT_EXPECTED = {
    "unpack": "6", "unpack-n": "3", "loadstring": "42", "loadstring-bad": "true",
    "band": "15", "bor": "255", "bxor": "6", "lshift": "16", "rshift": "16",
    "tohex": "000000ff", "tohex2": "ff", "getn": "4", "maxn": "7", "pow": "1024",
    "log10": "3", "mod": "1", "five": "5", "div": "5", "half": "2.5", "int": "42",
    "replaced": "3",
}


def compat_mismatches(echo_json, expected):
    got = {}
    for name in expected:
        got[name] = one(echo_json, f"x-{name}")
        err = one(echo_json, f"x-{name}-error")
        if err is not None:
            got[name] = f"error: {err}"
    return {k: (got[k], v) for k, v in expected.items() if got[k] != v}


def test_luajit_compat_prelude_and_number_formatting(upstream, switchyard):
    sy = one_script(switchyard, upstream, COMPAT)
    e = echo(sy.port("ingress"))
    bad = compat_mismatches(e, COMPAT_EXPECTED)
    assert not bad, f"(got, expected): {bad}"
    assert lua_stat(sy, "errors") == 0


BIT32 = r"""
function envoy_on_request(h)
  local hd = h:headers()
""" + TRY + r"""
  try("lshift31", function() return bit.lshift(1, 31) end)
  try("rshift-neg", function() return bit.rshift(-1, 28) end)
  try("arshift", function() return bit.arshift(-256, 4) end)
  try("bnot", function() return bit.bnot(0) end)
  try("tobit", function() return bit.tobit(0xffffffff) end)
  try("tohex-neg", function() return bit.tohex(-1) end)
  try("bxor-high", function() return bit.bxor(0x80000000, 0) end)
end
"""


def test_luajit_bit_has_32_bit_signed_results(upstream, switchyard):
    # BitOp's semantics (what LuaJIT scripts were written against), not 5.4's 64-bit operators.
    sy = one_script(switchyard, upstream, BIT32)
    e = echo(sy.port("ingress"))
    bad = compat_mismatches(e, {
        "lshift31": "-2147483648", "rshift-neg": "15", "arshift": "-16", "bnot": "-1",
        "tobit": "-1", "tohex-neg": "ffffffff", "bxor-high": "-2147483648"})
    assert not bad, f"(got, expected): {bad}"


def test_numbers_in_respond_headers_are_formatted_as_integers(upstream, switchyard):
    script = r"""
function envoy_on_request(h)
  h:respond({[":status"] = 200.0, ["x-float"] = 7.0, ["x-int"] = 8, ["x-frac"] = 0.5}, "ok")
end
"""
    sy = one_script(switchyard, upstream, script)
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 200 and r.body == b"ok", r
    assert (r.header("x-float"), r.header("x-int"), r.header("x-frac")) == ("7", "8", "0.5")
    assert upstream.stats()["requests_total"] == 0

