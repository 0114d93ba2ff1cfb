#include "filter.h"

#include <algorithm>
#include <exception>
#include <random>

#include "check_request.h"
#include "host.h"
#include "mutate.h"

namespace ext_authz {

namespace {

constexpr std::string_view kGrpcPath = "/envoy.service.auth.v3.Authorization/Check";
constexpr std::string_view kMetadataNamespace = "envoy.filters.http.ext_authz";
// An HTTP authorization server's answer bigger than this takes the error path (Envoy: the
// async client's buffer limit).
constexpr size_t kMaxHttpBody = 1024 * 1024;

const sy_stream_callout_callbacks_t* callbacks();

bool is_upgrade(sy_stream_t* s) {
  sy_str_t v{};
  if (g_host->header_get(s, SY_REQUEST_HEADERS, str("upgrade"), 0, &v) == SY_OK) return true;
  // HTTP/2 extended CONNECT (RFC 8441) and plain CONNECT carry a tunnel, not a body.
  return g_host->header_get(s, SY_REQUEST_HEADERS, str(":method"), 0, &v) == SY_OK &&
         view(v) == "CONNECT";
}

// Whether this stream falls in SHARE (filter_enabled), drawn as Envoy's runtime does: a
// uniform number below the denominator, compared with the numerator. Each worker thread has its
// own generator, so no lock is taken.
bool sampled(const Fraction& share) {
  if (share.numerator >= share.denominator) return true;
  if (share.numerator == 0) return false;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng() % share.denominator < share.numerator;
}

// Marks a refused request with Envoy's UAEX response flag (denied, error without
// failure_mode_allow, deny_at_disable), before its reply so that the reply's own "LR" does
// not take its place. A host before the flag has no such slot: the details still tell.
void mark_unauthorized(sy_stream_t* s) {
  if (SY_HAS_SLOT(g_host, sy_host_t, set_response_flag)) g_host->set_response_flag(s, str("UAEX"));
}

}  // namespace

void Filter::count(uint32_t metric) { g_host->metric_add(g_module, metric, 1); }

sy_filter_status_t Filter::on_request_headers(sy_stream_t* s, bool end_stream) {
  if (route_ && route_->disabled) {
    count(cfg_->metrics.disabled);
    state_ = State::kDone;
    g_host->skip_body(s, SY_REQUEST);
    g_host->skip_body(s, SY_RESPONSE);
    return SY_CONTINUE;
  }
  // The response body is never looked at.
  g_host->skip_body(s, SY_RESPONSE);
  if (!sampled(cfg_->filter_enabled)) {
    // Not in filter_enabled's share: let through unchecked, or with deny_at_disable refused
    // with status_on_error, as Envoy does (its details too).
    count(cfg_->metrics.disabled);
    state_ = State::kDone;
    g_host->skip_body(s, SY_REQUEST);
    if (!cfg_->deny_at_disable) return SY_CONTINUE;
    mark_unauthorized(s);
    g_host->send_local_reply(s, cfg_->status_on_error, nullptr, 0, str(""), str("ext_authz_error"));
    return SY_STOP;
  }
  bool buffer = cfg_->with_request_body.enabled && !end_stream && !is_upgrade(s) &&
                !(route_ && route_->disable_request_body_buffering);
  if (buffer) {
    state_ = State::kBuffering;
    return SY_STOP_AND_BUFFER;
  }
  g_host->skip_body(s, SY_REQUEST);
  header_only_ = end_stream;
  return start_check(s, SY_STOP, false);
}

sy_filter_status_t Filter::on_request_body(sy_stream_t* s, bool end_stream) {
  switch (state_) {
    case State::kBuffering: {
      sy_str_t body{};
      g_host->body_get(s, SY_REQUEST, SY_BODY_BUFFERED, &body);
      if (body.len >= cfg_->with_request_body.max_request_bytes && !end_stream) {
        if (!cfg_->with_request_body.allow_partial_message) {
          // Too large to check, and the server may not see part of it: Envoy's 413, which
          // failure_mode_allow does not soften.
          state_ = State::kDone;
          g_host->send_local_reply(s, 413, nullptr, 0, str("Payload Too Large"),
                                   str("ext_authz_request_too_large"));
          return SY_STOP;
        }
        return start_check(s, SY_STOP_AND_BUFFER, true);
      }
      if (end_stream) return start_check(s, SY_STOP_AND_BUFFER, false);
      return SY_STOP_AND_BUFFER;
    }
    // A partial body went to the server; the rest waits with it for the answer.
    case State::kChecking:
      return SY_STOP_AND_BUFFER;
    default:
      return SY_CONTINUE;
  }
}

sy_filter_status_t Filter::on_request_trailers(sy_stream_t* s) {
  // Trailers end the body: check what was buffered.
  if (state_ == State::kBuffering) return start_check(s, SY_STOP, false);
  if (state_ == State::kChecking) return SY_STOP;
  return SY_CONTINUE;
}

sy_filter_status_t Filter::on_response_headers(sy_stream_t* s) {
  for (const HeaderOp& op : response_headers_) apply_header(s, SY_RESPONSE_HEADERS, op);
  response_headers_.clear();
  return SY_CONTINUE;
}

void Filter::abandon() {
  state_ = State::kDone;
  if (cs_ != nullptr) g_host->stream_callout_reset(cs_);
  cs_ = nullptr;
}

void Filter::on_destroy() {
  if (cs_ != nullptr) g_host->stream_callout_reset(cs_);
  cs_ = nullptr;
  // Its reply would find the filter gone: abandon it.
  if (unary_ != nullptr) g_host->http_callout_cancel(unary_);
  unary_ = nullptr;
}

sy_filter_status_t Filter::start_check(sy_stream_t* s, sy_filter_status_t waiting, bool partial) {
  CheckInput in;
  in.cfg = cfg_;
  in.route = route_;
  in.header_only = header_only_;
  if (state_ == State::kBuffering) {
    sy_str_t body{};
    g_host->body_get(s, SY_REQUEST, SY_BODY_BUFFERED, &body);
    in.has_body = true;
    in.body.assign(view(body).substr(0, cfg_->with_request_body.max_request_bytes));
    in.partial = partial;
  }
  std::vector<std::pair<std::string, std::string>> head;
  std::string payload;
  if (cfg_->mode == Config::kGrpc) {
    head = {{":method", "POST"},
            {":path", std::string(kGrpcPath)},
            {"content-type", "application/grpc"},
            {"te", "trailers"}};
    if (!cfg_->authority.empty()) head.emplace_back(":authority", cfg_->authority);
    if (cfg_->timeout_ms > 0)
      head.emplace_back("grpc-timeout", std::to_string(cfg_->timeout_ms) + "m");
    payload = sy::sdk::grpc::frame(build_check_request(s, in));
  } else {
    head = build_http_check_headers(s, in);
    payload = std::move(in.body);
  }
  std::vector<sy_header_t> h;
  h.reserve(head.size());
  for (const auto& [n, v] : head) h.push_back({str(n), str(v)});

  state_ = State::kChecking;
  stream_ = s;
  sy_status_t st;
  if (cfg_->mode == Config::kGrpc) {
    st = g_host->stream_callout_start(s, nullptr, str(cfg_->cluster), h.data(), h.size(),
                                      cfg_->timeout_ms, callbacks(), this, &cs_);
    if (st == SY_OK) g_host->stream_callout_send_data(cs_, str(payload), true);
  } else {
    id_ = g_host->stream_id(s);
    index_ = g_host->filter_index(s);
    st =
        g_host->http_callout_start(s, nullptr, str(cfg_->cluster), h.data(), h.size(), str(payload),
                                   cfg_->timeout_ms, &Filter::http_reply, this, &unary_);
  }
  if (st != SY_OK) {
    cs_ = nullptr;
    unary_ = nullptr;
    std::string why = st == SY_ERR_NOT_FOUND ? "unknown cluster '" + cfg_->cluster + "'"
                                             : "the callout could not start";
    return finish(s, error_decision(why), true) ? SY_CONTINUE : SY_STOP;
  }
  return waiting;
}

Decision Filter::decide() {
  if (cfg_->mode == Config::kHttp) {
    if (!failure_.empty()) return error_decision(failure_);
    if (oversize_) return error_decision("the authorization server's answer is too large");
    std::vector<sy_header_t> h;
    h.reserve(headers_.size());
    for (const auto& [n, v] : headers_) h.push_back({str(n), str(v)});
    return from_http_response(*cfg_, http_status_, h.data(), h.size(), std::move(body_));
  }
  if (http_status_ != 200)
    return error_decision("the gRPC server answered HTTP " + std::to_string(http_status_));
  if (grpc_status_ != "0")
    return error_decision("gRPC status " + (grpc_status_.empty() ? "missing" : grpc_status_) +
                          (grpc_message_.empty() ? "" : ": " + grpc_message_));
  if (messages_ != 1 || !deframer_.idle())
    return error_decision("the gRPC answer does not hold exactly one CheckResponse");
  return from_check_response(*cfg_, message_);
}

bool Filter::finish(sy_stream_t* s, const Decision& d, bool sync) {
  if (!d.why.empty() && g_host->log_enabled(SY_LOG_DEBUG))
    log(SY_LOG_DEBUG, "ext_authz check failed: " + d.why);
  // Merged member by member into what the namespace holds, with the values' JSON types, as
  // Envoy's setDynamicMetadata merges the answer's Struct.
  if (!d.metadata.empty()) g_host->metadata_ns_merge(s, str(kMetadataNamespace), str(d.metadata));
  bool go_on = false;
  switch (d.kind) {
    case Decision::kOk:
      if (d.invalid) {
        count(cfg_->metrics.invalid);
        reply(s, 500, Decision{}, "ext_authz_invalid");
        break;
      }
      count(cfg_->metrics.ok);
      go_on = apply_ok(s, d);
      break;
    case Decision::kDenied:
      count(cfg_->metrics.denied);
      mark_unauthorized(s);
      reply(s, d.status ? d.status : 403, d, "ext_authz_denied");
      break;
    case Decision::kError:
      count(cfg_->metrics.error);
      if (cfg_->failure_mode_allow) {
        count(cfg_->metrics.failure_mode_allowed);
        if (cfg_->failure_mode_allow_header_add)
          g_host->header_set(s, SY_REQUEST_HEADERS, str("x-envoy-auth-failure-mode-allowed"),
                             str("true"));
        go_on = true;
        break;
      }
      mark_unauthorized(s);
      reply(s, d.status ? d.status : cfg_->status_on_error, d, "ext_authz_error");
      break;
  }
  state_ = go_on ? State::kAllowed : State::kDone;
  if (go_on && !sync) g_host->resume(s, SY_REQUEST);
  return go_on;
}

bool Filter::apply_ok(sy_stream_t* s, const Decision& d) {
  bool mutated = false;
  for (const HeaderOp& op : d.request_headers) mutated |= apply_header(s, SY_REQUEST_HEADERS, op);
  for (const std::string& name : d.headers_to_remove) {
    // Pseudo-headers and Host route the request: Envoy never lets the server remove them.
    if (name.empty() || name[0] == ':' || name == "host") continue;
    if (g_host->header_count(s, SY_REQUEST_HEADERS, str(name)) == 0) continue;
    g_host->header_remove(s, SY_REQUEST_HEADERS, str(name));
    mutated = true;
  }
  if (!d.query_set.empty() || !d.query_remove.empty()) {
    sy_str_t path{};
    if (g_host->header_get(s, SY_REQUEST_HEADERS, str(":path"), 0, &path) == SY_OK) {
      std::string next = rewrite_query(view(path), d.query_set, d.query_remove);
      if (next != view(path)) {
        g_host->header_set(s, SY_REQUEST_HEADERS, str(":path"), str(next));
        mutated = true;
      }
    }
  }
  response_headers_ = d.response_headers;
  if (mutated && cfg_->clear_route_cache) g_host->clear_route_cache(s);
  return true;
}

void Filter::reply(sy_stream_t* s, uint32_t status, const Decision& d, const char* details) {
  std::vector<sy_header_t> h;
  h.reserve(d.reply_headers.size());
  for (const auto& [n, v] : d.reply_headers) h.push_back({str(n), str(v)});
  std::string_view body = d.body;
  if (cfg_->max_denied_response_body_bytes > 0)
    body = body.substr(0, cfg_->max_denied_response_body_bytes);
  g_host->send_local_reply(s, status, h.data(), h.size(), str(body), str(details));
}

// ---- the callout's events: on the stream's worker, with stream_ valid ----

namespace {

// Runs FN, an event of F's callout; an exception (out of memory) must not cross the C
// boundary: the request is answered 500 if it still can be, and F is done.
template <class Fn>
void guarded(Filter* f, sy_stream_t* s, Fn&& fn) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    log(SY_LOG_ERROR, std::string("ext_authz: handling the server's answer failed: ") + e.what());
    f->abandon();
    g_host->send_local_reply(s, 500, nullptr, 0, str(""), str("ext_authz_exception"));
  }
}

}  // namespace

