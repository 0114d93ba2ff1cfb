"""The module-fault catalogue (issue 13 §6), kept as data: one row per class of fault a module can
have, with what the user sees (the status a client or the admin API gets, the proxy's log line,
the counter) and what becomes of the process. Each row is one test, on a proxy of its own:

  1. a request before the fault is served (the module works until it faults);
  2. the fault is provoked; the status is the one the row names;
  3. the log matches the row's line, and the row's counter reads its value;
  4. afterwards: "serves" -- the process lives, is ready, and serves the next request through
     the same module; or, for a native crash, which no in-process host survives (docs/abi.md),
     "restarts on previous" -- the process died of the signal, and its next start serves the
     previous good generation and shows the crash record in /modules; or, for a Wasm VM under
     failure_policy FAIL_CLOSED, "fails closed" -- the process lives and is ready, and the
     failed VM answers the next requests through it 503, as Envoy's does.

Adding a fault class is adding a row.

The per-class tests with the finer detail are in test_modules_abi.py (load-time refusals),
test_module_crash.py (crash records), test_lua.py (script errors and limits), test_wasm_host.py
(traps, deadlines, memory and the failure policies), test_ext_authz.py (EA-04, EA-23: errors
and failure_mode_allow, also for the HTTP service) and test_ext_proc.py (EP-50..EP-55).
"""
import re
import shutil
import signal
import types
from dataclasses import dataclass
from typing import Callable, Optional

import pytest

from authz_peer import GrpcAuthz
from extproc_peer import BadFraming, Processor, answer, kind
from harness import budget, cluster, request, to_cluster, until
from modules_util import (fixture_file, module_entry, module_stat, reload_module,
                          replace_atomically, with_filters)
from test_ext_authz import config as authz_config
from test_ext_authz import get as authz_get
from test_ext_proc import ep_config
from test_lua import listener, lua_config
from test_module_crash import crash, crash_config, served_version
from test_wasm_host import compile_filter, proxy_config as wasm_config, stat as wasm_stat


@dataclass(frozen=True)
class Fault:
    id: str
    fault: str  # what goes wrong, in words
    # config(upstream_port, tmp_path) -> the proxy's config, with a listener `ingress` whose
    # GET /echo goes through the faulty module and is answered 200 before the fault.
    config: Callable
    # provoke(sy, tmp_path) -> the status the user sees: the client's, or the admin API's for
    # faults at load time; None when the connection closes without an answer.
    provoke: Callable
    status: Optional[int]
    log: str  # a regex the proxy's log matches after the fault
    # (what it counts, read(sy) -> value, the value after the one fault); None: no counter
    # (said why in the row).
    counter: Optional[tuple]
    afterwards: str = "serves"  # or "restarts on previous", or "fails closed"
    # The proxy's --log-level: a module that logs its fault at debug only is started so.
    log_level: str = "info"


# --- native modules (tests/abi/ fixtures) ----------------------------------------------------


def native(name, fixture, config=None):
    def make(upstream_port, tmp_path):
        f = {"module": name, **({"config": config} if config else {})}
        return with_filters(upstream_port, [f],
                            modules=[{"name": name, "path": str(fixture_file(fixture))}])
    return make


def get(path, headers=None):
    return lambda sy, tmp_path: request(sy.port("ingress"), "GET", path, headers=headers).status


def module_reload(fixture):
    """POST /modules/fixture/reload onto FIXTURE's file: the admin API's status."""
    return lambda sy, tmp_path: reload_module(sy, "fixture", fixture_file(fixture)).status


def stat(name):
    return lambda sy: sy.stat(name) or 0


def config_reload(fixture, config):
    """A config reload (POST /reload) that gives the module's filter CONFIG."""
    def provoke(sy, tmp_path):
        sy.write_config(native("fixture", fixture, config)(sy.upstream_port, tmp_path))
        return sy.reload().status
    return provoke


def deployed_v1(upstream_port, tmp_path):
    """fx_segfault v1 at a deploy path, with a state_dir for crash records."""
    deployed = tmp_path / "deploy" / "libsy_fx_segfault.so"
    deployed.parent.mkdir()
    shutil.copyfile(fixture_file("segfault_v1"), deployed)
    return crash_config(upstream_port, deployed, tmp_path / "state")


