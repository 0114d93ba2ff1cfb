"""vm_id sharing and network plugins on their worker's hooks, with the project's C filter
(tests/wasm/c/host_test.c).

Plugins whose VM key matches (Envoy's: vm_id, VM configuration and code) share one VM per
worker, each plugin with its own root context and configuration; different code under one
vm_id is two VMs. A network plugin's root context ticks and calls out, as an HTTP plugin's does.

The filter's action "vm" adds x-vm: "<its plugin's configuration>:<the VM's serial>:<how often
_initialize ran>:<root contexts given on_vm_start>:<requests this VM saw>". Every behaviour is
observed from outside (upstream.py's /echo, /stats/prometheus, the log); waits poll.
"""
import re

from harness import (RawClient, cluster, echo_headers, raw_request, request, to_cluster,
                     until)
from modules_util import MODULES, module_file
from test_wasm_host import compile_filter, get, host_test_wasm, log_has, wasm_filter  # noqa: F401


def plugin(path, name, configuration, vm_id="vm1", network=False):
    f = wasm_filter(path, configuration)
    f["config"]["name"] = name
    f["config"]["root_id"] = name + "_root"
    f["config"]["vm_config"]["vm_id"] = vm_id
    if network:
        f["filter"] = "wasm_network"
    return f


def http_config(upstream, *listeners, workers=1):
    """One listener per entry of LISTENERS (a list of filters), named ingress, second, ..."""
    module_file("wasm")
    names = ["ingress", "second", "third"]
    return {"module_path": [str(MODULES)], "workers": workers,
            "listeners": [{"name": names[i], "filters": filters,
                           "routes": [to_cluster("all", {"prefix": "/"}, "backend")]}
                          for i, filters in enumerate(listeners)],
            "clusters": [cluster("backend", upstream.port)]}


def vm_fields(resp):
    """Each plugin's x-vm, split: (configuration, serial, initializes, vm_starts, requests)."""
    assert resp.status == 200, resp
    out = []
    for v in echo_headers(resp.json(), "x-vm"):
        config, serial, inits, starts, requests = v.split(":")
        out.append((config, int(serial), int(inits), int(starts), int(requests)))
    return out


def test_plugins_with_one_key_share_one_vm_each_with_its_own_root(switchyard, upstream,
                                                                  host_test_wasm):
    sy = switchyard(http_config(upstream, [plugin(host_test_wasm, "alpha", "alpha"),
                                           plugin(host_test_wasm, "beta", "beta")]))
    first = vm_fields(get(sy, "vm"))
    (a_cfg, a_vm, a_inits, a_starts, a_n), (b_cfg, b_vm, b_inits, b_starts, b_n) = first
    # Each plugin's on_configure got its own configuration, in its own root context.
    assert (a_cfg, b_cfg) == ("alpha", "beta")
    # One instance: the same serial, _initialize ran once, and a count both plugins add to.
    assert a_vm == b_vm, first
    assert (a_inits, b_inits) == (1, 1), first
    assert (a_n, b_n) == (1, 2), first
    # Each root context got on_vm_start, as in Envoy.
    assert (a_starts, b_starts) == (2, 2), first
    second = vm_fields(get(sy, "vm"))
    assert [(f[1], f[4]) for f in second] == [(a_vm, 3), (a_vm, 4)], second
    # Logs stay attributed to each plugin.
    until(lambda: log_has(sy, "wasm log alpha alpha_root vm1: configured with 'alpha'"))
    until(lambda: log_has(sy, "wasm log beta beta_root vm1: configured with 'beta'"))


def test_one_key_on_two_listeners_is_one_vm(switchyard, upstream, host_test_wasm):
    sy = switchyard(http_config(upstream, [plugin(host_test_wasm, "alpha", "alpha")],
                                [plugin(host_test_wasm, "gamma", "gamma")]))
    (a,) = vm_fields(get(sy, "vm"))
    (g,) = vm_fields(request(sy.port("second"), path="/echo", headers={"x-action": "vm"}))
    assert a[1] == g[1], (a, g)
    assert (a[4], g[4]) == (1, 2), (a, g)


def test_different_code_under_one_vm_id_is_two_vms(switchyard, upstream, host_test_wasm,
                                                   tmp_path):
    other = compile_filter(tmp_path / "variant2.wasm", variant="2")
    sy = switchyard(http_config(upstream, [plugin(host_test_wasm, "alpha", "alpha"),
                                           plugin(other, "beta", "beta")]))
    fields = vm_fields(get(sy, "vm"))
    (_, a_vm, a_inits, a_starts, a_n), (_, b_vm, b_inits, b_starts, b_n) = fields
    assert a_vm != b_vm, fields
    assert (a_inits, a_starts, a_n) == (1, 1, 1), fields
    assert (b_inits, b_starts, b_n) == (1, 1, 1), fields


def test_a_different_vm_configuration_is_another_vm(switchyard, upstream, host_test_wasm):
    beta = plugin(host_test_wasm, "beta", "beta")
    beta["config"]["vm_config"]["configuration"] = {
        "@type": "type.googleapis.com/google.protobuf.StringValue", "value": "other"}
    sy = switchyard(http_config(upstream, [plugin(host_test_wasm, "alpha", "alpha"), beta]))
    fields = vm_fields(get(sy, "vm"))
    assert fields[0][1] != fields[1][1], fields


