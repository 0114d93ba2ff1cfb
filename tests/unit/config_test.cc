// Config loading: every field read back, file handling, YAML syntax errors and their locations.
#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/config_test_util.h"

namespace sy::config {
namespace {

using namespace std::chrono_literals;
using namespace testutil;

constexpr std::string_view kFull = R"(
admin:
  address: 127.0.0.1:9902
workers: 3
module_path: [build/modules, /opt/sy]
modules:
  - name: hello
    path: build/modules/libsy_hello.so
    sha256: 3F1C0000000000000000000000000000000000000000000000000000000000AB
    watch: true
  - name: lua
listeners:
  - name: ingress
    address: 0.0.0.0:8080
    protocols: [http1, http2]
    tls: {certificate: certs/server.pem, private_key: certs/server.key, ca: certs/ca.pem}
    filters:
      - module: hello
        filter: add_header
        config: {name: x-hello, value: world}
      - module: lua
    routes:
      - name: api
        match:
          prefix: /api/
          hosts: [Example.COM, "*.example.com"]
          headers:
            - {name: X-Tenant, exact: a}
            - {name: x-p, prefix: pre}
            - {name: x-r, regex: "v[0-9]+"}
            - {name: x-present, present: true, invert: true}
        cluster: backend
        timeout: 2500ms
        per_filter: {lua: {disabled: true}, add_header: {value: other}}
      - match: {path: /healthz, host: health.local}
        direct_response:
          status: 204
          body: "ok\n"
          headers: [{name: X-Served-By, value: switchyard}, {name: x-empty, value: ""}]
      - match: {regex: "/v[0-9]+/.*"}
        cluster: backend
      - match: {}
        direct_response: {status: 404}
    limits: {header_bytes: 32KiB, headers: 50, request_body: 2GiB, buffered_body: 1M, connections_per_client: 7, streams_per_client: 0}
    timeouts: {request_headers: 5s, idle: 2m, request_body_idle: 3s, response_send_idle: 4s, drain: 1h}
  - name: tcp
    address: "[::1]:0"
    tcp_proxy: {cluster: backend}
    network_filters:
      - {module: hello, filter: net, config: [1, 2]}
clusters:
  - name: backend
    endpoints: [127.0.0.1:8081, "[::1]:8082", localhost:8083]
    protocol: http2
    tls: {sni: backend.local, ca: certs/ca.pem, certificate: c.pem, private_key: k.pem}
    connect_timeout: 250ms
    timeout: 15s
    max_connections: 10
    max_pending: 0
    pending_timeout: 2s
    connect_retries: 3
    idle_timeout: 90s
  - name: minimal
    endpoints: [10.0.0.1:80]
access_log: {path: /var/log/sy.log}
)";

TEST(ConfigLoad, EveryFieldIsReadBack) {
  auto cfg = ok(kFull);
  ASSERT_NE(cfg, nullptr);
  EXPECT_EQ(cfg->file, "t.yaml");
  EXPECT_EQ(cfg->yaml, std::string(kFull.substr(1)));
  EXPECT_EQ(cfg->admin.address.host, "127.0.0.1");
  EXPECT_EQ(cfg->admin.address.port, 9902);
  EXPECT_EQ(cfg->workers, 3u);
  EXPECT_EQ(cfg->module_path, (std::vector<std::string>{"build/modules", "/opt/sy"}));
  EXPECT_EQ(cfg->access_log.path, "/var/log/sy.log");

  ASSERT_EQ(cfg->modules.size(), 2u);
  EXPECT_EQ(cfg->modules[0].name, "hello");
  EXPECT_EQ(cfg->modules[0].path, "build/modules/libsy_hello.so");
  EXPECT_EQ(cfg->modules[0].sha256,
            "3f1c0000000000000000000000000000000000000000000000000000000000ab");
  EXPECT_TRUE(cfg->modules[0].watch);
  EXPECT_EQ(cfg->modules[0].loc.str(), "t.yaml:6:5");
  EXPECT_EQ(cfg->modules[1].name, "lua");
  EXPECT_EQ(cfg->modules[1].path, "");
  EXPECT_FALSE(cfg->modules[1].watch);

  ASSERT_EQ(cfg->listeners.size(), 2u);
  const Listener& l = cfg->listeners[0];
  EXPECT_EQ(l.name, "ingress");
  EXPECT_EQ(l.loc.str(), "t.yaml:12:5");
  EXPECT_EQ(l.address.str(), "0.0.0.0:8080");
  EXPECT_EQ(l.protocols, (std::vector<std::string>{"http1", "http2"}));
  ASSERT_TRUE(l.tls.has_value());
  EXPECT_EQ(l.tls->certificates.at(0).certificate, "certs/server.pem");
  EXPECT_EQ(l.tls->certificates.at(0).private_key, "certs/server.key");
  EXPECT_EQ(l.tls->ca, "certs/ca.pem");
  EXPECT_EQ(l.tls->sni, "");
  EXPECT_EQ(l.tls->loc.str(), "t.yaml:15:10");

  ASSERT_EQ(l.filters.size(), 2u);
  EXPECT_EQ(l.filters[0].module, "hello");
  EXPECT_EQ(l.filters[0].filter, "add_header");
  EXPECT_EQ(l.filters[0].config_json, R"({"name":"x-hello","value":"world"})");
  EXPECT_EQ(l.filters[0].loc.str(), "t.yaml:17:9");
  EXPECT_EQ(l.filters[1].module, "lua");
  EXPECT_EQ(l.filters[1].filter, "");
  EXPECT_EQ(l.filters[1].config_json, "{}");

  ASSERT_EQ(l.routes.size(), 4u);
  const Route& api = l.routes[0];
  EXPECT_EQ(api.name, "api");
  EXPECT_EQ(api.loc.str(), "t.yaml:22:9");
  EXPECT_EQ(api.match.prefix, "/api/");
  EXPECT_FALSE(api.match.path.has_value());
  EXPECT_FALSE(api.match.regex.has_value());
  EXPECT_EQ(api.match.hosts, (std::vector<std::string>{"example.com", "*.example.com"}));
  ASSERT_EQ(api.match.headers.size(), 4u);
  EXPECT_EQ(api.match.headers[0].name, "x-tenant");
  EXPECT_EQ(api.match.headers[0].exact, "a");
  EXPECT_FALSE(api.match.headers[0].invert);
  EXPECT_FALSE(api.match.headers[0].present);
  EXPECT_EQ(api.match.headers[1].prefix, "pre");
  EXPECT_EQ(api.match.headers[2].regex, "v[0-9]+");
  EXPECT_EQ(api.match.headers[3].name, "x-present");
  EXPECT_TRUE(api.match.headers[3].present);
  EXPECT_TRUE(api.match.headers[3].invert);
  EXPECT_FALSE(api.match.headers[3].exact.has_value());
  EXPECT_EQ(api.cluster, "backend");
  EXPECT_FALSE(api.direct.has_value());
  EXPECT_EQ(api.timeout, Duration(2500));
  EXPECT_EQ(api.per_filter.size(), 2u);
  EXPECT_EQ(api.per_filter.at("lua").json, R"({"disabled":true})");
  EXPECT_TRUE(api.per_filter.at("lua").disabled);
  EXPECT_EQ(api.per_filter.at("add_header").json, R"({"value":"other"})");
  EXPECT_FALSE(api.per_filter.at("add_header").disabled);

  const Route& health = l.routes[1];
  EXPECT_EQ(health.name, "route1");
  EXPECT_EQ(health.match.path, "/healthz");
  EXPECT_EQ(health.match.hosts, (std::vector<std::string>{"health.local"}));
  EXPECT_EQ(health.cluster, "");
  EXPECT_FALSE(health.timeout.has_value());
  ASSERT_TRUE(health.direct.has_value());
  EXPECT_EQ(health.direct->status, 204);
  EXPECT_EQ(health.direct->body, "ok\n");
  ASSERT_EQ(health.direct->headers.size(), 2u);
  EXPECT_EQ(health.direct->headers[0].name, "x-served-by");
  EXPECT_EQ(health.direct->headers[0].value, "switchyard");
  EXPECT_EQ(health.direct->headers[1].name, "x-empty");
  EXPECT_EQ(health.direct->headers[1].value, "");

  EXPECT_EQ(l.routes[2].match.regex, "/v[0-9]+/.*");
  EXPECT_EQ(l.routes[2].name, "route2");
  const Route& catch_all = l.routes[3];
  EXPECT_FALSE(catch_all.match.prefix || catch_all.match.path || catch_all.match.regex);
  EXPECT_TRUE(catch_all.match.hosts.empty());
  EXPECT_EQ(catch_all.direct->status, 404);
  EXPECT_EQ(catch_all.direct->body, "");

  EXPECT_EQ(l.limits.header_bytes, 32u * 1024);
  EXPECT_EQ(l.limits.headers, 50u);
  EXPECT_EQ(l.limits.request_body, 2ull << 30);
  EXPECT_EQ(l.limits.buffered_body, 1ull << 20);
  EXPECT_EQ(l.limits.connections_per_client, 7u);
  EXPECT_EQ(l.limits.streams_per_client, 0u);
  EXPECT_EQ(l.timeouts.request_headers, 5s);
  EXPECT_EQ(l.timeouts.idle, 2min);
  EXPECT_EQ(l.timeouts.request_body_idle, 3s);
  EXPECT_EQ(l.timeouts.response_send_idle, 4s);
  EXPECT_EQ(l.timeouts.drain, 1h);
  EXPECT_FALSE(l.tcp_proxy.has_value());

  const Listener& tcp = cfg->listeners[1];
  EXPECT_EQ(tcp.address.host, "::1");
  EXPECT_EQ(tcp.address.port, 0);
  EXPECT_EQ(tcp.address.str(), "[::1]:0");
  ASSERT_TRUE(tcp.tcp_proxy.has_value());
  EXPECT_EQ(tcp.tcp_proxy->cluster, "backend");
  EXPECT_TRUE(tcp.routes.empty());
  ASSERT_EQ(tcp.network_filters.size(), 1u);
  EXPECT_EQ(tcp.network_filters[0].filter, "net");
  EXPECT_EQ(tcp.network_filters[0].config_json, "[1,2]");
  EXPECT_EQ(tcp.protocols, (std::vector<std::string>{"http1"}));  // the default

  ASSERT_EQ(cfg->clusters.size(), 2u);
  const Cluster& c = cfg->clusters[0];
  EXPECT_EQ(c.name, "backend");
  EXPECT_EQ(c.loc.str(), "t.yaml:51:5");
  ASSERT_EQ(c.endpoints.size(), 3u);
  EXPECT_EQ(c.endpoints[0].str(), "127.0.0.1:8081");
  EXPECT_EQ(c.endpoints[1].str(), "[::1]:8082");
  EXPECT_EQ(c.endpoints[2].str(), "127.0.0.1:8083");
  EXPECT_EQ(c.protocol, "http2");
  ASSERT_TRUE(c.tls.has_value());
  EXPECT_EQ(c.tls->sni, "backend.local");
  EXPECT_EQ(c.tls->ca, "certs/ca.pem");
  EXPECT_EQ(c.tls->certificates.at(0).certificate, "c.pem");
  EXPECT_EQ(c.tls->certificates.at(0).private_key, "k.pem");
  EXPECT_EQ(c.connect_timeout, 250ms);
  EXPECT_EQ(c.timeout, 15s);
  EXPECT_EQ(c.max_connections, 10u);
  EXPECT_EQ(c.max_pending, 0u);
  EXPECT_EQ(c.pending_timeout, 2s);
  EXPECT_EQ(c.connect_retries, 3u);
  EXPECT_EQ(c.idle_timeout, 90s);

  EXPECT_EQ(cfg->find_cluster("minimal"), &cfg->clusters[1]);
  EXPECT_EQ(cfg->find_cluster("backend"), &cfg->clusters[0]);
  EXPECT_EQ(cfg->find_cluster("nope"), nullptr);
}

TEST(ConfigLoad, DefaultsWhenFieldsAreAbsent) {
  auto cfg = ok(R"(
listeners:
  - name: l
    address: localhost:8080
    routes:
      - match: {prefix: /}
        cluster: c
clusters:
  - name: c
    endpoints: [127.0.0.1:1]
)");
  ASSERT_NE(cfg, nullptr);
  EXPECT_EQ(cfg->admin.address.str(), "127.0.0.1:9901");
  EXPECT_EQ(cfg->workers, 0u);
  EXPECT_TRUE(cfg->module_path.empty());
  EXPECT_EQ(cfg->access_log.path, "");
  const Listener& l = cfg->listeners[0];
  EXPECT_EQ(l.address.str(), "127.0.0.1:8080");
  EXPECT_EQ(l.protocols, (std::vector<std::string>{"http1"}));
  EXPECT_FALSE(l.tls.has_value());
  EXPECT_EQ(l.limits.header_bytes, 64u * 1024);
  EXPECT_EQ(l.limits.headers, 100u);
  EXPECT_EQ(l.limits.request_body, 0u);
  EXPECT_EQ(l.limits.buffered_body, 1u << 20);
  EXPECT_EQ(l.limits.connections_per_client, 1024u);
  EXPECT_EQ(l.limits.streams_per_client, 512u);
  EXPECT_EQ(l.timeouts.request_headers, 10s);
  EXPECT_EQ(l.timeouts.idle, 60s);
  EXPECT_EQ(l.timeouts.request_body_idle, 10s);
  EXPECT_EQ(l.timeouts.response_send_idle, 60s);
  EXPECT_EQ(l.timeouts.drain, 30s);
  EXPECT_EQ(l.routes[0].name, "route0");
  // WebSocket is the one upgrade a listener allows unless told otherwise.
  ASSERT_EQ(l.upgrade_configs.size(), 1u);
  EXPECT_EQ(l.upgrade_configs[0].upgrade_type, "websocket");
  EXPECT_TRUE(l.upgrade_configs[0].enabled);
  EXPECT_TRUE(l.routes[0].upgrade_configs.empty());
  const Cluster& c = cfg->clusters[0];
  EXPECT_EQ(c.protocol, "http1");
  EXPECT_FALSE(c.tls.has_value());
  EXPECT_EQ(c.connect_timeout, 5s);
  EXPECT_EQ(c.timeout, 15s);
  EXPECT_EQ(c.max_connections, 1024u);
  EXPECT_EQ(c.max_pending, 1024u);
  EXPECT_EQ(c.pending_timeout, 5s);
  EXPECT_EQ(c.connect_retries, 1u);
  EXPECT_EQ(c.idle_timeout, 60s);
}

TEST(ConfigLoad, UpgradeConfigsOnListenerAndRoute) {
  auto cfg = ok(R"(
listeners:
  - name: l
    address: localhost:8080
    upgrade_configs: [{upgrade_type: WebSocket, enabled: false}, {upgrade_type: x-tunnel}]
    routes:
      - match: {prefix: /ws}
        cluster: c
        upgrade_configs: [{upgrade_type: websocket}]
  - name: none
    address: localhost:8081
    upgrade_configs: []
clusters:
  - name: c
    endpoints: [127.0.0.1:1]
)");
  ASSERT_NE(cfg, nullptr);
  const Listener& l = cfg->listeners[0];
  ASSERT_EQ(l.upgrade_configs.size(), 2u);
  EXPECT_EQ(l.upgrade_configs[0].upgrade_type, "websocket");  // lower-cased
  EXPECT_FALSE(l.upgrade_configs[0].enabled);
  EXPECT_EQ(l.upgrade_configs[1].upgrade_type, "x-tunnel");
  EXPECT_TRUE(l.upgrade_configs[1].enabled);
  EXPECT_EQ(l.upgrade_configs[1].loc.str(), "t.yaml:4:66");
  ASSERT_EQ(l.routes[0].upgrade_configs.size(), 1u);
  EXPECT_TRUE(l.routes[0].upgrade_configs[0].enabled);
  EXPECT_TRUE(cfg->listeners[1].upgrade_configs.empty());
}

TEST(ConfigLoad, DesignDocExampleLoads) {
  auto cfg = ok(R"(
admin:
  address: 127.0.0.1:9901
workers: 2
module_path: [build/modules]
modules:
  - name: hello
    path: build/modules/libsy_hello.so
    sha256: 3f1c8e4b9b0c5a1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d
    watch: true
listeners:
  - name: ingress
    address: 0.0.0.0:8080
    protocols: [http1, http2]    # http2 = h2c prior knowledge, or ALPN under TLS
    tls: {certificate: certs/server.pem, private_key: certs/server.key}
    filters:
      - module: hello
        filter: add_header
        config: {name: x-hello, value: world}
      - module: lua
        config:
          default_source_code: |
            function envoy_on_request(handle) handle:headers():add("x-lua", "1") end
    routes:
      - match: {prefix: /api/, headers: [{name: x-tenant, exact: a}]}
        cluster: backend
        per_filter: {lua: {disabled: true}}
      - match: {path: /healthz}
        direct_response: {status: 200, body: "ok\n"}
  - name: tcp
    address: 0.0.0.0:9000
    tcp_proxy: {cluster: backend}
    network_filters: []
clusters:
  - name: backend
    endpoints: [127.0.0.1:8081, 127.0.0.1:8082]
    protocol: http1
    tls: {sni: backend.local, ca: certs/ca.pem}
    connect_timeout: 1s
    timeout: 15s
)");
  ASSERT_NE(cfg, nullptr);
  EXPECT_EQ(cfg->listeners[0].filters[1].config_json,
            R"({"default_source_code":"function envoy_on_request(handle) )"
            R"(handle:headers():add(\"x-lua\", \"1\") end\n"})");
}

