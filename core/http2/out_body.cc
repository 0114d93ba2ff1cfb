// HTTP/2 outgoing bodies and write batches (see out_body.h).
#include "core/http2/out_body.h"

#include "core/http2/frames.h"
#include "core/stats/overload.h"

namespace sy::http2 {

OutBody::~OutBody() { stats::overload().buffered(-int64_t(pending())); }

bool OutBody::append(const char* data, size_t len) {
  buf_.append(data, len);
  stats::overload().buffered(int64_t(len));
  if (pending() > kHigh) was_above_ = true;
  bool resume = deferred_;
  deferred_ = false;
  return resume;
}

bool OutBody::end(const http::HeaderMap* trailers) {
  end_ = true;
  if (trailers)
    for (const auto& x : *trailers)
      if (x.name[0] != ':' && !connection_specific(x.name)) trailers_.add(x.name, x.value);
  bool resume = deferred_;
  deferred_ = false;
  return resume;
}

nghttp2_data_provider OutBody::provider() {
  nghttp2_data_provider dp;
  dp.source.ptr = this;
  dp.read_callback = read;
  return dp;
}

ssize_t OutBody::read(nghttp2_session* session, int32_t id, uint8_t*, size_t len, uint32_t* flags,
                      nghttp2_data_source* src, void*) {
  auto* b = static_cast<OutBody*>(src->ptr);
  size_t avail = b->pending();
  if (avail == 0 && !b->end_) {
    b->deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  // The bytes stay queued until SendBatch::data takes them, in the same send.
  size_t n = std::min(len, avail);
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (b->end_ && n == avail) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!b->trailers_.empty()) {
      // Trailers end the stream instead of the last DATA frame (gRPC status lives there).
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      NvList nv;
      nv.reserve(b->trailers_.size());
      nv.add_regular(b->trailers_);
      nghttp2_submit_trailer(session, id, nv.data(), nv.size());
    }
  }
  return ssize_t(n);
}

void OutBody::take(std::string& out, size_t len) {
  out.append(buf_, off_, len);
  off_ += len;
  stats::overload().buffered(-int64_t(len));
  if (off_ == buf_.size()) {
    buf_.clear();
    off_ = 0;
  } else if (off_ > kHigh) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  if (was_above_ && pending() < kLow) {
    was_above_ = false;
    on_drained_(owner_);
  }
}

int SendBatch::fill(nghttp2_session* session) {
  if (filling_) return 0;
  filling_ = true;
  int rv = nghttp2_session_send(session);
  filling_ = false;
  return rv;
}

ssize_t SendBatch::frame(const uint8_t* data, size_t len) {
  if (buf_.size() >= kMax) return NGHTTP2_ERR_WOULDBLOCK;
  buf_.append(reinterpret_cast<const char*>(data), len);
  return ssize_t(len);
}

int SendBatch::data(nghttp2_frame* frame, const uint8_t* framehd, size_t len,
                    nghttp2_data_source* src) {
  // A DATA frame is taken whole even past kMax: its header is already built.
  buf_.append(reinterpret_cast<const char*>(framehd), 9);
  size_t pad = frame->data.padlen;
  if (pad > 0) buf_.push_back(char(pad - 1));
  static_cast<OutBody*>(src->ptr)->take(buf_, len);
  if (pad > 1) buf_.append(pad - 1, '\0');
  return 0;
}

}  // namespace sy::http2
