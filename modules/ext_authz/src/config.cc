#include "config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <initializer_list>

namespace ext_authz {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads one JSON object field by field, with errors that name the field's path.
class Reader {
 public:
  Reader(const json::Value& v, std::string path, std::string* err)
      : v_(v), path_(std::move(path)), err_(err) {}

  bool ok() const { return err_->empty(); }
  bool fail(const std::string& field, const std::string& why) {
    if (err_->empty()) *err_ = where(field) + ": " + why;
    return false;
  }
  std::string where(const std::string& field) const {
    return path_.empty() ? field : path_ + "." + field;
  }
  const json::Value* get(const char* field) { return v_.find(field); }

  // Every key must be one of KNOWN; "@type" (from a pasted Envoy typed_config) is ignored.
  bool known(std::initializer_list<const char*> names) {
    // A plain loop variable, not a structured binding: clang before 16 cannot capture one.
    for (const auto& member : v_.obj) {
      const std::string& k = member.first;
      if (k == "@type") continue;
      bool found = std::any_of(names.begin(), names.end(), [&](const char* n) { return k == n; });
      if (!found) {
        std::string list;
        for (const char* n : names) list += std::string(list.empty() ? "" : ", ") + n;
        return fail(k, "unknown field; expected one of: " + list);
      }
    }
    return true;
  }
  bool boolean(const char* field, bool* out) {
    const json::Value* f = v_.find(field);
    if (!f) return true;
    if (f->kind != json::Value::Bool)
      return fail(field, std::string("expected true or false, got ") + f->kind_name());
    *out = f->b;
    return true;
  }
  bool string(const char* field, std::string* out) {
    const json::Value* f = v_.find(field);
    if (!f) return true;
    if (f->kind != json::Value::String)
      return fail(field, std::string("expected a string, got ") + f->kind_name());
    *out = f->str;
    return true;
  }
  bool uint(const char* field, uint32_t* out, uint32_t min, uint32_t max) {
    const json::Value* f = v_.find(field);
    if (!f) return true;
    double d = 0;
    // Envoy's JSON form writes 64-bit and wrapped numbers as strings; accept both.
    if (f->kind == json::Value::Number)
      d = f->num;
    else if (f->kind == json::Value::String && !f->str.empty() &&
             std::all_of(f->str.begin(), f->str.end(), ::isdigit))
      d = std::stod(f->str);
    else
      return fail(field, std::string("expected a number, got ") + f->kind_name());
    if (d != std::floor(d) || d < min || d > max)
      return fail(field, "must be an integer between " + std::to_string(min) + " and " +
                             std::to_string(max));
    *out = uint32_t(d);
    return true;
  }
  bool object(const char* field, const json::Value** out) {
    const json::Value* f = v_.find(field);
    *out = nullptr;
    if (!f) return true;
    if (!f->is_object()) return fail(field, std::string("expected a map, got ") + f->kind_name());
    *out = f;
    return true;
  }

