// The filter's `config:` block and a route's `per_filter:` block, in Envoy's field names
// (ExternalProcessor and ExtProcPerRoute, as JSON). "@type" keys are accepted and ignored so
// that a typed_config copied from an Envoy config works unchanged.
#include <cctype>
#include <cmath>
#include <memory>

#include "ext_proc.h"

namespace extproc {
namespace {

using json::Value;

struct Parser {
  std::string* err;

  bool fail(const std::string& where, const std::string& what) {
    *err = where + ": " + what;
    return false;
  }

  bool keys(const Value& v, const std::string& where, std::initializer_list<const char*> known) {
    if (!v.is_object()) return fail(where, "must be an object");
    for (const auto& [k, _] : v.obj) {
      if (k == "@type") continue;
      bool ok = false;
      for (const char* n : known) ok = ok || k == n;
      if (!ok) return fail(where, "unknown field \"" + k + "\"");
    }
    return true;
  }

  bool boolean(const Value& v, const std::string& where, bool* out) {
    // google.protobuf.BoolValue's JSON form is the bare bool; {value: b} is accepted too.
    if (v.kind == Value::Bool) {
      *out = v.b;
      return true;
    }
    if (v.is_object() && v.find("value") && v.find("value")->kind == Value::Bool) {
      *out = v.find("value")->b;
      return true;
    }
    return fail(where, "must be true or false");
  }

  bool string(const Value& v, const std::string& where, std::string* out) {
    if (v.kind != Value::String) return fail(where, "must be a string");
    *out = v.str;
    return true;
  }

  bool strings(const Value& v, const std::string& where, std::vector<std::string>* out) {
    if (v.kind != Value::Array) return fail(where, "must be a list of strings");
    for (const auto& e : v.arr) {
      if (e.kind != Value::String) return fail(where, "must be a list of strings");
      out->push_back(e.str);
    }
    return true;
  }

  // google.protobuf.Duration: "1.5s" (its JSON form), {seconds, nanos}, or a number of seconds.
  bool duration_ms(const Value& v, const std::string& where, uint64_t* out) {
    double secs = -1;
    if (v.kind == Value::String && !v.str.empty() && v.str.back() == 's') {
      char* end = nullptr;
      std::string num = v.str.substr(0, v.str.size() - 1);
      secs = std::strtod(num.c_str(), &end);
      if (num.empty() || end != num.c_str() + num.size()) secs = -1;
    } else if (v.kind == Value::Number) {
      secs = v.num;
    } else if (v.is_object()) {
      const Value* s = v.find("seconds");
      const Value* n = v.find("nanos");
      secs = 0;
      if (s) secs += s->kind == Value::Number ? s->num : std::strtod(s->str.c_str(), nullptr);
      if (n && n->kind == Value::Number) secs += n->num / 1e9;
    }
    if (!(secs >= 0) || secs > 3600 * 24 * 365)
      return fail(where, "must be a duration such as \"0.2s\"");
    *out = static_cast<uint64_t>(std::llround(secs * 1000));
    return true;
  }

  bool enum_value(const Value& v, const std::string& where,
                  std::initializer_list<const char*> names, int* out) {
    if (v.kind == Value::Number && v.integral && v.i >= 0 && v.i < int64_t(names.size())) {
      *out = int(v.i);
      return true;
    }
    if (v.kind == Value::String) {
      int i = 0;
      for (const char* n : names) {
        if (v.str == n) {
          *out = i;
          return true;
        }
        ++i;
      }
    }
    std::string all;
    for (const char* n : names) all += std::string(all.empty() ? "" : ", ") + n;
    return fail(where, "must be one of " + all);
  }

