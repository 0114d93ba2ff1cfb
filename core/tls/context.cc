// TLS contexts from config.
#include "core/tls/context.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>

namespace sy::tls {
namespace {

// TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 suites are all fine and are not
// governed by this list).
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::vector<std::string> cert_names(SSL_CTX* ctx) {
  std::vector<std::string> names;
  X509* x = SSL_CTX_get0_certificate(ctx);
  if (!x) return names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      const ASN1_IA5STRING* s = g->d.dNSName;
      names.push_back(
          lower(std::string(reinterpret_cast<const char*>(s->data), size_t(s->length))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0)
      names.push_back(lower(cn));
  }
  return names;
}

bool name_matches(const std::string& pattern, std::string_view host) {
  if (pattern == host) return true;
  // "*.example.com" covers exactly one label: a.example.com, not a.b.example.com.
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    size_t dot = host.find('.');
    return dot != std::string_view::npos && dot > 0 && host.substr(dot) == pattern.substr(1);
  }
  return false;
}

bool apply_common(SSL_CTX* ctx, const config::Tls& cfg, std::string* error) {
  int min = cfg.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  SSL_CTX_set_min_proto_version(ctx, min);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  const std::string& ciphers = cfg.ciphers.empty() ? std::string(kDefaultCiphers) : cfg.ciphers;
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
    *error = "ciphers: no usable cipher in '" + ciphers + "'";
    ERR_clear_error();
    return false;
  }
  return true;
}

bool load_pair(SSL_CTX* ctx, const config::TlsCertificate& c, std::string* error) {
  if (SSL_CTX_use_certificate_chain_file(ctx, c.certificate.c_str()) != 1) {
    *error = "cannot load certificate chain '" + c.certificate + "': " + last_error("bad PEM");
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, c.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    *error = "cannot load private key '" + c.private_key + "': " + last_error("bad PEM");
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    *error =
        "private key '" + c.private_key + "' does not match certificate '" + c.certificate + "'";
    ERR_clear_error();
    return false;
  }
  return true;
}

}  // namespace

std::string last_error(const char* fallback) {
  unsigned long e = ERR_get_error();
  unsigned long last = e;
  while (e) {
    last = e;
    e = ERR_get_error();
  }
  if (!last) return fallback;
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

std::string version_name(const SSL* ssl) { return SSL_get_version(ssl); }

std::shared_ptr<ServerContext> ServerContext::create(const config::Tls& cfg,
                                                     const std::vector<std::string>& protocols,
                                                     std::string* error) {
  auto sc = std::shared_ptr<ServerContext>(new ServerContext);
  // h2 first whenever the listener speaks it: a client offering both gets the better one.
  for (const char* want : {"http2", "http1"}) {
    if (std::find(protocols.begin(), protocols.end(), want) == protocols.end()) continue;
    std::string_view id = std::string_view(want) == "http2" ? "h2" : "http/1.1";
    sc->alpn_.push_back(char(id.size()));
    sc->alpn_ += id;
  }
  STACK_OF(X509_NAME)* client_cas = nullptr;
  for (const config::TlsCertificate& c : cfg.certificates) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
      *error = last_error("cannot create a TLS context");
      return nullptr;
    }
    if (!apply_common(ctx.get(), cfg, error) || !load_pair(ctx.get(), c, error)) return nullptr;
    // Resumption: a server-side session cache plus tickets (on by default). The id context ties
    // sessions to this listener's verification settings.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
    static const unsigned char kSidCtx[] = "switchyard";
    SSL_CTX_set_session_id_context(ctx.get(), kSidCtx, sizeof kSidCtx - 1);
    if (!cfg.ca.empty()) {
      if (SSL_CTX_load_verify_locations(ctx.get(), cfg.ca.c_str(), nullptr) != 1) {
        *error = "cannot load ca '" + cfg.ca + "': " + last_error("bad PEM");
        return nullptr;
      }
      if (!client_cas) client_cas = SSL_load_client_CA_file(cfg.ca.c_str());
      if (client_cas) SSL_CTX_set_client_CA_list(ctx.get(), SSL_dup_CA_list(client_cas));
      SSL_CTX_set_verify(
          ctx.get(),
          SSL_VERIFY_PEER | (cfg.client_certificate_required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
          nullptr);
    }
    SSL_CTX_set_tlsext_servername_callback(ctx.get(), on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx.get(), sc.get());
    SSL_CTX_set_alpn_select_cb(ctx.get(), on_alpn, sc.get());
    Cert cert{std::move(ctx), {}};
    cert.names = cert_names(cert.ctx.get());
    sc->certs_.push_back(std::move(cert));
  }
  if (client_cas) sk_X509_NAME_pop_free(client_cas, X509_NAME_free);
  if (sc->certs_.empty()) {
    *error = "no certificate";
    return nullptr;
  }
  return sc;
}

const ServerContext::Cert* ServerContext::match(std::string_view host) const {
  std::string h = lower(std::string(host));
  for (const Cert& c : certs_)
    for (const auto& n : c.names)
      if (n == h) return &c;
  for (const Cert& c : certs_)
    for (const auto& n : c.names)
      if (name_matches(n, h)) return &c;
  return nullptr;
}

int ServerContext::on_servername(SSL* ssl, int*, void* arg) {
  auto* sc = static_cast<ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  // No certificate for the name: the default one answers (the client decides what to do).
  const Cert* c = sc->match(name);
  if (c && c->ctx.get() != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, c->ctx.get());
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::on_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                           const unsigned char* in, unsigned int inlen, void* arg) {
  auto* sc = static_cast<ServerContext*>(arg);
  unsigned char* sel = nullptr;
  // Our order wins (h2 before http/1.1).
  if (SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(sc->alpn_.data()),
                            unsigned(sc->alpn_.size()), in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
  }
  // The client offers nothing we speak: refuse rather than talk past each other.
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

std::shared_ptr<ClientContext> ClientContext::create(const config::Tls& cfg, bool http2,
                                                     std::string* error) {
  auto cc = std::shared_ptr<ClientContext>(new ClientContext);
  cc->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = cc->ctx_.get();
  if (!ctx) {
    *error = last_error("cannot create a TLS context");
    return nullptr;
  }
  if (!apply_common(ctx, cfg, error)) return nullptr;
  cc->verify_ = cfg.verify;
  cc->sni_ = cfg.sni;
  if (cfg.verify) {
    if (!cfg.ca.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, cfg.ca.c_str(), nullptr) != 1) {
        *error = "cannot load ca '" + cfg.ca + "': " + last_error("bad PEM");
        return nullptr;
      }
    } else {
      SSL_CTX_set_default_verify_paths(ctx);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!cfg.certificates.empty() && !load_pair(ctx, cfg.certificates.front(), error)) return nullptr;
  static const unsigned char kH2[] = "\x02h2";
  static const unsigned char kH1[] = "\x08http/1.1";
  if (http2)
    SSL_CTX_set_alpn_protos(ctx, kH2, sizeof kH2 - 1);
  else
    SSL_CTX_set_alpn_protos(ctx, kH1, sizeof kH1 - 1);
  return cc;
}

}  // namespace sy::tls
