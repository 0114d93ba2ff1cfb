// The one JSON text writer: strict UTF-8, escapes, and the streaming writer's punctuation.
#include "config/json_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace sy::json {
namespace {

TEST(JsonText, Utf8LengthIsStrict) {
  EXPECT_EQ(utf8_len("a"), 1u);
  EXPECT_EQ(utf8_len("\xc3\xa9"), 2u);          // é
  EXPECT_EQ(utf8_len("\xe2\x82\xac"), 3u);      // €
  EXPECT_EQ(utf8_len("\xf0\x9f\x98\x80"), 4u);  // 😀
  EXPECT_EQ(utf8_len("\xf4\x8f\xbf\xbf"), 4u);  // U+10FFFF, the last code point
  // The old core copy accepted the overlong and surrogate forms below.
  for (const char* bad :
       {"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
        "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",
        "\x80", "\xc3", "\xe2\x82", "\xf0\x9f\x98"})
    EXPECT_EQ(utf8_len(bad), 0u) << testing::PrintToString(std::string(bad));
  EXPECT_EQ(utf8_len(""), 0u);
}

TEST(JsonText, QuotingEscapesAndReplacesIllFormedBytes) {
  EXPECT_EQ(json::quoted("plain"), "\"plain\"");
  EXPECT_EQ(json::quoted("q\"b\\s/"), "\"q\\\"b\\\\s/\"");
  EXPECT_EQ(json::quoted("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
  EXPECT_EQ(json::quoted(std::string("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(json::quoted(std::string("a\0b", 3)), "\"a\\u0000b\"");
  EXPECT_EQ(json::quoted("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(json::quoted("x\xed\xa0\x80y"), "\"x\\ufffd\\ufffd\\ufffdy\"");
  EXPECT_EQ(json::quoted("\xc3"), "\"\\ufffd\"");
}

TEST(JsonText, WriterPutsCommasAndColonsWhereTheyBelong) {
  std::string out;
  Writer w(out);
  w.begin_object()
      .key("s")
      .value("v")
      .key("n")
      .value(int64_t(-3))
      .key("u")
      .value(uint64_t(18446744073709551615ull))
      .key("b")
      .value(true)
      .key("z")
      .null()
      .key("a")
      .begin_array()
      .value(1)
      .begin_object()
      .end_object()
      .begin_array()
      .end_array()
      .value("x")
      .end_array()
      .key("r")
      .raw("{\"k\":[1,2]}")
      .key("d")
      .value(0.5)
      .key("nan")
      .value(std::nan(""))
      .end_object();
  EXPECT_EQ(out,
            "{\"s\":\"v\",\"n\":-3,\"u\":18446744073709551615,\"b\":true,\"z\":null,"
            "\"a\":[1,{},[],\"x\"],\"r\":{\"k\":[1,2]},\"d\":0.5,\"nan\":null}");
}

TEST(JsonText, WriterKeysAreQuotedLikeValues) {
  std::string out;
  Writer(out).begin_object().key("a\"b\n").value("c").end_object();
  EXPECT_EQ(out, "{\"a\\\"b\\n\":\"c\"}");
}

}  // namespace
}  // namespace sy::json
