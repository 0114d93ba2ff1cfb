// Module HTTP callouts.
#include "core/server/callout.h"

namespace sy::server {
namespace {
constexpr size_t kMaxCalloutBody = 16 << 20;  // a reply is buffered whole for the module
}

Callout::Callout(uv_loop_t* loop, upstream::Pool* pool, const std::string& cluster_name, bool tls,
                 http::HeaderMap headers, std::string body, uint64_t timeout_ms, Done done,
                 std::function<void(Callout*)> on_finished)
    : pool_(pool),
      body_(std::move(body)),
      timeout_ms_(timeout_ms),
      timer_(loop),
      done_(std::move(done)),
      on_finished_(std::move(on_finished)),
      tls_(tls) {
  method_ = headers.get(":method") ? *headers.get(":method") : "GET";
  path_ = headers.get(":path") ? *headers.get(":path") : "/";
  authority_ = headers.get(":authority") ? *headers.get(":authority") : cluster_name;
  for (const auto& h : headers)
    if (h.name[0] != ':' && h.name != "host" && h.name != "content-length" &&
        h.name != "transfer-encoding" && h.name != "connection")
      headers_.add(h.name, h.value);
}

Callout::~Callout() {
  if (conn_)
    pool_->release(conn_, false);
  else if (acquiring_)
    pool_->cancel(this);
}

void Callout::start() {
  if (timeout_ms_) timer_.start(timeout_ms_, [this] { finish("timeout"); });
  acquiring_ = true;
  pool_->acquire(this);
}

void Callout::cancel() { finish("cancelled"); }

void Callout::on_upstream_ready(upstream::Exchange* ex) {
  acquiring_ = false;
  conn_ = ex;
  upstream::RequestHead head;
  head.method = method_;
  head.path = path_;
  head.authority = authority_;
  head.scheme = tls_ ? "https" : "http";
  head.headers = &headers_;
  if (!body_.empty() || method_ == "POST" || method_ == "PUT" || method_ == "PATCH")
    head.content_length = body_.size();
  head.end_stream = body_.empty();
  head.is_head = method_ == "HEAD";
  conn_->send_head(head);
  if (!body_.empty()) {
    conn_->send_body(body_.data(), body_.size());
    conn_->send_end(nullptr);
  }
}

void Callout::on_upstream_failure(Failure f, const std::string& details) {
  acquiring_ = false;
  finish(f == Failure::kOverflow ? "overflow" : "connect: " + details);
}

int Callout::on_response_head(http1::MessageHead& head) {
  result_.status = uint32_t(head.status);
  keep_alive_ = head.keep_alive;
  result_.headers.add(":status", std::to_string(head.status));
  result_.headers.append(std::move(head.headers));
  return 0;
}

void Callout::on_response_body(const char* data, size_t len) {
  if (result_.body.size() + len > kMaxCalloutBody) {
    finish("response body too large");
    return;
  }
  result_.body.append(data, len);
}

void Callout::on_response_trailers(http::HeaderMap& trailers) {
  result_.trailers = std::move(trailers);
}

void Callout::on_response_complete() {
  if (conn_) {
    upstream::Exchange* c = conn_;
    conn_ = nullptr;
    pool_->release(c, keep_alive_);
  }
  finish("");
}

void Callout::on_upstream_reset(const std::string& details) {
  conn_ = nullptr;  // the pool closed it
  finish("reset: " + details);
}

void Callout::finish(const std::string& failure) {
  if (finished_) return;
  finished_ = true;
  timer_.stop();
  if (!failure.empty()) {
    result_.status = 0;
    result_.failure = failure;
    if (conn_) {
      upstream::Exchange* c = conn_;
      conn_ = nullptr;
      pool_->release(c, false);
    } else if (acquiring_) {
      acquiring_ = false;
      pool_->cancel(this);
    }
  }
  Done done = std::move(done_);
  done(result_);
  on_finished_(this);
}

}  // namespace sy::server
