"""HTTP/2 downstream and upstream: h2c with prior knowledge, HTTP/1 and HTTP/2 on one port, h2
over TLS by ALPN; curl, nghttp and h2load through the proxy; many streams on one connection;
large bodies both ways across h2 and HTTP/1.1 (and h2 to h2) with bounded memory; flow-control
windows and the SETTINGS advertised; h2 upstreams (cleartext and TLS) multiplexed on few
connections, and left for a new connection after their GOAWAY; trailers, cookies and
connection-specific headers across the protocols; header validation as stream errors;
REFUSED_STREAM beyond max_concurrent_streams; a client's RST_STREAM; stats, access log and
module filters over h2.

Peers: upstream.py and nginx (HTTP/1.1 origins), tlsutil.NginxTls (HTTP/2 origin, cleartext and
TLS), curl, nghttp, h2load, and h2util's clients (the h2 package, and frames by hand).
"""
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import subprocess
import time

import h2.settings
import pytest

import harness
import h2util
from h2util import ErrorCodes, H2Client, RawH2
from harness import cluster, echo_headers, request, stream_payload, to_cluster, until
from modules_util import module_file, module_stat, with_filters
from tlsutil import certs, curl, nginx_tls  # noqa: F401 (fixtures)

MiB = 1024 * 1024
RSS_BUDGET_KIB = 32 * 1024


def h2_config(upstream_port, protocols=("http2",), cluster_extra=None, **listener_extra):
    """One listener `ingress` speaking PROTOCOLS, everything to cluster `backend`."""
    return harness.proxy_all(upstream_port, {"protocols": list(protocols), **listener_extra},
                             cluster_extra)


def h2c(port, path="/", args=()):
    return curl(f"http://127.0.0.1:{port}{path}", ["--http2-prior-knowledge", *args])


def tls_listener_extra(certs):
    return {"tls": {"certificate": str(certs.a.chain), "private_key": str(certs.a.key)}}


# --- curl: prior knowledge, both protocols on one port, ALPN ------------------------------------


def test_h2c_prior_knowledge_with_curl(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port))
    port = sy.port("ingress")
    r = h2c(port, "/echo?q=1", ["-H", "x-custom: one"])
    assert r.ok and r.status == 200 and r.http_version == "2", r
    echo = json.loads(r.body)
    assert echo["method"] == "GET" and echo["path"] == "/echo?q=1"
    assert echo["version"] == "HTTP/1.1"  # upstream.py speaks HTTP/1.1
    assert echo_headers(echo, "host") == [f"127.0.0.1:{port}"], "no Host from :authority"
    assert echo_headers(echo, "x-custom") == ["one"]
    assert echo_headers(echo, "x-forwarded-proto") == ["http"]
    assert len(echo_headers(echo, "x-request-id")) == 1
    assert not [n for n, _ in echo["headers"] if n.startswith(":")], echo["headers"]
    # An [http2] listener does not speak HTTP/1.1.
    r = curl(f"http://127.0.0.1:{port}/echo", ["--http1.1"])
    assert r.status != 200, r
    assert upstream.stats()["requests_total"] == 1


def test_http1_and_http2_on_one_port(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port, ["http1", "http2"]))
    port = sy.port("ingress")
    r = curl(f"http://127.0.0.1:{port}/echo?h1", ["--http1.1"])
    assert r.status == 200 and r.http_version == "1.1", r
    r = h2c(port, "/echo?h2")
    assert r.status == 200 and r.http_version == "2", r
    assert json.loads(r.body)["path"] == "/echo?h2"
    assert request(port, "GET", "/echo?h1-again").json()["path"] == "/echo?h1-again"
    with H2Client(port) as c:
        for i in range(3):
            resp = c.get(f"/echo?h2-{i}")
            assert resp.status == 200 and resp.json()["path"] == f"/echo?h2-{i}", resp
    until(lambda: sy.stat("listener.ingress.rq_http2") == 4, what="rq_http2 == 4")
    stats = sy.stats()
    assert stats["listener.ingress.rq_http1"] == 2, stats
    assert stats["listener.ingress.cx_http2"] == 2 and stats["listener.ingress.cx_http1"] == 2


def test_h2_over_tls_by_alpn_with_curl(certs, upstream, switchyard):
    sy = switchyard(h2_config(upstream.port, ["http1", "http2"], **tls_listener_extra(certs)))
    port = sy.port("ingress")
    args = ["--cacert", str(certs.ca)]
    resolve = [("a.test", port)]
    r = curl(f"https://a.test:{port}/echo?tls-h2", ["--http2", *args], resolve=resolve)
    assert r.status == 200 and r.http_version == "2", r
    echo = json.loads(r.body)
    assert echo_headers(echo, "x-forwarded-proto") == ["https"]
    assert echo_headers(echo, "host") == [f"a.test:{port}"]
    r = curl(f"https://a.test:{port}/echo?tls-h1", ["--http1.1", *args], resolve=resolve)
    assert r.status == 200 and r.http_version == "1.1", r
    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?tls-h2")
    assert e["protocol"] == "HTTP/2" and e["tls_version"].startswith("TLSv1."), e


