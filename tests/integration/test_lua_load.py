"""The Lua module under sustained load: a state's memory must stay flat. Objects handed to
scripts once had finalizers, which the collector could not keep up with at tens of thousands
of requests per second: the state grew until its memory cap turned requests into 500s."""
import re
import subprocess

from harness import direct
from modules_util import MODULES
from test_lua import lua_stat, start

SCRIPT = """
function envoy_on_request(h) h:headers():add("x-lua-request", "1") end
function envoy_on_response(h) h:headers():add("x-lua", "1") end
"""
REQUESTS = 30000


def test_state_memory_stays_flat_under_load(switchyard):
    # The proxy answers itself (a direct response): the load is on the proxy and the script.
    sy = start(switchyard, {
        "module_path": [str(MODULES)], "workers": 1,
        "listeners": [{"name": "ingress", "filters": [
            {"module": "lua", "config": {"default_source_code": {"inline_string": SCRIPT}}}],
            "routes": [direct("all", {"prefix": "/"}, 200, "hello\n")]}]})
    out = subprocess.run(["h2load", "--h1", "-n", str(REQUESTS), "-c", "16", "-m", "1",
                          f"http://127.0.0.1:{sy.port('ingress')}/"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out.stdout)
    assert m and int(m.group(1)) == REQUESTS, out.stdout
    assert lua_stat(sy, "executions") == 2 * REQUESTS
    assert lua_stat(sy, "memory_exceeded") == 0
    # Two small handlers need well under a MiB; the leak reached several MiB by this point.
    assert lua_stat(sy, "memory_bytes") < 1 << 20, sy.stats()
