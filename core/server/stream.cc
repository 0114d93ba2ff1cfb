// Proxying one request: the request as the client sent it (checks, normalisation, routing),
// the response relayed back, local replies, back-pressure and the end of the stream. The
// upstream request lives in stream_upstream.cc, the attribute table in stream_attributes.cc
// and the access-log writer in core/log/access_log.cc; stream_record.cc hands them the facts.
//
// Why this file is a little over 600 lines: what is left is the one path of a request and its
// response through the stream, with the replies that cut it short; the jobs that could stand
// alone have left for the files above.
#include "core/server/stream.h"

#include "core/filter_chain/callout_host.h"
#include "core/filter_chain/factory.h"
#include "core/http1/writer.h"
#include "core/log/log.h"
#include "core/server/request_normalise.h"
#include "core/stats/overload.h"

namespace sy::server {

Stream::Stream(StreamOwner* conn, std::shared_ptr<const Runtime> rt, const ListenerRuntime* lr)
    : conn_(conn), rt_(std::move(rt)), lr_(lr) {
  request_body_limit_ = lr_->cfg->limits.request_body;
}

Stream::~Stream() {
  if (waiting_pool_) {
    waiting_pool_ = false;
    pool_->cancel(this);
  }
  if (upstream_) release_upstream(false);
  // While the stream is whole: its filters may call the host from on_stream_destroy.
  chain_.destroy();
}

uv_loop_t* Stream::loop() const { return conn_->worker()->loop(); }
int Stream::worker_index() const { return conn_->worker()->index(); }

const std::string& Stream::route_name() const {
  static const std::string kNone;
  return route_ >= 0 ? lr_->cfg->routes[size_t(route_)].name : kNone;
}

// ---- request path ----

void Stream::on_request_head(http1::MessageHead& head) {
  info_.method = head.method;
  info_.path = head.target;
  h2_ = head.major == 2;
  http10_ = !h2_ && head.minor == 0;
  info_.protocol = h2_ ? "HTTP/2" : http10_ ? "HTTP/1.0" : "HTTP/1.1";
  (h2_ ? lr_->stats.rq_http2 : lr_->stats.rq_http1)->inc();
  client_keep_alive_ = head.keep_alive && !http10_;
  is_head_ = info_.method == "HEAD";
  // A protocol switch happens only when the route allows it (decided below, once routed);
  // until then the parser reads on as HTTP after this request.
  bool wants_upgrade = head.upgrade;
  head.upgrade = false;
  http::HeaderMap& h = head.headers;
  const std::string* host = h.get("host");
  if (host) info_.authority = *host;
  if (const std::string* rid = h.get("x-request-id"); rid && !rid->empty())
    info_.request_id = *rid;
  else
    info_.request_id = new_request_id();

  // Absolute-form targets (a client talking to us as a forward proxy) become origin-form, and
  // their authority replaces any Host header (RFC 9112 §3.2.2).
  if (size_t scheme = absolute_form_scheme(info_.path)) {
    std::string target = std::move(info_.path);
    if (!split_absolute_form(target, scheme, &info_.authority, &info_.path)) {
      info_.path = std::move(target);
      local_reply(400, "invalid authority in request target\n", "invalid_target",
                  log::ResponseFlag::kNone);
      return;
    }
    h.set("host", info_.authority);
  } else if (host && host->empty()) {
    // Like nginx: an empty Host names no host, and routing on it would fall to a default.
    local_reply(400, "empty Host header\n", "empty_host", log::ResponseFlag::kNone);
    return;
  }
  // Past the process-wide cap on buffered bytes, new streams are refused while those in flight
  // finish: they are what holds the memory, and ending them would waste what they have done.
  if (!stats::overload().admit_stream()) {
    local_reply(503, "overloaded\n", "overload", log::ResponseFlag::kOverload);
    return;
  }
  // One client address may have only so many requests in flight (limits.streams_per_client):
  // past that it is told to slow down, and the others keep their share of the upstreams.
  if (!conn_->admit_stream()) {
    lr_->stats.rq_client_limit->inc();
    local_reply(429, "too many requests in flight from this client\n", "client_stream_limit",
                log::ResponseFlag::kRateLimited);
    return;
  }
  if (info_.method == "CONNECT") {
    local_reply(501, "CONNECT is not supported\n", "connect_not_supported",
                log::ResponseFlag::kNone);
    return;
  }
  if (h.get_all("host").size() > 1) {
    local_reply(400, "more than one Host header\n", "duplicate_host", log::ResponseFlag::kNone);
    return;
  }
  if (!http10_ && !host) {
    local_reply(400, "missing Host header\n", "missing_host", log::ResponseFlag::kNone);
    return;
  }
  if (info_.path.empty() || info_.path[0] != '/') {
    if (!(info_.method == "OPTIONS" && info_.path == "*")) {
      local_reply(400, "invalid request target\n", "invalid_target", log::ResponseFlag::kNone);
      return;
    }
  }
  if (request_body_limit_ && head.content_length && *head.content_length > request_body_limit_) {
    local_reply(413, "request body too large\n", "request_body_too_large",
                log::ResponseFlag::kNone);
    return;
  }

  req_in_chunked_ = head.chunked;
  req_in_length_ = head.content_length;
  req_end_at_head_ = !head.chunked && (!head.content_length || *head.content_length == 0);
  bool expect_continue = h.has_token("expect", "100-continue");
  // Routing sees the request as the client sent it (Host included), before the proxy's edits.
  route_ = lr_->router->match({info_.path, info_.authority, &h});
  // Upgrade headers survive hop-by-hop stripping only for a switch the route allows. Any other
  // Upgrade (h2c always) is dropped and the request served as plain HTTP/1.1, as Envoy does for
  // h2c: forwarding it would let the upstream turn the connection into a tunnel past the routes.
  std::string upgrade_value;
  if (wants_upgrade) {
    const std::string* u = h.get("upgrade");
    const config::Route* r = route_ >= 0 ? &lr_->cfg->routes[size_t(route_)] : nullptr;
    upgrade_ = u && upgrade_allowed(*lr_->cfg, r, *u);
    if (upgrade_)
      upgrade_value = *u;
    else
      lr_->stats.rq_upgrade_stripped->inc();
  }
  head.upgrade = upgrade_;
  // "te: trailers" is hop-by-hop, but gRPC servers insist on it: it survives the stripping
  // (HTTP/2 upstreams get it; HTTP/1.1 upstreams never see te).
  bool te_trailers = h.has_token("te", "trailers");
  http1::strip_hop_by_hop(h);
  if (te_trailers) h.add("te", "trailers");
  h.remove("expect");
  h.remove("host");  // it travels as the authority
  if (upgrade_) {
    h.add("connection", "upgrade");
    h.add("upgrade", upgrade_value);
  }
  // x-forwarded-for: append the client; x-forwarded-proto: what the client spoke to us.
  if (h.has("x-forwarded-for"))
    h.append_to_value("x-forwarded-for", ", " + conn_->info().peer_ip);
  else
    h.add("x-forwarded-for", conn_->info().peer_ip);
  h.set("x-forwarded-proto", lr_->cfg->tls ? "https" : "http");
  h.set("x-request-id", info_.request_id);

  chain_.start(lr_->filters, route_name(), conn_->worker()->index());
  // The client may send its body now: when the request goes upstream, or when filters, which
  // may route it elsewhere or answer it themselves, see it. A request the proxy answers itself
  // (no route, a direct response) needs no body.
  if (expect_continue && !http10_ &&
      (!chain_.empty() || (route_ >= 0 && !lr_->cfg->routes[size_t(route_)].direct)))
    conn_->send_continue();
  // The pseudo-headers come later, if a filter asks for them (pseudo_headers below).
  chain_.request_headers.append(std::move(h));
  chain_.decode_headers(req_end_at_head_);
}

void Stream::pseudo_headers(sy_direction_t dir, std::vector<http::Header>& out) const {
  // The names go in as they are (they are lower-case already).
  if (dir == SY_REQUEST) {
    out.reserve(4);
    out.push_back({":method", info_.method});
    out.push_back({":path", info_.path});
    out.push_back({":authority", info_.authority});
    out.push_back({":scheme", lr_->cfg->tls ? "https" : "http"});
  } else {
    out.push_back({":status", std::to_string(info_.status)});
  }
}

void Stream::route_request(const http::HeaderMap& h) {
  route_ = lr_->router->match({info_.path, info_.authority, &h});
  route_dirty_ = false;
}

void Stream::request_headers_out(bool end_stream, int64_t body_length) {
  if (response_ != ResponseState::kNone) return;
  const http::HeaderMap& h = chain_.request_headers;
  if (chain_.pseudo_in(SY_REQUEST)) {
    // Filters may have rewritten the pseudo-headers: they are the request from here on.
    if (const std::string* m = h.get(":method")) info_.method = *m;
    if (const std::string* p = h.get(":path")) info_.path = *p;
    if (const std::string* a = h.get(":authority")) info_.authority = *a;
    is_head_ = info_.method == "HEAD";
  }
  if (route_dirty_) route_request(h);
  if (route_ < 0) {
    // The 404 goes back through the filters' response phases, as a direct response does
    // (Envoy's filters see the router's 404 too). The request body may be unread: the
    // connection cannot be trusted again.
    resp_close_ = resp_close_ || (!req_complete_ && !req_end_at_head_);
    reply_through_filters(404, {}, "no route\n", "route_not_found", log::ResponseFlag::kNoRoute);
    return;
  }
  if (lr_->cfg->routes[size_t(route_)].direct) {
    send_direct_response();
    return;
  }
  start_upstream(h, end_stream, body_length);
}

void Stream::send_direct_response() {
  const config::Route& route = lr_->cfg->routes[size_t(route_)];
  http::HeaderMap rh;
  for (const auto& hv : route.direct->headers) rh.add(hv.name, hv.value);
  reply_through_filters(route.direct->status, std::move(rh), route.direct->body, "direct_response",
                        log::ResponseFlag::kLocalReply);
}

void Stream::reply_through_filters(int status, http::HeaderMap rh, const std::string& body,
                                   const char* details, log::ResponseFlag flag) {
  info_.status = status;
  // A flag a filter set before its reply (set_response_flag: "UAEX") is the cause reported.
  info_.flag_once(flag);
  info_.details = details;
  if (!rh.has("content-type") && !body.empty()) rh.add("content-type", "text/plain");
  resp_in_length_ = body.size();
  // The reply goes back through the response filters like any other response (its :status,
  // info_.status, is made when a filter asks for it).
  chain_.response_headers.append(std::move(rh));
  chain_.response_headers.set("content-length", std::to_string(body.size()));
  bool empty = body.empty() || is_head_;
  resp_end_at_head_ = empty;
  chain_.encode_headers(empty);
  if (!empty) chain_.encode_data(body, true);
}

void Stream::send_response(int status, const http::HeaderMap& h, std::string_view body) {
  ResponseHead head;
  head.status = status;
  head.headers = &h;
  bool bodyless = status == 204 || status == 304;
  if (!bodyless) head.content_length = body.size();
  head.end_stream = is_head_ || bodyless || body.empty();
  head.is_head = is_head_;
  head.http10 = http10_;
  head.close = resp_close_;
  response_ = ResponseState::kStarted;
  conn_->send_response_head(head);
  if (!head.end_stream) {
    info_.bytes_out += body.size();
    conn_->send_response_body(body.data(), body.size());
    conn_->send_response_end(nullptr);
  }
  response_done();
}

void Stream::on_request_body(const char* data, size_t len) {
  info_.bytes_in += len;
  if (request_body_limit_ && info_.bytes_in > request_body_limit_ &&
      response_ == ResponseState::kNone) {
    local_reply(413, "request body too large\n", "request_body_too_large",
                log::ResponseFlag::kNone);
    conn_->reset_stream();
    return;
  }
  if (response_ == ResponseState::kDone) return;  // a local reply went out: the body is discarded
  if (!chain_.body_passthrough(SY_REQUEST)) {
    chain_.decode_data(std::string(data, len), false);
    return;
  }
  std::string_view v(data, len);
  if (!cluster_) return;
  if (!upstream_) {
    body_buf_.append(v);
    if (body_buf_.size() > net::Socket::kHighWatermark) conn_->pause_reading();
    return;
  }
  write_request_body(data, len);
  if (upstream_ && upstream_->above_high()) write_watermark(SY_REQUEST, true);
  if (upstream_ && upstream_->above_high()) conn_->pause_reading();
}

void Stream::request_data_out(std::string& data, bool end_stream) {
  if (response_ == ResponseState::kDone || !cluster_) return;
  if (!data.empty()) {
    if (!upstream_) {
      body_buf_ += data;
      if (body_buf_.size() > net::Socket::kHighWatermark) conn_->pause_reading();
    } else {
      write_request_body(data.data(), data.size());
      if (upstream_->above_high()) write_watermark(SY_REQUEST, true);
      if (upstream_->above_high()) conn_->pause_reading();
    }
  }
  if (end_stream) {
    end_request_out();
    if (upstream_ && request_out_ != RequestOut::kSent) finish_request_upstream();
  }
}

void Stream::request_trailers_out() {
  req_trailers_ = chain_.request_trailers;
  end_request_out();
  if (upstream_ && request_out_ != RequestOut::kSent) finish_request_upstream();
}

void Stream::on_request_trailers(http::HeaderMap& trailers) {
  if (size_t dropped = http1::strip_forbidden_trailers(trailers))
    lr_->stats.rq_trailers_dropped->inc(dropped);
  chain_.request_trailers = std::move(trailers);
  chain_.has_request_trailers = true;
}

void Stream::on_request_complete() {
  req_complete_ = true;
  if (response_ == ResponseState::kDone) return;
  if (req_end_at_head_) return;  // the headers already carried the end of the request
  if (chain_.has_request_trailers)
    chain_.decode_trailers();
  else
    chain_.decode_data(std::string(), true);
}

// ---- response path ----

int Stream::on_response_head(http1::MessageHead& head) {
  if (response_ != ResponseState::kNone) return -1;
  // A switch nobody asked for would leave the upstream speaking another protocol.
  if (head.status == 101 && !upgrade_) return -1;
  stop_timer();
  info_.status = head.status;
  upstream_keep_alive_ = head.keep_alive;
  resp_in_length_ = head.content_length;
  http::HeaderMap& h = head.headers;
  bool switching = head.status == 101 && upgrade_;
  std::string upgrade_value;
  if (switching)
    if (const std::string* u = h.get("upgrade")) upgrade_value = *u;
  http1::strip_hop_by_hop(h);
  if (switching) {
    // A protocol switch is not a message filters can act on: it goes out as it came.
    h.add("connection", "upgrade");
    h.add("upgrade", upgrade_value);
    ResponseHead rh;
    rh.status = info_.status;
    rh.headers = &h;
    rh.upgrade = true;
    response_ = ResponseState::kTunnel;
    conn_->send_response_head(rh);
    conn_->enter_tunnel();
    if (upstream_) upstream_->enter_tunnel();
    return 0;
  }
  bool no_body = is_head_ || info_.status == 204 || info_.status == 304 ||
                 (info_.status >= 100 && info_.status < 200) ||
                 (head.content_length && *head.content_length == 0) || head.end_stream;
  chain_.response_headers.append(std::move(h));
  resp_end_at_head_ = no_body;
  chain_.encode_headers(no_body);
  return 0;
}

void Stream::response_headers_out(bool end_stream, int64_t body_length) {
  if (response_ != ResponseState::kNone) return;
  http::HeaderMap& h = chain_.response_headers;
  if (chain_.pseudo_in(SY_RESPONSE)) {
    const std::string* st = h.get(":status");
    int s = st ? http::parse_status(*st) : 0;
    if (s == 0) {
      local_reply(502, st ? "filter set an invalid :status\n" : "filter removed :status\n",
                  st ? "invalid_status" : "missing_status", log::ResponseFlag::kNone);
      return;
    }
    info_.status = s;
  }
  bool no_body_status = is_head_ || info_.status == 204 || info_.status == 304;
  resp_close_ = resp_close_ || !client_keep_alive_ || conn_->worker()->draining();
  ResponseHead head;
  head.status = info_.status;
  head.headers = &h;
  head.end_stream = end_stream || no_body_status;
  head.is_head = is_head_;
  head.http10 = http10_;
  head.close = resp_close_;
  if (!no_body_status) {
    if (end_stream)
      head.content_length = 0;
    else if (body_length >= 0)
      head.content_length = uint64_t(body_length);
    else if (body_length == ChainSink::kKeepLength && resp_in_length_)
      head.content_length = *resp_in_length_;
  } else if (is_head_ && resp_in_length_) {
    head.content_length = *resp_in_length_;  // HEAD: the length a GET would have had
  }
  response_ = ResponseState::kStarted;
  conn_->send_response_head(head);
  if (head.end_stream) {
    response_done();
    return;
  }
  if (end_stream) write_response_end(nullptr);
}

void Stream::on_response_body(const char* data, size_t len) {
  if (!chain_.body_passthrough(SY_RESPONSE)) {
    chain_.encode_data(std::string(data, len), false);
    return;
  }
  write_response_body(data, len);
}

void Stream::response_data_out(std::string& data, bool end_stream) {
  if (!data.empty()) write_response_body(data.data(), data.size());
  if (end_stream) write_response_end(nullptr);
}

void Stream::response_trailers_out() { write_response_end(&chain_.response_trailers); }

void Stream::write_response_body(const char* data, size_t len) {
  if (response_ == ResponseState::kDone || len == 0) return;
  info_.bytes_out += len;
  conn_->send_response_body(data, len);
  if (conn_->above_high()) write_watermark(SY_RESPONSE, true);
  if (conn_->above_high() && upstream_) upstream_->pause_reading();
}

void Stream::write_response_end(const http::HeaderMap* trailers) {
  if (response_ == ResponseState::kDone) return;
  conn_->send_response_end(trailers);
  response_done();
}

void Stream::on_response_trailers(http::HeaderMap& trailers) {
  chain_.response_trailers = std::move(trailers);
  chain_.has_response_trailers = true;
}

void Stream::on_response_complete() {
  if (response_ == ResponseState::kTunnel)
    return;  // the 101 ends the HTTP exchange, not the stream
  // Reusable only when the upstream keeps alive and got our whole request.
  release_upstream(upstream_keep_alive_ && request_out_ == RequestOut::kSent && req_complete_);
  if (resp_end_at_head_) return;  // the headers already carried the end of the response
  if (chain_.has_response_trailers)
    chain_.encode_trailers();
  else
    chain_.encode_data(std::string(), true);
}

void Stream::pause_source(sy_direction_t dir) {
  chain_paused_[dir] = true;
  if (dir == SY_REQUEST)
    conn_->pause_reading();
  else if (upstream_)
    upstream_->pause_reading();
}

void Stream::resume_source(sy_direction_t dir) {
  chain_paused_[dir] = false;
  if (dir == SY_REQUEST)
    resume_client_if_free();
  else
    resume_upstream_if_free();
}

void Stream::resume_client_if_free() {
  if (chain_paused_[SY_REQUEST] || (upstream_ && upstream_->above_high()) ||
      body_buf_.size() > net::Socket::kHighWatermark)
    return;
  conn_->resume_reading();
}

void Stream::resume_upstream_if_free() {
  if (!upstream_ || chain_paused_[SY_RESPONSE] || conn_->above_high()) return;
  upstream_->resume_reading();
}

void Stream::on_upstream_drained() {
  write_watermark(SY_REQUEST, false);
  if (response_ != ResponseState::kDone) resume_client_if_free();
}

void Stream::on_downstream_drained() {
  write_watermark(SY_RESPONSE, false);
  resume_upstream_if_free();
}

void Stream::on_downstream_reset() {
  if (response_ != ResponseState::kDone) info_.flag_once(log::ResponseFlag::kDownstreamReset);
  chain_.halt();
  drop_upstream();
}

void Stream::on_read_begin() {
  if (corked_) return;
  corked_ = true;
  conn_->cork();
}

void Stream::on_read_end() {
  if (!corked_) return;
  corked_ = false;
  conn_->uncork();
}

void Stream::on_tunnel_data(const char* data, size_t len) {
  info_.bytes_out += len;
  conn_->tunnel_write(data, len);
}

void Stream::on_tunnel_eof() {
  release_upstream(false);
  conn_->end_tunnel();
}

void Stream::on_tunnel_downstream(const char* data, size_t len) {
  info_.bytes_in += len;
  if (upstream_) upstream_->tunnel_write(data, len);
}

void Stream::on_tunnel_downstream_eof() {
  release_upstream(false);
  conn_->end_tunnel();
}

bool Stream::local_reply_from_filter(int status, const http::HeaderMap& headers,
                                     std::string_view body, std::string details) {
  if (response_ != ResponseState::kNone || filter_reply_pending_) return false;
  if (details.empty()) details = "filter_local_reply";
  if (chain_.response_entered()) {
    // From a response phase: the filters have had their say on a response already.
    local_reply(status, body, std::move(details), log::ResponseFlag::kLocalReply, &headers);
    return true;
  }
  // From a request phase: the reply goes back through the response filters (Envoy's filters
  // see local replies too), once the filter that made it has returned.
  filter_reply_pending_ = true;
  chain_.halt_request();
  http::HeaderMap h;
  for (const auto& x : headers)
    if (x.name[0] != ':' && x.name != "content-length") h.add(x.name, x.value);
  chain_.when_idle([this, status, h = std::move(h), body = std::string(body),
                    details = std::move(details)]() mutable {
    if (response_ != ResponseState::kNone) return;
    drop_upstream();
    // The request body may be unread: the connection cannot be trusted again.
    resp_close_ = resp_close_ || (!req_complete_ && !req_end_at_head_);
    reply_through_filters(status, std::move(h), body, details.c_str(),
                          log::ResponseFlag::kLocalReply);
  });
  return true;
}

bool Stream::set_response_flag(log::ResponseFlag flag) {
  if (finalized_) return false;
  info_.flag_once(flag);
  return true;
}

bool Stream::reset_from_filter(std::string details) {
  if (finalized_) return false;
  info_.details = details.empty() ? "filter_reset" : std::move(details);
  info_.flag = log::ResponseFlag::kFilterReset;
  chain_.halt();
  // A local reply asked for after this (or pending from the same callback) would replace the
  // reset below; the reset wins.
  filter_reply_pending_ = true;
  // As with a local reply, nothing happens to the stream before the calling filter returns.
  chain_.when_idle([this] {
    if (finalized_) return;
    drop_upstream();
    conn_->reset_stream();
  });
  return true;
}

void Stream::local_reply(int status, std::string_view body, std::string details,
                         log::ResponseFlag flag, const http::HeaderMap* extra) {
  if (response_ != ResponseState::kNone) {
    conn_->reset_stream();
    return;
  }
  chain_.halt();
  drop_upstream();
  info_.status = status;
  info_.details = std::move(details);
  info_.flag_once(flag);
  http::HeaderMap h;
  if (extra)
    for (const auto& x : *extra)
      if (x.name[0] != ':' && x.name != "content-length") h.add(x.name, x.value);
  if (!h.has("content-type") && !body.empty()) h.add("content-type", "text/plain");
  // After an error the request body may be unread, so the connection cannot be trusted again.
  resp_close_ = resp_close_ || !client_keep_alive_ || status == 400 || status == 408 ||
                status == 413 || status == 414 || status == 431 || status == 501 || status == 505 ||
                (!req_complete_ && !req_end_at_head_);
  send_response(status, h, body);
}

void Stream::response_done() {
  if (response_ == ResponseState::kDone) return;
  response_ = ResponseState::kDone;
  stop_timer();
  conn_->on_response_done();
}

void Stream::count_response(int status) {
  // A stream that ended before any response (the client left) has no status class.
  bool has_class = status >= 100 && status < 600;
  size_t cls = has_class ? size_t(status / 100) : 0;
  lr_->stats.rq_total->inc();
  if (has_class) lr_->stats.rq_class[cls]->inc();
  if (route_ >= 0) {
    const RouteStats& rs = lr_->route_stats[size_t(route_)];
    rs.rq_total->inc();
    if (has_class) rs.rq_class[cls]->inc();
  }
  if (has_class && cluster_ && !info_.upstream_host.empty()) cluster_->stats.rq_class[cls]->inc();
}

void Stream::finalize() {
  if (finalized_) return;
  finalized_ = true;
  chain_.end();
  stop_timer();
  if (response_ != ResponseState::kDone) info_.flag_once(log::ResponseFlag::kDownstreamReset);
  count_response(info_.status);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - info_.start)
          .count();
  lr_->stats.rq_time->record(ms);
  if (cluster_ && !info_.upstream_host.empty()) cluster_->stats.rq_time->record(ms);
  if (rt_->access_log) conn_->worker()->access_log(build_log_line());
}

}  // namespace sy::server
