// Header name and value rules (see http_syntax.h).
#include "config/http_syntax.h"

namespace sy::config {
namespace {

// The RFC 9110 token characters as a table: the host table checks every name a filter sets
// with it, so a byte costs one load rather than a search of the punctuation list.
constexpr auto kTchar = [] {
  struct Table {
    bool ok[256] = {};
  } t;
  for (int c = 'a'; c <= 'z'; ++c) t.ok[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t.ok[c] = true;
  for (int c = '0'; c <= '9'; ++c) t.ok[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t.ok[static_cast<unsigned char>(c)] = true;
  return t;
}();

}  // namespace

bool is_header_name(std::string_view s) {
  if (!s.empty() && s[0] == ':') s.remove_prefix(1);
  if (s.empty()) return false;
  for (char c : s)
    if (!kTchar.ok[static_cast<unsigned char>(c)]) return false;
  return true;
}

bool is_safe_header_value(std::string_view v) {
  // One pass over the value (find_first_of would search the three bytes for each of its bytes).
  for (char c : v)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

}  // namespace sy::config
