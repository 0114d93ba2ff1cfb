// The header field writers: append_field and put_field write "NAME: VALUE\r\n" byte for byte,
// whatever the lengths (put_field copies short pieces with overlapping loads and stores, so
// every length up to past its 16-byte limit is tried).
#include "core/http1/writer.h"

#include <gtest/gtest.h>

#include <string>

namespace sy::http1 {
namespace {

TEST(Http1Writer, FieldsAreWrittenExactlyForEveryLength) {
  std::string source;
  for (int i = 0; i < 40; ++i) source.push_back(char('a' + i % 26));
  for (size_t n = 0; n <= 40; ++n) {
    for (size_t v = 0; v <= 40; v += 3) {
      std::string_view name(source.data(), n), value(source.data() + (40 - v), v);
      std::string want = std::string(name) + ": " + std::string(value) + "\r\n";
      std::string appended = "x";
      append_field(appended, name, value);
      EXPECT_EQ(appended, "x" + want) << n << " " << v;
      std::string room(want.size() + 2, '#');
      char* end = put_field(room.data() + 1, name, value);
      EXPECT_EQ(size_t(end - room.data()), want.size() + 1) << n << " " << v;
      EXPECT_EQ(room, "#" + want + "#") << n << " " << v;  // nothing written outside
    }
  }
}

}  // namespace
}  // namespace sy::http1
