"""The process: --version, SIGTERM and POST /drain finish what is in flight, then stop taking
connections; the quickstart example runs as the README shows."""
import re
import signal
import threading

import harness
from harness import (RawClient, connection_refused, free_port, proxy_all, raw_request, request,
                     run_switchyard, until)
from modules_util import fixture_file, module_file, with_filters


def test_version():
    out = run_switchyard(["--version"])
    assert out.returncode == 0
    text = out.stdout + out.stderr
    assert re.search(r"\d+\.\d+\.\d+", text), text
    assert "abi" in text.lower(), f"no ABI version in {text!r}"


def in_flight(port, path):
    """Starts a request in a thread; returns (thread, result dict)."""
    result = {}

    def run():
        try:
            result["resp"] = request(port, "GET", path)
        except Exception as e:  # noqa: BLE001
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, result


def test_sigterm_drains_in_flight_then_exits_0(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port, listener_extra={"timeouts": {"drain": "20s"}}))
    port = sy.port("ingress")
    t, result = in_flight(port, "/slow?hold=drain")
    until(lambda: upstream.stats()["held"] == 1, what="the request to reach upstream")
    sy.signal(signal.SIGTERM)
    # While the request is still in flight (held upstream), new connections are refused.
    until(lambda: connection_refused(port), what="the listener to close")
    assert sy.running()
    upstream.release("drain")
    t.join(30)
    assert "error" not in result, result
    assert result["resp"].status == 200 and result["resp"].body == b"slow\n"
    assert sy.wait_exit(30) == 0


def test_sigterm_closes_idle_keepalive_connections(upstream, switchyard):
    # Idle connections do not hold the drain up to its timeout: they are closed.
    sy = switchyard(proxy_all(upstream.port, listener_extra={"timeouts": {"drain": "60s"}}))
    with RawClient(sy.port("ingress")) as c:
        c.send(raw_request("GET", "/echo"))
        assert c.read_response().status == 200
        sy.signal(signal.SIGTERM)
        c.wait_closed(timeout=15)
    assert sy.wait_exit(15) == 0


def test_sigterm_with_nothing_in_flight_exits_0(switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "routes": [
        harness.direct("any", {"prefix": "/"}, 200, "x")]}]})
    sy.signal(signal.SIGTERM)
    assert sy.wait_exit(15) == 0


def test_ready_waits_for_every_worker(upstream, switchyard, tmp_path):
    # /ready says the proxy serves: not while one worker is still starting its filters (here
    # a filter whose on_worker_start holds worker 1 until the gate file exists), when a
    # request could only reach the other worker, or wait.
    gate = tmp_path / "gate"
    waiting = tmp_path / "gate.waiting"
    cfg = with_filters(upstream.port, [{"module": "fx_slow_worker_start", "config": str(gate)}],
                       modules=[{"name": "fx_slow_worker_start",
                                 "path": str(fixture_file("slow_worker_start"))}])
    cfg["workers"] = 2
    sy = switchyard(cfg, start=False)
    sy.start(wait_ready=False)
    try:
        until(waiting.exists, what="worker 1 to hold in on_worker_start")
        # The admin API answers once the main thread runs its loop, start-up done there;
        # worker 1 still holds.
        ready = until(lambda: sy.admin("GET", "/ready"), what="the admin API",
                      ignore=(OSError,))
        assert ready.status == 503, ready
    finally:
        gate.touch()
    sy.wait_ready()
    assert request(sy.port("ingress"), "GET", "/echo").status == 200


def test_admin_drain(upstream, switchyard):
    sy = switchyard(proxy_all(upstream.port, listener_extra={"timeouts": {"drain": "20s"}}))
    port = sy.port("ingress")
    t, result = in_flight(port, "/slow?hold=adm")
    until(lambda: upstream.stats()["held"] == 1, what="the request to reach upstream")
    resp = sy.admin("POST", "/drain")
    assert 200 <= resp.status < 300, resp
    until(lambda: sy.admin("GET", "/ready").status == 503, what="/ready -> 503 while draining",
          ignore=(OSError,))
    until(lambda: connection_refused(port), what="the listener to close")
    upstream.release("adm")
    t.join(30)
    assert result.get("resp") is not None and result["resp"].status == 200, result


def test_drain_timeout_after_a_reload_releases_the_replaced_filter_config(upstream, switchyard):
    """A request held past the drain timeout keeps the filter config a reload replaced until the
    worker stops and aborts it; that config's teardown is then queued for the main thread while
    the proxy exits, and must still run (the proxy used to close the queue unrun: the config and
    its module generation leaked, which LeakSanitizer reports under `make test-asan`)."""
    module_file("hello")
    cfg = with_filters(upstream.port, [{"module": "hello", "config": {"name": "x-v", "value": "1"}}],
                       timeouts={"drain": "0.3s"})
    sy = switchyard(cfg)
    with RawClient(sy.port("ingress"), timeout=30) as c:
        c.send(raw_request("GET", "/slow?hold=drain-timeout"))
        until(lambda: upstream.stats()["held"] == 1, what="the request to reach upstream")
        cfg["listeners"][0]["filters"][0]["config"]["value"] = "2"
        sy.write_config(cfg)
        assert sy.reload().status == 200
        sy.signal(signal.SIGTERM)
        assert sy.wait_exit(30) == 0
        assert c.read_until_close() == b""
    assert "drain timeout: closing the connections still open" in sy.log_path.read_text()


def test_quickstart_example_runs(switchyard):
    # The example as `make run` starts it, moved to free ports so it cannot clash.
    text = (harness.REPO / "examples" / "quickstart.yaml").read_text()
    ports = {p: free_port() for p in ("8080", "8081", "9901")}
    for old, new in ports.items():
        assert f"127.0.0.1:{old}" in text
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    # `make run` starts from the repository root; here the module path is made absolute.
    assert "module_path: [build/modules]" in text
    text = text.replace("module_path: [build/modules]",
                        f"module_path: [{harness.BINARY.parent / 'modules'}]")
    sy = switchyard({"listeners": []}, start=False, name="quickstart")
    sy.write_config_text(text)
    sy.admin_port = ports["9901"]
    sy.start()
    try:
        front = ports["8080"]
        assert request(front, "GET", "/healthz").body == b"ok\n"
        api = request(front, "GET", "/api/hello")
        assert api.status == 200 and api.json() == {"service": "demo-backend"}
        assert api.header("content-type") == "application/json"
        assert api.header("x-hello") == "world"  # the hello module at work
        welcome = request(front, "GET", "/")
        assert welcome.status == 200 and b"curl" in welcome.body
        assert "listener.ingress.rq_total" in sy.stats()
    finally:
        assert sy.stop() == 0
