// Header name and value rules (see http_syntax.h).
#include "config/http_syntax.h"

namespace sy::config {
namespace {

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

bool is_header_name(std::string_view s) {
  if (!s.empty() && s[0] == ':') s.remove_prefix(1);
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

bool is_safe_header_value(std::string_view v) {
  return v.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

}  // namespace sy::config