 private:
  const json::Value& v_;
  std::string path_;
  std::string* err_;
};

bool parse_matcher(const json::Value& v, const std::string& path, StringMatcher* m,
                   std::string* err) {
  if (!v.is_object()) return *err = path + ": expected a map", false;
  Reader r(v, path, err);
  if (!r.known({"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"}))
    return false;
  if (!r.boolean("ignore_case", &m->ignore_case)) return false;
  int kinds = 0;
  for (auto [name, kind] : {std::pair{"exact", StringMatcher::kExact},
                            {"prefix", StringMatcher::kPrefix},
                            {"suffix", StringMatcher::kSuffix},
                            {"contains", StringMatcher::kContains}}) {
    if (v.find(name)) {
      ++kinds;
      m->kind = kind;
      if (!r.string(name, &m->value)) return false;
    }
  }
  if (const json::Value* re = v.find("safe_regex")) {
    ++kinds;
    m->kind = StringMatcher::kRegex;
    const json::Value* regex = re->find("regex");
    if (!regex || regex->kind != json::Value::String)
      return r.fail("safe_regex", "expected a map with a string 'regex'");
    m->value = regex->str;
    try {
      auto flags = std::regex::ECMAScript | std::regex::optimize;
      if (m->ignore_case) flags |= std::regex::icase;
      m->regex = std::regex(m->value, flags);
    } catch (const std::regex_error& e) {
      return r.fail("safe_regex", "invalid regex '" + m->value + "': " + e.what());
    }
  }
  if (kinds != 1)
    return r.fail("", "needs exactly one of: exact, prefix, suffix, contains, safe_regex");
  if (m->ignore_case) m->value = lower(m->value);
  return true;
}

bool parse_list(Reader& r, const char* field, ListMatcher* out, std::string* err) {
  const json::Value* f = nullptr;
  if (!r.object(field, &f)) return false;
  if (!f) return true;
  Reader lr(*f, r.where(field), err);
  if (!lr.known({"patterns"})) return false;
  out->set = true;
  const json::Value* p = f->find("patterns");
  if (!p) return true;
  if (p->kind != json::Value::Array) return lr.fail("patterns", "expected a list");
  for (size_t i = 0; i < p->arr.size(); ++i) {
    StringMatcher m;
    if (!parse_matcher(p->arr[i], lr.where("patterns[" + std::to_string(i) + "]"), &m, err))
      return false;
    out->patterns.push_back(std::move(m));
  }
  return true;
}

bool parse_timeout(Reader& r, const json::Value& parent, uint64_t* out) {
  const json::Value* t = parent.find("timeout");
  if (!t) return true;
  auto ms = parse_duration_ms(*t);
  if (!ms) return r.fail("timeout", "expected a duration like \"0.25s\"");
  *out = *ms;
  return true;
}

bool parse_grpc_service(Reader& top, const json::Value& v, Config* c, std::string* err) {
  Reader r(v, top.where("grpc_service"), err);
  if (!r.known({"envoy_grpc", "timeout", "initial_metadata"})) return false;
  const json::Value* eg = nullptr;
  if (!r.object("envoy_grpc", &eg)) return false;
  if (!eg)
    return r.fail("envoy_grpc",
                  "required (google_grpc is not supported: the call goes "
                  "through a Switchyard cluster)");
  Reader er(*eg, r.where("envoy_grpc"), err);
  if (!er.known({"cluster_name", "authority", "skip_envoy_headers"})) return false;
  if (!er.string("cluster_name", &c->cluster) || !er.string("authority", &c->authority))
    return false;
  if (c->cluster.empty()) return er.fail("cluster_name", "required");
  return parse_timeout(r, v, &c->timeout_ms);
}

bool parse_http_service(Reader& top, const json::Value& v, Config* c, std::string* err) {
  c->mode = Config::kHttp;
  Reader r(v, top.where("http_service"), err);
  if (!r.known({"server_uri", "path_prefix", "authorization_request", "authorization_response"}))
    return false;
  const json::Value* su = nullptr;
  if (!r.object("server_uri", &su)) return false;
  if (!su) return r.fail("server_uri", "required");
  Reader sr(*su, r.where("server_uri"), err);
  std::string uri;
  if (!sr.known({"uri", "cluster", "timeout"}) || !sr.string("uri", &uri) ||
      !sr.string("cluster", &c->cluster) || !parse_timeout(sr, *su, &c->timeout_ms))
    return false;
  if (c->cluster.empty()) return sr.fail("cluster", "required");
  // The authority of the URI (scheme://authority/path) names the server, as in Envoy.
  std::string_view u = uri;
  if (auto p = u.find("://"); p != std::string_view::npos) u.remove_prefix(p + 3);
  c->authority = std::string(u.substr(0, u.find('/')));
  if (!r.string("path_prefix", &c->path_prefix)) return false;
  if (!c->path_prefix.empty() && c->path_prefix[0] != '/')
    return r.fail("path_prefix", "must start with '/'");

  const json::Value* req = nullptr;
  if (!r.object("authorization_request", &req)) return false;
  if (req) {
    Reader rr(*req, r.where("authorization_request"), err);
    if (!rr.known({"allowed_headers", "headers_to_add"})) return false;
    // The deprecated allowed_headers here means what ExtAuthz.allowed_headers means.
    if (!parse_list(rr, "allowed_headers", &c->allowed_headers, err)) return false;
    if (const json::Value* h = req->find("headers_to_add")) {
      if (h->kind != json::Value::Array) return rr.fail("headers_to_add", "expected a list");
      for (const json::Value& hv : h->arr) {
        const json::Value* k = hv.find("key");
        const json::Value* val = hv.find("value");
        if (!k || k->kind != json::Value::String || k->str.empty() ||
            (val && val->kind != json::Value::String))
          return rr.fail("headers_to_add", "each entry needs a string key and value");
        c->headers_to_add.emplace_back(lower(k->str), val ? val->str : "");
      }
    }
  }
  const json::Value* resp = nullptr;
  if (!r.object("authorization_response", &resp)) return false;
  if (resp) {
    Reader rr(*resp, r.where("authorization_response"), err);
    if (!rr.known({"allowed_upstream_headers", "allowed_upstream_headers_to_append",
                   "allowed_client_headers", "allowed_client_headers_on_success"}))
      return false;
    if (!parse_list(rr, "allowed_upstream_headers", &c->allowed_upstream_headers, err) ||
        !parse_list(rr, "allowed_upstream_headers_to_append",
                    &c->allowed_upstream_headers_to_append, err) ||
        !parse_list(rr, "allowed_client_headers", &c->allowed_client_headers, err) ||
        !parse_list(rr, "allowed_client_headers_on_success", &c->allowed_client_headers_on_success,
                    err))
      return false;
  }
  return true;
}

// A list of metadata namespace names (metadata_context_namespaces and its route twin).
bool namespaces(Reader& r, const json::Value& v, const char* field, std::vector<std::string>* out) {
  const json::Value* list = v.find(field);
  if (!list) return true;
  if (list->kind != json::Value::Array) return r.fail(field, "expected a list of strings");
  for (const json::Value& n : list->arr) {
    if (n.kind != json::Value::String || n.str.empty())
      return r.fail(field, "expected a list of strings");
    out->push_back(n.str);
  }
  return true;
}

// A BoolValue in JSON: true, false, or {value: b}.
bool bool_value(Reader& r, const json::Value& v, const char* field, bool* out) {
  const json::Value* f = v.find(field);
  if (!f) return true;
  const json::Value* b = f->is_object() ? f->find("value") : f;
  if (!b || b->kind != json::Value::Bool) return r.fail(field, "expected true or false");
  *out = b->b;
  return true;
}

// filter_enabled (RuntimeFractionalPercent) and deny_at_disable (RuntimeFeatureFlag). Their
// runtime_key is accepted and ignored: Switchyard has no runtime layer, so default_value is
// the value.
bool parse_runtime(Reader& top, const json::Value& v, Config* c, std::string* err) {
  const json::Value* fe = nullptr;
  if (!top.object("filter_enabled", &fe)) return false;
  if (fe) {
    Reader r(*fe, "filter_enabled", err);
    const json::Value* dv = nullptr;
    if (!r.known({"default_value", "runtime_key"}) || !r.object("default_value", &dv)) return false;
    if (!dv) return r.fail("default_value", "required");
    Reader dr(*dv, r.where("default_value"), err);
    if (!dr.known({"numerator", "denominator"}) ||
        !dr.uint("numerator", &c->filter_enabled.numerator, 0, UINT32_MAX))
      return false;
    if (!dv->find("numerator")) c->filter_enabled.numerator = 0;  // proto3: absent is 0
    const json::Value* d = dv->find("denominator");
    static const std::pair<const char*, uint32_t> kDenominators[] = {
        {"HUNDRED", 100}, {"TEN_THOUSAND", 10000}, {"MILLION", 1000000}};
    c->filter_enabled.denominator = 100;
    if (d) {
      bool found = false;
      for (size_t i = 0; i < 3; ++i) {
        // The enum's name, or its number as protobuf's JSON form also allows.
        if ((d->kind == json::Value::String && d->str == kDenominators[i].first) ||
            (d->kind == json::Value::Number && d->num == double(i))) {
          c->filter_enabled.denominator = kDenominators[i].second;
          found = true;
        }
      }
      if (!found) return dr.fail("denominator", "expected HUNDRED, TEN_THOUSAND or MILLION");
    }
  }
  const json::Value* dad = nullptr;
  if (!top.object("deny_at_disable", &dad)) return false;
  if (dad) {
    Reader r(*dad, "deny_at_disable", err);
    if (!r.known({"default_value", "runtime_key"})) return false;
    if (!dad->find("default_value")) return r.fail("default_value", "required");
    if (!bool_value(r, *dad, "default_value", &c->deny_at_disable)) return false;
  }
  return true;
}

}  // namespace

