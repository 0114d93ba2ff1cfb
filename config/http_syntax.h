// What a header name and value may hold: one rule for the config checker (matchers, direct
// responses) and for the host table (headers a module sets), so a name accepted in one place is
// never refused in the other. Here because config/ is the lowest room both reach.
#pragma once

#include <cstdint>
#include <string_view>

namespace sy::config {

namespace syntax_detail {

// The bytes of header names and values by class, as a table: the host table checks every
// header a filter sets with it (inline, as its hot path), so a byte costs one load and one OR,
// rather than a search of the punctuation list or three compares.
enum : uint8_t {
  kNotToken = 1,    // not an RFC 9110 token character
  kUpper = 2,       // an upper-case letter
  kNotInValue = 4,  // CR, LF or NUL
};
struct ClassTable {
  uint8_t cls[256] = {};
};
inline constexpr ClassTable kClass = [] {
  ClassTable t;
  for (auto& c : t.cls) c = kNotToken;
  for (int c = 'a'; c <= 'z'; ++c) t.cls[c] = 0;
  for (int c = 'A'; c <= 'Z'; ++c) t.cls[c] = kUpper;
  for (int c = '0'; c <= '9'; ++c) t.cls[c] = 0;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t.cls[static_cast<unsigned char>(c)] = 0;
  for (int c : {'\r', '\n', '\0'}) t.cls[c] |= kNotInValue;
  return t;
}();

// The OR of the classes of S's bytes: no branch per byte, one test at the end (a valid header
// is the case to make fast; an invalid one may as well be read to its end).
inline uint8_t classes(std::string_view s) {
  uint8_t any = 0;
#pragma GCC unroll 4
  for (char c : s) any |= kClass.cls[static_cast<unsigned char>(c)];
  return any;
}

}  // namespace syntax_detail

// is_header_name, and whether the name has an upper-case letter, in one pass: the host table
// checks every name a filter sets, and a name that is lower-case already (most are) is then
// stored as it is, without a second pass to lower it.
enum class NameCheck : uint8_t { kInvalid, kLowerCase, kHasUpperCase };
inline NameCheck check_header_name(std::string_view name) {
  if (!name.empty() && name[0] == ':') name.remove_prefix(1);
  if (name.empty()) return NameCheck::kInvalid;
  uint8_t any = syntax_detail::classes(name);
  if (any & syntax_detail::kNotToken) return NameCheck::kInvalid;
  return (any & syntax_detail::kUpper) ? NameCheck::kHasUpperCase : NameCheck::kLowerCase;
}

// An RFC 9110 token, optionally behind one ':' (a pseudo-header such as ":authority").
inline bool is_header_name(std::string_view name) {
  return check_header_name(name) != NameCheck::kInvalid;
}

// No CR, LF or NUL: they would split or truncate a message on the wire.
inline bool is_safe_header_value(std::string_view value) {
  return !(syntax_detail::classes(value) & syntax_detail::kNotInValue);
}

}  // namespace sy::config
