"""What the integration tests share: ports, waiting with deadlines, HTTP/1.1 on raw sockets,
and handles on the processes under test (switchyard) and beside it (upstream.py, nginx).

Nothing here sleeps to synchronise: every wait polls a condition until a deadline.
"""
import copy
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BINARY = Path(os.environ.get("SWITCHYARD_BIN", REPO / "build" / "switchyard"))
LOCALHOST = "127.0.0.1"

# ------------------------------------------------------------------------------------------
# Ports and waiting


_ports_given = set()


def free_port():
    """A TCP port nobody listens on right now (the kernel's pick for port 0), never one this
    process handed out before: the kernel may pick a port again as soon as it is released, and a
    test that asks for two ports (a listener and the admin) before starting the proxy would get
    the same one twice."""
    while True:
        with socket.socket() as s:
            s.bind((LOCALHOST, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def until(predicate, timeout=10.0, interval=0.02, what="the condition", ignore=()):
    """Polls PREDICATE until it returns something truthy, and returns that.

    Exceptions of the types in IGNORE count as "not yet". Fails the test after TIMEOUT seconds.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except ignore as e:  # noqa: PERF203 - a retry loop on purpose
            last_error = e
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"gave up after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def port_open(port, host=LOCALHOST):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def connection_refused(port, host=LOCALHOST):
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        # The probe raced the listener's close (the kernel resets what sat in its accept
        # queue): not refused yet, so the caller polls again.
        return False


def tail(path, lines=60):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"({path}: {e})"
    return "\n".join(text.splitlines()[-lines:])


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def proc_status_kib(pid, field):
    """A memory figure from /proc/PID/status (VmRSS, VmHWM, ...) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


# ------------------------------------------------------------------------------------------
# HTTP/1.1 responses, from http.client or from a raw socket


class Response:
    def __init__(self, status, reason="", version="HTTP/1.1", headers=(), body=b"",
                 trailers=(), interim=()):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = list(headers)  # [(name, value)] in arrival order
        self.body = body
        self.trailers = list(trailers)
        self.interim = list(interim)  # 1xx responses that came first

    def all(self, name, fields=None):
        name = name.lower()
        return [v for n, v in (self.headers if fields is None else fields) if n.lower() == name]

    def header(self, name):
        """The first value of NAME, or None."""
        values = self.all(name)
        return values[0] if values else None

    def trailer(self, name):
        values = self.all(name, self.trailers)
        return values[0] if values else None

    def tokens(self, name):
        return {t.strip().lower() for v in self.all(name) for t in v.split(",") if t.strip()}

    def json(self):
        return json.loads(self.body)

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


def request(port, method="GET", path="/", body=None, headers=None, timeout=30,
            host=LOCALHOST):
    """One request on a fresh connection, with the standard library's client."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, f"HTTP/{r.version / 10:.1f}", r.getheaders(), data)
    finally:
        conn.close()


def echo_headers(echo, name):
    """Values of NAME among the request headers upstream.py's /echo saw."""
    name = name.lower()
    return [v for n, v in echo["headers"] if n.lower() == name]


class ConnectionClosed(AssertionError):
    pass


class RawClient:
    """A client on a plain socket, for what http.client hides or refuses to send: pipelining,
    malformed requests, trailers, interim responses, upgrades, and watching for a close."""

    def __init__(self, port, host=LOCALHOST, timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self):
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionResetError as e:
            raise ConnectionClosed(
                f"connection reset by the proxy; unread: {self.buf[:200]!r}") from e
        except socket.timeout as e:
            raise AssertionError(
                f"no data within {self.timeout}s; unread: {self.buf[:200]!r}") from e
        if not data:
            raise ConnectionClosed(f"connection closed by the proxy; unread: {self.buf[:200]!r}")
        self.buf += data

    def read_line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        assert line.endswith(b"\r"), f"response line not ended by CRLF: {line[:100]!r}"
        return line[:-1]

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv_some(self):
        """Whatever bytes are buffered or arrive next (at least one)."""
        if not self.buf:
            self._fill()
        data, self.buf = self.buf, b""
        return data

    def _fields(self):
        fields = []
        while True:
            line = self.read_line()
            if not line:
                return fields
            assert line[:1] not in (b" ", b"\t"), f"obs-fold from the proxy: {line!r}"
            name, sep, value = line.partition(b":")
            assert sep, f"bad header line from the proxy: {line!r}"
            fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))

    def read_head(self):
        """The next status line and header section, body untouched."""
        line = self.read_line().decode("latin-1")
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        assert version in ("HTTP/1.1", "HTTP/1.0") and code.isdigit(), f"bad status {line!r}"
        return Response(int(code), reason, version, self._fields())

    def read_response(self, method="GET"):
        """The next final response (1xx other than 101 are collected in .interim)."""
        interim = []
        while True:
            resp = self.read_head()
            if 100 <= resp.status < 200 and resp.status != 101:
                interim.append(resp)
                continue
            break
        resp.interim = interim
        if method == "HEAD" or resp.status in (101, 204, 304):
            return resp
        if "chunked" in resp.tokens("transfer-encoding"):
            resp.body, resp.trailers = self._chunked()
        elif resp.header("content-length") is not None:
            lengths = set(resp.all("content-length"))
            assert len(lengths) == 1, f"conflicting Content-Length from the proxy: {lengths}"
            resp.body = self.read_exact(int(lengths.pop()))
        else:
            resp.body = self.read_until_close()
        return resp

    def read_chunk(self):
        """The data of the next chunk of a chunked body; b"" for the last chunk, whose trailers
        are then in self.last_trailers."""
        size_line = self.read_line()
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            self.last_trailers = self._fields()
            return b""
        data = self.read_exact(size)
        assert self.read_exact(2) == b"\r\n", "chunk not followed by CRLF"
        return data

    def _chunked(self):
        body = []
        while True:
            data = self.read_chunk()
            if not data:
                return b"".join(body), self.last_trailers
            body.append(data)

    def read_until_close(self, timeout=None):
        """Everything up to EOF (a reset counts as EOF); fails if EOF does not come in time."""
        deadline = time.monotonic() + (timeout or self.timeout)
        chunks = [self.buf]
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout or self.timeout}s")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                continue
            finally:
                self.sock.settimeout(self.timeout)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def wait_closed(self, timeout=10):
        """True once the peer has closed; fails if it has not within TIMEOUT seconds."""
        self.read_until_close(timeout)
        return True

    def is_open_now(self):
        """Whether the peer has not closed: no EOF or reset readable at this instant."""
        r, _, _ = select.select([self.sock], [], [], 0)
        if not r:
            return True
        try:
            data = self.sock.recv(1 << 16, socket.MSG_PEEK)
        except ConnectionResetError:
            return False
        return bool(data)


