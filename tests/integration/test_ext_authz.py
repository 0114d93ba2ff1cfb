"""The ext_authz module (modules/ext_authz, issue 14) against real servers: a grpcio
envoy.service.auth.v3.Authorization/Check server and an HTTP authorization server
(authz_peer.py, scripted per request by the request's x-authz header), with upstream.py behind
the proxy. Test names carry the acceptance ids of shared/reference/ext_proc-ext_authz.md §6.
"""
import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.protobuf.json_format import MessageToDict

import harness
from authz_peer import GrpcAuthz, HttpAuthz
from tlsutil import certs  # noqa: F401 (fixture)
from harness import cluster, free_port, request, to_cluster, until
from modules_util import module_file, module_stat, reload_module, with_filters

NS = "envoy.filters.http.ext_authz"


@pytest.fixture
def grpc_authz():
    s = GrpcAuthz()
    yield s
    s.stop()


@pytest.fixture
def http_authz():
    s = HttpAuthz()
    yield s
    s.stop()


def grpc_filter(**extra):
    # The check timeout is a budget (harness.budget): the tests that are about it set their own.
    return {"grpc_service": {"envoy_grpc": {"cluster_name": "authz"},
                             "timeout": harness.budget(2)}, **extra}


def http_filter(**extra):
    service = {"server_uri": {"uri": "http://authz.local", "cluster": "authz",
                              "timeout": harness.budget(2)},
               "path_prefix": "/auth",
               "authorization_request": {"allowed_headers": {"patterns": [
                   {"exact": "x-authz"}, {"exact": "x-test-id"}]}},
               **extra.pop("service", {})}
    return {"http_service": service, **extra}


def config(upstream_port, authz_port, filter_config, protocol="http2", routes=None,
           workers=2, authz_extra=None):
    """Listener `ingress` (HTTP/1.1 and h2c) with the ext_authz filter, routed to upstream.py;
    cluster `authz` is the authorization server."""
    cfg = with_filters(upstream_port, [{"module": "ext_authz", "config": filter_config}],
                       protocols=["http1", "http2"])
    if routes:
        cfg["listeners"][0]["routes"] = routes + cfg["listeners"][0]["routes"]
    cfg["clusters"].append(cluster("authz", authz_port, protocol=protocol, connect_retries=0,
                                   **(authz_extra or {})))
    cfg["workers"] = workers
    return cfg


def get(sy, path="/echo", script=None, method="GET", body=None, headers=None, **kw):
    h = dict(headers or {})
    if script is not None:
        h["x-authz"] = json.dumps(script)
    return request(sy.port("ingress"), method, path, body=body, headers=h, **kw)


def upstream_headers(resp):
    """What upstream.py's /echo saw: {name: [values]}."""
    out = {}
    for n, v in resp.json()["headers"]:
        out.setdefault(n.lower(), []).append(v)
    return out


def stat(sy, name, label=None):
    return module_stat(sy.stats(), "ext_authz", name, label)


# --- gRPC: the CheckRequest (EA-01) ------------------------------------------------------------


