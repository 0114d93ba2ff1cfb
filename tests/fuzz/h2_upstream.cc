// Fuzz target: the upstream HTTP/2 client path (core/upstream/h2_pool.cc) as a server drives it:
// the nghttp2 client session with Switchyard's settings, response heads (interim ones too),
// bodies under flow control and back-pressure, trailers, resets, GOAWAY, and the pool's
// handling of all of it. The pool dials a real listening socket on 127.0.0.1; the fuzz input is
// what the server writes on the accepted connection (after an empty SETTINGS frame, so inputs
// need not spell one out), in segments, then it closes. What the proxy sends the server (its
// preface, requests, bodies, WINDOW_UPDATEs) is read and thrown away.
//
// Input: byte 0 picks the segment size; byte 1 the requests: bits 0-1 how many (1-4) go out at
// once, bit 2 makes them POSTs with a body larger than the server's default window, bit 3 makes
// them HEADs, bit 4 has each client stop reading at its first body bytes and resume a loop turn
// later (back-pressure).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/log/log.h"
#include "core/runtime/runtime.h"
#include "core/upstream/pool.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sy;

namespace {

// One request as the downstream stream would make it: it sends the request when the pool hands
// it a stream, and gives the stream back (release) outside of the pool's callbacks, as the real
// stream does once its response is done or abandoned.
class FuzzClient final : public upstream::Client {
 public:
  FuzzClient(uint8_t opts) : opts_(opts) {}

  void on_upstream_ready(upstream::Exchange* ex) override {
    ex_ = ex;
    headers_.set("x-fuzz", "1");
    upstream::RequestHead h;
    h.method = (opts_ & 8) ? "HEAD" : (opts_ & 4) ? "POST" : "GET";
    h.is_head = opts_ & 8;
    h.path = "/fuzz";
    h.authority = "upstream.test";
    h.scheme = "http";
    h.headers = &headers_;
    const bool body = (opts_ & 4) && !(opts_ & 8);
    if (body) h.content_length = kBody;
    h.end_stream = !body;
    ex->send_head(h);
    if (body && ex_) {
      // More than the server's initial window: the rest waits for its WINDOW_UPDATEs.
      std::string chunk(kBody / 4, 'b');
      for (int i = 0; i < 4 && ex_; ++i) ex_->send_body(chunk.data(), chunk.size());
      if (ex_) ex_->send_end(nullptr);
    }
  }
  void on_upstream_failure(Failure, const std::string& details) override {
    FUZZ_CHECK(!details.empty());
    done_ = true;
  }
  int on_response_head(http1::MessageHead& head) override {
    // Interim (1xx) heads stay in the codec; what reaches the stream is a final status.
    FUZZ_CHECK(head.status >= 200 && head.status <= 999);
    heads_++;
    return 0;
  }
  void on_response_body(const char*, size_t len) override {
    body_ += len;
    if ((opts_ & 16) && ex_ && !paused_) {
      paused_ = true;
      ex_->pause_reading();
    }
  }
  void on_response_trailers(http::HeaderMap& trailers) override {
    for (const auto& t : trailers) FUZZ_CHECK(!t.name.empty() && t.name[0] != ':');
  }
  void on_response_complete() override { complete_ = true; }
  void on_upstream_reset(const std::string& details) override {
    FUZZ_CHECK(!details.empty());
    ex_ = nullptr;  // the pool has let go of the exchange itself
    done_ = true;
  }
  void on_upstream_drained() override {}

  // Between loop turns: resume a paused read, or give the exchange back once the response is
  // complete.
  void step(upstream::Pool& pool) {
    if (paused_ && ex_) {
      paused_ = false;
      ex_->resume_reading();
    }
    if (complete_ && ex_) {
      FUZZ_CHECK(heads_ == 1);
      pool.release(std::exchange(ex_, nullptr), true);
      done_ = true;
    }
  }
  // The end: a request still in flight is abandoned (the pool resets its stream).
  void abandon(upstream::Pool& pool) {
    if (ex_) pool.release(std::exchange(ex_, nullptr), false);
    if (!done_) pool.cancel(this);
  }

