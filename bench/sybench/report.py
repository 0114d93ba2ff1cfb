"""From the raw results to figures: medians and spreads per entrant, ratios to the reference
paired round by round, the goals from issue 6, RESULTS.md and results.png."""
import json
import statistics
from pathlib import Path

FRACTIONS = (0.25, 0.5, 0.75)


# ------------------------------------------------------------------------------------------
# Figures


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def round_metrics(rnd):
    """The figures one round produced, by metric name (only from runs that passed)."""
    m = {}
    sat = rnd.get("saturation") or {}
    if sat.get("ok"):
        m["rps"] = sat["rps"]
        m["cpu_sat"] = sat.get("cpu_s_per_100k")
        m["busy_sat"] = sat["usage"].get("busy_pct") if sat.get("cpu_s_per_100k") else None
        # Requests (in tls-handshakes: handshakes) per second of proxy CPU: what one fully busy
        # proxy core would sustain at this cost.
        m["per_core"] = 1e5 / sat["cpu_s_per_100k"] if sat.get("cpu_s_per_100k") else None
    for run in rnd.get("latency") or []:
        if run.get("ok"):
            key = int(run["fraction"] * 100)
            m[f"p50@{key}"] = run["p50_us"]
            m[f"p99@{key}"] = run["p99_us"]
            m[f"rate@{key}"] = run["rate"]
            m[f"cpu@{key}"] = run.get("cpu_s_per_100k")
            m[f"lag99@{key}"] = run["send_lag_p99_us"]
    fixed = rnd.get("fixed") or {}
    if fixed.get("ok"):  # the run at the scenario's one rate for all (Scenario.fixed_rate)
        m["p50@fixed"] = fixed["p50_us"]
        m["p90@fixed"] = fixed["p90_us"]
        m["p99@fixed"] = fixed["p99_us"]
        m["rate@fixed"] = fixed["rate"]
        m["cpu@fixed"] = fixed.get("cpu_s_per_100k")
        m["lag99@fixed"] = fixed["send_lag_p99_us"]
    return m


def runs_of(rnd):
    """Every measured run of a round with its outcome: [(label, ok, failure)]."""
    out = []
    if rnd.get("failure"):
        out.append(("round", False, rnd["failure"]))
    sat = rnd.get("saturation")
    if sat is not None:
        out.append(("saturation", sat["ok"], sat.get("failure")))
    for run in rnd.get("latency") or []:
        out.append((f"latency@{int(run['fraction'] * 100)}%", run["ok"], run.get("failure")))
    if rnd.get("fixed") is not None:
        out.append(("latency@fixed rate", rnd["fixed"]["ok"], rnd["fixed"].get("failure")))
    return out


def summarise(scenario):
    """Adds `summary` to every entrant and `ratios` (to the reference) to every entrant."""
    entrants = scenario["entrants"]
    ref = next((e for e in entrants if e.get("reference")), None)
    for e in entrants:
        per_round = [round_metrics(r) for r in e.get("rounds", [])]
        keys = sorted({k for m in per_round for k in m})
        e["summary"] = {k: spread([m.get(k) for m in per_round]) for k in keys}
        runs = [x for r in e.get("rounds", []) for x in runs_of(r)]
        e["runs_total"] = len(runs)
        e["runs_failed"] = sum(1 for _, ok, _ in runs if not ok)
        mem = e.get("memory")
        if mem and mem.get("ok"):
            e["summary"]["rss_kib"] = spread([mem["rss_kib"]])
            e["summary"]["kib_per_conn"] = spread([mem.get("kib_per_connection")])
        if e.get("status") in (None, "running"):
            if not runs:
                e["status"] = "failed"
                e["reason"] = e.get("reason") or "no run was made"
            elif e["runs_failed"] == len(runs):
                e["status"] = "failed"
                e["reason"] = e.get("reason") or "every run failed its checks"
            elif e["runs_failed"]:
                e["status"] = "partial"
            else:
                e["status"] = "ok"
    if ref is None:
        return
    ref_rounds = {r["round"]: round_metrics(r) for r in ref.get("rounds", [])}
    for e in entrants:
        ratios = {}
        mine = {r["round"]: round_metrics(r) for r in e.get("rounds", [])}
        keys = {k for m in mine.values() for k in m}
        for k in keys:
            vals = []
            for rnd, m in mine.items():
                a, b = m.get(k), ref_rounds.get(rnd, {}).get(k)
                if a is not None and b:
                    vals.append(a / b)
            ratios[k] = spread(vals)
        mem, ref_mem = e.get("memory"), ref.get("memory")
        if mem and ref_mem and mem.get("ok") and ref_mem.get("ok"):
            ratios["rss_kib"] = spread([mem["rss_kib"] / ref_mem["rss_kib"]])
        e["ratios"] = ratios