def swap_to_v2_and_crash(sy, tmp_path):
    replace_atomically(fixture_file("segfault_v2"), tmp_path / "deploy" / "libsy_fx_segfault.so")
    assert reload_module(sy, "fx_segfault").status == 200
    assert crash(sy, "headers") == -signal.SIGSEGV
    return None


# --- Lua (modules/lua) ------------------------------------------------------------------------


def lua(script, **filter_config):
    return lambda upstream_port, tmp_path: lua_config(
        upstream_port, listener("ingress", script, **filter_config), workers=1)


LUA_ERROR = """
function envoy_on_request(h)
  if h:headers():get("x-fault") then error("fault catalogue: boom") end
end
"""
LUA_RUNAWAY = """
function envoy_on_request(h)
  if h:headers():get("x-fault") then while true do end end
end
"""
LUA_GREEDY = """
function envoy_on_request(h)
  if h:headers():get("x-fault") then
    local t = {}
    for i = 1, 1e8 do t[i] = string.rep("x", 64) .. i end
  end
end
"""
LUA_LIMITS = {"instructions": 1000000, "memory": "16MiB"}


# --- Wasm (modules/wasm, with the C filter tests/wasm/c/host_test.c) --------------------------


def wasm(**filter_extra):
    """host_test.c, compiled for this test, on one worker; its x-action header picks the fault."""
    def make(upstream_port, tmp_path):
        path = compile_filter(tmp_path / "host_test.wasm")
        return wasm_config(types.SimpleNamespace(port=upstream_port), path, workers=1,
                           **filter_extra)
    return make


def wasm_counter(name):
    return (f"module.wasm.*host_test*.{name}", lambda sy: wasm_stat(sy, name), 1)


# --- ext_authz (modules/ext_authz) against authz_peer.py's gRPC server ------------------------

# The authorization servers the running row started; the fixture below stops them.
AUTHZ_SERVERS = []


@pytest.fixture(autouse=True)
def stop_authz_servers():
    yield
    while AUTHZ_SERVERS:
        AUTHZ_SERVERS.pop().stop()


def authz(failure_mode_allow):
    """ext_authz on a gRPC server that allows whatever its x-authz script does not fault."""
    def make(upstream_port, tmp_path):
        server = GrpcAuthz()
        AUTHZ_SERVERS.append(server)
        # The timeout is a budget the healthy checks must not overrun (scaled on a slower
        # build); the "slow" row's server never answers, so it still fires there.
        return authz_config(upstream_port, server.port, {
            "grpc_service": {"envoy_grpc": {"cluster_name": "authz"}, "timeout": budget(0.5)},
            "failure_mode_allow": failure_mode_allow}, workers=1)
    return make


def authz_script(script):
    return lambda sy, tmp_path: authz_get(sy, "/echo", script).status


def authz_server_dies(sy, tmp_path):
    """The server stops; once the proxy has seen its connection close, a request finds the
    port refusing. Then a new server takes the port, for the requests afterwards."""
    server = AUTHZ_SERVERS.pop()
    server.stop()
    until(lambda: sy.stat("cluster.authz.cx_active") == 0, what="the connection to be gone")
    status = request(sy.port("ingress"), "GET", "/echo").status
    AUTHZ_SERVERS.append(GrpcAuthz(port=server.port))
    return status


def authz_counter(name):
    return (f"module.ext_authz.{name}", lambda sy: module_stat(sy.stats(), "ext_authz", name), 1)


# Envoy's outcomes: fail-closed (failure_mode_allow false) answers 403, fail-open lets the
# request through to the upstream. The module logs why at debug only, as Envoy does.
AUTHZ_FAULTS = [
    ("dead", "the server is dead (connection refused)", authz_server_dies, "connect"),
    # The proxy's timer and the server's own deadline (the call's grpc-timeout) race: either
    # ends the call at the timeout.
    ("slow", "the server answers past the timeout", authz_script({"hang": True}),
     "(timeout|gRPC status 4: Deadline Exceeded)"),
    ("garbage", "the server answers bytes that are not a CheckResponse",
     authz_script({"garbage": True}), "malformed CheckResponse"),
]

