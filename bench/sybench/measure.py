"""One measurement each: a correctness probe, saturation with wrk, latency at a fixed rate with
sy-openloop, memory with idle connections, a perf profile.

Every measurement checks itself. A run whose client saw an error, a wrong status, a short body
or a missing header, or whose request count at the client does not match the upstream's own
count, comes back with ok=False and the reason, and its figures are not used.
"""
import http.client
import json
import os
import re
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


def request_body(size):
    """The body the clients send when a scenario POSTs SIZE bytes (sy-openloop sends the same
    bytes: 'b' repeated)."""
    return b"b" * size


def verify(port, path, body, header=None, body_bytes=0):
    """One request on a fresh connection (POST with BODY_BYTES bytes when not 0): (ok, reason)."""
    try:
        conn = http.client.HTTPConnection(procs.LOCALHOST, port, timeout=10)
        if body_bytes:
            conn.request("POST", path, body=request_body(body_bytes),
                         headers={"Host": "bench", "Content-Type": "application/octet-stream"})
        else:
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


def saturation(system, upstream, port, path, body_len, duration, connections, cores,
               body_bytes=0):
    """wrk, keep-alive, closed loop: the most requests per second the system serves. With
    BODY_BYTES, each request is a POST with that many bytes (count.lua builds it)."""
    counter = upstream.counter()
    usage = procs.Usage(system.pids, cores).start()
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "2s", "-s",
            str(WRK_SCRIPT), f"http://{procs.LOCALHOST}:{port}{path}"]
    if body_bytes:
        argv += ["--", "POST", str(body_bytes)]
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
            cores, body_bytes=0):
    """sy-openloop at RATE requests per second: latency from each request's intended send
    time. With BODY_BYTES, each request is a POST with that many bytes."""
    counter = upstream.counter()
    usage = procs.Usage(system.pids, cores).start()
    argv = [str(OPENLOOP), "--port", str(port), "--path", path, "--rate", f"{rate:.1f}",
            "--duration", str(duration), "--connections", str(connections),
            "--expect-bytes", str(body_len)]
    if header:
        argv += ["--expect-header", f"{header[0]}: {header[1]}"]
    if body_bytes:
        argv += ["--body-bytes", str(body_bytes)]
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


# ------------------------------------------------------------------------------------------
# HTTP/2 and TLS: probes with curl, load with h2load

H2_CLIENTS = 16             # h2-small: connections ...
H2_STREAMS = 10             # ... and concurrent streams on each
TLS13_CIPHER = "TLS_AES_128_GCM_SHA256"
TLS_GROUP = "X25519"


