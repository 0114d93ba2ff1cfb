// Config validation: every class of error, each with its exact file:line:col.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "tests/unit/config_test_util.h"

namespace sy::config {
namespace {

using namespace testutil;

// ---- Strictness: unknown keys, types, required keys ----------------------------------------

TEST(ConfigStrict, UnknownKeysAreNamedWithTheExpectedOnes) {
  EXPECT_EQ(one_error("workers: 1\nworker: 2\n"),
            "t.yaml:2:1: unknown key 'worker' in config; expected one of: admin, workers, "
            "module_path, module_preflight_at_start, modules, state_dir, on_module_crash, "
            "listeners, clusters, access_log, overload, node");
  EXPECT_EQ(one_error(R"(
clusters:
  - name: c
    endpoints: [127.0.0.1:1]
    retries: 2
)"),
            "t.yaml:4:5: unknown key 'retries' in cluster; expected one of: name, endpoints, "
            "protocol, tls, connect_timeout, timeout, max_connections, max_pending, "
            "pending_timeout, connect_retries, idle_timeout, metadata");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - match: {prefix: /, method: GET}
        direct_response: {status: 200}
)"),
            "t.yaml:5:28: unknown key 'method' in route match; expected one of: prefix, path, "
            "regex, hosts, host, headers");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    limits: {header_bytes: 1K, body: 1M}
)"),
            "t.yaml:4:32: unknown key 'body' in listener limits; expected one of: header_bytes, "
            "headers, request_body, buffered_body, connections_per_client, streams_per_client");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    tls: {certificate: a, private_key: b, sni: x}
)"),
            "t.yaml:4:43: unknown key 'sni' in listener tls; expected one of: certificate, "
            "private_key, certificates, ca, client_certificate, min_version, ciphers");
  EXPECT_EQ(one_error("admin: {address: 127.0.0.1:1, port: 2}\n"),
            "t.yaml:1:31: unknown key 'port' in admin; expected one of: address");
  EXPECT_EQ(one_error("modules: [{name: m, watched: true}]\n"),
            "t.yaml:1:21: unknown key 'watched' in module; expected one of: name, path, sha256, "
            "watch, config");
}

TEST(ConfigStrict, DuplicateKeysAreErrors) {
  EXPECT_EQ(one_error("workers: 1\nworkers: 2\n"), "t.yaml:2:1: duplicate key 'workers' in config");
  EXPECT_EQ(one_error("admin: {address: 127.0.0.1:1, address: 127.0.0.1:2}\n"),
            "t.yaml:1:31: duplicate key 'address' in admin");
}

TEST(ConfigStrict, WrongTypesSayWhatWasExpected) {
  EXPECT_EQ(one_error("workers: many\n"),
            "t.yaml:1:10: workers in config: expected a non-negative integer, got 'many'");
  EXPECT_EQ(one_error("workers: \"4\"\n"),
            "t.yaml:1:10: workers in config: expected an integer, got '4'");
  EXPECT_EQ(one_error("workers: -1\n"),
            "t.yaml:1:10: workers in config: must not be negative, got '-1'");
  EXPECT_EQ(one_error("workers: 5000\n"),
            "t.yaml:1:10: workers in config: must be between 0 and 1024, got 5000");
  EXPECT_EQ(one_error("admin: [127.0.0.1:1]\n"), "t.yaml:1:8: admin: expected a map, got a list");
  EXPECT_EQ(one_error("listeners: {name: l}\n"),
            "t.yaml:1:12: listeners in config: expected a list, got a map");
  EXPECT_EQ(one_error("module_path: build\n"),
            "t.yaml:1:14: module_path in config: expected a list, got 'build'");
  EXPECT_EQ(one_error("module_path: [a, {b: c}]\n"),
            "t.yaml:1:18: items of module_path in config: expected a string, got a map");
  EXPECT_EQ(one_error("modules: [{name: m, watch: yes}]\n"),
            "t.yaml:1:28: watch in module: expected true or false, got 'yes'");
  EXPECT_EQ(one_error("modules: [{name: {x: 1}}]\n"),
            "t.yaml:1:18: name in module: expected a string, got a map");
  EXPECT_EQ(one_error("listeners: [hello]\n"),
            "t.yaml:1:13: listener: expected a map, got 'hello'");
}