def test_ea01_check_request_carries_the_attribute_context(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    test_id = uuid.uuid4().hex
    r = get(sy, "/echo?a=1&b=2", headers={"x-test-id": test_id, "X-Mixed-Case": "v",
                                          "x-request-id": "rid-1"})
    assert r.status == 200, r
    [cr] = grpc_authz.find(test_id)
    a = cr.attributes
    http = a.request.http
    assert http.method == "GET"
    assert http.path == "/echo?a=1&b=2"
    assert http.host == f"127.0.0.1:{sy.port('ingress')}"
    assert http.scheme == "http"
    assert http.protocol == "HTTP/1.1"
    assert http.id == "rid-1"
    assert http.size == 0  # no body (Envoy: 0; -1 only when the length is unknown)
    assert http.query == "" and http.fragment == ""
    assert http.headers["x-mixed-case"] == "v"
    assert http.headers[":method"] == "GET" and http.headers[":path"] == "/echo?a=1&b=2"
    assert a.source.address.socket_address.address == "127.0.0.1"
    assert a.source.address.socket_address.port_value > 0
    assert a.destination.address.socket_address.address == "127.0.0.1"
    assert a.destination.address.socket_address.port_value == sy.port("ingress")
    assert a.request.time.seconds > 1_600_000_000


def test_ea01_repeated_headers_are_comma_joined(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    test_id = uuid.uuid4().hex
    with harness.RawClient(sy.port("ingress")) as c:
        c.send(harness.raw_request("GET", "/echo", [("x-test-id", test_id), ("x-dup", "one"),
                                                    ("X-Dup", "two")]))
        r = c.read_response()
    assert r.status == 200, r
    [cr] = grpc_authz.find(test_id)
    assert cr.attributes.request.http.headers["x-dup"] == "one,two"


def test_ea01_http2_request(upstream, grpc_authz, switchyard):
    from h2util import H2Client
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    test_id = uuid.uuid4().hex
    with H2Client(sy.port("ingress")) as c:
        r = c.get("/echo?q", method="POST", headers=[("x-test-id", test_id),
                                                     ("content-length", "5")], body=b"hello")
    assert r.status == 200, r
    [cr] = grpc_authz.find(test_id)
    http = cr.attributes.request.http
    assert http.protocol == "HTTP/2"
    assert http.method == "POST" and http.path == "/echo?q" and http.size == 5
    # Without with_request_body the body is not sent, but it reaches the upstream.
    assert http.body == "" and http.raw_body == b""
    assert r.body and json.loads(r.body)["body_length"] == 5


# --- gRPC: OK answers (EA-02) ------------------------------------------------------------------


def test_ea02_ok_mutates_the_request_and_the_response(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    script = {"headers": [["x-set", "new", False], ["x-app", "second", True],
                          ["x-fresh", "f"], ["x-absent", "a", "add_if_absent"],
                          ["x-keep", "no", "add_if_absent"],
                          ["x-only-if", "no", "overwrite_if_exists"]],
              "remove": ["x-gone", ":path", "host"],
              "query_set": [["a", "9"], ["new", "n"]], "query_remove": ["b"],
              "response_headers": [["set-cookie", "a=1", True], ["set-cookie", "b=2", True],
                                   ["x-resp", "r", False]]}
    r = get(sy, "/echo?a=1&b=2&c=3", script,
            headers={"x-set": "old", "x-app": "first", "x-gone": "bye", "x-keep": "yes"})
    assert r.status == 200, r
    up = upstream_headers(r)
    assert up["x-set"] == ["new"]
    assert up["x-app"] == ["first,second"]
    assert up["x-fresh"] == ["f"] and up["x-absent"] == ["a"] and up["x-keep"] == ["yes"]
    assert "x-only-if" not in up and "x-gone" not in up
    assert up["host"] == [f"127.0.0.1:{sy.port('ingress')}"]
    assert r.json()["path"] == "/echo?a=9&c=3&new=n"
    assert r.all("set-cookie") == ["a=1", "b=2"]
    assert r.header("x-resp") == "r"
    assert stat(sy, "ok") == 1 and stat(sy, "denied") == 0


# --- gRPC: denials (EA-03) ---------------------------------------------------------------------


def test_ea03_denied_with_status_headers_and_body(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    r = get(sy, "/echo", {"deny": 401, "headers": [["www-authenticate", "Bearer"],
                                                   ["x-why", "a", False], ["x-why", "b", False],
                                                   ["x-many", "1", True], ["x-many", "2", True]],
                          "body": "go away"})
    assert r.status == 401, r
    assert r.body == b"go away"
    assert r.header("www-authenticate") == "Bearer"
    assert r.all("x-why") == ["b"]
    assert r.all("x-many") == ["1", "2"]
    assert r.header("content-type") == "text/plain"
    assert upstream.stats()["requests_total"] == 0
    assert stat(sy, "denied") == 1 and stat(sy, "ok") == 0
    e = sy.wait_access_entry(lambda e: e.get("status") == 401)
    assert e["details"] == "ext_authz_denied", e


def test_ea03_denied_without_a_status_is_403(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    r = get(sy, "/echo", {"deny": 0})
    assert r.status == 403, r
    assert r.body == b""


# --- gRPC: errors and failure mode (EA-04) -----------------------------------------------------


@pytest.mark.parametrize("extra, script, status, flag, details", [
    ({}, {"deny": 401}, 401, "UAEX", "ext_authz_denied"),
    ({}, {"abort": "INTERNAL"}, 403, "UAEX", "ext_authz_error"),
    ({"filter_enabled": {"default_value": {"numerator": 0}},
      "deny_at_disable": {"default_value": True}}, None, 403, "UAEX", "ext_authz_error"),
    ({"failure_mode_allow": True}, {"abort": "INTERNAL"}, 200, "-", None),
    ({}, None, 200, "-", None),
], ids=["denied", "error", "deny-at-disable", "failure-mode-allowed", "ok"])
def test_ea03_refusals_carry_the_uaex_response_flag(upstream, grpc_authz, switchyard, extra,
                                                     script, status, flag, details):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(**extra)))
    rid = uuid.uuid4().hex
    r = get(sy, "/echo", script, headers={"x-request-id": rid})
    assert r.status == status, r
    e = sy.wait_access_entry(lambda e: e.get("request_id") == rid)
    assert e["response_flags"] == flag, e
    if details:
        assert e["details"] == details, e


@pytest.mark.parametrize("script", [{"error": 0}, {"abort": "UNAVAILABLE"},
                                    {"abort": "PERMISSION_DENIED"}],
                         ids=["error_response", "unavailable", "permission-denied-status"])
def test_ea04_errors_answer_403(upstream, grpc_authz, switchyard, script):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    r = get(sy, "/echo", script)
    assert r.status == 403, r
    assert stat(sy, "error") == 1 and stat(sy, "failure_mode_allowed") == 0
    assert upstream.stats()["requests_total"] == 0
    e = sy.wait_access_entry(lambda e: e.get("status") == 403)
    assert e["details"] == "ext_authz_error", e


def test_ea04_error_response_headers_and_body(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port,
                           grpc_filter(status_on_error={"code": 503})))
    r = get(sy, "/echo", {"error": 0, "headers": [["x-err", "e"]], "body": "broken"})
    assert r.status == 503, r
    assert r.header("x-err") == "e" and r.body == b"broken"


def test_ea04_status_on_error_and_timeout(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, {
        "grpc_service": {"envoy_grpc": {"cluster_name": "authz"}, "timeout": "0.2s"},
        "status_on_error": {"code": 503}}))
    r = get(sy, "/echo", {"hang": True})
    assert r.status == 503, r
    assert stat(sy, "error") == 1
    # The proxy gave up on the call: the server sees it cancelled.
    until(lambda: grpc_authz.cancelled == 1, what="the hung call to be cancelled")


def test_ea04_failure_mode_allow_adds_the_header(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(
        failure_mode_allow=True, failure_mode_allow_header_add=True)))
    r = get(sy, "/echo", {"abort": "INTERNAL"})
    assert r.status == 200, r
    assert upstream_headers(r)["x-envoy-auth-failure-mode-allowed"] == ["true"]
    assert stat(sy, "error") == 1 and stat(sy, "failure_mode_allowed") == 1
    # A denial is not an error: failure_mode_allow does not let it through.
    assert get(sy, "/echo", {"deny": 0}).status == 403


