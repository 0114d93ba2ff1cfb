// The upstream side of a Stream: acquiring an exchange from the cluster's pool, sending the
// request head and its end, the response timeout, and what a connect failure or a reset does
// (one retry of a reused connection the upstream closed).
#include "core/server/stream.h"

namespace sy::server {

void Stream::start_upstream(const http::HeaderMap& h, bool end_stream, int64_t body_length) {
  cluster_ = lr_->route_cluster[size_t(route_)];
  // Framing upstream: what the client sent, unless a filter may have changed the body.
  if (body_length >= 0) {
    up_length_ = uint64_t(body_length);
  } else if (body_length == ChainSink::kUnknownLength && !end_stream) {
    up_chunked_ = true;
  } else if (req_in_chunked_ && !end_stream) {
    up_chunked_ = true;
  } else if (req_in_length_) {
    up_length_ = *req_in_length_;
  } else if (h2_ && !end_stream) {
    up_chunked_ = true;  // an HTTP/2 body without content-length
  }
  (void)h;
  if (end_stream) end_request_out();

  cluster_->stats.rq_total->inc();
  pool_ = conn_->worker()->pool(cluster_);
  int preferred = -1;
  if (!override_host_.empty()) {
    for (size_t i = 0; i < cluster_->addr_strs.size(); ++i)
      if (cluster_->addr_strs[i] == override_host_) preferred = int(i);
  }
  waiting_pool_ = true;
  pool_->acquire(this, preferred);
}

bool Stream::set_upstream_override(std::string_view host) {
  override_host_.assign(host);
  return true;
}

void Stream::on_upstream_ready(upstream::Exchange* ex) {
  waiting_pool_ = false;
  upstream_ = ex;
  info_.upstream_host = ex->endpoint_str();
  send_upstream_head();
}

void Stream::send_upstream_head() {
  upstream::RequestHead head;
  head.method = info_.method;
  head.path = info_.path;
  // An HTTP/1.0 client may send no Host: the upstream still needs one.
  head.authority = info_.authority.empty() ? std::string_view(cluster_->cfg.name) : info_.authority;
  head.scheme = cluster_->tls ? "https" : "http";
  head.headers = &chain_.request_headers;
  head.content_length = up_chunked_ ? std::nullopt : up_length_;
  head.end_stream = request_out_ != RequestOut::kOpen && body_buf_.empty() &&
                    req_trailers_.empty() && !up_length_.value_or(0) && !up_chunked_;
  head.is_head = is_head_;
  upstream_->send_head(head);
  if (!body_buf_.empty()) {
    std::string b;
    b.swap(body_buf_);
    write_request_body(b.data(), b.size());
    resume_client_if_free();
  }
  if (request_out_ != RequestOut::kOpen) finish_request_upstream();
}

void Stream::write_request_body(const char* data, size_t len) { upstream_->send_body(data, len); }

void Stream::finish_request_upstream() {
  upstream_->send_end(req_trailers_.empty() ? nullptr : &req_trailers_);
  request_out_ = RequestOut::kSent;
  if (response_ != ResponseState::kNone || upgrade_) return;
  auto timeout = lr_->cfg->routes[size_t(route_)].timeout.value_or(cluster_->cfg.timeout);
  timer_armed_ = true;
  conn_->start_stream_timer(uint64_t(timeout.count()), [this] {
    timer_armed_ = false;
    on_response_timeout();
  });
}

void Stream::on_response_timeout() {
  cluster_->stats.rq_timeout->inc();
  release_upstream(false);
  local_reply(504, "upstream request timeout\n", "upstream_response_timeout",
              log::ResponseFlag::kUpstreamTimeout);
}

void Stream::on_upstream_failure(Failure f, const std::string& details) {
  waiting_pool_ = false;
  if (f == Failure::kOverflow || f == Failure::kPendingTimeout) {
    // Both are the pool's circuit breaking: no connection could be had in time.
    local_reply(503, "upstream overflow\n", details, log::ResponseFlag::kUpstreamOverflow);
  } else {
    local_reply(502, "upstream connect error\n", details,
                log::ResponseFlag::kUpstreamConnectFailure);
  }
}

void Stream::on_upstream_reset(const std::string& details) {
  cluster_->stats.rq_reset->inc();
  bool reused = upstream_ && upstream_->reused();
  upstream_ = nullptr;  // the pool closed it
  stop_timer();
  if (response_ == ResponseState::kNone && !info_.status) {
    // A pooled connection the upstream closed as we reused it: safe to retry once when no
    // request body has been sent.
    if (reused && !retried_ && info_.bytes_in == 0 && !up_chunked_) {
      retried_ = true;
      request_out_ = RequestOut::kEnded;
      cluster_->stats.rq_retry->inc();
      waiting_pool_ = true;
      pool_->acquire(this, -1);
      return;
    }
    local_reply(502, "upstream connection reset\n", details, log::ResponseFlag::kUpstreamReset);
    return;
  }
  info_.details = details;
  info_.flag = log::ResponseFlag::kUpstreamReset;
  conn_->reset_stream();
}

void Stream::release_upstream(bool reusable) {
  if (!upstream_) return;
  upstream::Exchange* c = upstream_;
  upstream_ = nullptr;
  pool_->release(c, reusable);
}

void Stream::drop_upstream() {
  if (waiting_pool_) {
    waiting_pool_ = false;
    pool_->cancel(this);
  }
  stop_timer();
  release_upstream(false);
}

void Stream::stop_timer() {
  if (!timer_armed_) return;
  timer_armed_ = false;
  conn_->stop_stream_timer();
}

}  // namespace sy::server
