"""The admin API (/ready, /stats, /stats/prometheus, /config_dump) and the JSON access log."""
import json
import re

from prometheus_client.parser import text_string_to_metric_families

from harness import (RawClient, cluster, direct, free_port, raw_request, request, to_cluster,
                     until)


def admin_config(upstream_port, **extra):
    return {
        "listeners": [{"name": "ingress", "routes": [
            direct("health", {"path": "/healthz"}, 200, "ok\n"),
            to_cluster("api", {"prefix": "/echo"}, "backend"),
            to_cluster("dead", {"prefix": "/dead/"}, "deadc"),
            to_cluster("held", {"prefix": "/slow", "headers": [{"name": "x-hold",
                                                                 "present": True}]},
                       "backend"),
            to_cluster("slowr", {"prefix": "/slow"}, "slowc"),
        ]}],
        "clusters": [cluster("backend", upstream_port),
                     cluster("deadc", free_port(), connect_retries=0),
                     cluster("slowc", upstream_port, timeout="500ms")],
        **extra,
    }


def test_ready(switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "routes": [
        direct("any", {"prefix": "/"}, 200, "x")]}]})
    resp = sy.admin("GET", "/ready")
    assert resp.status == 200
    assert sy.admin("GET", "/no-such-admin-path").status == 404


def test_stats_counters_move_with_traffic(upstream, switchyard):
    sy = switchyard(admin_config(upstream.port))
    port = sy.port("ingress")
    for _ in range(3):
        assert request(port, "GET", "/echo").status == 200
    for _ in range(2):
        assert request(port, "GET", "/healthz").status == 200
    assert request(port, "GET", "/nothing-here").status == 404
    assert request(port, "GET", "/dead/x").status == 502
    assert request(port, "GET", "/slow?ms=3000").status == 504

    expected = {
        "listener.ingress.rq_total": 8,
        "listener.ingress.rq_2xx": 5,
        "listener.ingress.rq_4xx": 1,
        "listener.ingress.rq_5xx": 2,
        "route.ingress.api.rq_total": 3,
        "route.ingress.api.rq_2xx": 3,
        "route.ingress.health.rq_total": 2,
        "route.ingress.health.rq_2xx": 2,
        "cluster.backend.rq_total": 3,
        "cluster.backend.rq_2xx": 3,
        "cluster.slowc.rq_timeout": 1,
        "cluster.deadc.cx_connect_fail": 1,
    }

    def matches():
        stats = sy.stats()
        return all(stats.get(k) == v for k, v in expected.items()) and stats

    try:
        stats = until(matches, what="the counters")
    except AssertionError:
        stats = sy.stats()
        wrong = {k: (stats.get(k), v) for k, v in expected.items() if stats.get(k) != v}
        raise AssertionError(f"(got, expected): {wrong}") from None
    assert stats["listener.ingress.cx_total"] >= 8
    assert stats["listener.ingress.bytes_rx"] > 0 and stats["listener.ingress.bytes_tx"] > 0
    assert stats["cluster.backend.cx_total"] >= 1
    for name in ("listener.ingress.rq_1xx", "listener.ingress.rq_3xx",
                 "cluster.backend.cx_active", "listener.ingress.cx_active"):
        assert name in stats, f"{name} missing"