def added_latency(scenario):
    """Per proxy (pair [with filter, without]): the filter's added p50 and p99 at the fixed
    rate, round by round, and Switchyard's added latency over Envoy's, paired by round.
    {"rows": [(pair, {"p50": spread, "p99": spread, "rate": spread})], "ratio": {"p50":
    spread, "p99": spread}, "per_round": [...]}, or None when the scenario has no fixed rate."""
    fr = scenario.get("fixed_rate")
    if not fr:
        return None
    by_name = {e["name"]: e for e in scenario["entrants"]}

    def per_round(name):
        e = by_name.get(name) or {}
        return {r["round"]: round_metrics(r) for r in e.get("rounds", [])}

    added = {}  # (filtered name) -> {round: {"p50": x, "p99": y}}
    rows = []
    for with_f, without in fr["pairs"]:
        a, b = per_round(with_f), per_round(without)
        rounds = {}
        for rnd, m in a.items():
            o = b.get(rnd, {})
            if "p50@fixed" in m and "p50@fixed" in o:
                rounds[rnd] = {k: m[f"{k}@fixed"] - o[f"{k}@fixed"]
                               for k in ("p50", "p90", "p99")}
                rounds[rnd]["rate"] = m["rate@fixed"]
        added[with_f] = rounds
        rows.append(((with_f, without), {k: spread([v[k] for v in rounds.values()])
                                         for k in ("p50", "p90", "p99", "rate")}))
    ratio = {}
    if len(fr["pairs"]) == 2:
        sy, env = (added[p[0]] for p in fr["pairs"])
        for k in ("p50", "p90", "p99"):
            ratio[k] = spread([sy[r][k] / env[r][k] for r in sy
                               if r in env and env[r][k] > 0])
    return {"rows": rows, "ratio": ratio, "anchor": fr["anchor"], "fraction": fr["fraction"],
            "per_round": {name: rounds for name, rounds in added.items()}}


def added_latency_table(s):
    a = added_latency(s)
    if not a:
        return []
    L = [f"**Added latency** at one fixed rate for all four entrants ({a['fraction']:.0%} of "
         f"{a['anchor']}'s saturation in each round; the rate is in the table): each "
         f"proxy's latency with the filter minus without, in µs, median over rounds "
         f"(min–max); the ratio Switchyard ÷ Envoy is taken within each round. Goal (issues 14 "
         f"and 15): ≤ 0.8× Envoy's added latency.", ""]
    L.append("| proxy | fixed rate, req/s | added p50, µs | added p90, µs | added p99, µs |")
    L.append("|---|---|---|---|---|")
    for (with_f, without), f in a["rows"]:
        L.append(f"| {with_f} − {without} | {fspread(f['rate'])} | {fspread(f['p50'])} | "
                 f"{fspread(f['p90'])} | {fspread(f['p99'])} |")
    r = a["ratio"]
    if r:
        L.append(f"| **Switchyard ÷ Envoy** | | {fratio(r.get('p50'))} | {fratio(r.get('p90'))} "
                 f"| {fratio(r.get('p99'))} |")
    L.append("")
    L.append("A ratio is left out of a round where Envoy's added figure is not positive. The "
             "tails (p90, p99) speak for the filter only when the unfiltered entrants' own tails "
             "and the client's send lag (next table) are small, as on a quiet machine (a few "
             "hundred µs); when those are in the milliseconds, the tails measure the machine's "
             "stalls, and only p50 speaks for the filter.")
    L.append("")
    L.append("Each entrant at that fixed rate (µs; median over rounds):")
    L.append("")
    L.append("| system | rate | p50 | p90 | p99 | proxy CPU s per 100k req | client send lag "
             "p99 |")
    L.append("|---|---|---|---|---|---|---|")
    for e in s["entrants"]:
        sm = e.get("summary", {})
        if not sm.get("p50@fixed"):
            continue
        L.append(f"| {e['name']} | {fspread(sm.get('rate@fixed'))} | "
                 f"{fspread(sm.get('p50@fixed'))} | {fspread(sm.get('p90@fixed'))} | "
                 f"{fspread(sm.get('p99@fixed'))} | "
                 f"{fspread(sm.get('cpu@fixed'), 3)} | {fspread(sm.get('lag99@fixed'))} |")
    L.append("")
    return L