# --- nghttp and h2load --------------------------------------------------------------------


def test_nghttp_get_and_post(upstream, switchyard, tmp_path):
    sy = switchyard(h2_config(upstream.port))
    base = f"http://127.0.0.1:{sy.port('ingress')}"
    out = subprocess.run(["nghttp", "-nv", f"{base}/echo?nghttp"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", out.stdout), out.stdout
    assert re.search(r"recv DATA frame .*\n\s*; END_STREAM", out.stdout), out.stdout
    assert "recv GOAWAY" not in out.stdout, out.stdout

    data = os.urandom(3 * MiB + 5)
    body = tmp_path / "post.bin"
    body.write_bytes(data)
    out = subprocess.run(["nghttp", "-d", str(body), f"{base}/upload"], capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["length"] == len(data) and got["sha256"] == harness.sha256(data)
    out = subprocess.run(["nghttp", "-nv", "-d", str(body), f"{base}/echo?post"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and re.search(r":status: 200", out.stdout), out.stdout[-3000:]


def h2load(url, *args, timeout=120):
    out = subprocess.run(["h2load", *map(str, args), url], capture_output=True, text=True,
                         timeout=timeout)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    assert m, text
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    return [int(x) for x in m.groups()], [int(x) for x in codes.groups()], text


def test_h2load_through_the_proxy(nginx, switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "protocols": ["http2"],
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx.port)]})
    counts, codes, text = h2load(f"http://127.0.0.1:{sy.port('ingress')}/small",
                                 "-n", 2000, "-c", 4, "-m", 10)
    assert counts == [2000, 2000, 2000, 2000, 0, 0, 0], text
    assert codes == [2000, 0, 0, 0], text
    until(lambda: sy.stat("listener.ingress.rq_http2") == 2000, what="rq_http2 == 2000")
    assert sy.stat("listener.ingress.cx_http2") == 4


def test_h2load_over_tls(certs, nginx, switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "protocols": ["http2"],
                                    **tls_listener_extra(certs),
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx.port)]})
    counts, codes, text = h2load(f"https://127.0.0.1:{sy.port('ingress')}/small",
                                 "-n", 500, "-c", 2, "-m", 10)
    assert counts == [500, 500, 500, 500, 0, 0, 0], text
    assert codes == [500, 0, 0, 0], text
    assert "Application protocol: h2" in text, text


# --- streams ---------------------------------------------------------------------------------


def test_many_concurrent_streams_on_one_connection(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port))
    with H2Client(sy.port("ingress")) as c:
        # 60 streams held at the upstream at once: they are not served one after another.
        held = [c.request("GET", f"/slow?hold=many&i={i}") for i in range(60)]
        until(lambda: upstream.stats()["held"] == 60, what="60 streams held upstream at once")
        # While those wait, batches of 30 with bodies (60 + 30 stays within the default
        # max_concurrent_streams of 100).
        for batch in range(3):
            bodies = {}
            for i in range(batch * 30, batch * 30 + 30):
                data = os.urandom(i * 1111)
                bodies[c.request("POST", f"/echo?i={i}", body=data)] = (i, data)
            for sid, (i, data) in bodies.items():
                resp = c.response(sid)
                assert resp.status == 200, resp
                echo = resp.json()
                assert echo["path"] == f"/echo?i={i}"
                assert echo["body_length"] == len(data)
                assert echo["body_sha256"] == harness.sha256(data)
        assert upstream.stats()["held"] == 60
        upstream.release("many")
        for sid in held:
            resp = c.response(sid)
            assert resp.status == 200 and resp.body == b"slow\n", resp
        assert c.goaway is None
    until(lambda: sy.stat("listener.ingress.rq_http2") == 150, what="rq_http2 == 150")
    assert sy.stat("listener.ingress.cx_http2") == 1


def test_request_body_with_and_without_content_length(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port))
    data = os.urandom(200_000)
    with H2Client(sy.port("ingress")) as c:
        for headers in ([("content-length", str(len(data)))], []):
            resp = c.get("/echo", "POST", headers, data)
            echo = resp.json()
            assert echo["body_length"] == len(data), (headers, echo)
            assert echo["body_sha256"] == harness.sha256(data)
        resp = c.get("/echo", "POST", [("content-length", "0")], b"")
        assert resp.json()["body_length"] == 0