bool StringMatcher::match(std::string_view s) const {
  std::string folded;
  if (ignore_case) {
    folded = lower(s);
    s = folded;
  }
  switch (kind) {
    case kExact:
      return s == value;
    case kPrefix:
      return s.substr(0, value.size()) == value;
    case kSuffix:
      return s.size() >= value.size() && s.substr(s.size() - value.size()) == value;
    case kContains:
      return s.find(value) != std::string_view::npos;
    case kRegex:
      return std::regex_match(s.begin(), s.end(), regex);
  }
  return false;
}

bool ListMatcher::match(std::string_view s) const {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const StringMatcher& m) { return m.match(s); });
}

bool Config::forwards(std::string_view name) const {
  if (disallowed_headers.match(name)) return false;
  if (mode == kHttp) {
    // Envoy's HTTP client always sends these; allowed_headers adds to them.
    if (name == "authorization" || name == ":method" || name == ":path" || name == ":authority" ||
        name == "host")
      return true;
    return allowed_headers.match(name);
  }
  return !allowed_headers.set || allowed_headers.match(name);
}

std::optional<uint64_t> parse_duration_ms(const json::Value& v) {
  double seconds = 0;
  if (v.kind == json::Value::String) {
    std::string_view s = v.str;
    if (s.empty() || s.back() != 's') return std::nullopt;
    s.remove_suffix(1);
    if (s.empty() ||
        !std::all_of(s.begin(), s.end(), [](char c) { return isdigit(c) || c == '.'; }))
      return std::nullopt;
    seconds = std::stod(std::string(s));
  } else if (v.is_object()) {
    const json::Value* sec = v.find("seconds");
    const json::Value* nanos = v.find("nanos");
    if (sec) seconds += sec->kind == json::Value::String ? std::stod(sec->str) : sec->num;
    if (nanos) seconds += nanos->num / 1e9;
  } else {
    return std::nullopt;
  }
  if (seconds < 0 || seconds > 3600) return std::nullopt;
  return uint64_t(std::llround(seconds * 1000));
}