def test_ea04_server_down_is_403_and_allowed_in_failure_mode(upstream, switchyard):
    down = free_port()
    sy = switchyard(config(upstream.port, down, grpc_filter()))
    assert get(sy, "/echo").status == 403
    sy2 = switchyard(config(upstream.port, down, grpc_filter(failure_mode_allow=True)))
    r = get(sy2, "/echo")
    assert r.status == 200, r
    assert "x-envoy-auth-failure-mode-allowed" not in upstream_headers(r)


def test_ea04_unknown_cluster_takes_the_error_path(upstream, switchyard):
    cfg = config(upstream.port, free_port(), {
        "grpc_service": {"envoy_grpc": {"cluster_name": "nope"}}})
    sy = switchyard(cfg)
    assert get(sy, "/echo").status == 403
    assert stat(sy, "error") == 1


# --- request bodies (EA-05) --------------------------------------------------------------------


def body_filter(**settings):
    return grpc_filter(with_request_body={"max_request_bytes": 10, **settings})


def test_ea05_body_within_the_limit_is_sent(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, body_filter()))
    test_id = uuid.uuid4().hex
    r = get(sy, "/echo", method="POST", body=b"small", headers={"x-test-id": test_id})
    assert r.status == 200, r
    assert r.json()["body_length"] == 5
    [cr] = grpc_authz.find(test_id)
    assert cr.attributes.request.http.body == "small"
    assert cr.attributes.request.http.headers["x-envoy-auth-partial-body"] == "false"


def test_ea05_body_over_the_limit_is_413_without_a_check(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, body_filter()))
    r = get(sy, "/echo", method="POST", body=b"x" * 100)
    assert r.status == 413, r
    assert grpc_authz.requests == []


def test_ea05_partial_body(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port,
                           body_filter(allow_partial_message=True)))
    test_id = uuid.uuid4().hex
    body = b"0123456789abcdefghij" * 50
    r = get(sy, "/echo", method="POST", body=body, headers={"x-test-id": test_id})
    assert r.status == 200, r
    assert r.json()["body_length"] == len(body)
    [cr] = grpc_authz.find(test_id)
    http = cr.attributes.request.http
    assert http.body == "0123456789"
    assert http.headers["x-envoy-auth-partial-body"] == "true"


def test_ea05_pack_as_bytes_and_header_only(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, body_filter(pack_as_bytes=True)))
    test_id = uuid.uuid4().hex
    r = get(sy, "/echo", method="POST", body=b"\xff\x00\xfe", headers={"x-test-id": test_id})
    assert r.status == 200, r
    [cr] = grpc_authz.find(test_id)
    assert cr.attributes.request.http.raw_body == b"\xff\x00\xfe"
    assert cr.attributes.request.http.body == ""
    # A request without a body is checked at once.
    test_id = uuid.uuid4().hex
    assert get(sy, "/echo", headers={"x-test-id": test_id}).status == 200
    [cr] = grpc_authz.find(test_id)
    assert cr.attributes.request.http.raw_body == b""


@pytest.mark.parametrize("verdict", ["allow", "deny"])
def test_ea05_websocket_is_checked_at_once(upstream, grpc_authz, switchyard, verdict):
    # An upgrade has no body to wait for: checked on its headers even with with_request_body,
    # and once allowed the tunnel carries bytes both ways.
    sy = switchyard(config(upstream.port, grpc_authz.port, body_filter()))
    script = {} if verdict == "allow" else {"deny": 0}
    ws = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
          ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
          ("x-authz", json.dumps(script))]
    with harness.RawClient(sy.port("ingress")) as c:
        c.send(harness.raw_request("GET", "/ws", ws))
        r = c.read_response()
        if verdict == "deny":
            assert r.status == 403, r
            return
        assert r.status == 101, r
        c.send(b"ping through the tunnel")
        assert c.read_exact(23) == b"ping through the tunnel"
    assert len(grpc_authz.requests) == 1


# --- raw headers (EA-06), metadata (EA-07), validation (EA-08), route cache (EA-09) ------------


