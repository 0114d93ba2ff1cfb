// The attribute table: each path reads its fact; absent facts are absent, not empty.
#include <gtest/gtest.h>

#include "core/server/stream_info.h"

namespace sy::server {
namespace {

struct Fixture {
  StreamInfo info;
  ConnInfo conn;
  config::Listener listener;
  std::string route = "r1";
  std::string cluster = "backend";
  bool routed_to_cluster = true;

  Fixture() {
    info.method = "POST";
    info.path = "/p/q?x=1";
    info.authority = "example.com";
    info.request_id = "rid";
    info.protocol = "HTTP/2";
    info.bytes_in = 7;
    info.bytes_out = 9;
    conn.peer_ip = "10.1.2.3";
    conn.peer_port = 4567;
    conn.id = 42;
    listener.name = "main";
    listener.address = {"127.0.0.1", 8080};
  }
  std::optional<std::string> get(std::string_view path) const {
    std::string out;
    AttributeSource src{info, conn, listener, route, routed_to_cluster ? &cluster : nullptr};
    if (!read_attribute(src, path, &out)) return std::nullopt;
    return out;
  }
};

TEST(StreamAttributes, RequestFacts) {
  Fixture f;
  EXPECT_EQ(f.get("request.path"), "/p/q?x=1");
  EXPECT_EQ(f.get("request.url_path"), "/p/q");
  EXPECT_EQ(f.get("request.method"), "POST");
  EXPECT_EQ(f.get("request.host"), "example.com");
  EXPECT_EQ(f.get("request.scheme"), "http");
  EXPECT_EQ(f.get("request.protocol"), "HTTP/2");
  EXPECT_EQ(f.get("request.id"), "rid");
  EXPECT_EQ(f.get("request.size"), "7");
  EXPECT_TRUE(f.get("request.time").has_value());
  EXPECT_TRUE(f.get("request.duration").has_value());
}

TEST(StreamAttributes, ConnectionAndListenerFacts) {
  Fixture f;
  EXPECT_EQ(f.get("source.address"), "10.1.2.3");
  EXPECT_EQ(f.get("source.port"), "4567");
  EXPECT_EQ(f.get("connection.id"), "42");
  EXPECT_EQ(f.get("connection.mtls"), "false");
  EXPECT_EQ(f.get("destination.address"), "127.0.0.1:8080");
  EXPECT_EQ(f.get("destination.port"), "8080");
  EXPECT_EQ(f.get("xds.listener_name"), "main");
  EXPECT_EQ(f.get("listener.limits.headers"), "100");
  f.listener.limits.headers = 7;
  EXPECT_EQ(f.get("listener.limits.headers"), "7");
  EXPECT_EQ(f.get("xds.route_name"), "r1");
  EXPECT_EQ(f.get("xds.cluster_name"), "backend");
}

TEST(StreamAttributes, ResponseFactsOnlyOnceThereIsOne) {
  Fixture f;
  EXPECT_EQ(f.get("response.code"), std::nullopt);
  EXPECT_EQ(f.get("response.flags"), "-");
  EXPECT_EQ(f.get("upstream.address"), std::nullopt);
  f.info.status = 503;
  f.info.flag = log::ResponseFlag::kUpstreamOverflow;
  f.info.details = "overflow";
  f.info.upstream_host = "10.0.0.9:80";
  EXPECT_EQ(f.get("response.code"), "503");
  EXPECT_EQ(f.get("response.flags"), "UO");
  EXPECT_EQ(f.get("response.code_details"), "overflow");
  EXPECT_EQ(f.get("response.size"), "9");
  EXPECT_EQ(f.get("upstream.address"), "10.0.0.9:80");
}

TEST(StreamAttributes, TlsFactsAreAbsentOnAPlainConnection) {
  Fixture f;
  f.routed_to_cluster = false;
  EXPECT_EQ(f.get("xds.cluster_name"), std::nullopt);
  EXPECT_EQ(f.get("connection.tls_version"), std::nullopt);
  EXPECT_EQ(f.get("connection.requested_server_name"), std::nullopt);
  EXPECT_EQ(f.get("connection.peer_certificate"), std::nullopt);
  EXPECT_EQ(f.get("connection.subject_peer_certificate"), std::nullopt);
  f.conn.tls = true;
  f.conn.tls_version = "TLSv1.3";
  f.conn.sni = "a.example";
  f.conn.peer_cert = "PEM";
  f.conn.peer_subject = "CN=client";
  f.listener.tls.emplace();
  EXPECT_EQ(f.get("request.scheme"), "https");
  EXPECT_EQ(f.get("connection.tls_version"), "TLSv1.3");
  EXPECT_EQ(f.get("connection.requested_server_name"), "a.example");
  EXPECT_EQ(f.get("connection.mtls"), "true");
  EXPECT_EQ(f.get("connection.subject_peer_certificate"), "CN=client");
}

TEST(StreamAttributes, UnknownPathIsAbsent) {
  Fixture f;
  EXPECT_EQ(f.get("request.nope"), std::nullopt);
  EXPECT_EQ(f.get(""), std::nullopt);
}

}  // namespace
}  // namespace sy::server
