// Writing JSON text: the one quoting rule (strict UTF-8) and a small streaming writer, for
// everything the proxy writes as JSON (module configs, the admin API, the access log, tools).
// In config/ because it is the lowest room: config, core, loader and tools all reach it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sy::json {

// Length of the well-formed UTF-8 sequence at the start of S (1 for ASCII), or 0 when it is
// ill-formed: overlong forms, surrogates, code points past U+10FFFF and cut-off sequences all
// are.
size_t utf8_len(std::string_view s);

// Appends S to OUT as a quoted JSON string: '"', '\' and control characters (and DEL) escaped,
// ill-formed UTF-8 (a path or a header may hold any bytes) replaced by U+FFFD, so the result
// is always valid JSON.
void append_quoted(std::string& out, std::string_view s);
std::string quoted(std::string_view s);

// Streams one JSON value into OUT, putting the commas and colons where they belong:
//   Writer w(out); w.begin_object().key("a").value(1).key("b").begin_array().end_array()
//    .end_object();
// The caller keeps the nesting right; the writer does not check it.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  Writer& begin_object();
  Writer& end_object();
  Writer& begin_array();
  Writer& end_array();
  Writer& key(std::string_view k);
  Writer& value(std::string_view s);
  Writer& value(const char* s) { return value(std::string_view(s)); }
  Writer& value(const std::string& s) { return value(std::string_view(s)); }
  Writer& value(bool b);
  Writer& value(int64_t n);
  Writer& value(uint64_t n);
  Writer& value(int n) { return value(int64_t(n)); }
  Writer& value(unsigned n) { return value(uint64_t(n)); }
  Writer& value(double d);  // NaN and infinities, which JSON cannot say, become null
  Writer& null();
  // Already-serialized JSON, as one value.
  Writer& raw(std::string_view json);

 private:
  void before_value();

  std::string& out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

}  // namespace sy::json
