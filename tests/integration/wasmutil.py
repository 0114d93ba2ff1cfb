"""The Wasm differential tests' common ground: where the test filters are (built on demand by
tools/build-wasm-fixtures, cached outside the clone), one description of a deployment (which
.wasm files, with which Envoy PluginConfig fields) turned into an Envoy 1.40 bootstrap and into
a Switchyard config, and a handle on either proxy with what the tests ask of both: its HTTP
and TCP ports and its Prometheus text.

Both configs carry the same PluginConfig dicts: Switchyard's wasm module takes Envoy's field
names (name, root_id, vm_config {vm_id, runtime, code.local.filename, configuration},
configuration, failure_policy), so a plugin is described once.

Every deployment has one upstream.py, reachable as the cluster `backend` (where every route
goes) and under each name in CALLOUT_CLUSTERS, which the filters' HTTP callouts use.
"""
import functools
import json
import re
import subprocess
from pathlib import Path

import pytest

import envoyutil
import harness
from harness import free_port, request
from modules_util import MODULES, module_file

PROXIES = ("envoy", "switchyard")
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
HTTP_WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
NETWORK_WASM = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
CALLOUT_CLUSTERS = ("httpbin", "web_service")
WORKERS = 2  # both proxies: shared data and queues are meant to work across workers


