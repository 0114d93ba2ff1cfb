// Fuzz target: the downstream HTTP/2 connection (core/server/http2_conn.cc) as a client drives
// it: the frame scanner and its flood limits, the nghttp2 server session with Switchyard's
// settings, request validation, routing and the streams answering (direct responses, so no
// upstream is involved). The connection runs on a real worker loop, on one end of a socketpair;
// the fuzz input is what the client writes to the other end, then it closes. What the proxy
// answers is read and thrown away, so flow control and write back-pressure both happen.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "config/config.h"
#include "core/log/log.h"
#include "core/net/socket.h"
#include "core/runtime/runtime.h"
#include "core/server/http2_conn.h"
#include "core/server/worker.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sy;

namespace {

// Small limits, so that inputs reach them; routes that answer with and without a body, one
// large enough to need several windows.
const char* kConfig = R"(
listeners:
  - name: h2
    address: 127.0.0.1:0
    protocols: [http2]
    http2:
      max_concurrent_streams: 8
      initial_stream_window: 64KiB
      initial_connection_window: 64KiB
      max_header_list_size: 4KiB
      max_continuation_frames: 4
      max_resets: {count: 20, window: 10s}
      max_control_frames: {count: 50, window: 10s}
      max_empty_frames: 5
    limits: {header_bytes: 4KiB, headers: 32, request_body: 100KiB, buffered_body: 64KiB}
    routes:
      - match: {path: /empty}
        direct_response: {status: 204}
      - match: {prefix: /big}
        direct_response: {status: 200, body: "BIG"}
      - match: {host: other.test}
        direct_response: {status: 403, body: "no\n"}
      - match: {}
        direct_response: {status: 200, body: "hello\n", headers: [{name: x-a, value: b}]}
)";

struct Env {
  server::Worker worker{0};
  std::shared_ptr<const server::Runtime> rt;
  std::shared_ptr<server::ListenerSlot> slot;

  Env() {
    log::set_level(log::Level::kOff);
    std::string yaml = kConfig;
    // A body bigger than both windows: the response must wait for WINDOW_UPDATEs.
    yaml.replace(yaml.find("\"BIG\""), 5, "\"" + std::string(200 * 1024, 'x') + "\"");
    auto loaded = config::load_string(yaml, "fuzz.yaml");
    FUZZ_CHECK(loaded.errors.empty());
    std::vector<config::Error> errors;
    rt = server::Runtime::build(loaded.config, nullptr, &errors);
    FUZZ_CHECK(rt && errors.empty());
    worker.apply(rt, {});
    slot = std::make_shared<server::ListenerSlot>();
    slot->name = "h2";
    slot->worker = &worker;
    slot->runtime = rt;
    slot->lr = rt->listener("h2");
    FUZZ_CHECK(slot->lr);
  }
};

Env& env() {
  static Env* e = new Env;  // never destroyed: the worker's loop outlives every input
  return *e;
}

// Runs the worker's loop a few turns, reading (and dropping) what the proxy sent the client.
// Returns how many bytes that was.
size_t run_loop(uv_loop_t* loop, int client) {
  size_t got = 0;
  for (int i = 0; i < 4; ++i) {
    uv_run(loop, UV_RUN_NOWAIT);
    char buf[65536];
    ssize_t n;
    while ((n = ::read(client, buf, sizeof buf)) > 0) got += size_t(n);
  }
  return got;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Env& e = env();
  uv_loop_t* loop = e.worker.loop();
  // The first byte picks how the client's bytes are cut into writes.
  size_t segment = size_t(data[0]) * 16 + 1;
  ++data;
  --size;

  int fds[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  net::Socket* s = net::Socket::create(loop, nullptr);
  FUZZ_CHECK(uv_tcp_open(s->handle(), fds[0]) == 0);
  server::ConnInfo info;
  info.peer_ip = "192.0.2.1";
  info.peer_port = 40000;
  // As after the listener sniffed the client preface: the connection starts with it in hand,
  // so inputs need not spell it out. It owns itself from here and goes when it closes.
  static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  auto* c = new server::Http2Connection(&e.worker, e.slot, s, info);
  c->start(std::string_view(kPreface, sizeof kPreface - 1));
  // The server's SETTINGS go out first whatever the client sends: if they do not arrive, the
  // connection is not wired to the socket and the target would fuzz nothing.
  FUZZ_CHECK(run_loop(loop, fds[1]) >= 9);

  size_t at = 0;
  int stalled = 0;  // rounds in a row the proxy took nothing (it stopped reading)
  while (at < size && stalled < 4) {
    size_t n = std::min(segment, size - at);
    ssize_t w = ::send(fds[1], data + at, n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) break;  // the proxy closed the connection
    stalled = w > 0 ? 0 : stalled + 1;
    if (w > 0) at += size_t(w);
    run_loop(loop, fds[1]);
  }
  ::close(fds[1]);
  // The proxy sees the close and frees the connection, its streams and its socket.
  for (int i = 0; i < 8; ++i) uv_run(loop, UV_RUN_NOWAIT);
  return 0;
}