def test_ea06_encode_raw_headers(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(encode_raw_headers=True)))
    test_id = uuid.uuid4().hex
    with harness.RawClient(sy.port("ingress")) as c:
        c.send(harness.raw_request("GET", "/echo", [("x-test-id", test_id), ("x-dup", "one"),
                                                    ("x-dup", "two"), ("x-bin", "caf\xe9")]))
        assert c.read_response().status == 200
    [cr] = grpc_authz.requests
    http = cr.attributes.request.http
    assert len(http.headers) == 0
    got = [(h.key, h.raw_value) for h in http.header_map.headers]
    assert ("x-dup", b"one") in got and ("x-dup", b"two") in got
    assert ("x-test-id", test_id.encode()) in got
    assert all(h.value == "" for h in http.header_map.headers)


def two_filters(upstream_port, authz_port, second, first=None, **kw):
    """The ext_authz filter (FIRST's config, default grpc_filter()) followed by a second one
    configured with SECOND: the second sees what the first one's answer left on the stream."""
    cfg = config(upstream_port, authz_port, first or grpc_filter(), **kw)
    cfg["listeners"][0]["filters"].append({"module": "ext_authz", "config": second})
    return cfg


def test_ea07_dynamic_metadata_reaches_a_later_filter(upstream, grpc_authz, switchyard):
    # A second ext_authz filter reads the whole namespace the first one's server emitted,
    # through metadata_context, with the values' JSON types (as Envoy sends it): no key list.
    sy = switchyard(two_filters(upstream.port, grpc_authz.port,
                                grpc_filter(metadata_context_namespaces=[NS, "absent.ns"])))
    test_id = uuid.uuid4().hex
    emitted = {"user": "alice", "n": 3, "ok": True, "nested": {"a": [1, "x", None]}}
    r = get(sy, "/echo", {"metadata": emitted}, headers={"x-test-id": test_id})
    assert r.status == 200, r
    first, second = grpc_authz.find(test_id)
    assert NS not in first.attributes.metadata_context.filter_metadata
    md = second.attributes.metadata_context.filter_metadata
    assert MessageToDict(md[NS]) == emitted
    assert "absent.ns" not in md


def test_ea07_dynamic_metadata_merges_into_the_namespace(upstream, grpc_authz, switchyard):
    # Two answers on one stream: the second merges into the namespace member by member (Envoy's
    # setDynamicMetadata), and the access log's fields see the typed values.
    cfg = two_filters(upstream.port, grpc_authz.port, grpc_filter())
    cfg["access_log"] = {"path": "access.log", "fields": {
        "authz": f"%DYNAMIC_METADATA({NS})%", "n": f"%DYNAMIC_METADATA({NS}:n)%"}}
    sy = switchyard(cfg)
    test_id = uuid.uuid4().hex
    # The first answer rewrites the x-authz script the second filter's check request carries.
    second = json.dumps({"metadata": {"n": 4}})
    r = get(sy, "/echo", {"metadata": {"user": "alice", "n": 3},
                          "headers": [["x-authz", second, "overwrite_if_exists_or_add"]]},
            headers={"x-test-id": test_id, "x-request-id": test_id})
    assert r.status == 200, r
    e = sy.wait_access_entry(lambda e: e.get("request_id") == test_id)
    assert e["authz"] == {"user": "alice", "n": 4}
    assert e["n"] == 4


def test_ea07_route_metadata_context_namespaces(upstream, grpc_authz, switchyard):
    routes = [to_cluster("md", {"prefix": "/echo"}, "backend",
                         metadata={"team": {"owner": "payments", "tier": 2}})]
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(
        route_metadata_context_namespaces=["team", "absent.ns"],
        metadata_context_namespaces=["team"]), routes=routes))
    test_id = uuid.uuid4().hex
    assert get(sy, "/echo", headers={"x-test-id": test_id}).status == 200
    [cr] = grpc_authz.find(test_id)
    md = cr.attributes.route_metadata_context.filter_metadata
    assert MessageToDict(md["team"]) == {"owner": "payments", "tier": 2}
    assert "absent.ns" not in md
    # The route's metadata is not the stream's dynamic metadata.
    assert "team" not in cr.attributes.metadata_context.filter_metadata


def test_ea07_metadata_ingestion_can_be_disabled(upstream, grpc_authz, switchyard):
    sy = switchyard(two_filters(upstream.port, grpc_authz.port,
                                grpc_filter(metadata_context_namespaces=[NS]),
                                first=grpc_filter(enable_dynamic_metadata_ingestion=False)))
    test_id = uuid.uuid4().hex
    assert get(sy, "/echo", {"metadata": {"user": "alice"}},
               headers={"x-test-id": test_id}).status == 200
    first, second = grpc_authz.find(test_id)
    assert NS not in second.attributes.metadata_context.filter_metadata


def test_ea08_validate_mutations(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(validate_mutations=True)))
    r = get(sy, "/echo", {"headers": [["bad header", "v"]]})
    assert r.status == 500, r
    assert stat(sy, "invalid") == 1
    r = get(sy, "/echo", {"headers": [["x-ok", "fine"]]})
    assert r.status == 200, r


def test_ea09_clear_route_cache_reroutes_after_a_mutation(upstream, grpc_authz, switchyard):
    routes = [harness.direct("vip", {"prefix": "/", "headers": [{"name": "x-tier",
                                                                   "exact": "vip"}]},
                             body="vip route")]
    for clear, expect in ((True, b"vip route"), (False, None)):
        sy = switchyard(config(upstream.port, grpc_authz.port,
                               grpc_filter(clear_route_cache=clear), routes=routes))
        r = get(sy, "/echo", {"headers": [["x-tier", "vip"]]})
        assert r.status == 200, r
        if expect:
            assert r.body == expect
        else:
            assert upstream_headers(r)["x-tier"] == ["vip"]


