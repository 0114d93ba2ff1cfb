// Request normalisation helpers of the stream (see request_normalise.h).
#include "core/server/request_normalise.h"

#include <cstdint>
#include <random>

#include "core/http/headers.h"

namespace sy::server {

std::string new_request_id() {
  // UUID v4 from a per-thread generator: unique enough for tracing, no locks on the hot path.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  static const char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      out[size_t(pos++)] = kHex[(v >> (4 * i)) & 0xf];
    }
  };
  put(a, 16);
  put(b, 16);
  return out;
}

bool split_absolute_form(std::string_view target, size_t scheme_len, std::string* authority,
                         std::string* path) {
  std::string_view rest = target.substr(scheme_len);
  size_t end = rest.find_first_of("/?#");
  std::string_view auth = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  tail = tail.substr(0, tail.find('#'));
  if (auth.empty() || auth.find('@') != std::string_view::npos) return false;
  authority->assign(auth);
  path->assign(tail.empty() || tail[0] != '/' ? "/" : "");
  path->append(tail);
  return true;
}

size_t absolute_form_scheme(std::string_view target) {
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")})
    if (target.size() >= scheme.size() && http::iequals(target.substr(0, scheme.size()), scheme))
      return scheme.size();
  return 0;
}

bool upgrade_allowed(const config::Listener& l, const config::Route* r, std::string_view value) {
  // h2c is hop-by-hop (RFC 7540 §3.2) and config refuses to list it; this holds regardless.
  if (http::iequals(value, "h2c")) return false;
  auto find = [&](const std::vector<config::UpgradeConfig>& list) -> const config::UpgradeConfig* {
    for (const config::UpgradeConfig& u : list)
      if (http::iequals(u.upgrade_type, value)) return &u;
    return nullptr;
  };
  if (r)
    if (const config::UpgradeConfig* u = find(r->upgrade_configs)) return u->enabled;
  const config::UpgradeConfig* u = find(l.upgrade_configs);
  return u && u->enabled;
}

}  // namespace sy::server