def test_trailers_both_ways_between_h2_and_h1(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port))
    with H2Client(sy.port("ingress")) as c:
        # Response trailers: upstream.py's chunked trailers become an h2 trailing HEADERS.
        resp = c.get("/trailers")
        assert resp.status == 200 and resp.body == b"hello from trailers\n", resp
        assert resp.trailer("x-checksum") == harness.sha256(resp.body), resp.trailers
        assert resp.trailer("x-extra") == "yes"
        # Request trailers: sent upstream as chunked trailers.
        sid = c.request("POST", "/echo", body=b"with trailers", end_stream=False)
        c.send_trailers(sid, [("x-req-trailer", "t1")])
        echo = c.response(sid).json()
        assert echo["body_sha256"] == harness.sha256(b"with trailers")
        assert ["x-req-trailer", "t1"] in echo["trailers"], echo


def test_small_client_window_is_honoured(upstream, switchyard):
    # The client allows 1000 bytes per stream at a time; the h2 package fails the connection
    # (FlowControlError) if the proxy sends beyond the window, and returns credit as it reads.
    sy = switchyard(h2_config(upstream.port))
    with H2Client(sy.port("ingress"),
                  settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000}) as c:
        resp = c.get("/stream?chunks=40&size=5000", timeout=60)
        assert resp.status == 200 and resp.body == stream_payload(40, 5000)


# --- large bodies, bounded memory ---------------------------------------------------------


@pytest.mark.measures_memory
def test_h2_upload_50mib_to_h1_with_bounded_memory(upstream, switchyard, tmp_path):
    sy = switchyard(h2_config(upstream.port))
    port = sy.port("ingress")
    assert h2c(port, "/echo").status == 200  # warm up
    before = sy.memory_kib("VmHWM")
    data = os.urandom(50 * MiB)
    src = tmp_path / "upload.bin"
    src.write_bytes(data)
    # upstream.py reads slowly: without back-pressure the proxy would hold the difference.
    r = h2c(port, f"/upload?stall_every={8 * MiB}&stall_ms=200", ["-T", str(src)])
    assert r.status == 200, r
    got = json.loads(r.body)
    assert got["length"] == len(data) and got["sha256"] == harness.sha256(data)
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for a 50 MiB h2 upload"


def test_h2_download_100mib_from_h1_with_curl(nginx, switchyard, tmp_path):
    sy = switchyard({"listeners": [{"name": "ingress", "protocols": ["http2"],
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx.port)]})
    dst = tmp_path / "big"
    r = h2c(sy.port("ingress"), "/big", ["-o", str(dst)])
    assert r.status == 200 and r.http_version == "2", r
    assert dst.stat().st_size == harness.Nginx.BIG_SIZE
    digest = hashlib.sha256()
    with open(dst, "rb") as f:
        while piece := f.read(4 * MiB):
            digest.update(piece)
    assert digest.hexdigest() == hashlib.sha256(bytes(harness.Nginx.BIG_SIZE)).hexdigest()


@pytest.mark.measures_memory
def test_h2_slow_reader_download_with_bounded_memory(nginx, switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "protocols": ["http2"],
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx.port)]})
    port = sy.port("ingress")
    with H2Client(port) as c:
        assert c.get("/small").status == 200
        before = sy.memory_kib("VmHWM")
        sid = c.request("GET", "/big", keep_body=False)
        resp = c.streams[sid]
        next_pause = 16 * MiB
        while not resp.done:
            assert c.pump(), f"connection closed mid-body: {resp!r} {c.goaway}"
            if resp.length >= next_pause:
                # A stimulus, not a synchronisation: nginx sends far faster than this reader,
                # so a proxy that ignored the client's windows would have to buffer it.
                next_pause += 16 * MiB
                time.sleep(0.3)
        assert resp.status == 200 and resp.ended, resp
        assert resp.length == harness.Nginx.BIG_SIZE
        assert resp.digest.hexdigest() == hashlib.sha256(bytes(harness.Nginx.BIG_SIZE)).hexdigest()
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB for a slow h2 download"


