"""Config errors with FILE:LINE:COL (--validate, start, reload), and reloads (SIGHUP and
POST /reload) under continuous traffic with zero failed requests."""
import http.client
import re
import signal
import threading
import time

import pytest

import harness
from harness import (cluster, connection_refused, direct, port_open, request, run_switchyard,
                     to_cluster, until)

# --- --validate ------------------------------------------------------------------------------

BASE = """\
# A small config; the tests below break it in one place and know where.
admin:
  address: 127.0.0.1:19901
workers: 1
listeners:
  - name: ingress
    address: 127.0.0.1:18080
    routes:
      - name: all
        match: {prefix: /}
        cluster: backend
clusters:
  - name: backend
    endpoints: [127.0.0.1:18081]
    connect_timeout: 1s
"""

# (id, [(old, new) replacements on BASE], [(line, col, text found there, words the message may
#  name to say what is wrong: any one of them)])
BROKEN = [
    ("unknown-key", [("    routes:\n", "    colour: blue\n    routes:\n")],
     [(8, 5, "colour", ("colour",))]),
    ("wrong-type-scalar", [("workers: 1", "workers: two")],
     [(4, 10, "two", ("workers", "two", "integer", "number"))]),
    ("wrong-type-sequence", [("connect_timeout: 1s", "connect_timeout: [1s]")],
     [(15, 22, "[1s]", ("connect_timeout", "duration", "scalar"))]),
    ("unknown-cluster", [("cluster: backend", "cluster: nowhere")],
     [(11, 18, "nowhere", ("nowhere",))]),
    ("yaml-syntax", [("address: 127.0.0.1:18080", "address: ]127.0.0.1:18080")],
     [(7, 14, "]", ("",))]),
    ("two-errors", [("    routes:\n", "    colour: blue\n    routes:\n"),
                    ("cluster: backend", "cluster: nowhere")],
     [(8, 5, "colour", ("colour",)), (12, 18, "nowhere", ("nowhere",))]),
]


