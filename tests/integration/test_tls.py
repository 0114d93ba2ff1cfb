"""TLS on both sides: certificates chosen by SNI (with their chain), ALPN, TLS 1.0/1.1 refused,
min_version, the default cipher list, session resumption, client certificates (mTLS),
certificates re-read on reload; upstream TLS with SNI and verification against a configured CA,
client certificates to the upstream; what the access log and stats say about it, and what
filters see (TLS version, SNI, peer certificate, protocol) through a test-only module.

Peers: `openssl s_client` and curl as clients; nginx with TLS (tlsutil.NginxTls) and
upstream.py as origins. The PKI is made per session with the openssl CLI (tlsutil.Certs).
"""
import json
import os
import re
import shutil
import signal
import subprocess

import pytest

import harness
import tlsutil
from harness import (RawClient, cluster, direct, echo_headers, request, run_switchyard,
                     to_cluster, until)
from tlsutil import certs, curl, nginx_tls, s_client  # noqa: F401 (fixtures)


def cert_entry(issued):
    return {"certificate": str(issued.chain), "private_key": str(issued.key)}


def tls_listener(certs, name="tls", protocols=None, routes=None, **tls_extra):
    """A TLS listener with a.test (default) and *.b.test; a direct response unless ROUTES."""
    tls = {"certificates": [cert_entry(certs.a), cert_entry(certs.b)], **tls_extra}
    listener = {"name": name, "tls": tls,
                "routes": routes or [direct("hi", {"prefix": "/"}, 200, f"hello from {name}\n")]}
    if protocols:
        listener["protocols"] = protocols
    return listener


def https(port, path="/", host="a.test"):
    return f"https://{host}:{port}{path}", [(host, port)]


def curl_https(port, path="/", host="a.test", args=(), ca=None, certs=None):
    url, resolve = https(port, path, host)
    return curl(url, ["--cacert", str(ca or certs.ca), *args], resolve=resolve)


# --- certificates, SNI, chains -----------------------------------------------------------------


def test_sni_selects_certificate_and_sends_chain(certs, switchyard):
    sy = switchyard({"listeners": [tls_listener(certs)]})
    port = sy.port("tls")

    hs = s_client(port, "a.test", args=["-CAfile", certs.ca])
    assert hs.ok, hs
    assert hs.cert["cn"] == "a.test" and hs.cert["sans"] == ["a.test"], hs.cert
    # The chain file's intermediate is sent too: the client only has the root.
    assert len(hs.chain_subjects) == 2, hs.chain_subjects
    assert "Switchyard Test Intermediate" in hs.chain_subjects[1]
    assert hs.verify_code == 0, hs

    for name in ("x.b.test", "www.b.test", "b.test"):
        hs = s_client(port, name, args=["-CAfile", certs.ca])
        assert hs.ok, hs
        assert "*.b.test" in hs.cert["sans"], (name, hs.cert)
        assert hs.verify_code == 0, hs

    # No SNI, a name no certificate has, and a name a wildcard does not cover (one label only):
    # the first certificate, the default.
    for name in (None, "unknown.test", "deep.x.b.test"):
        hs = s_client(port, name)
        assert hs.ok, hs
        assert hs.cert["cn"] == "a.test", (name, hs.cert)

    # curl checks the name against the certificate and the chain against the root.
    for host in ("a.test", "x.b.test"):
        r = curl_https(port, "/", host, certs=certs)
        assert r.ok and r.status == 200 and r.body == b"hello from tls\n", r
    until(lambda: sy.stat("listener.tls.tls_handshake") >= 9, what="handshakes counted")


def test_exact_name_beats_wildcard_and_cn_without_san(certs, switchyard):
    listener = tls_listener(certs)
    listener["tls"]["certificates"] += [cert_entry(certs.x_b), cert_entry(certs.cn_only)]
    sy = switchyard({"listeners": [listener]})
    port = sy.port("tls")
    # x.b.test is covered by *.b.test (listed first) and named exactly by a later certificate.
    hs = s_client(port, "x.b.test")
    assert hs.ok and hs.cert["org"] == "Exact" and hs.cert["sans"] == ["x.b.test"], hs
    hs = s_client(port, "y.b.test")
    assert hs.ok and "*.b.test" in hs.cert["sans"], hs
    hs = s_client(port, "cn-only.test")
    assert hs.ok and hs.cert["cn"] == "cn-only.test" and hs.cert["sans"] == [], hs