@pytest.mark.measures_memory
def test_h1_to_h2_upstream_large_bodies_with_bounded_memory(nginx_tls, switchyard):
    sy = switchyard({"listeners": [{"name": "ingress",
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx_tls.h2c_port, protocol="http2")]})
    port = sy.port("ingress")
    assert request(port, "GET", "/small").status == 200
    before = sy.memory_kib("VmHWM")

    digest = hashlib.sha256()
    block = os.urandom(MiB)

    def body():
        for i in range(50):
            piece = block[i:] + block[:i]
            digest.update(piece)
            yield piece

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("PUT", "/uploads/h1-to-h2.bin", body=body(),
                 headers={"Content-Length": str(50 * MiB)})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 201, resp.status
    stored = hashlib.sha256(nginx_tls.uploaded("h1-to-h2.bin")).hexdigest()
    assert stored == digest.hexdigest()

    conn.request("GET", "/big")
    resp = conn.getresponse()
    assert resp.status == 200
    length = 0
    down = hashlib.sha256()
    next_pause = 16 * MiB
    while piece := resp.read(256 * 1024):
        down.update(piece)
        length += len(piece)
        if length >= next_pause:
            next_pause += 16 * MiB
            time.sleep(0.3)  # a slow reader, as in test_bodies.py
    conn.close()
    assert length == nginx_tls.BIG_SIZE
    assert down.hexdigest() == hashlib.sha256(bytes(nginx_tls.BIG_SIZE)).hexdigest()
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB, h1 to h2 upstream"
    assert all(e["protocol"] == "HTTP/2.0" for e in nginx_tls.wait_entries(3))


# --- h2 upstreams ----------------------------------------------------------------------------


def test_h2_to_h2c_upstream_multiplexed(nginx_tls, switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "protocols": ["http2"],
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx_tls.h2c_port, protocol="http2")]})
    with H2Client(sy.port("ingress")) as c:
        resp = c.get("/info")
        assert resp.status == 200 and "proto=HTTP/2.0" in resp.body.decode(), resp
        sids = [c.request("GET", f"/small?i={i}") for i in range(60)]
        for sid in sids:
            resp = c.response(sid)
            assert resp.status == 200 and resp.body == b"hello from nginx\n", resp
        data = os.urandom(4 * MiB)
        resp = c.get("/uploads/h2-to-h2.bin", "PUT", body=data, timeout=60)
        assert resp.status == 201, resp
        assert nginx_tls.uploaded("h2-to-h2.bin") == data
        resp = c.get("/file4m")
        assert resp.body == nginx_tls.files["file4m"]
    entries = nginx_tls.wait_entries(63)
    assert len(entries) == 63 and all(e["protocol"] == "HTTP/2.0" for e in entries), entries
    connections = {e["connection"] for e in entries}
    assert len(connections) <= 2, f"63 streams from one client took {len(connections)} " \
                                  f"upstream connections: not multiplexed"


def test_h1_clients_to_h2_upstream_share_connections(nginx_tls, switchyard):
    sy = switchyard({"listeners": [{"name": "ingress",
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx_tls.h2c_port, protocol="http2")]})
    port = sy.port("ingress")

    def one(i):
        r = request(port, "GET", f"/small?i={i}")
        return r.status, r.body

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(200)))
    assert all(r == (200, b"hello from nginx\n") for r in results), results[:5]
    connections = {e["connection"] for e in nginx_tls.wait_entries(200)}
    # Two workers, each with its own pool: a few connections, not one per client.
    assert len(connections) <= 4, f"200 requests over {len(connections)} h2 connections"


def test_h2_upstream_over_tls_by_alpn(certs, nginx_tls, switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "protocols": ["http1", "http2"],
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx_tls.h2_port, protocol="http2",
                                          tls={"ca": str(certs.ca), "sni": "a.test"})]})
    port = sy.port("ingress")
    # nginx answers 421 to an h2 request whose :authority is not the name its TLS session was
    # made for: the client asks for a.test, as the SNI says.
    with H2Client(port, authority="a.test") as c:
        resp = c.get("/info")
        assert resp.status == 200, resp
        text = resp.body.decode()
        assert "proto=HTTP/2.0" in text and "sni=a.test " in text, text
        assert re.search(r"tls=TLSv1\.[23] ", text), text
    r = request(port, "GET", "/file4m", headers={"Host": "a.test"})
    assert r.status == 200 and r.body == nginx_tls.files["file4m"]


def test_h2_upstream_goaway_moves_to_a_new_connection(nginx_tls, switchyard):
    # nginx on h2c_short_port sends GOAWAY after 5 requests on a connection: the proxy must
    # stop using that connection and open another, without failing a request.
    sy = switchyard({"listeners": [{"name": "ingress", "protocols": ["http1", "http2"],
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx_tls.h2c_short_port, protocol="http2")]})
    port = sy.port("ingress")
    for i in range(12):
        r = request(port, "GET", f"/small?seq={i}")
        assert r.status == 200 and r.body == b"hello from nginx\n", (i, r)
    with H2Client(port) as c:
        for i in range(12):
            resp = c.get(f"/small?h2-seq={i}")
            assert resp.status == 200, (i, resp)
    entries = nginx_tls.wait_entries(24)
    assert len({e["connection"] for e in entries}) >= 5, entries