# --- ext_proc (modules/ext_proc) against extproc_peer.py's gRPC processor ----------------------

# The processors the running row started; the fixture below stops them.
EXTPROC_SERVERS = []


@pytest.fixture(autouse=True)
def stop_extproc_servers():
    yield
    while EXTPROC_SERVERS:
        EXTPROC_SERVERS.pop().stop()


def extproc_processor(port=0):
    """A processor that answers CONTINUE unless the request's x-ep names one of the faults."""
    p = Processor(workers=8, port=port)

    @p.scenario("slow")
    def slow(stream, msg):
        return []  # never answers

    @p.scenario("garbage")
    def garbage(stream, msg):
        return [b"\xff\xff\xff\xff not a ProcessingResponse"]

    @p.scenario("reset")
    def reset(stream, msg):
        # Answers the request headers, then resets the call mid-stream.
        if kind(msg) == "request_headers":
            return [answer(msg)]
        stream.context.cancel()
        return []

    @p.scenario("out-of-order")
    def out_of_order(stream, msg):
        # The answer to the response headers comes first, for the request headers.
        r = answer(msg)
        if kind(msg) == "request_headers":
            r.response_headers.response.SetInParent()
        return [r]

    EXTPROC_SERVERS.append(p)
    return p


def extproc(failure_mode_allow):
    """ext_proc on extproc_processor(); requests with x-ep: framing go (a route's grpc_service)
    to a BadFraming processor instead."""
    def make(upstream_port, tmp_path):
        p = extproc_processor()
        bad = BadFraming()
        EXTPROC_SERVERS.append(bad)
        to_bad = {"overrides": {"grpc_service": {"envoy_grpc": {"cluster_name": "badframing"}}}}
        routes = [to_cluster("framing", {"prefix": "/", "headers": [
                      {"name": "x-ep", "exact": "framing"}]}, "backend",
                             per_filter={"ext_proc": to_bad}),
                  to_cluster("all", {"prefix": "/"}, "backend")]
        # A budget the healthy answers must not overrun (scaled on a slower build: a late one
        # would be a 504, or count failure_mode_allowed once too often); the "slow" row's
        # processor never answers, so it still fires there.
        return ep_config(upstream_port, p.port, workers=1, message_timeout=budget(0.2),
                         failure_mode_allow=failure_mode_allow, routes=routes,
                         clusters=[cluster("badframing", bad.port, protocol="http2")])
    return make


def extproc_get(scenario):
    return lambda sy, tmp_path: request(sy.port("ingress"), "GET", "/echo",
                                        headers={"x-ep": scenario}).status


def extproc_dies(sy, tmp_path):
    """The processor stops; once the proxy has seen its connection close, a request finds the
    port refusing. Then a new processor takes the port, for the requests afterwards."""
    [p] = [x for x in EXTPROC_SERVERS if isinstance(x, Processor)]
    EXTPROC_SERVERS.remove(p)
    p.stop()
    until(lambda: sy.stat("cluster.extproc.cx_active") == 0, what="the connection to be gone")
    status = request(sy.port("ingress"), "GET", "/echo").status
    extproc_processor(port=p.port)
    return status


def extproc_counter(name):
    return (f"module.ext_proc.{name}", lambda sy: module_stat(sy.stats(), "ext_proc", name), 1)


# (key, fault, provoke, fail-closed status, its log details, its counter). Fail-open lets the
# request go on unprocessed (200) and counts failure_mode_allowed. The module logs why at
# debug only.
EXTPROC_FAULTS = [
    ("dead", "the processor is dead (connection refused)", extproc_dies, 500,
     "ext_proc_error_side_stream_connect", "streams_failed"),
    ("slow", "the processor does not answer within message_timeout", extproc_get("slow"), 504,
     "ext_proc_error_message_timeout", "message_timeouts"),
    ("garbage", "the processor answers bytes that are not a ProcessingResponse",
     extproc_get("garbage"), 500, "ext_proc_error_bad_response_message", "streams_failed"),
    ("framing", "the processor's gRPC framing is wrong (an invalid message prefix)",
     extproc_get("framing"), 500, "ext_proc_error_bad_grpc_frame", "streams_failed"),
    ("reset", "the processor resets the call mid-stream", extproc_get("reset"), 500,
     "ext_proc_error_(gRPC_error_1|side_stream_reset)", "streams_failed"),
    ("out-of-order", "the processor answers out of order", extproc_get("out-of-order"), 500,
     "ext_proc_error_spurious_message", "spurious_msgs_received"),
]

