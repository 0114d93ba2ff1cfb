"""ABI 1.2 typed metadata, seen from the wire: a filter (tests/abi/fx_typed_md.cc, on the C++
SDK) sets, merges and reads a dynamic-metadata namespace as a JSON object, reads the
`metadata:` of its route, listener and cluster, reads attributes with their types, and leaves
metadata and filter state that the access log's `fields:` pick up."""
import json
import re

import pytest

import tlsutil
from harness import cluster, request, run_switchyard, to_cluster, until
from modules_util import fixture_file
from tlsutil import certs, curl  # noqa: F401 (fixture)

# sy_value_type_t
STRING, INT, BOOL, BYTES, TIMESTAMP, DURATION = range(6)
# sy_status_t
SY_OK, SY_ERR_INVALID = 0, 2

LOG_FIELDS = {
    "user": "%DYNAMIC_METADATA(authz:user)%",
    "roles": "%DYNAMIC_METADATA(authz:roles)%",
    "authz": "%DYNAMIC_METADATA(authz)%",
    "tenant": "%FILTER_STATE(tenant)%",
    "absent": "%FILTER_STATE(nobody-set-this)%",
}


def typed_config(upstream_port, listener_extra=None, log_fields=None):
    route = to_cluster("all", {"prefix": "/"}, "backend",
                       metadata={"team": {"owner": "payments", "tier": 2}})
    listener = {"name": "ingress", "filters": [{"module": "typed_md"}], "routes": [route],
                "metadata": {"team": {"vhost": True}}, **(listener_extra or {})}
    cfg = {"modules": [{"name": "typed_md", "path": str(fixture_file("typed_md"))}],
           "listeners": [listener],
           "clusters": [cluster("backend", upstream_port,
                                metadata={"team": {"pool": "blue", "weights": [1, 2]}})]}
    if log_fields is not None:
        # Relative to the proxy's working directory: the harness's access.log.
        cfg["access_log"] = {"path": "access.log", "fields": log_fields}
    return cfg


def hjson(r, name):
    """Response header NAME as JSON (the client reads header bytes as Latin-1: undo that)."""
    return json.loads(r.header(name).encode("latin-1").decode("utf-8"))


def test_namespace_set_merge_get_and_the_access_log(upstream, switchyard):
    sy = switchyard(typed_config(upstream.port, log_fields=LOG_FIELDS))
    r = request(sy.port("ingress"), "GET", "/echo", headers={
        "x-request-id": "typed-1",
        "x-md-string": "alice",
        "x-md-set": '{"user": "bob", "roles": ["a", "b"], "n": 1, "s": "caf\\u00e9"}',
        "x-md-merge": '{"n": 2, "ok": true}',
        "x-tenant": "t1"})
    assert r.status == 200, r
    assert (r.header("x-rc-set"), r.header("x-rc-merge")) == (str(SY_OK), str(SY_OK))
    # Set replaced the namespace (metadata_set's "alice" went), merge replaced only "n".
    assert hjson(r, "x-md-dynamic") == {
        "user": "bob", "roles": ["a", "b"], "n": 2, "ok": True, "s": "café"}
    # A string member reads back through the 1.0 call as the string itself.
    assert r.header("x-md-user") == "bob"
    assert hjson(r, "x-md-route") == {"owner": "payments", "tier": 2}
    assert hjson(r, "x-md-vhost") == {"vhost": True}
    assert hjson(r, "x-md-cluster") == {"pool": "blue", "weights": [1, 2]}

    e = sy.wait_access_entry(lambda e: e.get("request_id") == "typed-1")
    assert e["user"] == "bob"
    assert e["roles"] == ["a", "b"]
    assert e["authz"] == {"user": "bob", "roles": ["a", "b"], "n": 2, "ok": True, "s": "café"}
    assert e["tenant"] == "t1"
    assert "absent" in e and e["absent"] is None