@pytest.mark.measures_memory
def test_h2_to_h2_large_bodies_with_bounded_memory(nginx_tls, switchyard):
    sy = switchyard({"listeners": [{"name": "ingress", "protocols": ["http2"],
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx_tls.h2c_port, protocol="http2")]})
    with H2Client(sy.port("ingress")) as c:
        assert c.get("/small").status == 200
        before = sy.memory_kib("VmHWM")
        data = os.urandom(50 * MiB)
        resp = c.get("/uploads/h2-h2-big.bin", "PUT", body=data, timeout=120)
        assert resp.status == 201, resp
        assert hashlib.sha256(nginx_tls.uploaded("h2-h2-big.bin")).digest() == \
            hashlib.sha256(data).digest()
        del data
        sid = c.request("GET", "/big", keep_body=False)
        resp = c.streams[sid]
        next_pause = 16 * MiB
        while not resp.done:
            assert c.pump(), f"connection closed mid-body: {resp!r} {c.goaway}"
            if resp.length >= next_pause:
                next_pause += 16 * MiB
                time.sleep(0.3)  # a slow reader: a stimulus, as in test_bodies.py
        assert resp.status == 200 and resp.length == nginx_tls.BIG_SIZE, resp
        assert resp.digest.hexdigest() == hashlib.sha256(bytes(nginx_tls.BIG_SIZE)).hexdigest()
    growth = sy.memory_kib("VmHWM") - before
    assert growth < RSS_BUDGET_KIB, (
        f"peak RSS grew by {growth} KiB for 50 MiB up and 100 MiB down, h2 to h2")


def test_cookie_crumbs_joined_for_http1_upstream(upstream, switchyard):
    # RFC 9113 8.2.3: an h2 client may split Cookie into several fields; HTTP/1.1 gets one.
    sy = switchyard(h2_config(upstream.port))
    with H2Client(sy.port("ingress")) as c:
        echo = c.get("/echo", headers=[("cookie", "a=1"), ("cookie", "b=2"),
                                       ("cookie", "c=3")]).json()
    assert echo_headers(echo, "cookie") == ["a=1; b=2; c=3"], echo["headers"]


def test_connection_specific_headers_not_sent_to_h2_upstream(nginx_tls, switchyard):
    sy = switchyard({"listeners": [{"name": "ingress",
                                    "routes": [to_cluster("n", {"prefix": "/"}, "n")]}],
                     "clusters": [cluster("n", nginx_tls.h2c_port, protocol="http2")]})
    with harness.RawClient(sy.port("ingress")) as c:
        c.send(harness.raw_request("GET", "/info", [
            ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
            ("TE", "gzip"), ("Cookie", "a=1")]))
        resp = c.read_response()
    assert resp.status == 200, resp
    info = resp.text()
    assert "proto=HTTP/2.0" in info, info
    for empty in ("connection=[]", "keep_alive=[]", "te=[]", "x_hop=[]"):
        assert empty in info, info
    assert "cookie=[a=1]" in info and "host=test " in info, info


def test_client_reset_stream_is_dc_and_the_connection_goes_on(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port))
    with H2Client(sy.port("ingress")) as c:
        sid = c.request("GET", "/slow?hold=rst")
        until(lambda: upstream.stats()["held"] == 1, what="the request held upstream")
        c.reset_stream(sid)
        e = sy.wait_access_entry(lambda e: e.get("path") == "/slow?hold=rst")
        assert "DC" in e["response_flags"].split(","), e
        assert e["status"] == 0 and e["protocol"] == "HTTP/2", e
        resp = c.get("/echo?after-reset")
        assert resp.status == 200 and c.goaway is None, resp
    upstream.release("rst")


def test_filters_over_h2_to_h2_upstream(nginx_tls, switchyard):
    module_file("hello")
    module_file("body_transform")
    cfg = with_filters(0, [{"module": "hello", "config": {"name": "x-hello", "value": "h2h2"}},
                           {"module": "body_transform",
                            "config": {"from": "proto=", "to": "PROTOCOL:"}}],
                       protocols=["http2"])
    cfg["clusters"] = [cluster("backend", nginx_tls.h2c_port, protocol="http2")]
    sy = switchyard(cfg)
    with H2Client(sy.port("ingress")) as c:
        resp = c.get("/info")
        assert resp.status == 200 and resp.header("x-hello") == "h2h2", resp
        assert "PROTOCOL:HTTP/2.0" in resp.body.decode(), resp.body
        lengths = resp.all("content-length")
        assert not lengths or lengths == [str(len(resp.body))], resp.headers