 private:
  static constexpr size_t kBody = 96 * 1024;
  uint8_t opts_;
  upstream::Exchange* ex_ = nullptr;
  http::HeaderMap headers_;
  int heads_ = 0;
  size_t body_ = 0;
  bool paused_ = false;
  bool complete_ = false;
  bool done_ = false;
};

struct Env {
  uv_loop_t loop;
  int listen_fd = -1;
  std::shared_ptr<const server::Runtime> rt;
  std::shared_ptr<server::ClusterRuntime> cluster;

  Env() {
    log::set_level(log::Level::kOff);
    FUZZ_CHECK(uv_loop_init(&loop) == 0);
    listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(listen_fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(::bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    FUZZ_CHECK(::listen(listen_fd, 16) == 0);
    socklen_t len = sizeof a;
    FUZZ_CHECK(::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    std::string yaml =
        "listeners:\n"
        "  - name: l\n"
        "    address: 127.0.0.1:0\n"
        "    routes: [{match: {}, cluster: up}]\n"
        "clusters:\n"
        "  - name: up\n"
        "    protocol: http2\n"
        "    endpoints: [\"127.0.0.1:" +
        std::to_string(ntohs(a.sin_port)) +
        "\"]\n"
        "    connect_retries: 0\n";
    auto loaded = config::load_string(yaml, "fuzz.yaml");
    FUZZ_CHECK(loaded.errors.empty());
    std::vector<config::Error> errors;
    rt = server::Runtime::build(loaded.config, nullptr, &errors);
    FUZZ_CHECK(rt && errors.empty());
    cluster = rt->clusters.at("up");
  }
};

Env& env() {
  static Env* e = new Env;  // never destroyed: its loop outlives every input
  return *e;
}

// Runs the loop a few turns, reading (and dropping) what the proxy sent the server.
void run_loop(uv_loop_t* loop, int server) {
  for (int i = 0; i < 4; ++i) {
    uv_run(loop, UV_RUN_NOWAIT);
    char buf[65536];
    if (server >= 0)
      while (::read(server, buf, sizeof buf) > 0) {
      }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Env& e = env();
  size_t segment = size_t(data[0]) * 16 + 1;
  uint8_t opts = data[1];
  data += 2;
  size -= 2;

  auto pool = upstream::make_pool(&e.loop, e.cluster);
  std::vector<std::unique_ptr<FuzzClient>> clients;
  for (int i = 0; i < 1 + (opts & 3); ++i) {
    clients.push_back(std::make_unique<FuzzClient>(opts));
    pool->acquire(clients.back().get());
  }
  // The pool connects; the connection is the server's once accepted.
  int server = -1;
  for (int i = 0; i < 100 && server < 0; ++i) {
    run_loop(&e.loop, -1);
    server = ::accept4(e.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
  FUZZ_CHECK(server >= 0);
  static const uint8_t kSettings[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
  FUZZ_CHECK(::send(server, kSettings, sizeof kSettings, MSG_NOSIGNAL) == sizeof kSettings);
  run_loop(&e.loop, server);

  size_t at = 0;
  int stalled = 0;  // rounds in a row the proxy took nothing
  while (at < size && stalled < 4) {
    size_t n = std::min(segment, size - at);
    ssize_t w = ::send(server, data + at, n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) break;  // the proxy closed the connection
    stalled = w > 0 ? 0 : stalled + 1;
    if (w > 0) at += size_t(w);
    run_loop(&e.loop, server);
    for (auto& c : clients) c->step(*pool);
  }
  for (auto& c : clients) c->step(*pool);
  ::close(server);
  run_loop(&e.loop, -1);
  // Whatever is still in flight is abandoned, and the pool goes, as when a cluster leaves the
  // config; the loop then frees the connections and sockets.
  for (auto& c : clients) c->abandon(*pool);
  pool->retire();
  run_loop(&e.loop, -1);
  pool.reset();
  for (int i = 0; i < 8; ++i) uv_run(&e.loop, UV_RUN_NOWAIT);
  // A connection the listener still holds in its backlog (a retry) is dropped here.
  while (true) {
    int extra = ::accept4(e.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (extra < 0) break;
    ::close(extra);
  }
  return 0;
}