std::optional<Config> parse_config(std::string_view text, std::string* err) {
  err->clear();
  json::Value v;
  if (!json::parse(text.empty() ? "{}" : text, &v, err)) return std::nullopt;
  if (v.kind == json::Value::Null) v.kind = json::Value::Object;
  if (!v.is_object()) return *err = "the config must be a map", std::nullopt;
  Config c;
  Reader r(v, "", err);
  if (!r.known({"grpc_service",
                "http_service",
                "transport_api_version",
                "failure_mode_allow",
                "failure_mode_allow_header_add",
                "with_request_body",
                "clear_route_cache",
                "status_on_error",
                "validate_mutations",
                "metadata_context_namespaces",
                "route_metadata_context_namespaces",
                "include_peer_certificate",
                "stat_prefix",
                "allowed_headers",
                "disallowed_headers",
                "include_tls_session",
                "charge_cluster_response_stats",
                "encode_raw_headers",
                "enable_dynamic_metadata_ingestion",
                "max_denied_response_body_bytes",
                "filter_enabled",
                "deny_at_disable"}))
    return std::nullopt;
  const json::Value *grpc = nullptr, *http = nullptr;
  if (!r.object("grpc_service", &grpc) || !r.object("http_service", &http)) return std::nullopt;
  if ((grpc == nullptr) == (http == nullptr))
    return r.fail("grpc_service", "needs exactly one of grpc_service and http_service"),
           std::nullopt;
  if (grpc && !parse_grpc_service(r, *grpc, &c, err)) return std::nullopt;
  if (http && !parse_http_service(r, *http, &c, err)) return std::nullopt;

  std::string api;
  if (!r.string("transport_api_version", &api)) return std::nullopt;
  if (!api.empty() && api != "V3" && api != "AUTO")
    return r.fail("transport_api_version", "only V3 exists"), std::nullopt;
  bool ignored = false;
  if (!r.boolean("failure_mode_allow", &c.failure_mode_allow) ||
      !r.boolean("failure_mode_allow_header_add", &c.failure_mode_allow_header_add) ||
      !r.boolean("clear_route_cache", &c.clear_route_cache) ||
      !r.boolean("validate_mutations", &c.validate_mutations) ||
      !r.boolean("include_peer_certificate", &c.include_peer_certificate) ||
      !r.boolean("include_tls_session", &c.include_tls_session) ||
      !r.boolean("encode_raw_headers", &c.encode_raw_headers) ||
      !r.boolean("charge_cluster_response_stats", &ignored) ||
      !r.string("stat_prefix", &c.stat_prefix) ||
      !r.uint("max_denied_response_body_bytes", &c.max_denied_response_body_bytes, 0, UINT32_MAX) ||
      !parse_list(r, "allowed_headers", &c.allowed_headers, err) ||
      !parse_list(r, "disallowed_headers", &c.disallowed_headers, err))
    return std::nullopt;
  // Envoy wraps it in BoolValue: true, false, or {value: b}.
  if (!bool_value(r, v, "enable_dynamic_metadata_ingestion",
                  &c.enable_dynamic_metadata_ingestion) ||
      !parse_runtime(r, v, &c, err))
    return std::nullopt;

  const json::Value* soe = nullptr;
  if (!r.object("status_on_error", &soe)) return std::nullopt;
  if (soe) {
    Reader sr(*soe, "status_on_error", err);
    if (!sr.known({"code"}) || !sr.uint("code", &c.status_on_error, 200, 599)) return std::nullopt;
  }
  const json::Value* wrb = nullptr;
  if (!r.object("with_request_body", &wrb)) return std::nullopt;
  if (wrb) {
    Reader br(*wrb, "with_request_body", err);
    c.with_request_body.enabled = true;
    if (!br.known({"max_request_bytes", "allow_partial_message", "pack_as_bytes"}) ||
        !br.uint("max_request_bytes", &c.with_request_body.max_request_bytes, 1, UINT32_MAX) ||
        !br.boolean("allow_partial_message", &c.with_request_body.allow_partial_message) ||
        !br.boolean("pack_as_bytes", &c.with_request_body.pack_as_bytes))
      return std::nullopt;
    if (c.with_request_body.max_request_bytes == 0)
      return br.fail("max_request_bytes", "required, at least 1"), std::nullopt;
  }
  if (!namespaces(r, v, "metadata_context_namespaces", &c.metadata_context_namespaces) ||
      !namespaces(r, v, "route_metadata_context_namespaces", &c.route_metadata_context_namespaces))
    return std::nullopt;
  return c;
}