def test_async_gate_over_concurrent_h2_streams(upstream, switchyard):
    # Every stream is paused by the filter and resumed from another thread, 32 at once on one
    # connection: each must resume its own stream.
    module_file("async_gate")
    sy = switchyard(with_filters(upstream.port, [{"module": "async_gate"}],
                                 protocols=["http2"]))
    with H2Client(sy.port("ingress")) as c:
        sids = {c.request("GET", f"/echo?i={i}"): i for i in range(32)}
        for sid, i in sids.items():
            resp = c.response(sid)
            assert resp.status == 200, resp
            echo = resp.json()
            assert echo["path"] == f"/echo?i={i}"
            assert echo_headers(echo, "x-gate") == ["thread"], echo["headers"]
    until(lambda: module_stat(sy.stats(), "async_gate", "resumed_by_thread") == 32,
          what="32 streams resumed by the thread")


@pytest.mark.parametrize("listener_extra,expected", [
    ({}, (100, 256 * 1024, 1024 * 1024, 64 * 1024)),
    ({"http2": {"max_concurrent_streams": 7, "initial_stream_window": "64KiB",
                "initial_connection_window": "4MiB", "max_header_list_size": 40000}},
     (7, 64 * 1024, 4 * 1024 * 1024, 40000)),
    ({"limits": {"header_bytes": "32KiB"}}, (100, 256 * 1024, 1024 * 1024, 32 * 1024)),
], ids=["defaults", "configured", "header-bytes"])
def test_h2_settings_advertised(upstream, switchyard, listener_extra, expected):
    streams, stream_window, connection_window, header_list = expected
    sy = switchyard(h2_config(upstream.port, **listener_extra))
    with RawH2(sy.port("ingress")) as raw:
        raw.handshake()
        got = raw.server_settings
        assert got.get(h2util.SettingsFrame.MAX_CONCURRENT_STREAMS) == streams, got
        assert got.get(h2util.SettingsFrame.INITIAL_WINDOW_SIZE, 65535) == stream_window, got
        assert got.get(h2util.SettingsFrame.MAX_HEADER_LIST_SIZE) == header_list, got

        # The connection window starts at 65,535 and is raised by WINDOW_UPDATE on stream 0.
        def window():
            return 65535 + sum(f.window_increment for f in raw.frames
                               if isinstance(f, h2util.WindowUpdateFrame) and f.stream_id == 0)

        raw.wait(lambda: window() >= connection_window, 5,
                 f"a connection window of {connection_window}")
        assert window() == connection_window


# --- header validation -------------------------------------------------------------------------


def bad_requests(port):
    """(name, pseudo-headers, headers) of requests RFC 9113 makes malformed."""
    authority = f"127.0.0.1:{port}"

    def pseudo(method="GET", scheme="http", path="/echo"):
        return [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path)]

    return [
        ("uppercase-name", pseudo(), [("X-Upper", "1")]),
        ("connection", pseudo(), [("connection", "keep-alive")]),
        ("keep-alive", pseudo(), [("keep-alive", "timeout=5")]),
        ("proxy-connection", pseudo(), [("proxy-connection", "keep-alive")]),
        ("transfer-encoding", pseudo(), [("transfer-encoding", "chunked")]),
        ("upgrade", pseudo(), [("upgrade", "websocket")]),
        ("te-gzip", pseudo(), [("te", "gzip")]),
        ("missing-method", [p for p in pseudo() if p[0] != ":method"], []),
        ("missing-path", [p for p in pseudo() if p[0] != ":path"], []),
        ("missing-scheme", [p for p in pseudo() if p[0] != ":scheme"], []),
        ("empty-path", pseudo(path=""), []),
        ("duplicate-path", pseudo() + [(":path", "/other")], []),
        ("duplicate-method", pseudo() + [(":method", "POST")], []),
        ("unknown-pseudo", pseudo() + [(":foo", "bar")], []),
        ("response-pseudo", pseudo() + [(":status", "200")], []),
        ("pseudo-after-regular", pseudo()[:3] + [("x-a", "1"), (":path", "/echo")], []),
        ("space-in-name", pseudo(), [("x bad", "1")]),
        ("newline-in-value", pseudo(), [("x-bad", "a\r\nx-injected: 1")]),
        # Promises 10 bytes, ends the stream with none.
        ("wrong-content-length", pseudo("POST"), [("content-length", "10")]),
    ]


def test_invalid_headers_are_stream_errors(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port))
    port = sy.port("ingress")
    problems = []
    cases = bad_requests(port)
    for name, pseudo, headers in cases:
        with H2Client(port, validate=False) as c:
            sid = c.request(pseudo=pseudo, headers=headers)
            try:
                resp = c.response(sid)
            except AssertionError as e:
                problems.append(f"{name}: {e}")
                continue
            if resp.reset != ErrorCodes.PROTOCOL_ERROR:
                problems.append(f"{name}: not reset with PROTOCOL_ERROR: {resp!r}")
                continue
            # A stream error: the same connection serves the next request.
            try:
                ok = c.get(f"/echo?after={name}")
            except AssertionError as e:
                problems.append(f"{name}: the connection did not serve another stream: {e}")
                continue
            if ok.status != 200 or c.goaway is not None:
                problems.append(f"{name}: after the reset: {ok!r}, GOAWAY {c.goaway}")
    assert not problems, "\n".join(problems)
    # None of the malformed ones reached the upstream; every valid one did.
    assert upstream.stats()["paths"] == {"/echo": len(cases)}, upstream.stats()["paths"]
    until(lambda: sy.stat("listener.ingress.h2_stream_error") == len(cases),
          what=f"h2_stream_error == {len(cases)}")