def raw_request(method, path, headers=(), body=b"", version="HTTP/1.1", host="test"):
    """Bytes of one request; HEADERS as (name, value) pairs, sent as given."""
    lines = [f"{method} {path} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{n}: {v}" for n, v in headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body.encode() if isinstance(body, str) else body)


def chunked(pieces, trailers=()):
    """A chunked body made of PIECES, then TRAILERS."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    return out + b"0\r\n" + b"".join(f"{n}: {v}\r\n".encode() for n, v in trailers) + b"\r\n"


def stream_payload(chunks, size):
    """The body upstream.py's /stream?chunks=N&size=S sends."""
    return b"".join(bytes([97 + i % 26]) * size for i in range(chunks))


# ------------------------------------------------------------------------------------------
# Processes


def parse_stats(text):
    """An admin /stats text page ("name: value" lines, Switchyard's and Envoy's) as a dict;
    values are ints or floats where they parse as such, else strings."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if not sep:
            continue
        value = value.strip()
        try:
            out[name.strip()] = int(value)
        except ValueError:
            try:
                out[name.strip()] = float(value)
            except ValueError:
                out[name.strip()] = value
    return out


class Process:
    """Common to the three: a subprocess with a log file, stopped politely then firmly."""

    name = "process"
    proc = None
    log_path = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, lines=60):
        return f"----- {self.name}: {self.log_path} -----\n{tail(self.log_path, lines)}"


class Upstream(Process):
    """upstream.py in a subprocess, on a port it picked itself."""

    def __init__(self, workdir, name="upstream"):
        self.name = f"upstream.py {name}"
        self.server_name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"upstream-{name}.log"
        self.expect_clean = True  # teardown fails the test if the proxy sent malformed HTTP
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "upstream.py"), "--name", name],
                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        self.port = self._read_ready(timeout=15)

    def _read_ready(self, timeout):
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"upstream.py did not print READY\n{self.log_tail()}")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                byte = os.read(self.proc.stdout.fileno(), 1)
                if not byte:
                    continue
                line += byte
        words = line.split()
        assert words[0] == b"READY", line
        return int(words[1])

    @property
    def address(self):
        return f"{LOCALHOST}:{self.port}"

    def stats(self):
        return request(self.port, "GET", "/__stats").json()

    def release(self, key):
        assert request(self.port, "POST", f"/__release?key={key}").status == 200


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
  log_format sy '$connection $connection_requests $request_length $status $request_method '
                '$request_uri $body_bytes_sent';
  access_log {dir}/access.log sy;
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_max_body_size 0;
  server {{
    listen {host}:{port};
    root {dir}/docroot;
    location = /small {{
      default_type text/plain;
      return 200 "hello from nginx\\n";
    }}
    location /uploads/ {{
      dav_methods PUT;
      create_full_put_path on;
    }}
    location / {{ }}
  }}
}}
"""


