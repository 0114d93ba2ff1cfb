"""The harness: starts the upstream, then for each scenario starts its entrants and measures
them in rounds, entrants taking turns, and writes RESULTS.md, results.json and results.png.

    bench/run.py [--smoke] [--rounds N] [--duration S] [--latency-duration S] [--warmup S]
                 [--scenarios a,b] [--systems a,b] [--rss-connections N] [--tls-burst N]
                 [--no-profile] [--out DIR] [--keep]
"""
import argparse
import datetime
import fnmatch
import os
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import measure, procs, report
from .machine import machine_info, tool_versions
from .scenarios import SCENARIOS
from .systems import BENCH, REPO, SYSTEMS
from .upstream import Upstream

MODES = {
    # rounds, warm-up s, saturation s, latency s per rate, idle connections, profile
    # tls_burst: new TLS connections per h2load burst in the TLS scenario
    "full": dict(rounds=5, warmup=2, duration=5, latency_duration=5.0, rss_connections=10000,
                 profile=True, tls_burst=1000),
    "smoke": dict(rounds=1, warmup=0, duration=1, latency_duration=0.3, rss_connections=300,
                  profile=False, tls_burst=100),
}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true",
                    help="one short round of everything: checks that the harness works")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=int, help="seconds at saturation (wrk, h2load) per run")
    ap.add_argument("--latency-duration", type=float, help="seconds per fixed-rate run")
    ap.add_argument("--warmup", type=int, help="seconds of wrk before each measured run (0: none)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rss-connections", type=int, help="idle connections for the memory figure")
    ap.add_argument("--tls-burst", type=int,
                    help="new TLS connections per h2load burst in tls-handshakes (at most 1000: "
                         "the smallest listen backlog among the systems is 1024)")
    ap.add_argument("--scenarios", help="comma-separated names or patterns such as "
                                        "'ext_proc*' (default: all)")
    ap.add_argument("--systems", help="comma-separated entrant names or system kinds")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--out", default=str(BENCH), help="where the results go (default: bench/)")
    ap.add_argument("--workdir", help="where configs and logs go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir")
    ap.add_argument("--report-from", metavar="JSON",
                    help="measure nothing: rewrite RESULTS.md and results.png (into --out) "
                         "from an earlier results.json")
    ap.add_argument("--note", action="append", default=[],
                    help="a note for the top of RESULTS.md (with --report-from: added to it)")
    args = ap.parse_args(argv)
    mode = "smoke" if args.smoke else "full"
    s = dict(MODES[mode])
    for k in ("rounds", "warmup", "duration", "latency_duration", "rss_connections",
              "tls_burst"):
        if getattr(args, k) is not None:
            s[k] = getattr(args, k)
    if not 1 <= s["tls_burst"] <= 1000:
        ap.error("--tls-burst must be between 1 and 1000")
    if args.no_profile:
        s["profile"] = False
    s["mode"] = mode
    s["connections"] = args.connections
    return args, s


