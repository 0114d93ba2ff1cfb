"""What the results were measured on: the machine, the kernel, the tools and their versions."""
import os
import platform
import subprocess
from pathlib import Path

from .measure import OPENLOOP
from .systems import REPO, run_text, which


def _cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def machine_info():
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "os": _os_release(),
        "memory_gib": _mem_total_gib(),
        "loadavg_at_start": os.getloadavg(),
        "commit": (git.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip()
                                         else "")) if git.returncode == 0 else None,
    }


def _os_release():
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return None


def tool_versions(system_versions):
    out = dict(system_versions)
    out["wrk"] = run_text(["wrk", "--version"])[1].splitlines()[0] if which("wrk") else None
    nginx = which("nginx")
    out["upstream nginx"] = run_text([nginx, "-v"])[1] if nginx else None
    out["sy-openloop"] = f"{OPENLOOP} (bench/loadgen/openloop.c)" if OPENLOOP.exists() else None
    for tool, argv in (("h2load", ["h2load", "--version"]),
                       ("curl (probes)", ["curl", "--version"]),
                       ("openssl (certificate)", ["openssl", "version"])):
        out[tool] = run_text(argv)[1].splitlines()[0] if which(argv[0]) else None
    cc = which("cc")
    out["cc (for sy-openloop)"] = run_text([cc, "--version"])[1].splitlines()[0] if cc else None
    out["python"] = platform.python_version()
    try:
        import matplotlib
        out["matplotlib"] = matplotlib.__version__
    except ImportError:
        out["matplotlib"] = None
    perf = which("perf")
    out["perf"] = run_text([perf, "--version"])[1] if perf else None
    return out
