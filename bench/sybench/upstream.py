"""The upstream: nginx from bench/configs/upstream-nginx.conf on the load core, and its request
counter, read from stub_status. It also holds the bench's TLS certificate (sybench/tls.py),
since its direct TLS listener needs it before it starts."""
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

from . import procs
from .render import render
from .systems import CONFIGS, nginx_user_line, which
from .tls import make_certificate
from .extproc import Processor

SMALL_BODY = b"hello from the switchyard bench\n"
BODY_16K_SIZE = 16 * 1024


def _check_ok():
    """One gRPC message (5-byte prefix + protobuf) holding envoy.service.auth.v3.CheckResponse
    {ok_response {response_headers_to_add {header {key: "x-authz" value: "ok"}}}}: status unset
    (code 0) allows; the header shows the check took place. Encoded by hand (the bench venv has
    no protobuf): every field here is length-delimited, tag = field number << 3 | 2."""
    def field(number, payload):
        return bytes([number << 3 | 2, len(payload)]) + payload
    header_value = field(1, b"x-authz") + field(2, b"ok")
    ok_response = field(6, field(1, header_value))   # response_headers_to_add
    message = field(3, ok_response)                   # CheckResponse.ok_response
    return b"\0" + len(message).to_bytes(4, "big") + message


CHECK_OK = _check_ok()


class Upstream:
    def __init__(self, workdir, cores):
        self.dir = Path(workdir) / "upstream"
        (self.dir / "docroot").mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        # Fixed bytes (a seeded generator), so a body can be checked byte for byte.
        import random
        rnd = random.Random(16384)
        self.body_16k = bytes(rnd.getrandbits(8) for _ in range(BODY_16K_SIZE))
        (self.dir / "docroot" / "16k").write_bytes(self.body_16k)
        (self.dir / "docroot" / "grpc-check-ok").write_bytes(CHECK_OK)
        # /ext_proc answers the /small body (and echoes x-ext-proc: see upstream-nginx.conf).
        self.bodies = {"/small": SMALL_BODY, "/16k": self.body_16k, "/ext_proc": SMALL_BODY}
        # Upstream requests per client request in the current run (see Scenario.side_requests).
        self.per_request = 1
        self.binary = which("nginx")
        if not self.binary:
            raise RuntimeError("nginx is not installed (bench/setup installs it)")
        self.log_path = self.dir / "upstream.log"
        # The certificate every TLS entrant serves; without it the TLS scenario says why.
        try:
            self.tls = make_certificate(Path(workdir) / "tls")
            self.tls_unavailable = None
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            self.tls, self.tls_unavailable = None, f"no bench certificate: {e}"
        for _attempt in range(3):
            # PORT: HTTP/1.1, what the proxies use; the others are the direct entrant's.
            self.port, h2c, tls = procs.free_port(), procs.free_port(), procs.free_port()
            self.ports = {"http1": self.port, "h2c": h2c, "tls": tls if self.tls else None}
            tls_listen = "" if not self.tls else (
                f"listen 127.0.0.1:{tls} ssl http2 backlog=4096;\n"
                f"ssl_certificate {self.tls.cert};\nssl_certificate_key {self.tls.key};\n"
                f"ssl_protocols TLSv1.3;")
            conf = self.dir / "upstream-nginx.conf"
            conf.write_text(render((CONFIGS / "upstream-nginx.conf").read_text(),
                                   {"DIR": self.dir, "PORT": self.port, "H2C_PORT": h2c,
                                    "TLS_LISTEN": tls_listen, "USER": nginx_user_line()}))
            self.proc = procs.spawn([self.binary, "-p", str(self.dir), "-c", str(conf), "-e",
                                     str(self.dir / "stderr.log")], self.log_path,
                                    cores=cores.load, cwd=self.dir)
            try:
                procs.until(lambda: self.proc.poll() is not None or procs.port_open(self.port),
                            10, "the upstream nginx to listen")
            except TimeoutError:
                pass
            if self.proc.poll() is None and all(procs.port_open(p) for p in self.ports.values()
                                                 if p):
                self.extproc = Processor(self.dir, cores)
                return
            procs.stop(self.proc)
        raise RuntimeError(f"the upstream nginx did not start: see {self.dir}")

    def version(self):
        return None

    def pids(self):
        return procs.tree(self.proc.pid) if self.proc.poll() is None else []

    def _requests(self):
        with urllib.request.urlopen(f"http://{procs.LOCALHOST}:{self.port}/__status",
                                    timeout=5) as r:
            text = r.read().decode()
        # "server accepts handled requests\n A H R"
        nums = re.search(r"\n\s*(\d+)\s+(\d+)\s+(\d+)", text)
        return int(nums.group(3))

    def counter(self):
        """A mark to count requests from: the number of requests served so far. Every status
        query is itself a request; Counter.since() takes them out."""
        return Counter(self)

    def stop(self):
        procs.stop(self.proc)
        if getattr(self, "extproc", None):
            self.extproc.stop()


class Counter:
    def __init__(self, upstream):
        self.up = upstream
        # The mark waits for the count to stop moving too: requests of the warm-up (or of the
        # previous run) that a proxy still had in flight must not count in this run.
        self.start = self._settled()  # includes the last query

    def _settled(self, settle_timeout=5.0):
        """The upstream's count once only our own queries move it; the last query included.
        Returns (count, queries made)."""
        queries = 0
        last = None
        deadline = time.monotonic() + settle_timeout
        while True:
            value = self.up._requests()
            queries += 1
            if (last is not None and value == last + 1) or time.monotonic() > deadline:
                return value, queries
            last = value
            time.sleep(0.05)

    def since(self, settle_timeout=5.0):
        """Requests that reached the upstream since the mark, once the count has stopped moving
        (requests a proxy still had in flight when the client stopped are let through first)."""
        start, _ = self.start
        value, queries = self._settled(settle_timeout)
        # With a side request per request, one still in flight has been counted half: floor.
        return (value - start - queries) // self.up.per_request
