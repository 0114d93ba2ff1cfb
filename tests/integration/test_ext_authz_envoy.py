"""Differential tests of the ext_authz module against real Envoy 1.40: the same filter config
(Envoy's ExtAuthz typed_config, pasted unchanged under Switchyard's `config:`) in front of the
same scripted authorization servers (authz_peer.py) and the same upstream.py; the client's
answers must match (status, headers, body), and so must what the upstream and the HTTP
authorization server received. Headers each proxy adds on its own are left out (IGNORED_*).

One Envoy and one Switchyard serve the whole module, each with one listener per filter config:
  grpc   gRPC mode            http   HTTP mode (path_prefix /auth, allowed headers)
  down   gRPC to a closed port          open   the same, with failure_mode_allow (+ header)
  fast   gRPC with a 200 ms timeout and status_on_error 503
  body   gRPC with the body (10 bytes, partial allowed)   strict   the same without partial
  off    gRPC with filter_enabled 0%      shut   the same with deny_at_disable (status 503)
  meta   two gRPC filters, the second sending the first one's dynamic metadata and the route's
         metadata (metadata_context_namespaces, route_metadata_context_namespaces)
"""
import json
import uuid

import pytest
from google.protobuf.json_format import MessageToDict

import envoyutil
import harness
from authz_peer import GrpcAuthz, HttpAuthz
from harness import cluster, free_port, request, to_cluster
from modules_util import MODULES

EXT_AUTHZ = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
FILTER_NAME = "envoy.filters.http.ext_authz"
H2_OPTIONS = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": envoyutil.HTTP_PROTOCOL_OPTIONS,
    "explicit_http_config": {"http2_protocol_options": {}}}}

# Added by one proxy and not the other, or different by nature (ids, addresses, dates).
IGNORED_RESPONSE = {"date", "server", "connection", "keep-alive", "transfer-encoding",
                    "content-length"}
IGNORED_UPSTREAM = {"x-request-id", "x-forwarded-for", "x-forwarded-proto", "connection",
                    "transfer-encoding", "content-length"}
IGNORED_PREFIXES = ("x-envoy-",)


def filters(grpc_port, http_port, down_port):
    return {
        "grpc": {"@type": EXT_AUTHZ, "grpc_service": {
            "envoy_grpc": {"cluster_name": "authz_grpc"}, "timeout": "2s"},
            "transport_api_version": "V3"},
        "http": {"@type": EXT_AUTHZ, "transport_api_version": "V3", "http_service": {
            "server_uri": {"uri": "http://authz.local", "cluster": "authz_http",
                           "timeout": "2s"},
            "path_prefix": "/auth",
            "authorization_request": {"headers_to_add": [{"key": "x-added", "value": "1"}]},
            "authorization_response": {
                "allowed_upstream_headers": {"patterns": [{"exact": "x-user"}]},
                "allowed_client_headers": {"patterns": [{"exact": "x-reason"}]}}},
            "allowed_headers": {"patterns": [{"exact": "x-authz"}, {"exact": "x-test-id"},
                                             {"prefix": "x-allow-"}]}},
        "down": {"@type": EXT_AUTHZ, "grpc_service": {
            "envoy_grpc": {"cluster_name": "authz_down"}, "timeout": "2s"}},
        "open": {"@type": EXT_AUTHZ, "grpc_service": {
            "envoy_grpc": {"cluster_name": "authz_down"}, "timeout": "2s"},
            "failure_mode_allow": True, "failure_mode_allow_header_add": True},
        "body": {"@type": EXT_AUTHZ, "grpc_service": {
            "envoy_grpc": {"cluster_name": "authz_grpc"}, "timeout": "2s"},
            "with_request_body": {"max_request_bytes": 10, "allow_partial_message": True}},
        "strict": {"@type": EXT_AUTHZ, "grpc_service": {
            "envoy_grpc": {"cluster_name": "authz_grpc"}, "timeout": "2s"},
            "with_request_body": {"max_request_bytes": 10}},
        "fast": {"@type": EXT_AUTHZ, "grpc_service": {
            "envoy_grpc": {"cluster_name": "authz_grpc"}, "timeout": "0.2s"},
            "status_on_error": {"code": 503}},
        "off": {"@type": EXT_AUTHZ, "grpc_service": {
            "envoy_grpc": {"cluster_name": "authz_grpc"}, "timeout": "2s"},
            "filter_enabled": {"default_value": {"numerator": 0, "denominator": "HUNDRED"},
                               "runtime_key": "authz.off.enabled"}},
        "shut": {"@type": EXT_AUTHZ, "grpc_service": {
            "envoy_grpc": {"cluster_name": "authz_grpc"}, "timeout": "2s"},
            "status_on_error": {"code": 503},
            "filter_enabled": {"default_value": {"numerator": 0},
                               "runtime_key": "authz.shut.enabled"},
            "deny_at_disable": {"default_value": True, "runtime_key": "authz.shut.deny"}},
        # A chain of two filters.
        "meta": [{"@type": EXT_AUTHZ, "grpc_service": {
                     "envoy_grpc": {"cluster_name": "authz_grpc"}, "timeout": "2s"}},
                 {"@type": EXT_AUTHZ, "grpc_service": {
                     "envoy_grpc": {"cluster_name": "authz_grpc"}, "timeout": "2s"},
                  "metadata_context_namespaces": [FILTER_NAME, "absent.ns"],
                  "route_metadata_context_namespaces": ["team", "absent.ns"]}],
    }


