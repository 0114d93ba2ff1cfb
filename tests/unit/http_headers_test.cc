// Header helpers used on every request path.
#include <gtest/gtest.h>

#include "core/http/headers.h"

namespace sy::http {
namespace {

TEST(HttpHeaders, StatusIsExactlyThreeDigitsInRange) {
  EXPECT_EQ(parse_status("200"), 200);
  EXPECT_EQ(parse_status("100"), 100);
  EXPECT_EQ(parse_status("599"), 599);
  // atoi() once read all of these as statuses.
  for (const char* bad :
       {"200abc", " 200", "200 ", "+200", "2e2", "0200", "20", "", "099", "600", "999", "abc"})
    EXPECT_EQ(parse_status(bad), 0) << bad;
}

}  // namespace
}  // namespace sy::http