void Filter::cb_headers(void* arg, sy_callout_stream_t*, const sy_header_t* h, size_t n, bool) {
  auto* f = static_cast<Filter*>(arg);
  guarded(f, f->stream_, [&] { f->take_headers(h, n); });
}

void Filter::take_headers(const sy_header_t* h, size_t n) {
  Filter* f = this;
  for (size_t i = 0; i < n; ++i) {
    std::string_view name = view(h[i].name), value = view(h[i].value);
    if (name == ":status") f->http_status_ = uint32_t(std::atoi(std::string(value).c_str()));
    // A trailers-only gRPC answer carries its status in the head.
    else if (name == "grpc-status")
      f->grpc_status_ = value;
    else if (name == "grpc-message")
      f->grpc_message_ = value;
    if (f->cfg_->mode == Config::kHttp) f->headers_.emplace_back(name, value);
  }
}

void Filter::cb_data(void* arg, sy_callout_stream_t*, sy_str_t data, bool) {
  auto* f = static_cast<Filter*>(arg);
  guarded(f, f->stream_, [&] { f->take_data(data); });
}

void Filter::take_data(sy_str_t data) {
  Filter* f = this;
  if (f->cfg_->mode == Config::kHttp) {
    if (f->body_.size() + data.len > kMaxHttpBody)
      f->oversize_ = true;
    else
      f->body_.append(view(data));
    return;
  }
  f->deframer_.feed(view(data), [f](std::string_view m, bool compressed) {
    // Envoy never asks for compression, so a compressed message is a broken server.
    if (++f->messages_ == 1 && !compressed) f->message_ = m;
    if (compressed) f->messages_ += 1;
  });
}