def loaded_memory_table(s, ref):
    mems = [e for e in s["entrants"] if e.get("loaded_memory")]
    if not mems:
        return []
    ref_rss = next((e["loaded_memory"]["rss_kib"] for e in mems if e["name"] == ref), None)
    L = ["Memory after the rounds, with the filter loaded and warm (the process as it stands, "
         "idle; /proc/PID/smaps_rollup summed over its processes):", "",
         f"| system | RSS, MiB | PSS, MiB | RSS ÷ {ref} |", "|---|---|---|---|"]
    for e in mems:
        m = e["loaded_memory"]
        ratio = f"{m['rss_kib'] / ref_rss:.2f}×" if ref_rss else "–"
        L.append(f"| {e['name']} | {fnum(m['rss_kib'] / 1024, 1)} | "
                 f"{fnum(m['pss_kib'] / 1024, 1)} | {ratio} |")
    L.append("")
    return L


def focus_goals(results):
    """The goals of issues 11, 14, 15 and 16 that a run can measure: [(goal, figure, target,
    met)], Switchyard over the other unless said otherwise."""
    scen = {s["name"]: s for s in results["scenarios"]}

    def ratios(sname, name):
        s = scen.get(sname)
        e = next((e for e in s["entrants"] if e["name"] == name), None) if s else None
        return (e or {}).get("ratios", {})

    def inverse(r):
        if not r:
            return None
        return {"median": 1 / r["median"], "min": 1 / r["max"], "max": 1 / r["min"], "n": r["n"]}

    def cost(r):  # the reference filtered, NAME unfiltered: 1 - with/without
        if not r:
            return None
        return {"median": 1 - 1 / r["median"], "min": 1 - 1 / r["min"],
                "max": 1 - 1 / r["max"], "n": r["n"]}

    out = []
    out.append(("requests/s, Switchyard ÷ HAProxy (h2-small)",
                inverse(ratios("h2-small", "haproxy").get("rps")), "≥ 1.0",
                lambda v: v >= 1.0))
    out.append(("CPU per request at saturation, Switchyard ÷ HAProxy (h2-small)",
                inverse(ratios("h2-small", "haproxy").get("cpu_sat")), "≤ 1.0",
                lambda v: v <= 1.0))

    def extra(sname):  # extra CPU per request at 50% load: with ÷ without − 1
        r = ratios(sname, "switchyard").get("cpu@50")
        return r and {"median": 1 / r["median"] - 1, "min": 1 / r["max"] - 1,
                      "max": 1 / r["min"] - 1, "n": r["n"]}

    out.append(("throughput cost of the hello filter (1 − with ÷ without, hello)",
                cost(ratios("hello", "switchyard").get("rps")), "≤ 3%", lambda v: v <= 0.03))
    out.append(("extra CPU per request at 50% load of the hello filter (with ÷ without − 1)",
                extra("hello"), "–", None))
    out.append(("extra CPU per request at 50% load of five hello filters (hello-chain)",
                extra("hello-chain"), "–", None))
    cost1 = cost(ratios("hello", "switchyard").get("rps"))
    cost5 = cost(ratios("hello-chain", "switchyard").get("rps"))
    out.append(("throughput cost of five hello filters (1 − with ÷ without, hello-chain)",
                cost5, "–", None))

    # Per added filter: (five filters' cost − one filter's) ÷ 4, from the two scenarios'
    # medians (different scenarios: not paired by round, so no spread).
    for what, one, five in (("throughput", cost1, cost5),
                            ("CPU per request at 50% load", extra("hello"),
                             extra("hello-chain"))):
        if one and five:
            v = (five["median"] - one["median"]) / 4
            out.append((f"cost per added hello filter, {what} ((five − one) ÷ 4)",
                        {"median": v, "min": v, "max": v, "n": 1}, "–", None))
    for sname, env in (("ext_authz", "envoy+ext_authz"), ("ext_proc", "envoy+ext_proc"),
                       ("ext_proc-body16k", "envoy+ext_proc")):
        out.append((f"requests/s, Switchyard ÷ Envoy, both filtered ({sname})",
                    inverse(ratios(sname, env).get("rps")),
                    "≥ 1.5" if sname == "ext_authz" else "–",
                    (lambda v: v >= 1.5) if sname == "ext_authz" else None))
        a = added_latency(scen[sname]) if sname in scen else None
        for k in ("p50", "p90", "p99"):
            # A negative ratio (Switchyard's filter "added" less than nothing) is noise: no
            # verdict.
            out.append((f"added {k} at a fixed rate, Switchyard ÷ Envoy ({sname})",
                        (a or {}).get("ratio", {}).get(k), "≤ 0.8",
                        lambda v: (v <= 0.8) if v >= 0 else None))
    out.append(("requests/s, Switchyard ÷ Envoy (wasm)",
                inverse(ratios("wasm", "envoy+wasm").get("rps")), "≥ 1.2",
                lambda v: v >= 1.2))
    for key, what in (("cpu_sat", "at saturation"), ("cpu@50", "at 50% load")):
        # Envoy's CPU per request over Switchyard's: 1.2× less CPU reads as ≥ 1.2.
        out.append((f"CPU per request {what}, Envoy ÷ Switchyard (wasm)",
                    ratios("wasm", "envoy+wasm").get(key), "≥ 1.2", lambda v: v >= 1.2))
    w = scen.get("wasm")
    mem = {e["name"]: e.get("loaded_memory") for e in (w or {}).get("entrants", [])}
    rss = None
    if mem.get("switchyard+wasm") and mem.get("envoy+wasm"):
        rss = {"median": mem["switchyard+wasm"]["rss_kib"] / mem["envoy+wasm"]["rss_kib"],
               "n": 1}
        rss.update(min=rss["median"], max=rss["median"])
    out.append(("RSS with the plugin loaded, Switchyard ÷ Envoy (wasm)", rss, "≤ 0.5",
                lambda v: v <= 0.5))
    out.append(("requests/s, Wasm ÷ native hello (wasm scenario, same rounds)",
                inverse(ratios("wasm", "switchyard+hello").get("rps")), "–", None))
    out.append(("CPU per request at 50% load, Wasm ÷ native hello (wasm scenario)",
                inverse(ratios("wasm", "switchyard+hello").get("cpu@50")), "–", None))
    return [(g, fig, target, None if fig is None or test is None else test(fig["median"]))
            for g, fig, target, test in out]