TEST(ConfigStrings, LocationAddressAndErrorFormat) {
  EXPECT_EQ((Location{"a.yaml", 3, 7}).str(), "a.yaml:3:7");
  EXPECT_EQ((Location{"a.yaml", 0, 0}).str(), "a.yaml");
  EXPECT_EQ((Address{"10.1.2.3", 80}).str(), "10.1.2.3:80");
  EXPECT_EQ((Address{"::1", 443}).str(), "[::1]:443");
  EXPECT_EQ((Address{"fe80::1:2", 0}).str(), "[fe80::1:2]:0");
  EXPECT_EQ((Error{{"a.yaml", 2, 5}, "bad"}).str(), "a.yaml:2:5: bad");
  EXPECT_EQ((Error{{"a.yaml", 0, 0}, "cannot read"}).str(), "a.yaml: cannot read");
}

// ---- File handling ---------------------------------------------------------------------------

TEST(ConfigFile, MissingFileHasNoPosition) {
  LoadResult r = load_file("/nonexistent/dir/switchyard.yaml");
  EXPECT_EQ(r.config, nullptr);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].loc.file, "/nonexistent/dir/switchyard.yaml");
  EXPECT_EQ(r.errors[0].loc.line, 0);
  EXPECT_EQ(r.errors[0].loc.col, 0);
  EXPECT_EQ(r.errors[0].str(),
            "/nonexistent/dir/switchyard.yaml: cannot read the config file: No such file or "
            "directory");
}