void Filter::cb_trailers(void* arg, sy_callout_stream_t*, const sy_header_t* t, size_t n) {
  auto* f = static_cast<Filter*>(arg);
  guarded(f, f->stream_, [&] {
    for (size_t i = 0; i < n; ++i) {
      if (view(t[i].name) == "grpc-status") f->grpc_status_ = view(t[i].value);
      if (view(t[i].name) == "grpc-message") f->grpc_message_ = view(t[i].value);
    }
  });
}

void Filter::cb_complete(void* arg, sy_callout_stream_t*) {
  auto* f = static_cast<Filter*>(arg);
  f->cs_ = nullptr;
  guarded(f, f->stream_, [&] { f->finish(f->stream_, f->decide(), false); });
}

void Filter::cb_failure(void* arg, sy_callout_stream_t*, sy_callout_failure_t r, sy_str_t d) {
  auto* f = static_cast<Filter*>(arg);
  f->cs_ = nullptr;
  static const char* const kReasons[] = {"reset",           "timeout",  "connect",
                                         "unknown cluster", "overflow", "shutdown"};
  guarded(f, f->stream_, [&] {
    std::string why = unsigned(r) < 6 ? kReasons[r] : "failure";
    if (d.len) why += ": " + std::string(view(d));
    f->finish(f->stream_, error_decision(why), false);
  });
}