  bool mode(const Value& v, const std::string& where, Mode* m) {
    if (!keys(v, where,
              {"request_header_mode", "response_header_mode", "request_body_mode",
               "response_body_mode", "request_trailer_mode", "response_trailer_mode"}))
      return false;
    static const std::initializer_list<const char*> hdr = {"DEFAULT", "SEND", "SKIP"};
    static const std::initializer_list<const char*> body = {
        "NONE", "STREAMED", "BUFFERED", "BUFFERED_PARTIAL", "FULL_DUPLEX_STREAMED", "GRPC"};
    struct {
      const char* key;
      int* field;
      bool is_body;
    } fields[] = {{"request_header_mode", &m->request_header, false},
                  {"response_header_mode", &m->response_header, false},
                  {"request_body_mode", &m->request_body, true},
                  {"response_body_mode", &m->response_body, true},
                  {"request_trailer_mode", &m->request_trailer, false},
                  {"response_trailer_mode", &m->response_trailer, false}};
    for (auto& f : fields) {
      const Value* x = v.find(f.key);
      if (!x) continue;
      if (!enum_value(*x, where + "." + f.key, f.is_body ? body : hdr, f.field)) return false;
      // Envoy 1.40 accepts GRPC but implements none of it: no gRPC message is ever parsed out
      // of the body, which is sent whole when it happens to be complete by the headers'
      // answer and passes unprocessed otherwise (measured). Refused rather than copied: what
      // a processor would see would depend on timing.
      if (f.is_body && *f.field == kGrpc)
        return fail(where + "." + f.key,
                    "GRPC is not supported (Envoy 1.40 does not implement it either: it parses no "
                    "gRPC messages out of the body); use STREAMED or BUFFERED");
    }
    return true;
  }

  bool header_values(const Value& v, const std::string& where,
                     std::vector<std::pair<std::string, std::string>>* out) {
    if (v.kind != Value::Array) return fail(where, "must be a list of {key, value}");
    for (const auto& e : v.arr) {
      if (!keys(e, where, {"key", "value", "raw_value"})) return false;
      const Value* k = e.find("key");
      const Value* val = e.find("value");
      if (!k || k->kind != Value::String || k->str.empty()) return fail(where, "needs a key");
      std::string name = k->str;
      for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
      out->emplace_back(name, val && val->kind == Value::String ? val->str : "");
    }
    return true;
  }

  bool grpc_service(const Value& v, const std::string& where, GrpcTarget* g) {
    if (!keys(v, where,
              {"envoy_grpc", "timeout", "initial_metadata", "google_grpc", "retry_policy"}))
      return false;
    if (v.find("google_grpc"))
      return fail(where + ".google_grpc", "not supported: use envoy_grpc with a cluster");
    const Value* eg = v.find("envoy_grpc");
    if (!eg) return fail(where, "needs envoy_grpc {cluster_name}");
    if (!keys(*eg, where + ".envoy_grpc",
              {"cluster_name", "authority", "retry_policy", "max_receive_message_length",
               "skip_envoy_headers"}))
      return false;
    const Value* cn = eg->find("cluster_name");
    if (!cn || !string(*cn, where + ".envoy_grpc.cluster_name", &g->cluster)) {
      if (!cn) return fail(where + ".envoy_grpc", "needs cluster_name");
      return false;
    }
    if (const Value* a = eg->find("authority"))
      if (!string(*a, where + ".envoy_grpc.authority", &g->authority)) return false;
    if (const Value* t = v.find("timeout"))
      if (!duration_ms(*t, where + ".timeout", &g->timeout_ms)) return false;
    if (const Value* im = v.find("initial_metadata"))
      if (!header_values(*im, where + ".initial_metadata", &g->initial_metadata)) return false;
    return true;
  }

