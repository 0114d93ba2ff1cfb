"""The benchmark harness in smoke mode (bench/run.py --smoke): one short round of every scenario
against the built binary, so that the harness cannot rot. It asserts nothing about speed: only
that the results are written and well-formed, and that every entrant either produced figures or
says why not.

Envoy is part of the bench: if bench/setup cannot install it, this test fails, unless
SY_BENCH_NO_ENVOY=1 says to run without it (the results then say so, and so does this test).
"""
import json
import os
import subprocess
import warnings
from pathlib import Path

import pytest

import harness

BENCH = harness.REPO / "bench"
SY_CACHE = Path(os.environ.get("SY_CACHE", Path.home() / ".cache" / "switchyard"))
BENCH_PYTHON = SY_CACHE / "bench-venv" / "bin" / "python"
NO_ENVOY = os.environ.get("SY_BENCH_NO_ENVOY") == "1"
STATUSES = {"ok", "partial", "failed", "unavailable", "not-run"}


def _tail(text, n=40):
    return "\n".join(text.splitlines()[-n:])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    assert harness.BINARY.exists(), f"{harness.BINARY} does not exist: build it first"
    setup = subprocess.run([str(BENCH / "setup")], capture_output=True, text=True, timeout=900,
                           stdin=subprocess.DEVNULL)
    if setup.returncode != 0:
        pytest.fail("bench/setup failed, so the bench cannot run (set SY_BENCH_NO_ENVOY=1 if "
                    "it is Envoy that cannot be installed here):\n"
                    f"{_tail(setup.stdout)}\n{_tail(setup.stderr)}", pytrace=False)
    out = tmp_path_factory.mktemp("bench-smoke")
    env = dict(os.environ, SWITCHYARD_BIN=str(harness.BINARY),
               SWITCHYARD_MODULE_DIR=str(harness.BINARY.parent / "modules"))
    run = subprocess.run([str(BENCH_PYTHON), str(BENCH / "run.py"), "--smoke", "--out", str(out),
                          "--workdir", str(out / "work")], capture_output=True, text=True,
                         timeout=480, stdin=subprocess.DEVNULL, env=env)
    print(run.stderr)
    assert run.returncode == 0, f"bench/run.py --smoke exited {run.returncode}:\n" \
                                f"{_tail(run.stdout)}\n{_tail(run.stderr)}"
    return out


