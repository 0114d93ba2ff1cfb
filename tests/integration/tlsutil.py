"""What the TLS tests share: a throw-away PKI made with the openssl CLI, `openssl s_client` run
and parsed, curl over TLS, and nginx as a TLS (and HTTP/2) origin.

The PKI (Certs, made once per session by the `certs` fixture in the test files):

    root CA ("Switchyard Test Root")
      +-- intermediate CA ("Switchyard Test Intermediate")
      |     +-- a.test            SAN DNS:a.test; a_chain = leaf + intermediate
      +-- *.b.test                SAN DNS:*.b.test, DNS:b.test
      +-- x.b.test (exact)        SAN DNS:x.b.test, O=Exact: an exact name beside the wildcard
      +-- cn-only.test            no SAN: the name is in the CN alone
      +-- client "client-one"     clientAuth
    other CA ("Other Test Root")
      +-- a.test (other)          the right name from the wrong CA
      +-- client "intruder"       clientAuth

Keys are EC P-256: quick to make. Every file is PEM.
"""
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import LOCALHOST, free_port, port_open, tail, until


def openssl(*args, cwd=None, input=None):
    out = subprocess.run(["openssl", *map(str, args)], capture_output=True, cwd=cwd,
                         input=input, timeout=60)
    assert out.returncode == 0, (f"openssl {' '.join(map(str, args))} failed:\n"
                                 f"{out.stderr.decode(errors='replace')}")
    return out.stdout.decode(errors="replace")


CA_EXT = """\
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""
INTERMEDIATE_EXT = CA_EXT + "authorityKeyIdentifier = keyid:always\n"
LEAF_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = {usage}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


class Issued:
    """A certificate and its key; `chain` is the file to configure (leaf, then intermediates)."""

    def __init__(self, cert, key, chain=None):
        self.cert = Path(cert)
        self.key = Path(key)
        self.chain = Path(chain or cert)

    def pem(self):
        return self.cert.read_text()


_serial = [int(time.time() * 1000) % 10**9]


def _next_serial():
    _serial[0] += 1
    return _serial[0]


def make_key(path):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)


def issue(directory, name, cn, ext, issuer=None, org="Switchyard tests", days=30):
    """Makes NAME.key and NAME.pem in DIRECTORY: CN, extensions EXT (text), signed by ISSUER
    (an Issued) or self-signed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    csr, extfile = directory / f"{name}.csr", directory / f"{name}.ext"
    make_key(key)
    extfile.write_text(ext)
    openssl("req", "-new", "-key", key, "-subj", f"/O={org}/CN={cn}", "-out", csr)
    sign = (["-CA", issuer.cert, "-CAkey", issuer.key] if issuer else ["-signkey", key])
    openssl("x509", "-req", "-in", csr, "-days", days, "-sha256", "-set_serial", _next_serial(),
            "-extfile", extfile, "-out", cert, *sign)
    csr.unlink()
    extfile.unlink()
    return Issued(cert, key)


def issue_server(directory, name, sans, issuer, intermediates=(), cn=None, org=None):
    """A server certificate for the DNS names SANS; its chain file holds the INTERMEDIATES."""
    ext = LEAF_EXT.format(usage="serverAuth") + "subjectAltName = " + ", ".join(
        f"DNS:{s}" for s in sans) + "\n"
    leaf = issue(directory, name, cn or sans[0], ext, issuer, org=org or "Switchyard tests")
    chain = Path(directory) / f"{name}-chain.pem"
    chain.write_text(leaf.pem() + "".join(i.pem() for i in intermediates))
    return Issued(leaf.cert, leaf.key, chain)


def issue_client(directory, name, issuer):
    return issue(directory, name, name, LEAF_EXT.format(usage="clientAuth"), issuer)


