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

// check_header_name is is_header_name that also says whether the name has an upper-case
// letter (the host table stores a lower-case name without lowering it again).
TEST(HttpSyntax, NameCheckSaysWhetherANameNeedsLowering) {
  for (const char* lower : {"x-a", "a1!#$%&'*+-.^_`|~", ":authority", "content-length"})
    EXPECT_EQ(check_header_name(lower), NameCheck::kLowerCase) << lower;
  for (const char* upper : {"X-A", "x-A", "Content-Length", ":Path", "Z"})
    EXPECT_EQ(check_header_name(upper), NameCheck::kHasUpperCase) << upper;
  for (const char* bad : {"", ":", "A B", "X\r\n", "Caf\xc3\xa9", "A:b"})
    EXPECT_EQ(check_header_name(bad), NameCheck::kInvalid) << bad;
  // A value with a forbidden byte anywhere, the last one too, is refused.
  EXPECT_FALSE(is_safe_header_value("abcdefghijklmnopq\r"));
  EXPECT_FALSE(is_safe_header_value(std::string("abcdefghijklmnopq\0", 18)));
  EXPECT_TRUE(is_safe_header_value("abcdefghijklmnopqrstuvwxyz \t\x7f\x80\xff"));
}

}  // namespace
}  // namespace sy::config