# --- per route (EA-10), denied body limit (EA-11) ----------------------------------------------


def test_ea10_per_route_disabled_and_context_extensions(upstream, grpc_authz, switchyard):
    routes = [
        to_cluster("open", {"prefix": "/", "headers": [{"name": "x-route", "exact": "open"}]},
                   "backend",
                   per_filter={"ext_authz": {"@type": "type.googleapis.com/envoy.extensions."
                                             "filters.http.ext_authz.v3.ExtAuthzPerRoute",
                                             "disabled": True}}),
        to_cluster("ctx", {"prefix": "/", "headers": [{"name": "x-route", "exact": "ctx"}]},
                   "backend", per_filter={"ext_authz": {
            "check_settings": {"context_extensions": {"tenant": "acme", "tier": "gold"}}}}),
    ]
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(), routes=routes))
    assert get(sy, "/echo", {"deny": 0}, headers={"x-route": "open"}).status == 200
    assert grpc_authz.requests == []
    assert stat(sy, "disabled") == 1
    test_id = uuid.uuid4().hex
    assert get(sy, "/echo", headers={"x-test-id": test_id, "x-route": "ctx"}).status == 200
    [cr] = grpc_authz.find(test_id)
    assert dict(cr.attributes.context_extensions) == {"tenant": "acme", "tier": "gold"}


def percent(numerator, denominator="HUNDRED"):
    return {"default_value": {"numerator": numerator, "denominator": denominator},
            "runtime_key": "ext_authz.enabled"}


def test_ea10_filter_enabled_zero_percent_checks_nothing(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port,
                           grpc_filter(filter_enabled=percent(0))))
    for _ in range(3):
        assert get(sy, "/echo", {"deny": 0}).status == 200
    assert grpc_authz.requests == []
    assert stat(sy, "disabled") == 3 and stat(sy, "denied") == 0


# A numerator over the denominator is the whole share, as in Envoy.
@pytest.mark.parametrize("fraction", [percent(100), percent(1_000_000, "MILLION"),
                                      percent(20_000, "TEN_THOUSAND")],
                         ids=["hundred", "million", "over"])
def test_ea10_filter_enabled_full_share_checks_every_request(upstream, grpc_authz, switchyard,
                                                             fraction):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(filter_enabled=fraction)))
    for _ in range(3):
        test_id = uuid.uuid4().hex
        assert get(sy, "/echo", {"deny": 0}, headers={"x-test-id": test_id}).status == 403
        assert len(grpc_authz.find(test_id)) == 1
    assert stat(sy, "disabled") == 0


@pytest.mark.parametrize("flag", [True, {"value": True}])
def test_ea10_deny_at_disable_answers_status_on_error(upstream, grpc_authz, switchyard, flag):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(
        filter_enabled=percent(0), status_on_error={"code": 503},
        deny_at_disable={"default_value": flag, "runtime_key": "ext_authz.deny"})))
    r = get(sy, "/echo")
    assert r.status == 503, r
    assert grpc_authz.requests == []
    assert stat(sy, "disabled") == 1


def test_ea10_deny_at_disable_only_acts_on_a_disabled_filter(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(
        filter_enabled=percent(100),
        deny_at_disable={"default_value": True, "runtime_key": "ext_authz.deny"})))
    assert get(sy, "/echo").status == 200
    assert len(grpc_authz.requests) == 1


def test_ea11_denied_body_is_truncated(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port,
                           grpc_filter(max_denied_response_body_bytes=4)))
    r = get(sy, "/echo", {"deny": 401, "body": "0123456789"})
    assert r.status == 401 and r.body == b"0123", r


# --- HTTP service (EA-20 ... EA-23) ------------------------------------------------------------


def test_ea20_http_check_request_shape(upstream, http_authz, switchyard):
    sy = switchyard(config(upstream.port, http_authz.port, http_filter(service={
        "authorization_request": {
            "allowed_headers": {"patterns": [{"exact": "x-test-id"}, {"prefix": "x-allow-"}]},
            "headers_to_add": [{"key": "x-added", "value": "yes"},
                               {"key": "x-allow-me", "value": "replaced"}]}}),
        protocol="http1"))
    test_id = uuid.uuid4().hex
    r = get(sy, "/echo?x=1", method="POST", body=b"payload",
            headers={"x-test-id": test_id, "authorization": "Bearer t", "x-allow-me": "orig",
                     "x-allow-too": "2", "x-other": "no", "cookie": "c=1"})
    assert r.status == 200, r
    assert r.json()["body_length"] == 7
    [cr] = http_authz.find(test_id)
    assert cr["method"] == "POST"
    assert cr["path"] == "/auth/echo?x=1"
    h = cr["headers"]
    assert h["host"] == f"127.0.0.1:{sy.port('ingress')}"
    assert h["authorization"] == "Bearer t"
    assert h["x-allow-too"] == "2" and h["x-allow-me"] == "replaced" and h["x-added"] == "yes"
    assert "x-other" not in h and "cookie" not in h
    assert h["content-length"] == "0" and cr["body"] == b""