std::optional<RouteConfig> parse_route_config(std::string_view text, std::string* err) {
  err->clear();
  json::Value v;
  if (!json::parse(text.empty() ? "{}" : text, &v, err)) return std::nullopt;
  if (!v.is_object()) return *err = "the per-route config must be a map", std::nullopt;
  RouteConfig rc;
  Reader r(v, "", err);
  if (!r.known({"disabled", "check_settings"}) || !r.boolean("disabled", &rc.disabled))
    return std::nullopt;
  const json::Value* cs = nullptr;
  if (!r.object("check_settings", &cs)) return std::nullopt;
  if (cs && rc.disabled)
    return r.fail("check_settings", "conflicts with disabled; use only one"), std::nullopt;
  if (cs) {
    Reader cr(*cs, "check_settings", err);
    if (!cr.known({"context_extensions", "disable_request_body_buffering"}) ||
        !cr.boolean("disable_request_body_buffering", &rc.disable_request_body_buffering))
      return std::nullopt;
    const json::Value* ce = nullptr;
    if (!cr.object("context_extensions", &ce)) return std::nullopt;
    if (ce)
      for (const auto& [k, val] : ce->obj) {
        if (val.kind != json::Value::String)
          return cr.fail("context_extensions." + k, "expected a string"), std::nullopt;
        rc.context_extensions[k] = val.str;
      }
  }
  return rc;
}

}  // namespace ext_authz