TEST(ConfigStrict, EmptyValueIsBlamedOnItsKey) {
  // yaml-cpp places an empty value at the next token; the error must point at the key.
  EXPECT_EQ(one_error(R"(
clusters:
  - name:
    endpoints: [127.0.0.1:1]
)"),
            "t.yaml:2:5: name in cluster: expected a string, got an empty value");
}

TEST(ConfigStrict, EmptyStringsAreRejected) {
  EXPECT_EQ(one_error("clusters: [{name: \"\", endpoints: [127.0.0.1:1]}]\n"),
            "t.yaml:1:19: name in cluster: must not be empty");
}

TEST(ConfigStrict, MissingRequiredKeysPointAtTheMap) {
  EXPECT_EQ(one_error(R"(
listeners:
  - address: 127.0.0.1:0
)"),
            "t.yaml:2:5: missing required key 'name' in listener");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
)"),
            "t.yaml:2:5: missing required key 'address' in listener");
  EXPECT_EQ(one_error("clusters: [{name: c}]\n"),
            "t.yaml:1:12: missing required key 'endpoints' in cluster");
  EXPECT_EQ(one_error("clusters: [{endpoints: [127.0.0.1:1]}]\n"),
            "t.yaml:1:12: missing required key 'name' in cluster");
  EXPECT_EQ(one_error("modules: [{path: x.so}]\n"),
            "t.yaml:1:11: missing required key 'name' in module");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    filters: [{filter: x}]
)"),
            "t.yaml:4:15: missing required key 'module' in filter");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    tls: {certificate: c.pem}
)"),
            "t.yaml:4:10: certificate in listener tls needs private_key too");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - cluster: c
clusters: [{name: c, endpoints: [127.0.0.1:1]}]
)"),
            "t.yaml:5:9: missing required key 'match' in route");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - match: {}
        direct_response: {body: x}
)"),
            "t.yaml:6:26: missing required key 'status' in direct_response");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - match: {}
        direct_response: {status: 200, headers: [{name: x}]}
)"),
            "t.yaml:6:50: missing required key 'value' in direct_response header");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    tcp_proxy: {}
)"),
            "t.yaml:4:16: missing required key 'cluster' in tcp_proxy");
}

// ---- Names and references --------------------------------------------------------------------

TEST(ConfigNames, DuplicateNamesPointAtTheSecond) {
  EXPECT_EQ(one_error(R"(
listeners:
  - {name: a, address: 127.0.0.1:0}
  - {name: b, address: 127.0.0.1:0}
  - {name: a, address: 127.0.0.1:0}
)"),
            "t.yaml:4:12: duplicate listener name 'a' (first defined at line 2)");
  EXPECT_EQ(one_error(R"(
clusters:
  - name: c
    endpoints: [127.0.0.1:1]
  - name: c
    endpoints: [127.0.0.1:2]
)"),
            "t.yaml:4:11: duplicate cluster name 'c' (first defined at line 2)");
  EXPECT_EQ(one_error("modules: [{name: m}, {name: m}]\n"),
            "t.yaml:1:22: duplicate module name 'm' (first defined at line 1)");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - {name: r, match: {}, direct_response: {status: 200}}
      - {name: r, match: {}, direct_response: {status: 200}}
)"),
            "t.yaml:6:16: duplicate route name 'r' (first defined at line 5)");
}

TEST(ConfigNames, RouteNamesAreOnlyUniqueWithinAListener) {
  EXPECT_NE(ok(R"(
listeners:
  - name: a
    address: 127.0.0.1:0
    routes: [{name: r, match: {}, direct_response: {status: 200}}]
  - name: b
    address: 127.0.0.1:0
    routes: [{name: r, match: {}, direct_response: {status: 200}}]
)"),
            nullptr);
}

TEST(ConfigNames, ExplicitNameCollidingWithADefaultOne) {
  // The second route's default name is route1, which the first route already took.
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - {name: route1, match: {}, direct_response: {status: 200}}
      - {match: {}, direct_response: {status: 200}}
)"),
            "t.yaml:6:9: duplicate route name 'route1' (first defined at line 5)");
}