def test_te_trailers_is_allowed(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port))
    with H2Client(sy.port("ingress")) as c:
        resp = c.get("/echo", headers=[("te", "trailers")])
        assert resp.status == 200, resp


# --- max_concurrent_streams ----------------------------------------------------------------


def held_request(raw, sid, key):
    return raw.headers_frame(sid, path=f"/slow?hold={key}&sid={sid}")


def test_refused_stream_beyond_max_concurrent_streams(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port, http2={"max_concurrent_streams": 4}))
    # Six streams in the first flight, before the client has seen the server's SETTINGS (as
    # any client racing the handshake does): four are served, two refused.
    with RawH2(sy.port("ingress"), ack_settings=False) as raw:
        raw.send(*[held_request(raw, sid, "refuse") for sid in (1, 3, 5, 7, 9, 11)])
        raw.wait(lambda: 9 in raw.streams and 11 in raw.streams and
                 raw.streams[9].reset is not None and raw.streams[11].reset is not None,
                 what="streams 9 and 11 reset")
        assert raw.streams[9].reset == ErrorCodes.REFUSED_STREAM
        assert raw.streams[11].reset == ErrorCodes.REFUSED_STREAM
        assert raw.server_settings.get(h2util.SettingsFrame.MAX_CONCURRENT_STREAMS) == 4
        until(lambda: upstream.stats()["held"] == 4, what="4 streams held upstream")
        upstream.release("refuse")
        raw.wait(lambda: all(raw.streams.get(s) and raw.streams[s].ended for s in (1, 3, 5, 7)),
                 what="the four streams answered")
        assert all(raw.streams[s].status == 200 for s in (1, 3, 5, 7)), raw.streams
        raw.send(h2util.SettingsFrame(0, flags=["ACK"]), raw.headers_frame(13, path="/echo"))
        raw.wait(lambda: 13 in raw.streams and raw.streams[13].ended, what="stream 13")
        assert raw.streams[13].status == 200 and raw.goaway is None
    until(lambda: sy.stat("listener.ingress.h2_refused_stream") == 2,
          what="h2_refused_stream == 2")


def test_streams_beyond_an_acknowledged_limit_end_the_connection(upstream, switchyard):
    # A client that has acknowledged the limit and exceeds it anyway is broken or abusive:
    # GOAWAY PROTOCOL_ERROR (docs/config.md, http2.max_concurrent_streams; RFC 9113 5.4.1
    # lets a stream error be treated as a connection error). Other connections go on.
    sy = switchyard(h2_config(upstream.port, http2={"max_concurrent_streams": 4}))
    port = sy.port("ingress")
    with H2Client(port) as bystander, RawH2(port) as raw:
        assert bystander.get("/echo?before").status == 200
        raw.handshake()
        raw.send(*[held_request(raw, sid, "acked") for sid in (1, 3, 5, 7)])
        until(lambda: upstream.stats()["held"] == 4, what="4 streams held upstream")
        raw.send(held_request(raw, 9, "acked"))
        raw.wait_closed(10)
        assert raw.goaway is not None, raw.frames[-5:]
        assert raw.goaway.error_code == ErrorCodes.PROTOCOL_ERROR, raw.goaway
        assert raw.goaway.last_stream_id == 7, raw.goaway
        upstream.release("acked")
        resp = bystander.get("/echo?after")
        assert resp.status == 200 and bystander.goaway is None, resp
    assert sy.running()


# --- stats, access log, filters ----------------------------------------------------------