void Filter::http_reply(void* arg, const sy_callout_response_t* r) {
  // Runs on the worker but outside the stream: copy the answer, then go back in. The filter
  // is alive (on_destroy cancels a callout whose reply has not run).
  auto* f = static_cast<Filter*>(arg);
  f->unary_ = nullptr;
  f->http_status_ = r->status;
  try {
    if (r->status == 0) f->failure_ = r->failure.len ? std::string(view(r->failure)) : "failure";
    for (size_t i = 0; i < r->header_count; ++i)
      f->headers_.emplace_back(view(r->headers[i].name), view(r->headers[i].value));
    if (r->body.len > kMaxHttpBody)
      f->oversize_ = true;
    else
      f->body_.assign(view(r->body));
  } catch (const std::exception&) {
    // Out of memory while copying: the answer is lost, which is the error path.
    f->oversize_ = true;
  }
  // No DROP: a stream that ended meanwhile has destroyed the filter, or is about to, and the
  // task only runs while the stream lives.
  g_host->post_to_filter(f->id_, f->index_, &Filter::http_reply_task, nullptr, f);
}

void Filter::http_reply_task(sy_stream_t* s, void* arg) {
  auto* f = static_cast<Filter*>(arg);
  guarded(f, s, [&] { f->finish(s, f->decide(), false); });
}

namespace {

const sy_stream_callout_callbacks_t* callbacks() {
  static const sy_stream_callout_callbacks_t kCallbacks = {sizeof(sy_stream_callout_callbacks_t),
                                                           &Filter::cb_headers,
                                                           &Filter::cb_data,
                                                           &Filter::cb_trailers,
                                                           &Filter::cb_complete,
                                                           &Filter::cb_failure,
                                                           nullptr};
  return &kCallbacks;
}

}  // namespace

}  // namespace ext_authz
