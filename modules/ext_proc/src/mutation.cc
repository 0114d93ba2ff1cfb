// Envoy's header mutation rules (config.common.mutation_rules.v3.HeaderMutationRules) and how
// ext_proc applies a HeaderMutation: values from raw_value (value accepted when raw_value is
// empty, both set is an error), `append` when present, else append_action (Envoy ignores
// append_action, issue #36982; honouring it is a strict superset for servers written for it).
#include "mutation.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace extproc {
namespace {

enum class Check { kOk, kReject, kInvalid };

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  size_t start = n[0] == ':' ? 1 : 0;
  if (start == n.size()) return false;
  for (size_t i = start; i < n.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(n[i]);
    if (c <= 0x20 || c >= 0x7f || c == ':' || std::isupper(c)) return false;
    if (std::strchr("\"(),/;<=>?@[\\]{}", c)) return false;
  }
  return true;
}

bool valid_value(std::string_view v) {
  for (unsigned char c : v)
    if (c == 0 || c == '\r' || c == '\n') return false;
  return true;
}

bool regex_hit(const std::optional<std::regex>& re, std::string_view name) {
  return re && std::regex_match(name.begin(), name.end(), *re);
}

// May the rules let a mutation touch NAME (lower-case)?
Check check(const MutationRules& r, std::string_view name, bool removing, bool replacing) {
  // Removing a pseudo-header or host is never allowed, whatever the rules say.
  if (removing && (name.starts_with(":") || name == "host")) return Check::kReject;
  if (regex_hit(r.disallow_expression, name)) return Check::kReject;
  if (regex_hit(r.allow_expression, name)) return Check::kOk;
  if (r.disallow_all) return Check::kReject;
  bool routing = name == "host" || name == ":authority" || name == ":scheme" ||
                 (name == ":method" && !replacing);
  if (name.starts_with(":")) {
    if (r.disallow_system) return Check::kReject;
    if (routing) return r.allow_all_routing ? Check::kOk : Check::kReject;
    if (name == ":path" || name == ":status" || name == ":method") return Check::kOk;
    return Check::kReject;
  }
  if (routing) return r.allow_all_routing ? Check::kOk : Check::kReject;
  if (name.starts_with("x-envoy-")) return r.allow_envoy ? Check::kOk : Check::kReject;
  return Check::kOk;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The value a HeaderValue carries, or false when both fields are set.
bool value_of(const envoy::config::core::v3::HeaderValue& h, std::string* out) {
  if (!h.raw_value().empty() && !h.value().empty()) return false;
  *out = h.raw_value().empty() ? h.value() : h.raw_value();
  return true;
}

bool present(sy_stream_t* s, sy_header_kind_t kind, std::string_view name) {
  return g_host->header_count(s, kind, S(name)) > 0;
}

// A three-digit final status, as a response's :status must be.
bool final_status(std::string_view v) {
  if (v.size() != 3) return false;
  for (char c : v)
    if (c < '0' || c > '9') return false;
  return v >= "200" && v <= "599";
}

// The listener's header count limit (limits.headers), or 0 when the host cannot say.
uint64_t header_count_limit(sy_stream_t* s) {
  if (!SY_HAS_SLOT(g_host, sy_host_t, attribute_get_typed)) return 0;
  sy_value_t v{};
  v.size = sizeof(v);
  if (g_host->attribute_get_typed(s, S("listener.limits.headers"), &v) != SY_OK ||
      v.type != SY_VALUE_INT || v.number <= 0)
    return 0;
  return uint64_t(v.number);
}

}  // namespace