class Nginx(Process):
    """nginx serving a few fixed bodies and files from a docroot in WORKDIR.

    /small    "hello from nginx\\n" (any method; a request body is read and dropped)
    /file16k  16 KiB of random bytes   /file4m  4 MiB of random bytes
    /big      100 MiB of zeros (a sparse file, served with sendfile)
    PUT /uploads/NAME  stores the body as docroot/uploads/NAME (201), see uploaded(NAME)
    Its access log has one line per request: $connection $connection_requests $request_length
    $status $request_method $request_uri $body_bytes_sent.
    """

    SMALL_BODY = b"hello from nginx\n"
    BIG_SIZE = 100 * 1024 * 1024

    def __init__(self, workdir):
        self.name = "nginx"
        self.dir = workdir
        docroot = workdir / "docroot"
        for d in (docroot, workdir / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        self.files = {}
        for name, size in (("file16k", 16 * 1024), ("file4m", 4 * 1024 * 1024)):
            data = os.urandom(size)
            (docroot / name).write_bytes(data)
            self.files[name] = data
        with open(docroot / "big", "wb") as f:
            f.truncate(self.BIG_SIZE)
        self.log_path = workdir / "error.log"
        self.access_log_path = workdir / "access.log"
        nginx = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        assert nginx, "nginx is not installed (tools/install-deps installs it)"
        user = ""
        if os.geteuid() == 0:
            # Workers would otherwise switch to nobody and fail to read a root-only tmp dir.
            import grp
            import pwd
            user = (f"user {pwd.getpwuid(os.getuid()).pw_name} "
                    f"{grp.getgrgid(os.getgid()).gr_name};")
        for _attempt in range(3):
            self.port = free_port()
            conf = workdir / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=workdir, host=LOCALHOST, port=self.port,
                                              user=user))
            with open(workdir / "stderr.log", "ab") as err:
                self.proc = subprocess.Popen([nginx, "-p", str(workdir), "-c", str(conf),
                                              "-e", "stderr"], stdout=err, stderr=err,
                                             stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if port_open(self.port):
                    return
                time.sleep(0.02)
            self.stop()  # the port was taken in the meantime, or nginx failed: retry
        raise RuntimeError(f"nginx did not start\n{tail(workdir / 'stderr.log')}\n"
                           f"{self.log_tail()}")

    @property
    def address(self):
        return f"{LOCALHOST}:{self.port}"

    def uploaded(self, name):
        return (self.dir / "docroot" / "uploads" / name).read_bytes()

    def access_entries(self):
        """The access log as dicts, one per request."""
        entries = []
        try:
            text = self.access_log_path.read_text()
        except FileNotFoundError:
            return entries
        for line in text.splitlines():
            f = line.split()
            entries.append({"connection": int(f[0]), "connection_requests": int(f[1]),
                            "request_length": int(f[2]), "status": int(f[3]), "method": f[4],
                            "uri": f[5], "body_bytes_sent": int(f[6])})
        return entries


class Switchyard(Process):
    """The proxy under test, from a config dict.

    The dict has the shape of the YAML file; what it leaves out is filled in: admin on a free
    port, workers 2, an access log file, and a free port for each listener without an address.
    It is written as JSON, which YAML reads as it is.
    """

    def __init__(self, workdir, config, name="switchyard"):
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "switchyard.yaml"
        self.log_path = self.dir / "switchyard.log"
        self.access_log_path = self.dir / "access.log"
        self._ports = {}
        self.admin_port = None
        # The ports complete() picked with free_port(), which start() may pick again (below).
        self._picked = set()
        self._admin_picked = False
        self.write_config(config)

    # --- config

    def complete(self, config):
        cfg = copy.deepcopy(config)
        if "admin" not in cfg:
            if not self.admin_port:
                self.admin_port, self._admin_picked = free_port(), True
            cfg["admin"] = {"address": f"{LOCALHOST}:{self.admin_port}"}
        else:
            self.admin_port = int(cfg["admin"]["address"].rsplit(":", 1)[1])
            self._admin_picked = False
        cfg.setdefault("workers", 2)
        cfg.setdefault("access_log", {"path": str(self.access_log_path)})
        # Crash records and kept module copies of this proxy alone, not the per-user default
        # every other test would share.
        cfg.setdefault("state_dir", str(self.dir / "state"))
        for listener in cfg.get("listeners", []):
            if "address" not in listener:
                port = self._ports.get(listener["name"])
                if not port:
                    port = free_port()
                    self._picked.add(listener["name"])
                listener["address"] = f"{LOCALHOST}:{port}"
            else:
                self._picked.discard(listener["name"])
            self._ports[listener["name"]] = int(listener["address"].rsplit(":", 1)[1])
        return cfg

    def write_config(self, config):
        """Writes CONFIG (completed) to the config file, atomically. Listeners keep the port
        they had under the same name."""
        self._source = copy.deepcopy(config)
        self.config = self.complete(config)
        self.write_config_text(json.dumps(self.config, indent=2) + "\n")

    def write_config_text(self, text):
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def port(self, listener):
        return self._ports[listener]

    @property
    def admin_url(self):
        return f"http://{LOCALHOST}:{self.admin_port}"

    # --- process

    # free_port() only says that nobody listened on a port a moment ago: on a shared machine
    # another process can take it before the proxy binds it, and the proxy then exits with
    # "Address already in use". start() then picks new ports for what it picked itself and
    # starts the proxy again, this many times at most, and says so on stderr.
    PORT_RETRIES = 3

    def start(self, wait_ready=True, extra_args=()):
        assert BINARY.exists(), f"{BINARY} does not exist: build it first (make build)"
        for attempt in range(self.PORT_RETRIES + 1):
            logged = self.log_path.stat().st_size if self.log_path.exists() else 0
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen([str(BINARY), "-c", str(self.config_path),
                                              *extra_args], stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.dir)
            if not wait_ready:
                return self
            try:
                self.wait_ready()
                return self
            except RuntimeError:
                if attempt == self.PORT_RETRIES or not self._lost_a_port(logged):
                    raise
            print(f"harness: {self.name} lost a port to another process before binding it "
                  f"(attempt {attempt + 1} of {self.PORT_RETRIES + 1}); starting it again on "
                  f"new ports", file=sys.stderr)
            for name in self._picked:
                del self._ports[name]
            if self._admin_picked:
                self.admin_port = None
            self.write_config(self._source)
        raise AssertionError("unreachable")

    def _lost_a_port(self, logged):
        """Whether the run that wrote the log from offset LOGGED on failed to bind a port that
        this harness picked (a port the test chose itself is the test's business)."""
        with open(self.log_path, "rb") as f:
            f.seek(logged)
            text = f.read().decode(errors="replace")
        ours = {self._ports[n] for n in self._picked} | (
            {self.admin_port} if self._admin_picked else set())
        return any(f":{port}: Address already in use" in text for port in ours)

    def wait_ready(self, timeout=20):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"switchyard exited with {self.proc.returncode} before "
                                   f"it was ready\n{self.log_tail()}")
            return self.admin("GET", "/ready").status == 200

        until(ready, timeout, what=f"{self.name} GET /ready -> 200", ignore=(OSError,))

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{self.name} still running after {timeout}s") from e

    def memory_kib(self, field="VmHWM"):
        return proc_status_kib(self.pid, field)

    # --- admin API

    def admin(self, method, path, body=None, timeout=10):
        return request(self.admin_port, method, path, body=body, timeout=timeout)

    def stats(self):
        """GET /stats as a dict; values are ints where they parse as ints."""
        resp = self.admin("GET", "/stats")
        assert resp.status == 200, resp
        return parse_stats(resp.text())

    def stat(self, name):
        return self.stats().get(name)

    def reload(self):
        return self.admin("POST", "/reload")

    # --- access log

    def access_entries(self):
        entries = []
        try:
            text = self.access_log_path.read_text()
        except FileNotFoundError:
            return entries
        for line in text.splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                pass
        return entries

    def wait_access_entry(self, predicate, timeout=10, what="an access log line"):
        """The first access log entry for which PREDICATE holds, once it has been written."""
        def find():
            return next((e for e in self.access_entries() if predicate(e)), None)

        return until(find, timeout, what=what)