# The `metadata:` of every route (Envoy's route metadata.filter_metadata).
ROUTE_METADATA = {"team": {"owner": "payments", "tier": 2}}


def chain(fc):
    return fc if isinstance(fc, list) else [fc]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(envoy, switchyard, grpc_authz, http_authz, upstream) for the whole module."""
    d = tmp_path_factory.mktemp("ext_authz_envoy")
    upstream = harness.Upstream(d)
    grpc_authz, http_authz = GrpcAuthz(), HttpAuthz()
    down = free_port()
    configs = filters(grpc_authz.port, http_authz.port, down)

    listeners = []
    for name, fc in configs.items():
        vh = [{"name": name, "domains": ["*"],
               "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"},
                           "metadata": {"filter_metadata": ROUTE_METADATA}}]}]
        # The first filter has Envoy's default name, the namespace its metadata goes to.
        listeners.append(envoyutil.http_listener(name, free_port(), vh, [
            {"name": FILTER_NAME if i == 0 else f"{FILTER_NAME}.{i}", "typed_config": c}
            for i, c in enumerate(chain(fc))]))
    envoy = envoyutil.Envoy(d, {"static_resources": {"listeners": listeners, "clusters": [
        envoyutil.static_cluster("backend", upstream.port),
        envoyutil.static_cluster("authz_grpc", grpc_authz.port, trailers=False,
                                 typed_extension_protocol_options=H2_OPTIONS),
        envoyutil.static_cluster("authz_http", http_authz.port, trailers=False),
        envoyutil.static_cluster("authz_down", down, trailers=False)]}})
    envoy.start()

    sy_cfg = {
        "module_path": [str(MODULES)],
        "listeners": [{"name": name,
                       "filters": [{"module": "ext_authz", "config": c} for c in chain(fc)],
                       "routes": [to_cluster("all", {"prefix": "/"}, "backend",
                                             metadata=ROUTE_METADATA)]}
                      for name, fc in configs.items()],
        "clusters": [cluster("backend", upstream.port),
                     cluster("authz_grpc", grpc_authz.port, protocol="http2"),
                     cluster("authz_http", http_authz.port),
                     cluster("authz_down", down, connect_retries=0)],
    }
    sy = harness.Switchyard(d, sy_cfg)
    sy.start()
    yield envoy, sy, grpc_authz, http_authz, upstream
    sy.stop()
    envoy.stop()
    grpc_authz.stop()
    http_authz.stop()
    upstream.stop()


def ask(proxy, listener, script=None, path="/echo", method="GET", body=None, headers=None):
    h = dict(headers or {})
    if script is not None:
        h["x-authz"] = json.dumps(script)
    return request(proxy.port(listener), method, path, body=body, headers=h)


def response_view(r):
    headers = sorted((n.lower(), v) for n, v in r.headers
                     if n.lower() not in IGNORED_RESPONSE and not n.lower().startswith(
                         IGNORED_PREFIXES))
    body = r.body
    if r.status == 200 and r.header("content-type") == "application/json":
        echo = r.json()
        body = {"method": echo["method"], "path": echo["path"],
                "headers": sorted((n.lower(), v) for n, v in echo["headers"]
                                  if n.lower() not in IGNORED_UPSTREAM
                                  and n.lower() != "host"
                                  and not n.lower().startswith(IGNORED_PREFIXES))}
    return {"status": r.status, "headers": headers, "body": body}


def both(world, listener, script=None, **kw):
    envoy, sy = world[0], world[1]
    e, s = ask(envoy, listener, script, **kw), ask(sy, listener, script, **kw)
    ev, sv = response_view(e), response_view(s)
    assert sv == ev, f"\nenvoy:      {ev}\nswitchyard: {sv}"
    return e, s


# --- gRPC --------------------------------------------------------------------------------------


def test_allow_with_header_mutations(world):
    e, _ = both(world, "grpc", {"headers": [["x-set", "new", False], ["x-app", "b", True],
                                            ["x-fresh", "f"]],
                                "remove": ["x-gone"],
                                "response_headers": [["set-cookie", "a=1", True],
                                                     ["set-cookie", "b=2", True],
                                                     ["x-resp", "r", False]]},
                headers={"x-set": "old", "x-app": "a", "x-gone": "1"})
    # The reference itself: Envoy did mutate (so a no-op on both sides would not pass).
    assert e.status == 200 and e.all("set-cookie") == ["a=1", "b=2"]
    up = {n.lower(): v for n, v in e.json()["headers"]}
    assert up["x-set"] == "new" and "x-gone" not in up


def test_allow_with_query_parameters(world):
    e, _ = both(world, "grpc", {"query_set": [["a", "9"], ["n", "1"]], "query_remove": ["b"]},
                path="/echo?a=1&b=2&c=3")
    assert e.json()["path"].startswith("/echo?")


def test_deny_with_status_headers_and_body(world):
    e, _ = both(world, "grpc", {"deny": 401, "headers": [["www-authenticate", "Bearer"],
                                                         ["x-why", "no"]],
                                "body": "go away"})
    assert e.status == 401 and e.body == b"go away"


def test_deny_without_status_or_body(world):
    e, _ = both(world, "grpc", {"deny": 0})
    assert e.status == 403


@pytest.mark.parametrize("script", [{"error": 0}, {"abort": "UNAVAILABLE"}],
                         ids=["error_response", "rpc-failure"])
def test_errors(world, script):
    e, _ = both(world, "grpc", script)
    assert e.status == 403


def test_server_down_is_403(world):
    e, _ = both(world, "down")
    assert e.status == 403


def test_check_request_attributes_match(world):
    envoy, sy, grpc_authz = world[0], world[1], world[2]
    got = {}
    for name, proxy in (("envoy", envoy), ("switchyard", sy)):
        test_id = uuid.uuid4().hex
        assert ask(proxy, "grpc", path="/echo?x=1", headers={"x-test-id": test_id,
                                                             "x-dup": "v"}).status == 200
        [cr] = grpc_authz.find(test_id)
        http = cr.attributes.request.http
        got[name] = {"method": http.method, "path": http.path, "scheme": http.scheme,
                     "protocol": http.protocol, "size": http.size,
                     "header_names": sorted(k for k in http.headers
                                            if k not in IGNORED_UPSTREAM
                                            and not k.startswith(IGNORED_PREFIXES)),
                     "source": cr.attributes.source.address.socket_address.address,
                     "has_time": cr.attributes.request.HasField("time")}
    assert got["switchyard"] == got["envoy"]


def test_metadata_context_from_dynamic_and_route_metadata(world):
    # The first filter's answer carries dynamic_metadata; the second filter sends it on in
    # metadata_context (whole, with its JSON types), and the route's metadata in
    # route_metadata_context. Namespaces that do not exist are left out.
    envoy, sy, grpc_authz = world[0], world[1], world[2]
    emitted = {"user": "alice", "n": 3, "ok": True, "nested": {"a": [1, "x", None]}}
    got = {}
    for name, proxy in (("envoy", envoy), ("switchyard", sy)):
        test_id = uuid.uuid4().hex
        assert ask(proxy, "meta", {"metadata": emitted},
                   headers={"x-test-id": test_id}).status == 200
        first, second = grpc_authz.find(test_id)
        md = MessageToDict(second.attributes.metadata_context)
        # Envoy may add the check's duration to the namespace; Switchyard does not (a
        # documented difference in docs/ext_authz.md).
        md.get("filterMetadata", {}).get(FILTER_NAME, {}).pop("ext_authz_duration", None)
        got[name] = {"first": MessageToDict(first.attributes.metadata_context),
                     "metadata_context": md,
                     "route": MessageToDict(second.attributes.route_metadata_context)}
    assert got["switchyard"] == got["envoy"]
    assert got["envoy"]["metadata_context"] == {"filterMetadata": {FILTER_NAME: emitted}}
    assert got["envoy"]["route"] == {"filterMetadata": ROUTE_METADATA}


# --- HTTP --------------------------------------------------------------------------------------


def test_http_check_request_shape(world):
    envoy, sy, http_authz = world[0], world[1], world[3]
    seen, hosts = {}, {}
    for name, proxy in (("envoy", envoy), ("switchyard", sy)):
        test_id = uuid.uuid4().hex
        r = ask(proxy, "http", path="/echo?q=1", method="POST", body=b"payload",
                headers={"x-test-id": test_id, "authorization": "Bearer t", "x-allow-a": "1",
                         "x-other": "no", "cookie": "c=1"})
        assert r.status == 200, (name, r)
        [cr] = http_authz.find(test_id)
        hosts[name] = cr["headers"].get("host")
        seen[name] = {"method": cr["method"], "path": cr["path"], "body": cr["body"],
                      "headers": sorted((k, v) for k, v in cr["list"]
                                        if k not in IGNORED_UPSTREAM - {"content-length"}
                                        and k not in ("host", "x-test-id")
                                        and not k.startswith(IGNORED_PREFIXES))}
    assert seen["switchyard"] == seen["envoy"]
    # Both keep the client's Host (not the server_uri's).
    for name, proxy in (("envoy", envoy), ("switchyard", sy)):
        assert hosts[name] == f"127.0.0.1:{proxy.port('http')}", hosts
    assert seen["envoy"]["path"] == "/auth/echo?q=1"
    assert ("content-length", "0") in seen["envoy"]["headers"]


def test_http_allow_passes_allowed_upstream_headers(world):
    e, _ = both(world, "http", {"headers": [["x-user", "alice"], ["x-secret", "s"]]},
                headers={"x-user": "mallory"})
    up = {n.lower(): v for n, v in e.json()["headers"]}
    assert up["x-user"] == "alice" and "x-secret" not in up


def test_http_deny(world):
    e, _ = both(world, "http", {"deny": 401, "headers": [["x-reason", "r"], ["x-other", "o"],
                                                         ["www-authenticate", "Basic"]],
                                "body": "denied"})
    assert e.status == 401 and e.body == b"denied"


def test_http_server_error(world):
    e, _ = both(world, "http", {"error": 503, "body": "down"})
    assert e.status == 403


def test_failure_mode_allow_with_header(world):
    e, s = both(world, "open")
    for r in (e, s):
        up = {n.lower(): v for n, v in r.json()["headers"]}
        assert up["x-envoy-auth-failure-mode-allowed"] == "true", r


def test_timeout_takes_status_on_error(world):
    e, _ = both(world, "fast", {"sleep": 1})
    assert e.status == 503


def test_http_redirect(world):
    e, _ = both(world, "http", {"deny": 302, "headers": [["location", "/login"]]})
    assert e.status == 302 and e.header("location") == "/login"


@pytest.mark.parametrize("body", [b"short", b"0123456789abcdefghij" * 20],
                         ids=["within", "partial"])
def test_request_body_in_the_check(world, body):
    envoy, sy, grpc_authz = world[0], world[1], world[2]
    got = {}
    for name, proxy in (("envoy", envoy), ("switchyard", sy)):
        test_id = uuid.uuid4().hex
        r = ask(proxy, "body", method="POST", body=body, headers={"x-test-id": test_id})
        assert r.status == 200, (name, r)
        assert r.json()["body_length"] == len(body)
        [cr] = grpc_authz.find(test_id)
        http = cr.attributes.request.http
        got[name] = {"body": http.body, "size": http.size,
                     "partial": http.headers.get("x-envoy-auth-partial-body")}
    assert got["switchyard"] == got["envoy"]
    assert got["envoy"]["body"] == body[:10].decode()


def test_request_body_over_the_limit(world):
    e, _ = both(world, "strict", method="POST", body=b"x" * 100)
    assert e.status == 413


# --- filter_enabled / deny_at_disable ----------------------------------------------------------


def test_filter_enabled_zero_is_never_checked(world):
    grpc_authz = world[2]
    test_id = uuid.uuid4().hex
    e, _ = both(world, "off", {"deny": 0}, headers={"x-test-id": test_id})
    assert e.status == 200
    assert grpc_authz.find(test_id) == []


def test_deny_at_disable_answers_status_on_error(world):
    grpc_authz = world[2]
    test_id = uuid.uuid4().hex
    e, _ = both(world, "shut", headers={"x-test-id": test_id})
    assert e.status == 503
    assert grpc_authz.find(test_id) == []