FAULTS = [
    # Native modules at load time: the loader's child-process preflight (and the entry and
    # on_load checks) refuse the file; the old generation keeps serving.
    Fault("native-refuses-at-load", "on_load returns false",
          native("fixture", "good"), module_reload("init_fails"), 409,
          r"on_load refused to start \(this fixture always does\)",
          ("loader.fixture.load_failures", stat("loader.fixture.load_failures"), 1)),
    Fault("native-crashes-at-load", "on_load segfaults",
          native("fixture", "good"), module_reload("load_crashes"), 409,
          r"crashed.*signal 11",
          ("loader.fixture.load_failures", stat("loader.fixture.load_failures"), 1)),
    Fault("native-hangs-at-load", "on_load never returns",
          native("fixture", "good"), module_reload("load_hangs"), 409,
          r"did not finish loading within 5 s \(its on_load hangs\)",
          ("loader.fixture.load_failures", stat("loader.fixture.load_failures"), 1)),
    # on_config_create refusing a filter config: a config reload is refused with the module's
    # message, all or nothing, and the old config serves. No counter: the reload's answer and
    # the log line are the record (docs/operations.md, Reloading the config).
    Fault("native-config-rejected", "on_config_create rejects the filter's config",
          native("fixture", "good"), config_reload("config_rejected", {"colour": "blue"}), 400,
          r"config reload refused.*\n?.*'colour' must be red", None),
    # Native modules at run time.
    Fault("native-callback-throws", "a C++ SDK callback throws",
          native("fx_throws", "throws"), get("/throw/request_headers"), 500,
          r"on_request_headers threw: fx_throws: thrown from on_request_headers",
          ("module.fx_throws.callback_exceptions",
           lambda sy: module_stat(sy.stats(), "fx_throws", "callback_exceptions") or 0, 1)),
    # A segfault in a callback takes the process down (in-process code; docs/abi.md): the
    # crashing request gets no answer. The crash record is the counter: the next start shows
    # it in /modules and serves the previous generation instead of the crashed one.
    Fault("native-crashes-in-a-callback", "on_request_headers segfaults",
          deployed_v1, swap_to_v2_and_crash, None,
          r"module fx_segfault generation \d+ \(sha256 [0-9a-f]+\) crashed the process: "
          r"signal 11 \(SIGSEGV\) in its on_request_headers callback",
          None, afterwards="restarts on previous"),
    # Lua: Envoy's outcomes. A script error lets the request go on unmodified; a runaway loop
    # or a state over its memory cap gets a 500. The worker goes on serving.
    Fault("lua-script-error", "the script raises an error",
          lua(LUA_ERROR), get("/echo", {"x-fault": "1"}), 200,
          r"fault catalogue: boom",
          ("module.lua.errors", stat("module.lua.errors"), 1)),
    Fault("lua-runaway", "the script loops forever",
          lua(LUA_RUNAWAY, limits=LUA_LIMITS), get("/echo", {"x-fault": "1"}), 500,
          r"script error: instruction budget exceeded; the request gets a 500",
          ("module.lua.budget_exceeded", stat("module.lua.budget_exceeded"), 1)),
    Fault("lua-memory", "the script allocates without bound",
          lua(LUA_GREEDY, limits={"instructions": 100000000, "memory": "16MiB"}),
          get("/echo", {"x-fault": "1"}), 500,
          r"script error: memory limit of the Lua state exceeded; the request gets a 500",
          ("module.lua.memory_exceeded", stat("module.lua.memory_exceeded"), 1)),
    # Wasm: the VM that traps, runs past callback_deadline_ms (an epoch interruption) or runs
    # out of memory fails; its stream gets a 503 whatever the policy (Envoy's outcome), and
    # failure_policy decides the later ones.
    Fault("wasm-trap", "a callback traps (unreachable)",
          wasm(failure_policy="FAIL_CLOSED"), get("/echo", {"x-action": "trap"}), 503,
          r"VM failed: proxy_on_request_headers trapped: (?s:.*)"
          r"wasm trap: wasm `unreachable` instruction executed\s*\(failure_policy FAIL_CLOSED\)",
          wasm_counter("wasm_traps"), afterwards="fails closed"),
    Fault("wasm-runaway", "a callback loops forever",
          wasm(failure_policy="FAIL_CLOSED", callback_deadline_ms=200),
          get("/echo", {"x-action": "loop"}), 503,
          r"VM failed: proxy_on_request_headers ran past its deadline of 200 ms "
          r"\(failure_policy FAIL_CLOSED\)",
          wasm_counter("wasm_deadline_exceeded"), afterwards="fails closed"),
    Fault("wasm-memory", "the plugin grows its memory without bound",
          wasm(failure_policy="FAIL_CLOSED", memory_limit_mb=8),
          get("/echo", {"x-action": "oom"}), 503,
          r"memory.grow refused after \d+ more pages\n.*VM failed: proxy_on_request_headers "
          r"trapped", wasm_counter("wasm_traps"), afterwards="fails closed"),
    Fault("wasm-trap-fail-reload", "a callback traps, under FAIL_RELOAD",
          wasm(failure_policy="FAIL_RELOAD"), get("/echo", {"x-action": "trap"}), 503,
          r"VM failed: proxy_on_request_headers trapped: (?s:.*)"
          r"wasm trap: wasm `unreachable` instruction executed\s*\(failure_policy FAIL_RELOAD\)",
          wasm_counter("wasm_traps")),
    *(Fault(f"ext-authz-{key}-{mode}", fault, authz(allow), provoke, 200 if allow else 403,
            rf"ext_authz check failed: {why}",
            authz_counter("failure_mode_allowed" if allow else "error"), log_level="debug")
      for key, fault, provoke, why in AUTHZ_FAULTS
      for mode, allow in (("fail-closed", False), ("fail-open", True))),
    *(Fault(f"ext-proc-{key}-{mode}", fault, extproc(allow), provoke, 200 if allow else status,
            rf"stream failed: {why}",
            extproc_counter("failure_mode_allowed" if allow else counter), log_level="debug")
      for key, fault, provoke, status, why, counter in EXTPROC_FAULTS
      for mode, allow in (("fail-closed", False), ("fail-open", True))),
]


