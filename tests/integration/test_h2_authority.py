"""HTTP/2 requests are routed and forwarded on :authority (RFC 9113 §8.3.1), not on a host
header beside it: a conflicting host is replaced by :authority, as Envoy does, so what the
routes matched is what the upstream sees. Without :authority, host is the authority."""
from h2util import H2Client
from harness import cluster, direct, echo_headers, to_cluster


def config(upstream_port):
    return {"listeners": [{"name": "ingress", "protocols": ["http2"],
                           "routes": [direct("secret", {"hosts": ["secret.internal"]}, 403,
                                             "denied\n"),
                                      to_cluster("allowed", {"hosts": ["allowed.test"]}, "up"),
                                      direct("other", {"prefix": "/"}, 404, "other\n")]}],
            "clusters": [cluster("up", upstream_port)]}


def test_authority_wins_over_a_conflicting_host_for_routing(upstream, switchyard):
    sy = switchyard(config(upstream.port))
    # validate=False: the h2 package itself refuses to send a host that differs from :authority.
    with H2Client(sy.port("ingress"), validate=False) as c:
        sid = c.request("GET", "/echo?smuggle", authority="secret.internal",
                        headers=[("host", "allowed.test")])
        resp = c.response(sid, timeout=10)
        assert resp.status == 403 and resp.body == b"denied\n", resp
    assert upstream.stats()["requests_total"] == 0
    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?smuggle")
    assert e["authority"] == "secret.internal" and e["route"] == "secret", e


def test_a_conflicting_host_is_replaced_by_authority_upstream(upstream, switchyard):
    sy = switchyard(config(upstream.port))
    with H2Client(sy.port("ingress"), validate=False) as c:
        sid = c.request("GET", "/echo?replaced", authority="allowed.test",
                        headers=[("host", "secret.internal")])
        resp = c.response(sid, timeout=10)
        assert resp.status == 200, resp
        assert echo_headers(resp.json(), "host") == ["allowed.test"], resp.json()


def test_host_without_authority_is_the_authority(upstream, switchyard):
    sy = switchyard(config(upstream.port))
    with H2Client(sy.port("ingress"), validate=False) as c:
        sid = c.request("GET", "/echo?no-authority", headers=[("host", "allowed.test")],
                        pseudo=[(":method", "GET"), (":scheme", "http"),
                                (":path", "/echo?no-authority")])
        resp = c.response(sid, timeout=10)
        assert resp.status == 200, resp
        assert echo_headers(resp.json(), "host") == ["allowed.test"], resp.json()
