// JSON string quoting for everything the proxy writes as JSON (admin API, access log, tools).
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace sy::json {

// Length of the valid UTF-8 sequence at S[I] (which is >= 0x80), or 0 if it is not one.
inline size_t utf8_len(std::string_view s, size_t i) {
  unsigned char c = s[i];
  size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  return n;
}

// Appends S to OUT as a quoted JSON string: control characters escaped, bytes that are not
// UTF-8 (a path or a header can hold any) replaced by U+FFFD so the document stays valid.
inline void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (c < 0x80) {
      out.push_back(char(c));
    } else if (size_t n = utf8_len(s, i)) {
      out.append(s.substr(i, n));
      i += n - 1;
    } else {
      out += "\\ufffd";
    }
  }
  out.push_back('"');
}

inline std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  append_quoted(out, s);
  return out;
}

}  // namespace sy::json