  bool matcher(const Value& v, const std::string& where, StringMatcher* m) {
    if (!keys(v, where, {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"}))
      return false;
    if (const Value* ic = v.find("ignore_case"))
      if (!boolean(*ic, where + ".ignore_case", &m->ignore_case)) return false;
    struct {
      const char* key;
      StringMatcher::Kind kind;
    } kinds[] = {{"exact", StringMatcher::kExact},
                 {"prefix", StringMatcher::kPrefix},
                 {"suffix", StringMatcher::kSuffix},
                 {"contains", StringMatcher::kContains}};
    for (auto& k : kinds) {
      if (const Value* x = v.find(k.key)) {
        m->kind = k.kind;
        return string(*x, where + "." + k.key, &m->value);
      }
    }
    if (const Value* r = v.find("safe_regex")) {
      m->kind = StringMatcher::kRegex;
      return regex(*r, where + ".safe_regex", &m->re);
    }
    return fail(where, "needs one of exact, prefix, suffix, contains, safe_regex");
  }

  bool regex(const Value& v, const std::string& where, std::optional<std::regex>* out) {
    const Value* r = v.is_object() ? v.find("regex") : nullptr;
    if (!r || r->kind != Value::String) return fail(where, "needs {regex: \"...\"}");
    try {
      out->emplace(r->str, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return fail(where, std::string("invalid regex: ") + e.what());
    }
    return true;
  }

  bool matchers(const Value& v, const std::string& where, std::vector<StringMatcher>* out) {
    if (!keys(v, where, {"patterns"})) return false;
    const Value* p = v.find("patterns");
    if (!p || p->kind != Value::Array) return fail(where, "needs patterns: [...]");
    for (const auto& e : p->arr) {
      out->emplace_back();
      if (!matcher(e, where + ".patterns", &out->back())) return false;
    }
    return true;
  }

  bool rules(const Value& v, const std::string& where, MutationRules* r) {
    if (!keys(v, where,
              {"allow_all_routing", "allow_envoy", "disallow_system", "disallow_all",
               "allow_expression", "disallow_expression", "disallow_is_error"}))
      return false;
    struct {
      const char* key;
      bool* field;
    } flags[] = {{"allow_all_routing", &r->allow_all_routing},
                 {"allow_envoy", &r->allow_envoy},
                 {"disallow_system", &r->disallow_system},
                 {"disallow_all", &r->disallow_all},
                 {"disallow_is_error", &r->disallow_is_error}};
    for (auto& f : flags)
      if (const Value* x = v.find(f.key))
        if (!boolean(*x, where + "." + f.key, f.field)) return false;
    if (const Value* x = v.find("allow_expression"))
      if (!regex(*x, where + ".allow_expression", &r->allow_expression)) return false;
    if (const Value* x = v.find("disallow_expression"))
      if (!regex(*x, where + ".disallow_expression", &r->disallow_expression)) return false;
    return true;
  }

  bool namespaces(const Value& v, const std::string& where, std::vector<std::string>* untyped,
                  std::vector<std::string>* typed = nullptr) {
    if (!keys(v, where, {"untyped", "typed"})) return false;
    if (const Value* u = v.find("untyped"))
      if (!strings(*u, where + ".untyped", untyped)) return false;
    // receiving_namespaces.typed: Envoy accepts it and writes nothing typed either.
    std::vector<std::string> ignored;
    if (const Value* t = v.find("typed"))
      if (!strings(*t, where + ".typed", typed ? typed : &ignored)) return false;
    return true;
  }

  // Envoy's config validation for FULL_DUPLEX_STREAMED (its ext_proc config.cc): the end of
  // a body with trailers is only known from the trailers message, so the trailers must be
  // sent; and a body already handed to the processor cannot go on unprocessed, so there is no
  // failure_mode_allow. The messages are Envoy's.
  bool full_duplex_rules(const Value& v, const Config& c) {
    const std::string where = v.find("processing_mode") ? "ext_proc.processing_mode" : "ext_proc";
    if (c.mode.request_body == kFullDuplex && c.mode.request_trailer != kSend)
      return fail(where,
                  "If the ext_proc filter has the request_body_mode set to FULL_DUPLEX_STREAMED, "
                  "then the request_trailer_mode has to be set to SEND");
    if (c.mode.response_body == kFullDuplex && c.mode.response_trailer != kSend)
      return fail(where,
                  "If the ext_proc filter has the response_body_mode set to "
                  "FULL_DUPLEX_STREAMED, then the response_trailer_mode has to be set to SEND");
    if ((c.mode.request_body == kFullDuplex || c.mode.response_body == kFullDuplex) &&
        c.failure_mode_allow)
      return fail("ext_proc.failure_mode_allow",
                  "If the ext_proc filter has either the request_body_mode or the "
                  "response_body_mode set to FULL_DUPLEX_STREAMED, then the failure_mode_allow "
                  "has to be left as false");
    if ((c.mode.request_body == kFullDuplex || c.mode.response_body == kFullDuplex) &&
        !SY_HAS_SLOT(g_host, sy_host_t, continue_headers_take_body))
      return fail(where, "FULL_DUPLEX_STREAMED needs a host with continue_headers_take_body");
    return true;
  }

  bool config(const Value& v, Config* c) {
    if (!keys(v, "ext_proc",
              {"grpc_service",
               "failure_mode_allow",
               "processing_mode",
               "request_attributes",
               "response_attributes",
               "message_timeout",
               "stat_prefix",
               "mutation_rules",
               "max_message_timeout",
               "disable_clear_route_cache",
               "forward_rules",
               "filter_metadata",
               "allow_mode_override",
               "disable_immediate_response",
               "metadata_options",
               "observability_mode",
               "route_cache_action",
               "deferred_close_timeout",
               "send_body_without_waiting_for_header_response",
               "allowed_override_modes",
               "status_on_error",
               "partial_buffer_bytes",
               "stream_idle_timeout"}))
      return false;
    const Value* gs = v.find("grpc_service");
    if (!gs) return fail("ext_proc", "needs grpc_service {envoy_grpc {cluster_name}}");
    if (!grpc_service(*gs, "ext_proc.grpc_service", &c->grpc)) return false;
    struct {
      const char* key;
      bool* field;
    } flags[] = {{"failure_mode_allow", &c->failure_mode_allow},
                 {"disable_clear_route_cache", &c->disable_clear_route_cache},
                 {"allow_mode_override", &c->allow_mode_override},
                 {"disable_immediate_response", &c->disable_immediate_response},
                 {"observability_mode", &c->observability_mode},
                 {"send_body_without_waiting_for_header_response",
                  &c->send_body_without_waiting_for_header_response}};
    for (auto& f : flags)
      if (const Value* x = v.find(f.key))
        if (!boolean(*x, std::string("ext_proc.") + f.key, f.field)) return false;
    if (const Value* x = v.find("processing_mode"))
      if (!mode(*x, "ext_proc.processing_mode", &c->mode)) return false;
    if (!full_duplex_rules(v, *c)) return false;
    if (const Value* x = v.find("stream_idle_timeout"))
      if (!duration_ms(*x, "ext_proc.stream_idle_timeout", &c->stream_idle_timeout_ms))
        return false;
    if (const Value* x = v.find("request_attributes"))
      if (!strings(*x, "ext_proc.request_attributes", &c->request_attributes)) return false;
    if (const Value* x = v.find("response_attributes"))
      if (!strings(*x, "ext_proc.response_attributes", &c->response_attributes)) return false;
    if (const Value* x = v.find("message_timeout"))
      if (!duration_ms(*x, "ext_proc.message_timeout", &c->message_timeout_ms)) return false;
    if (c->message_timeout_ms > 3600 * 1000)
      return fail("ext_proc.message_timeout", "must be at most 3600s");
    if (const Value* x = v.find("deferred_close_timeout"))
      if (!duration_ms(*x, "ext_proc.deferred_close_timeout", &c->deferred_close_ms)) return false;
    if (const Value* x = v.find("max_message_timeout"))
      if (!duration_ms(*x, "ext_proc.max_message_timeout", &c->max_message_timeout_ms))
        return false;
    if (const Value* x = v.find("mutation_rules"))
      if (!rules(*x, "ext_proc.mutation_rules", &c->rules)) return false;
    if (const Value* x = v.find("forward_rules")) {
      if (!keys(*x, "ext_proc.forward_rules", {"allowed_headers", "disallowed_headers"}))
        return false;
      if (const Value* a = x->find("allowed_headers")) {
        c->has_allowed_headers = true;
        if (!matchers(*a, "ext_proc.forward_rules.allowed_headers", &c->allowed_headers))
          return false;
      }
      if (const Value* d = x->find("disallowed_headers"))
        if (!matchers(*d, "ext_proc.forward_rules.disallowed_headers", &c->disallowed_headers))
          return false;
    }
    if (const Value* x = v.find("metadata_options")) {
      if (!keys(*x, "ext_proc.metadata_options",
                {"forwarding_namespaces", "receiving_namespaces",
                 "cluster_metadata_forwarding_namespaces"}))
        return false;
      if (const Value* f = x->find("forwarding_namespaces"))
        if (!namespaces(*f, "ext_proc.metadata_options.forwarding_namespaces",
                        &c->forwarding_namespaces, &c->forwarding_typed))
          return false;
      if (const Value* r = x->find("receiving_namespaces"))
        if (!namespaces(*r, "ext_proc.metadata_options.receiving_namespaces",
                        &c->receiving_namespaces))
          return false;
    }
    if (const Value* x = v.find("route_cache_action"))
      if (!enum_value(*x, "ext_proc.route_cache_action", {"DEFAULT", "CLEAR", "RETAIN"},
                      &c->route_cache_action))
        return false;
    if (const Value* x = v.find("allowed_override_modes")) {
      if (x->kind != Value::Array)
        return fail("ext_proc.allowed_override_modes", "must be a list of processing modes");
      for (const auto& e : x->arr) {
        c->allowed_override_modes.emplace_back();
        if (!mode(e, "ext_proc.allowed_override_modes", &c->allowed_override_modes.back()))
          return false;
      }
    }
    if (const Value* x = v.find("status_on_error")) {
      const Value* code = x->is_object() ? x->find("code") : nullptr;
      if (!code || code->kind != Value::Number || code->i < 200 || code->i > 599)
        return fail("ext_proc.status_on_error", "must be {code: 200..599}");
      c->status_on_error = uint32_t(code->i);
    }
    if (const Value* x = v.find("partial_buffer_bytes")) {
      if (x->kind != Value::Number || !x->integral || x->i < 1)
        return fail("ext_proc.partial_buffer_bytes", "must be a positive integer");
      c->partial_buffer_bytes = uint64_t(x->i);
    }
    return true;
  }

  bool route(const Value& v, RouteConfig* r) {
    if (!keys(v, "ext_proc per-route", {"disabled", "overrides"})) return false;
    if (const Value* d = v.find("disabled")) {
      bool b = false;
      if (!boolean(*d, "ext_proc per-route.disabled", &b)) return false;
      if (!b) return fail("ext_proc per-route.disabled", "must be true when set");
      if (v.find("overrides"))
        return fail("ext_proc per-route", "disabled and overrides are exclusive");
      return true;
    }
    const Value* o = v.find("overrides");
    if (!o) return fail("ext_proc per-route", "needs disabled: true or overrides");
    const std::string w = "ext_proc per-route.overrides";
    if (!keys(*o, w,
              {"processing_mode", "grpc_service", "failure_mode_allow", "grpc_initial_metadata",
               "request_attributes", "response_attributes", "metadata_options"}))
      return false;
    if (const Value* x = o->find("processing_mode")) {
      r->mode.emplace();
      if (!mode(*x, w + ".processing_mode", &*r->mode)) return false;
    }
    if (const Value* x = o->find("grpc_service")) {
      r->grpc.emplace();
      if (!grpc_service(*x, w + ".grpc_service", &*r->grpc)) return false;
    }
    if (const Value* x = o->find("failure_mode_allow")) {
      bool b = false;
      if (!boolean(*x, w + ".failure_mode_allow", &b)) return false;
      r->failure_mode_allow = b;
    }
    if (const Value* x = o->find("grpc_initial_metadata"))
      if (!header_values(*x, w + ".grpc_initial_metadata", &r->grpc_initial_metadata)) return false;
    if (const Value* x = o->find("metadata_options")) {
      if (!keys(*x, w + ".metadata_options", {"forwarding_namespaces", "receiving_namespaces"}))
        return false;
      if (const Value* f = x->find("forwarding_namespaces"))
        if (!namespaces(*f, w + ".metadata_options.forwarding_namespaces", &r->forwarding.emplace(),
                        &r->forwarding_typed.emplace()))
          return false;
      if (const Value* f = x->find("receiving_namespaces"))
        if (!namespaces(*f, w + ".metadata_options.receiving_namespaces", &r->receiving.emplace()))
          return false;
    }
    return true;
  }
};

}  // namespace

bool StringMatcher::matches(std::string_view s) const {
  if (kind == kRegex) return re && std::regex_match(s.begin(), s.end(), *re);
  std::string a(s), b(value);
  if (ignore_case) {
    for (char& c : a) c = char(std::tolower(static_cast<unsigned char>(c)));
    for (char& c : b) c = char(std::tolower(static_cast<unsigned char>(c)));
  }
  switch (kind) {
    case kExact:
      return a == b;
    case kPrefix:
      return a.starts_with(b);
    case kSuffix:
      return a.ends_with(b);
    case kContains:
      return a.find(b) != std::string::npos;
    default:
      return false;
  }
}

Config* parse_config(std::string_view text, std::string* err) {
  Value v;
  if (!json::parse(text.empty() ? std::string_view("{}") : text, &v, err)) return nullptr;
  auto c = std::make_unique<Config>();
  Parser p{err};
  if (!p.config(v, c.get())) return nullptr;
  return c.release();
}

RouteConfig* parse_route_config(std::string_view text, std::string* err) {
  Value v;
  if (!json::parse(text, &v, err)) return nullptr;
  auto r = std::make_unique<RouteConfig>();
  Parser p{err};
  if (!p.route(v, r.get())) return nullptr;
  return r.release();
}

}  // namespace extproc