def test_h2_stats_and_access_log(upstream, switchyard):
    sy = switchyard(h2_config(upstream.port, ["http1", "http2"]))
    port = sy.port("ingress")
    with H2Client(port) as c:
        for i in range(3):
            assert c.get(f"/echo?log-h2-{i}", "POST", body=b"x" * 10).status == 200
    for i in range(2):
        assert request(port, "GET", f"/echo?log-h1-{i}").status == 200
    for i in range(3):
        e = sy.wait_access_entry(lambda e, i=i: e.get("path") == f"/echo?log-h2-{i}")
        assert e["protocol"] == "HTTP/2", e
        assert e["method"] == "POST" and e["status"] == 200 and e["bytes_in"] == 10, e
        assert e["authority"] == f"127.0.0.1:{port}", e
        assert e["cluster"] == "backend" and e["tls_version"] == "", e
        # A complete exchange: no flags, no details.
        assert e["response_flags"] == "-" and e["details"] == "", e
    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?log-h1-1")
    assert e["protocol"] == "HTTP/1.1", e
    until(lambda: sy.stat("listener.ingress.rq_total") == 5, what="rq_total == 5")
    stats = sy.stats()
    assert stats["listener.ingress.rq_http2"] == 3 and stats["listener.ingress.cx_http2"] == 1
    assert stats["listener.ingress.rq_http1"] == 2 and stats["listener.ingress.cx_http1"] == 2
    assert stats["listener.ingress.rq_total"] == 5 and stats["listener.ingress.rq_2xx"] == 5
    prom = sy.admin("GET", "/stats/prometheus").text()
    assert re.search(r'switchyard_listener_rq_http2\{listener="ingress"\} 3', prom), prom[-2000:]


def test_hello_module_over_h2(upstream, switchyard):
    module_file("hello")
    sy = switchyard(with_filters(upstream.port, [
        {"module": "hello", "config": {"name": "x-hello", "value": "h2"}}],
        protocols=["http2"]))
    with H2Client(sy.port("ingress")) as c:
        resp = c.get("/echo")
        assert resp.status == 200 and resp.all("x-hello") == ["h2"], resp
        resp = c.get("/status?code=404")
        assert resp.status == 404 and resp.header("x-hello") == "h2", resp
    r = h2c(sy.port("ingress"), "/echo", ["-i"])
    assert b"x-hello: h2" in r.body, r


def test_body_transform_module_over_h2(upstream, switchyard):
    module_file("body_transform")
    sy = switchyard(with_filters(upstream.port, [
        {"module": "body_transform", "config": {"from": "ab", "to": "<A|B>"}}],
        protocols=["http2"]))
    with H2Client(sy.port("ingress")) as c:
        resp = c.get("/stream?chunks=6&size=64&ms=20")
        assert resp.status == 200, resp
        assert resp.body == stream_payload(6, 64).replace(b"ab", b"<A|B>")
        lengths = resp.all("content-length")
        assert not lengths or lengths == [str(len(resp.body))], resp.headers
    until(lambda: module_stat(sy.stats(), "body_transform", "replacements") == 1,
          what="the replacement counted")


def test_h2_preface_on_http1_listener_still_refused(upstream, switchyard):
    # Unchanged behaviour: a listener without http2 answers the preface with 505.
    sy = switchyard(h2_config(upstream.port, ["http1"]))
    with harness.RawClient(sy.port("ingress")) as c:
        c.send(h2util.PREFACE)
        assert c.read_head().status == 505


def _one_response_server(fields):
    """A raw HTTP/2 server on a port of its own: on the first request it answers FIELDS (a header
    block no h2 library would send) with END_STREAM. Returns (port, thread)."""
    import socket
    import threading

    import hpack
    from hyperframe.frame import Frame, HeadersFrame, SettingsFrame

    srv = socket.socket()
    srv.bind((harness.LOCALHOST, 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        with conn, srv:
            conn.settimeout(10)
            conn.sendall(SettingsFrame(0).serialize())
            buf = b""
            while len(buf) < 24:  # the client preface
                buf += conn.recv(65536)
            buf = buf[24:]
            while True:
                while len(buf) < 9:
                    buf += conn.recv(65536)
                frame, length = Frame.parse_frame_header(memoryview(buf[:9]))
                while len(buf) < 9 + length:
                    buf += conn.recv(65536)
                buf = buf[9 + length:]
                if isinstance(frame, HeadersFrame):
                    break
            reply = HeadersFrame(frame.stream_id, flags=["END_HEADERS", "END_STREAM"])
            reply.data = hpack.Encoder().encode(fields)
            conn.sendall(reply.serialize())
            try:  # until the proxy closes or resets
                while conn.recv(65536):
                    pass
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv.getsockname()[1], t


def test_h2_upstream_status_below_100_is_a_bad_gateway(switchyard):
    """An h2 upstream's `:status: 000` has the three digits nghttp2 checks for but is no HTTP
    status: the client gets 502, not a status 0 (found by the h2_upstream fuzz target)."""
    port, _ = _one_response_server([(":status", "000"), ("x-a", "b")])
    sy = switchyard({"listeners": [{"name": "ingress",
                                    "routes": [to_cluster("r", {"prefix": "/"}, "h2")]}],
                     "clusters": [cluster("h2", port, protocol="http2")]})
    resp = request(sy.port("ingress"), "GET", "/bad-status")
    assert resp.status == 502, resp
    assert sy.stat("cluster.h2.rq_reset") == 1