def test_single_certificate_shorthand(certs, switchyard):
    listener = tls_listener(certs)
    listener["tls"] = {"certificate": str(certs.b.chain), "private_key": str(certs.b.key)}
    sy = switchyard({"listeners": [listener]})
    for name in ("x.b.test", None):
        hs = s_client(sy.port("tls"), name)
        assert hs.ok and "*.b.test" in hs.cert["sans"], hs
    r = curl_https(sy.port("tls"), "/", "y.b.test", certs=certs)
    assert r.status == 200, r


def test_wrong_ca_fails_client_verification(certs, switchyard):
    # A check on the test itself: curl with another CA must refuse the proxy's certificate.
    sy = switchyard({"listeners": [tls_listener(certs)]})
    r = curl_https(sy.port("tls"), ca=certs.other_ca)
    assert not r.ok and r.status == 0, r


# --- ALPN --------------------------------------------------------------------------------------


def test_alpn_selection_per_listener_protocols(certs, switchyard):
    sy = switchyard({"listeners": [tls_listener(certs, "h1", ["http1"]),
                                   tls_listener(certs, "both", ["http1", "http2"]),
                                   tls_listener(certs, "h2only", ["http2"])]})
    offer_both = "h2,http/1.1"
    hs = s_client(sy.port("h1"), "a.test", offer_both)
    assert hs.ok and hs.alpn == "http/1.1", hs
    hs = s_client(sy.port("both"), "a.test", offer_both)
    assert hs.ok and hs.alpn == "h2", hs
    hs = s_client(sy.port("both"), "a.test", "http/1.1")
    assert hs.ok and hs.alpn == "http/1.1", hs
    hs = s_client(sy.port("h2only"), "a.test", offer_both)
    assert hs.ok and hs.alpn == "h2", hs

    # And the protocol spoken is the one negotiated; a client without ALPN gets HTTP/1.1.
    # (Requests are counted, not connections: s_client's count as whatever ALPN chose.)
    r = curl_https(sy.port("both"), args=["--http2"], certs=certs)
    assert r.status == 200 and r.http_version == "2", r
    r = curl_https(sy.port("both"), args=["--http1.1"], certs=certs)
    assert r.status == 200 and r.http_version == "1.1", r
    r = curl_https(sy.port("both"), args=["--no-alpn", "--http1.1"], certs=certs)
    assert r.status == 200 and r.http_version == "1.1", r
    r = curl_https(sy.port("h1"), args=["--http2"], certs=certs)
    assert r.status == 200 and r.http_version == "1.1", r
    until(lambda: sy.stat("listener.both.rq_http2") == 1, what="listener.both.rq_http2 == 1")
    until(lambda: sy.stat("listener.both.rq_http1") == 2, what="listener.both.rq_http1 == 2")
    assert sy.stat("listener.both.cx_http2") >= 1 and sy.stat("listener.both.cx_http1") >= 2


# --- versions and ciphers ------------------------------------------------------------------


def test_tls10_and_tls11_refused_by_the_server(certs, switchyard):
    sy = switchyard({"listeners": [tls_listener(certs)]})
    port = sy.port("tls")
    # SECLEVEL=0 lets this client offer the old versions: a refusal is the server's.
    for flag in ("-tls1", "-tls1_1"):
        hs = s_client(port, "a.test", args=[flag, "-cipher", "DEFAULT@SECLEVEL=0"])
        assert not hs.ok, (flag, hs)
        assert hs.version not in ("TLSv1", "TLSv1.1"), hs
    until(lambda: sy.stat("listener.tls.tls_handshake_error") >= 2,
          what="tls_handshake_error >= 2")
    for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        hs = s_client(port, "a.test", args=[flag])
        assert hs.ok and hs.version == version, (flag, hs)
    assert sy.running()


