// OutBody and SendBatch: a client session sends a request body through them to a real nghttp2
// server session in memory, which checks what arrives, frame by frame.
#include <gtest/gtest.h>

#include <string>

#include "core/http2/frames.h"
#include "core/http2/out_body.h"

namespace sy::http2 {
namespace {

// The sending side: a client session whose frames go through a SendBatch.
struct Client {
  nghttp2_session* session = nullptr;
  SendBatch batch;
  SendBatch& send_batch() { return batch; }
  Client() {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    SendBatch::install<Client>(cb);
    nghttp2_session_client_new(&session, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(session); }
};

// The receiving side: what a real peer makes of the bytes.
struct Server {
  nghttp2_session* session = nullptr;
  std::string body;
  std::string trailer_value;
  bool ended = false;
  Server() {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session*, uint8_t, int32_t, const uint8_t* data, size_t len, void* u) {
          static_cast<Server*>(u)->body.append(reinterpret_cast<const char*>(data), len);
          return 0;
        });
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame*, const uint8_t* name, size_t nlen,
               const uint8_t* value, size_t vlen, uint8_t, void* u) {
          if (std::string_view(reinterpret_cast<const char*>(name), nlen) == "x-trailer")
            static_cast<Server*>(u)->trailer_value.assign(reinterpret_cast<const char*>(value),
                                                          vlen);
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          // (END_STREAM shares its bit with SETTINGS' and PING's ACK.)
          bool carries_stream = f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS;
          if (carries_stream && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            static_cast<Server*>(u)->ended = true;
          return 0;
        });
    nghttp2_session_server_new(&session, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Server() { nghttp2_session_del(session); }
  void take(const std::string& bytes) {
    ASSERT_EQ(nghttp2_session_mem_recv(session, reinterpret_cast<const uint8_t*>(bytes.data()),
                                       bytes.size()),
              ssize_t(bytes.size()));
  }
  // What the server would send back (SETTINGS ACKs, WINDOW_UPDATEs).
  std::string replies() {
    std::string out;
    const uint8_t* p;
    for (ssize_t n; (n = nghttp2_session_mem_send(session, &p)) > 0;)
      out.append(reinterpret_cast<const char*>(p), size_t(n));
    return out;
  }
};

int drained_calls = 0;

// Moves everything each side has to send to the other, until both are quiet; returns how many
// writes the client made (one per SendBatch fill that produced bytes).
int pump(Client& c, Server& s) {
  int writes = 0;
  for (int round = 0; round < 100; ++round) {
    EXPECT_EQ(c.batch.fill(c.session), 0);
    std::string from_client = c.batch.bytes();
    c.batch.clear();
    if (!from_client.empty()) {
      ++writes;
      s.take(from_client);
    }
    std::string from_server = s.replies();
    if (!from_server.empty())
      nghttp2_session_mem_recv(c.session, reinterpret_cast<const uint8_t*>(from_server.data()),
                               from_server.size());
    if (from_client.empty() && from_server.empty()) break;
  }
  return writes;
}

nghttp2_nv nv(const char* name, const char* value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value)), strlen(name), strlen(value),
          NGHTTP2_NV_FLAG_NONE};
}

TEST(Http2OutBody, BodyAndTrailersArriveWholeThroughOneBatchPerFlush) {
  Client c;
  Server s;
  OutBody body([](void*) { ++drained_calls; }, nullptr);
  nghttp2_nv head[] = {nv(":method", "POST"), nv(":path", "/"), nv(":scheme", "http"),
                       nv(":authority", "a")};
  nghttp2_data_provider dp = body.provider();
  int32_t id = nghttp2_submit_request(c.session, nullptr, head, 4, &dp, nullptr);
  ASSERT_GT(id, 0);
  // Nothing queued yet: the stream is deferred, and the headers alone go out.
  pump(c, s);
  EXPECT_TRUE(s.body.empty());
  EXPECT_FALSE(s.ended);
  EXPECT_EQ(body.append("hello, ", 7), true) << "a deferred stream must ask to be resumed";
  nghttp2_session_resume_data(c.session, id);
  EXPECT_EQ(body.append("world", 5), false) << "not deferred any more";
  http::HeaderMap trailers;
  trailers.add("x-trailer", "t1");
  trailers.add(":status", "ignored");  // pseudo-headers never go in trailers
  body.end(&trailers);
  // Both DATA frames' bytes and the trailers leave in a single write.
  EXPECT_EQ(pump(c, s), 1);
  EXPECT_EQ(s.body, "hello, world");
  EXPECT_EQ(s.trailer_value, "t1");
  EXPECT_TRUE(s.ended);
  EXPECT_EQ(body.pending(), 0u);
}

TEST(Http2OutBody, ProducerIsToldWhenTheQueueDrainsBelowTheLowWatermark) {
  Client c;
  Server s;
  drained_calls = 0;
  OutBody body([](void*) { ++drained_calls; }, nullptr);
  nghttp2_nv head[] = {nv(":method", "POST"), nv(":path", "/"), nv(":scheme", "http"),
                       nv(":authority", "a")};
  nghttp2_data_provider dp = body.provider();
  int32_t id = nghttp2_submit_request(c.session, nullptr, head, 4, &dp, nullptr);
  ASSERT_GT(id, 0);
  std::string big(OutBody::kHigh + 1000, 'x');
  body.append(big.data(), big.size());
  EXPECT_TRUE(body.above_high());
  body.end(nullptr);
  // The peer's default windows (64 KiB) hold most of it back until it acknowledges; the
  // pump plays the peer, which consumes and opens its windows as data arrives.
  for (int i = 0; i < 100 && !s.ended; ++i) {
    pump(c, s);
    nghttp2_session_consume(s.session, id, s.body.size());
  }
  EXPECT_TRUE(s.ended);
  EXPECT_EQ(s.body.size(), big.size());
  EXPECT_EQ(drained_calls, 1);
  EXPECT_FALSE(body.above_high());
}

}  // namespace
}  // namespace sy::http2