def test_a_reload_that_replaces_every_plugin_of_a_key_starts_a_fresh_vm(switchyard, upstream,
                                                                         host_test_wasm):
    # The worker lets go of the old filter config before it takes the new one: the VM's last
    # plugin has left, so the new one starts a fresh VM, as Envoy creates new VMs on a config
    # change, even while a stream in flight still holds the old VM (it finishes there).
    sy = switchyard(http_config(upstream, [plugin(host_test_wasm, "alpha", "one")]))
    (before,) = vm_fields(get(sy, "vm"))
    assert before[0] == "one" and before[2:] == (1, 1, 1), before
    with RawClient(sy.port("ingress"), timeout=30) as held:
        held.send(raw_request("GET", "/slow?hold=reload-vm", headers=[("x-action", "plain")]))
        until(lambda: upstream.stats()["held"] == 1, what="a request in flight upstream")
        sy.write_config(http_config(upstream, [plugin(host_test_wasm, "alpha", "two")]))
        assert sy.reload().status == 200

        def after():
            (f,) = vm_fields(get(sy, "vm"))
            return f[0] == "two" and f

        f = until(after, what="the reloaded configuration")
        assert f[1] != before[1], (before, f)
        assert f[2:] == (1, 1, 1), f
        upstream.release("reload-vm")
        assert held.read_response().status == 200


def test_a_vm_let_go_tells_each_root_context_done_then_deleted(switchyard, upstream,
                                                               host_test_wasm):
    # Envoy's VM shutdown: each root context hears proxy_on_done, then proxy_on_delete. Here
    # that is when the last plugin and the last stream let go of the VM: the reload below
    # replaces the only plugin of the key, on each of the two workers. Before, a root context
    # never heard either.
    sy = switchyard(http_config(upstream, [plugin(host_test_wasm, "alpha", "one")], workers=2))
    assert vm_fields(get(sy, "vm"))[0][0] == "one"
    sy.write_config(http_config(upstream, [plugin(host_test_wasm, "alpha", "two")], workers=2))
    assert sy.reload().status == 200
    # A root whose plugin has left logs under its VM's name alone ("vm1: "); the config check's
    # VM on the main thread, let go while the plugin still existed, logs under the plugin's.
    done, deleted = "wasm log vm1: root 'one' done", "wasm log vm1: root 'one' deleted"
    until(lambda: sy.log_path.read_text().count(deleted) == 2,
          what="both workers' old root contexts deleted")
    log = sy.log_path.read_text()
    assert log.count(done) == 2, log
    assert log.index(done) < log.index(deleted), log
    # The new plugin's root contexts live on, and serve.
    assert "wasm log vm1: root 'two'" not in log, log
    assert vm_fields(get(sy, "vm"))[0][0] == "two"


def tcp_config(upstream, net, workers=1):
    module_file("wasm")
    return {"module_path": [str(MODULES)], "workers": workers,
            "listeners": [{"name": "tcp", "tcp_proxy": {"cluster": "backend"},
                           "network_filters": [net]}],
            "clusters": [cluster("backend", upstream.port)]}


def prometheus_value(sy, family):
    text = sy.admin("GET", "/stats/prometheus").text()
    m = re.search(rf"^{family}(\{{[^}}]*\}})? (\d+)$", text, re.M)
    return int(m.group(2)) if m else 0


def test_a_network_plugins_root_context_ticks(switchyard, upstream, host_test_wasm):
    # No connection at all: the tick runs on the plugin's worker handle (ABI 1.2's
    # on_worker_start for network filter configs), as an HTTP plugin's does.
    sy = switchyard(tcp_config(upstream, plugin(host_test_wasm, "net", "tick", network=True),
                               workers=2))
    until(lambda: prometheus_value(sy, "host_test_ticks") >= 6,
          what="host_test_ticks counting in /stats/prometheus")
    until(lambda: log_has(sy, "wasm log net net_root vm1: tick 3"))


def test_a_network_plugin_calls_out_from_its_tick(switchyard, upstream, host_test_wasm):
    sy = switchyard(tcp_config(upstream, plugin(host_test_wasm, "net", "tick-call",
                                                network=True)))
    until(lambda: upstream.stats()["paths"].get("/tick", 0) >= 1, what="the tick's HTTP call")
    # upstream.py has no /tick: its 404 comes back to the root context.
    until(lambda: log_has(sy, "wasm log net net_root vm1: tick call answered 404"))


def test_a_network_plugin_hears_of_its_queue(switchyard, upstream, host_test_wasm):
    # The plugin registered "jobs" in on_configure with its worker handle; a connection's
    # bytes enqueue to it, and proxy_on_queue_ready of its root context takes them.
    sy = switchyard(tcp_config(upstream, plugin(host_test_wasm, "net", "", network=True)))
    with RawClient(sy.port("tcp")) as c:
        c.send(b"ENQUEUE:net-job")
        until(lambda: log_has(sy, "wasm log net net_root vm1: dequeued 'net-job'"))
