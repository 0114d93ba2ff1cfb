// A Stream driven without a worker or sockets: a fake connection (StreamOwner) and a fake
// worker (StreamWorker) record what the stream does, for the paths that need no upstream.
#include "core/server/stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "../../config_test_util.h"

namespace sy::server {
namespace {

class FakeWorker final : public StreamWorker {
 public:
  uv_loop_t* loop() override { return nullptr; }
  int index() const override { return 0; }
  upstream::Pool* pool(const std::shared_ptr<ClusterRuntime>&) override {
    ADD_FAILURE() << "these streams never reach an upstream";
    return nullptr;
  }
  void access_log(std::string line) override { log.push_back(std::move(line)); }
  bool draining() const override { return false; }
  std::vector<std::string> log;
};

class FakeConn final : public StreamOwner {
 public:
  StreamWorker* worker() const override { return w; }
  const ConnInfo& info() const override { return ci; }
  void send_continue() override {}
  void send_response_head(const ResponseHead& h) override {
    status = h.status;
    close = h.close;
    if (h.headers)
      for (const auto& x : *h.headers) headers[x.name] = x.value;
  }
  void send_response_body(const char* data, size_t len) override { body.append(data, len); }
  void send_response_end(const http::HeaderMap*) override { ended = true; }
  void on_response_done() override { done = true; }
  void reset_stream() override { reset = true; }
  bool above_high() const override { return false; }
  void pause_reading() override {}
  void resume_reading() override {}
  void start_stream_timer(uint64_t, std::function<void()>) override {}
  void stop_stream_timer() override {}

  FakeWorker* w = nullptr;
  ConnInfo ci;
  int status = 0;
  bool close = false, ended = false, done = false, reset = false;
  std::map<std::string, std::string> headers;
  std::string body;
};

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_path_ = std::filesystem::temp_directory_path() /
                ("sy-stream-test-" + std::to_string(getpid()) + ".log");
    auto cfg = config::testutil::ok(R"(
access_log: {path: )" + log_path_.string() +
                                    R"(}
listeners:
  - name: main
    address: 127.0.0.1:1
    routes:
      - name: hello
        match: {prefix: /hello}
        direct_response: {status: 200, body: "hi\n"}
)");
    ASSERT_TRUE(cfg);
    std::vector<config::Error> errors;
    rt_ = Runtime::build(cfg, nullptr, &errors);
    ASSERT_TRUE(errors.empty()) << errors.front().str();
    conn_.w = &worker_;
    conn_.ci.peer_ip = "10.0.0.7";
  }
  void TearDown() override { std::filesystem::remove(log_path_); }

  // Runs one bodiless request through a new stream, to its end.
  void run(std::string method, std::string target, std::vector<http::Header> headers) {
    Stream s(&conn_, rt_, rt_->listener("main"));
    http1::MessageHead head;
    head.method = std::move(method);
    head.target = std::move(target);
    for (auto& h : headers) head.headers.add(h.name, h.value);
    s.on_request_head(head);
    s.on_request_complete();
    s.finalize();
  }

  std::filesystem::path log_path_;
  std::shared_ptr<const Runtime> rt_;
  FakeWorker worker_;
  FakeConn conn_;
};

TEST_F(StreamTest, DirectResponseIsAnsweredAndLogged) {
  run("GET", "/hello", {{"host", "example.com"}, {"x-request-id", "r-1"}});
  EXPECT_EQ(conn_.status, 200);
  EXPECT_EQ(conn_.body, "hi\n");
  EXPECT_EQ(conn_.headers["content-type"], "text/plain");
  EXPECT_TRUE(conn_.ended);
  EXPECT_TRUE(conn_.done);
  EXPECT_FALSE(conn_.reset);
  ASSERT_EQ(worker_.log.size(), 1u);
  const std::string& line = worker_.log[0];
  EXPECT_NE(line.find("\"status\":200"), std::string::npos) << line;
  EXPECT_NE(line.find("\"route\":\"hello\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"request_id\":\"r-1\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"response_flags\":\"LR\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"client\":\"10.0.0.7\""), std::string::npos) << line;
}

TEST_F(StreamTest, NoRouteIsA404WithTheNoRouteFlag) {
  run("GET", "/elsewhere", {{"host", "example.com"}});
  EXPECT_EQ(conn_.status, 404);
  ASSERT_EQ(worker_.log.size(), 1u);
  EXPECT_NE(worker_.log[0].find("\"response_flags\":\"NR\""), std::string::npos) << worker_.log[0];
  EXPECT_NE(worker_.log[0].find("\"details\":\"route_not_found\""), std::string::npos);
}

TEST_F(StreamTest, MissingHostIsA400ThatClosesTheConnection) {
  run("GET", "/hello", {});
  EXPECT_EQ(conn_.status, 400);
  EXPECT_TRUE(conn_.close);
  ASSERT_EQ(worker_.log.size(), 1u);
  EXPECT_NE(worker_.log[0].find("\"details\":\"missing_host\""), std::string::npos);
}

TEST_F(StreamTest, AbsoluteFormKeepsItsQueryForRouting) {
  // HTTP/1.1 still needs a Host header (RFC 9112 §3.2); the target's authority replaces it.
  run("GET", "http://example.com/hello?x=1", {{"host", "other.example"}});
  EXPECT_EQ(conn_.status, 200);
  ASSERT_EQ(worker_.log.size(), 1u);
  EXPECT_NE(worker_.log[0].find("\"path\":\"/hello?x=1\""), std::string::npos) << worker_.log[0];
  EXPECT_NE(worker_.log[0].find("\"authority\":\"example.com\""), std::string::npos);
}

}  // namespace
}  // namespace sy::server
