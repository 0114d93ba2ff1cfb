"""One measurement each: a correctness probe, saturation with wrk, latency at a fixed rate with
sy-openloop, memory with idle connections, a perf profile.

Every measurement checks itself. A run whose client saw an error, a wrong status, a short body
or a missing header, or whose request count at the client does not match the upstream's own
count, comes back with ok=False and the reason, and its figures are not used.
"""
import http.client
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from . import procs
from .systems import BENCH, SY_CACHE

WRK_SCRIPT = BENCH / "loadgen" / "count.lua"
OPENLOOP = SY_CACHE / "bench-bin" / "sy-openloop"
IDLE_HELPER = Path(__file__).resolve().parent / "idle_conns.py"


def verify(port, path, body, header=None):
    """One request on a fresh connection: (ok, reason)."""
    try:
        conn = http.client.HTTPConnection(procs.LOCALHOST, port, timeout=10)
        conn.request("GET", path, headers={"Host": "bench"})
        r = conn.getresponse()
        data = r.read()
        conn.close()
    except OSError as e:
        return False, f"probe request failed: {e!r}"
    if r.status != 200:
        return False, f"probe: status {r.status}, expected 200"
    if data != body:
        return False, f"probe: body of {len(data)} bytes differs from the upstream's {len(body)}"
    if header:
        got = r.getheader(header[0])
        if got != header[1]:
            return False, f"probe: response header {header[0]} is {got!r}, expected {header[1]!r}"
    return True, "ok"


def _wrk_summary(stdout):
    for line in stdout.splitlines():
        if line.startswith("SYBENCH "):
            return json.loads(line[len("SYBENCH "):])
    return None


def saturation(system, upstream, port, path, body_len, duration, connections, cores):
    """wrk, keep-alive, closed loop: the most requests per second the system serves."""
    counter = upstream.counter()
    usage = procs.Usage(system.pids, cores).start()
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "2s", "-s",
            str(WRK_SCRIPT), f"http://{procs.LOCALHOST}:{port}{path}"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                       preexec_fn=(lambda: os.sched_setaffinity(0, cores.load))
                       if cores.pinned else None)
    use = usage.stop()
    at_upstream = counter.since()
    w = _wrk_summary(r.stdout)
    out = {"tool": "wrk", "connections": connections, "duration_s": duration, "usage": use,
           "upstream_requests": at_upstream, "wrk": w}
    failure = None
    if r.returncode != 0 or w is None:
        failure = f"wrk exited {r.returncode}: {(r.stderr or r.stdout)[-300:]}"
    elif any(w["errors"].values()):
        failure = f"wrk saw errors: {w['errors']}"
    elif w["completed"] == 0:
        failure = "no request completed"
    elif not (w["completed"] <= at_upstream <= w["sent"]):
        failure = (f"request counts disagree: client completed {w['completed']} and sent "
                   f"{w['sent']}, the upstream served {at_upstream}")
    elif w["bytes"] < w["completed"] * body_len:
        failure = (f"short responses: {w['bytes']} bytes for {w['completed']} responses of "
                   f"{body_len}-byte bodies")
    elif not system.alive():
        failure = f"{system.entrant.name} exited during the run: {system.log_tail()}"
    out["ok"] = failure is None
    out["failure"] = failure
    if w and failure is None:
        seconds = w["duration_us"] / 1e6
        out["rps"] = round(w["completed"] / seconds, 1)
        if system.pids() or use["cpu_s"]:
            out["cpu_s_per_100k"] = round(use["cpu_s"] / w["completed"] * 1e5, 4)
    return out


def latency(system, upstream, port, path, body_len, header, rate, duration, connections,
            cores):
    """sy-openloop at RATE requests per second: latency from each request's intended send
    time."""
    counter = upstream.counter()
    usage = procs.Usage(system.pids, cores).start()
    argv = [str(OPENLOOP), "--port", str(port), "--path", path, "--rate", f"{rate:.1f}",
            "--duration", str(duration), "--connections", str(connections),
            "--expect-bytes", str(body_len)]
    if header:
        argv += ["--expect-header", f"{header[0]}: {header[1]}"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                       preexec_fn=(lambda: os.sched_setaffinity(0, cores.load))
                       if cores.pinned else None)
    use = usage.stop()
    at_upstream = counter.since()
    out = {"tool": "sy-openloop", "rate": round(rate, 1), "duration_s": duration,
           "connections": connections, "usage": use, "upstream_requests": at_upstream}
    failure = None
    try:
        o = json.loads(r.stdout)
    except ValueError:
        o = None
    out["openloop"] = o
    if r.returncode != 0 or o is None:
        failure = f"sy-openloop exited {r.returncode}: {(r.stderr or r.stdout)[-300:]}"
    elif any(o["errors"].values()):
        failure = f"client saw errors: {o['errors']}"
    elif o["completed"] != o["sent"] or o["sent"] == 0:
        failure = f"sent {o['sent']}, completed {o['completed']}"
    elif at_upstream != o["sent"]:
        failure = (f"request counts disagree: the client sent {o['sent']}, the upstream "
                   f"served {at_upstream}")
    elif not system.alive():
        failure = f"{system.entrant.name} exited during the run: {system.log_tail()}"
    out["ok"] = failure is None
    out["failure"] = failure
    if failure is None:
        lat, lag = o["latency_us"], o["send_lag_us"]
        out.update(p50_us=lat["p50"], p90_us=lat["p90"], p99_us=lat["p99"],
                   p999_us=lat["p999"], max_us=lat["max"], send_lag_p50_us=lag["p50"],
                   send_lag_p99_us=lag["p99"])
        if system.pids():
            out["cpu_s_per_100k"] = round(use["cpu_s"] / o["completed"] * 1e5, 4)
    return out