MutationOutcome apply_mutation(sy_stream_t* s, sy_header_kind_t kind, const pb::HeaderMutation& m,
                               const MutationRules& rules, bool replacing) {
  MutationOutcome out;
  // Envoy refuses, before applying anything, a mutation with more set_headers or more
  // remove_headers than the header count limit (each list on its own), whatever they would do
  // to the block; one rejected mutation is counted. The limit is at least 1, so lists of one
  // entry never ask.
  size_t most = size_t(std::max(m.set_headers_size(), m.remove_headers_size()));
  if (most > 1) {
    uint64_t limit = header_count_limit(s);
    if (limit && most > limit) {
      ++out.rejected;
      out.error = true;
      out.why = "ext_proc_error_header_mutation_count_over_limit:set_headers=" +
                std::to_string(m.set_headers_size()) +
                ",remove_headers=" + std::to_string(m.remove_headers_size()) +
                ",limit=" + std::to_string(limit);
      return out;
    }
  }
  auto refuse = [&](const std::string& name, const char* why) {
    ++out.rejected;
    if (rules.disallow_is_error && !out.error) {
      out.error = true;
      out.why = std::string("ext_proc_error_header_mutation_") + why + ":" + name;
    }
  };
  // Removals first, then sets, in Envoy's order: a name both removed and set ends up set.
  for (const auto& raw : m.remove_headers()) {
    std::string name = lower(raw);
    if (!valid_name(name)) continue;
    if (check(rules, name, true, replacing) != Check::kOk) {
      refuse(name, "disallowed");
      continue;
    }
    if (present(s, kind, name)) {
      g_host->header_remove(s, kind, S(name));
      out.changed = true;
    }
  }
  bool status_set = false;
  for (const auto& opt : m.set_headers()) {
    std::string name = lower(opt.header().key());
    std::string value;
    if (!valid_name(name) || !value_of(opt.header(), &value) || !valid_value(value)) {
      ++out.rejected;
      out.error = true;
      out.why = "ext_proc_error_invalid_header_mutation:" + name;
      return out;
    }
    if (check(rules, name, false, replacing) != Check::kOk) {
      refuse(name, "disallowed");
      continue;
    }
    if (name == ":status") {
      // Only a final status, and only once: Envoy ignores a 1xx and a second :status.
      if (kind != SY_RESPONSE_HEADERS || status_set || !final_status(value)) continue;
      status_set = true;
    }
    bool append = false;
    if (opt.has_append()) {
      append = opt.append().value();
    } else {
      using O = envoy::config::core::v3::HeaderValueOption;
      switch (opt.append_action()) {
        case O::ADD_IF_ABSENT:
          if (present(s, kind, name)) continue;
          break;
        case O::OVERWRITE_IF_EXISTS:
          if (!present(s, kind, name)) continue;
          break;
        default:  // absent (0) or OVERWRITE_IF_EXISTS_OR_ADD: overwrite, as Envoy does
          break;
      }
    }
    if (name.starts_with(":")) append = false;
    sy_status_t st = append ? g_host->header_add(s, kind, S(name), S(value))
                            : g_host->header_set(s, kind, S(name), S(value));
    if (st == SY_ERR_TOO_LARGE) {
      // The result would pass the listener's header count or size limits: an error whatever
      // the rules say, counted as a rejected mutation, as Envoy's result check does.
      ++out.rejected;
      out.error = true;
      out.why = "ext_proc_error_header_mutation_over_limits:" + name;
      return out;
    }
    if (st != SY_OK) {
      out.error = true;
      out.why = "ext_proc_error_header_mutation_failed:" + name;
      return out;
    }
    out.changed = true;
  }
  return out;
}

void immediate_headers(const pb::HeaderMutation& m, const MutationRules& rules,
                       std::vector<std::pair<std::string, std::string>>* out, int* rejected) {
  for (const auto& opt : m.set_headers()) {
    std::string name = lower(opt.header().key());
    std::string value;
    if (!valid_name(name) || name.starts_with(":") || !value_of(opt.header(), &value) ||
        !valid_value(value) || check(rules, name, false, false) != Check::kOk) {
      ++*rejected;
      continue;
    }
    out->emplace_back(name, value);
  }
}

}  // namespace extproc