def raise_nofile():
    """Room for 10k idle connections in the helper and the proxies (children inherit it)."""
    try:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        nr_open = 1 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (min(nr_open, 1 << 20), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            return limit
        except (ValueError, OSError):
            continue
    return soft


def preflight():
    missing = []
    if not shutil.which("wrk"):
        missing.append("wrk")
    if not measure.OPENLOOP.exists():
        missing.append(f"sy-openloop ({measure.OPENLOOP})")
    if not shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin"):
        missing.append("nginx")
    return missing


class Bench:
    def __init__(self, args, settings):
        self.args = args
        self.s = settings
        self.cores = procs.Cores()
        self.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="sybench-"))
        self.module_dir = Path(os.environ.get("SWITCHYARD_MODULE_DIR", REPO / "build" / "modules"))
        self.versions = {}
        self.contention = []

    def wanted(self, entrant):
        if not self.args.systems:
            return True
        names = set(self.args.systems.split(","))
        return entrant.name in names or entrant.system in names

    # --- one scenario

    def run_scenario(self, sc):
        res = {"name": sc.name, "title": sc.title, "path": sc.path, "client": sc.client,
               "expect_header": sc.expect_header, "notes": list(sc.notes), "entrants": []}
        if sc.client == "tls" and self.upstream.tls:
            res["notes"].append(f"Certificate: {self.upstream.tls.description}.")
        body = self.upstream.bodies[sc.path]
        live = []  # (entrant result, system)
        for e in sc.entrants:
            if not self.wanted(e) and not e.reference:
                continue
            r = {"name": e.name, "system": e.system, "reference": e.reference,
                 "filtered": e.filtered, "module": e.module, "rounds": [], "status": None,
                 "reason": None, "expect_header": e.header()}
            res["entrants"].append(r)
            system = SYSTEMS[e.system](e, self.workdir / sc.name, self.upstream,
                                       self.module_dir)
            why = system.unavailable()
            if why is None and e.system not in self.versions:
                self.versions[e.system] = system.version()
            try:
                system.write_config()
                ok, msg = (True, "") if why else system.validate()
            except Exception as ex:  # a template or snippet problem: say which
                ok, msg = False, f"{type(ex).__name__}: {ex}"
            r["config"] = str(getattr(system, "config_path", "") or "")
            if why is not None:
                r["status"], r["reason"] = "unavailable", why
                continue
            if not ok:
                r["status"], r["reason"] = "failed", ("config check failed: " +
                                                      " ".join(msg[-500:].split()))
                log(f"{sc.name}: {e.name}: FAILED: {r['reason']}")
                continue
            r["config_check"] = msg[-300:] if msg else "ok"
            live.append((r, system))

        ref = next((r for r in res["entrants"] if r["reference"]), None)
        if ref is None or ref["status"] is not None:
            res["status"] = "unavailable" if ref and ref["status"] == "unavailable" else "failed"
            res["reason"] = (f"the reference entrant {ref['name']}: {ref['reason']}" if ref
                             else "no reference entrant")
            for r, _ in live:
                r["status"] = "not-run"
                r["reason"] = (f"config validated; not measured because the reference "
                               f"({ref['name'] if ref else '?'}) is not available")
            log(f"{sc.name}: {res['reason']}")
            return res
        res["status"] = "ok"

        started = []
        try:
            for r, system in live:
                try:
                    r["binary"] = system.identity()  # as started, for this scenario
                    system.start(self.cores)
                    ok, why = self.probe(sc, system, body, system.entrant.header())
                    if not ok:
                        raise RuntimeError(why)
                    started.append((r, system))
                    r["status"] = "running"
                except Exception as ex:
                    r["status"], r["reason"] = "failed", f"did not start or answer: {ex}"
                    log(f"{sc.name}: {r['name']}: FAILED: {r['reason']}")
                    system.stop()
            if ref["status"] != "running":
                res["status"], res["reason"] = "failed", f"the reference {ref['name']}: " \
                                                         f"{ref['reason']}"
            for rnd in range(self.s["rounds"]):
                order = started[rnd % len(started):] + started[:rnd % len(started)] \
                    if started else []
                for pos, (r, system) in enumerate(order):
                    r["rounds"].append(self.run_round(sc, r, system, rnd + 1, pos, body))
                if sc.fixed_rate and sc.client == "http1":
                    self.run_fixed_rate(sc, order, rnd + 1, body)
            if sc.fixed_rate:
                res["fixed_rate"] = dict(sc.fixed_rate)
            if sc.rss_loaded:
                for r, system in started:
                    if system.kind != "direct" and system.alive():
                        rss, pss = procs.memory_kib(system.pids())
                        r["loaded_memory"] = {"rss_kib": rss, "pss_kib": pss}
                        log(f"{sc.name}: {r['name']}: RSS {rss} KiB after the rounds")
            if sc.rss and self.rss_connections > 0:
                for r, system in started:
                    if system.kind == "direct":
                        continue
                    restarted = self.ensure_running(r, system)
                    if not system.alive():
                        r["memory"] = {"ok": False, "failure": restarted,
                                       "requested": self.rss_connections}
                        continue
                    log(f"{sc.name}: {r['name']}: {self.rss_connections} idle connections")
                    r["memory"] = measure.idle_memory(system, system.port, sc.path,
                                                      self.rss_connections, self.cores)
                    m = r["memory"]
                    log(f"  -> reached {m.get('reached')}, RSS {m.get('rss_kib')} KiB"
                        f"{'' if m['ok'] else ' FAILED: ' + str(m.get('failure'))}")
            if self.s["profile"] and sc.name == "passthrough-small":
                self.profile = self.run_profile(sc, started)
        finally:
            for _, system in live:
                system.stop()
        return res

    def run_round(self, sc, r, system, rnd, pos, body):
        name = r["name"]
        header = system.entrant.header()
        out = {"round": rnd, "position": pos}
        restarted = self.ensure_running(r, system)
        if restarted:
            out["restarted"] = restarted
            if not system.alive():
                out["failure"] = restarted
                return out
        ok, why = self.probe(sc, system, body, header)
        if not ok:
            out["failure"] = why
            log(f"{sc.name} r{rnd} {name}: FAILED probe: {why}")
            return out
        if sc.client != "http1":
            return self.run_round_h2load(sc, r, system, out, body)
        # A filter that calls the upstream too (ext_authz's Check) makes it count more.
        self.upstream.per_request = 1 + (sc.side_requests if r["filtered"] else 0)
        args = (system, self.upstream, system.port, sc.path, len(body))
        post = sc.request_body
        if self.s["warmup"]:
            w = measure.saturation(*args, self.s["warmup"], self.s["connections"], self.cores,
                                   post)
            out["warmup_ok"] = w["ok"]
        sat = measure.saturation(*args, self.s["duration"], self.s["connections"], self.cores,
                                 post)
        out["saturation"] = sat
        self.note_contention(sat)
        if not sat["ok"]:
            log(f"{sc.name} r{rnd} {name}: saturation FAILED: {sat['failure']}")
            return out
        out["latency"] = []
        for f in report.FRACTIONS:
            lat = measure.latency(*args, header, sat["rps"] * f, self.s["latency_duration"],
                                  self.s["connections"], self.cores, post)
            lat["fraction"] = f
            out["latency"].append(lat)
            self.note_contention(lat)
        lat_txt = ", ".join(
            f"{int(x['fraction'] * 100)}%: p50 {x['p50_us']:.0f} p99 {x['p99_us']:.0f} µs"
            if x["ok"] else f"{int(x['fraction'] * 100)}%: FAILED ({x['failure']})"
            for x in out["latency"])
        cpu = sat.get("cpu_s_per_100k")
        log(f"{sc.name} r{rnd} {name}: {sat['rps']:,.0f} req/s"
            f"{f', {cpu:.3f} CPU s/100k' if cpu else ''}; {lat_txt}")
        return out

    def run_fixed_rate(self, sc, order, rnd, body):
        """After a round's turns: every entrant once more, in the round's order, at one rate
        for all, a fraction of the anchor entrant's saturation rate in this round, so that
        latencies (and what a filter adds to them) compare like for like. The result goes in
        each entrant's round as `fixed`."""
        anchor = sc.fixed_rate["anchor"]
        frac = sc.fixed_rate["fraction"]
        sat = next((r["rounds"][-1].get("saturation") or {} for r, _ in order
                    if r["name"] == anchor and r["rounds"]), {})
        if not sat.get("ok"):
            for r, _ in order:
                r["rounds"][-1]["fixed"] = {
                    "ok": False, "fraction": frac, "anchor": anchor,
                    "failure": f"no fixed rate this round: {anchor}'s saturation run failed"}
            log(f"{sc.name} r{rnd}: no fixed-rate runs ({anchor} has no saturation figure)")
            return
        rate = sat["rps"] * frac
        for r, system in order:
            out = r["rounds"][-1]
            if out.get("failure") or not system.alive():
                out["fixed"] = {"ok": False, "fraction": frac, "anchor": anchor,
                                "failure": out.get("failure") or f"{r['name']} is not running"}
                continue
            self.upstream.per_request = 1 + (sc.side_requests if r["filtered"] else 0)
            lat = measure.latency(system, self.upstream, system.port, sc.path, len(body),
                                  system.entrant.header(), rate, self.s["latency_duration"],
                                  self.s["connections"], self.cores, sc.request_body)
            lat.update(fraction=frac, anchor=anchor)
            out["fixed"] = lat
            self.note_contention(lat)
            log(f"{sc.name} r{rnd} {r['name']}: at {rate:,.0f} req/s (fixed): " +
                (f"p50 {lat['p50_us']:.0f} p99 {lat['p99_us']:.0f} µs" if lat["ok"]
                 else f"FAILED ({lat['failure']})"))

    def probe(self, sc, system, body, header):
        cert = self.upstream.tls.cert if self.upstream.tls else None
        return measure.probe(sc.client, system.port, sc.path, body, header, cert,
                             sc.request_body)

    def run_round_h2load(self, sc, r, system, out, body):
        """A turn of an HTTP/2 or TLS scenario: warm-up, then h2load at saturation (h2c) or
        bursts of new TLS connections (tls). No latency runs: sy-openloop is HTTP/1.1 only."""
        name = r["name"]
        if sc.client == "h2c":
            def run(seconds):
                return measure.h2_saturation(system, self.upstream, system.port, sc.path,
                                             len(body), seconds, self.cores)
        else:
            def run(seconds):
                return measure.tls_handshakes(system, self.upstream, system.port, sc.path,
                                              len(body), seconds, self.s["tls_burst"],
                                              self.upstream.tls.cert, self.cores)
        if self.s["warmup"]:
            out["warmup_ok"] = run(self.s["warmup"])["ok"]
        sat = run(self.s["duration"])
        out["saturation"] = sat
        self.note_contention(sat)
        if not sat["ok"]:
            log(f"{sc.name} r{out['round']} {name}: FAILED: {sat['failure']}")
            return out
        cpu = sat.get("cpu_s_per_100k")
        unit = "req/s" if sc.client == "h2c" else "handshakes/s"
        log(f"{sc.name} r{out['round']} {name}: {sat['rps']:,.0f} {unit}"
            f"{f', {cpu:.3f} CPU s/100k' if cpu else ''}"
            f"{', busy ' + str(sat['usage']['busy_pct']) + '%' if cpu else ''}")
        return out

    def ensure_running(self, r, system):
        """Restarts SYSTEM if it has exited (crashed, or was killed from outside), so that one
        bad round does not take the rest down with it. Returns what happened, or None."""
        if system.alive():
            return None
        what = f"found exited ({system.proc.returncode}): {system.log_tail(5)}"
        log(f"{r['name']}: {what}; restarting it")
        try:
            system.start(self.cores)
        except Exception as ex:
            return f"{what}; did not restart: {ex}"
        return what + "; restarted"

    def note_contention(self, run):
        other = run.get("usage", {}).get("core0_other_pct")
        if other is not None and run.get("ok"):
            self.contention.append(other)

    def run_profile(self, sc, started):
        target = next(((r, s) for r, s in started if r["name"] == "switchyard" and s.alive()),
                      None)
        if target is None:
            return {"ok": False, "failure": "Switchyard is not running"}
        if not shutil.which("perf"):
            return {"ok": False, "failure": "perf is not installed"}
        duration = max(5, self.s["duration"])
        log(f"profiling switchyard for {duration} s (perf record -g)")
        r, system = target
        counter_before = self.upstream.counter()
        t0 = time.monotonic()
        prof = measure.profile(system, system.port, sc.path, duration, self.s["connections"],
                               self.cores, self.workdir)
        served = counter_before.since()
        prof["duration_s"] = duration
        prof["rps"] = served / (time.monotonic() - t0)
        if prof.get("ok"):
            for kind in ("by-object", "self", "self-all", "inclusive"):
                src = self.workdir / f"profile-switchyard-{kind}.txt"
                if src.exists():
                    shutil.copy(src, Path(self.args.out) / f"profile-switchyard-{kind}.txt")
        return prof

    # --- the whole run

    def run(self):
        started = datetime.datetime.now(datetime.timezone.utc)
        t0 = time.monotonic()
        Path(self.args.out).mkdir(parents=True, exist_ok=True)
        machine = machine_info()  # before this process pins itself to the load core
        nofile = raise_nofile()
        # The helper holds one descriptor per connection and the proxy one more: both must fit
        # under the open-files limit, which an unprivileged container may not let us raise.
        self.rss_connections = min(self.s["rss_connections"], nofile - 1000)
        if self.cores.pinned:
            os.sched_setaffinity(0, self.cores.load)
        selected = SCENARIOS
        if self.args.scenarios:
            # Names or shell patterns (`ext_proc*`); each must match some scenario.
            names = self.args.scenarios.split(",")
            unknown = [n for n in names if not any(fnmatch.fnmatchcase(s.name, n)
                                                   for s in SCENARIOS)]
            if unknown:
                raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
            selected = [s for s in SCENARIOS if any(fnmatch.fnmatchcase(s.name, n)
                                                    for n in names)]
        self.profile = None
        meta = {"started": started.isoformat(timespec="seconds"), "machine": machine,
                "workdir": str(self.workdir), "open_files_limit": nofile,
                "notes": list(self.args.note)}
        settings = {**self.s, "cores": self.cores.describe(), "fractions": report.FRACTIONS}
        results = {"meta": meta, "settings": settings, "scenarios": []}
        log(f"{self.s['mode']} mode: {self.s['rounds']} round(s); configs and logs in "
            f"{self.workdir}")
        self.upstream = Upstream(self.workdir, self.cores)
        try:
            for sc in selected:
                log(f"scenario {sc.name}")
                try:
                    results["scenarios"].append(self.run_scenario(sc))
                except Exception:
                    results["scenarios"].append({
                        "name": sc.name, "title": sc.title, "status": "failed",
                        "reason": "the harness failed: " + traceback.format_exc()[-800:],
                        "entrants": [], "notes": []})
                    log(traceback.format_exc())
        finally:
            self.upstream.stop()
        if self.profile is not None:
            results["profile"] = self.profile
        meta["tools"] = tool_versions({k: v for k, v in self.versions.items() if v})
        meta["loadavg_at_end"] = os.getloadavg()
        meta["elapsed_s"] = round(time.monotonic() - t0, 1)
        if self.contention:
            meta["contention"] = {"median": report.statistics.median(self.contention),
                                  "max": max(self.contention), "runs": len(self.contention)}
        shas = {e["binary"]["sha256"] for s in results["scenarios"] for e in s["entrants"]
                if e["system"] == "switchyard" and e.get("binary")}
        if len(shas) > 1:
            meta["notes"].append("The Switchyard binary changed during this run (rebuilt "
                                 "meanwhile): scenarios ran different builds; each entrant's "
                                 "`binary` in results.json says which. Ratios within a "
                                 "scenario are unaffected.")
        if self.rss_connections < self.s["rss_connections"]:
            meta["notes"].append(f"The open-files limit here is {nofile}, so the memory figure "
                                 f"uses {self.rss_connections} idle connections, not "
                                 f"{self.s['rss_connections']}.")
        if not self.cores.pinned:
            meta["notes"].append("Fewer than two cores: nothing was pinned, and the proxy "
                                 "shared its core with the load generator and the upstream.")
        report.write_all(results, self.args.out)
        if not self.args.keep and not self.args.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        log(f"wrote {Path(self.args.out) / 'RESULTS.md'}, results.json, results.png "
            f"in {meta['elapsed_s']:.0f} s")
        return results


def main(argv=None):
    args, settings = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report_from:
        import json
        results = json.loads(Path(args.report_from).read_text())
        results["meta"].setdefault("notes", []).extend(args.note)
        report.write_all(results, args.out)
        return 0
    missing = preflight()
    if missing:
        print(f"bench: missing {', '.join(missing)}: run bench/setup first", file=sys.stderr)
        return 2
    Bench(args, settings).run()
    return 0