def idle_memory(system, port, path, count, cores, timeout=180):
    """Opens COUNT connections to the system from a helper process, one request each, leaves
    them idle, and reads the system's memory. Reports how many it reached if it could not open
    them all."""
    pids = system.pids()
    if not pids:
        return {"ok": False, "failure": "no proxy process to measure", "requested": count}
    rss0, pss0 = procs.memory_kib(pids)
    helper = procs.spawn([sys.executable, str(IDLE_HELPER), "--port", str(port), "--path", path,
                          "--count", str(count)], system.dir / "idle_conns.log",
                         cores=cores.load, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out = {"requested": count, "baseline_rss_kib": rss0, "baseline_pss_kib": pss0}
    try:
        report = None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            r, _, _ = select.select([helper.stdout], [], [], 1)
            if r:
                chunk = os.read(helper.stdout.fileno(), 4096)
                if not chunk:
                    break
                line += chunk
        if line.strip():
            report = json.loads(line)
        if report is None:
            out.update(ok=False, failure="the idle-connection helper gave no report in time")
            return out
        rss, pss = procs.memory_kib(system.pids())
        out.update(reached=report["reached"], rss_kib=rss, pss_kib=pss,
                   helper_error=report.get("error"), open_s=report.get("seconds"))
        if report["reached"] > 0:
            out["kib_per_connection"] = round((rss - rss0) / report["reached"], 2)
        out["ok"] = report["reached"] == count and system.alive()
        out["failure"] = None if out["ok"] else (
            f"reached {report['reached']} of {count} connections: {report.get('error')}"
            if report["reached"] != count else f"{system.entrant.name} exited")
        return out
    finally:
        try:
            helper.stdin.close()
        except OSError:
            pass
        try:
            helper.wait(30)
        except subprocess.TimeoutExpired:
            procs.stop(helper)


def profile(system, port, path, duration, connections, cores, out_dir):
    """perf record -g on the system during a wrk run; returns the top functions, self and
    inclusive, as text lines, or a reason."""
    perf = "perf"
    data = Path(out_dir) / f"perf-{system.entrant.name}.data"
    pids = ",".join(str(p) for p in system.pids())
    rec = procs.spawn([perf, "record", "-g", "-F", "999", "-o", str(data), "-p", pids, "--",
                       "sleep", str(duration)], Path(out_dir) / "perf-record.log",
                      cores=cores.load)
    subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                    f"http://{procs.LOCALHOST}:{port}{path}"], capture_output=True,
                   preexec_fn=(lambda: os.sched_setaffinity(0, cores.load))
                   if cores.pinned else None)
    rec.wait(60)
    if rec.returncode != 0 or not data.exists():
        return {"ok": False, "failure": f"perf record exited {rec.returncode}: see "
                                        f"{Path(out_dir) / 'perf-record.log'}"}
    result = {"ok": True}

    def report(name, *opts):
        r = subprocess.run([perf, "report", "-i", str(data), "--stdio", *opts], capture_output=True,
                           text=True, timeout=300)
        (Path(out_dir) / f"profile-{system.entrant.name}-{name}.txt").write_text(r.stdout)
        return [" ".join(ln.split()) for ln in r.stdout.splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]

    # Where the samples fall by object: the kernel (the TCP stack, for a proxy on loopback), the
    # proxy's own code, libc, libuv.
    result["by_object"] = report("by-object", "--no-children", "-F", "overhead,dso", "-g",
                                 "none", "--percent-limit", "0.5")[:12]
    result["self"] = report("self", "--no-children", "-F", "overhead,dso,sym", "-g", "none",
                            "--percent-limit", "0.7")[:30]
    result["self_user"] = [ln for ln in report("self-all", "--no-children", "-F",
                                               "overhead,dso,sym", "-g", "none",
                                               "--percent-limit", "0.15")
                           if "[k]" not in ln][:30]
    # Columns: inclusive %, self %, object, symbol (perf adds IPC columns, "- -" here).
    result["inclusive"] = [ln.removesuffix(" - -") for ln in
                           report("inclusive", "--children", "--sort", "dso,sym", "-g", "none",
                                  "--percent-limit", "2")][:30]
    data.unlink(missing_ok=True)
    return result
