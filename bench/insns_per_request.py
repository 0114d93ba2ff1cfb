#!/usr/bin/env python3
"""Instructions (and cycles) per request that Switchyard spends, per filter config.

Throughput on a shared machine swings with whatever else runs; the number of instructions the
proxy executes for a fixed number of requests hardly does. For each config (no filter, `hello`,
`hello-chain` by default: the snippets of bench/configs/scenarios/), this starts the proxy on
bench/configs/switchyard.yaml in front of the bench's upstream nginx, warms it up, counts the
proxy's instructions while h2load sends a fixed number of HTTP/1.1 requests, and divides by
that number. Each config runs ROUNDS times; the median is reported.

The count comes from the CPU's counters (`perf stat -e instructions:u,cycles:u -p`) where it
has them, else (a VM without a PMU) from callgrind, which counts every instruction exactly at
some 50 times the run time and gives the profile of the counted requests as well.

    bench/insns_per_request.py                       # none, hello, hello-chain
    bench/insns_per_request.py --requests 8000 --rounds 5 --configs none,hello
    bench/insns_per_request.py --profile hello-chain # keep callgrind-hello-chain.out
    bench/insns_per_request.py --configs none,ext_authz,none:ext_proc,ext_proc

Needs h2load, nginx and perf or valgrind; bench/setup installs them.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sybench import procs  # noqa: E402
from sybench.render import render, snippet_slots  # noqa: E402
from sybench.upstream import Upstream  # noqa: E402

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


class NoPinning:
    """The counts do not depend on where the processes run: nothing is pinned."""
    pinned = False
    proxy = None
    load = None


def slots_for(config, upstream):
    """The FILTERS and CLUSTERS slots for CONFIG: `none` is an empty chain, else a scenario's
    snippet, whose callout clusters (ext_authz's Check server on the upstream's h2c listener,
    ext_proc's sy-extproc) point at the servers started here."""
    if config == "none" or config.startswith("none:"):
        return {"FILTERS": "[]", "CLUSTERS": ""}
    snippet = BENCH / "configs" / "scenarios" / config / "switchyard.yaml"
    values = {"UPSTREAM_H2C_PORT": upstream.ports["h2c"],
              "EXTPROC_PORT": upstream.extproc.port or 0}
    slots = {"CLUSTERS": ""}
    for slot, text in snippet_slots(snippet, "FILTERS").items():
        slots[slot] = render(text, values, include_dir=snippet.parent)
    if config.startswith("ext_proc") and upstream.extproc.unavailable:
        raise RuntimeError(upstream.extproc.unavailable)
    return slots


def start_proxy(binary, workdir, upstream, config, counter):
    d = Path(workdir) / config
    d.mkdir(parents=True, exist_ok=True)
    port, admin = procs.free_port(), procs.free_port()
    text = render((BENCH / "configs" / "switchyard.yaml").read_text(), {
        "LISTEN_PORT": port, "ADMIN_PORT": admin, "UPSTREAM_PORT": upstream.port,
        "MODULE_DIR": REPO / "build" / "modules", "LISTENER": "",
        **slots_for(config, upstream)})
    (d / "switchyard.yaml").write_text(text)
    proc = procs.spawn(counter.wrap([binary, "-c", str(d / "switchyard.yaml")], d),
                       d / "switchyard.log", cwd=d)
    procs.until(lambda: proc.poll() is not None or procs.port_open(port), 120,
                f"switchyard ({config}) to listen on {port}")
    if proc.poll() is not None:
        raise RuntimeError(f"switchyard ({config}) exited at start; see {d / 'switchyard.log'}")
    return proc, port


# The request each config is counted with, as the bench's scenarios send it: the ext_proc
# scenarios' path has the upstream echo the processor's header, and ext_proc-body16k POSTs
# 16 KiB (a file of that size, written once per run).
BODY_16K = None


def request_for(config):
    # "none:SCENARIO" is the empty chain counted with SCENARIO's request (its baseline).
    config = config.split(":", 1)[-1]
    if config == "ext_proc-body16k":
        return "/ext_proc", BODY_16K
    if config.startswith("ext_proc"):
        return "/ext_proc", None
    return "/small", None


def h2load(port, requests, clients, config="none"):
    path, body = request_for(config)
    argv = ["h2load", "--h1", "-n", str(requests), "-c", str(clients)]
    if body:
        argv += ["-d", str(body)]
    return argv + [f"http://{procs.LOCALHOST}:{port}{path}"]


def check_h2load(output, requests):
    """h2load's own summary must say every request succeeded, or the count means nothing."""
    for line in output.splitlines():
        if line.startswith("requests:"):
            # requests: N total, N started, N done, N succeeded, 0 failed, 0 errored, ...
            fields = dict(reversed(p.strip().split(" ", 1)) for p in line[9:].split(","))
            if int(fields.get("succeeded", -1)) != requests:
                raise RuntimeError(f"not every request succeeded: {line}")
            return
    raise RuntimeError(f"no summary from h2load: {output[-500:]}")


def perf_counts():
    """True when perf can count instructions here (a VM often has no PMU)."""
    r = subprocess.run(["perf", "stat", "-x", ",", "-e", "instructions:u", "--", "true"],
                       capture_output=True, text=True)
    return r.returncode == 0 and "not supported" not in r.stderr


class PerfCounter:
    """instructions:u and cycles:u of the proxy process from the CPU's counters."""
    name = "perf stat"

    def wrap(self, argv, workdir):
        return argv

    def count(self, pid, port, requests, clients, config):
        with tempfile.NamedTemporaryFile("r", suffix=".csv") as out:
            # With -p, the command after -- only sets how long perf counts (it is not
            # counted): the counters are open before h2load starts and closed after it ends.
            argv = ["perf", "stat", "-x", ",", "-o", out.name, "-e", "instructions:u,cycles:u",
                    "-p", str(pid), "--"] + h2load(port, requests, clients, config)
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"perf stat failed ({r.returncode}): {r.stderr[-500:]}")
            check_h2load(r.stdout, requests)
            values = {}
            for line in out.read().splitlines():
                parts = line.split(",")
                if len(parts) > 2 and parts[2].split(":")[0] in ("instructions", "cycles"):
                    values[parts[2].split(":")[0]] = int(parts[0])
        return values["instructions"], values["cycles"]