def test_min_version_13_refuses_tls12(certs, switchyard):
    sy = switchyard({"listeners": [tls_listener(certs, min_version="1.3")]})
    port = sy.port("tls")
    hs = s_client(port, "a.test", args=["-tls1_2"])
    assert not hs.ok, hs
    hs = s_client(port, "a.test", args=["-tls1_3"])
    assert hs.ok and hs.version == "TLSv1.3", hs
    r = curl_https(port, args=["--tls-max", "1.2"], certs=certs)
    assert not r.ok, r
    r = curl_https(port, certs=certs)
    assert r.status == 200, r


def test_default_ciphers_are_ecdhe_aead(certs, switchyard):
    sy = switchyard({"listeners": [tls_listener(certs)]})
    port = sy.port("tls")
    # ECDHE but CBC (no AEAD): not in a modern default list.
    hs = s_client(port, "a.test", args=["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"])
    assert not hs.ok, hs
    hs = s_client(port, "a.test", args=["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
    assert hs.ok and hs.cipher == "ECDHE-ECDSA-AES128-GCM-SHA256", hs


def test_configured_cipher_list(certs, switchyard):
    sy = switchyard({"listeners": [tls_listener(
        certs, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305")]})
    port = sy.port("tls")
    hs = s_client(port, "a.test", args=["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
    assert not hs.ok, hs
    hs = s_client(port, "a.test", args=["-tls1_2"])
    assert hs.ok and hs.cipher == "ECDHE-ECDSA-CHACHA20-POLY1305", hs


# --- session resumption --------------------------------------------------------------------


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_session_resumption(certs, switchyard, tmp_path, version):
    sy = switchyard({"listeners": [tls_listener(certs)]})
    port = sy.port("tls")
    session = tmp_path / "session.pem"
    req = tlsutil.http_request_bytes("/")
    first = s_client(port, "a.test", args=[version, "-sess_out", session], send=req)
    assert first.ok and first.session == "New", first
    assert "hello from tls" in first.output, first
    assert session.exists() and session.stat().st_size > 0
    second = s_client(port, "a.test", args=[version, "-sess_in", session], send=req)
    assert second.ok and second.reused, second
    assert "hello from tls" in second.output, second
    until(lambda: sy.stat("listener.tls.tls_session_reused") == 1,
          what="listener.tls.tls_session_reused == 1")


# --- client certificates ---------------------------------------------------------------------


def client_cert_args(issued):
    return ["--cert", str(issued.cert), "--key", str(issued.key)]


def test_mtls_required(certs, upstream, switchyard):
    sy = switchyard({"listeners": [tls_listener(
        certs, routes=[to_cluster("all", {"prefix": "/"}, "backend")], ca=str(certs.ca))],
        "clusters": [cluster("backend", upstream.port)]})
    port = sy.port("tls")
    r = curl_https(port, "/echo", certs=certs)
    assert not r.ok and r.status == 0, f"served without a client certificate: {r}"
    r = curl_https(port, "/echo", args=client_cert_args(certs.intruder), certs=certs)
    assert not r.ok and r.status == 0, f"served with a certificate from another CA: {r}"
    assert upstream.stats()["requests_total"] == 0

    r = curl_https(port, "/echo", args=client_cert_args(certs.client), certs=certs)
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo_headers(echo, "x-forwarded-proto") == ["https"]
    until(lambda: sy.stat("listener.tls.tls_handshake_error") >= 2,
          what="two failed handshakes counted")
    # The peer certificate is exposed to filters through stream info; no bundled module shows
    # it yet, so it is not checked here.


def test_mtls_optional(certs, switchyard):
    sy = switchyard({"listeners": [tls_listener(certs, ca=str(certs.ca),
                                                client_certificate="optional")]})
    port = sy.port("tls")
    r = curl_https(port, certs=certs)
    assert r.status == 200, r
    until(lambda: sy.stat("listener.tls.tls_no_client_cert") == 1,
          what="listener.tls.tls_no_client_cert == 1")
    r = curl_https(port, args=client_cert_args(certs.client), certs=certs)
    assert r.status == 200, r
    # Optional means "may send none", not "may send an untrusted one".
    r = curl_https(port, args=client_cert_args(certs.intruder), certs=certs)
    assert not r.ok and r.status == 0, r
    assert sy.stat("listener.tls.tls_no_client_cert") == 1


# --- what the proxy says about TLS --------------------------------------------------------


def test_forwarded_proto_access_log_and_stats(certs, upstream, switchyard):
    routes = [to_cluster("all", {"prefix": "/"}, "backend")]
    sy = switchyard({"listeners": [tls_listener(certs, routes=routes),
                                   {"name": "plain", "routes": routes}],
                     "clusters": [cluster("backend", upstream.port)]})
    r = curl_https(sy.port("tls"), "/echo?tls", "x.b.test", args=["--tlsv1.3"], certs=certs)
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo_headers(echo, "x-forwarded-proto") == ["https"]
    assert echo["version"] == "HTTP/1.1"
    assert request(sy.port("plain"), "GET", "/echo?plain").json()["path"] == "/echo?plain"

    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?tls")
    assert e["protocol"] == "HTTP/1.1" and e["status"] == 200, e
    assert e["tls_version"] == "TLSv1.3", e
    assert e["sni"] == "x.b.test", e
    e = sy.wait_access_entry(lambda e: e.get("path") == "/echo?plain")
    assert e["tls_version"] == "" and e["sni"] == "", e

    until(lambda: sy.stat("listener.tls.rq_http1") == 1, what="listener.tls.rq_http1 == 1")
    stats = sy.stats()
    assert stats["listener.tls.tls_handshake"] == 1, stats
    assert stats["listener.tls.cx_http1"] == 1 and stats["listener.tls.rq_http1"] == 1, stats
    assert stats.get("listener.tls.tls_handshake_error", 0) == 0, stats


# --- reloads ---------------------------------------------------------------------------------


def replace_file(src, dst):
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def test_certificates_reread_on_reload(certs, switchyard, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    chain, key = live / "a.pem", live / "a.key"
    replace_file(certs.a.chain, chain)
    replace_file(certs.a.key, key)
    listener = tls_listener(certs)
    listener["tls"] = {"certificate": str(chain), "private_key": str(key)}
    sy = switchyard({"listeners": [listener]})
    port = sy.port("tls")
    hs = s_client(port, "a.test")
    assert hs.ok and hs.cert["org"] == "Switchyard tests", hs

    for round_, how in ((1, "admin"), (2, "sighup")):
        rotated = certs.new_a(f"a.test-rotated{round_}", f"Rotated {round_}")
        replace_file(rotated.chain, chain)
        replace_file(rotated.key, key)
        if how == "admin":
            assert sy.reload().status == 200
        else:
            sy.signal(signal.SIGHUP)
        until(lambda r=round_: s_client(port, "a.test").cert["org"] == f"Rotated {r}",
              what=f"the rotated certificate {round_} served")
        r = curl_https(port, certs=certs)
        assert r.status == 200, r

    # A broken certificate file makes the reload fail as a whole; the last good one serves on.
    chain.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    resp = sy.reload()
    assert 400 <= resp.status < 500, resp
    assert str(chain) in resp.text() or "a.pem" in resp.text(), resp.text()
    hs = s_client(port, "a.test")
    assert hs.ok and hs.cert["org"] == "Rotated 2", hs


def test_handshake_must_finish_within_request_headers(certs, switchyard):
    listener = tls_listener(certs)
    listener["timeouts"] = {"request_headers": "1s"}
    sy = switchyard({"listeners": [listener]})
    port = sy.port("tls")
    # Nothing at all, and half a ClientHello: both closed by the deadline.
    with RawClient(port) as silent, RawClient(port) as partial:
        partial.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert silent.wait_closed(timeout=8)
        assert partial.wait_closed(timeout=8)
    hs = s_client(port, "a.test")
    assert hs.ok, hs


def test_bad_certificate_config_refused_at_start(certs, switchyard, tmp_path):
    missing = tmp_path / "missing.pem"
    cases = [
        ({"certificate": str(missing), "private_key": str(certs.a.key)}, "missing.pem"),
        # The key of another certificate.
        ({"certificate": str(certs.a.chain), "private_key": str(certs.b.key)}, "key"),
    ]
    for i, (tls, word) in enumerate(cases):
        listener = tls_listener(certs, name=f"bad{i}")
        listener["tls"] = tls
        sy = switchyard({"listeners": [listener]}, start=False, name=f"bad{i}")
        out = run_switchyard(["-c", str(sy.config_path)], timeout=20)
        text = out.stdout + out.stderr
        assert out.returncode != 0, text
        assert word in text.lower(), text
        assert re.search(r"switchyard\.yaml:\d+:\d+", text), text


# --- upstream TLS --------------------------------------------------------------------------


# nginx, asking for client certificates, answers 421 to a Host other than the SNI name: the
# requests name the host the cluster's sni says, as a client of a real TLS origin would.
A_TEST = {"Host": "a.test"}


def upstream_tls_config(nginx_tls, port=None, **tls):
    return {"listeners": [{"name": "ingress",
                           "routes": [to_cluster("all", {"prefix": "/"}, "origin")]}],
            "clusters": [cluster("origin", port or nginx_tls.tls_port, tls=tls)]}


def test_upstream_tls_verified_against_ca_with_sni(certs, nginx_tls, switchyard):
    sy = switchyard(upstream_tls_config(nginx_tls, ca=str(certs.ca), sni="a.test"))
    r = request(sy.port("ingress"), "GET", "/info", headers=A_TEST)
    assert r.status == 200, r
    info = r.text()
    assert "sni=a.test " in info and "proto=HTTP/1.1" in info, info
    assert re.search(r"tls=TLSv1\.[23] ", info), info
    r = request(sy.port("ingress"), "GET", "/file4m", headers=A_TEST)
    assert r.status == 200 and r.body == nginx_tls.files["file4m"]


def test_upstream_sni_selects_origin_certificate(certs, nginx_tls, switchyard):
    # nginx answers x.b.test with the *.b.test certificate (signed by the root directly);
    # verification against the root passes only if that name was sent.
    sy = switchyard(upstream_tls_config(nginx_tls, ca=str(certs.ca), sni="x.b.test"))
    r = request(sy.port("ingress"), "GET", "/info", headers={"Host": "x.b.test"})
    assert r.status == 200, r
    assert "sni=x.b.test " in r.text(), r.text()
    entries = nginx_tls.wait_entries(1)
    assert entries[-1]["sni"] == "x.b.test", entries


def test_upstream_wrong_ca_is_502_uf(certs, nginx_tls, switchyard):
    sy = switchyard(upstream_tls_config(nginx_tls, ca=str(certs.other_ca), sni="a.test"))
    r = request(sy.port("ingress"), "GET", "/info?wrong-ca", headers=A_TEST)
    assert r.status == 502, r
    e = sy.wait_access_entry(lambda e: e.get("path") == "/info?wrong-ca")
    assert "UF" in e["response_flags"].split(","), e
    assert "tls" in e["details"].lower(), e
    until(lambda: sy.stat("cluster.origin.tls_handshake_error") >= 1,
          what="cluster.origin.tls_handshake_error counted")
    assert not [x for x in nginx_tls.access_entries() if x["uri"] == "/info?wrong-ca"]


def test_upstream_certificate_name_is_checked(certs, nginx_tls, switchyard):
    # A trusted chain for another name is refused: against the sni when there is one, else
    # against the endpoint's address (127.0.0.1, which no test certificate names).
    cfg = {"listeners": [
        {"name": "wrong_sni", "routes": [to_cluster("r", {"prefix": "/"}, "wrong_sni")]},
        {"name": "no_sni", "routes": [to_cluster("r", {"prefix": "/"}, "no_sni")]},
        {"name": "unverified", "routes": [to_cluster("r", {"prefix": "/"}, "unverified")]}],
        "clusters": [
            # nginx has no server for other.test: it answers with a.test's certificate.
            cluster("wrong_sni", nginx_tls.tls_port, tls={"ca": str(certs.ca),
                                                          "sni": "other.test"}),
            cluster("no_sni", nginx_tls.tls_port, tls={"ca": str(certs.ca)}),
            cluster("unverified", nginx_tls.tls_port, tls={"sni": "other.test",
                                                           "verify": False})]}
    sy = switchyard(cfg)
    for name in ("wrong_sni", "no_sni"):
        r = request(sy.port(name), "GET", f"/info?{name}", headers=A_TEST)
        assert r.status == 502, (name, r)
        e = sy.wait_access_entry(lambda e, n=name: e.get("path") == f"/info?{n}")
        assert "UF" in e["response_flags"].split(",") and "tls" in e["details"].lower(), e
    r = request(sy.port("unverified"), "GET", "/info", headers={"Host": "other.test"})
    assert r.status == 200 and "sni=other.test " in r.text(), r


def test_upstream_h2_without_alpn_h2_fails(certs, nginx_tls, switchyard):
    # protocol http2 over TLS needs the server to select h2; tls_port offers http/1.1 only.
    sy = switchyard(upstream_tls_config(nginx_tls, ca=str(certs.ca), sni="a.test"))
    sy.write_config({**sy.config, "clusters": [cluster(
        "origin", nginx_tls.tls_port, protocol="http2", tls={"ca": str(certs.ca),
                                                            "sni": "a.test"})]})
    assert sy.reload().status == 200
    until(lambda: request(sy.port("ingress"), "GET", "/info", headers=A_TEST).status == 502,
          what="502 from an h2 cluster whose server does not speak h2")
    assert not [e for e in nginx_tls.access_entries() if e["protocol"] != "HTTP/1.1"]


def test_upstream_system_trust_store_refuses_test_ca(certs, nginx_tls, switchyard):
    # Without ca: the system trust store, which does not know the test root.
    sy = switchyard(upstream_tls_config(nginx_tls, sni="a.test"))
    r = request(sy.port("ingress"), "GET", "/info", headers=A_TEST)
    assert r.status == 502, r


def test_upstream_verify_false(certs, nginx_tls, switchyard):
    sy = switchyard(upstream_tls_config(nginx_tls, ca=str(certs.other_ca), sni="a.test",
                                        verify=False))
    r = request(sy.port("ingress"), "GET", "/info", headers=A_TEST)
    assert r.status == 200 and "sni=a.test " in r.text(), r


def test_upstream_client_certificate(certs, nginx_tls, switchyard):
    base = {"ca": str(certs.ca), "sni": "a.test"}
    sy = switchyard({
        "listeners": [{"name": "with", "routes": [to_cluster("r", {"prefix": "/"}, "with")]},
                      {"name": "without", "routes": [to_cluster("r", {"prefix": "/"}, "without")]}],
        "clusters": [cluster("with", nginx_tls.tls_port,
                             tls={**base, "certificate": str(certs.client.cert),
                                  "private_key": str(certs.client.key)}),
                     cluster("without", nginx_tls.tls_port, tls=base)]})
    # nginx asks for a client certificate (optional) and says what it got.
    r = request(sy.port("with"), "GET", "/info", headers=A_TEST)
    assert r.status == 200, r
    assert "client=SUCCESS" in r.text() and "dn=CN=client-one" in r.text(), r.text()
    r = request(sy.port("without"), "GET", "/info", headers=A_TEST)
    assert r.status == 200 and "client=NONE" in r.text(), r.text()


def test_tls_on_both_sides_http11(certs, nginx_tls, switchyard, tmp_path):
    sy = switchyard({
        "listeners": [tls_listener(certs, protocols=["http1"],
                                   routes=[to_cluster("all", {"prefix": "/"}, "origin")])],
        "clusters": [cluster("origin", nginx_tls.tls_port,
                             tls={"ca": str(certs.ca), "sni": "a.test"})]})
    port = sy.port("tls")
    r = curl_https(port, "/file4m", args=["--http1.1"], certs=certs)
    assert r.status == 200 and r.http_version == "1.1", r
    assert r.body == nginx_tls.files["file4m"]
    body = os.urandom(8 * 1024 * 1024)
    src = tmp_path / "up.bin"
    src.write_bytes(body)
    r = curl_https(port, "/uploads/tls.bin", args=["--http1.1", "-T", str(src)], certs=certs)
    assert r.status == 201, r
    assert nginx_tls.uploaded("tls.bin") == body
    # Several requests over one kept-alive TLS connection each side.
    url, resolve = https(port, "/small")
    out = subprocess.run(["curl", "-sS", "--http1.1", "--cacert", str(certs.ca), "--resolve",
                          f"a.test:{port}:127.0.0.1", url, url, url], capture_output=True,
                         timeout=30)
    assert out.stdout == b"hello from nginx\n" * 3, out
    entries = nginx_tls.wait_entries(3, lambda e: e["uri"] == "/small")
    assert len(entries) == 3 and all(e["protocol"] == "HTTP/1.1" and e["tls"].startswith("TLS")
                                     for e in entries), entries
    assert len({e["connection"] for e in entries}) == 1, "the upstream TLS connection was reused"
    until(lambda: sy.stat("listener.tls.cx_http1") == 3, what="3 TLS connections counted")


# --- what filters see: stream info attributes ----------------------------------------------


@pytest.fixture(scope="session")
def attrs_module():
    """libsy_fx_attrs.so (tests/abi/fx_attrs.c, built with the ABI fixtures): a filter that
    copies stream-info attributes into x-attr-* response headers."""
    so = harness.BINARY.parent / "tests" / "abi" / "libsy_fx_attrs.so"
    assert so.exists(), f"{so} is missing: build it first (make build)"
    return so


def peer_certificate_subject(value):
    """The subject of the certificate in an x-attr-peer-certificate value: PEM (newlines made
    spaces), DER (as hex:...), or a subject line as the host gives it."""
    if value.startswith("hex:"):
        der = bytes.fromhex(value[4:])
        return openssl_x509_subject(der, "DER")
    if "-----BEGIN CERTIFICATE-----" in value:
        body = value.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
        pem = ("-----BEGIN CERTIFICATE-----\n" + "\n".join(body.split()) +
               "\n-----END CERTIFICATE-----\n")
        return tlsutil.cert_info(pem)["subject"]
    return value


def openssl_x509_subject(data, form):
    out = subprocess.run(["openssl", "x509", "-inform", form, "-noout", "-subject", "-nameopt",
                          "RFC2253"], input=data, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().partition("=")[2].strip()


def test_filters_see_tls_and_protocol_attributes(certs, upstream, switchyard, attrs_module):
    routes = [to_cluster("all", {"prefix": "/"}, "backend")]
    listener = tls_listener(certs, protocols=["http1", "http2"], routes=routes,
                            ca=str(certs.ca), client_certificate="optional")
    listener["filters"] = [{"module": "attrs"}]
    plain = {"name": "plain", "protocols": ["http1", "http2"], "routes": routes,
             "filters": [{"module": "attrs"}]}
    sy = switchyard({"module_path": [str(harness.BINARY.parent / "modules")],
                     "modules": [{"name": "attrs", "path": str(attrs_module)}],
                     "listeners": [listener, plain],
                     "clusters": [cluster("backend", upstream.port)]})

    def attrs(result):
        head = result.body.split(b"\r\n\r\n")[0].decode(errors="replace")
        return {m.group(1).lower(): m.group(2).strip() for m in
                re.finditer(r"^x-attr-([a-z-]+):(.*)$", head, re.M | re.I)}

    r = curl_https(sy.port("tls"), "/echo", "x.b.test",
                   args=["-i", "--http2", *client_cert_args(certs.client)], certs=certs)
    assert r.status == 200 and r.http_version == "2", r
    a = attrs(r)
    assert a.get("protocol") == "HTTP/2", a
    assert a.get("scheme") == "https", a
    assert a.get("tls-version") == "TLSv1.3", a
    assert a.get("sni") == "x.b.test", a
    assert a.get("peer-certificate", "").startswith("-----BEGIN CERTIFICATE-----"), a
    assert "CN=client-one" in peer_certificate_subject(a["peer-certificate"]), a
    assert "client-one" in a.get("subject-peer-certificate", ""), a

    r = curl_https(sy.port("tls"), "/echo", "a.test", args=["-i", "--http1.1"], certs=certs)
    a = attrs(r)
    assert a.get("protocol") == "HTTP/1.1" and a.get("sni") == "a.test", a
    assert a.get("peer-certificate") in ("-", ""), f"no client certificate was sent: {a}"
    assert a.get("subject-peer-certificate") in ("-", ""), a

    r = curl(f"http://127.0.0.1:{sy.port('plain')}/echo", ["-i", "--http2-prior-knowledge"])
    a = attrs(r)
    assert a.get("protocol") == "HTTP/2" and a.get("scheme") == "http", a
    assert a.get("tls-version") in ("-", "") and a.get("sni") in ("-", ""), a
