"""The HTTP/2 and TLS test peers themselves, without the proxy: the PKI, nginx with TLS and
HTTP/2 (tlsutil.NginxTls), the h2util clients, s_client parsing, nghttp and h2load. If these
fail, the failures of test_tls, test_h2, test_h2_flood and test_grpc say nothing about
switchyard."""
import os
import re
import subprocess

import h2.settings

from h2util import H2Client, RawH2, tls_context
from tlsutil import certs, curl, nginx_tls, openssl, s_client  # noqa: F401 (fixtures)


def test_pki_chains_verify(certs):
    openssl("verify", "-CAfile", certs.ca, "-untrusted", certs.intermediate.cert, certs.a.cert)
    for issued in (certs.b, certs.client):
        openssl("verify", "-CAfile", certs.ca, issued.cert)
    for issued in (certs.a_other, certs.intruder):
        out = subprocess.run(["openssl", "verify", "-CAfile", str(certs.ca), str(issued.cert)],
                             capture_output=True)
        assert out.returncode != 0, f"{issued.cert} verified against the test root"


def test_nginx_tls_sni_alpn_and_client_certificates(certs, nginx_tls):
    hs = s_client(nginx_tls.tls_port, "a.test", args=["-CAfile", certs.ca])
    assert hs.ok and hs.cert["cn"] == "a.test" and hs.verify_code == 0, hs
    assert len(hs.chain_subjects) == 2, hs.chain_subjects
    hs = s_client(nginx_tls.tls_port, "x.b.test")
    assert hs.ok and "*.b.test" in hs.cert["sans"], hs
    hs = s_client(nginx_tls.h2_port, "a.test", "h2,http/1.1")
    assert hs.ok and hs.alpn == "h2", hs
    hs = s_client(nginx_tls.tls_port, "a.test", args=["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
    assert not hs.ok, hs

    r = curl(f"https://x.b.test:{nginx_tls.h2_port}/info",
             ["--cacert", str(certs.ca), "--cert", str(certs.client.cert), "--key",
              str(certs.client.key)], resolve=[("x.b.test", nginx_tls.h2_port)])
    assert r.status == 200 and r.http_version == "2", r
    info = r.body.decode()
    assert "sni=x.b.test proto=HTTP/2.0" in info and "client=SUCCESS" in info, info
    r = curl(f"http://127.0.0.1:{nginx_tls.h2c_port}/small", ["--http2-prior-knowledge"])
    assert r.status == 200 and r.http_version == "2" and r.body == b"hello from nginx\n", r
    r = curl(f"http://127.0.0.1:{nginx_tls.plain_port}/small")
    assert r.status == 200 and r.http_version == "1.1", r
    entries = nginx_tls.wait_entries(3)
    assert [e["protocol"] for e in entries] == ["HTTP/2.0", "HTTP/2.0", "HTTP/1.1"], entries
    assert entries[0]["sni"] == "x.b.test" and entries[0]["client_verify"] == "SUCCESS"


def test_session_resumption_with_s_client(nginx_tls, tmp_path):
    session = tmp_path / "s.pem"
    req = b"GET /small HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
    first = s_client(nginx_tls.tls_port, "a.test", args=["-sess_out", session], send=req)
    assert first.ok and not first.reused and "hello from nginx" in first.output, first
    second = s_client(nginx_tls.tls_port, "a.test", args=["-sess_in", session], send=req)
    assert second.ok and second.reused, second


def test_h2client_against_nginx(certs, nginx_tls):
    with H2Client(nginx_tls.h2c_port) as c:
        sids = [c.request("GET", "/small") for _ in range(50)]
        assert all(c.response(s).body == b"hello from nginx\n" for s in sids)
        data = os.urandom(3 * 1024 * 1024)
        assert c.get("/uploads/peer.bin", "PUT", body=data).status == 201
        assert nginx_tls.uploaded("peer.bin") == data
        assert c.get("/file4m").body == nginx_tls.files["file4m"]
    with H2Client(nginx_tls.h2c_port,
                  settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000}) as c:
        assert c.get("/file4m").body == nginx_tls.files["file4m"]
    with H2Client(nginx_tls.h2_port, tls=tls_context(certs.ca), server_hostname="a.test",
                  authority="a.test") as c:
        resp = c.get("/info")
        assert resp.status == 200 and "sni=a.test proto=HTTP/2.0" in resp.body.decode(), resp


def test_rawh2_against_nginx(nginx_tls):
    with RawH2(nginx_tls.h2c_port) as raw:
        raw.send(raw.headers_frame(1, path="/small"), raw.headers_frame(3, path="/info"))
        raw.wait(lambda: all(s in raw.streams and raw.streams[s].ended for s in (1, 3)),
                 what="two responses")
        assert raw.streams[1].status == 200 and raw.streams[1].data == b"hello from nginx\n"
        assert raw.server_settings and raw.settings_acked
        assert raw.goaway is None and raw.is_open_now()


def test_nghttp_and_h2load_against_nginx(nginx_tls):
    url = f"http://127.0.0.1:{nginx_tls.h2c_port}/small"
    out = subprocess.run(["nghttp", "-nv", url], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and re.search(r":status: 200", out.stdout), out.stdout
    out = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "10", url],
                         capture_output=True, text=True, timeout=60)
    assert "200 succeeded, 0 failed" in out.stdout, out.stdout
