// Parses `clusters:` entries and the `tls:` blocks shared by clusters and listeners.
#include "config/schema.h"

namespace sy::config {

namespace {

bool read_certificate(Fields& f, TlsCertificate* c) {
  c->loc = f.loc();
  bool cert = f.string("certificate", &c->certificate);
  bool key = f.string("private_key", &c->private_key);
  // A certificate is useless without its key and the reverse; say which half is missing.
  if (f.has("certificate") != f.has("private_key") && (cert || key)) {
    f.diag().error(f.loc(), std::string(cert ? "certificate" : "private_key") + " in " + f.what() +
                                " needs " + (cert ? "private_key" : "certificate") + " too");
    return false;
  }
  return cert && key;
}

}  // namespace

Tls parse_tls(Diagnostics& d, const MapEntry& e, const std::string& what, bool for_listener) {
  Tls tls;
  tls.loc = value_loc(d, e);
  if (for_listener) {
    Fields f(d, e.value, tls.loc, what,
             {"certificate", "private_key", "certificates", "ca", "client_certificate",
              "min_version", "ciphers"});
    if (!f.is_map()) return tls;
    TlsCertificate one;
    if (read_certificate(f, &one)) tls.certificates.push_back(std::move(one));
    if (const MapEntry* list = f.list("certificates")) {
      for (const YAML::Node& item : list->value) {
        Fields cf(d, item, d.at(item), "items of certificates in " + what,
                  {"certificate", "private_key"});
        TlsCertificate c;
        if (!cf.is_map()) continue;
        bool complete = cf.require("certificate") && cf.require("private_key");
        if (complete && read_certificate(cf, &c)) tls.certificates.push_back(std::move(c));
      }
    }
    // A listener without its own certificate cannot terminate TLS at all.
    if (tls.certificates.empty() && !f.has("certificate") && !f.has("private_key") &&
        !f.has("certificates"))
      d.error(tls.loc, what + ": needs certificate and private_key, or certificates");
    f.string("ca", &tls.ca);
    std::string mode;
    if (f.string("client_certificate", &mode)) {
      if (mode == "required" || mode == "optional")
        tls.client_certificate_required = mode == "required";
      else
        d.error(value_loc(d, *f.find("client_certificate")),
                "client_certificate in " + what + ": expected required or optional, got '" + mode +
                    "'");
      if (tls.ca.empty())
        d.error(value_loc(d, *f.find("client_certificate")),
                "client_certificate in " + what + " needs ca (the bundle to verify against)");
    }
    if (f.string("min_version", &tls.min_version) && tls.min_version != "1.2" &&
        tls.min_version != "1.3")
      d.error(value_loc(d, *f.find("min_version")),
              "min_version in " + what +
                  ": expected \"1.2\" or \"1.3\" (older versions are "
                  "never accepted), got '" +
                  tls.min_version + "'");
    f.string("ciphers", &tls.ciphers);
    return tls;
  }
  Fields f(d, e.value, tls.loc, what, {"sni", "ca", "verify", "certificate", "private_key"});
  if (!f.is_map()) return tls;
  f.string("sni", &tls.sni);
  f.string("ca", &tls.ca);
  f.boolean("verify", &tls.verify);
  TlsCertificate c;
  if (read_certificate(f, &c)) tls.certificates.push_back(std::move(c));
  return tls;
}

Cluster parse_cluster(ParseContext& ctx, const YAML::Node& n, const Location& loc, NameAt* name) {
  Diagnostics& d = ctx.d;
  Cluster c;
  c.loc = loc;
  Fields f(d, n, loc, "cluster",
           {"name", "endpoints", "protocol", "tls", "connect_timeout", "timeout", "max_connections",
            "max_pending", "pending_timeout", "connect_retries", "idle_timeout", "metadata"});
  if (!f.is_map()) return c;

  if (f.string("name", &c.name, /*required=*/true)) *name = {c.name, value_loc(d, *f.find("name"))};

  if (const MapEntry* e = f.list("endpoints")) {
    if (e->value.size() == 0) d.error(value_loc(d, *e), "endpoints in cluster: must not be empty");
    for (const YAML::Node& item : e->value) {
      Address a;
      // Port 0 means "any" only when binding; nothing can be reached there.
      if (read_address(d, item, d.at(item), "items of endpoints in cluster",
                       /*allow_port_zero=*/false, &a))
        c.endpoints.push_back(std::move(a));
    }
  } else if (!f.has("endpoints")) {
    f.require("endpoints");
  }

  if (f.string("protocol", &c.protocol) && c.protocol != "http1" && c.protocol != "http2") {
    d.error(value_loc(d, *f.find("protocol")),
            "protocol in cluster: expected http1 or http2, got '" + c.protocol + "'");
  }
  if (const MapEntry* e = f.find("tls")) c.tls = parse_tls(d, *e, "cluster tls", false);

  f.duration("connect_timeout", &c.connect_timeout);
  f.duration("timeout", &c.timeout);
  f.duration("idle_timeout", &c.idle_timeout);
  f.uint32("max_connections", &c.max_connections, /*min=*/1);
  f.uint32("max_pending", &c.max_pending);
  f.duration("pending_timeout", &c.pending_timeout);
  // More retries than that is a retry storm, not resilience.
  f.uint32("connect_retries", &c.connect_retries, 0, 100);
  if (const MapEntry* m = f.find("metadata")) parse_metadata(d, *m, "cluster", &c.metadata);
  return c;
}

}  // namespace sy::config
