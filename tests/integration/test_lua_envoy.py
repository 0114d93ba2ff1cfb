"""Differential tests of the lua module against real Envoy: every script in lua/diff/ runs
unchanged in Envoy 1.40's envoy.filters.http.lua and in Switchyard's lua filter, behind the same
upstream.py, and gets the same requests; the responses must match: status, headers (order
ignored, proxy-specific ones left out: IGNORED_*), trailers and body. When the upstream is
/echo, the body is what the upstream received, compared field by field (again without the
proxy-specific headers), so request-side changes are compared too.

Each test also pins Envoy's answer (the reference), so a script that silently does nothing on
both sides fails. Where Switchyard differs on purpose, the test asserts each side and says why.

One Envoy and one Switchyard serve the whole module. The Lua filter carries every script in
source_codes, and each route, chosen by the request header x-script, names its script in its
per-route config (Envoy LuaPerRoute `name`, Switchyard `per_filter: {lua: {name}}`); route
metadata, virtual-host metadata and filter_context are set alike on both sides.

SY_LUA_DIFF=envoy runs the Envoy half only: the scripts and the expectations about Envoy,
without the module. SY_LUA_DIFF_SHOW=1 (with pytest -s) prints every answer.
"""
import base64
import json
import os
import re
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

import envoyutil
import harness
from harness import RawClient, chunked, free_port, raw_request, until
from modules_util import MODULES, module_file

SCRIPTS = harness.HERE / "lua" / "diff"
MODE = os.environ.get("SY_LUA_DIFF", "both")
assert MODE in ("both", "envoy"), f"SY_LUA_DIFF must be 'both' or 'envoy', not {MODE!r}"
SHOW = os.environ.get("SY_LUA_DIFF_SHOW") == "1"

# Headers each proxy adds or removes by itself, left out of every comparison. On the way back:
# Envoy adds date and server; connection, keep-alive and transfer-encoding are hop-by-hop
# (framing is checked through the body); Switchyard drops the Trailer announcement as
# hop-by-hop (docs/operations.md), Envoy passes it on. On the way up (what /echo saw):
# x-request-id is a fresh UUID on each proxy; x-forwarded-for gets 127.0.0.1 from Switchyard
# but the host's own address from Envoy (for a loopback peer it appends its local address).
# Any x-envoy-* header is Envoy's own.
IGNORED_RESPONSE = {"date", "server", "connection", "keep-alive", "transfer-encoding", "trailer"}
IGNORED_UPSTREAM = {"x-request-id", "x-forwarded-for", "connection", "transfer-encoding"}
IGNORED_PREFIXES = ("x-envoy-",)

# Error messages carry the chunk name, which each proxy spells its own way (Envoy:
# [string "<first line of the script>..."], a file name elsewhere), and a line number that
# depends on whether a C function or pcall sits between: compared without it.
POSITION = re.compile(r'(\[string ".*?"\]|[\w./-]+\.lua):\d+: ')

# Route metadata (Envoy: route metadata.filter_metadata["envoy.filters.http.lua"];
# Switchyard: per_filter.lua.metadata), virtual-host metadata (Envoy: the virtual host's
# filter_metadata; Switchyard: the filter's virtual_host_metadata), filter_context (both: per
# route).
ROUTE_METADATA = {"str": "hello", "num": 42, "float": 1.5, "bool": True, "list": ["a", 2],
                  "nested": {"k": "v", "n": 7}}
VHOST_METADATA = {"vh": "vhost-value", "vnum": 3}
FILTER_CONTEXT = {"greeting": "hi", "n": 3, "nested": {"deep": "down"}}
INLINE_SCRIPT = ("-- per-route inline source_code\n"
                 "function envoy_on_request(handle)\n"
                 "  handle:headers():add('x-r-inline', 'yes')\n"
                 "end\n")
STAT_PREFIX = "diff"


class Route:
    """A route named KEY, chosen by `x-script: SELECTOR` (default: KEY) and MATCH (more
    (name, value) header matches), to CLUSTER. SCRIPT names a file in lua/diff/ run by name
    from source_codes (default: KEY.lua); None means no per-route Lua config (the default
    script runs)."""

    def __init__(self, key, script="", cluster="backend", match=(), metadata=None,
                 filter_context=None, disabled=False, inline=None, selector=None):
        self.key = key
        self.selector = selector or key
        self.script = f"{key}.lua" if script == "" else script
        self.cluster = cluster
        self.match = list(match)
        self.metadata = metadata
        self.filter_context = filter_context
        self.disabled = disabled
        self.inline = inline

    def per_route(self):
        """The per-route Lua config, shared by both proxies (LuaPerRoute's field names), or None."""
        cfg = {}
        if self.disabled:
            cfg["disabled"] = True
        elif self.inline is not None:
            cfg["source_code"] = {"inline_string": self.inline}
        elif self.script is not None:
            cfg["name"] = self.script
        if self.filter_context is not None:
            cfg["filter_context"] = self.filter_context
        return cfg or None


def script_routes():
    special = {"default", "reroute", "metadata", "route_vhost_metadata", "filter_context"}
    return [Route(p.stem) for p in sorted(SCRIPTS.glob("*.lua")) if p.stem not in special]


ROUTES = [
    *script_routes(),
    Route("default", script=None),
    Route("disabled", disabled=True),
    Route("inline", inline=INLINE_SCRIPT),
    Route("metadata", metadata=ROUTE_METADATA),
    Route("route_vhost_metadata", metadata=ROUTE_METADATA),
    Route("filter_context", filter_context=FILTER_CONTEXT),
    Route("filter_context_empty", script="filter_context.lua"),
    # First match wins: with x-t-route: alt (which the script adds) the request goes to alt.
    Route("reroute_alt", script="reroute.lua", cluster="alt", selector="reroute",
          match=[("x-t-route", "alt")]),
    Route("reroute"),
]


def source_codes(routes):
    """The scripts the routes name, those that exist (a route may name a missing one)."""
    names = {r.script for r in routes if r.script and not r.disabled and r.inline is None
             and (SCRIPTS / r.script).exists()}
    return {name: {"filename": str(SCRIPTS / name)} for name in sorted(names)}


def envoy_bootstrap(port, routes, clusters, default_script="default.lua"):
    """CLUSTERS: {name: port}."""
    env_routes = []
    for r in routes:
        headers = [{"name": n, "string_match": {"exact": v}}
                   for n, v in [("x-script", r.selector), *r.match]]
        route = {"name": r.key, "match": {"prefix": "/", "headers": headers},
                 "route": {"cluster": r.cluster}}
        if r.per_route() is not None:
            route["typed_per_filter_config"] = {envoyutil.LUA_FILTER_NAME: {
                "@type": envoyutil.LUA_PER_ROUTE, **r.per_route()}}
        if r.metadata is not None:
            route["metadata"] = {"filter_metadata": {envoyutil.LUA_FILTER_NAME: r.metadata}}
        env_routes.append(route)
    vhost = {"name": "diff", "domains": ["*"], "routes": env_routes,
             "metadata": {"filter_metadata": {envoyutil.LUA_FILTER_NAME: VHOST_METADATA}}}
    lua = {"stat_prefix": STAT_PREFIX, "source_codes": source_codes(routes)}
    if default_script:
        lua["default_source_code"] = {"filename": str(SCRIPTS / default_script)}
    return {"static_resources": {
        "listeners": [envoyutil.http_listener("ingress", port, [vhost],
                                              [envoyutil.lua_filter(lua)])],
        "clusters": [envoyutil.static_cluster(name, p) for name, p in clusters.items()],
    }}


