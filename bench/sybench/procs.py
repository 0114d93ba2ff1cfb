"""Processes under measurement: starting them on a core, waiting for a port, and reading what
the kernel says they used (CPU ticks, resident memory) from /proc.

Nothing here sleeps to synchronise: every wait polls a condition until a deadline.
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

LOCALHOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Cores:
    """Which core the proxy gets and which the load side (client, upstream, helpers) gets.

    With two or more cores: the proxy alone on core 0, everything else on core 1. With one core
    nothing is pinned, and the results say so."""

    def __init__(self):
        n = len(os.sched_getaffinity(0))
        self.pinned = n >= 2
        self.proxy = {0} if self.pinned else None
        self.load = {1} if self.pinned else None

    def describe(self):
        if not self.pinned:
            return "not pinned (fewer than 2 cores available)"
        return "proxy on core 0; load generator, upstream and harness on core 1"


def free_port():
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def port_open(port, host=LOCALHOST):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def until(predicate, timeout, what, interval=0.02):
    """Polls PREDICATE until it is truthy and returns its value; raises TimeoutError with WHAT."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(interval)


def spawn(argv, log_path, cores=None, cwd=None, env=None, stdin=subprocess.DEVNULL,
          stdout=None):
    """Starts ARGV with its output in LOG_PATH, on CORES (a set) when given."""
    def pin():
        if cores:
            os.sched_setaffinity(0, cores)
        os.setpgrp()  # its own group, so that stopping it takes its children too

    log = open(log_path, "ab")
    try:
        return subprocess.Popen(argv, stdout=stdout if stdout is not None else log, stderr=log,
                                stdin=stdin, cwd=cwd, env=env, preexec_fn=pin)
    finally:
        log.close()


def stop(proc, timeout=10):
    """SIGTERM to the process group, then SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def tree(pid):
    """PID and all its descendants that are alive now."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def cpu_ticks(pids):
    """utime + stime of PIDS (each a whole process, all its threads), in clock ticks."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total


def core_ticks():
    """Busy and total ticks per core from /proc/stat: {core: (busy, total)}."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            vals = [int(v) for v in vals]
            idle = vals[3] + vals[4]  # idle + iowait
            total = sum(vals[:8])  # guest time is already inside user
            out[int(name[3:])] = (total - idle, total)
    return out


def memory_kib(pids):
    """Summed RSS and PSS (KiB) of PIDS. PSS splits shared pages between the processes that map
    them, so a multi-process server (nginx's master and worker) is not counted twice."""
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    return rss, pss


class Usage:
    """CPU used by PIDS and by each core between start() and stop()."""

    def __init__(self, pids_fn, cores):
        self.pids_fn = pids_fn
        self.cores = cores

    def start(self):
        self.t0 = time.monotonic()
        self.c0 = cpu_ticks(self.pids_fn())
        self.k0 = core_ticks()
        return self

    def stop(self):
        wall = time.monotonic() - self.t0
        cpu = (cpu_ticks(self.pids_fn()) - self.c0) / CLK_TCK
        k1 = core_ticks()
        out = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
               "busy_pct": round(100 * cpu / wall, 1) if wall > 0 else None}
        if self.cores and self.cores.pinned:
            busy0 = (k1[0][0] - self.k0[0][0]) / CLK_TCK
            busy1 = (k1[1][0] - self.k0[1][0]) / CLK_TCK
            # Core 0 runs only the proxy under test: whatever else kept it busy (another build
            # on this machine, interrupts and softirqs not charged to the proxy) took time from
            # it. A high figure means the run was disturbed.
            out["core0_busy_pct"] = round(100 * busy0 / wall, 1)
            out["core0_other_pct"] = round(max(0.0, 100 * (busy0 - cpu) / wall), 1)
            out["core1_busy_pct"] = round(100 * busy1 / wall, 1)
        return out