@pytest.mark.parametrize("flag, reply, logged", [
    ("UAEX", "403", "UAEX"),   # set before the filter's own reply: it, not "LR", is the cause
    ("RLSE", None, "RLSE"),    # on a request that the upstream then answers
    (None, "403", "LR"),       # without a flag a filter's reply is "LR"
], ids=["uaex-reply", "rlse-upstream", "no-flag"])
def test_set_response_flag_reaches_the_access_log(upstream, switchyard, flag, reply, logged):
    sy = switchyard(typed_config(upstream.port))
    headers = {"x-request-id": f"flag-{flag}-{reply}"}
    if flag:
        headers["x-flag"] = flag
    if reply:
        headers["x-reply"] = reply
    r = request(sy.port("ingress"), "GET", "/echo", headers=headers)
    assert r.status == int(reply or 200), r
    assert r.header("x-rc-flag") == (str(SY_OK) if flag else "-")
    e = sy.wait_access_entry(lambda e: e.get("request_id") == headers["x-request-id"])
    assert e["response_flags"] == logged, e


@pytest.mark.parametrize("flag", ["NR", "UT", "uaex", "", "UAEX,RL", "LR"])
def test_set_response_flag_refuses_the_proxys_own_and_unknown_names(upstream, switchyard, flag):
    sy = switchyard(typed_config(upstream.port))
    r = request(sy.port("ingress"), "GET", "/echo",
                headers={"x-request-id": "flag-bad", "x-flag": flag, "x-reply": "403"})
    assert r.status == 403 and r.header("x-rc-flag") == str(SY_ERR_INVALID), r
    e = sy.wait_access_entry(lambda e: e.get("request_id") == "flag-bad")
    assert e["response_flags"] == "LR", e


def test_a_string_set_with_the_1_0_call_is_a_json_string_in_the_namespace(upstream, switchyard):
    sy = switchyard(typed_config(upstream.port, log_fields=LOG_FIELDS))
    r = request(sy.port("ingress"), "GET", "/echo",
                headers={"x-request-id": "typed-2", "x-md-string": '{"not": "an object"}'})
    assert r.status == 200, r
    assert hjson(r, "x-md-dynamic") == {"user": '{"not": "an object"}'}
    e = sy.wait_access_entry(lambda e: e.get("request_id") == "typed-2")
    assert e["user"] == '{"not": "an object"}'
    assert e["tenant"] is None and e["roles"] is None


@pytest.mark.parametrize("bad", [
    '{"user": "bob",}',           # trailing comma
    '{"user": "bob"} extra',      # text after the object
    '["user", "bob"]',            # not an object
    '{"n": 01}',                  # leading zero
    '{"s": "\\ud800"}',           # a lone surrogate
    '{"user": "a", "user": "b"}',  # duplicate member
    '{"deep": ' + "[" * 70 + "]" * 70 + "}",  # deeper than 64
    "",
])
def test_malformed_json_is_refused_and_changes_nothing(upstream, switchyard, bad):
    sy = switchyard(typed_config(upstream.port))
    r = request(sy.port("ingress"), "GET", "/echo",
                headers={"x-md-string": "alice", "x-md-set": bad, "x-md-merge": bad})
    assert r.status == 200, r
    assert (r.header("x-rc-set"), r.header("x-rc-merge")) == (str(SY_ERR_INVALID),) * 2
    assert hjson(r, "x-md-dynamic") == {"user": "alice"}


def test_no_metadata_in_the_config_is_not_found(upstream, switchyard):
    cfg = typed_config(upstream.port)
    del cfg["listeners"][0]["metadata"]
    del cfg["listeners"][0]["routes"][0]["metadata"]
    sy = switchyard(cfg)
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 200, r
    assert (r.header("x-md-route"), r.header("x-md-vhost"), r.header("x-md-dynamic")) == \
        ("-", "-", "-")
    assert hjson(r, "x-md-cluster")["pool"] == "blue"


def typed(r, path):
    """(type, value) of the fixture's x-typed-<path> header; None when absent."""
    v = r.header("x-typed-" + path.replace(".", "-").replace("_", "-"))
    assert v is not None, r
    if v == "-":
        return None
    kind, _, value = v.partition(":")
    kind = int(kind)
    return kind, (value if kind in (STRING, BYTES) else int(value))


