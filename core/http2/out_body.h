// The outgoing side of HTTP/2 streams, shared by the server and client codecs: a stream's body
// waiting for flow-control credit (OutBody), and the per-connection batch that nghttp2's
// frames are written into (SendBatch), so a connection writes once per flush and each DATA
// payload is copied once, from the stream's queue straight into the batch.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>

#include "core/http/headers.h"

namespace sy::http2 {

class OutBody {
 public:
  // Bytes queued beyond kHigh pause the producer; it hears ON_DRAINED(OWNER) below kLow.
  static constexpr size_t kHigh = 256 * 1024;
  static constexpr size_t kLow = 64 * 1024;

  OutBody(void (*on_drained)(void* owner), void* owner) : on_drained_(on_drained), owner_(owner) {}
  ~OutBody();  // what is still queued leaves the overload count
  OutBody(const OutBody&) = delete;
  OutBody& operator=(const OutBody&) = delete;

  // Queues DATA. True when nghttp2 had deferred the stream for want of data: the caller must
  // nghttp2_session_resume_data it.
  bool append(const char* data, size_t len);
  // The body ends after what is queued, with TRAILERS when not null (pseudo-headers and
  // connection-specific fields are left out). Same return as append. Once only.
  bool end(const http::HeaderMap* trailers);
  bool ended() const { return end_; }
  size_t pending() const { return buf_.size() - off_; }
  bool above_high() const { return pending() > kHigh; }

  // What nghttp2_submit_{request,response} take to read this body (with NO_COPY).
  nghttp2_data_provider provider();

 private:
  friend class SendBatch;
  static ssize_t read(nghttp2_session* session, int32_t id, uint8_t* buf, size_t len,
                      uint32_t* flags, nghttp2_data_source* src, void* user_data);
  // Moves the next LEN queued bytes to OUT.
  void take(std::string& out, size_t len);

  void (*on_drained_)(void*);
  void* owner_;
  std::string buf_;
  size_t off_ = 0;
  bool end_ = false;
  bool deferred_ = false;
  bool was_above_ = false;
  http::HeaderMap trailers_;
};

// What nghttp2_session_send produces, collected for one write. A connection owns one and
// installs its callbacks with install<Conn>() (Conn::send_batch() returns it; the session's
// user data is the Conn).
class SendBatch {
 public:
  // Past this, nghttp2 is told to wait, the batch is written, and sending goes on.
  static constexpr size_t kMax = 64 * 1024;

  template <class Conn>
  static void install(nghttp2_session_callbacks* cb) {
    nghttp2_session_callbacks_set_send_callback(
        cb, [](nghttp2_session*, const uint8_t* data, size_t len, int, void* user) -> ssize_t {
          return static_cast<Conn*>(user)->send_batch().frame(data, len);
        });
    nghttp2_session_callbacks_set_send_data_callback(
        cb,
        [](nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t len,
           nghttp2_data_source* src, void* user) -> int {
          return static_cast<Conn*>(user)->send_batch().data(frame, framehd, len, src);
        });
  }

  // Runs nghttp2_session_send into the batch; the caller writes bytes() and clear()s. Returns
  // nghttp2's error (0 on success). Re-entrant calls (from a callback) do nothing.
  int fill(nghttp2_session* session);
  bool filling() const { return filling_; }  // a flush called from a callback returns at once
  const std::string& bytes() const { return buf_; }
  bool empty() const { return buf_.empty(); }
  void clear() { buf_.clear(); }

 private:
  ssize_t frame(const uint8_t* data, size_t len);
  int data(nghttp2_frame* frame, const uint8_t* framehd, size_t len, nghttp2_data_source* src);

  std::string buf_;
  bool filling_ = false;
};

}  // namespace sy::http2