TEST(ConfigNames, UnknownClustersPointAtTheName) {
  LoadResult r = load(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - match: {prefix: /}
        cluster: nope
  - name: t
    address: 127.0.0.1:0
    tcp_proxy: {cluster: gone}
clusters:
  - {name: c, endpoints: [127.0.0.1:1]}
)");
  EXPECT_EQ(r.config, nullptr);
  EXPECT_EQ(errors_of(r), (std::vector<std::string>{
                              "t.yaml:6:18: unknown cluster 'nope'; define it under clusters:",
                              "t.yaml:9:26: unknown cluster 'gone'; define it under clusters:",
                          }));
}

TEST(ConfigNames, ClustersMayBeDefinedAfterUse) {
  EXPECT_NE(ok(R"(
listeners:
  - {name: t, address: 127.0.0.1:0, tcp_proxy: {cluster: later}}
clusters:
  - {name: later, endpoints: [127.0.0.1:1]}
)"),
            nullptr);
}

// ---- Listener shape --------------------------------------------------------------------------

TEST(ConfigListener, RoutesAndTcpProxyAreExclusive) {
  LoadResult r = load(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: []
    tcp_proxy: {cluster: c}
clusters: [{name: c, endpoints: [127.0.0.1:1]}]
)");
  EXPECT_EQ(errors_of(r), (std::vector<std::string>{
                              "t.yaml:5:5: listener has both routes and tcp_proxy; a listener "
                              "either routes HTTP or proxies TCP",
                          }));
}

TEST(ConfigListener, HttpFiltersOnATcpListenerAreAnError) {
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    filters: [{module: m}]
    tcp_proxy: {cluster: c}
clusters: [{name: c, endpoints: [127.0.0.1:1]}]
)"),
            "t.yaml:4:5: filters in listener: HTTP filters do not run on a tcp_proxy listener; "
            "use network_filters");
}

TEST(ConfigListener, ProtocolsMustBeKnownAndDistinct) {
  LoadResult r = load(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    protocols: [http1, http3, http1]
  - name: m
    address: 127.0.0.1:0
    protocols: []
clusters:
  - {name: c, endpoints: [127.0.0.1:1], protocol: h2}
)");
  EXPECT_EQ(errors_of(r),
            (std::vector<std::string>{
                "t.yaml:4:24: protocols in listener: expected http1 or http2, got 'http3'",
                "t.yaml:4:31: protocols in listener: 'http1' is listed twice",
                "t.yaml:7:16: protocols in listener: must list http1, http2 or both",
                "t.yaml:9:51: protocol in cluster: expected http1 or http2, got 'h2'",
            }));
}

TEST(ConfigListener, LimitsAcceptSizesAndCounts) {
  LoadResult r = load(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    limits:
      header_bytes: 0
      headers: 1K
      request_body: 10KB
      buffered_body: -1
  - name: m
    address: 127.0.0.1:0
    limits: {header_bytes: 4GiB}
)");
  EXPECT_EQ(errors_of(r),
            (std::vector<std::string>{
                "t.yaml:5:21: header_bytes in listener limits: must be between 1 and 4294967295 "
                "bytes, got 0",
                "t.yaml:6:16: headers in listener limits: expected a non-negative integer, got "
                "'1K'",
                "t.yaml:7:21: request_body in listener limits: expected a size like 65536, 64KiB "
                "or 1MiB ('KB' is ambiguous; write KiB, MiB or GiB for binary multiples), got "
                "'10KB'",
                "t.yaml:8:22: buffered_body in listener limits: a size must not be negative, got "
                "'-1'",
                "t.yaml:11:28: header_bytes in listener limits: must be between 1 and "
                "4294967295 bytes, got 4294967296",
            }));
}

TEST(ConfigListener, TimeoutsNeedUnits) {
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    timeouts: {idle: 30}
)"),
            "t.yaml:4:22: idle in listener timeouts: expected a duration like 1s or 250ms (a "
            "number needs a unit: h, m, s, ms or us), got '30'");
}