class Certs:
    def __init__(self, directory):
        d = Path(directory)
        self.dir = d
        self.root = issue(d, "root", "Switchyard Test Root", CA_EXT)
        self.intermediate = issue(d, "intermediate", "Switchyard Test Intermediate",
                                  INTERMEDIATE_EXT, self.root)
        self.a = issue_server(d, "a.test", ["a.test"], self.intermediate, [self.intermediate])
        self.b = issue_server(d, "star.b.test", ["*.b.test", "b.test"], self.root)
        self.x_b = issue_server(d, "x.b.test", ["x.b.test"], self.root, org="Exact")
        self.cn_only = issue(d, "cn-only.test", "cn-only.test",
                             LEAF_EXT.format(usage="serverAuth"), self.root)
        self.other_root = issue(d, "other-root", "Other Test Root", CA_EXT)
        self.a_other = issue_server(d, "a.test-other", ["a.test"], self.other_root)
        self.client = issue_client(d, "client-one", self.root)
        self.intruder = issue_client(d, "intruder", self.other_root)

    @property
    def ca(self):
        return self.root.cert

    @property
    def other_ca(self):
        return self.other_root.cert

    def new_a(self, name, org):
        """Another a.test certificate (same chain of trust), told apart by its O=."""
        return issue_server(self.dir, name, ["a.test"], self.intermediate, [self.intermediate],
                            org=org)


def cert_info(pem):
    """{"subject": "CN=...,O=...", "cn": ..., "org": ..., "sans": [...], "serial": ...} of the
    first certificate in PEM (text)."""
    text = openssl("x509", "-noout", "-subject", "-serial", "-ext", "subjectAltName",
                   "-nameopt", "RFC2253", input=pem.encode())
    subject = re.search(r"^subject=(.*)$", text, re.M).group(1).strip()
    serial = re.search(r"^serial=(.*)$", text, re.M).group(1).strip()
    sans = re.findall(r"DNS:([^,\s]+)", text)
    cn = re.search(r"CN=([^,]+)", subject)
    org = re.search(r"O=([^,]+)", subject)
    return {"subject": subject, "cn": cn and cn.group(1), "org": org and org.group(1),
            "sans": sans, "serial": serial}


# ------------------------------------------------------------------------------------------
# openssl s_client


class Handshake:
    """What `openssl s_client` reported."""

    def __init__(self, returncode, output):
        self.returncode = returncode
        self.output = output
        m = re.search(r"^(New|Reused), (\S+), Cipher is (\S+)", output, re.M)
        self.session = m.group(1) if m else None
        self.version = m.group(2).rstrip(",") if m else None
        self.cipher = m.group(3) if m else None
        self.ok = bool(m) and self.cipher != "(NONE)" and self.version != "(NONE)"
        self.reused = self.session == "Reused"
        m = re.search(r"^ALPN protocol: (\S+)", output, re.M)
        self.alpn = m.group(1) if m else None
        certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", output,
                           re.S)
        self.cert_pems = certs
        self.cert = cert_info(certs[0] + "\n") if certs else None
        # The "Certificate chain" section: " 0 s:CN = a.test" lines, one per certificate sent.
        self.chain_subjects = re.findall(r"^\s*\d+ s:(.*)$", output, re.M)
        m = re.search(r"^Verify return code: (\d+)", output, re.M)
        self.verify_code = int(m.group(1)) if m else None

    def __repr__(self):
        return (f"<Handshake ok={self.ok} {self.version} alpn={self.alpn} "
                f"cert={self.cert and self.cert['subject']}>\n{self.output[-3000:]}")


def s_client(port, servername=None, alpn=None, args=(), send=None, timeout=20):
    """Runs `openssl s_client` against 127.0.0.1:PORT. SERVERNAME None sends no SNI. With SEND
    (bytes, e.g. an HTTP request with Connection: close) it writes that and reads until the
    server closes (-ign_eof), which also collects TLS 1.3 session tickets; without, it closes
    right after the handshake."""
    cmd = ["openssl", "s_client", "-connect", f"{LOCALHOST}:{port}", "-showcerts"]
    cmd += ["-servername", servername] if servername else ["-noservername"]
    if alpn:
        cmd += ["-alpn", alpn]
    if send is not None:
        cmd += ["-ign_eof"]
    cmd += [str(a) for a in args]
    out = subprocess.run(cmd, input=send if send is not None else b"", capture_output=True,
                         timeout=timeout)
    return Handshake(out.returncode, (out.stdout + b"\n" + out.stderr).decode(errors="replace"))


def http_request_bytes(path="/", host="a.test"):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


# ------------------------------------------------------------------------------------------
# curl