def goals(results):
    """Issue 6's goals, measured: [(goal, figure, target, met)] with the figure's spread."""
    scen = {s["name"]: s for s in results["scenarios"]}

    def entrant(sname, name):
        s = scen.get(sname)
        return next((e for e in s["entrants"] if e["name"] == name), None) if s else None

    def inverse_ratio(sname, name, key):
        """Switchyard over NAME, paired by round (the stored ratios are NAME over Switchyard)."""
        e = entrant(sname, name)
        r = (e or {}).get("ratios", {}).get(key)
        if not r:
            return None
        return {"median": 1 / r["median"], "min": 1 / r["max"], "max": 1 / r["min"], "n": r["n"]}

    def ratio(sname, name, key):
        e = entrant(sname, name)
        return (e or {}).get("ratios", {}).get(key)

    out = []
    for sname in ("passthrough-small", "passthrough-16k"):
        out.append((f"requests/s, Switchyard ÷ Envoy ({sname})",
                    inverse_ratio(sname, "envoy", "rps"), "≥ 1.5", lambda v: v >= 1.5))
        out.append((f"requests/s, Switchyard ÷ nginx ({sname})",
                    inverse_ratio(sname, "nginx", "rps"), "≥ 1.0", lambda v: v >= 1.0))
    out.append(("CPU per request at saturation, Switchyard ÷ Envoy (passthrough-small)",
                inverse_ratio("passthrough-small", "envoy", "cpu_sat"), "≤ 0.67",
                lambda v: v <= 0.67))
    out.append(("CPU per request at 50% load, Switchyard ÷ Envoy (passthrough-small)",
                inverse_ratio("passthrough-small", "envoy", "cpu@50"), "≤ 0.67",
                lambda v: v <= 0.67))
    out.append(("p99 at 50% of own saturation, Switchyard ÷ Envoy (passthrough-small)",
                inverse_ratio("passthrough-small", "envoy", "p99@50"), "≤ 1.0",
                lambda v: v <= 1.0))
    cost = ratio("hello", "switchyard", "rps")  # unfiltered over filtered
    out.append(("throughput cost of the native hello filter (1 − with ÷ without)",
                None if not cost else {"median": 1 - 1 / cost["median"],
                                       "min": 1 - 1 / cost["min"], "max": 1 - 1 / cost["max"],
                                       "n": cost["n"]}, "≤ 3%", lambda v: v <= 0.03))
    out.append(("requests/s with the Lua filter, Switchyard ÷ Envoy",
                inverse_ratio("lua", "envoy+lua", "rps"), "≥ 1.2", lambda v: v >= 1.2))
    return [(g, fig, target, None if fig is None else test(fig["median"]))
            for g, fig, target, test in out]