@pytest.mark.timeout(1200)
def test_smoke_writes_well_formed_results(smoke):
    results = json.loads((smoke / "results.json").read_text())
    md = (smoke / "RESULTS.md").read_text()
    png = (smoke / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000, "results.png is not a PNG"
    assert results["settings"]["mode"] == "smoke"
    for key in ("nproc", "cpu_model", "kernel"):
        assert results["meta"]["machine"].get(key), f"machine info lacks {key}"
    assert results["meta"]["tools"].get("wrk"), "tool versions not recorded"
    names = [s["name"] for s in results["scenarios"]]
    assert {"passthrough-small", "passthrough-16k", "hello", "lua", "h2-small",
            "tls-handshakes"} <= set(names), names
    for s in results["scenarios"]:
        assert f"## {s['name']}" in md, f"RESULTS.md has no section for {s['name']}"
        assert s["entrants"], f"scenario {s['name']} lists no entrant"


@pytest.mark.timeout(1200)
def test_smoke_every_entrant_has_figures_or_a_reason(smoke):
    results = json.loads((smoke / "results.json").read_text())
    for s in results["scenarios"]:
        for e in s["entrants"]:
            where = f"{s['name']}/{e['name']}"
            assert e["status"] in STATUSES, f"{where}: unknown status {e['status']!r}"
            if e["status"] in ("ok", "partial"):
                assert e["summary"].get("rps"), f"{where}: status {e['status']} but no req/s"
                if e["system"] != "direct":
                    assert e["summary"].get("cpu_sat"), f"{where}: no CPU figure"
            else:
                assert isinstance(e.get("reason"), str) and e["reason"].strip(), \
                    f"{where}: status {e['status']} with no reason"
            if e.get("module") and not (harness.BINARY.parent / "modules" /
                                        f"libsy_{e['module']}.so").exists():
                assert e["status"] == "unavailable" and \
                    "not available in this build" in e["reason"], where
    # The passthrough scenarios always run: Switchyard and the direct path must have figures.
    small = next(s for s in results["scenarios"] if s["name"] == "passthrough-small")
    by_name = {e["name"]: e for e in small["entrants"]}
    for name in ("direct", "switchyard"):
        assert by_name[name]["status"] in ("ok", "partial"), \
            f"{name}: {by_name[name]['status']}: {by_name[name].get('reason')}"
    mem = by_name["switchyard"].get("memory")
    assert mem and mem.get("reached"), f"no idle-connection memory figure: {mem}"


@pytest.mark.timeout(1200)
def test_smoke_http2_and_tls_scenarios_ran(smoke):
    """h2load through Switchyard and straight to the upstream, over h2c and over TLS: both must
    have figures, and every TLS handshake through Switchyard must have been a full one."""
    results = json.loads((smoke / "results.json").read_text())
    md = (smoke / "RESULTS.md").read_text()
    for sname in ("h2-small", "tls-handshakes"):
        s = next(s for s in results["scenarios"] if s["name"] == sname)
        by_name = {e["name"]: e for e in s["entrants"]}
        for name in ("direct", "switchyard"):
            e = by_name[name]
            assert e["status"] in ("ok", "partial"), \
                f"{sname}/{name}: {e['status']}: {e.get('reason')}; " \
                f"{[r.get('saturation', r).get('failure') for r in e.get('rounds', [])]}"
        assert "h2load" in md.split(f"## {sname}")[1], f"{sname}: no h2load command in RESULTS.md"
    tls = next(s for s in results["scenarios"] if s["name"] == "tls-handshakes")
    sy = next(e for e in tls["entrants"] if e["name"] == "switchyard")
    for rnd in sy["rounds"]:
        sat = rnd["saturation"]
        if sat["ok"]:
            assert sat["proxy_tls"] == {"handshakes": sat["handshakes"], "session_reused": 0}, sat
            assert {b["tls_protocol"] for b in sat["h2load"]} == {"TLSv1.3"}, sat["h2load"]


@pytest.mark.timeout(1200)
def test_smoke_envoy_was_measured_or_explicitly_left_out(smoke):
    results = json.loads((smoke / "results.json").read_text())
    small = next(s for s in results["scenarios"] if s["name"] == "passthrough-small")
    envoy = next(e for e in small["entrants"] if e["system"] == "envoy")
    if NO_ENVOY:
        assert envoy["status"] == "unavailable" and "SY_BENCH_NO_ENVOY=1" in envoy["reason"]
        warnings.warn("SY_BENCH_NO_ENVOY=1: the bench smoke run left Envoy out")
        print("NOTE: SY_BENCH_NO_ENVOY=1 is set: Envoy was not installed or measured")
        return
    assert envoy["status"] in ("ok", "partial"), \
        f"Envoy was not measured ({envoy['status']}): {envoy.get('reason')}"


@pytest.mark.timeout(1200)
def test_smoke_callout_scenarios_give_added_latency(smoke):
    """ext_authz and both ext_proc scenarios: every entrant also ran at the one fixed rate, and
    the report has each proxy's added latency (with the filter minus without) and the ratio.
    The processor's header reached every client response (the runs' checks), so a run that
    passed proves the processor was consulted."""
    results = json.loads((smoke / "results.json").read_text())
    md = (smoke / "RESULTS.md").read_text()
    by_name = {s["name"]: s for s in results["scenarios"]}
    assert {"ext_authz", "ext_proc", "ext_proc-body16k"} <= set(by_name), list(by_name)
    for sname in ("ext_authz", "ext_proc", "ext_proc-body16k"):
        s = by_name[sname]
        entrants = {e["name"]: e for e in s["entrants"]}
        filtered = next(e for e in s["entrants"] if e["reference"])
        if filtered["status"] == "unavailable":
            assert filtered["reason"], sname
            continue
        names = ["switchyard"] + ([] if NO_ENVOY else [f"envoy+{sname.split('-')[0]}", "envoy"])
        for name in [filtered["name"]] + names:
            e = entrants[name]
            assert e["status"] in ("ok", "partial"), f"{sname}/{name}: {e.get('reason')}"
            fixed = [r["fixed"] for r in e["rounds"] if "fixed" in r]
            assert fixed and all(f["ok"] for f in fixed), f"{sname}/{name}: {fixed}"
        section = md.split(f"## {sname}:")[1].split("\n## ")[0]
        assert "**Added latency** at one fixed rate" in section, sname
        if not NO_ENVOY:
            assert s["added_latency"]["rows"][1]["p50"] is not None, s["added_latency"]
    body = by_name["ext_proc-body16k"]
    assert body["entrants"][0]["expect_header"] == ["x-ext-proc", "body-16384"], body["entrants"]
