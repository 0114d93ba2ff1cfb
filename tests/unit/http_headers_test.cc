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

TEST(HttpHeaders, AppendMovesEveryHeaderToTheEnd) {
  HeaderMap a, b, empty;
  a.add("x-a", "1");
  b.add("x-b", "2");
  b.add("x-c", "3");
  a.append(std::move(b));
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a.raw()[0].name, "x-a");
  EXPECT_EQ(a.raw()[2].value, "3");
  EXPECT_TRUE(b.empty());
  empty.append(std::move(a));  // an empty map takes the other's headers whole
  EXPECT_EQ(empty.size(), 3u);
  EXPECT_EQ(*empty.get("x-b"), "2");
  EXPECT_TRUE(a.empty());
}

}  // namespace
}  // namespace sy::http