def test_ea20_http_check_with_body(upstream, http_authz, switchyard):
    sy = switchyard(config(upstream.port, http_authz.port,
                           http_filter(with_request_body={"max_request_bytes": 100}),
                           protocol="http1"))
    test_id = uuid.uuid4().hex
    assert get(sy, "/echo", method="PUT", body=b"abc",
               headers={"x-test-id": test_id}).status == 200
    [cr] = http_authz.find(test_id)
    assert cr["method"] == "PUT" and cr["body"] == b"abc" and cr["headers"]["content-length"] == "3"


def test_ea21_http_allow_with_header_rules(upstream, http_authz, switchyard):
    sy = switchyard(config(upstream.port, http_authz.port, http_filter(service={
        "authorization_response": {
            "allowed_upstream_headers": {"patterns": [{"exact": "x-user"}]},
            "allowed_upstream_headers_to_append": {"patterns": [{"exact": "x-tag"}]},
            "allowed_client_headers_on_success": {"patterns": [{"exact": "set-cookie"}]}}}),
        protocol="http1"))
    r = get(sy, "/echo", {"headers": [["x-user", "alice"], ["x-tag", "t2"],
                                      ["set-cookie", "a=1"], ["set-cookie", "b=2"],
                                      ["x-secret", "no"],
                                      ["x-envoy-auth-headers-to-remove", "x-drop, x-drop2"]]},
            headers={"x-user": "mallory", "x-tag": "t1", "x-drop": "1", "x-drop2": "2"})
    assert r.status == 200, r
    up = upstream_headers(r)
    assert up["x-user"] == ["alice"]
    assert up["x-tag"] == ["t1", "t2"]
    assert "x-drop" not in up and "x-drop2" not in up and "x-secret" not in up
    assert r.all("set-cookie") == ["a=1", "b=2"]
    assert stat(sy, "ok") == 1


@pytest.mark.parametrize("allowed", [None, ["x-reason"]], ids=["all-headers", "allowed-list"])
def test_ea22_http_denials(upstream, http_authz, switchyard, allowed):
    resp = {}
    if allowed:
        resp = {"authorization_response": {"allowed_client_headers": {
            "patterns": [{"exact": a} for a in allowed]}}}
    sy = switchyard(config(upstream.port, http_authz.port, http_filter(service=resp),
                           protocol="http1"))
    r = get(sy, "/echo", {"deny": 302, "headers": [["location", "/login"], ["x-reason", "r"],
                                                   ["x-other", "o"]], "body": "moved"})
    assert r.status == 302, r
    assert r.header("location") == "/login" and r.header("x-reason") == "r"
    assert (r.header("x-other") == "o") == (allowed is None)
    assert r.body == b"moved"
    r = get(sy, "/echo", {"deny": 401, "headers": [["www-authenticate", "Basic"]]})
    assert r.status == 401 and r.header("www-authenticate") == "Basic"
    assert stat(sy, "denied") == 2


@pytest.mark.parametrize("script", [{"error": 500}, {"error": 503, "body": "down"},
                                    {"hang": True}, {"crash": True}],
                         ids=["500", "503", "timeout", "crash"])
def test_ea23_http_errors(upstream, http_authz, switchyard, script):
    f = http_filter(service={"server_uri": {"uri": "http://authz", "cluster": "authz",
                                            "timeout": "0.3s"}})
    sy = switchyard(config(upstream.port, http_authz.port, f, protocol="http1"))
    r = get(sy, "/echo", script)
    assert r.status == 403, r
    assert stat(sy, "error") == 1
    sy2 = switchyard(config(upstream.port, http_authz.port,
                            {**f, "failure_mode_allow": True}, protocol="http1"))
    assert get(sy2, "/echo", script).status == 200


# --- counters on the admin API -----------------------------------------------------------------


def test_counters_with_envoys_names_and_stat_prefix(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(stat_prefix="front")))
    assert get(sy, "/echo").status == 200
    assert get(sy, "/echo", {"deny": 0}).status == 403
    assert get(sy, "/echo", {"abort": "INTERNAL"}).status == 403
    stats = sy.stats()
    for name, value in (("ok", 1), ("denied", 1), ("error", 1), ("failure_mode_allowed", 0),
                        ("disabled", 0), ("invalid", 0)):
        assert stats[f"module.ext_authz.front.{name}"] == value, name
    prom = sy.admin("GET", "/stats/prometheus").text()
    assert any(line.startswith("switchyard_module_ok{") and 'stat_prefix="front"' in line
               and 'module="ext_authz"' in line and line.endswith(" 1")
               for line in prom.splitlines()), prom


# --- robustness --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["grpc", "http"])
def test_rb01_a_thousand_concurrent_mixed_requests_get_their_own_answers(
        upstream, grpc_authz, http_authz, switchyard, mode):
    if mode == "grpc":
        sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    else:
        sy = switchyard(config(upstream.port, http_authz.port, http_filter(service={
            "authorization_response": {
                "allowed_upstream_headers": {"patterns": [{"exact": "x-echo"}]},
                "allowed_client_headers": {"patterns": [{"exact": "x-echo"}]}}}),
            protocol="http1"))

    def one(i):
        token = f"req-{i}-{uuid.uuid4().hex[:8]}"
        script = {"echo": token} if i % 3 else {"deny": 401, "echo": token, "body": token}
        r = get(sy, "/echo", script, headers={"x-token": token}, timeout=60)
        if i % 3:
            ok = r.status == 200 and upstream_headers(r)["x-echo"] == [token] and \
                upstream_headers(r)["x-token"] == [token]
        else:
            ok = r.status == 401 and r.header("x-echo") == token and r.body == token.encode()
        return ok, i, r.status

    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(one, range(1000)))
    bad = [(i, s) for ok, i, s in results if not ok]
    assert bad == [], bad[:10]
    assert stat(sy, "ok") == 666 and stat(sy, "denied") == 334


