#!/usr/bin/env python3
"""Figures for the HTTP/2 attack suite (tests/integration/test_attacks_h2.py), which asserts
verdicts but no durations: for each case, how long the proxy takes to refuse an attacker (from
the attack's first frame to the close, the reset or the answer), and the legitimate clients'
throughput during the attack as a ratio to their throughput without it.

    ~/.cache/switchyard/venv/bin/python bench/h2_attacks.py [--seconds 3] [--cases a,b]

Each case gets a fresh proxy (build/switchyard, or $SWITCHYARD_BIN) and upstream.py. The
legitimate load is the suite's own (h2attacks.Legit: one client thread, sequential requests,
HTTP/2 and HTTP/1.1), first alone for --seconds, then beside back-to-back attacks for as long.
The attacker runs in a process of its own, so that it does not starve the legitimate client of
Python's interpreter lock; but all of them, upstream.py and the proxy share this machine's
cores, so read the ratios, not the absolute rates. Prints a Markdown table.
"""
import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import harness  # noqa: E402
from h2attacks import Legit  # noqa: E402
from test_attacks_h2 import CASES, LEGIT_BODY, LEGIT_PATH, config  # noqa: E402


def attack_for(index, port, seconds, results):
    """In a child process: CASES[index]'s attack, back to back for SECONDS (at least once);
    puts the list of times to refusal on RESULTS."""
    case = CASES[index]
    times = []
    start = time.monotonic()
    while time.monotonic() - start < seconds or not times:
        times.append(case.attack(port).seconds)
    results.put(times)


def measure(index, seconds, workdir):
    case = CASES[index]
    upstream = harness.Upstream(workdir, "upstream")
    sy = harness.Switchyard(workdir, config(upstream.port, case), "switchyard")
    try:
        sy.start()
        port = sy.port("ingress")
        before_kib = sy.memory_kib("VmHWM")
        with Legit(port, LEGIT_PATH, LEGIT_BODY) as legit:
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                time.sleep(0.05)  # the load runs in its own thread; this only waits
            alone = legit.rate(start, time.monotonic())
            ctx = multiprocessing.get_context("fork")
            results = ctx.Queue()
            attacker = ctx.Process(target=attack_for, args=(index, port, seconds, results))
            start = time.monotonic()
            attacker.start()
            closes = results.get(timeout=seconds + 120)
            during = legit.rate(start, time.monotonic())
            attacker.join(30)
            failures = len(legit.failures)
        upstream.release("limit")
        return {
            "case": case.id, "attacks": len(closes),
            "refuse_ms_median": statistics.median(closes) * 1000,
            "refuse_ms_max": max(closes) * 1000,
            "legit_alone": alone, "legit_during": during,
            "ratio": during / alone if alone else float("nan"),
            "legit_failures": failures,
            "rss_growth_kib": sy.memory_kib("VmHWM") - before_kib,
        }
    finally:
        sy.stop()
        upstream.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="legitimate load alone, then under attack, for this long each")
    ap.add_argument("--cases", default="", help="comma-separated case ids (default: all)")
    args = ap.parse_args()
    wanted = set(filter(None, args.cases.split(",")))
    rows = []
    for index, case in enumerate(CASES):
        if wanted and case.id not in wanted:
            continue
        with tempfile.TemporaryDirectory(prefix="sy-h2-attacks-") as tmp:
            rows.append(measure(index, args.seconds, Path(tmp)))
        r = rows[-1]
        print(f"{r['case']}: refused in {r['refuse_ms_median']:.1f} ms (median), legit "
              f"{r['ratio']:.2f}x", file=sys.stderr, flush=True)
    print("| case | attacks | time to refuse, median (max) | legit req/s alone | during | "
          "ratio | legit failures | peak RSS growth |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['attacks']} | {r['refuse_ms_median']:.1f} ms "
              f"({r['refuse_ms_max']:.1f} ms) | {r['legit_alone']:.0f} | "
              f"{r['legit_during']:.0f} | {r['ratio']:.2f} | {r['legit_failures']} | "
              f"{r['rss_growth_kib'] / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