def switchyard_config(routes, clusters, default_script="default.lua"):
    sy_routes = []
    for r in routes:
        headers = [{"name": n, "exact": v} for n, v in [("x-script", r.selector), *r.match]]
        route = {"name": r.key, "match": {"prefix": "/", "headers": headers},
                 "cluster": r.cluster}
        per = dict(r.per_route() or {})
        if r.metadata is not None:
            per["metadata"] = r.metadata
        if per:
            route["per_filter"] = {"lua": per}
        sy_routes.append(route)
    lua = {"stat_prefix": STAT_PREFIX, "source_codes": source_codes(routes),
           "virtual_host_metadata": VHOST_METADATA}
    if default_script:
        lua["default_source_code"] = {"filename": str(SCRIPTS / default_script)}
    return {
        # One worker, as Envoy's --concurrency 1: one Lua state, so a global set by one
        # request is seen by the next (misuse_global), on both.
        "workers": 1,
        "module_path": [str(MODULES)],
        "listeners": [{"name": "ingress", "filters": [{"module": "lua", "config": lua}],
                       "routes": sy_routes}],
        "clusters": [harness.cluster(name, p) for name, p in clusters.items()],
    }


# ------------------------------------------------------------------------------------------
# Requests and what came back


class Req:
    """One request: a Content-Length BODY, or CHUNKS (chunked, then TRAILERS), or neither."""

    def __init__(self, method="GET", path="/echo", headers=(), body=None, chunks=None,
                 trailers=()):
        self.method = method
        self.path = path
        self.headers = list(headers)
        self.body = body.encode() if isinstance(body, str) else body
        self.chunks = [c.encode() if isinstance(c, str) else c for c in chunks or []] or None
        self.trailers = list(trailers)

    def raw(self, key, extra_headers=()):
        headers = [("x-script", key), *self.headers, *extra_headers]
        if self.chunks is not None:
            headers.append(("Transfer-Encoding", "chunked"))
            return raw_request(self.method, self.path, headers,
                               chunked(self.chunks, self.trailers))
        if self.body is not None:
            headers.append(("Content-Length", str(len(self.body))))
            return raw_request(self.method, self.path, headers, self.body)
        return raw_request(self.method, self.path, headers)

    def __repr__(self):
        size = len(self.body) if self.body is not None else sum(map(len, self.chunks or []))
        return f"{self.method} {self.path} headers={self.headers} body={size}B"


def _fields(fields, ignored):
    """FIELDS lower-cased, without IGNORED names, values without error positions, sorted by
    name only (so the order of one name's values still counts)."""
    out = []
    for name, value in fields:
        name = name.lower()
        if name in ignored or name.startswith(IGNORED_PREFIXES):
            continue
        out.append((name, POSITION.sub("", value)))
    return sorted(out, key=lambda f: f[0])


class Seen:
    """A response, normalised for comparison: status, headers, trailers, and the body (raw
    bytes, or for /echo the request the upstream received)."""

    def __init__(self, resp):
        self.raw = resp
        self.status = resp.status
        self.echo = None
        try:
            doc = json.loads(resp.body)
        except ValueError:
            doc = None
        ignored = set(IGNORED_RESPONSE)
        if isinstance(doc, dict) and {"headers", "body_sha256", "server"} <= doc.keys():
            self.echo = {
                "server": doc["server"], "method": doc["method"], "path": doc["path"],
                "version": doc["version"],
                "headers": _fields(doc["headers"], IGNORED_UPSTREAM),
                "trailers": _fields(doc["trailers"], IGNORED_UPSTREAM),
                "body_length": doc["body_length"], "body_sha256": doc["body_sha256"],
            }
            # The echo's own length differs with what each proxy added upstream.
            ignored.add("content-length")
        self.headers = _fields(resp.headers, ignored)
        self.trailers = _fields(resp.trailers, ignored)
        self.body = self.echo if self.echo is not None else resp.body

    def all(self, name):
        return [v for n, v in self.headers if n == name.lower()]

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def trailer(self, name):
        values = [v for n, v in self.trailers if n == name.lower()]
        return values[0] if values else None

    def up_all(self, name):
        """Values of NAME among the request headers the upstream received."""
        assert self.echo is not None, f"not an /echo response: {self.raw}"
        return [v for n, v in self.echo["headers"] if n == name.lower()]

    def up(self, name):
        values = self.up_all(name)
        return values[0] if values else None

    def up_trailer(self, name):
        assert self.echo is not None, f"not an /echo response: {self.raw}"
        values = [v for n, v in self.echo["trailers"] if n == name.lower()]
        return values[0] if values else None

    def __repr__(self):
        body = self.body if self.echo is not None else self.body[:300]
        return (f"<{self.status} headers={self.headers} trailers={self.trailers} "
                f"body={body!r}>")


def mismatch(ref, sy, ignore=(), body=True):
    """What differs between Envoy's and Switchyard's answer, one line per item. IGNORE: header
    and trailer names (both directions) left out; BODY false: the body is not compared."""
    lines = []
    if ref.status != sy.status:
        lines.append(f"status: envoy {ref.status}, switchyard {sy.status}")

    def fields(what, a, b):
        for name in sorted({n for n, _ in a} | {n for n, _ in b}):
            if name in ignore:
                continue
            va = [v for n, v in a if n == name]
            vb = [v for n, v in b if n == name]
            if va != vb:
                lines.append(f"{what} {name}: envoy {va or '(absent)'}, "
                             f"switchyard {vb or '(absent)'}")

    fields("header", ref.headers, sy.headers)
    fields("trailer", ref.trailers, sy.trailers)
    if not body:
        return lines
    if ref.echo is not None and sy.echo is not None:
        fields("upstream saw header", ref.echo["headers"], sy.echo["headers"])
        fields("upstream saw trailer", ref.echo["trailers"], sy.echo["trailers"])
        for k in ("server", "method", "path", "version", "body_length", "body_sha256"):
            if ref.echo[k] != sy.echo[k]:
                lines.append(f"upstream saw {k}: envoy {ref.echo[k]!r}, "
                             f"switchyard {sy.echo[k]!r}")
    elif ref.body != sy.body:
        lines.append(f"body: envoy {ref.body!r:.300}, switchyard {sy.body!r:.300}")
    return lines