def test_rb_client_leaving_cancels_the_call(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(
        grpc_service={"envoy_grpc": {"cluster_name": "authz"}, "timeout": "30s"})))
    with harness.RawClient(sy.port("ingress")) as c:
        c.send(harness.raw_request("GET", "/echo", [("x-authz", json.dumps({"hang": True}))]))
        until(lambda: len(grpc_authz.requests) == 1, what="the check to reach the server")
    # The client is gone: the proxy resets the call rather than wait for it.
    until(lambda: grpc_authz.cancelled == 1, what="the call to be cancelled")
    assert sy.running()
    assert get(sy, "/echo").status == 200


@pytest.mark.measures_memory
def test_rb_no_leak_over_thousands_of_checks(upstream, grpc_authz, switchyard):
    # Allowed, denied and timed-out checks (the proxy resets the call) by the thousand: the
    # proxy's resident memory settles once pools and caches are warm, and stays. Listener
    # `ingress` has a generous timeout, `fast` one of 50 ms for the calls the server holds.
    cfg = config(upstream.port, grpc_authz.port, grpc_filter())
    fast = json.loads(json.dumps(cfg["listeners"][0]))
    fast["name"] = "fast"
    fast["filters"][0]["config"] = {
        "grpc_service": {"envoy_grpc": {"cluster_name": "authz"}, "timeout": "0.05s"}}
    cfg["listeners"].append(fast)
    sy = switchyard(cfg)
    cases = [("ingress", {"echo": "a"}, 200), ("ingress", {"deny": 401, "body": "no"}, 401),
             ("fast", {"hang": True}, 403)]

    def burst(n):
        def one(i):
            listener, script, status = cases[i % 3]
            r = request(sy.port(listener), "GET", "/echo",
                        headers={"x-authz": json.dumps(script)}, timeout=60)
            return (listener, r.status) if r.status != status else None
        with ThreadPoolExecutor(max_workers=48) as pool:
            wrong = [x for x in pool.map(one, range(n)) if x]
        assert wrong == [], (len(wrong), sorted(set(wrong)))

    burst(1500)
    before = sy.memory_kib("VmRSS")
    burst(6000)
    growth = sy.memory_kib("VmRSS") - before
    assert growth < 2048, f"resident memory grew by {growth} KiB over 6,000 checks"
    assert stat(sy, "error") == 2500 and stat(sy, "denied") == 2500


def test_rb_slow_server_within_the_timeout_is_waited_for(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    r = get(sy, "/echo", {"sleep": 0.3, "echo": "late"})
    assert r.status == 200 and upstream_headers(r)["x-echo"] == ["late"]


def test_rb_server_crashing_mid_call(upstream, grpc_authz, switchyard):
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter()))
    assert get(sy, "/echo").status == 200
    r = get(sy, "/echo", {"crash": True})
    assert r.status == 403, r
    # The server is gone now: every later check fails closed, quickly.
    assert get(sy, "/echo").status == 403
    assert stat(sy, "error") == 2 and sy.running()


def test_rb_tls_cluster_and_mtls_peer_attributes(upstream, switchyard, certs):
    # The check goes over TLS with a client certificate (the cluster's settings), and the
    # downstream client's mTLS certificate, principal and SNI reach the server.
    import urllib.parse

    import grpc
    from tlsutil import curl
    creds = grpc.ssl_server_credentials(
        [(certs.a.key.read_bytes(), certs.a.chain.read_bytes())],
        root_certificates=certs.ca.read_bytes(), require_client_auth=True)
    authz = GrpcAuthz(credentials=creds)
    try:
        cfg = config(upstream.port, authz.port,
                     grpc_filter(include_peer_certificate=True, include_tls_session=True),
                     authz_extra={"tls": {"ca": str(certs.ca), "sni": "a.test",
                                          "certificate": str(certs.client.cert),
                                          "private_key": str(certs.client.key)}})
        cfg["listeners"][0]["tls"] = {"certificate": str(certs.a.chain),
                                      "private_key": str(certs.a.key), "ca": str(certs.ca)}
        sy = switchyard(cfg)
        test_id = uuid.uuid4().hex
        port = sy.port("ingress")
        r = curl(f"https://a.test:{port}/echo", resolve=[("a.test", port)],
                 args=["--http1.1", "--cacert", certs.ca, "--cert", certs.client.cert,
                       "--key", certs.client.key, "-H", f"x-test-id: {test_id}"])
        assert r.status == 200, r
        [cr] = authz.find(test_id)
        a = cr.attributes
        assert a.request.http.scheme == "https"
        assert a.tls_session.sni == "a.test"
        assert "client-one" in a.source.principal
        pem = urllib.parse.unquote(a.source.certificate)
        assert pem.startswith("-----BEGIN CERTIFICATE-----")
        assert pem.strip() == certs.client.cert.read_text().strip()
    finally:
        authz.stop()


