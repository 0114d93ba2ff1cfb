// Route matching: paths, hosts, headers, first-match-wins and regex errors.
#include "core/router/router.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sy::router {
namespace {

using config::HeaderMatcher;
using config::Listener;
using config::Route;

// Builders for routes, so each test reads as the table it exercises.
Route prefix(std::string p) {
  Route r;
  r.match.prefix = std::move(p);
  return r;
}
Route exact(std::string p) {
  Route r;
  r.match.path = std::move(p);
  return r;
}
Route regex(std::string p) {
  Route r;
  r.match.regex = std::move(p);
  return r;
}
Route any() { return Route{}; }
Route hosts(std::vector<std::string> h) {
  Route r;
  r.match.hosts = std::move(h);
  return r;
}
Route with_header(HeaderMatcher h) {
  Route r;
  r.match.headers.push_back(std::move(h));
  return r;
}
HeaderMatcher header(std::string name) {
  HeaderMatcher h;
  h.name = std::move(name);
  return h;
}

std::unique_ptr<Router> build(std::vector<Route> routes) {
  Listener l;
  for (size_t i = 0; i < routes.size(); ++i) {
    routes[i].name = "r" + std::to_string(i);
    routes[i].loc = {"t.yaml", int(i) + 10, 7};
  }
  l.routes = std::move(routes);
  std::vector<config::Error> errors;
  auto router = Router::build(l, &errors);
  EXPECT_TRUE(errors.empty()) << (errors.empty() ? "" : errors[0].str());
  EXPECT_NE(router, nullptr);
  return router;
}

int match(const Router& r, std::string_view path, std::string_view authority = "example.com",
          const http::HeaderMap* headers = nullptr) {
  return r.match(RequestView{path, authority, headers});
}

// ---- Paths -----------------------------------------------------------------------------------

TEST(RouterPath, PrefixIsAPlainBytePrefix) {
  auto r = build({prefix("/api/")});
  EXPECT_EQ(match(*r, "/api/"), 0);
  EXPECT_EQ(match(*r, "/api/users"), 0);
  EXPECT_EQ(match(*r, "/api"), -1);
  EXPECT_EQ(match(*r, "/API/users"), -1);  // case matters
  EXPECT_EQ(match(*r, "/apix/"), -1);
  EXPECT_EQ(match(*r, "/x/api/"), -1);
  EXPECT_EQ(match(*r, ""), -1);
  auto partial = build({prefix("/ap")});
  EXPECT_EQ(match(*partial, "/api/users"), 0);  // no segment boundaries implied
}

TEST(RouterPath, ExactPath) {
  auto r = build({exact("/healthz")});
  EXPECT_EQ(match(*r, "/healthz"), 0);
  EXPECT_EQ(match(*r, "/healthz/"), -1);
  EXPECT_EQ(match(*r, "/healthzz"), -1);
  EXPECT_EQ(match(*r, "/Healthz"), -1);
  EXPECT_EQ(match(*r, "/health"), -1);
}

TEST(RouterPath, RegexMustMatchTheWholePath) {
  auto r = build({regex("/v[0-9]+/items")});
  EXPECT_EQ(match(*r, "/v1/items"), 0);
  EXPECT_EQ(match(*r, "/v12/items"), 0);
  EXPECT_EQ(match(*r, "/v1/items/3"), -1);  // a partial match is not enough
  EXPECT_EQ(match(*r, "/x/v1/items"), -1);
  EXPECT_EQ(match(*r, "/vx/items"), -1);
}

TEST(RouterPath, QueryStringIsIgnored) {
  auto r = build({exact("/search"), prefix("/p/"), regex("/r/[a-z]+")});
  EXPECT_EQ(match(*r, "/search?q=1"), 0);
  EXPECT_EQ(match(*r, "/search?"), 0);
  EXPECT_EQ(match(*r, "/search/?q=1"), -1);
  EXPECT_EQ(match(*r, "/p/x?y=/z"), 1);
  EXPECT_EQ(match(*r, "/?/p/"), -1);  // the prefix must be in the path, not the query
  EXPECT_EQ(match(*r, "/r/abc?d=1"), 2);
  EXPECT_EQ(match(*r, "/r/abc1?d=1"), -1);
}

TEST(RouterPath, EmptyMatchAcceptsEverything) {
  auto r = build({any()});
  EXPECT_EQ(match(*r, "/"), 0);
  EXPECT_EQ(match(*r, "/anything?at=all", ""), 0);
  EXPECT_EQ(match(*r, "*", "x"), 0);
}

TEST(RouterPath, FirstMatchWins) {
  auto r = build({exact("/a"), prefix("/a"), prefix("/"), any()});
  EXPECT_EQ(match(*r, "/a"), 0);
  EXPECT_EQ(match(*r, "/ab"), 1);
  EXPECT_EQ(match(*r, "/b"), 2);
  EXPECT_EQ(match(*r, "b"), 3);
}

TEST(RouterPath, NoRoutesMatchesNothing) {
  auto r = build({});
  EXPECT_EQ(match(*r, "/"), -1);
}

// ---- Hosts -----------------------------------------------------------------------------------

TEST(RouterHost, ExactHostsIgnoreCaseAndPort) {
  auto r = build({hosts({"example.com", "other.org"})});
  EXPECT_EQ(match(*r, "/", "example.com"), 0);
  EXPECT_EQ(match(*r, "/", "EXAMPLE.com"), 0);
  EXPECT_EQ(match(*r, "/", "example.com:8080"), 0);
  EXPECT_EQ(match(*r, "/", "other.org:443"), 0);
  EXPECT_EQ(match(*r, "/", "example.com."), 0);  // fully qualified form
  EXPECT_EQ(match(*r, "/", "www.example.com"), -1);
  EXPECT_EQ(match(*r, "/", "example.co"), -1);
  EXPECT_EQ(match(*r, "/", "example.community"), -1);
  EXPECT_EQ(match(*r, "/", ""), -1);
}

TEST(RouterHost, WildcardMatchesSubdomainsOnly) {
  auto r = build({hosts({"*.example.com"})});
  EXPECT_EQ(match(*r, "/", "a.example.com"), 0);
  EXPECT_EQ(match(*r, "/", "a.b.example.com"), 0);
  EXPECT_EQ(match(*r, "/", "A.Example.COM:8443"), 0);
  EXPECT_EQ(match(*r, "/", "example.com"), -1);
  EXPECT_EQ(match(*r, "/", ".example.com"), -1);
  EXPECT_EQ(match(*r, "/", "badexample.com"), -1);
  EXPECT_EQ(match(*r, "/", "a.example.com.evil"), -1);
}

TEST(RouterHost, StarAloneMatchesAnyHostEvenNone) {
  auto r = build({hosts({"*"})});
  EXPECT_EQ(match(*r, "/", "anything.at.all:1"), 0);
  EXPECT_EQ(match(*r, "/", ""), 0);
}

TEST(RouterHost, Ipv6AuthoritiesKeepTheirColons) {
  auto r = build({hosts({"::1"}), hosts({"2001:db8::1"}), hosts({"10.0.0.1"})});
  EXPECT_EQ(match(*r, "/", "[::1]:80"), 0);
  EXPECT_EQ(match(*r, "/", "[::1]"), 0);
  EXPECT_EQ(match(*r, "/", "[2001:DB8::1]:8443"), 1);
  EXPECT_EQ(match(*r, "/", "10.0.0.1:80"), 2);
  EXPECT_EQ(match(*r, "/", "[::2]:80"), -1);
  EXPECT_EQ(match(*r, "/", "[::1"), 0);  // malformed but unambiguous: the host is still ::1
}

TEST(RouterHost, HostsCombineWithPaths) {
  auto r = build({[] {
                    Route x = prefix("/api");
                    x.match.hosts = {"api.example.com"};
                    return x;
                  }(),
                  prefix("/")});
  EXPECT_EQ(match(*r, "/api/x", "api.example.com"), 0);
  EXPECT_EQ(match(*r, "/api/x", "www.example.com"), 1);
  EXPECT_EQ(match(*r, "/other", "api.example.com"), 1);
}

// ---- Headers ---------------------------------------------------------------------------------

class RouterHeaders : public ::testing::Test {
 protected:
  int match_with(const Router& r, std::initializer_list<std::pair<const char*, const char*>> hs) {
    http::HeaderMap map;
    for (auto [n, v] : hs) map.add(n, v);
    return match(r, "/", "example.com", &map);
  }
};

TEST_F(RouterHeaders, Exact) {
  HeaderMatcher h = header("x-tenant");
  h.exact = "a";
  auto r = build({with_header(h)});
  EXPECT_EQ(match_with(*r, {{"x-tenant", "a"}}), 0);
  EXPECT_EQ(match_with(*r, {{"X-Tenant", "a"}}), 0);   // names are case-insensitive
  EXPECT_EQ(match_with(*r, {{"x-tenant", "A"}}), -1);  // values are not
  EXPECT_EQ(match_with(*r, {{"x-tenant", "ab"}}), -1);
  EXPECT_EQ(match_with(*r, {{"x-other", "a"}}), -1);
  EXPECT_EQ(match_with(*r, {}), -1);
  EXPECT_EQ(match(*r, "/", "example.com", nullptr), -1);
}

TEST_F(RouterHeaders, EmptyExactValueNeedsThePresentEmptyHeader) {
  HeaderMatcher h = header("x-e");
  h.exact = "";
  auto r = build({with_header(h)});
  EXPECT_EQ(match_with(*r, {{"x-e", ""}}), 0);
  EXPECT_EQ(match_with(*r, {{"x-e", "v"}}), -1);
  EXPECT_EQ(match_with(*r, {}), -1);
}

TEST_F(RouterHeaders, Prefix) {
  HeaderMatcher h = header("user-agent");
  h.prefix = "curl/";
  auto r = build({with_header(h)});
  EXPECT_EQ(match_with(*r, {{"user-agent", "curl/8.1"}}), 0);
  EXPECT_EQ(match_with(*r, {{"user-agent", "curl/"}}), 0);
  EXPECT_EQ(match_with(*r, {{"user-agent", "curl"}}), -1);
  EXPECT_EQ(match_with(*r, {{"user-agent", "Mozilla curl/8"}}), -1);
}

TEST_F(RouterHeaders, RegexIsAFullMatch) {
  HeaderMatcher h = header("x-version");
  h.regex = "v[0-9]+";
  auto r = build({with_header(h)});
  EXPECT_EQ(match_with(*r, {{"x-version", "v2"}}), 0);
  EXPECT_EQ(match_with(*r, {{"x-version", "v2-beta"}}), -1);
  EXPECT_EQ(match_with(*r, {{"x-version", "xv2"}}), -1);
}

TEST_F(RouterHeaders, Present) {
  HeaderMatcher h = header("authorization");
  h.present = true;
  auto r = build({with_header(h)});
  EXPECT_EQ(match_with(*r, {{"authorization", "Bearer x"}}), 0);
  EXPECT_EQ(match_with(*r, {{"authorization", ""}}), 0);
  EXPECT_EQ(match_with(*r, {{"x", "y"}}), -1);
}

TEST_F(RouterHeaders, InvertNegates) {
  HeaderMatcher absent = header("authorization");
  absent.present = true;
  absent.invert = true;
  HeaderMatcher not_a = header("x-tenant");
  not_a.exact = "a";
  not_a.invert = true;
  auto r = build({with_header(absent), with_header(not_a)});
  EXPECT_EQ(match_with(*r, {}), 0);
  EXPECT_EQ(match_with(*r, {{"authorization", "x"}, {"x-tenant", "b"}}), 1);
  // A missing header does not equal "a", so the inverted matcher accepts it.
  EXPECT_EQ(match_with(*r, {{"authorization", "x"}}), 1);
  EXPECT_EQ(match_with(*r, {{"authorization", "x"}, {"x-tenant", "a"}}), -1);
  // Inversion applies to "any value matches": one "a" among several is still a match.
  EXPECT_EQ(match_with(*r, {{"authorization", "x"}, {"x-tenant", "b"}, {"x-tenant", "a"}}), -1);
}

TEST_F(RouterHeaders, AnyOfSeveralValuesMatches) {
  HeaderMatcher ex = header("x-role");
  ex.exact = "admin";
  HeaderMatcher re = header("x-id");
  re.regex = "[0-9]+";
  auto r = build({with_header(ex), with_header(re)});
  EXPECT_EQ(match_with(*r, {{"x-role", "user"}, {"x-other", "1"}, {"x-role", "admin"}}), 0);
  EXPECT_EQ(match_with(*r, {{"x-role", "user"}, {"x-role", "guest"}}), -1);
  EXPECT_EQ(match_with(*r, {{"x-id", "abc"}, {"x-id", "123"}}), 1);
}

TEST_F(RouterHeaders, AllMatchersMustHold) {
  Route route = prefix("/");
  HeaderMatcher a = header("a");
  a.exact = "1";
  HeaderMatcher b = header("b");
  b.prefix = "x";
  route.match.headers = {a, b};
  auto r = build({route});
  EXPECT_EQ(match_with(*r, {{"a", "1"}, {"b", "xyz"}}), 0);
  EXPECT_EQ(match_with(*r, {{"a", "1"}}), -1);
  EXPECT_EQ(match_with(*r, {{"b", "xyz"}}), -1);
  EXPECT_EQ(match_with(*r, {{"a", "2"}, {"b", "xyz"}}), -1);
}

TEST_F(RouterHeaders, PathHostAndHeadersTogether) {
  Route route = prefix("/api/");
  route.match.hosts = {"*.example.com"};
  HeaderMatcher h = header("x-tenant");
  h.exact = "a";
  route.match.headers = {h};
  auto r = build({route, any()});
  http::HeaderMap tenant_a;
  tenant_a.add("x-tenant", "a");
  EXPECT_EQ(match(*r, "/api/x?q", "api.example.com:443", &tenant_a), 0);
  EXPECT_EQ(match(*r, "/api/x?q", "example.com", &tenant_a), 1);
  EXPECT_EQ(match(*r, "/web", "api.example.com", &tenant_a), 1);
  EXPECT_EQ(match(*r, "/api/x", "api.example.com", nullptr), 1);
}

// ---- Building ---------------------------------------------------------------------------------

TEST(RouterBuild, BadRegexesAreReportedAtTheirRoutes) {
  Listener l;
  Route ok_route = regex("/fine/.*");
  ok_route.name = "fine";
  ok_route.loc = {"t.yaml", 5, 7};
  Route bad_path = regex("/(unclosed");
  bad_path.name = "bad_path";
  bad_path.loc = {"t.yaml", 8, 7};
  HeaderMatcher h = header("x-v");
  h.regex = "[z-a]";
  Route bad_header = with_header(h);
  bad_header.name = "bad_header";
  bad_header.loc = {"t.yaml", 12, 7};
  l.routes = {ok_route, bad_path, bad_header};
  std::vector<config::Error> errors;
  EXPECT_EQ(Router::build(l, &errors), nullptr);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].str(),
            "t.yaml:8:7: invalid path regex '/(unclosed' in route 'bad_path': missing ): "
            "/(unclosed");
  EXPECT_EQ(errors[1].str(),
            "t.yaml:12:7: invalid header regex for 'x-v' '[z-a]' in route 'bad_header': invalid "
            "character class range: z-a");
}