TEST(ConfigFile, DirectoryIsUnreadable) {
  LoadResult r = load_file("/");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].str(), "/: cannot read the config file: Is a directory");
}

TEST(ConfigFile, LoadsFromDiskAndKeepsFileName) {
  char path[] = "/tmp/sy_config_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string text = "workers: 4\nlisteners:\n  - {name: l, address: 127.0.0.1:0, bogus: 1}\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), ssize_t(text.size()));
  close(fd);
  LoadResult r = load_file(path);
  unlink(path);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(
      r.errors[0].str(),
      std::string(path) +
          ":3:37: unknown key 'bogus' in listener; expected one of: name, address, "
          "protocols, tls, http2, filters, routes, tcp_proxy, network_filters, limits, timeouts, "
          "upgrade_configs, metadata");
}

TEST(ConfigFile, EmptyFileIsAnError) {
  EXPECT_EQ(one_error(""),
            "t.yaml: the config is empty; expected a map with listeners, clusters, ...");
  EXPECT_EQ(one_error("# only a comment\n"),
            "t.yaml: the config is empty; expected a map with listeners, clusters, ...");
}

TEST(ConfigFile, MoreThanOneDocumentIsAnError) {
  EXPECT_EQ(one_error("workers: 1\n---\nworkers: 2\n"),
            "t.yaml:3:1: expected one YAML document, found 2");
}