def test_stats_active_connections_gauge(upstream, switchyard):
    sy = switchyard(admin_config(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/echo"))
        assert c.read_response().status == 200
        until(lambda: sy.stat("listener.ingress.cx_active") == 1, what="cx_active == 1")
        until(lambda: sy.stat("cluster.backend.cx_active") == 1, what="upstream cx_active")
    until(lambda: sy.stat("listener.ingress.cx_active") == 0, what="cx_active back to 0")


METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
SAMPLE = re.compile(r'(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?'
                    r' (?P<value>[-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))(?: -?[0-9]+)?')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_exposition(text):
    """Checks TEXT line by line against the Prometheus text format; returns
    ({family: type}, [(name, {label: value}, value)])."""
    typed, samples = {}, []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            assert len(parts) == 4, line
            name, kind = parts[2], parts[3]
            assert METRIC_NAME.fullmatch(name), line
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in typed, f"TYPE repeated: {line}"
            typed[name] = kind
            continue
        if line.startswith("#"):
            continue  # HELP or a comment
        m = SAMPLE.fullmatch(line)
        assert m, f"not a sample line: {line!r}"
        labels, pos, inner = {}, 0, m.group("labels") or ""
        while pos < len(inner):
            lm = LABEL.match(inner, pos)
            assert lm, f"bad labels in {line!r}"
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        name = m.group("name")
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or family in typed, f"{name} has no # TYPE line before it"
        samples.append((name, labels, float(m.group("value"))))
    return typed, samples


def test_prometheus_exposition(upstream, switchyard):
    sy = switchyard(admin_config(upstream.port))
    port = sy.port("ingress")
    for _ in range(4):
        assert request(port, "GET", "/echo").status == 200
    until(lambda: sy.stat("listener.ingress.rq_total") == 4, what="rq_total == 4")
    resp = sy.admin("GET", "/stats/prometheus")
    assert resp.status == 200
    assert (resp.header("content-type") or "").startswith("text/plain")
    text = resp.text()
    assert text.endswith("\n")
    typed, samples = parse_exposition(text)
    # An independent parser agrees that this is exposition text.
    assert list(text_string_to_metric_families(text))

    def value(name, **labels):
        found = [v for n, lab, v in samples
                 if n == name and all(lab.get(k) == val for k, val in labels.items())]
        assert len(found) == 1, f"{len(found)} samples {name}{labels}"
        return found[0]

    assert value("switchyard_listener_rq_total", listener="ingress") == 4
    assert value("switchyard_route_rq_total", listener="ingress", route="api") == 4
    assert value("switchyard_cluster_rq_total", cluster="backend") == 4
    # At least one latency histogram, well formed: per series, buckets do not decrease and the
    # +Inf bucket equals _count.
    histograms = [n for n, k in typed.items() if k == "histogram"]
    assert histograms, "no histogram"
    for h in histograms:
        series = {}
        for n, lab, v in samples:
            if n == f"{h}_bucket":
                key = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
                series.setdefault(key, []).append((float(lab["le"]), v))
        assert series, f"histogram {h} has no buckets"
        for key, buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), f"{h}{key}: buckets decrease"
            assert buckets[-1][0] == float("inf"), f"{h}{key}: no +Inf bucket"
            total = [v for n, lab, v in samples
                     if n == f"{h}_count" and tuple(sorted(lab.items())) == key]
            assert total == [counts[-1]], f"{h}{key}: +Inf bucket {counts[-1]} != _count {total}"


def test_config_dump(upstream, switchyard):
    sy = switchyard(admin_config(upstream.port))
    resp = sy.admin("GET", "/config_dump")
    assert resp.status == 200
    dump = json.loads(resp.body)
    text = json.dumps(dump)
    for name in ("ingress", "backend", "deadc", "healthz"):
        assert name in text, f"{name} not in /config_dump"


# --- access log -----------------------------------------------------------------------------

FIELDS = ("time", "method", "authority", "path", "protocol", "status", "bytes_in", "bytes_out",
          "duration_ms", "upstream_host", "request_id", "response_flags", "listener", "route",
          "cluster")


def entry_for(sy, request_id):
    return sy.wait_access_entry(lambda e: e.get("request_id") == request_id,
                                what=f"the access log line for {request_id}")


def test_access_log_fields(upstream, switchyard):
    sy = switchyard(admin_config(upstream.port))
    body = b"q" * 1234
    resp = request(sy.port("ingress"), "POST", "/echo?x=1", body=body,
                   headers={"X-Request-Id": "log-1", "Host": "example.test"})
    assert resp.status == 200
    e = entry_for(sy, "log-1")
    for field in FIELDS:
        assert field in e, f"{field} missing from {e}"
    assert e["method"] == "POST"
    assert e["authority"] == "example.test"
    assert e["path"] == "/echo?x=1"
    assert e["protocol"] == "HTTP/1.1"
    assert e["status"] == 200
    assert e["bytes_in"] >= 1234
    assert e["bytes_out"] >= len(resp.body)
    assert isinstance(e["duration_ms"], (int, float)) and e["duration_ms"] >= 0
    assert e["upstream_host"] == f"127.0.0.1:{upstream.port}"
    assert e["response_flags"] == "-"
    assert (e["listener"], e["route"], e["cluster"]) == ("ingress", "api", "backend")
    assert isinstance(e["time"], str) and e["time"]


def test_access_log_one_line_per_request(upstream, switchyard):
    sy = switchyard(admin_config(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        for i in range(5):
            c.send(raw_request("GET", "/echo", [("X-Request-Id", f"many-{i}")]))
            assert c.read_response().status == 200
    until(lambda: len([e for e in sy.access_entries()
                       if str(e.get("request_id", "")).startswith("many-")]) == 5,
          what="5 access log lines")
    entries = [e for e in sy.access_entries() if str(e.get("request_id", "")).startswith("many-")]
    assert sorted(e["request_id"] for e in entries) == [f"many-{i}" for i in range(5)]


def test_access_log_response_flags(upstream, switchyard):
    sy = switchyard(admin_config(upstream.port))
    port = sy.port("ingress")
    cases = [("/healthz", 200, "LR"), ("/nothing-here", 404, "NR"), ("/dead/x", 502, "UF"),
             ("/slow?ms=3000", 504, "UT")]
    for path, status, _ in cases:
        assert request(port, "GET", path, headers={"X-Request-Id": f"flag{path}"}).status == \
            status
    for path, status, flag in cases:
        e = entry_for(sy, f"flag{path}")
        assert e["status"] == status
        assert flag in e["response_flags"].split(","), f"{path}: {e['response_flags']}"


def test_access_log_downstream_closed(upstream, switchyard):
    sy = switchyard(admin_config(upstream.port))
    with RawClient(sy.port("ingress")) as c:
        # Held upstream for up to 5 s: time for the proxy to see the client leave (at once, or at
        # the latest when it has a response to write).
        c.send(raw_request("GET", "/slow?hold=gone&ms=5000", [("X-Request-Id", "gone"),
                                                              ("X-Hold", "1")]))
        until(lambda: upstream.stats()["held"] == 1, what="the request upstream")
    e = sy.wait_access_entry(lambda e: e.get("request_id") == "gone", timeout=20)
    assert "DC" in e["response_flags"].split(","), e