TEST(ConfigListener, AddressErrors) {
  LoadResult r = load(R"(
listeners:
  - {name: a, address: 127.0.0.1}
  - {name: b, address: example.com:80}
  - {name: c, address: 127.0.0.1:70000}
  - {name: d, address: "::1:80"}
  - {name: e, address: ":80"}
clusters:
  - {name: c, endpoints: [127.0.0.1:0]}
)");
  const std::string hint = "expected an address like 127.0.0.1:8080 or [::1]:8080";
  EXPECT_EQ(errors_of(r),
            (std::vector<std::string>{
                "t.yaml:2:24: address in listener: " + hint + " (missing port), got '127.0.0.1'",
                "t.yaml:3:24: address in listener: " + hint +
                    " (host must be a numeric IP address or localhost, not 'example.com'), got "
                    "'example.com:80'",
                "t.yaml:4:24: address in listener: " + hint +
                    " (port must be a number from 0 to 65535), got '127.0.0.1:70000'",
                "t.yaml:5:24: address in listener: " + hint +
                    " (IPv6 addresses need brackets), got '::1:80'",
                "t.yaml:6:24: address in listener: " + hint +
                    " (missing host; use 0.0.0.0 for every interface), got ':80'",
                "t.yaml:8:27: items of endpoints in cluster: " + hint +
                    " (port 0 is only allowed for listeners), got '127.0.0.1:0'",
            }));
}

TEST(ConfigListener, FilterConfigAbsentOrEmptyIsAnEmptyObject) {
  auto cfg = ok(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    filters:
      - module: a
      - module: b
        config:
      - module: c
        config: {}
      - module: d
        config: "just a string"
)");
  ASSERT_NE(cfg, nullptr);
  const auto& f = cfg->listeners[0].filters;
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].config_json, "{}");
  EXPECT_EQ(f[1].config_json, "{}");
  EXPECT_EQ(f[2].config_json, "{}");
  EXPECT_EQ(f[3].config_json, "\"just a string\"");
}

TEST(ConfigListener, TlsHalvesOfAClientCertificate) {
  EXPECT_EQ(one_error("clusters: [{name: c, endpoints: [127.0.0.1:1], tls: {certificate: a}}]\n"),
            "t.yaml:1:53: certificate in cluster tls needs private_key too");
}

// ---- Routes ----------------------------------------------------------------------------------

// A listener with one route whose body is ROUTE (indented to sit under "- ").
std::string with_route(std::string_view route) {
  return "listeners:\n"
         "  - name: l\n"
         "    address: 127.0.0.1:0\n"
         "    filters: [{module: lua}, {module: m, filter: f}]\n"
         "    routes:\n"
         "      - " +
         std::string(route) +
         "\n"
         "clusters: [{name: c, endpoints: [127.0.0.1:1]}]\n";
}

std::string route_error(std::string_view route) {
  LoadResult r = load_string(with_route(route), "t.yaml");
  EXPECT_EQ(r.errors.size(), 1u) << ::testing::PrintToString(errors_of(r));
  return r.errors.empty() ? "" : r.errors[0].str();
}

TEST(ConfigRoute, TargetIsExactlyOneOfClusterOrDirectResponse) {
  EXPECT_EQ(route_error("{match: {}}"), "t.yaml:6:9: route needs one of: cluster, direct_response");
  EXPECT_EQ(route_error("{match: {}, cluster: c, direct_response: {status: 200}}"),
            "t.yaml:6:33: 'direct_response' conflicts with 'cluster' in route; use only one of: "
            "cluster, direct_response");
}

TEST(ConfigRoute, AtMostOnePathMatcher) {
  EXPECT_EQ(route_error("{match: {prefix: /a, path: /b}, cluster: c}"),
            "t.yaml:6:30: 'path' conflicts with 'prefix' in route match; use only one of: "
            "prefix, path, regex");
  EXPECT_EQ(route_error("{match: {prefix: api}, cluster: c}"),
            "t.yaml:6:26: prefix in route match: must start with '/', got 'api'");
  EXPECT_EQ(route_error("{match: {host: a, hosts: [b]}, cluster: c}"),
            "t.yaml:6:27: 'hosts' conflicts with 'host' in route match; use only one of: "
            "hosts, host");
}

TEST(ConfigRoute, StatusMustBeAnHttpStatus) {
  EXPECT_EQ(route_error("{match: {}, direct_response: {status: 99}}"),
            "t.yaml:6:47: status in direct_response: must be between 100 and 599, got 99");
  EXPECT_EQ(route_error("{match: {}, direct_response: {status: 600}}"),
            "t.yaml:6:47: status in direct_response: must be between 100 and 599, got 600");
  EXPECT_EQ(route_error("{match: {}, direct_response: {status: ok}}"),
            "t.yaml:6:47: status in direct_response: expected a non-negative integer, got 'ok'");
}

