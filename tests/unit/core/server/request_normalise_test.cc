// Request normalisation helpers: absolute-form targets, request ids, upgrade rules.
#include "core/server/request_normalise.h"

#include <gtest/gtest.h>

namespace sy::server {
namespace {

struct Split {
  bool ok;
  std::string authority, path;
};

Split split(std::string_view target) {
  Split s;
  size_t scheme = absolute_form_scheme(target);
  EXPECT_GT(scheme, 0u) << target;
  s.ok = split_absolute_form(target, scheme, &s.authority, &s.path);
  return s;
}

TEST(RequestNormalise, AbsoluteFormScheme) {
  EXPECT_EQ(absolute_form_scheme("http://h/"), 7u);
  EXPECT_EQ(absolute_form_scheme("HTTPS://h/"), 8u);
  EXPECT_EQ(absolute_form_scheme("/path"), 0u);
  EXPECT_EQ(absolute_form_scheme("ftp://h/"), 0u);
  EXPECT_EQ(absolute_form_scheme("http:/"), 0u);
}

TEST(RequestNormalise, AbsoluteFormKeepsTheQuery) {
  Split s = split("http://h?x");
  EXPECT_TRUE(s.ok);
  EXPECT_EQ(s.authority, "h");
  EXPECT_EQ(s.path, "/?x");
  s = split("http://h:8080/a/b?c#frag");
  EXPECT_TRUE(s.ok);
  EXPECT_EQ(s.authority, "h:8080");
  EXPECT_EQ(s.path, "/a/b?c");
  s = split("http://h");
  EXPECT_EQ(s.path, "/");
}

TEST(RequestNormalise, AbsoluteFormRefusesUserinfoAndEmptyAuthority) {
  EXPECT_FALSE(split("http://user@h/").ok);
  EXPECT_FALSE(split("http:///path").ok);
}

TEST(RequestNormalise, RequestIdIsAUuidV4) {
  std::string a = new_request_id(), b = new_request_id();
  ASSERT_EQ(a.size(), 36u);
  EXPECT_NE(a, b);
  for (size_t i : {8u, 13u, 18u, 23u}) EXPECT_EQ(a[i], '-') << a;
  EXPECT_EQ(a[14], '4') << a;
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos) << a;
}

TEST(RequestNormalise, UpgradeRouteOverridesListener) {
  config::Listener l;  // websocket on by default
  config::Route r;
  EXPECT_TRUE(upgrade_allowed(l, nullptr, "WebSocket"));
  EXPECT_FALSE(upgrade_allowed(l, nullptr, "h2c"));
  EXPECT_FALSE(upgrade_allowed(l, nullptr, "spdy/3"));
  r.upgrade_configs.push_back({"websocket", false, {}});
  EXPECT_FALSE(upgrade_allowed(l, &r, "websocket"));
  r.upgrade_configs = {{"spdy/3", true, {}}};
  EXPECT_TRUE(upgrade_allowed(l, &r, "spdy/3"));
  EXPECT_TRUE(upgrade_allowed(l, &r, "websocket")) << "no route entry: the listener decides";
}

}  // namespace
}  // namespace sy::server
