"""The ext_authz module (modules/ext_authz, issue 14) against real servers: a grpcio
envoy.service.auth.v3.Authorization/Check server and an HTTP authorization server
(authz_peer.py, scripted per request by the request's x-authz header), with upstream.py behind
the proxy. Test names carry the acceptance ids of shared/reference/ext_proc-ext_authz.md §6.
"""
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness
from authz_peer import GrpcAuthz, HttpAuthz
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
    return {"grpc_service": {"envoy_grpc": {"cluster_name": "authz"}, "timeout": "2s"}, **extra}


def http_filter(**extra):
    service = {"server_uri": {"uri": "http://authz.local", "cluster": "authz", "timeout": "2s"},
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
    assert http.size == -1
    assert http.query == "" and http.fragment == ""
    assert http.headers["x-mixed-case"] == "v"
    assert http.headers[":method"] == "GET" and http.headers[":path"] == "/echo?a=1&b=2"
    assert a.source.address.socket_address.address == "127.0.0.1"
    assert a.source.address.socket_address.port_value > 0
    assert a.destination.address.socket_address.address == "127.0.0.1"
    assert a.destination.address.socket_address.port_value == sy.port("ingress")
    assert a.request.time.seconds > 1_600_000_000