def run_switchyard(args, timeout=30, cwd=None):
    """Runs the binary to completion (for --validate, --version); returns CompletedProcess with
    stdout and stderr as text."""
    assert BINARY.exists(), f"{BINARY} does not exist: build it first (make build)"
    out = subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=timeout,
                         cwd=cwd, stdin=subprocess.DEVNULL)
    keep_ubsan_reports(out.stderr, f"{BINARY} {' '.join(map(str, args))}")
    return out


# ------------------------------------------------------------------------------------------
# Sanitizer runs (make test-asan)

# The folder ASan and LSan write their reports to (log_path), one file per process that
# reported; set by `make test-asan` only. conftest.py fails the test during which one appears.
SANITIZER_REPORTS = os.environ.get("SY_SANITIZER_REPORTS")
# How much slower the processes under test are than the Release build they were tuned on.
# Under `make test-asan` (ASan+UBSan, the proxy and every module instrumented) a request takes
# several times the CPU, and loading a module several times longer (a swap of ext_authz takes
# about a second there), so a timeout a test hands the proxy as a budget, one that must NOT fire
# for the test to mean anything (an authorization check held across three hot swaps, an
# ext_proc message under load), is multiplied by TIME_SCALE through budget(). A timeout that is
# what a test is about (a held call that must time out) is written as it is and not scaled, and
# no assertion changes. 1 on the Release build; SY_TIME_SCALE overrides it either way.
TIME_SCALE = float(os.environ.get("SY_TIME_SCALE") or (5 if SANITIZER_REPORTS else 1))