class Pair:
    """The two answers to one request: ref (Envoy) and sy (Switchyard; None with
    SY_LUA_DIFF=envoy)."""

    def __init__(self, ref, sy):
        self.ref = ref
        self.sy = sy


class Side:
    def __init__(self, name, port, proc):
        self.name = name
        self.port = port
        self.proc = proc

    def log_mark(self):
        try:
            return Path(self.proc.log_path).stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark):
        with open(self.proc.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, mark, text, timeout=10):
        return until(lambda: text in self.log_since(mark), timeout,
                     what=f"{text!r} in {self.name}'s log")


class Diff:
    def __init__(self, envoy, sy, backend, alt):
        self.backend = backend
        self.alt = alt
        self.envoy = Side("envoy", envoy.port("ingress"), envoy)
        self.switchyard = Side("switchyard", sy.port("ingress"), sy) if sy else None
        self.sides = [s for s in (self.envoy, self.switchyard) if s]

    def send(self, side, key, *reqs, extra_headers=()):
        """REQS to SIDE on one connection, in turn; the responses."""
        out = []
        with RawClient(side.port) as c:
            for req in reqs:
                c.send(req.raw(key, extra_headers))
                out.append(c.read_response(req.method))
        return out

    def check(self, key, req, ignore=(), same=True):
        """REQ with x-script: KEY to both proxies; asserts that the answers match (unless
        SAME is false: a deliberate difference the caller asserts itself) and returns them.
        IGNORE: more header names left out of the comparison."""
        return self.check_seq(key, [req], ignore, same)[0]

    def check_seq(self, key, reqs, ignore=(), same=True, extra_headers=None):
        """REQS on one connection per proxy, compared answer by answer. EXTRA_HEADERS: {side
        name: [(name, value)]} added to that side's requests."""
        mark = self.switchyard.log_mark() if self.switchyard else 0
        answers = {}
        for side in self.sides:
            extra = (extra_headers or {}).get(side.name, ())
            answers[side.name] = [Seen(r) for r in
                                  self.send(side, key, *reqs, extra_headers=extra)]
        pairs = []
        for i, req in enumerate(reqs):
            ref = answers["envoy"][i]
            sy = answers["switchyard"][i] if self.switchyard else None
            if SHOW:
                print(f"\n{key} {req!r}\n  envoy:      {ref!r}\n  switchyard: {sy!r}")
            ignored = list(ignore)
            if req.chunks is not None:
                # How a body that came chunked goes upstream (chunked again, or with a
                # content-length once buffered) is each proxy's choice.
                ignored.append("content-length")
            if sy is not None and same:
                self.assert_same(key, req, ref, sy, ignored, log_mark=mark)
            pairs.append(Pair(ref, sy))
        return pairs

    def assert_same(self, key, req, ref, sy, ignore=(), body=True, log_mark=None):
        """Fails with what differs, and what Switchyard logged since LOG_MARK."""
        lines = mismatch(ref, sy, ignore, body)
        if not lines:
            return
        log = ""
        if log_mark is not None:
            log = "\n".join(self.switchyard.log_since(log_mark).splitlines()[-30:])
            log = f"\n----- switchyard's log meanwhile -----\n{log or '(nothing)'}"
        raise AssertionError(f"script {key}, request {req!r}: Switchyard differs from Envoy:\n  "
                             + "\n  ".join(lines) + log)

    def stats(self, side):
        """{errors, executions} of the Lua filter on SIDE."""
        if side is self.envoy:
            prefix = f"http.ingress.lua.{STAT_PREFIX}."
        else:
            prefix = f"module.lua.{STAT_PREFIX}."
        stats = side.proc.stats()
        return {k: stats.get(prefix + k, 0) for k in ("errors", "executions")}


@pytest.fixture(scope="module")
def diff(tmp_path_factory):
    work = tmp_path_factory.mktemp("lua_diff")
    procs = []
    try:
        backend = harness.Upstream(work / "upstreams", "backend")
        procs.append(backend)
        alt = harness.Upstream(work / "upstreams", "alt")
        procs.append(alt)
        # Nothing listens on dead's port: httpCall's connection failure.
        clusters = {"backend": backend.port, "alt": alt.port, "dead": free_port()}
        envoy = envoyutil.Envoy(work, envoy_bootstrap(free_port(), ROUTES, clusters))
        procs.append(envoy)
        envoy.start()
        sy = None
        if MODE == "both":
            module_file("lua")
            sy = harness.Switchyard(work, switchyard_config(ROUTES, clusters))
            procs.append(sy)
            sy.start()
        yield Diff(envoy, sy, backend, alt)
        for up in (backend, alt):
            stats = up.stats()
            assert not stats["protocol_errors"], (
                f"{up.name} received malformed HTTP: {stats['last_protocol_error']}")
    finally:
        for p in reversed(procs):
            p.stop()


def marker():
    return uuid.uuid4().hex[:12]


# ------------------------------------------------------------------------------------------
# Which script runs: default, disabled, inline, by name


def test_default_script_runs_without_per_route_config(diff):
    r = diff.check("default", Req())
    assert r.ref.status == 200
    assert r.ref.up("x-r-default") == "yes"
    assert r.ref.header("x-r-default-resp") == "yes"
    assert r.ref.header("x-r-default-route-md") == "nil"


def test_per_route_disabled(diff):
    r = diff.check("disabled", Req())
    assert r.ref.status == 200
    assert r.ref.up("x-r-default") is None
    assert r.ref.header("x-r-default-resp") is None


def test_per_route_inline_source_code(diff):
    r = diff.check("inline", Req())
    assert r.ref.up("x-r-inline") == "yes"
    assert r.ref.up("x-r-default") is None


def test_per_route_name(diff):
    r = diff.check("per_route_named", Req())
    assert r.ref.up("x-r-named") == "per_route_named"
    assert r.ref.header("x-r-named-resp") == "per_route_named"
    assert r.ref.up("x-r-default") is None


def test_per_route_unknown_name_is_a_no_op(tmp_path):
    # Envoy: a LuaPerRoute name missing from source_codes makes the filter do nothing for
    # that route (no error, no default script). Its own pair of proxies: the config differs.
    backend = harness.Upstream(tmp_path / "upstreams", "backend")
    procs = [backend]
    try:
        routes = [Route("missing", script="no_such_script.lua"), Route("default", script=None)]
        clusters = {"backend": backend.port}
        envoy = envoyutil.Envoy(tmp_path, envoy_bootstrap(free_port(), routes, clusters))
        procs.append(envoy)
        envoy.start()
        sy = None
        if MODE == "both":
            module_file("lua")
            sy = harness.Switchyard(tmp_path, switchyard_config(routes, clusters))
            procs.append(sy)
            sy.start()
        d = Diff(envoy, sy, backend, None)
        r = d.check("missing", Req())
        assert r.ref.status == 200
        assert r.ref.up("x-r-default") is None
        assert r.ref.header("x-r-default-resp") is None
        assert d.check("default", Req()).ref.up("x-r-default") == "yes"
    finally:
        for p in reversed(procs):
            p.stop()