@pytest.mark.parametrize("row", [
    pytest.param(f, id=f.id, marks=[pytest.mark.crashes_on_purpose]
                 if f.afterwards == "restarts on previous" else []) for f in FAULTS])
def test_fault(upstream, switchyard, tmp_path, row):
    sy = switchyard(row.config(upstream.port, tmp_path), start=False)
    sy.start(extra_args=["--log-level", row.log_level])
    sy.upstream_port = upstream.port
    port = sy.port("ingress")
    assert request(port, "GET", "/echo").status == 200, "the module did not work before its fault"

    status = row.provoke(sy, tmp_path)
    assert status == row.status, f"{row.fault}: the user saw {status}, not {row.status}"
    log = sy.log_path.read_text(errors="replace")
    assert re.search(row.log, log), f"no log line matching {row.log!r}:\n{sy.log_tail()}"
    if row.counter is not None:
        name, read, value = row.counter
        until(lambda: read(sy) == value, what=f"{name} == {value}")

    if row.afterwards == "serves":
        assert sy.running(), f"the proxy died of {row.fault}"
        assert sy.admin("GET", "/ready").status == 200
        for _ in range(3):  # the same module, the same worker, still serving
            assert request(port, "GET", "/echo").status == 200
    elif row.afterwards == "fails closed":
        assert sy.running(), f"the proxy died of {row.fault}"
        assert sy.admin("GET", "/ready").status == 200
        for _ in range(3):  # the failed module answers for itself, on a live worker
            assert request(port, "GET", "/echo").status == 503
    else:
        assert row.afterwards == "restarts on previous", row.afterwards
        assert not sy.running()
        sy.start()
        assert served_version(sy.port("ingress")) == "1"
        entry = module_entry(sy, "fx_segfault")
        assert len(entry["crashes"]) == 1 and entry["stands_in_for"], entry