def probe(client, port, path, body, header=None, cert=None, body_bytes=0):
    """The scenario's probe: one request on a fresh connection, in the scenario's protocol,
    with everything checked that can be: (ok, reason)."""
    if client == "http1":
        return verify(port, path, body, header, body_bytes)
    argv = ["curl", "-sS", "--max-time", "10", "--output", "-", "--write-out",
            "\nSYPROBE %{http_code} %{http_version} %{ssl_verify_result}"]
    if client == "h2c":
        argv += ["--http2-prior-knowledge", f"http://{procs.LOCALHOST}:{port}{path}"]
    else:  # tls: the certificate must verify against the bench's own, for 127.0.0.1
        argv += ["--http2", "--tlsv1.3", "--cacert", str(cert),
                 f"https://{procs.LOCALHOST}:{port}{path}"]
    try:
        r = subprocess.run(argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"probe: curl failed to run: {e!r}"
    data, sep, tail = r.stdout.rpartition(b"\nSYPROBE ")
    if r.returncode != 0 or not sep:
        return False, (f"probe: curl exited {r.returncode}: "
                       f"{r.stderr.decode(errors='replace').strip()[-300:]}")
    fields = tail.decode(errors="replace").split()
    if len(fields) != 3:
        return False, f"probe: unexpected curl summary {tail[-100:]!r}"
    code, version, verify_result = fields
    if code != "200":
        return False, f"probe: status {code}, expected 200"
    if version != "2":
        return False, f"probe: the response came over HTTP/{version}, expected HTTP/2"
    if client == "tls" and verify_result != "0":
        return False, f"probe: the certificate did not verify (curl: {verify_result})"
    if data != body:
        return False, f"probe: body of {len(data)} bytes differs from the upstream's {len(body)}"
    if header:
        return False, "probe: response headers are not checked over HTTP/2 (no scenario needs it)"
    return True, "ok"


def _seconds(text):
    """h2load's durations: 1.00s, 162.22ms, 830us."""
    for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(f"not a duration: {text!r}")


def parse_h2load(stdout):
    """The figures of h2load's summary, or None when it printed no summary."""
    out = {}
    for line in stdout.splitlines():
        line = line.strip()
        m = re.match(r"finished in ([\d.]+(?:s|ms|us|µs)), ", line)
        if m:
            out["seconds"] = _seconds(m.group(1))
        elif line.startswith("requests:"):
            for n, what in re.findall(r"(\d+) (\w+)", line):
                out[what] = int(n)
        elif line.startswith("status codes:"):
            for n, what in re.findall(r"(\d+) (\dxx)", line):
                out[what] = int(n)
        elif line.startswith("traffic:"):
            for n, what in re.findall(r"\((\d+)\) (total|headers|data)", line):
                out[f"bytes_{what}"] = int(n)
        else:
            for label, key in (("TLS Protocol:", "tls_protocol"), ("Cipher:", "cipher"),
                               ("Server Temp Key:", "temp_key"),
                               ("Application protocol:", "app_protocol")):
                if line.startswith(label):
                    out[key] = line[len(label):].strip()
    need = ("seconds", "total", "started", "done", "succeeded", "failed", "errored", "timeout",
            "2xx", "bytes_data")
    return out if all(k in out for k in need) else None


def _h2load(argv, cores, timeout):
    """Runs h2load on the load core: (parsed summary or None, failure or None)."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL,
                           preexec_fn=(lambda: os.sched_setaffinity(0, cores.load))
                           if cores.pinned else None)
    except subprocess.TimeoutExpired:
        return None, f"h2load did not finish within {timeout} s"
    h = parse_h2load(r.stdout)
    if r.returncode != 0 or h is None:
        return h, f"h2load exited {r.returncode}: {(r.stderr or r.stdout)[-300:]}"
    return h, None


def _h2load_failure(h, body_len, protocol):
    """What is wrong with one h2load summary, or None."""
    non_2xx = sum(h.get(k, 0) for k in ("1xx", "3xx", "4xx", "5xx"))
    if h["failed"] or h["errored"] or h["timeout"]:
        return (f"h2load saw failures: {h['failed']} failed, {h['errored']} errored, "
                f"{h['timeout']} timed out of {h['total']}")
    if h["succeeded"] == 0:
        return "no request succeeded"
    if non_2xx or h["2xx"] < h["succeeded"]:
        return f"non-2xx responses: {h['2xx']} 2xx for {h['succeeded']} succeeded, " \
               f"{non_2xx} other"
    if h["bytes_data"] < h["succeeded"] * body_len:
        return (f"short responses: {h['bytes_data']} body bytes for {h['succeeded']} responses "
                f"of {body_len}-byte bodies")
    if h.get("app_protocol") != protocol:
        return f"negotiated {h.get('app_protocol')!r}, expected {protocol}"
    return None


def h2_saturation(system, upstream, port, path, body_len, duration, cores):
    """h2load over h2c with prior knowledge, fixed clients and streams, for DURATION seconds:
    the most requests per second the system serves over HTTP/2."""
    counter = upstream.counter()
    usage = procs.Usage(system.pids, cores).start()
    argv = ["h2load", "-t1", f"-c{H2_CLIENTS}", f"-m{H2_STREAMS}", "-D", str(duration),
            f"http://{procs.LOCALHOST}:{port}{path}"]
    h, failure = _h2load(argv, cores, duration + 60)
    use = usage.stop()
    at_upstream = counter.since()
    out = {"tool": "h2load", "argv": " ".join(argv), "clients": H2_CLIENTS,
           "streams": H2_STREAMS, "duration_s": duration, "usage": use,
           "upstream_requests": at_upstream, "h2load": h}
    if failure is None:
        failure = _h2load_failure(h, body_len, "h2c")
    # h2load stops at the deadline with requests in flight: the upstream served at least the
    # ones that completed and at most the ones started.
    if failure is None and not (h["succeeded"] <= at_upstream <= h["started"]):
        failure = (f"request counts disagree: h2load completed {h['succeeded']} and started "
                   f"{h['started']}, the upstream served {at_upstream}")
    if failure is None and not system.alive():
        failure = f"{system.entrant.name} exited during the run: {system.log_tail()}"
    out["ok"] = failure is None
    out["failure"] = failure
    if failure is None:
        out["rps"] = round(h["succeeded"] / h["seconds"], 1)
        if system.pids():
            out["cpu_s_per_100k"] = round(use["cpu_s"] / h["succeeded"] * 1e5, 4)
    return out


def tls_handshakes(system, upstream, port, path, body_len, duration, burst, cert, cores):
    """Full TLS handshakes per second: bursts of BURST h2load clients over TLS, each making one
    connection with one request, until DURATION seconds of h2load time are used up. Switchyard's
    own counters confirm that every handshake was a full one."""
    counter = upstream.counter()
    bursts, failure, tls0, tls1 = [], None, None, None
    try:
        tls0 = system.tls_counters()
    except RuntimeError as e:
        failure = f"before the run: {e}"
    usage = procs.Usage(system.pids, cores).start()
    # HTTP/1.1 over TLS (ALPN http/1.1): h2load's client side of an HTTP/2 connection costs
    # about as much again as its TLS, and the load core is what limits this scenario.
    argv = ["h2load", "-t1", f"-c{burst}", f"-n{burst}", "--h1", "--tls13-ciphers",
            TLS13_CIPHER, "--groups", TLS_GROUP, f"https://{procs.LOCALHOST}:{port}{path}"]
    wall_limit = time.monotonic() + 4 * duration + 60  # a system slower than this fails
    while failure is None and (not bursts or sum(b["seconds"] for b in bursts) < duration):
        if time.monotonic() > wall_limit:
            failure = f"{len(bursts)} bursts did not add up to {duration} s of h2load time"
            break
        h, failure = _h2load(argv, cores, 120)
        if h is not None:
            bursts.append(h)
        if failure is None:
            failure = _h2load_failure(h, body_len, "http/1.1")
        if failure is None and h["succeeded"] != burst:
            failure = f"{h['succeeded']} of {burst} clients' requests succeeded"
        if failure is None and (h.get("tls_protocol"), h.get("cipher")) != ("TLSv1.3",
                                                                              TLS13_CIPHER):
            failure = (f"negotiated {h.get('tls_protocol')} {h.get('cipher')}, expected "
                       f"TLSv1.3 {TLS13_CIPHER}")
        if failure is None and not (h.get("temp_key") or "").startswith(TLS_GROUP):
            failure = f"key exchange {h.get('temp_key')!r}, expected {TLS_GROUP}"
    use = usage.stop()
    at_upstream = counter.since()
    if tls0 is not None:
        try:
            tls1 = system.tls_counters()
        except RuntimeError as e:
            failure = failure or f"after the run: {e}"
    handshakes = sum(b["succeeded"] for b in bursts)
    seconds = sum(b["seconds"] for b in bursts)
    out = {"tool": "h2load", "argv": " ".join(argv), "burst": burst, "bursts": len(bursts),
           "handshakes": handshakes, "h2load_seconds": round(seconds, 4), "duration_s": duration,
           "usage": use, "upstream_requests": at_upstream,
           "h2load": [{k: b.get(k) for k in ("seconds", "succeeded", "tls_protocol", "cipher",
                                             "temp_key", "app_protocol")} for b in bursts]}
    if tls0 is not None and tls1 is not None:
        out["proxy_tls"] = {k: tls1[k] - tls0[k] for k in tls0}
    if failure is None and at_upstream != handshakes:
        failure = (f"request counts disagree: h2load completed {handshakes}, the upstream "
                   f"served {at_upstream}")
    if failure is None and tls0 is not None:
        if out["proxy_tls"]["session_reused"] != 0:
            failure = (f"{out['proxy_tls']['session_reused']} handshakes resumed a session: "
                       f"not all were full handshakes")
        elif out["proxy_tls"]["handshakes"] != handshakes:
            failure = (f"{system.entrant.name} counted {out['proxy_tls']['handshakes']} TLS "
                       f"handshakes, h2load {handshakes}")
    if failure is None and not system.alive():
        failure = f"{system.entrant.name} exited during the run: {system.log_tail()}"
    out["ok"] = failure is None
    out["failure"] = failure
    if failure is None:
        out["rps"] = round(handshakes / seconds, 1)
        # The proxy works during the bursts, not in the gaps between h2load processes.
        use["busy_pct"] = round(100 * use["cpu_s"] / seconds, 1)
        if system.pids():
            out["cpu_s_per_100k"] = round(use["cpu_s"] / handshakes * 1e5, 4)
    return out