class CurlResult:
    def __init__(self, out):
        self.returncode = out.returncode
        self.stderr = out.stderr.decode(errors="replace")
        body, _, meta = out.stdout.rpartition(b"\n@@")
        self.body = body
        fields = dict(f.split("=", 1) for f in meta.decode().split() if "=" in f)
        self.status = int(fields.get("code", 0) or 0)
        self.http_version = fields.get("version", "")
        self.ok = out.returncode == 0

    def __repr__(self):
        return (f"<curl rc={self.returncode} {self.status} HTTP/{self.http_version} "
                f"{self.body[:300]!r} {self.stderr[-500:]}>")


def curl(url, args=(), resolve=None, timeout=30):
    """curl -sS URL with ARGS; RESOLVE is [(host, port)] to send to 127.0.0.1. The result has
    the body (unless ARGS has -o FILE), the status and the HTTP version curl used."""
    cmd = ["curl", "-sS", "--max-time", str(timeout),
           "-w", "\n@@code=%{http_code} version=%{http_version}"]
    if "-o" not in args:
        cmd += ["-o", "-"]
    for host, port in resolve or ():
        cmd += ["--resolve", f"{host}:{port}:{LOCALHOST}"]
    cmd += [str(a) for a in args] + [url]
    return CurlResult(subprocess.run(cmd, capture_output=True, timeout=timeout + 10))


# ------------------------------------------------------------------------------------------
# nginx as a TLS / HTTP/2 origin


NGINX_TLS_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
  log_format sy '$connection $server_protocol "$ssl_protocol" "$ssl_server_name" '
                '"$ssl_client_verify" $status $request_method $request_uri $request_length '
                '$body_bytes_sent';
  access_log {dir}/access.log sy;
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  default_type application/octet-stream;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_max_body_size 0;
  http2_max_concurrent_streams 256;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_client_certificate {ca};
  ssl_verify_client optional;
  ssl_verify_depth 3;

  server {{
    listen {host}:{tls_port} ssl default_server;
    listen {host}:{h2_port} ssl http2 default_server;
    listen {host}:{h2c_port} http2 default_server;
    listen {host}:{plain_port} default_server;
    server_name a.test;
    ssl_certificate {a_cert};
    ssl_certificate_key {a_key};
{locations}
  }}
  server {{
    listen {host}:{h2c_short_port} http2;
    keepalive_requests 5;
{locations}
  }}
  server {{
    listen {host}:{tls_port} ssl;
    listen {host}:{h2_port} ssl http2;
    server_name *.b.test;
    ssl_certificate {b_cert};
    ssl_certificate_key {b_key};
{locations}
  }}
}}
"""

NGINX_INFO = ("sni=$ssl_server_name proto=$server_protocol tls=$ssl_protocol "
              "client=$ssl_client_verify dn=$ssl_client_s_dn host=$host "
              "connection=[$http_connection] keep_alive=[$http_keep_alive] te=[$http_te] "
              "x_hop=[$http_x_hop] cookie=[$http_cookie]")
NGINX_LOCATIONS = """\
    root {dir}/docroot;
    location = /small {{
      default_type text/plain;
      return 200 "hello from nginx\\n";
    }}
    location = /info {{
      default_type text/plain;
      return 200 "{info}\\n";
    }}
    location /uploads/ {{
      dav_methods PUT;
      create_full_put_path on;
    }}
    location / {{ }}