TEST(ConfigRoute, DirectResponseHeadersAreChecked) {
  EXPECT_EQ(route_error("{match: {}, direct_response: {status: 200, headers: [{name: \"a b\", "
                        "value: x}]}}"),
            "t.yaml:6:69: name in direct_response header: 'a b' is not a valid header name");
  EXPECT_EQ(route_error("{match: {}, direct_response: {status: 200, headers: [{name: a, "
                        "value: \"x\\r\\nevil: 1\"}]}}"),
            "t.yaml:6:79: value in direct_response header: must not contain CR, LF or NUL");
}

TEST(ConfigRoute, TimeoutOnlyForClusterRoutes) {
  EXPECT_EQ(route_error("{match: {}, direct_response: {status: 200}, timeout: 1s}"),
            "t.yaml:6:53: timeout in route: a direct_response route has no upstream to time out");
  EXPECT_EQ(route_error("{match: {}, cluster: c, timeout: soon}"),
            "t.yaml:6:42: timeout in route: expected a duration like 1s or 250ms, got 'soon'");
  EXPECT_EQ(route_error("{match: {}, cluster: c, timeout: 5sec}"),
            "t.yaml:6:42: timeout in route: expected a duration like 1s or 250ms (unknown unit "
            "'sec'; expected h, m, s, ms or us), got '5sec'");
}

TEST(ConfigRoute, UpgradeConfigsAreChecked) {
  EXPECT_EQ(route_error("{match: {}, cluster: c, upgrade_configs: [{upgrade_type: h2c}]}"),
            "t.yaml:6:66: upgrade_type in upgrade_configs in route: h2c upgrades are never "
            "forwarded; to accept h2c, add http2 to the listener's protocols (prior knowledge)");
  EXPECT_EQ(
      route_error("{match: {}, cluster: c, upgrade_configs: [{upgrade_type: \"web socket\"}]}"),
      "t.yaml:6:66: upgrade_type in upgrade_configs in route: 'web socket' is not a "
      "protocol name (a token such as websocket)");
  EXPECT_EQ(route_error("{match: {}, cluster: c, upgrade_configs: [{upgrade_type: WebSocket}, "
                        "{upgrade_type: websocket, enabled: false}]}"),
            "t.yaml:6:93: upgrade_type in upgrade_configs in route: 'websocket' is listed twice");
  EXPECT_EQ(route_error("{match: {}, cluster: c, upgrade_configs: [{upgrade_type: x, on: true}]}"),
            "t.yaml:6:69: unknown key 'on' in upgrade_configs entry in route; expected one of: "
            "upgrade_type, enabled");
  EXPECT_EQ(route_error("{match: {}, cluster: c, upgrade_configs: [{enabled: true}]}"),
            "t.yaml:6:51: missing required key 'upgrade_type' in upgrade_configs entry in route");
  EXPECT_EQ(route_error("{match: {}, cluster: c, upgrade_configs: websocket}"),
            "t.yaml:6:50: upgrade_configs in route: expected a list, got 'websocket'");
  EXPECT_EQ(route_error("{match: {}, direct_response: {status: 200}, upgrade_configs: []}"),
            "t.yaml:6:53: upgrade_configs in route: a direct_response route has no upstream to "
            "upgrade to");
}

TEST(ConfigRoute, HeaderMatchersNeedExactlyOneKind) {
  EXPECT_EQ(route_error("{match: {headers: [{name: a}]}, cluster: c}"),
            "t.yaml:6:28: header matcher needs one of: exact, prefix, regex, present");
  EXPECT_EQ(route_error("{match: {headers: [{name: a, exact: x, regex: y}]}, cluster: c}"),
            "t.yaml:6:48: 'regex' conflicts with 'exact' in header matcher; use only one of: "
            "exact, prefix, regex, present");
  EXPECT_EQ(route_error("{match: {headers: [{name: a, present: false}]}, cluster: c}"),
            "t.yaml:6:47: present in header matcher: only 'present: true' is meaningful; match "
            "a missing header with 'present: true' and 'invert: true'");
  EXPECT_EQ(route_error("{match: {headers: [{exact: x}]}, cluster: c}"),
            "t.yaml:6:28: missing required key 'name' in header matcher");
  EXPECT_EQ(route_error("{match: {headers: [{name: \"bad:name\", present: true}]}, cluster: c}"),
            "t.yaml:6:35: name in header matcher: 'bad:name' is not a valid header name");
}

