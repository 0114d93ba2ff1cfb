// Module streaming callouts over the worker's upstream pools.
#include "core/server/stream_callout.h"

#include <charconv>
#include <unordered_set>

#include "core/server/worker.h"

namespace sy::server {
namespace {

// Request bytes held before a connection is ready count against the same watermarks as those
// an exchange holds.
constexpr size_t kHigh = net::Socket::kHighWatermark;

// The open callouts of this worker thread, for the worker's stop.
thread_local std::unordered_set<StreamCallout*> t_open;

}  // namespace

StreamCallout* StreamCallout::start(Worker* w, const std::string& cluster, http::HeaderMap headers,
                                    uint64_t timeout_ms, filters::CalloutEvents* events) {
  if (!w->runtime()) return nullptr;
  auto it = w->runtime()->clusters.find(cluster);
  if (it == w->runtime()->clusters.end()) return nullptr;
  auto* c = new StreamCallout(w, w->pool(it->second), cluster, it->second->tls != nullptr,
                              std::move(headers), events);
  t_open.insert(c);
  if (timeout_ms)
    c->timer(c->timeout_).start(timeout_ms, [c] {
      c->fail(SY_CALLOUT_TIMEOUT, "callout stream deadline passed");
    });
  c->starting_ = true;
  c->acquiring_ = true;
  c->pool_->acquire(c);
  c->starting_ = false;
  return c;
}

void StreamCallout::shutdown_all() {
  std::vector<StreamCallout*> open(t_open.begin(), t_open.end());
  for (StreamCallout* c : open)
    if (t_open.count(c)) c->fail(SY_CALLOUT_SHUTDOWN, "worker stopping");
}

StreamCallout::StreamCallout(Worker* w, upstream::Pool* pool, const std::string& cluster, bool tls,
                             http::HeaderMap headers, filters::CalloutEvents* events)
    : worker_(w), pool_(pool), events_(events), tls_(tls), hold_(w->loop()) {
  // One pass picks out what the codec frames itself (the host table checked that :method and
  // :path are there and that a content-length is a number).
  const std::string *method = nullptr, *path = nullptr, *authority = nullptr, *length = nullptr;
  for (const http::Header& h : headers) {
    const std::string** first = h.name == ":method"          ? &method
                                : h.name == ":path"          ? &path
                                : h.name == ":authority"     ? &authority
                                : h.name == "content-length" ? &length
                                                             : nullptr;
    if (first && !*first) *first = &h.value;
  }
  method_ = *method;
  path_ = *path;
  authority_ = authority ? *authority : cluster;
  // The module's content-length is kept.
  if (length) {
    uint64_t n = 0;
    std::from_chars(length->data(), length->data() + length->size(), n);
    length_ = n;
  }
  // Framing is the codec's business; everything else (te: trailers for gRPC) goes as given,
  // moved rather than copied (the names are lower case already: the host table made the map).
  headers.erase_if([](const http::Header& h) {
    return h.name[0] == ':' || h.name == "host" || h.name == "content-length" ||
           h.name == "transfer-encoding" || h.name == "connection";
  });
  headers_ = std::move(headers);
}

StreamCallout::~StreamCallout() = default;

net::Timer& StreamCallout::timer(std::optional<net::Timer>& t) {
  if (!t) t.emplace(worker_->loop());
  return *t;
}

bool StreamCallout::above_high() const { return ex_ ? ex_->above_high() : queued_.size() > kHigh; }

bool StreamCallout::send_data(std::string_view data, bool end_stream) {
  if (closed_ || broken_) return false;
  if (length_) {
    sent_ += data.size();
    if (sent_ > *length_ || (end_stream && sent_ != *length_))
      return refuse("request body " + std::string(sent_ > *length_ ? "longer" : "shorter") +
                    " than its content-length " + std::to_string(*length_));
  }
  if (ex_ && !head_held_) {
    upstream::Exchange* ex = ex_;
    ex->cork();
    if (!data.empty()) ex->send_body(data.data(), data.size());
    if (end_stream && ex_) {
      request_sent_ = true;
      ex->send_end(nullptr);
    }
    if (ex_) ex->uncork();
  } else {
    queued_.append(data);
    end_queued_ = end_stream;
    if (head_held_) send_held();
  }
  if (closed_) return false;  // the exchange failed while writing
  bool above = above_high();
  want_writable_ = want_writable_ || above;
  return above;
}

bool StreamCallout::send_trailers(const http::HeaderMap& trailers) {
  if (closed_ || broken_) return false;
  if (length_ && sent_ != *length_)
    return refuse("request body shorter than its content-length " + std::to_string(*length_));
  if (ex_ && !head_held_) {
    request_sent_ = true;
    ex_->send_end(&trailers);
  } else {
    trailers_ = trailers;
    end_queued_ = true;
    if (head_held_) send_held();
  }
  if (closed_) return false;
  bool above = above_high();
  want_writable_ = want_writable_ || above;
  return above;
}

void StreamCallout::pause_reading(bool paused) {
  if (closed_ || paused == paused_) return;
  paused_ = paused;
  if (!ex_) return;
  if (paused)
    ex_->pause_reading();
  else
    ex_->resume_reading();
}

void StreamCallout::reset() { close(false); }

void StreamCallout::close(bool reusable) {
  if (closed_) return;
  closed_ = true;
  events_ = nullptr;
  if (timeout_) timeout_->stop();
  if (defer_) defer_->stop();
  hold_.stop();
  t_open.erase(this);
  if (ex_) {
    upstream::Exchange* e = ex_;
    ex_ = nullptr;
    // Unfinished either way: HTTP/2 cancels the stream, HTTP/1.1 closes the connection.
    pool_->release(e, reusable);
  } else if (acquiring_) {
    acquiring_ = false;
    pool_->cancel(this);
  }
  // We may be on the stack of the pool or of a module callback: free on the next loop turn.
  worker_->defer_delete([this] { delete this; });
}

void StreamCallout::fail(sy_callout_failure_t reason, const std::string& details) {
  if (closed_) return;
  if (starting_) {
    // The module has not even got its handle yet: tell it on the next loop turn.
    timer(defer_).start(0, [this, reason, details] { fail(reason, details); });
    return;
  }
  filters::CalloutEvents* ev = events_;
  close(false);
  ev->on_failure(reason, details);
}

bool StreamCallout::refuse(const std::string& details) {
  // Nothing more goes on the wire, where a wrong length would corrupt the connection; the
  // module hears of it on the next loop turn, not inside its own send call.
  broken_ = true;
  timer(defer_).start(0, [this, details] { fail(SY_CALLOUT_RESET, details); });
  return false;
}

void StreamCallout::maybe_writable() {
  if (!want_writable_ || closed_ || above_high()) return;
  want_writable_ = false;
  events_->on_writable();
}

void StreamCallout::on_upstream_ready(upstream::Exchange* ex) {
  acquiring_ = false;
  if (closed_) {
    pool_->release(ex, false);
    return;
  }
  ex_ = ex;
  if (starting_) {
    // A pooled connection was ready at once, inside start(): the module has sent nothing yet,
    // and most modules send their first message (ext_authz: the whole Check) as soon as start
    // returns. The head waits for it, to leave with it in one write; a module that sends
    // nothing in the same callback has its head sent on the next loop turn.
    head_held_ = true;
    hold_.start(0, [this] { send_request(); });
    return;
  }
  send_request();
}

void StreamCallout::send_held() {
  // Inside the module's send call: a failure opening the stream reaches the module on the next
  // loop turn, as it would have from start(), not inside its own call.
  starting_ = true;
  send_request();
  starting_ = false;
}

void StreamCallout::send_request() {
  head_held_ = false;
  hold_.stop();
  if (!ex_) return;  // the exchange failed meanwhile; its report is on its way
  upstream::RequestHead head;
  head.method = method_;
  head.path = path_;
  head.authority = authority_;
  head.scheme = tls_ ? "https" : "http";
  head.headers = &headers_;
  // A request the module already ended goes with its length (no chunking for HTTP/1.1); one
  // still open streams, framed by the module's content-length when it gave one.
  bool whole = end_queued_ && !trailers_;
  if (whole && (!queued_.empty() || method_ == "POST" || method_ == "PUT" || method_ == "PATCH"))
    head.content_length = queued_.size();
  else if (length_)
    head.content_length = length_;
  head.end_stream = whole && queued_.empty();
  head.is_head = method_ == "HEAD";
  if (paused_) ex_->pause_reading();
  // Head, body and end leave in one write where the transport can.
  upstream::Exchange* ex = ex_;
  ex->cork();
  ex->send_head(head);
  std::string body;
  body.swap(queued_);
  // EX_ is cleared when the exchange fails (even while the failure's report is deferred).
  if (ex_ && !body.empty()) ex->send_body(body.data(), body.size());
  if (ex_ && end_queued_) {
    request_sent_ = true;
    if (!head.end_stream) ex->send_end(trailers_ ? &*trailers_ : nullptr);
    trailers_.reset();
  }
  if (ex_) ex->uncork();
  if (closed_) return;
  maybe_writable();
}

void StreamCallout::on_upstream_failure(Failure f, const std::string& details) {
  acquiring_ = false;
  fail(f == Failure::kOverflow ? SY_CALLOUT_OVERFLOW : SY_CALLOUT_CONNECT, details);
}

int StreamCallout::on_response_head(http1::MessageHead& head) {
  if (closed_) return -1;
  if (head.status >= 100 && head.status < 200) return 0;  // interim: the real head follows
  keep_alive_ = head.keep_alive;
  http::HeaderMap h;
  h.add(":status", std::to_string(head.status));
  h.append(std::move(head.headers));
  response_end_seen_ = head.end_stream;
  events_->on_headers(h, head.end_stream);
  return 0;
}

void StreamCallout::on_response_body(const char* data, size_t len) {
  if (closed_ || len == 0) return;
  events_->on_data(std::string_view(data, len), false);
}

void StreamCallout::on_response_trailers(http::HeaderMap& trailers) {
  if (closed_) return;
  response_end_seen_ = true;
  events_->on_trailers(trailers);
}

void StreamCallout::on_response_complete() {
  if (closed_) return;
  if (!response_end_seen_) {
    // HTTP/1.1 learns of the end after the last bytes: mark it with an empty final DATA.
    response_end_seen_ = true;
    events_->on_data(std::string_view(), true);
    if (closed_) return;
  }
  filters::CalloutEvents* ev = events_;
  // The connection goes back to the pool only if the request was sent whole; an HTTP/2 stream
  // whose request side is still open is cancelled.
  close(keep_alive_ && request_sent_);
  ev->on_complete();
}

void StreamCallout::on_upstream_reset(const std::string& details) {
  ex_ = nullptr;  // the pool has closed it
  fail(SY_CALLOUT_RESET, details);
}

void StreamCallout::on_upstream_drained() { maybe_writable(); }

}  // namespace sy::server