def test_typed_attributes_and_the_buffer_limit(upstream, switchyard):
    sy = switchyard(typed_config(upstream.port, listener_extra={
        "limits": {"buffered_body": 123456}}))
    body = b"z" * 10
    r = request(sy.port("ingress"), "POST", "/echo", body=body)
    assert r.status == 200, r
    kind, when = typed(r, "request.time")
    assert kind == TIMESTAMP and when > 1_600_000_000 * 10**9, when  # nanoseconds, not ms
    assert typed(r, "request.duration")[0] == DURATION
    assert typed(r, "request.size") == (INT, len(body))
    kind, total = typed(r, "request.total_size")
    # The body and at least the headers this client sent ("content-length: 10\r\n" alone).
    assert kind == INT and total > len(body) + len("content-length: 10\r\n"), total
    assert typed(r, "response.code") == (INT, 200)
    assert typed(r, "response.total_size")[0] == INT
    assert typed(r, "upstream.port") == (INT, upstream.port)
    assert typed(r, "source.port")[0] == INT
    assert typed(r, "connection.mtls") == (BOOL, 0)
    assert typed(r, "request.method") == (STRING, "POST")
    assert typed(r, "connection.uri_san_peer_certificate") is None
    assert typed(r, "connection.subject_peer_certificate") is None
    assert typed(r, "connection.id")[0] == INT
    # No `node:` in the config: the node attributes are absent, not empty.
    assert typed(r, "node.id") is None and typed(r, "node.cluster") is None
    # The calling filter's name (the factory `filter:` chose).
    assert typed(r, "plugin_name") == (STRING, "typed_md")
    assert r.header("x-buffer-limit") == "123456"


def test_node_attributes_come_from_the_config(upstream, switchyard):
    cfg = typed_config(upstream.port)
    cfg["node"] = {"id": "sidecar~10.0.0.7~pod-1", "cluster": "payments-eu"}
    sy = switchyard(cfg)
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 200, r
    assert typed(r, "node.id") == (STRING, "sidecar~10.0.0.7~pod-1")
    assert typed(r, "node.cluster") == (STRING, "payments-eu")
    # request() opens a connection per request: each has its own id.
    first, second = (typed(request(sy.port("ingress"), "GET", "/echo"), "connection.id")
                     for _ in range(2))
    assert first[0] == INT and second[0] == INT and first[1] != second[1], (first, second)


def test_sdk_queue_owned_by_the_worker_is_drained_there(upstream, switchyard):
    # ABI 1.2: sy::sdk::queue_register_on_worker registers with the worker's own handle, and
    # the descriptor's on_queue_ready (installed by SY_SDK_MODULE) runs its callback.
    sy = switchyard(typed_config(upstream.port))
    port = sy.port("ingress")

    def ask(**headers):
        r = request(port, "GET", "/echo", headers=headers)
        assert r.status == 200, r
        return r

    assert ask(**{"x-sdk-queue": "typed_md.jobs"}).header("x-sdk-queue-rc") == str(SY_OK)
    assert ask(**{"x-sdk-enqueue": "typed_md.jobs"}).header("x-sdk-queue-rc") == str(SY_OK)
    until(lambda: ask(**{"x-sdk-items": "typed_md.jobs"}).header("x-sdk-items") == "1",
          what="the SDK callback drained the queue")


@pytest.mark.parametrize("node,pattern", [
    ({"id": "a", "zone": "z"}, r"unknown key 'zone' in node"),
    ({"id": ["a"]}, r"id in node: expected a string"),
    ("sidecar", r"node"),
])
def test_node_config_errors_name_the_place(upstream, switchyard, node, pattern):
    cfg = typed_config(upstream.port)
    cfg["node"] = node
    sy = switchyard(cfg, start=False)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert re.search(rf"switchyard\.yaml:\d+:\d+: .*{pattern}", text), text


