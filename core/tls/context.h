// TLS contexts built from the config: a listener's (certificates chosen by SNI, ALPN, optional
// client verification) and a cluster's (server verification, SNI, ALPN, client certificate).
// Built once per config snapshot on the main thread, so a reload re-reads every file; shared
// read-only by the workers (OpenSSL contexts are thread-safe once configured).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace sy::tls {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

class ServerContext {
 public:
  // Loads certificates and keys; on failure returns nullptr and says why in *ERROR.
  // PROTOCOLS: the listener's ("http2" → ALPN "h2", preferred; "http1" → "http/1.1").
  static std::shared_ptr<ServerContext> create(const config::Tls& cfg,
                                               const std::vector<std::string>& protocols,
                                               std::string* error);
  // The context a new connection starts with; SNI may switch it to another certificate's.
  SSL_CTX* initial() const { return certs_.front().ctx.get(); }

 private:
  struct Cert {
    SslCtxPtr ctx;
    std::vector<std::string> names;  // DNS SANs (or the CN without SANs), lowercase
  };
  static int on_servername(SSL* ssl, int* alert, void* arg);
  static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned int inlen, void* arg);
  const Cert* match(std::string_view host) const;

  std::vector<Cert> certs_;
  std::string alpn_;  // wire format, our preference order
};

class ClientContext {
 public:
  static std::shared_ptr<ClientContext> create(const config::Tls& cfg, bool http2,
                                               std::string* error);
  SSL_CTX* ctx() const { return ctx_.get(); }
  const std::string& sni() const { return sni_; }
  bool verify() const { return verify_; }
  // What a server's certificate must name: the SNI when set, else the endpoint's host (a name
  // or an IP address); "" when verification is off.
  std::string verify_host(const std::string& endpoint_host) const {
    if (!verify_) return "";
    return sni_.empty() ? endpoint_host : sni_;
  }

 private:
  SslCtxPtr ctx_;
  std::string sni_;
  bool verify_ = true;
};

// "TLSv1.3" etc.
std::string version_name(const SSL* ssl);
// The last OpenSSL error of this thread as text (and clears the queue); FALLBACK when none.
std::string last_error(const char* fallback);

}  // namespace sy::tls