def test_hot_swap_under_load_loses_nothing(upstream, grpc_authz, switchyard):
    # The held check waits out three swaps under load (each with its preflight child): a
    # timeout well past that, so that only a lost request can fail the test.
    sy = switchyard(config(upstream.port, grpc_authz.port, grpc_filter(grpc_service={
        "envoy_grpc": {"cluster_name": "authz"}, "timeout": harness.budget(30)})))
    stop = threading.Event()
    failures, done = [], [0]

    def load():
        while not stop.is_set():
            r = get(sy, "/echo", {"echo": "x"})
            if r.status != 200 or upstream_headers(r).get("x-echo") != ["x"]:
                failures.append(r.status)
            done[0] += 1

    # A check still out when its generation is replaced finishes on that generation.
    slow = []
    threads = [threading.Thread(target=load) for _ in range(8)]
    threads.append(threading.Thread(target=lambda: slow.append(
        get(sy, "/echo", {"hold": True, "echo": "slow"}, headers={"x-test-id": "slow"}))))
    for t in threads:
        t.start()
    try:
        until(lambda: grpc_authz.find("slow"), what="the slow check to reach the server")
        for _ in range(3):
            before = done[0]
            until(lambda: done[0] > before + 50, what="traffic before the swap")
            r = reload_module(sy, "ext_authz", module_file("ext_authz"))
            assert r.status == 200, r
        grpc_authz.released.set()
        until(lambda: slow, what="the held check to be answered")
        before = done[0]
        until(lambda: done[0] > before + 50, what="traffic after the last swap")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert done[0] > 200
    [r] = slow
    assert r.status == 200 and upstream_headers(r)["x-echo"] == ["slow"], r
    assert sy.stats()["loader.ext_authz.generation"] == 4


# --- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, words", [
    ({}, "needs exactly one of grpc_service and http_service"),
    ({"grpc_service": {"envoy_grpc": {}}}, "grpc_service.envoy_grpc.cluster_name: required"),
    ({"grpc_service": {"google_grpc": {}}}, "grpc_service.google_grpc: unknown field"),
    (grpc_filter(failure_mode_allow="yes"), "failure_mode_allow: expected true or false"),
    (grpc_filter(status_on_error={"code": 99}), "status_on_error.code: must be an integer"),
    (grpc_filter(with_request_body={"max_request_bytes": 0}), "max_request_bytes"),
    (grpc_filter(bogus=1), "bogus: unknown field"),
    (grpc_filter(allowed_headers={"patterns": [{"safe_regex": {"regex": "("}}]}),
     "invalid regex"),
    ({"grpc_service": {"envoy_grpc": {"cluster_name": "a"}, "timeout": "soon"}},
     "timeout: expected a duration"),
    (grpc_filter(route_metadata_context_namespaces="team"),
     "route_metadata_context_namespaces: expected a list of strings"),
    (grpc_filter(metadata_context_namespaces=[""]),
     "metadata_context_namespaces: expected a list of strings"),
    (grpc_filter(filter_enabled={"default_value": {"numerator": 5, "denominator": "TEN"}}),
     "filter_enabled.default_value.denominator: expected HUNDRED, TEN_THOUSAND or MILLION"),
    (grpc_filter(filter_enabled={"runtime_key": "k"}),
     "filter_enabled.default_value: required"),
    (grpc_filter(deny_at_disable={"default_value": "yes"}),
     "deny_at_disable.default_value: expected true or false"),
], ids=["no-service", "no-cluster", "google-grpc", "bool", "status", "max-bytes", "unknown",
        "regex", "duration", "route-namespaces", "empty-namespace", "denominator",
        "no-default", "deny-flag"])
def test_bad_config_is_refused_with_its_location(upstream, switchyard, bad, words):
    from harness import run_switchyard
    module_file("ext_authz")
    sy = switchyard(with_filters(upstream.port, [{"module": "ext_authz", "config": bad}]),
                    start=False)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert words in text, text
    assert re.search(r"switchyard\.yaml:\d+:\d+", text), text


def test_bad_per_route_config_is_refused(upstream, switchyard):
    from harness import run_switchyard
    cfg = with_filters(upstream.port, [{"module": "ext_authz", "config": grpc_filter()}])
    cfg["listeners"][0]["routes"][0]["per_filter"] = {
        "ext_authz": {"disabled": True, "check_settings": {}}}
    sy = switchyard(cfg, start=False)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode == 1 and "conflicts with disabled" in text, text


def test_envoy_typed_config_is_accepted_as_it_is(upstream, grpc_authz, switchyard):
    # The typed_config body of an Envoy config, "@type" and all.
    sy = switchyard(config(upstream.port, grpc_authz.port, {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "transport_api_version": "V3",
        "grpc_service": {"envoy_grpc": {"cluster_name": "authz"},
                         "timeout": harness.budget(0.5)},
        "failure_mode_allow": False, "with_request_body": {"max_request_bytes": "1024",
                                                           "allow_partial_message": True},
        "status_on_error": {"code": "503"}, "charge_cluster_response_stats": True}))
    assert get(sy, "/echo").status == 200
    assert get(sy, "/echo", {"abort": "INTERNAL"}).status == 503