# ------------------------------------------------------------------------------------------
# Formatting


def fnum(v, digits=0):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def fspread(s, digits=0, pct=False, unit=""):
    if not s:
        return "–"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: fnum(v, digits) + unit)
    if s["n"] == 1:
        return f(s["median"])
    return f"{f(s['median'])} ({f(s['min'])}–{f(s['max'])})"


def fratio(s):
    if not s:
        return "–"
    if s["n"] == 1:
        return f"{s['median']:.2f}×"
    return f"{s['median']:.2f}× ({s['min']:.2f}–{s['max']:.2f})"


def status_cell(e):
    st = e.get("status")
    if st == "ok":
        return f"{e['runs_total']} runs ok"
    if st == "partial":
        return f"**{e['runs_failed']} of {e['runs_total']} runs FAILED**"
    if st == "failed":
        return "**FAILED**"
    if st == "unavailable":
        return "not available"
    return st or "–"


def h2load_command(measured):
    """The h2load command line of the scenario's first measured run, with the reference's
    port (every entrant got the same command but its own port)."""
    for e in measured:
        for rnd in e.get("rounds", []):
            argv = (rnd.get("saturation") or {}).get("argv")
            if argv:
                return argv
    return None


def h2load_tables(s, ref, measured):
    """The figures of an h2load scenario: h2-small (client h2c) or tls-handshakes (tls)."""
    L = []
    cmd = h2load_command(measured)
    tls = s.get("client") == "tls"
    if cmd:
        L.append(f"Command (each entrant's own port; the duration is the run's): `{cmd}`"
                 + (", repeated in bursts." if tls else "."))
        L.append("")
    if tls:
        L.append(f"Full TLS handshakes per second, each with one request, and the proxy's CPU per "
                 f"handshake. Ratios are each entrant's figure over {ref}'s, paired round by "
                 f"round: above 1 is more handshakes/s, or more CPU.")
        L.append("")
        L.append(f"| system | handshakes/s | ÷ {ref} | proxy CPU µs per handshake | ÷ {ref} | "
                 f"per proxy core: handshakes/s at 100% | ÷ {ref} | proxy core busy | runs |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for e in measured:
            sm, r = e.get("summary", {}), e.get("ratios", {})
            cpu = sm.get("cpu_sat")
            cpu_us = cpu and {k: (v * 10 if k != "n" else v) for k, v in cpu.items()}
            L.append(f"| {e['name']} | {fspread(sm.get('rps'))} | {fratio(r.get('rps'))} | "
                     f"{fspread(cpu_us)} | {fratio(r.get('cpu_sat'))} | "
                     f"{fspread(sm.get('per_core'))} | {fratio(r.get('per_core'))} | "
                     f"{fspread(sm.get('busy_sat'), unit='%')} | {status_cell(e)} |")
    else:
        L.append(f"Throughput over HTTP/2 and CPU. Ratios are each entrant's figure over {ref}'s, "
                 f"paired round by round: above 1 is more requests/s, or more CPU.")
        L.append("")
        L.append(f"| system | requests/s | ÷ {ref} | proxy CPU s per 100k req, at saturation | "
                 f"÷ {ref} | proxy core busy | runs |")
        L.append("|---|---|---|---|---|---|---|")
        for e in measured:
            sm, r = e.get("summary", {}), e.get("ratios", {})
            L.append(f"| {e['name']} | {fspread(sm.get('rps'))} | {fratio(r.get('rps'))} | "
                     f"{fspread(sm.get('cpu_sat'), 3)} | {fratio(r.get('cpu_sat'))} | "
                     f"{fspread(sm.get('busy_sat'), unit='%')} | {status_cell(e)} |")
    L.append("")
    return L


def write_markdown(results, path):
    meta, settings = results["meta"], results["settings"]
    L = []
    L.append("# Switchyard benchmark results")
    L.append("")
    L.append(f"Made by `make bench` ({settings['mode']} mode) on {meta['started']}, commit "
             f"{meta['machine'].get('commit')}. {settings['rounds']} round(s); in each round "
             f"every entrant gets a {settings['warmup']} s warm-up, {settings['duration']} s "
             f"at saturation (wrk, {settings['connections']} keep-alive connections) and "
             f"{settings['latency_duration']} s at each of 25/50/75% of its own saturation "
             f"(sy-openloop, open loop). Entrants take turns within each round, in rotating "
             f"order. The HTTP/2 and TLS scenarios are driven by h2load instead (their "
             f"sections say how). Cores: {settings['cores']}. How to read this: "
             f"bench/README.md.")
    L.append("")
    cont = meta.get("contention")
    if cont:
        L.append(f"Other work on the proxy's core (core 0 time not spent in the proxy, over all "
                 f"measured runs): median {cont['median']:.1f}%, max {cont['max']:.1f}%.")
        if cont["max"] > 5:
            L.append("")
            L.append(f"> **Some runs shared the proxy's core with other work** (up to "
                     f"{cont['max']:.0f}% of it): those figures are noisier and lower than on a "
                     "quiet machine. The ratios, taken within each round, suffer less than the "
                     "absolute figures.")
        L.append("")
    for note in meta.get("notes", []):
        L.append(f"> {note}")
        L.append("")

    L.append("## Goals (from issue 6: measured and reported, never asserted)")
    L.append("")
    L.append("| goal | measured: median (min–max over rounds) | target | met |")
    L.append("|---|---|---|---|")
    for g, fig, target, met in goals(results):
        pct = "%" in target
        L.append(f"| {g} | {fspread(fig, 2, pct=pct) if fig else 'not measured'} | {target} | "
                 f"{'–' if met is None else ('yes' if met else 'no')} |")
    L.append("")

    focus = [g for g in focus_goals(results) if g[1] is not None]
    if focus:
        L.append("## Goals of issues 11, 14, 15 and 16 (measured and reported, never asserted)")
        L.append("")
        L.append("| goal | measured: median (min–max over rounds) | target | met |")
        L.append("|---|---|---|---|")
        for g, fig, target, met in focus:
            pct = "cost" in g or "extra" in g
            L.append(f"| {g} | {fspread(fig, 2, pct=pct)} | {target} | "
                     f"{'–' if met is None else ('yes' if met else 'no')} |")
        L.append("")

    for s in results["scenarios"]:
        L.append(f"## {s['name']}: {s['title']}")
        L.append("")
        if s.get("status") != "ok":
            L.append(f"**{s.get('status', '').upper()}**: {s.get('reason')}")
            L.append("")
        for note in s.get("notes", []):
            L.append(f"{note}")
            L.append("")
        ref = next((e["name"] for e in s["entrants"] if e.get("reference")), "switchyard")
        measured = [e for e in s["entrants"] if e.get("rounds")]
        if measured and s.get("client", "http1") != "http1":
            L += h2load_tables(s, ref, measured)
        elif measured:
            L.append(f"Throughput and CPU. Ratios are each entrant's figure over {ref}'s, paired "
                     f"round by round: above 1 is more requests/s, or more CPU.")
            L.append("")
            L.append(f"| system | requests/s | ÷ {ref} | proxy CPU s per 100k req, at "
                     f"saturation | ÷ {ref} | at 50% load | ÷ {ref} | proxy core busy | runs |")
            L.append("|---|---|---|---|---|---|---|---|---|")
            for e in measured:
                sm, r = e.get("summary", {}), e.get("ratios", {})
                L.append(f"| {e['name']} | {fspread(sm.get('rps'))} | {fratio(r.get('rps'))} | "
                         f"{fspread(sm.get('cpu_sat'), 3)} | {fratio(r.get('cpu_sat'))} | "
                         f"{fspread(sm.get('cpu@50'), 3)} | {fratio(r.get('cpu@50'))} | "
                         f"{fspread(sm.get('busy_sat'), unit='%')} | "
                         f"{status_cell(e)} |")
            L.append("")
            L.append("Latency in µs, measured from each request's intended send time, at 25%, "
                     "50% and 75% of the entrant's own saturation rate (so each system is "
                     "equally loaded, not equally fast). Median over rounds of each run's "
                     "percentile.")
            L.append("")
            L.append(f"| system | rate @25% | p50 / p99 @25% | rate @50% | p50 / p99 @50% | "
                     f"rate @75% | p50 / p99 @75% | p99 @50% ÷ {ref} | client send lag p99 "
                     f"@75% |")
            L.append("|---|---|---|---|---|---|---|---|---|")
            for e in measured:
                sm, r = e.get("summary", {}), e.get("ratios", {})
                cells = []
                for k in (25, 50, 75):
                    rate = sm.get(f"rate@{k}")
                    cells.append(fnum(rate["median"]) if rate else "–")
                    p50, p99 = sm.get(f"p50@{k}"), sm.get(f"p99@{k}")
                    cells.append(f"{fnum(p50['median']) if p50 else '–'} / "
                                 f"{fnum(p99['median']) if p99 else '–'}")
                lag = sm.get("lag99@75")
                L.append(f"| {e['name']} | " + " | ".join(cells) +
                         f" | {fratio(r.get('p99@50'))} | {fnum(lag['median']) if lag else '–'} |")
            L.append("")
            L += added_latency_table(s)
        L += loaded_memory_table(s, ref)
        mems = [e for e in s["entrants"] if e.get("memory")]
        if mems:
            n = mems[0]["memory"]["requested"]
            L.append(f"Memory with {n:,} idle keep-alive connections (each made one request, "
                     f"then stayed open), from /proc/PID/smaps_rollup summed over the system's "
                     f"processes.")
            L.append("")
            L.append(f"| system | RSS before, MiB | RSS with connections, MiB | PSS with "
                     f"connections, MiB | KiB per connection | RSS ÷ {ref} | connections "
                     f"reached |")
            L.append("|---|---|---|---|---|---|---|")
            for e in mems:
                m = e["memory"]
                reached = m.get("reached")
                mib = (lambda k: fnum(m[k] / 1024, 1) if m.get(k) is not None else "–")
                note = "" if m.get("ok") else f" **FAILED: {m.get('failure')}**"
                L.append(f"| {e['name']} | {mib('baseline_rss_kib')} | {mib('rss_kib')} | "
                         f"{mib('pss_kib')} | {fnum(m.get('kib_per_connection'), 1)} | "
                         f"{fratio(e.get('ratios', {}).get('rss_kib'))} | "
                         f"{fnum(reached) if reached is not None else '–'}{note} |")
            L.append("")
        others = [e for e in s["entrants"] if e.get("status") not in ("ok",)]
        if others:
            L.append("Not measured, failed, or failed in part:")
            L.append("")
            for e in others:
                L.append(f"- **{e['name']}**: {e.get('status')}"
                         f"{': ' + e['reason'] if e.get('reason') else ''}")
                for rnd in e.get("rounds", []):
                    for label, ok, why in runs_of(rnd):
                        if not ok:
                            L.append(f"  - round {rnd['round']} {label}: FAILED: {why}")
            L.append("")

    prof = results.get("profile")
    if prof:
        L.append("## Where Switchyard's time goes")
        L.append("")
        if prof.get("ok"):
            L.append(f"`perf record -g` on the Switchyard process during a {prof['duration_s']} s "
                     f"wrk run of passthrough-small (about {prof.get('rps') and fnum(prof['rps'])} "
                     f"requests/s with the profiler attached). Functions with at least 0.7% of "
                     f"samples; full reports beside the raw results.")
            L.append("")
            for title, key, n in (
                    ("Samples by object (the kernel's share is mostly the loopback TCP path "
                     "that the proxy's own send and receive calls run):", "by_object", 12),
                    ("Self time, all code (the function's own instructions):", "self", 25),
                    ("Self time, user space only (the proxy, libc, libuv):", "self_user", 25),
                    ("Inclusive (the function and what it calls; call chains through code "
                     "built without frame pointers are cut short):", "inclusive", 20)):
                L.append(title)
                L.append("")
                L.append("```")
                L += prof.get(key, [])[:n]
                L.append("```")
                L.append("")
        else:
            L.append(f"Not profiled: {prof.get('failure')}")
        L.append("")

    L.append("## Machine and tools")
    L.append("")
    m = meta["machine"]
    L.append(f"- machine: {m['nproc']} cores ({m['cpus_usable']} usable), {m['cpu_model']}, "
             f"{m['memory_gib']} GiB; kernel {m['kernel']}; {m.get('os')}")
    L.append(f"- load average at start {tuple(round(x, 2) for x in m['loadavg_at_start'])}, "
             f"at end {tuple(round(x, 2) for x in meta.get('loadavg_at_end', ()))}")
    L.append(f"- run took {meta.get('elapsed_s', 0):.0f} s")
    for tool, version in meta["tools"].items():
        L.append(f"- {tool}: {version if version else 'not available'}")
    L.append("")
    L.append("Raw figures: results.json (every run, with the client's and the upstream's "
             "counts).")
    L.append("")
    Path(path).write_text("\n".join(L))


# ------------------------------------------------------------------------------------------
# Plot


COLOURS = {"direct": "#9e9e9e", "switchyard": "#1b5e20", "envoy": "#c62828",
           "nginx": "#1565c0", "haproxy": "#ef6c00"}


def write_plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scen = [s for s in results["scenarios"] if any(e.get("rounds") for e in s["entrants"])]
    rows = max(1, len(scen))
    fig, axes = plt.subplots(rows, 3, figsize=(16, 3.6 * rows), squeeze=False)
    for row, s in zip(axes, scen):
        es = [e for e in s["entrants"] if e.get("rounds")]
        names = [e["name"] for e in es]
        colours = [COLOURS.get(e["system"], "#555") for e in es]
        # Light bars for the unfiltered Switchyard beside the filtered reference.
        alphas = [0.5 if (e["system"] == "switchyard" and not e.get("reference")) else 1.0
                  for e in es]

        def bars(ax, key, title, scale=1.0):
            med, lo, hi = [], [], []
            for e in es:
                v = e.get("summary", {}).get(key)
                med.append(v["median"] * scale if v else 0)
                lo.append((v["median"] - v["min"]) * scale if v else 0)
                hi.append((v["max"] - v["median"]) * scale if v else 0)
            b = ax.bar(range(len(es)), med, yerr=[lo, hi], color=colours, capsize=3)
            for patch, a in zip(b, alphas):
                patch.set_alpha(a)
            for i, e in enumerate(es):
                if not e.get("summary", {}).get(key):
                    ax.text(i, 0, "FAILED" if e.get("status") in ("failed", "partial") else "n/a",
                            ha="center", va="bottom", fontsize=8, rotation=90)
            ax.set_xticks(range(len(es)), names, rotation=20, ha="right", fontsize=8)
            ax.set_title(title, fontsize=9)
            ax.grid(axis="y", alpha=0.3)

        client = s.get("client", "http1")
        if client != "http1":
            unit = "handshakes" if client == "tls" else "requests"
            bars(row[0], "rps", f"{s['name']}: {unit}/s (k, h2load)", 1e-3)
            bars(row[1], "cpu_sat", f"proxy CPU s per 100k {unit}, at saturation")
            row[2].axis("off")
            row[2].text(0.5, 0.5, "no latency runs (h2load scenario)", ha="center",
                        va="center", fontsize=9)
            continue
        bars(row[0], "rps", f"{s['name']}: requests/s at saturation (k)", 1e-3)
        bars(row[1], "cpu@50", "proxy CPU s per 100k requests at 50% load")
        ax = row[2]
        width = 0.26
        for j, k in enumerate((25, 50, 75)):
            vals = [(e.get("summary", {}).get(f"p99@{k}") or {}).get("median", 0) for e in es]
            ax.bar([i + (j - 1) * width for i in range(len(es))], vals, width,
                   color=colours, alpha=(0.35, 0.65, 1.0)[j], label=f"{k}% load")
        ax.set_xticks(range(len(es)), names, rotation=20, ha="right", fontsize=8)
        ax.set_title("p99 latency µs at 25 / 50 / 75% of own saturation", fontsize=9)
        ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Switchyard bench ({results['settings']['mode']}, "
                 f"{results['settings']['rounds']} round(s); bars: median, whiskers: min–max)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_all(results, out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for s in results["scenarios"]:
        summarise(s)
    results["goals"] = [{"goal": g, "figure": fig, "target": t, "met": met}
                        for g, fig, t, met in goals(results) + focus_goals(results)]
    for s in results["scenarios"]:
        a = added_latency(s)
        if a:
            s["added_latency"] = {"ratio": a["ratio"], "per_round": a["per_round"],
                                  "rows": [{"with": p[0], "without": p[1], **f}
                                           for p, f in a["rows"]]}
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    write_markdown(results, out / "RESULTS.md")
    try:
        write_plot(results, out / "results.png")
        results["meta"]["plot"] = "results.png"
    except Exception as e:  # the plot is secondary: say why it is missing, keep the rest
        results["meta"]["plot"] = f"not made: {e!r}"
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