TEST(ConfigRoute, PseudoHeaderNamesAreAllowedInMatchers) {
  auto cfg = ok(with_route("{match: {headers: [{name: \":method\", exact: GET}]}, cluster: c}"));
  ASSERT_NE(cfg, nullptr);
  EXPECT_EQ(cfg->listeners[0].routes[0].match.headers[0].name, ":method");
}

TEST(ConfigRoute, HostsAreNormalised) {
  auto cfg = ok(with_route(
      "{match: {hosts: [A.Example.Com., \"*.Wild.org.\", \"*\", \"[::1]\", \"FE80::1\", x.]}, "
      "cluster: c}"));
  ASSERT_NE(cfg, nullptr);
  EXPECT_EQ(cfg->listeners[0].routes[0].match.hosts,
            (std::vector<std::string>{"a.example.com", "*.wild.org", "*", "::1", "fe80::1", "x"}));
}

TEST(ConfigRoute, BadHostsAreErrors) {
  LoadResult r = load_string(
      with_route("{match: {hosts: [\"a.com:80\", \"a.*.com\", \"a b\", \"*.\"]}, cluster: c}"),
      "t.yaml");
  EXPECT_EQ(errors_of(r),
            (std::vector<std::string>{
                "t.yaml:6:26: hosts in route match: hosts are matched without the port; write "
                "'a.com'",
                "t.yaml:6:38: hosts in route match: a wildcard is only allowed as a leading "
                "'*.', as in *.example.com",
                "t.yaml:6:49: hosts in route match: 'a b' is not a host name",
                "t.yaml:6:56: hosts in route match: expected a host name like example.com or "
                "*.example.com",
            }));
  EXPECT_EQ(route_error("{match: {hosts: []}, cluster: c}"),
            "t.yaml:6:25: hosts in route match: must not be empty");
}

TEST(ConfigRoute, PerFilterMustNameAFilterOfTheListener) {
  // Filters may be named by module ("lua") or by factory ("f").
  auto cfg = ok(with_route("{match: {}, cluster: c, per_filter: {lua: {x: 1}, f: [true]}}"));
  ASSERT_NE(cfg, nullptr);
  EXPECT_EQ(cfg->listeners[0].routes[0].per_filter.at("lua").json, R"({"x":1})");
  EXPECT_EQ(cfg->listeners[0].routes[0].per_filter.at("f").json, "[true]");
  EXPECT_EQ(route_error("{match: {}, cluster: c, per_filter: {wasm: {}}}"),
            "t.yaml:6:46: per_filter in route: 'wasm' is not a filter of this listener");
  EXPECT_EQ(route_error("{match: {}, cluster: c, per_filter: [lua]}"),
            "t.yaml:6:45: per_filter in route: expected a map, got a list");
  EXPECT_EQ(route_error("{match: {}, cluster: c, per_filter: {lua: 1, lua: 2}}"),
            "t.yaml:6:54: duplicate key 'lua' in per_filter");
}

TEST(ConfigRoute, PerFilterDisabledIsExactlyAnUnquotedTrueAlone) {
  auto disabled = [](const std::string& value) {
    auto cfg = ok(with_route("{match: {}, cluster: c, per_filter: {lua: " + value + "}}"));
    return cfg->listeners[0].routes[0].per_filter.at("lua").disabled;
  };
  EXPECT_TRUE(disabled("{disabled: true}"));
  EXPECT_TRUE(disabled("{disabled: True}"));
  EXPECT_FALSE(disabled("{disabled: false}"));
  EXPECT_FALSE(disabled("{disabled: \"true\"}"));  // a string is the module's to read
  EXPECT_FALSE(disabled("{disabled: true, name: x}"));
  EXPECT_FALSE(disabled("{name: x}"));
}

// ---- Collecting every error ------------------------------------------------------------------