def test_no_route_still_runs_the_default_script(diff):
    # No route matches (no x-script): 404 from the proxy; Envoy still runs the default script
    # both ways, and route():metadata() is valid and empty.
    pairs = {}
    for side in diff.sides:
        with RawClient(side.port) as c:
            c.send(raw_request("GET", "/echo", [("x-t-no-route", "1")]))
            pairs[side.name] = Seen(c.read_response())
    ref = pairs["envoy"]
    assert ref.status == 404
    assert ref.header("x-r-default-resp") == "yes"
    assert ref.header("x-r-default-route-md") == "nil"
    if diff.switchyard:
        # The body of the 404 is each proxy's own text (Envoy: empty).
        diff.assert_same("(none)", Req(), ref, pairs["switchyard"], ignore=["content-length",
                                                                            "content-type"],
                         body=False)


# ------------------------------------------------------------------------------------------
# Headers


def test_headers_get_add_replace_remove(diff):
    r = diff.check("headers_basic", Req(headers=[
        ("x-t-replace", "old"), ("x-t-remove", "gone"), ("X-T-Case", "MiXeD")]))
    e = r.ref
    assert e.status == 200
    assert e.up("x-r-added") == "added"
    assert e.up_all("x-t-replace") == ["new"]
    assert e.up("x-r-replace-absent") == "created"
    assert e.up("x-t-remove") is None
    assert (e.up("x-r-method"), e.up("x-r-path"), e.up("x-r-authority")) == ("GET", "/echo",
                                                                              "test")
    assert e.up("x-r-case") == "MiXeD"
    assert (e.up("x-r-missing"), e.up("x-r-removed")) == ("nil", "nil")
    # A missing header is no value at all, not nil: tostring(h:get("missing")) is an error.
    assert e.up("x-r-missing-count") == "0"
    assert e.up("x-r-number") == "42"
    assert e.up("x-r-empty") == ""
    assert e.header("x-r-status") == "200"
    assert e.header("x-r-content-type") == "application/json"
    assert e.header("content-type") == "text/x-lua"


def test_headers_multiple_values(diff):
    r = diff.check("headers_multi", Req(headers=[
        ("x-t-multi", "a"), ("x-t-single", "one"), ("x-t-multi", "b"), ("x-t-multi", "c")]))
    e = r.ref
    assert e.up("x-r-get") == "a,b,c"
    assert (e.up("x-r-num"), e.up("x-r-num-single"), e.up("x-r-num-missing")) == ("3", "1", "0")
    assert e.up("x-r-at") == "nil|a|b|c|nil"
    assert e.up("x-r-at-missing") == "nil"
    assert e.up("x-r-at-counts") == "0,0,0"
    assert e.up_all("x-r-dup") == ["one", "two"]
    assert (e.up("x-r-dup-num"), e.up("x-r-dup-get")) == ("2", "one,two")
    assert e.up_all("x-t-multi") == ["replaced"]
    assert e.up("x-r-after-replace") == "1"
    assert e.all("set-cookie") == ["a=1; Path=/", "b=2, c=3"]
    assert e.header("x-r-cookies") == "2"
    assert e.header("x-r-cookie-1") == "b=2, c=3"
    assert e.header("x-r-cookie-get") == "a=1; Path=/,b=2, c=3"


def test_headers_iteration(diff):
    # The response side of /echo lists the echo's own length, which differs per proxy.
    r = diff.check("headers_iterate", Req(headers=[
        ("x-t-a", "1"), ("x-t-b", "2"), ("x-t-a", "3")]), ignore=["x-r-resp-iter"])
    assert r.ref.up("x-r-iter") == "x-t-a=1;x-t-b=2;x-t-a=3"
    assert r.ref.up("x-r-pseudo") == ":authority,:method,:path,:scheme"
    r = diff.check("headers_iterate", Req(path="/status?code=200"))
    assert r.ref.header("x-r-resp-iter") == (
        ":status=200;content-type=text/plain;content-length=11")


def test_response_status_replaced(diff):
    r = diff.check("headers_status", Req(path="/status?code=200"))
    assert r.ref.status == 202
    assert r.ref.header("x-r-old-status") == "200"
    assert r.ref.body == b"status 200\n"


# ------------------------------------------------------------------------------------------
# Bodies


def test_request_body(diff):
    for req in (Req("POST", body="0123456789"), Req("POST", chunks=["01234", "56789"])):
        e = diff.check("body_request", req).ref
        assert e.up("x-r-len") == "10"
        assert e.up("x-r-len-concat") == "len=10"
        assert e.up("x-r-bytes") == "0123456789"
        assert (e.up("x-r-first3"), e.up("x-r-mid"), e.up("x-r-zero")) == ("012", "45", "[]")
        assert e.echo["body_length"] == 10


def test_body_nil_without_body(diff):
    r = diff.check("body_nil", Req(path="/status?code=204"))
    assert r.ref.status == 204
    assert (r.ref.header("x-r-req-body"), r.ref.header("x-r-resp-body")) == ("nil", "nil")


def test_body_always_wrap(diff):
    # The response side of /echo reports the echo's own length, which differs per proxy.
    r = diff.check("body_wrap", Req(), ignore=["x-r-resp-len"])
    assert (r.ref.up("x-r-req-len"), r.ref.up("x-r-req-bytes")) == ("0", "[]")
    r = diff.check("body_wrap", Req(path="/status?code=204"))
    assert r.ref.header("x-r-resp-len") == "0"
    assert r.ref.header("x-r-resp-type") == "userdata"


def test_set_bytes_request_updates_content_length(diff):
    r = diff.check("body_setbytes_request", Req("POST", body="original request body"))
    e = r.ref
    assert (e.up("x-r-old-len"), e.up("x-r-new-len")) == ("21", "13")
    assert e.up("x-r-read-back") == "replaced body"
    assert e.up("x-r-returned") == "13"
    assert e.echo["body_length"] == 13
    assert e.up("content-length") == "13"
    # A chunked request body, once replaced, goes up with a content-length.
    r = diff.check("body_setbytes_request", Req("POST", chunks=["original ", "request body"]))
    assert r.ref.echo["body_length"] == 13
    assert r.ref.up("content-length") == "13"


def test_set_bytes_response_updates_content_length(diff):
    r = diff.check("body_setbytes_response", Req(path="/status?code=200"))
    assert r.ref.body == b"ok"
    assert r.ref.header("content-length") == "2"
    assert (r.ref.header("x-r-old-len"), r.ref.header("x-r-new-len")) == ("11", "2")
    # A chunked response, once buffered and replaced, goes down with a content-length.
    r = diff.check("body_setbytes_response", Req(path="/stream?chunks=2&size=4"))
    assert r.ref.body == b"ok"
    assert r.ref.header("x-r-old-len") == "8"
    assert r.ref.header("content-length") == "2"