def test_peer_certificate_sans_and_mtls(tmp_path, certs, upstream, switchyard):
    client = tlsutil.issue(
        tmp_path, "spiffe-client", "spiffe-client",
        tlsutil.LEAF_EXT.format(usage="clientAuth") +
        "subjectAltName = URI:spiffe://test.example/ns/a/sa/b, DNS:client.test, DNS:other.test\n",
        certs.root)
    tls = {"certificates": [{"certificate": str(certs.a.chain),
                             "private_key": str(certs.a.key)}],
           "ca": str(certs.ca), "client_certificate": "optional"}
    sy = switchyard(typed_config(upstream.port, listener_extra={"tls": tls}))
    resolve = [("a.test", sy.port("ingress"))]
    url = f"https://a.test:{sy.port('ingress')}/echo"

    def attrs(extra):
        out = curl(url, ["-i", "--cacert", str(certs.ca), *extra], resolve=resolve)
        assert out.status == 200, out
        head = out.body.split(b"\r\n\r\n")[0].decode()
        return {k.lower(): v.strip() for k, _, v in
                (line.partition(":") for line in head.split("\r\n")[1:])}

    a = attrs(["--cert", str(client.cert), "--key", str(client.key)])
    assert a["x-typed-connection-uri-san-peer-certificate"] == \
        f"{STRING}:spiffe://test.example/ns/a/sa/b"
    assert a["x-typed-connection-dns-san-peer-certificate"] == f"{STRING}:client.test"
    assert a["x-typed-connection-mtls"] == f"{BOOL}:1"
    assert a["x-typed-connection-subject-peer-certificate"].startswith(f"{STRING}:"), a
    assert "spiffe-client" in a["x-typed-connection-subject-peer-certificate"], a

    a = attrs([])
    assert a["x-typed-connection-uri-san-peer-certificate"] == "-"
    assert a["x-typed-connection-mtls"] == f"{BOOL}:0"


@pytest.mark.parametrize("where,value,pattern", [
    ("route", ["not", "a", "map"], "metadata in route: expected a map of namespaces"),
    ("route", {"team": "flat"}, "metadata in route: namespace 'team' must be a map"),
    ("cluster", {"team": [1]}, "metadata in cluster: namespace 'team' must be a map"),
    ("listener", 7, "metadata in listener: expected a map of namespaces"),
    ("fields", {"user": "%REQ(x-user)%"}, "field user in access_log: expected"),
    ("fields", {"status": "%FILTER_STATE(x)%"}, "'status' is a field every line has"),
    ("fields", {"u": "%DYNAMIC_METADATA(:key)%"}, "field u in access_log: expected"),
])
def test_config_errors_name_the_place(upstream, switchyard, where, value, pattern):
    cfg = typed_config(upstream.port)
    if where == "route":
        cfg["listeners"][0]["routes"][0]["metadata"] = value
    elif where == "cluster":
        cfg["clusters"][0]["metadata"] = value
    elif where == "listener":
        cfg["listeners"][0]["metadata"] = value
    else:
        cfg["access_log"] = {"path": "access.log", "fields": value}
    sy = switchyard(cfg, start=False)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert pattern in text, text
    assert "switchyard.yaml:" in text, text


def test_module_config_reaches_the_module_and_a_change_loads_a_new_generation(upstream,
                                                                               switchyard):
    cfg = typed_config(upstream.port)
    cfg["modules"][0]["config"] = {"vm": {"runtime": "v8"}, "n": 1}
    sy = switchyard(cfg)
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 200, r
    assert hjson(r, "x-module-config") == {"vm": {"runtime": "v8"}, "n": 1}
    # A config reload that changes only the module's config: the module read it in on_load,
    # so a new generation gets the new one.
    cfg["modules"][0]["config"] = {"n": 2}
    sy.write_config(cfg)
    assert sy.reload().status == 200
    r = request(sy.port("ingress"), "GET", "/echo")
    assert hjson(r, "x-module-config") == {"n": 2}
    # No config: an empty object.
    del cfg["modules"][0]["config"]
    sy.write_config(cfg)
    assert sy.reload().status == 200
    assert request(sy.port("ingress"), "GET", "/echo").header("x-module-config") == "{}"