TEST(ConfigErrors, AllErrorsAreReportedInFileOrder) {
  // Clusters come first in the file but listeners are parsed after them; cross-reference errors
  // are found last. The report must still read top to bottom.
  LoadResult r = load(R"(
clusters:
  - name: c
    endpoints: [127.0.0.1:1]
    timeout: 3
listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - match: {prefix: /}
        cluster: missing
      - match: {prefix: /}
        direct_response: {status: 1000}
    colour: blue
workers: lots
)");
  EXPECT_EQ(r.config, nullptr);
  EXPECT_EQ(
      errors_of(r),
      (std::vector<std::string>{
          "t.yaml:4:14: timeout in cluster: expected a duration like 1s or 250ms (a number "
          "needs a unit: h, m, s, ms or us), got '3'",
          "t.yaml:10:18: unknown cluster 'missing'; define it under clusters:",
          "t.yaml:12:35: status in direct_response: must be between 100 and 599, got 1000",
          "t.yaml:13:5: unknown key 'colour' in listener; expected one of: name, address, "
          "protocols, tls, http2, filters, routes, tcp_proxy, network_filters, limits, timeouts, "
          "upgrade_configs, metadata",
          "t.yaml:14:10: workers in config: expected a non-negative integer, got 'lots'",
      }));
}

TEST(ConfigErrors, ModuleShaMustBeHex) {
  EXPECT_EQ(one_error("modules: [{name: m, sha256: abc}]\n"),
            "t.yaml:1:29: sha256 in module: expected 64 hexadecimal digits (the output of "
            "sha256sum)");
}

}  // namespace
}  // namespace sy::config

namespace sy::config {
namespace {

using namespace testutil;

// ---- TLS and HTTP/2 blocks -------------------------------------------------------------------

TEST(ConfigTls, ListenerCertificatesAndModesAreChecked) {
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    tls: {certificate: a.pem, private_key: a.key, client_certificate: optional}
)"),
            "t.yaml:4:71: client_certificate in listener tls needs ca (the bundle to verify "
            "against)");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    tls: {certificate: a.pem, private_key: a.key, min_version: "1.1"}
)"),
            "t.yaml:4:64: min_version in listener tls: expected \"1.2\" or \"1.3\" (older "
            "versions are never accepted), got '1.1'");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    tls: {ca: ca.pem}
)"),
            "t.yaml:4:10: listener tls: needs certificate and private_key, or certificates");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    tls:
      certificates:
        - {certificate: a.pem}
)"),
            "t.yaml:6:11: missing required key 'private_key' in items of certificates in "
            "listener tls");
}

TEST(ConfigHttp2, LimitsAreRangeChecked) {
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    http2: {max_concurrent_streams: 0}
)"),
            "t.yaml:4:37: max_concurrent_streams in listener http2: must be between 1 and "
            "4294967295, got 0");
  EXPECT_EQ(one_error(R"(
listeners:
  - name: l
    address: 127.0.0.1:0
    http2: {max_resets: {count: 10, per: 1s}}
)"),
            "t.yaml:4:37: unknown key 'per' in max_resets in listener http2; expected one of: "
            "count, window");
}

TEST(ConfigOverload, CapsAreReadAndCheckedWithLocations) {
  auto cfg = ok("overload: {max_downstream_connections: 20, max_buffered_bytes: 1MiB}\n");
  EXPECT_EQ(cfg->overload.max_downstream_connections, 20u);
  EXPECT_EQ(cfg->overload.max_buffered_bytes, 1u << 20);
  // Absent, both stay 0: the proxy derives them at start.
  auto dflt = ok("workers: 1\n");
  EXPECT_EQ(dflt->overload.max_downstream_connections, 0u);
  EXPECT_EQ(dflt->overload.max_buffered_bytes, 0u);
  EXPECT_EQ(one_error("overload:\n  max_connections: 5\n"),
            "t.yaml:2:3: unknown key 'max_connections' in overload; expected one of: "
            "max_downstream_connections, max_buffered_bytes");
  EXPECT_EQ(one_error("overload: {max_buffered_bytes: lots}\n"),
            "t.yaml:1:32: max_buffered_bytes in overload: expected a size like 65536, 64KiB or "
            "1MiB, got 'lots'");
}

}  // namespace
}  // namespace sy::config
