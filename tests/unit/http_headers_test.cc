// Header helpers used on every request path.
#include <gtest/gtest.h>

#include <string>
#include <vector>

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

// byte_size() is kept as the map changes (the header-limit check reads it on every
// header_set): after every kind of change it equals the sum it stands for.
size_t counted(const HeaderMap& h) {
  size_t n = 0;
  for (const auto& x : h) n += x.name.size() + x.value.size();
  return n;
}

TEST(HttpHeaders, ByteSizeFollowsEveryChange) {
  HeaderMap h;
  EXPECT_EQ(h.byte_size(), 0u);
  h.add("X-A", "1");
  h.add("x-b", "22");
  h.add("x-a", "333");
  EXPECT_EQ(h.byte_size(), counted(h));
  EXPECT_EQ(h.byte_size(), 3u + 1 + 3 + 2 + 3 + 3);
  h.set("x-a", "four");  // one value replaces two
  EXPECT_EQ(h.byte_size(), counted(h));
  h.set("x-new", "v");  // absent: appended
  EXPECT_EQ(h.byte_size(), counted(h));
  EXPECT_TRUE(h.append_to_value("X-B", ", 5"));
  EXPECT_FALSE(h.append_to_value("x-none", "6"));
  EXPECT_EQ(*h.get("x-b"), "22, 5");
  EXPECT_EQ(h.byte_size(), counted(h));
  EXPECT_EQ(h.remove("x-new"), 1u);
  EXPECT_EQ(h.byte_size(), counted(h));
  EXPECT_EQ(h.erase_if([](const Header& x) { return x.name == "x-b"; }), 1u);
  EXPECT_EQ(h.byte_size(), counted(h));
  h.prepend({{":status", "200"}});
  EXPECT_EQ(h.raw()[0].name, ":status");
  EXPECT_EQ(h.byte_size(), counted(h));
  HeaderMap other;
  other.add("x-o", "o");
  h.append(std::move(other));  // into a map with headers
  EXPECT_EQ(h.byte_size(), counted(h));
  EXPECT_EQ(other.byte_size(), 0u);
  HeaderMap empty;
  empty.append(std::move(h));  // an empty map takes the other's headers whole
  EXPECT_EQ(empty.byte_size(), counted(empty));
  EXPECT_EQ(h.byte_size(), 0u);
  HeaderMap moved(std::move(empty));
  EXPECT_EQ(moved.byte_size(), counted(moved));
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.byte_size(), 0u);
  HeaderMap assigned;
  assigned.add("x-old", "gone");
  assigned = std::move(moved);
  EXPECT_EQ(assigned.byte_size(), counted(assigned));
  EXPECT_EQ(moved.byte_size(), 0u);
  HeaderMap copy = assigned;
  EXPECT_EQ(copy.byte_size(), assigned.byte_size());
  copy.clear();
  EXPECT_EQ(copy.byte_size(), 0u);
}

TEST(HttpHeaders, SetKeepsThePlaceOfTheFirstValueAndDropsTheOthers) {
  HeaderMap h;
  h.add("a", "1");
  h.add("x", "2");
  h.add("b", "3");
  h.add("X", "4");
  h.add("c", "5");
  h.set("X", "new");
  ASSERT_EQ(h.size(), 4u);
  std::vector<std::string> names, values;
  for (const auto& x : h) {
    names.push_back(x.name);
    values.push_back(x.value);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a", "x", "b", "c"}));
  EXPECT_EQ(values, (std::vector<std::string>{"1", "new", "3", "5"}));
}

TEST(HttpHeaders, AddAndSetTakeViewsOfTheMapsOwnHeaders) {
  // A view into one of the map's own headers stays good whether the vector grows under it
  // (one header: no room) or has room (three headers: room for a fourth, as vectors grow).
  for (int before : {1, 3}) {
    HeaderMap h;
    h.add("x-long-name-past-any-small-string", std::string(40, 'v'));
    for (int i = 1; i < before; ++i) h.add("x-other", "o");
    std::string_view name = h.raw()[0].name, value = h.raw()[0].value;
    h.add(name, value);
    ASSERT_EQ(h.size(), size_t(before) + 1) << before;
    EXPECT_EQ(h.raw().back().name, "x-long-name-past-any-small-string");
    EXPECT_EQ(h.raw().back().value, std::string(40, 'v'));
    h.set("x-copy", h.raw()[0].value);
    EXPECT_EQ(*h.get("x-copy"), std::string(40, 'v'));
    EXPECT_EQ(h.byte_size(), counted(h));
  }
}

// set_lowercase and add_lowercase store a name known to be lower-case as it is; otherwise they
// are set() and add(): a set replaces every value of the name, where the first was, and the
// byte total follows. A view of a header the map holds stays good through the growth of the
// vector (the new header is made before the old ones move).
TEST(HttpHeaders, LowercaseSetAndAddAreSetAndAdd) {
  HeaderMap h;
  h.add("X-A", "1");
  h.add("x-b", "2");
  h.add("x-a", "3");
  h.set_lowercase("x-a", "four");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.raw()[0].name, "x-a");
  EXPECT_EQ(h.raw()[0].value, "four");
  EXPECT_EQ(h.raw()[1].name, "x-b");
  h.set_lowercase("x-new", "v");  // absent: appended
  EXPECT_EQ(h.raw().back().name, "x-new");
  EXPECT_EQ(h.byte_size(), counted(h));
  HeaderMap g;
  for (int i = 0; i < 40; ++i) {
    const Header& first = g.empty() ? Header{} : g.raw()[0];
    std::string name = "x-" + std::to_string(i);
    if (g.empty())
      g.add_lowercase(name, "first value, longer than a short string's buffer");
    else
      g.add_lowercase(name, first.value);  // views a header of the map itself
  }
  ASSERT_EQ(g.size(), 40u);
  for (const auto& x : g) EXPECT_EQ(x.value, "first value, longer than a short string's buffer");
  EXPECT_EQ(g.byte_size(), counted(g));
}

}  // namespace
}  // namespace sy::http