TEST(ConfigFile, TopLevelMustBeAMap) {
  EXPECT_EQ(one_error("- a\n- b\n"), "t.yaml:1:1: config: expected a map, got a list");
}

// ---- YAML syntax -----------------------------------------------------------------------------

TEST(ConfigSyntax, ParserErrorsCarryLocation) {
  // An unclosed flow sequence: yaml-cpp notices at the first ':' on the next line.
  EXPECT_EQ(one_error(R"(
workers: 1
module_path: [a, b
listeners: []
)"),
            "t.yaml:3:10: end of sequence flow not found");
  EXPECT_EQ(one_error("workers: 1\nadmin: {address: 127.0.0.1:1\n"),
            "t.yaml:3:1: end of map flow not found");
  // A tab where indentation is expected.
  EXPECT_EQ(one_error("admin:\n\taddress: 1.2.3.4:5\n"), "t.yaml:2:9: illegal map value");
  EXPECT_EQ(one_error("workers: *nowhere\n"), "t.yaml:1:10: the referenced anchor is not defined");
}

TEST(ConfigSyntax, UnquotedIpv6AddressIsASyntaxError) {
  // "[::1]:80" must be quoted in YAML; unquoted it is a flow list followed by junk.
  std::string e = one_error("admin: {address: [::1]:80}\n");
  EXPECT_EQ(e.rfind("t.yaml:1:", 0), 0u) << e;
}

TEST(ConfigSyntax, DeepNestingIsReportedNotCrashing) {
  LoadResult r = load("workers: " + std::string(5000, '[') + "\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].str(), "t.yaml: YAML nested too deeply");
}

TEST(ConfigSyntax, StrayCommaIsReportedNotLooping) {
  // yaml-cpp 0.7 loops forever, allocating all the while, on a ',' where a document should
  // start (found by the config fuzzer): the load must end with an error instead.
  EXPECT_EQ(one_error(","),
            "t.yaml:1:1: unexpected ','; expected a map with listeners, clusters, ...");
  EXPECT_EQ(one_error("  ,\n"),
            "t.yaml:1:3: unexpected ','; expected a map with listeners, clusters, ...");
  EXPECT_EQ(one_error(",workers: 1\n"),
            "t.yaml:1:1: unexpected ','; expected a map with listeners, clusters, ...");
}

TEST(ConfigSyntax, NeverThrowsOnAnyPrefixOfAValidFile) {
  // Every truncation of a real config is some mix of valid, invalid and unparsable YAML.
  std::string full(kFull.substr(1));
  for (size_t n = 0; n <= full.size(); n += 7) {
    EXPECT_NO_THROW({
      LoadResult r = load_string(full.substr(0, n), "t.yaml");
      EXPECT_EQ(r.config == nullptr, !r.errors.empty());
      for (const Error& e : r.errors) EXPECT_EQ(e.loc.file, "t.yaml");
    }) << "prefix of "
       << n << " bytes";
  }
}

}  // namespace
}  // namespace sy::config