def broken_text(replacements):
    text = BASE
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def test_validate_good_config(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(BASE)
    out = run_switchyard(["-c", str(path), "--validate"])
    assert out.returncode == 0, out.stdout + out.stderr


def test_validate_quickstart_example(tmp_path):
    # Its module_path, build/modules, is made absolute and that of the binary under test, so
    # that another build (SWITCHYARD_BIN, e.g. build-asan) is checked with its own modules.
    text = (harness.REPO / "examples" / "quickstart.yaml").read_text()
    assert "module_path: [build/modules]" in text
    path = tmp_path / "quickstart.yaml"
    path.write_text(text.replace("module_path: [build/modules]",
                                 f"module_path: [{harness.BINARY.parent / 'modules'}]"))
    out = run_switchyard(["-c", str(path), "--validate"])
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("replacements,errors",
                         [pytest.param(r, e, id=i) for i, r, e in BROKEN])
def test_validate_reports_file_line_col(tmp_path, replacements, errors):
    text = broken_text(replacements)
    for line, col, there, _ in errors:  # a check on this test's own numbers
        assert text.splitlines()[line - 1][col - 1:].startswith(there), (line, col, there)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = run_switchyard(["-c", str(path), "--validate"])
    output = out.stdout + out.stderr
    assert out.returncode != 0, output
    for line, col, _, words in errors:
        loc = f"bad.yaml:{line}:{col}"
        matching = [ln for ln in output.splitlines() if loc in ln]
        assert matching, f"no {loc} in:\n{output}"
        assert any(w in matching[0] for w in words), f"{loc} names none of {words}: {matching[0]}"
    if len(errors) > 1:
        order = [output.index(f"bad.yaml:{line}:{col}") for line, col, _, _ in errors]
        assert order == sorted(order), "errors are not in file order"


def test_start_with_bad_config_refuses_to_run(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(broken_text([("cluster: backend", "cluster: nowhere")]))
    out = run_switchyard(["-c", str(path)], timeout=30)
    assert out.returncode != 0
    assert "bad.yaml:11:18" in out.stdout + out.stderr


def test_missing_config_file(tmp_path):
    out = run_switchyard(["-c", str(tmp_path / "absent.yaml"), "--validate"])
    assert out.returncode != 0
    assert "absent.yaml" in out.stdout + out.stderr


# --- reload ----------------------------------------------------------------------------------


class Traffic:
    """Requests in a loop from two threads — one on a keep-alive connection, one on a fresh
    connection each time — recording every failure. Bounded in count and time."""

    def __init__(self, port, paths, max_seconds=120, max_requests=200_000):
        self.port = port
        self.paths = paths
        self.stop_event = threading.Event()
        self.failures = []
        self.ok = {"keep-alive": 0, "fresh": 0}
        self.last_body = {}
        self.deadline = time.monotonic() + max_seconds
        self.max_requests = max_requests
        self.threads = [threading.Thread(target=self._run, args=(kind,), daemon=True)
                        for kind in self.ok]

    def __enter__(self):
        for t in self.threads:
            t.start()
        # Make sure both are really going before the test changes anything.
        until(lambda: all(self.ok.values()) or self.failures, what="traffic to start")
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(30)

    def _run(self, kind):
        conn = None
        i = 0
        while (not self.stop_event.is_set() and i < self.max_requests
               and time.monotonic() < self.deadline):
            path = self.paths[i % len(self.paths)]
            i += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                if kind == "fresh":
                    conn.close()
                    conn = None
                if resp.status != 200:
                    self.failures.append(f"{kind} {path}: {resp.status} {body[:100]!r}")
                else:
                    self.ok[kind] += 1
                    self.last_body[path] = body
            except Exception as e:  # noqa: BLE001 - every failure is a finding here
                self.failures.append(f"{kind} {path}: {e!r}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def versioned(upstream_port, version, extra_routes=0):
    routes = [direct("v", {"path": "/v"}, 200, f"v{version}\n")]
    routes += [direct(f"extra{i}", {"path": f"/extra{i}"}, 200, f"extra{i}\n")
               for i in range(extra_routes)]
    routes.append(to_cluster("up", {"prefix": "/"}, "backend"))
    return {"listeners": [{"name": "ingress", "routes": routes}],
            "clusters": [cluster("backend", upstream_port)]}


def test_reload_under_traffic_fails_nothing(upstream, switchyard):
    sy = switchyard(versioned(upstream.port, 1))
    port = sy.port("ingress")
    with Traffic(port, ["/v", "/echo"]) as traffic:
        for version in range(2, 8):
            sy.write_config(versioned(upstream.port, version, extra_routes=version))
            if version % 2:
                sy.signal(signal.SIGHUP)
            else:
                resp = sy.reload()
                assert resp.status == 200, resp
            until(lambda v=version: request(port, "GET", "/v").body == f"v{v}\n".encode(),
                  what=f"body v{version}")
            assert request(port, "GET", f"/extra{version - 1}").status == 200
        until(lambda: traffic.last_body.get("/v") == b"v7\n", what="traffic to see v7")
    assert traffic.failures == [], f"{len(traffic.failures)} failed: {traffic.failures[:10]}"
    assert traffic.ok["keep-alive"] > 10 and traffic.ok["fresh"] > 10, traffic.ok
    assert sy.running()


def test_bad_reload_is_refused_and_old_config_serves(upstream, switchyard):
    sy = switchyard(versioned(upstream.port, 1))
    port = sy.port("ingress")
    bad = versioned(upstream.port, 2)
    bad["listeners"][0]["routes"][-1]["cluster"] = "nowhere"
    sy.write_config(bad)
    with Traffic(port, ["/v", "/echo"]) as traffic:
        resp = sy.reload()
        assert 400 <= resp.status < 500, resp
        assert re.search(r"switchyard\.yaml:\d+:\d+", resp.text()), resp.text()
        assert "nowhere" in resp.text()
        assert request(port, "GET", "/v").body == b"v1\n"
        # The same through SIGHUP: refused, logged, and the process keeps serving.
        sy.signal(signal.SIGHUP)
        until(lambda: "nowhere" in harness.tail(sy.log_path, 200),
              what="the SIGHUP reload error in the log")
        assert sy.running()
        assert sy.admin("GET", "/ready").status == 200
        assert request(port, "GET", "/v").body == b"v1\n"
        # Fixed: applies.
        sy.write_config(versioned(upstream.port, 3))
        assert sy.reload().status == 200
        until(lambda: request(port, "GET", "/v").body == b"v3\n", what="v3")
    assert traffic.failures == [], traffic.failures[:10]


def test_reload_yaml_syntax_error_is_refused(upstream, switchyard):
    sy = switchyard(versioned(upstream.port, 1))
    sy.write_config_text("listeners: [\n")
    resp = sy.reload()
    assert 400 <= resp.status < 500
    assert "switchyard.yaml:" in resp.text()
    assert request(sy.port("ingress"), "GET", "/v").body == b"v1\n"


def test_reload_switches_cluster_endpoints(make_upstream, switchyard):
    a, b = make_upstream("a"), make_upstream("b")
    sy = switchyard(versioned(a.port, 1))
    port = sy.port("ingress")
    assert request(port, "GET", "/echo").json()["server"] == "a"
    with Traffic(port, ["/echo"]) as traffic:
        sy.write_config(versioned(b.port, 1))
        assert sy.reload().status == 200
        until(lambda: request(port, "GET", "/echo").json()["server"] == "b", what="upstream b")
    assert traffic.failures == [], traffic.failures[:10]
    served_by_a = a.stats()["requests_total"]
    for _ in range(5):
        assert request(port, "GET", "/echo").json()["server"] == "b"
    assert a.stats()["requests_total"] == served_by_a


def test_reload_adds_and_removes_listener(upstream, switchyard):
    one = versioned(upstream.port, 1)
    sy = switchyard(one)
    two = versioned(upstream.port, 1)
    two["listeners"].append({"name": "second",
                             "routes": [direct("hi", {"prefix": "/"}, 200, "second\n")]})
    sy.write_config(two)
    assert sy.reload().status == 200
    second = sy.port("second")
    until(lambda: port_open(second), what="the new listener")
    assert request(second, "GET", "/").body == b"second\n"
    sy.write_config(one)
    assert sy.reload().status == 200
    until(lambda: connection_refused(second), what="the removed listener to close")
    assert request(sy.port("ingress"), "GET", "/v").body == b"v1\n"


def test_reload_lets_in_flight_request_finish(upstream, switchyard):
    sy = switchyard(versioned(upstream.port, 1))
    port = sy.port("ingress")
    result = {}

    def slow():
        result["resp"] = request(port, "GET", "/slow?hold=reload")

    t = threading.Thread(target=slow)
    t.start()
    until(lambda: upstream.stats()["held"] == 1, what="the request to reach upstream")
    sy.write_config(versioned(upstream.port, 2))
    assert sy.reload().status == 200
    until(lambda: request(port, "GET", "/v").body == b"v2\n", what="v2")
    upstream.release("reload")
    t.join(30)
    assert result["resp"].status == 200 and result["resp"].body == b"slow\n"