TEST(RouterBuild, NullErrorSinkIsAllowed) {
  Listener l;
  l.routes = {regex("(")};
  EXPECT_EQ(Router::build(l, nullptr), nullptr);
}

TEST(RouterBuild, FromALoadedConfig) {
  config::LoadResult loaded = config::load_string(R"(listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - match: {path: /healthz}
        direct_response: {status: 200}
      - match: {prefix: /api/, hosts: ["*.Example.com"], headers: [{name: X-Tenant, exact: a}]}
        cluster: c
      - match: {regex: "/v[0-9]/.*", host: "[::1]"}
        cluster: c
      - match: {}
        direct_response: {status: 404}
clusters: [{name: c, endpoints: [127.0.0.1:1]}]
)",
                                                  "t.yaml");
  ASSERT_TRUE(loaded.errors.empty()) << loaded.errors[0].str();
  std::vector<config::Error> errors;
  auto r = Router::build(loaded.config->listeners[0], &errors);
  ASSERT_NE(r, nullptr);
  http::HeaderMap h;
  h.add("x-tenant", "a");
  EXPECT_EQ(match(*r, "/healthz?full=1", "x", &h), 0);
  EXPECT_EQ(match(*r, "/api/v1", "API.example.com:80", &h), 1);
  EXPECT_EQ(match(*r, "/api/v1", "api.example.com", nullptr), 3);
  EXPECT_EQ(match(*r, "/v2/x", "[::1]:8080", nullptr), 2);
  EXPECT_EQ(match(*r, "/v2/x", "localhost", nullptr), 3);
}

}  // namespace
}  // namespace sy::router