def test_binary_body_get_bytes(diff):
    data = b"\x00\x01abc\x00\xff\n"
    e = diff.check("body_binary", Req("POST", body=data)).ref
    assert (e.up("x-r-len"), e.up("x-r-strlen")) == ("8", "8")
    assert e.up("x-r-hex") == data.hex()
    assert e.up("x-r-hex-1-3") == data[1:4].hex()
    assert e.up("x-r-b64") == base64.b64encode(data).decode()
    assert e.up("x-r-nul-at") == "6"
    assert e.up("x-r-byte-last") == "255"
    assert e.echo["body_sha256"] == harness.sha256(data)


def test_get_bytes_out_of_bounds(diff):
    e = diff.check("body_getbytes_bounds", Req("POST", body="0123456789")).ref
    for name in ("x-r-past-end", "x-r-negative", "x-r-at-end"):
        assert e.up(name) == ("false:index/length must be >= 0 and (index + length) must be "
                              "<= buffer size"), (name, e.up(name))
    assert e.up("x-r-exact") == "true:89"


def test_body_chunks_request_then_trailers(diff):
    r = diff.check("body_chunks_request", Req("POST", chunks=["hello ", "world"],
                                              trailers=[("x-t-trailer", "tv")]))
    e = r.ref
    assert e.up_trailer("x-r-total") == "11"
    assert e.up_trailer("x-r-data") == "hello world"
    assert e.up_trailer("x-r-trailer-seen") == "tv"
    assert (e.header("x-r-total"), e.header("x-r-trailers")) == ("11", "present")
    assert e.echo["body_length"] == 11
    # Deliberate difference: a body the script streams with bodyChunks() goes up chunked on
    # Switchyard, where Envoy keeps the client's Content-Length. The proxy cannot know that
    # the script will leave the chunks' lengths alone, and a Content-Length sent ahead of a
    # changed body would corrupt the message; the bytes themselves are compared.
    r = diff.check("body_chunks_request", Req("POST", body="abc"), ignore=["content-length"])
    assert (r.ref.header("x-r-total"), r.ref.header("x-r-trailers")) == ("3", "nil")
    if r.sy is not None:
        assert r.sy.up("content-length") is None
        assert r.sy.echo["body_length"] == 3


def test_body_chunks_response_rewritten(diff):
    r = diff.check("body_chunks_response", Req(path="/stream?chunks=3&size=4"))
    assert r.ref.body == b"AAAABBBBCCCC"


def test_body_under_buffer_limit(diff):
    # Half the 1 MiB both proxies let a filter buffer: body() has all of it.
    body = b"y" * (512 << 10)
    e = diff.check("body_too_large", Req("POST", body=body)).ref
    assert e.up("x-r-len") == str(len(body))
    assert e.echo["body_sha256"] == harness.sha256(body)


def test_body_over_buffer_limit_is_413(diff):
    # Both buffer at most 1 MiB for a filter (Envoy: per_connection_buffer_limit_bytes,
    # Switchyard: limits.buffered_body). The 413's body is each proxy's own text.
    body = b"x" * (2 << 20)
    for side in diff.sides:
        with RawClient(side.port, timeout=10) as c:
            req = Req("POST", path="/upload", body=body)
            errors = []

            def push():
                try:
                    c.send(req.raw("body_too_large"))
                except OSError as e:  # the proxy may answer and close before reading it all
                    errors.append(e)

            t = threading.Thread(target=push)
            t.start()
            try:
                resp = c.read_response("POST")
            finally:
                c.close()
                t.join(30)
            assert resp.status == 413, (side.name, resp, errors)
            assert resp.header("x-r-len") is None


# ------------------------------------------------------------------------------------------
# Trailers


def test_request_trailers(diff):
    r = diff.check("trailers_request", Req("POST", chunks=["abc", "def"], trailers=[
        ("x-t-trailer", "tv"), ("x-t-drop", "gone")]))
    e = r.ref
    assert (e.up("x-r-body-len"), e.up("x-r-trailer")) == ("6", "tv")
    assert e.up_trailer("x-t-trailer") == "replaced"
    assert e.up_trailer("x-r-trailer-added") == "yes"
    assert e.up_trailer("x-t-drop") is None
    assert e.up("x-r-trailers") == "x-r-trailer-added=yes;x-t-trailer=replaced"
    r = diff.check("trailers_request", Req("POST", body="abc"))
    assert (r.ref.up("x-r-body-len"), r.ref.up("x-r-trailer")) == ("3", "no trailers")
    r = diff.check("trailers_request", Req())
    assert (r.ref.up("x-r-body-len"), r.ref.up("x-r-trailer")) == ("nil", "no trailers")


def test_response_trailers(diff):
    r = diff.check("trailers_response", Req(path="/trailers"))
    e = r.ref
    assert e.body == b"hello from trailers\n"
    assert (e.header("x-r-body-len"), e.header("x-r-extra")) == ("20", "yes")
    assert e.trailer("x-extra") == "yes"
    assert e.trailer("x-r-lua-trailer") == "1"
    assert e.trailer("x-checksum") is None
    r = diff.check("trailers_response", Req(path="/status?code=200"))
    assert (r.ref.header("x-r-body-len"), r.ref.header("x-r-extra")) == ("11", "no trailers")


# ------------------------------------------------------------------------------------------
# Metadata, filter context, dynamic metadata, stream info, connection


def test_route_metadata_values(diff):
    e = diff.check("metadata", Req()).ref
    assert e.up("x-r-str") == "hello"
    # Integral numbers print as integers, as under LuaJIT.
    assert (e.up("x-r-num"), e.up("x-r-num-concat"), e.up("x-r-num-header")) == ("42", "n=42",
                                                                                  "42")
    assert (e.up("x-r-float"), e.up("x-r-bool"), e.up("x-r-missing")) == ("1.5", "true", "nil")
    assert e.up("x-r-missing-count") == "0"
    assert e.up("x-r-list") == "table:a,2,#2"
    assert e.up("x-r-nested") == "table:v,7"
    assert e.up("x-r-keys") == "bool,float,list,nested,num,str"
    assert e.header("x-r-resp-str") == "hello"


def test_route_and_virtual_host_metadata(diff):
    e = diff.check("route_vhost_metadata", Req()).ref
    assert (e.up("x-r-route-str"), e.up("x-r-route-num")) == ("hello", "42")
    assert (e.up("x-r-vhost"), e.up("x-r-vhost-num")) == ("vhost-value", "3")
    assert e.up("x-r-vhost-missing") == "nil"
    assert (e.header("x-r-route-str"), e.header("x-r-vhost")) == ("hello", "vhost-value")


def test_filter_context(diff):
    e = diff.check("filter_context", Req()).ref
    assert (e.up("x-r-greeting"), e.up("x-r-n"), e.up("x-r-missing")) == ("hi", "3", "nil")
    assert e.up("x-r-missing-count") == "0"
    assert e.up("x-r-nested") == "down"
    assert e.header("x-r-resp-greeting") == "hi"
    e = diff.check("filter_context_empty", Req()).ref
    assert (e.up("x-r-greeting"), e.up("x-r-nested")) == ("nil", "nil")
    assert e.header("x-r-resp-greeting") == "nil"


