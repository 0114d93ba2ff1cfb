// The access-log record: every field, in order, quoted as JSON; and the response flags' text.
#include "core/log/access_log.h"

#include <gtest/gtest.h>

namespace sy::log {
namespace {

TEST(AccessLog, WritesEveryFieldAsOneJsonLine) {
  AccessRecord r;
  r.time.tv_sec = 86400 + 3661;  // 1970-01-02T01:01:01
  r.time.tv_nsec = 250'000'000;
  r.listener = "main";
  r.method = "GET";
  r.authority = "example.com";
  r.path = "/a?b=\"c\"";
  r.protocol = "HTTP/1.1";
  r.status = 200;
  r.bytes_in = 3;
  r.bytes_out = 1024;
  r.duration_ms = 1.5;
  r.route = "r1";
  r.cluster = "backend";
  r.upstream_host = "127.0.0.1:8080";
  r.request_id = "id-1";
  r.flag = ResponseFlag::kNone;
  r.details = "via_upstream";
  r.client = "10.0.0.1";
  EXPECT_EQ(format_access_json(r),
            "{\"time\":\"1970-01-02T01:01:01.250Z\",\"listener\":\"main\",\"method\":\"GET\","
            "\"authority\":\"example.com\",\"path\":\"/a?b=\\\"c\\\"\",\"protocol\":\"HTTP/1.1\","
            "\"status\":200,\"bytes_in\":3,\"bytes_out\":1024,\"duration_ms\":1.500,"
            "\"route\":\"r1\",\"cluster\":\"backend\",\"upstream_host\":\"127.0.0.1:8080\","
            "\"request_id\":\"id-1\",\"response_flags\":\"-\",\"details\":\"via_upstream\","
            "\"client\":\"10.0.0.1\",\"tls_version\":\"\",\"sni\":\"\"}\n");
}

TEST(AccessLog, ControlCharactersAreEscaped) {
  AccessRecord r;
  r.path = "/\n";
  std::string line = format_access_json(r);
  EXPECT_NE(line.find("\"path\":\"/\\n\""), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one record is one line";
}

TEST(ResponseFlag, TextIsEnvoys) {
  EXPECT_STREQ(flag_text(ResponseFlag::kNone), "-");
  EXPECT_STREQ(flag_text(ResponseFlag::kDownstreamReset), "DC");
  EXPECT_STREQ(flag_text(ResponseFlag::kLocalReply), "LR");
  EXPECT_STREQ(flag_text(ResponseFlag::kNoRoute), "NR");
  EXPECT_STREQ(flag_text(ResponseFlag::kUpstreamTimeout), "UT");
  EXPECT_STREQ(flag_text(ResponseFlag::kUpstreamConnectFailure), "UF");
  EXPECT_STREQ(flag_text(ResponseFlag::kUpstreamOverflow), "UO");
  EXPECT_STREQ(flag_text(ResponseFlag::kUpstreamReset), "UR");
  EXPECT_STREQ(flag_text(ResponseFlag::kFilterReset), "FR");
  EXPECT_STREQ(flag_text(ResponseFlag::kOverload), "OL");
  EXPECT_STREQ(flag_text(ResponseFlag::kRateLimited), "RL");
}

}  // namespace
}  // namespace sy::log
