"""The ABI's failure modes, one fixture module each (tests/abi/), refused at start (--validate)
and at run time (POST /modules/NAME/reload) with a message that names the file, what was found
and what was expected, while the old generation keeps serving; the C++ SDK's exception barrier;
a post to a stale stream id; timers, worker posts and metric names of the host table; the
gnu-unique warning; and the compatibility matrix over
abi/history/."""
import json
import re

import pytest

import harness
from harness import free_port, proxy_all, request, run_switchyard, until
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


@pytest.mark.parametrize("version", history_versions())
def test_compat_module_built_against_history_loads(upstream, switchyard, version):
    path = built(HISTORY / version / "libsy_compat.so")
    sy = switchyard(with_filters(upstream.port, [{"module": "compat"}],
                                 modules=[{"name": "compat", "path": str(path)}]))
    r = request(sy.port("ingress"), "GET", "/echo")
    assert r.status == 200, r
    assert r.header("x-compat-abi") == version
    entry = module_entry(sy, "compat")
    assert entry.get("module_version") == version, entry
    assert version in str(entry.get("abi")), entry