def test_dynamic_metadata_request_to_response(diff):
    e = diff.check("dynamic_metadata", Req()).ref
    assert (e.up("x-r-req-get"), e.up("x-r-req-missing")) == ("bar", "nil")
    assert e.up("x-r-req-missing-count") == "0"
    assert e.header("x-r-foo") == "bar"
    assert (e.header("x-r-x"), e.header("x-r-y"), e.header("x-r-z")) == ("1234", "baz", "true")
    assert e.header("x-r-list") == "cool,and,dynamic,true,#4"
    assert (e.header("x-r-num"), e.header("x-r-half")) == ("5", "2.5")
    assert e.header("x-r-namespaces") == "envoy.lb,lua.diff"


def test_stream_info(diff):
    e = diff.check("stream_info", Req()).ref
    for prefix, where in (("x-r-", e.up), ("x-r-resp-", e.header)):
        assert where(prefix + "protocol") == "HTTP/1.1"
        assert where(prefix + "local") == "127.0.0.1:PORT"
        assert where(prefix + "remote") == "127.0.0.1:PORT"
        assert where(prefix + "direct-remote") == "127.0.0.1:PORT"
        assert where(prefix + "sni") == "[]"
        assert where(prefix + "route") == "stream_info"


def test_connection_ssl_is_nil_on_plaintext(diff):
    e = diff.check("connection", Req()).ref
    assert (e.up("x-r-ssl"), e.up("x-r-ssl-nil")) == ("nil", "true")
    assert e.up("x-r-conn-md") == "0"
    assert e.header("x-r-resp-ssl") == "nil"


# ------------------------------------------------------------------------------------------
# Logging


def test_log_methods(diff):
    m = marker()
    marks = {side.name: side.log_mark() for side in diff.sides}
    e = diff.check("log", Req(headers=[("x-t-marker", m)])).ref
    assert e.up("x-r-logged") == "yes"
    assert e.header("x-r-resp-logged") == "yes"
    # trace and debug are below both proxies' log level here.
    for side in diff.sides:
        for level in ("info", "warn", "err", "critical"):
            side.wait_log(marks[side.name], f"lua-diff {level} {m}")


def test_log_argument_must_be_a_string(diff):
    e = diff.check("log_misuse", Req()).ref
    assert e.up("x-r-ok") == "false"
    # Called through pcall the function has no name and the handle is argument #1.
    assert e.up("x-r-err") == "bad argument #2 to '?' (string expected, got table)"
    assert e.up("x-r-err-none") == "false:bad argument #2 to '?' (string expected, got no value)"
    assert e.up("x-r-before-uncaught") == "yes"
    assert e.up("x-r-after-uncaught") is None


# ------------------------------------------------------------------------------------------
# httpCall


def test_http_call_synchronous(diff):
    e = diff.check("httpcall_sync", Req()).ref
    assert (e.up("x-r-status"), e.up("x-r-ct")) == ("200", "application/json")
    assert (e.up("x-r-from-lua"), e.up("x-r-multi"), e.up("x-r-host")) == ("true", "true",
                                                                            "true")
    assert (e.up("x-r-echo-method"), e.up("x-r-echo-path")) == ("POST", "/echo?from=lua")
    assert e.up("x-r-echo-length") == "11"
    assert (e.up("x-r-status2"), e.up("x-r-body2"), e.up("x-r-length2")) == (
        "201", "status 201\\n", "11")
    assert (e.up("x-r-status3"), e.up("x-r-body3")) == ("204", "nil")


def test_http_call_reset_mid_response_is_fake_503(diff):
    # The upstream promises 1000 bytes and closes after 10: Envoy's fake response.
    e = diff.check("httpcall_failure", Req(headers=[("x-t-target", "abort")])).ref
    assert (e.up("x-r-status"), e.up("x-r-body")) == ("503", "upstream failure")
    assert e.up("x-r-names") == ":status"


def test_http_call_unreachable_cluster(diff):
    # Not the fake "upstream failure": Envoy's router answers the call itself, as it would
    # answer a client.
    e = diff.check("httpcall_failure", Req(headers=[("x-t-target", "dead")])).ref
    assert e.up("x-r-status") == "503"
    assert e.up("x-r-body") == ("upstream connect error or disconnect/reset before headers. "
                                "reset reason: remote connection failure")
    assert e.up("x-r-names") == ":status,content-length,content-type"


def test_http_call_timeout(diff):
    e = diff.check("httpcall_failure", Req(headers=[("x-t-target", "timeout")])).ref
    assert (e.up("x-r-status"), e.up("x-r-body")) == ("504", "upstream request timeout")
    assert e.up("x-r-names") == ":status,content-length,content-type"


def test_http_call_argument_errors(diff):
    e = diff.check("httpcall_errors", Req()).ref
    assert e.up("x-r-bad-cluster") == "false:http call cluster invalid. Must be configured"
    assert e.up("x-r-no-path") == (
        "false:http call headers must include ':path', ':method', and ':authority'")
    assert e.up("x-r-negative-timeout") == "false:http call timeout must be >= 0"
    assert e.up("x-r-bad-async-flag") == (
        "false:http call asynchronous flag must be 'true', 'false', or empty")


def test_http_call_asynchronous(diff):
    # Each side gets its own x-t-async-path, so that the upstream tells their calls apart.
    prefixes = {side.name: f"/async-{side.name}-{marker()}" for side in diff.sides}
    r = diff.check_seq("httpcall_async", [Req()], ignore=["x-t-async-path"], extra_headers={
        name: [("x-t-async-path", p)] for name, p in prefixes.items()})[0]
    e = r.ref
    assert e.status == 200
    assert e.up("x-r-returned") == "0"
    assert e.up("x-r-options") == "true:nil"
    for side in diff.sides:
        # The calls finish after the response, on their own: poll the upstream for them.
        want = [prefixes[side.name] + "/positional", prefixes[side.name] + "/options"]
        until(lambda w=want: all(diff.backend.stats()["paths"].get(p) for p in w),
              what=f"{side.name}'s asynchronous httpCalls {want} at the upstream")


# ------------------------------------------------------------------------------------------
# respond()


def test_respond_with_headers_and_body(diff):
    e = diff.check("respond", Req()).ref
    assert e.status == 403
    assert e.body == b"nope"
    assert (e.header("content-length"), e.header("content-type")) == ("4", "text/plain")
    assert (e.header("x-r-case"), e.header("x-r-number")) == ("basic", "7")
    assert e.all("set-cookie") == ["a=1", "b=2"]
    assert e.header("x-r-never") is None
    # The local reply goes through the response handler of the same script.
    assert e.header("x-r-resp-ran") == "yes"


