// The one header-name and header-value rule shared by config/ and the host table.
#include "config/http_syntax.h"

#include <gtest/gtest.h>

#include <string>

namespace sy::config {
namespace {

TEST(HttpSyntax, HeaderNamesAreTokensWithAnOptionalLeadingColon) {
  for (const char* ok : {"x-a", "X_Y", "a1!#$%&'*+-.^_`|~", ":authority", ":path"})
    EXPECT_TRUE(is_header_name(ok)) << ok;
  // A bare ":" was once accepted by the host table (its own copy of the rule).
  for (const char* bad :
       {"", ":", "::a", "a:b", "a b", "a\tb", "a/b", "a\"", "(a)", "a\x7f", "caf\xc3\xa9"})
    EXPECT_FALSE(is_header_name(bad)) << bad;
}

TEST(HttpSyntax, HeaderValuesRefuseOnlyWhatSplitsAMessage) {
  EXPECT_TRUE(is_safe_header_value(""));
  EXPECT_TRUE(is_safe_header_value("text/plain; q=\"1\"\tand more"));
  EXPECT_FALSE(is_safe_header_value("a\r\nx-injected: 1"));
  EXPECT_FALSE(is_safe_header_value("a\nb"));
  EXPECT_FALSE(is_safe_header_value(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace sy::config