@functools.lru_cache(maxsize=None)
def fixtures_dir():
    """The directory tools/build-wasm-fixtures builds the filters into (a no-op when cached)."""
    tool = harness.REPO / "tools" / "build-wasm-fixtures"
    out = subprocess.run([str(tool)], capture_output=True, text=True, timeout=1200,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"{tool} failed:\n{out.stderr[-4000:]}"
    return Path(out.stdout.strip().splitlines()[-1])


def go_filter(name):
    """The .wasm of the Go SDK filter NAME (tests/integration/wasm/go/NAME; / becomes _)."""
    path = fixtures_dir() / "go" / f"{name.replace('/', '_')}.wasm"
    assert path.exists(), f"{path} is missing: is {name} in tools/build-wasm-fixtures?"
    return path


def as_filter():
    return fixtures_dir() / "as" / "filters.wasm"


def rust_filter():
    return fixtures_dir() / "rust" / "filter.wasm"


def string_value(text):
    """A configuration in the Any form both proxies take: a google.protobuf.StringValue."""
    return {"@type": STRING_VALUE, "value": text}


def plugin(wasm, name, root_id="", vm_id="", configuration=None, vm_configuration=None,
           failure_policy=None):
    """An Envoy PluginConfig for the .wasm at WASM; the configurations are strings."""
    vm_config = {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                 "code": {"local": {"filename": str(wasm)}}}
    if vm_configuration is not None:
        vm_config["configuration"] = string_value(vm_configuration)
    cfg = {"name": name, "root_id": root_id, "vm_config": vm_config}
    if configuration is not None:
        cfg["configuration"] = string_value(configuration)
    if failure_policy is not None:
        cfg["failure_policy"] = failure_policy
    return cfg


# ------------------------------------------------------------------------------------------
# Config for each proxy


def cluster_ports(backend_port, dead):
    """Each cluster's port: the backend's, or for a cluster named in DEAD a port nobody
    listens on."""
    return {name: free_port() if name in dead else backend_port
            for name in ("backend", *CALLOUT_CLUSTERS)}


def envoy_bootstrap(http_plugins, network_plugins, ports, clusters):
    static = {
        "listeners": [envoyutil.http_listener(
            "ingress", ports["ingress"],
            [{"name": "all", "domains": ["*"],
              "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]}],
            [{"name": f"wasm_{i}", "typed_config": {"@type": HTTP_WASM, "config": p}}
             for i, p in enumerate(http_plugins)])],
        "clusters": [envoyutil.static_cluster(name, port) for name, port in clusters.items()],
    }
    if network_plugins:
        filters = [{"name": f"wasm_net_{i}", "typed_config": {"@type": NETWORK_WASM, "config": p}}
                   for i, p in enumerate(network_plugins)]
        filters.append({"name": "envoy.filters.network.tcp_proxy",
                        "typed_config": {"@type": TCP_PROXY, "stat_prefix": "tcp",
                                         "cluster": "backend"}})
        static["listeners"].append({"name": "tcp",
                                    "address": envoyutil.socket_address(ports["tcp"]),
                                    "filter_chains": [{"filters": filters}]})
    # Histograms reach the admin API at each stats flush (5 s by default): often, so that a
    # test waits little for them.
    return {"static_resources": static, "stats_flush_interval": "0.2s"}


def switchyard_config(http_plugins, network_plugins, clusters, workers=WORKERS):
    listeners = [{
        "name": "ingress",
        "filters": [{"module": "wasm", "filter": "wasm", "config": p} for p in http_plugins],
        "routes": [harness.to_cluster("all", {"prefix": "/"}, "backend")],
    }]
    if network_plugins:
        listeners.append({
            "name": "tcp", "tcp_proxy": {"cluster": "backend"},
            "network_filters": [{"module": "wasm", "filter": "wasm_network", "config": p}
                                for p in network_plugins]})
    return {"module_path": [str(MODULES)], "workers": workers, "listeners": listeners,
            "clusters": [harness.cluster(name, port) for name, port in clusters.items()]}


# ------------------------------------------------------------------------------------------
# The proxies


class WasmEnvoy(envoyutil.Envoy):
    """Envoy with WORKERS workers and the wasm component's log (the plugins' proxy_log) at
    info, so a failing test shows what the plugins said."""

    def __init__(self, workdir, bootstrap, workers=WORKERS):
        super().__init__(workdir, bootstrap)
        self.workers = workers

    def argv(self):
        argv = super().argv()
        argv[argv.index("--concurrency") + 1] = str(self.workers)
        argv[-1] += ",wasm:info"
        return argv


class Deployment:
    """One proxy (KIND: envoy or switchyard) with WORKERS workers, running the given plugins in
    front of BACKEND; the callout clusters named in DEAD lead nowhere."""

    def __init__(self, kind, workdir, backend, http_plugins=(), network_plugins=(), dead=(),
                 workers=WORKERS):
        assert kind in PROXIES, kind
        self.kind = kind
        self.backend = backend
        http_plugins, network_plugins = list(http_plugins), list(network_plugins)
        clusters = cluster_ports(backend.port, dead)
        if kind == "envoy":
            ports = {"ingress": free_port(), "tcp": free_port()}
            self.proc = WasmEnvoy(workdir, envoy_bootstrap(http_plugins, network_plugins, ports,
                                                           clusters), workers)
            self.http_port = ports["ingress"]
            self.tcp_port = ports["tcp"] if network_plugins else None
        else:
            module_file("wasm")
            self.proc = harness.Switchyard(workdir, switchyard_config(
                http_plugins, network_plugins, clusters, workers))
            self.http_port = self.proc.port("ingress")
            self.tcp_port = self.proc.port("tcp") if network_plugins else None

    def start(self):
        self.proc.start()
        return self

    def stop(self):
        self.proc.stop()

    def log_tail(self):
        return self.proc.log_tail()

    def request(self, method="GET", path="/echo", **kw):
        return request(self.http_port, method, path, **kw)

    def log_lines(self, *fragments):
        """The lines of the proxy's log that contain every one of FRAGMENTS."""
        text = Path(self.proc.log_path).read_text(errors="replace")
        return [line for line in text.splitlines() if all(f in line for f in fragments)]

    def prometheus(self):
        resp = self.proc.admin("GET", "/stats/prometheus")
        assert resp.status == 200, resp
        return resp.text()

    def metric(self, name):
        """The value of the Prometheus sample NAME, written as a PromQL selector would be
        (`family` or `family{label="value",...}`), or None. As in PromQL, a sample matches when
        its family is the same and it has at least the labels asked for: Envoy writes `name{}`,
        a proxy that adds a label of its own still serves the same query."""
        want_family, want_labels = parse_sample(name)
        for line in self.prometheus().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            sample, _, value = line.rpartition(" ")
            family, labels = parse_sample(sample)
            if family == want_family and want_labels <= labels:
                return float(value)
        return None


SAMPLE = re.compile(r'([^{\s]+)(?:\{(.*)\})?$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_sample(text):
    """(family, set of (label, value)) of a Prometheus sample name such as a{b="c"}."""
    m = SAMPLE.match(text.strip())
    assert m, f"not a Prometheus sample: {text!r}"
    return m.group(1), set(LABEL.findall(m.group(2) or ""))


def echo_header(resp, name):
    """The values the upstream's /echo saw for the request header NAME."""
    return [v for n, v in resp.json()["headers"] if n.lower() == name.lower()]


def dump(obj):
    return json.dumps(obj, indent=2)


class Pool:
    """The deployments of one proxy kind for a whole test module: get(key, ...) starts one on
    first use and hands the same one to every later test that asks for KEY, so the tests of
    one filter share a start (V8 compiles a Go filter in seconds). A test that needs fresh
    state asks for a key of its own. Each deployment has its own upstream.py."""

    def __init__(self, kind, workdir):
        self.kind = kind
        self.workdir = Path(workdir)
        self.deployments = {}
        self.failed = {}

    def get(self, key, http=(), network=(), peers=None, dead=(), workers=WORKERS):
        if key in self.failed:
            raise AssertionError(f"the {self.kind} deployment {key!r} failed to start before: "
                                 f"{self.failed[key]}")
        d = self.deployments.get(key)
        if d is None:
            work = self.workdir / key
            backend = harness.Upstream(work / "upstreams", "backend")
            try:
                d = Deployment(self.kind, work, backend, http, network, dead, workers).start()
            except Exception as e:
                backend.stop()
                self.failed[key] = f"{type(e).__name__}: {str(e)[:2000]}"
                raise
            self.deployments[key] = d
        if peers is not None:
            peers.extend([d.proc, d.backend])
        return d

    def stop(self):
        for d in self.deployments.values():
            d.stop()
            d.backend.stop()


# The fixtures each Wasm test module imports (pytest finds fixtures a test module imports).


@pytest.fixture(scope="module", params=PROXIES)
def pool(request, tmp_path_factory):
    """The test module's deployments on the parametrised proxy."""
    module = request.module.__name__
    p = Pool(request.param, tmp_path_factory.mktemp(f"{module}-{request.param}"))
    yield p
    p.stop()


@pytest.fixture
def deploy(pool, peers):
    """deploy(key, http=[PluginConfig...], network=[...], dead=[cluster...], workers=N): the
    parametrised proxy running those plugins in front of its own upstream.py, shared by the
    tests that use the same KEY; callouts to the clusters in DEAD fail. At teardown the test
    fails if the proxy sent its upstream malformed HTTP."""
    used = []

    def get(key, http=(), network=(), dead=(), workers=WORKERS):
        d = pool.get(key, http, network, peers, dead, workers)
        used.append(d)
        return d

    yield get
    for d in used:
        if d.backend.running():
            stats = d.backend.stats()
            assert not stats["protocol_errors"], (
                f"{d.kind} sent malformed HTTP upstream: {stats['last_protocol_error']}")