def test_respond_variants(diff):
    e = diff.check("respond", Req(headers=[("x-t-case", "nobody")])).ref
    assert (e.status, e.body, e.header("content-length")) == (200, b"", "0")
    assert e.header("content-type") is None
    e = diff.check("respond", Req(headers=[("x-t-case", "empty")])).ref
    assert (e.status, e.body, e.header("content-length")) == (204, b"", None)
    e = diff.check("respond", Req("POST", body="12345", headers=[("x-t-case",
                                                                   "after_body")])).ref
    assert (e.status, e.body) == (200, b"got 5")
    assert e.header("x-r-resp-ran") == "yes"


def test_respond_status_validation(diff):
    e = diff.check("respond_errors", Req()).ref
    assert e.status == 200
    for name in ("x-r-100", "x-r-600", "x-r-abc", "x-r-missing"):
        assert e.up(name) == "false::status must be between 200-599", (name, e.up(name))
    assert e.up("x-r-not-table") == "false:bad argument #2 to '?' (table expected, got string)"
    e = diff.check("respond_errors", Req(headers=[("x-t-case", "uncaught")])).ref
    assert (e.status, e.up("x-r-before-uncaught")) == (200, "yes")


def test_respond_after_headers_continued(diff):
    # The script streams the body with bodyChunks() first: upstream framing differs on
    # purpose (see test_body_chunks_request_then_trailers).
    e = diff.check("respond_errors", Req("POST", body="abc", headers=[("x-t-case", "continued")]),
                   ignore=["content-length"]).ref
    assert e.status == 200
    assert e.header("x-r-continued") == (
        "false:respond() cannot be called if headers have been continued")


def test_respond_in_response_path(diff):
    # Envoy: respond() is an error in envoy_on_response ("respond not currently supported in
    # the response path"), so the upstream's answer goes through with what the script did
    # before. Switchyard allows it on purpose (before the response headers went on): a local
    # reply replaces the upstream's answer.
    r = diff.check("respond_response", Req(path="/status?code=200"), same=False)
    assert (r.ref.status, r.ref.body) == (200, b"status 200\n")
    assert r.ref.header("x-r-before") == "yes"
    assert r.ref.header("x-r-responded") is None
    if r.sy is not None:
        assert (r.sy.status, r.sy.body) == (418, b"teapot")
        assert r.sy.header("x-r-responded") == "yes"


def test_http_call_then_respond(diff):
    e = diff.check("httpcall_respond", Req()).ref
    assert (e.status, e.body) == (200, b"call said: status 202\n")
    assert e.header("x-r-call-status") == "202"


# ------------------------------------------------------------------------------------------
# Utilities


def test_base64_escape(diff):
    e = diff.check("base64", Req()).ref
    assert (e.up("x-r-hello"), e.up("x-r-empty"), e.up("x-r-one")) == ("aGVsbG8=", "[]", "YQ==")
    assert e.up("x-r-binary") == base64.b64encode(b"\0\1\2\xff\xfe end").decode()
    # base64Decode is in Envoy 1.40; malformed input gives nil, not an error.
    assert (e.up("x-r-decode"), e.up("x-r-decode-bad")) == ("true:hello world", "true:nil")


def test_timestamps(diff):
    e = diff.check("timestamp", Req()).ref
    for name in ("x-r-ms-digits", "x-r-ms-close", "x-r-ms2-close", "x-r-str-ms", "x-r-str-us"):
        assert e.up(name) == "true", (name, e.up(name))
    assert e.up("x-r-ms-type") == "number"
    assert e.up("x-r-enum") == "0,1"
    assert e.up("x-r-us-number") == "false:timestamp format must be MILLISECOND."
    assert e.up("x-r-bad-res") == (
        "false:timestamp format must be MILLISECOND or MICROSECOND.")


def test_numbers_cross_the_boundary_as_luajit_prints_them(diff):
    # Plain Lua 5.4 prints 10/2 as "5.0" where LuaJIT prints "5": the module formats floats
    # as LuaJIT does, in tostring() too.
    e = diff.check("integer_format", Req("POST", body="0123456789")).ref
    for name in ("x-r-len", "x-r-len-tostring", "x-r-len-concat", "x-r-len-format"):
        assert e.up(name) == "10", (name, e.up(name))
    assert (e.up("x-r-len-half"), e.up("x-r-div"), e.up("x-r-frac")) == ("5", "5", "2.5")
    assert e.up("x-r-third") == "0.33333333333333"
    assert e.up("x-r-big") == "9.007199254741e+15"
    assert e.up("x-r-neg") == "-7"
    assert e.up("x-r-div-tostring") == "5"


def test_luajit_prelude(diff):
    # math.mod is Lua 5.0's: Envoy's LuaJIT has dropped it, Switchyard's prelude offers it
    # (the contract lists it), so it is asserted per side.
    r = diff.check("luajit_prelude", Req(), ignore=["x-r-mod"])
    e = r.ref
    assert e.up("x-r-mod") == "ERR"
    if r.sy is not None:
        assert r.sy.up("x-r-mod") == "1"
    expected = {
        "unpack": "1 2 3", "table-unpack": "4 5", "loadstring": "2", "band": "15",
        "bor": "7", "bxor": "15", "bnot": "-1", "lshift": "16 -2147483648",
        "rshift": "15 16", "arshift": "-4 -134217728", "rol": "-2147483648 -2147483648",
        "tobit": "-1 5", "tohex": "000000ff ffffffff ff", "bswap": "2018915346",
        "maxn": "10", "pow": "1024", "log10": "3", "ldexp": "16", "frexp": "0.5 4",
        "fmod": "1", "getfenv": "true", "table-pack": "3", "goto": "3", "getn": "3",
        "string-rep": "ab,ab,ab",
    }
    got = {name: e.up("x-r-" + name) for name in expected}
    assert got == expected


def test_downstream_request_headers(diff):
    # Envoy 1.40 has no downstreamRequestHeaders() yet (upstream Envoy added it later);
    # Switchyard follows the newer API: read-only request headers in the response handler.
    r = diff.check("downstream_request_headers", Req(path="/status?code=200",
                                                     headers=[("x-t-orig", "v1")]), same=False)
    assert r.ref.status == 200
    assert r.ref.header("x-r-drh") == "absent"
    if r.sy is not None:
        assert (r.sy.status, r.sy.body) == (200, b"status 200\n")
        assert r.sy.header("x-r-drh") == "v1"
        assert r.sy.header("x-r-drh-path") == "/status?code=200"
        assert r.sy.header("x-r-drh-num") == "1"
        assert r.sy.header("x-r-drh-add") == "false"


def test_route_cache_cleared_by_header_change(diff):
    e = diff.check("reroute", Req()).ref
    assert e.echo["server"] == "alt"
    assert e.up("x-t-route") == "alt"