"""


class NginxTls(harness.Process):
    """nginx on five ports, all serving the same locations:

        tls_port    TLS, HTTP/1.1: a.test (default, chain with the intermediate) and *.b.test
                    by SNI; client certificates from the test root are asked for (optional)
        h2_port     the same, HTTP/2 by ALPN (and http/1.1)
        h2c_port    HTTP/2 cleartext, prior knowledge only
        h2c_short_port  the same, but a connection serves 5 requests, then GOAWAY
        plain_port  HTTP/1.1 cleartext

    /small   "hello from nginx\\n"
    /info    "sni=... proto=HTTP/1.1|HTTP/2.0 tls=TLSv1.3 client=SUCCESS|NONE|FAILED:... dn=...
              host=... connection=[...] keep_alive=[...] te=[...] x_hop=[...] cookie=[...]\\n"
    /big     100 MiB of zeros; /file4m 4 MiB of random bytes (self.files["file4m"])
    PUT /uploads/NAME stores the body (see uploaded(NAME))
    The access log (access_entries()) has, per request: connection, protocol, tls version, sni,
    client verification, status, method, uri, request length, body bytes sent.
    """

    BIG_SIZE = 100 * 1024 * 1024

    def __init__(self, workdir, certs, server_cert=None):
        self.name = "nginx-tls"
        self.dir = Path(workdir)
        docroot = self.dir / "docroot"
        for d in (docroot, self.dir / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        self.files = {"file4m": os.urandom(4 * 1024 * 1024)}
        (docroot / "file4m").write_bytes(self.files["file4m"])
        with open(docroot / "big", "wb") as f:
            f.truncate(self.BIG_SIZE)
        self.log_path = self.dir / "error.log"
        self.access_log_path = self.dir / "access.log"
        a = server_cert or certs.a
        nginx = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        assert nginx, "nginx is not installed (tools/install-deps installs it)"
        user = ""
        if os.geteuid() == 0:
            import grp
            import pwd
            user = (f"user {pwd.getpwuid(os.getuid()).pw_name} "
                    f"{grp.getgrgid(os.getgid()).gr_name};")
        for _attempt in range(3):
            ports = [free_port() for _ in range(5)]
            if len(set(ports)) < 5:
                continue
            (self.tls_port, self.h2_port, self.h2c_port, self.plain_port,
             self.h2c_short_port) = ports
            conf = self.dir / "nginx.conf"
            conf.write_text(NGINX_TLS_CONF.format(
                dir=self.dir, host=LOCALHOST, user=user, ca=certs.ca, tls_port=self.tls_port,
                h2_port=self.h2_port, h2c_port=self.h2c_port, plain_port=self.plain_port,
                h2c_short_port=self.h2c_short_port,
                a_cert=a.chain, a_key=a.key, b_cert=certs.b.chain, b_key=certs.b.key,
                locations=NGINX_LOCATIONS.format(dir=self.dir, info=NGINX_INFO)))
            with open(self.dir / "stderr.log", "ab") as err:
                self.proc = subprocess.Popen([nginx, "-p", str(self.dir), "-c", str(conf),
                                              "-e", "stderr"], stdout=err, stderr=err,
                                             stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if all(port_open(p) for p in ports):
                    return
                time.sleep(0.02)
            self.stop()
        raise RuntimeError(f"nginx did not start\n{tail(self.dir / 'stderr.log')}\n"
                           f"{self.log_tail()}")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        return super().stop(sig, timeout)

    def uploaded(self, name):
        return (self.dir / "docroot" / "uploads" / name).read_bytes()

    def wait_entries(self, count, predicate=lambda e: True, timeout=10):
        """The access log entries for which PREDICATE holds, once there are COUNT of them
        (nginx writes a line just after its response, so a client may be ahead of it)."""
        def matching():
            found = [e for e in self.access_entries() if predicate(e)]
            return found if len(found) >= count else None

        return until(matching, timeout, what=f"{count} nginx access log entries")

    def access_entries(self):
        entries = []
        try:
            text = self.access_log_path.read_text()
        except FileNotFoundError:
            return entries
        pattern = re.compile(r'(\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" (\d+) (\S+) (\S+) '
                             r'(\d+) (\d+)')
        for line in text.splitlines():
            m = pattern.match(line)
            if not m:
                continue
            f = m.groups()
            entries.append({"connection": int(f[0]), "protocol": f[1], "tls": f[2],
                            "sni": f[3], "client_verify": f[4], "status": int(f[5]),
                            "method": f[6], "uri": f[7], "request_length": int(f[8]),
                            "body_bytes_sent": int(f[9])})
        return entries


# ------------------------------------------------------------------------------------------
# Fixtures, for the test files to import: `from tlsutil import certs, nginx_tls`


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """The test PKI (Certs), made once."""
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def nginx_tls(tmp_path, certs, peers):
    """NginxTls, stopped at teardown."""
    n = NginxTls(tmp_path / "nginx-tls", certs)
    peers.append(n)
    yield n
    n.stop()