def budget(seconds):
    """SECONDS times TIME_SCALE as a config duration ("2s"): for a timeout that must not fire."""
    return f"{seconds * TIME_SCALE:g}s"


# GCC's UBSan, next to ASan, ignores log_path and writes to stderr; its reports start so.
UBSAN_REPORT = re.compile(rb"^\S+:\d+:\d+: runtime error: .*$", re.M)


def ubsan_reports(data):
    """The first line of each UBSan report in DATA (bytes)."""
    return [m.group().decode(errors="replace") for m in UBSAN_REPORT.finditer(data)]


def keep_ubsan_reports(text, source):
    """Under `make test-asan`, files the UBSan reports in TEXT, output of SOURCE that a test
    captured and may not look at, with the other reports."""
    found = ubsan_reports(text.encode(errors="replace")) if SANITIZER_REPORTS else []
    if found:
        with tempfile.NamedTemporaryFile("w", dir=SANITIZER_REPORTS, prefix="ubsan.",
                                         delete=False) as f:
            f.write(f"UBSan, in the output of {source}:\n" + "\n".join(found) + "\n")


# ------------------------------------------------------------------------------------------
# Config pieces


def endpoint(port):
    return f"{LOCALHOST}:{port}"


def cluster(name, *ports, **extra):
    return {"name": name, "endpoints": [endpoint(p) for p in ports], **extra}


def to_cluster(name, match, cluster_name, **extra):
    return {"name": name, "match": match, "cluster": cluster_name, **extra}


def direct(name, match, status=200, body="", headers=None):
    resp = {"status": status, "body": body}
    if headers:
        resp["headers"] = [{"name": n, "value": v} for n, v in headers]
    return {"name": name, "match": match, "direct_response": resp}


def proxy_all(upstream_port, listener_extra=None, cluster_extra=None, routes_before=()):
    """One listener `ingress` that sends everything to cluster `backend` at UPSTREAM_PORT."""
    return {
        "listeners": [{
            "name": "ingress",
            "routes": [*routes_before, to_cluster("all", {"prefix": "/"}, "backend")],
            **(listener_extra or {}),
        }],
        "clusters": [cluster("backend", upstream_port, **(cluster_extra or {}))],
    }