def test_route_control_calls(diff):
    e = diff.check("route_control", Req()).ref
    assert e.up("x-r-clear") == "true:nil"
    assert e.up("x-r-override-bad") == "false:host is not a valid IP address"
    assert e.up("x-r-override-none") == (
        "false:bad argument #2 to '?' (string expected, got no value)")
    assert e.up("x-r-override-ok") == "true:nil"
    # A port must be a port: "ip:anything" is refused, as Envoy refuses it.
    assert e.up("x-r-override-port-junk") == "false:host is not a valid IP address"
    assert e.up("x-r-override-port-big") == "false:host is not a valid IP address"
    assert e.up("x-r-override-port") == "true:nil"
    assert e.up("x-r-override-v6-port") == "true:nil"


def test_public_key_and_signature(diff, tmp_path):
    key = tmp_path / "key.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(key)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    data = "signed data"
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)], input=data.encode(),
                         check=True, capture_output=True).stdout
    e = diff.check("crypto", Req(headers=[("x-t-key", der.hex()), ("x-t-sig", sig.hex()),
                                          ("x-t-data", data)])).ref
    assert e.up("x-r-key") == "true"
    assert e.up("x-r-valid") == "true:nil"
    assert e.up("x-r-tampered") == "false:Failed to verify digest. Error code: 0"
    assert e.up("x-r-wrong-hash") == "false:Failed to verify digest. Error code: 0"
    assert e.up("x-r-unknown-hash") == "false:md4 is not supported."
    assert e.up("x-r-bad-sig").startswith("false:")
    # A second importPublicKey() on the same stream returns the first key in Envoy (it keeps
    # one key object per stream), so the bad key is imported alone, on its own request.
    e = diff.check("crypto", Req(headers=[("x-t-case", "bad")])).ref
    assert e.up("x-r-bad-key") == "nil"


def test_custom_stats(diff):
    e = diff.check("stats", Req()).ref
    assert (e.up("x-r-counter"), e.up("x-r-gauge")) == ("3", "12")
    assert e.up("x-r-negative") == "false:counter add amount must be non-negative"


def test_api_surface(diff):
    # Switchyard's additions (handle:ctx(), handle:sharedDict()) and downstreamRequestHeaders
    # (newer than Envoy 1.40) are asserted per side. Everything else must be the same set of
    # methods.
    r = diff.check("api_surface", Req(), ignore=["x-r-extras"])
    e = r.ref
    for name in ("headers", "body", "bodyChunks", "trailers", "metadata", "streamInfo",
                 "connection", "httpCall", "respond", "base64Escape", "timestamp",
                 "timestampString", "filterContext", "virtualHost", "route"):
        assert f"{name}=true" in e.up("x-r-handle").split(","), name
    assert e.up("x-r-headers").startswith(
        "add=true,get=true,getAtIndex=true,getNumValues=true,remove=true,replace=true")
    assert e.up("x-r-buffer") == "length=true,getBytes=true,setBytes=true"
    assert e.up("x-r-handle") == e.header("x-r-response-handle")
    assert e.up("x-r-types") == "userdata,userdata,userdata,userdata"
    assert e.up("x-r-extras") == "ctx=false,sharedDict=false,downstreamRequestHeaders=false"
    if r.sy is not None:
        assert r.sy.up("x-r-extras") == (
            "ctx=true,sharedDict=true,downstreamRequestHeaders=true")


# ------------------------------------------------------------------------------------------
# Errors: fail-open, counters, misuse


def test_runtime_error_fails_open(diff):
    m = marker()
    marks = {side.name: side.log_mark() for side in diff.sides}
    e = diff.check("error_failopen", Req(headers=[("x-t-marker", m)])).ref
    assert e.status == 200
    # What the script did before the error stays; the rest of the stream is untouched.
    assert e.up("x-r-before-error") == "yes"
    assert e.header("x-r-resp-before-error") == "yes"
    for side in diff.sides:
        side.wait_log(marks[side.name], f"lua-diff request error {m}")
        side.wait_log(marks[side.name], "lua-diff response error")


def test_runtime_error_variants_fail_open(diff):
    e = diff.check("error_failopen", Req(headers=[("x-t-error", "index")])).ref
    assert (e.status, e.up("x-r-before-error"), e.up("x-r-never")) == (200, "yes", None)
    e = diff.check("error_failopen", Req("POST", body="abc", headers=[("x-t-error",
                                                                       "body")])).ref
    assert (e.status, e.up("x-r-body-len")) == (200, "3")
    assert e.echo["body_length"] == 3


def test_error_and_execution_counters(diff):
    before = {side.name: diff.stats(side) for side in diff.sides}
    diff.check("error_failopen", Req())
    deltas = {}
    for side in diff.sides:
        after = until(lambda s=side: (lambda a: a if a["executions"] >= before[s.name][
            "executions"] + 2 else None)(diff.stats(s)), what=f"{side.name}'s counters")
        deltas[side.name] = {k: after[k] - before[side.name][k] for k in after}
    assert deltas["envoy"] == {"errors": 2, "executions": 2}
    if diff.switchyard:
        assert deltas["switchyard"] == deltas["envoy"]


def test_handle_kept_in_a_global(diff):
    first, second = diff.check_seq("misuse_global", [Req(), Req()])
    assert first.ref.up("x-r-first") == "yes"
    assert second.ref.up("x-r-ok") == "false"
    assert second.ref.up("x-r-err") == "object used outside of proper scope"
    third = diff.check("misuse_global", Req(headers=[("x-t-uncaught", "1")]))
    assert (third.ref.status, third.ref.up("x-r-before-uncaught")) == (200, "yes")


def test_yield_from_the_script_is_an_error(diff):
    e = diff.check("misuse_yield", Req()).ref
    assert e.status == 200
    assert e.up("x-r-own-coroutine") == "true,2,true,20"
    assert e.up("x-r-before-yield") == "yes"
    assert e.up("x-r-after-yield") is None
    assert e.header("x-r-resp-ran") == "yes"


def test_objects_out_of_scope(diff):
    # The body is streamed with bodyChunks(): upstream framing differs on purpose (see
    # test_body_chunks_request_then_trailers).
    e = diff.check("misuse_scope", Req("POST", body="abc"), ignore=["content-length"]).ref
    assert e.status == 200
    assert e.header("x-r-chunk") == "false:object used outside of proper scope"
    assert e.header("x-r-late-add") == "false:header map can no longer be modified"
    # A header object does not survive a yield (here: of bodyChunks); a fresh one reads.
    assert e.header("x-r-stale-get") == "false:object used outside of proper scope"
    assert e.header("x-r-fresh-get") == "true:/echo"


def test_headers_modified_while_iterating(diff):
    e = diff.check("misuse_iterate", Req()).ref
    assert e.status == 200
    # The failed loop leaves its iterator unfinished, which keeps blocking changes and a
    # second pairs().
    for name in ("x-r-in-loop", "x-r-after-loop"):
        assert e.header(name) == "false:header map cannot be modified while iterating"
    assert e.header("x-r-second-pairs") == (
        "false:cannot create a second iterator before completing the first")