class CallgrindCounter:
    """Instructions the proxy executes, counted exactly by callgrind (no PMU needed, and the
    same count whatever else runs). The proxy runs under valgrind; the counts are zeroed after
    the warm-up and dumped after the counted requests, and that dump is also the profile of
    just those requests (callgrind_annotate FILE)."""
    name = "callgrind"

    def wrap(self, argv, workdir):
        self.dir = Path(workdir)
        return ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + str(self.dir / "cg.out"),
                "--dump-instr=no", "--compress-strings=no", "--compress-pos=no"] + argv

    def control(self, pid, option):
        r = subprocess.run(["callgrind_control", option, str(pid)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise RuntimeError(f"callgrind_control {option} failed: {r.stdout}{r.stderr}")

    def count(self, pid, port, requests, clients, config):
        before = set(self.dir.glob("cg.out.*"))
        self.control(pid, "--zero")
        r = subprocess.run(h2load(port, requests, clients, config), capture_output=True,
                           text=True)
        check_h2load(r.stdout, requests)
        self.control(pid, "--dump")
        dumps = procs.until(lambda: set(self.dir.glob("cg.out.*")) - before, 30,
                            "callgrind's dump")
        self.last_dump = max(dumps, key=lambda p: p.stat().st_mtime)
        for line in self.last_dump.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1]), None
        raise RuntimeError(f"no totals in {self.last_dump}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="none,hello,hello-chain",
                    help="comma-separated: none, or scenario folders under bench/configs/scenarios "
                         "(ext_authz, ext_proc and ext_proc-body16k call out to the bench's "
                         "servers, started here); none:SCENARIO is no filter with SCENARIO's "
                         "request (none:ext_proc-body16k POSTs 16 KiB)")
    ap.add_argument("--requests", type=int, default=None,
                    help="requests per round (default 20000 with perf, 4000 with callgrind)")
    ap.add_argument("--clients", type=int, default=8, help="h2load connections")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1000, help="requests before counting")
    ap.add_argument("--counter", choices=("auto", "perf", "callgrind"), default="auto",
                    help="auto: perf stat when the CPU's counters are there, else callgrind")
    ap.add_argument("--binary", default=str(REPO / "build" / "switchyard"))
    ap.add_argument("--profile", metavar="CONFIG",
                    help="with callgrind: keep the last round's dump of CONFIG as "
                         "callgrind-CONFIG.out here (read it with callgrind_annotate)")
    args = ap.parse_args()
    for tool in ("h2load", "nginx", "perf" if args.counter == "perf" else "valgrind"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin"):
            sys.exit(f"{tool} is not installed (bench/setup installs it)")
    use_perf = args.counter == "perf" or (args.counter == "auto" and perf_counts())
    counter = PerfCounter() if use_perf else CallgrindCounter()
    requests = args.requests or (20000 if use_perf else 4000)

    configs = args.configs.split(",")
    workdir = tempfile.mkdtemp(prefix="sy-insns-")
    upstream = Upstream(workdir, NoPinning())
    global BODY_16K
    BODY_16K = Path(workdir) / "body-16k"
    BODY_16K.write_bytes(upstream.body_16k)
    rows = []
    try:
        for config in configs:
            proc, port = start_proxy(args.binary, workdir, upstream, config, counter)
            try:
                # The warm-up is not checked: under callgrind the first callouts can pass a
                # scenario's 1 s timeout while valgrind translates the code they run.
                subprocess.run(h2load(port, args.warmup, args.clients, config),
                               capture_output=True, text=True)
                ins, cyc = [], []
                for _ in range(args.rounds):
                    i, c = counter.count(proc.pid, port, requests, args.clients, config)
                    ins.append(i / requests)
                    if c is not None:
                        cyc.append(c / requests)
                rows.append((config, statistics.median(ins),
                             statistics.median(cyc) if cyc else None, min(ins), max(ins)))
                if args.profile == config and not use_perf:
                    kept = Path.cwd() / f"callgrind-{config}.out"
                    shutil.copy(counter.last_dump, kept)
                    print(f"profile: callgrind_annotate --inclusive=no {kept}", file=sys.stderr)
            finally:
                procs.stop(proc, timeout=60)
    finally:
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    base = rows[0][1]
    print(f"counted by {counter.name}: {args.rounds} rounds of {requests} requests "
          f"({args.clients} connections), median per request")
    print(f"{'config':<14} {'insns/req':>10} {'cycles/req':>11} {'vs ' + rows[0][0]:>10}"
          f"   insns/req range")
    for config, i, c, lo, hi in rows:
        cycles = f"{c:>11.0f}" if c is not None else f"{'-':>11}"
        print(f"{config:<14} {i:>10.0f} {cycles} {100 * (i - base) / base:>+9.1f}%"
              f"   {lo:.0f}..{hi:.0f}")


if __name__ == "__main__":
    main()
