"""The ABI's failure modes, one fixture module each (tests/abi/), refused at start (--validate)
and at run time (POST /modules/NAME/reload) with a message that names the file, what was found
and what was expected, while the old generation keeps serving; the C++ SDK's exception barrier;
a post to a stale stream id; timers, worker posts and metric names of the host table; the
gnu-unique warning; and the compatibility matrix over
abi/history/."""
import json
import re
import subprocess

import pytest

import harness
from harness import (RawClient, free_port, proxy_all, raw_request, request,
                     run_switchyard, until)
from modules_util import (HISTORY, built, error_text, fixture_file, host_abi, module_entry,
                          module_stat, reload_module, sha256_file, with_filters)

MAJOR, MINOR = host_abi()


def not_elf(tmp_path):
    path = tmp_path / "libsy_fx_not_elf.so"
    path.write_bytes(b"#!/bin/sh\necho this is not an ELF file\n" * 8)
    return path


def truncated(tmp_path):
    data = fixture_file("good").read_bytes()
    path = tmp_path / "libsy_fx_truncated.so"
    path.write_bytes(data[:len(data) // 2])
    return path


def built_fixture(mode):
    return lambda tmp_path: fixture_file(mode)


# (id, make the file, regexes the message must all match (case-insensitive), whether the file's
#  name must be in it)
FAILURES = [
    ("wrong-major", built_fixture("wrong_major"),
     [rf"\b{MAJOR + 1}\.0\b", rf"\b{MAJOR}\.{MINOR}\b"], True),
    ("newer-minor", built_fixture("newer_minor"),
     [rf"\b{MAJOR}\.{MINOR + 1}\b", rf"\b{MAJOR}\.{MINOR}\b"], True),
    ("no-stamp", built_fixture("no_stamp"), [r"stamp"], True),
    ("stamp-descriptor-disagree", built_fixture("stamp_mismatch"), [r"6\.6\.6"], True),
    ("missing-entry", built_fixture("no_entry"), [r"sy_module_entry_v1"], True),
    ("init-fails", built_fixture("init_fails"),
     [r"on_load refused to start \(this fixture always does\)"], True),
    ("config-rejected", built_fixture("config_rejected"), [r"'colour' must be red"], False),
    # NULL without a message is a refusal too; the generic message names module and filter.
    ("config-null", built_fixture("config_null"),
     [r"'silent'", r"'fixture'", r"rejected its config without saying why"], False),
    # Crashes while loading are found in a child process (the preflight), never in the proxy.
    ("entry-crashes", built_fixture("entry_crashes"),
     [r"crashed", r"signal 11", r"entry function"], True),
    ("load-crashes", built_fixture("load_crashes"), [r"crashed", r"signal 11", r"on_load"], True),
    ("not-elf", not_elf, [r"\bELF\b"], True),
    ("truncated", truncated, [r"truncat|too short|ELF|section|stamp"], True),
]


def check_message(text, path, patterns, names_file):
    for p in patterns:
        assert re.search(p, text, re.I), f"message does not match {p!r}: {text!r}"
    if names_file:
        assert path.name in text, f"message does not name {path.name}: {text!r}"


def fixture_config(path, **module_extra):
    cfg = proxy_all(free_port())
    cfg["listeners"][0]["filters"] = [{"module": "fixture"}]
    cfg["modules"] = [{"name": "fixture", "path": str(path), **module_extra}]
    return cfg


@pytest.mark.parametrize("make,patterns,names_file",
                         [pytest.param(m, p, n, id=i) for i, m, p, n in FAILURES])
def test_refused_at_start(tmp_path, switchyard, make, patterns, names_file):
    path = make(tmp_path)
    sy = switchyard(fixture_config(path), start=False)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    # 1, not a signal: the fixtures refused from their stamp abort if any of their code runs.
    assert out.returncode == 1, f"exit {out.returncode}: {text}"
    check_message(text, path, patterns, names_file)
    assert re.search(r"switchyard\.yaml:\d+:\d+", text), f"no config location in {text!r}"


def test_refused_sha256_pin(tmp_path, switchyard):
    path = fixture_file("good")
    sy = switchyard(fixture_config(path, sha256="0" * 64), start=False)
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    check_message(text, path, [r"sha256", sha256_file(path)], True)
    # The right pin loads.
    sy.write_config(fixture_config(path, sha256=sha256_file(path)))
    out = run_switchyard(["-c", str(sy.config_path), "--validate"])
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("make,patterns,names_file",
                         [pytest.param(m, p, n, id=i) for i, m, p, n in FAILURES])
def test_refused_on_reload_old_generation_serves(tmp_path, upstream, switchyard, make, patterns,
                                                 names_file):
    good = fixture_file("good")
    sy = switchyard(with_filters(upstream.port, [{"module": "fixture"}],
                                 modules=[{"name": "fixture", "path": str(good)}]))
    port = sy.port("ingress")
    assert request(port, "GET", "/echo").header("x-fixture") == "good"
    before = module_entry(sy, "fixture")

    path = make(tmp_path)
    resp = reload_module(sy, "fixture", path)
    assert sy.running(), "the proxy died: it ran code of a module it should have refused"
    assert 400 <= resp.status < 600, resp
    check_message(error_text(resp), path, patterns, names_file)

    r = request(port, "GET", "/echo")
    assert r.status == 200 and r.header("x-fixture") == "good", r
    after = module_entry(sy, "fixture")
    assert after["generation"] == before["generation"], after
    check_message(str(after.get("last_error") or ""), path, patterns, names_file)


def test_config_reload_refuses_a_module_that_crashes_while_loading(upstream, switchyard):
    # The same preflight guards a config reload (POST /reload) that points a module at a new
    # file: the proxy lives, the reload is refused and the old generation keeps serving.
    good = fixture_file("good")
    sy = switchyard(with_filters(upstream.port, [{"module": "fixture"}],
                                 modules=[{"name": "fixture", "path": str(good)}]))
    port = sy.port("ingress")
    before = module_entry(sy, "fixture")
    crashes = fixture_file("entry_crashes")
    sy.write_config(with_filters(upstream.port, [{"module": "fixture"}],
                                 modules=[{"name": "fixture", "path": str(crashes)}]))
    resp = sy.reload()
    assert sy.running(), "the proxy died: it ran a crashing module's entry in its own process"
    assert 400 <= resp.status < 600, resp
    check_message(error_text(resp), crashes, [r"crashed", r"signal 11"], True)
    r = request(port, "GET", "/echo")
    assert r.status == 200 and r.header("x-fixture") == "good", r
    assert module_entry(sy, "fixture")["generation"] == before["generation"]


def test_failed_start_unloads_the_module(tmp_path, upstream, switchyard):
    # A filter that rejects its config at start: the proxy exits with the error, and the module
    # generation it loaded is released on the way out (its on_unload runs), not leaked.
    record = tmp_path / "unload-record"
    fx = fixture_file("unload_record")
    sy = switchyard(with_filters(upstream.port,
                                 [{"module": "fx_unload_record", "config": {"record": str(record)}}],
                                 modules=[{"name": "fx_unload_record", "path": str(fx)}]),
                    start=False)
    sy.start(wait_ready=False)
    assert sy.wait_exit() == 1, sy.log_tail()
    log = sy.log_path.read_text(errors="replace")
    assert "rejects every config (this fixture always does)" in log, sy.log_tail()
    assert record.exists(), f"on_unload never ran after the failed start\n{sy.log_tail()}"
    assert record.read_text() == "unloaded\n"


# --- the C++ SDK's exception barrier ---------------------------------------------------------


def test_exception_becomes_500_and_counter(upstream, switchyard):
    fx = fixture_file("throws")
    cfg = with_filters(upstream.port, [{"module": "fx_throws"}],
                       modules=[{"name": "fx_throws", "path": str(fx)}])
    cfg["listeners"].append({"name": "ctor", "filters": [
        {"module": "fx_throws", "config": {"throw_in": "constructor"}}],
        "routes": cfg["listeners"][0]["routes"]})
    sy = switchyard(cfg)
    port = sy.port("ingress")

    ok = request(port, "GET", "/echo")
    assert ok.status == 200 and ok.header("x-throws") == "no", ok
    r = request(port, "GET", "/throw/request_headers")
    assert r.status == 500, r
    r = request(port, "GET", "/throw/response_headers")
    assert r.status == 500, r
    assert module_stat(sy.stats(), "fx_throws", "callback_exceptions") == 2
    # A throw from a body callback: a 500 if the response has not started yet, else the
    # response goes on; the exception is counted either way and the process lives.
    r = request(port, "GET", "/throw/response_body")
    assert r.status in (404, 500), r
    until(lambda: module_stat(sy.stats(), "fx_throws", "callback_exceptions") == 3,
          what="the body exception counted")
    r = request(sy.port("ctor"), "GET", "/echo")
    assert r.status == 500, r
    assert module_stat(sy.stats(), "fx_throws", "callback_exceptions") == 4

    assert request(port, "GET", "/echo").status == 200
    log = sy.log_path.read_text(errors="replace")
    assert "on_request_headers threw: fx_throws: thrown from on_request_headers" in log, \
        sy.log_tail()
    # The local reply's details reach the access log (written once each stream is over).
    until(lambda: sum("module_exception" in json.dumps(e) for e in sy.access_entries()) == 3,
          what="3 access log lines with details module_exception")


# --- stale stream ids ------------------------------------------------------------------------


def test_post_to_ended_stream_is_dropped_and_counted(upstream, switchyard):
    fx = fixture_file("stale_stream")
    sy = switchyard(with_filters(upstream.port, [{"module": "fx_stale"}],
                                 modules=[{"name": "fx_stale", "path": str(fx)}]))
    port = sy.port("ingress")
    first = request(port, "GET", "/echo")
    assert first.status == 200 and first.header("x-stale-post") is None, first
    # The first stream is over once it is in the access log; the second stream posts to it.
    until(lambda: len(sy.access_entries()) >= 1, what="the first request's access log line")
    second = request(port, "GET", "/echo")
    assert second.status == 200, second
    assert second.header("x-stale-post") in ("3", "0"), second  # SY_ERR_STALE, or dropped later
    until(lambda: module_stat(sy.stats(), "fx_stale", "dropped") == 1, what="the drop callback")
    assert module_stat(sy.stats(), "fx_stale", "ran") == 0


# --- host lifetimes (issue 12) ---------------------------------------------------------------


def test_stream_timer_cancelled_in_stream_destroy_is_dropped_once(upstream, switchyard):
    fx = fixture_file("timer_destroy")
    sy = switchyard(with_filters(upstream.port, [{"module": "fx_timer_destroy"}],
                                 modules=[{"name": "fx_timer_destroy", "path": str(fx)}]))
    port = sy.port("ingress")
    for _ in range(3):
        assert request(port, "GET", "/echo").status == 200
    until(lambda: module_stat(sy.stats(), "fx_timer_destroy", "cancelled") == 3,
          what="on_stream_destroy of the three streams")
    stats = sy.stats()
    # Each timer was dropped when its stream ended, once; the cancels after that did nothing.
    assert module_stat(stats, "fx_timer_destroy", "dropped") == 3, stats
    assert module_stat(stats, "fx_timer_destroy", "fired") == 0, stats
    assert request(port, "GET", "/echo").status == 200


def test_task_posted_to_a_worker_can_make_a_callout(upstream, switchyard):
    fx = fixture_file("worker_post")
    sy = switchyard(with_filters(upstream.port, [{"module": "fx_worker_post"}],
                                 modules=[{"name": "fx_worker_post", "path": str(fx)}]))
    assert request(sy.port("ingress"), "GET", "/echo").status == 200
    until(lambda: module_stat(sy.stats(), "fx_worker_post", "callout_ok") == 1,
          what="the callout made from the worker task")
    stats = sy.stats()
    assert module_stat(stats, "fx_worker_post", "null_worker") == 0, stats
    assert module_stat(stats, "fx_worker_post", "not_started") == 0, stats


def queue_owners_config(upstream_port, with_tcp=True):
    fx = fixture_file("queue_owners")
    cfg = with_filters(upstream_port, [{"module": "fx_queue_owners", "filter": "fxq"}],
                       modules=[{"name": "fx_queue_owners", "path": str(fx)}])
    if with_tcp:
        cfg["listeners"].append({"name": "tcp", "tcp_proxy": {"cluster": "backend"},
                                 "network_filters": [{"module": "fx_queue_owners",
                                                      "filter": "fxq_tcp"}]})
    return cfg


def fxq(sy, **headers):
    r = request(sy.port("ingress"), "GET", "/",
                headers={f"x-fxq-{k}": v for k, v in headers.items()})
    assert r.status == 200, r
    return int(r.text())


def fxq_stat(sy, name):
    return module_stat(sy.stats(), "fx_queue_owners", name) or 0


def test_network_filter_and_worker_own_handle_get_on_queue_ready(upstream, switchyard):
    # ABI 1.2: a network filter config's worker context, and a worker's own handle (told through
    # the module's descriptor), own queues as an HTTP filter config does: each notification
    # runs on the registering worker's thread with that owner's data.
    sy = switchyard(queue_owners_config(upstream.port))
    workers = sy.config["workers"]
    for i in range(workers):
        assert fxq(sy, enqueue=f"fxq.net.{i}", data=f"n{i}") == 0  # SY_OK
    until(lambda: fxq_stat(sy, "net_items") == workers, what="every worker's network filter "
          "context drained its queue")
    assert fxq_stat(sy, "net_ready") >= 1
    assert fxq(sy, register="fxq.worker") == 0
    assert fxq(sy, enqueue="fxq.worker", data="w") == 0
    until(lambda: fxq_stat(sy, "worker_items") == 1, what="the module's on_queue_ready")
    stats = sy.stats()
    assert module_stat(stats, "fx_queue_owners", "worker_ready") == 1, stats
    assert (module_stat(stats, "fx_queue_owners", "wrong_thread") or 0) == 0, stats
    assert (module_stat(stats, "fx_queue_owners", "wrong_data") or 0) == 0, stats
    assert stats.get("host.queue_notifications_dropped", 0) == 0, stats


def test_network_filter_queue_owner_gone_is_dropped_and_counted(upstream, switchyard):
    sy = switchyard(queue_owners_config(upstream.port))
    workers = sy.config["workers"]
    # The TCP listener leaves the config: its network filter config leaves every worker.
    sy.write_config(queue_owners_config(upstream.port, with_tcp=False))
    assert sy.reload().status == 200
    until(lambda: fxq_stat(sy, "net_worker_stops") == workers,
          what="on_worker_stop of the network filter on every worker")
    before = sy.stats().get("host.queue_notifications_dropped", 0)
    assert fxq(sy, enqueue="fxq.net.0") == 0  # the data is kept; nobody is told
    until(lambda: sy.stats().get("host.queue_notifications_dropped", 0) == before + 1,
          what="the notification for the gone owner counted as dropped")
    assert fxq_stat(sy, "net_ready") == 0
    assert fxq_stat(sy, "wrong_data") == 0


def test_module_metrics_have_their_own_namespace_and_checked_names(upstream, switchyard):
    fx = fixture_file("metric_names")
    sy = switchyard(with_filters(upstream.port, [{"module": "fx_metric_names"}],
                                 modules=[{"name": "fx_metric_names", "path": str(fx)}]))
    stats = sy.stats()
    # The module's "loads" and the host's count of its loads are two stats.
    assert stats.get("module.fx_metric_names.loads") == 7, stats
    assert stats.get("loader.fx_metric_names.loads") == 1, stats
    assert stats.get("module.fx_metric_names.bad_name_status") == 2, stats  # SY_ERR_INVALID
    text = sy.admin("GET", "/stats").text()
    assert "forged" not in text, text


# --- gnu-unique ------------------------------------------------------------------------------


def test_gnu_unique_module_loads_with_a_warning(upstream, switchyard):
    fx = fixture_file("gnu_unique")
    sy = switchyard(with_filters(upstream.port, [{"module": "fx_gnu_unique"}],
                                 modules=[{"name": "fx_gnu_unique", "path": str(fx)}]))
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 200 and r.header("x-gnu-unique") == "1", r
    log = sy.log_path.read_text(errors="replace")
    warnings = [line for line in log.splitlines()
                if "unique" in line.lower() and fx.name in line]
    assert warnings, f"no gnu-unique warning naming {fx.name}:\n{sy.log_tail()}"
    assert any("-fno-gnu-unique" in w for w in warnings), warnings


# --- compatibility matrix --------------------------------------------------------------------


def history_versions():
    # Collected from the source tree, so that a missing build shows as a failure, not a skip.
    root = harness.REPO / "abi" / "history"
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def test_history_freezes_every_minor_and_the_current_one_is_today():
    # Every minor up to today's has its frozen header, so the matrix covers each; and while
    # today's minor is unreleased its copy must follow the header (tools/freeze-abi refreezes it).
    assert history_versions() == [f"{MAJOR}.{m}" for m in range(MINOR + 1)], history_versions()
    check = subprocess.run([str(harness.REPO / "tools" / "freeze-abi"), "--check",
                            f"{MAJOR}.{MINOR}"], capture_output=True, text=True)
    assert check.returncode == 0, (
        f"abi/history/{MAJOR}.{MINOR} is not today's header: run tools/freeze-abi "
        f"{MAJOR}.{MINOR}\n{check.stdout}{check.stderr}")


@pytest.mark.parametrize("version", history_versions())
def test_compat_module_built_against_history_loads(upstream, switchyard, version):
    # compat.c hands the host every table (descriptor, HTTP filter, network filter) at the size
    # of the header it was built with: all of them must load and run on today's host, whatever
    # slots later minors appended.
    path = built(HISTORY / version / "libsy_compat.so")
    cfg = with_filters(upstream.port, [{"module": "compat"}],
                       modules=[{"name": "compat", "path": str(path)}])
    cfg["listeners"].append({"name": "tcp", "tcp_proxy": {"cluster": "backend"},
                             "network_filters": [{"module": "compat", "filter": "compat_tcp"}]})
    sy = switchyard(cfg)
    tail = f"[compat {version}]"
    # The same behaviour, whichever header built the module: headers both ways, an attribute,
    # a buffered response body it appends to, and (x-compat-hold) a request held until a
    # stream timer resumes it.
    for hold in ({}, {"x-compat-hold": "1"}):
        r = request(sy.port("ingress"), "GET", "/echo?v=1", headers=hold)
        assert r.status == 200, r
        assert r.header("x-compat-abi") == version
        assert r.header("x-compat-path") == "/echo?v=1"
        text = r.text()
        assert text.endswith(tail), text[-100:]
        seen = {n.lower(): v for n, v in json.loads(text[:-len(tail)])["headers"]}
        assert seen.get("x-compat-request") == version, seen
    # A queue per worker, owned by the filter's worker context, drained by on_queue_ready.
    workers = sy.config["workers"]
    for i in range(workers):
        r = request(sy.port("ingress"), "GET", "/echo", headers={"x-compat-enqueue": f"compat.{i}"})
        assert r.status == 200, r
    until(lambda: module_stat(sy.stats(), "compat", "queue_items") == workers,
          what="on_queue_ready of every worker's compat queue")
    with RawClient(sy.port("tcp")) as c:
        c.send(raw_request("GET", "/echo", headers=[("Connection", "close")]))
        data = c.read_until_close()
    assert data.startswith(f"COMPAT {version}\nHTTP/1.1 200 ".encode()), data[:100]
    entry = module_entry(sy, "compat")
    assert entry.get("module_version") == version, entry
    assert version in str(entry.get("abi")), entry
