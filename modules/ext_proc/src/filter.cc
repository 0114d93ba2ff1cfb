// The per-stream state machine. Within a direction the order is headers, body, trailers; each
// message sent waits for the answer of its own type (FIFO per direction), and a direction is
// held (SY_STOP, or SY_STOP_AND_BUFFER when its body must be collected) until every answer
// it waits for has come. BUFFERED and BUFFERED_PARTIAL bodies are collected in the host's
// buffer and sent as one message; the headers stay held until then, so a body mutation and
// the header mutation of a body answer both apply before anything goes on (Content-Length is
// then set by the host from the final body: see docs/ext_proc.md).
#include "filter.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "mutation.h"
#include "observe.h"
#include "wire.h"

namespace extproc {
namespace {

constexpr std::string_view kPath = "/envoy.service.ext_proc.v3.ExternalProcessor/Process";

Filter* self(void* arg) { return static_cast<Filter*>(arg); }

void cb_headers(void* arg, sy_callout_stream_t*, const sy_header_t* h, size_t n, bool end) {
  self(arg)->side_headers(h, n, end);
}
void cb_data(void* arg, sy_callout_stream_t*, sy_str_t data, bool end) {
  self(arg)->side_data(V(data), end);
}
void cb_trailers(void* arg, sy_callout_stream_t*, const sy_header_t* h, size_t n) {
  self(arg)->side_trailers(h, n);
}
void cb_complete(void* arg, sy_callout_stream_t*) {
  self(arg)->cs = nullptr;  // invalid once this returns
  self(arg)->side_done(false, "");
}
void cb_failure(void* arg, sy_callout_stream_t*, sy_callout_failure_t reason, sy_str_t details) {
  self(arg)->cs = nullptr;
  static const char* const kReasons[] = {"reset",           "timeout",  "connect",
                                         "unknown_cluster", "overflow", "shutdown"};
  std::string why = unsigned(reason) < 6 ? kReasons[reason] : "failure";
  if (details.len) why += ": " + std::string(V(details));
  self(arg)->side_done(true, why);
}
void cb_writable(void* arg, sy_callout_stream_t*) { self(arg)->side_writable(); }

const sy_stream_callout_callbacks_t kSideCallbacks = {sizeof(sy_stream_callout_callbacks_t),
                                                      cb_headers,
                                                      cb_data,
                                                      cb_trailers,
                                                      cb_complete,
                                                      cb_failure,
                                                      cb_writable};

void timer_fired(sy_stream_t*, void* arg) {
  auto* d = static_cast<Direction*>(arg);
  d->timer = nullptr;
  d->f->message_timeout(*d);
}
void timer_dropped(void* arg) { static_cast<Direction*>(arg)->timer = nullptr; }

std::string header_value(const sy_header_t* h, size_t n, std::string_view name) {
  for (size_t i = 0; i < n; ++i)
    if (V(h[i].name) == name) return std::string(V(h[i].value));
  return {};
}

uint64_t now_ms() {
  using namespace std::chrono;
  return uint64_t(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

uint64_t duration_ms(const google::protobuf::Duration& d) {
  if (d.seconds() < 0 || d.nanos() < 0) return 0;
  return uint64_t(d.seconds()) * 1000 + uint64_t(d.nanos()) / 1000000;
}

}  // namespace

Filter::Filter(const Config* cfg, sy_stream_t* s) : cfg_(cfg), s_(s) {
  const auto* rc = static_cast<const RouteConfig*>(g_host->route_config(s));
  Mode m = rc && rc->mode ? *rc->mode : cfg->mode;
  target_ = rc && rc->grpc ? *rc->grpc : cfg->grpc;
  failure_mode_allow_ =
      rc && rc->failure_mode_allow ? *rc->failure_mode_allow : cfg->failure_mode_allow;
  if (rc) extra_metadata_ = rc->grpc_initial_metadata;
  forwarding_ = rc && rc->forwarding ? &*rc->forwarding : &cfg->forwarding_namespaces;
  forwarding_typed_ = rc && rc->forwarding_typed ? &*rc->forwarding_typed : &cfg->forwarding_typed;
  receiving_ = rc && rc->receiving ? &*rc->receiving : &cfg->receiving_namespaces;
  d_[0].dir = SY_REQUEST;
  d_[1].dir = SY_RESPONSE;
  d_[0].header_mode = m.request_header == kSkip ? kSkip : kSend;
  d_[1].header_mode = m.response_header == kSkip ? kSkip : kSend;
  d_[0].body_mode = m.request_body;
  d_[1].body_mode = m.response_body;
  d_[0].trailer_mode = m.request_trailer == kSend ? kSend : kSkip;
  d_[1].trailer_mode = m.response_trailer == kSend ? kSend : kSkip;
  for (auto& d : d_) d.f = this;
}

Filter::~Filter() {
  if (obs_) obs_->finish(cfg_->deferred_close_ms);
  for (auto& d : d_) stop_timer(d);
  if (cs) g_host->stream_callout_reset(cs);
}

sy_header_kind_t Filter::headers_kind(const Direction& d) const {
  return d.dir == SY_REQUEST ? SY_REQUEST_HEADERS : SY_RESPONSE_HEADERS;
}
sy_header_kind_t Filter::trailers_kind(const Direction& d) const {
  return d.dir == SY_REQUEST ? SY_REQUEST_TRAILERS : SY_RESPONSE_TRAILERS;
}

bool Filter::streamed(const Direction& d) const {
  return d.body_mode == kStreamed && !d.header_end && !d.replaced && !side_over_;
}

bool Filter::early_body(const Direction& d) const {
  return cfg_->send_body_without_waiting_for_header_response && streamed(d) && watermark_ok() &&
         !d.headers_out && d.pending.contains(Msg::kHeaders);
}

bool Filter::watermark_ok() const { return g_host->abi_minor >= 2; }

bool Filter::body_wanted(const Direction& d) const {
  return (d.body_mode == kBuffered || d.body_mode == kBufferedPartial) && !d.header_end &&
         !d.replaced && !side_over_;
}

// ---- HTTP stream callbacks ---------------------------------------------------------------

sy_filter_status_t Filter::on_headers(sy_direction_t dir, bool end_stream) {
  Direction& d = d_[dir];
  d.started = true;
  d.header_end = end_stream;
  d.body_end = end_stream;
  // After a local reply (ended_), its response passes through this filter's response
  // callbacks: let it go.
  if (side_over_ || ended_ || cfg_->observability_mode) {
    // Observability mode sends and goes on at once (observe.h).
    if (cfg_->observability_mode && d.header_mode == kSend) send_headers(d, end_stream);
    d.headers_out = true;
    return SY_CONTINUE;
  }
  if (duplex_wanted(d, end_stream)) return duplex_headers(d);
  in_callback_ = dir;
  if (d.header_mode == kSend) send_headers(d, end_stream);
  bool go = !ended_ && advance(d);
  in_callback_ = -1;
  if (ended_) return SY_STOP;
  if (go) {
    d.headers_out = true;
    close_if_done();
    return SY_CONTINUE;
  }
  d.held = true;
  // STREAMED holds what arrives meanwhile under the watermark status: the peer is paused at
  // the watermark, and the filter still sees the end of the body and the trailers.
  if (!end_stream && streamed(d) && watermark_ok()) return SY_STOP_AND_WATERMARK;
  // Collect the body in the host's buffer when it will be sent, or when a mode_override may
  // still ask for it, or when trailers must be seen (data and trailers that arrive while a
  // filter is stopped pass it by when it resumes); otherwise a plain stop keeps the client
  // back at the watermark.
  bool buffer =
      !end_stream && (body_wanted(d) || cfg_->allow_mode_override || d.trailer_mode == kSend);
  return buffer ? SY_STOP_AND_BUFFER : SY_STOP;
}

sy_filter_status_t Filter::on_body(sy_direction_t dir, bool end_stream) {
  Direction& d = d_[dir];
  if (end_stream) d.body_end = true;
  if (cfg_->observability_mode) return observe_body(d, end_stream);
  if (d.duplex && !ended_) {
    if (!side_over_) return duplex_body(d, end_stream);
    if (d.taken) {
      duplex_passthrough(d);
      return SY_STOP_AND_WATERMARK;
    }
  }
  if (d.replaced) {
    // CONTINUE_AND_REPLACE: the processor's body replaced the message's; the rest is dropped.
    sy_str_t chunk{};
    if (g_host->body_get(s_, dir, SY_BODY_CHUNK, &chunk) == SY_OK && chunk.len)
      g_host->body_drain(s_, dir, SY_BODY_CHUNK, chunk.len);
  }
  if (d.streaming && !ended_ && !side_over_) return stream_chunk(d, end_stream);
  if (ended_ || side_over_ || !d.held) {
    if (end_stream) close_if_done();
    return SY_CONTINUE;
  }
  if (early_body(d)) {
    // send_body_without_waiting_for_header_response: what arrived goes to the processor now,
    // held in place (the headers and every chunk wait for their answers, in order).
    in_callback_ = dir;
    send_held(d);
    in_callback_ = -1;
    return ended_ ? SY_STOP : SY_STOP_AND_WATERMARK;
  }
  in_callback_ = dir;
  bool go = advance(d);
  in_callback_ = -1;
  if (ended_) return SY_STOP;
  if (go) {
    d.held = false;
    d.headers_out = true;
    if (end_stream) close_if_done();
    return SY_CONTINUE;
  }
  // At the end of the body either status pauses the direction until resume().
  return streamed(d) && watermark_ok() ? SY_STOP_AND_WATERMARK : SY_STOP_AND_BUFFER;
}

sy_filter_status_t Filter::on_trailers(sy_direction_t dir) {
  Direction& d = d_[dir];
  d.trailers_seen = true;
  if (cfg_->observability_mode) {
    if (d.trailer_mode == kSend) send_trailers(d);
    return SY_CONTINUE;
  }
  if (d.duplex && !ended_) {
    if (!side_over_) return duplex_trailers(d);
    if (d.taken) {
      duplex_passthrough(d);
      return SY_STOP;
    }
  }
  if (side_over_ || ended_) return SY_CONTINUE;
  in_callback_ = dir;
  bool go = advance(d);
  in_callback_ = -1;
  if (ended_) return SY_STOP;
  if (go) {
    d.held = false;
    d.headers_out = true;
    close_if_done();
    return SY_CONTINUE;
  }
  d.held = true;
  return SY_STOP;
}

void Filter::on_complete() {
  if (obs_) std::exchange(obs_, nullptr)->finish(cfg_->deferred_close_ms);
  for (auto& d : d_) stop_timer(d);
  if (side_started_ && !failed_) count_closed();
}

// ---- What is due, and letting a direction go on --------------------------------------------

bool Filter::advance(Direction& d) {
  if (ended_) return false;
  if (side_over_) return true;
  if (d.pending.contains(Msg::kHeaders))
    return false;  // nothing of a direction goes before its headers are answered
  if (body_wanted(d) && !d.body_sent) {
    sy_str_t body{};
    size_t buffered = 0;
    if (g_host->body_get(s_, d.dir, SY_BODY_BUFFERED, &body) == SY_OK) buffered = body.len;
    bool over = d.body_mode == kBufferedPartial && buffered >= cfg_->partial_buffer_bytes;
    if (over)
      send_body(d, false, cfg_->partial_buffer_bytes);
    else if (d.body_end || d.trailers_seen)
      send_body(d, d.body_end && !d.trailers_seen, SIZE_MAX);
    else
      return false;  // still collecting
    if (ended_ || side_over_) return !ended_;
  }
  // STREAMED sends what it holds before the trailers (start_streaming).
  bool body_first = streamed(d) && !d.streaming && d.inplace != 2 && !d.eos_sent;
  if (d.trailers_seen && d.trailer_mode == kSend && !d.trailers_sent && !body_first)
    send_trailers(d);
  if (ended_) return false;
  return side_over_ || d.pending.empty();
}

// STREAMED. The direction is held (SY_STOP, so the host keeps the peer back at its watermark)
// while the headers are with the processor, and again whenever more than kStreamWindow bytes
// of chunks are with it. To go on, what the host held meanwhile is sent as one chunk and
// answered in place (the buffer is replaced, as for a buffered body); then the direction is
// resumed and later chunks are taken out of the flow as they come (stream_chunk), sent, and
// injected after this filter as their answers arrive. The end of the body and the trailers
// wait until every chunk is answered, so nothing overtakes a processed chunk.
// The holds use SY_STOP_AND_WATERMARK (ABI 1.2): the host pauses the peer at its watermark
// and still calls the filter with the end of the body and the trailers, so a body whose end
// arrives during a hold gets its end_of_stream message and trailer mode SEND keeps the
// back-pressure. On an older host the holds are SY_STOP (or SY_STOP_AND_BUFFER when trailers
// must be seen), whose resume passes the end of stream and the trailers by the filter.
constexpr size_t kStreamWindow = 1 << 20;

bool Filter::send_held(Direction& d) {
  sy_str_t held{};
  if (g_host->body_get(s_, d.dir, SY_BODY_BUFFERED, &held) != SY_OK) held = {};
  // Bytes that arrived after the last held chunk went out are one more. So is an end of the
  // body that came after it (an empty chunk with end_of_stream).
  bool fresh =
      held.len > d.inplace_sent ||
      (d.inplace == 0 && (d.body_end || d.trailers_seen) && !d.eos_sent && d.inplace_sent == 0) ||
      (d.body_end && !d.trailers_seen && !d.eos_sent);
  if (!fresh) return false;
  size_t at = std::min(d.inplace_sent, held.len);
  size_t n = held.len - at;
  bool eos = d.body_end && !d.trailers_seen;
  sy_str_t cl{};
  if (!eos && !d.trailers_seen && !d.ever_streamed && at == 0 &&
      g_host->header_get(s_, headers_kind(d), S("content-length"), 0, &cl) == SY_OK &&
      V(cl) == std::to_string(held.len))
    eos = d.body_end = true;  // the whole body is held: say so
  Request req;
  req.set_body(d.dir, std::string_view(held.ptr + at, n), eos);
  d.eos_sent = eos;
  d.inplace_lens.push_back(n);
  d.inplace_sent = at + n;
  d.chunks.push_back(std::nullopt);
  d.inplace = 1;
  send(d, Msg::kBody, req);
  return true;
}

void Filter::start_streaming(Direction& d) {
  if (d.inplace == 1) return;  // the held bytes are with the processor
  if (send_held(d)) return;
  d.inplace = 0;
  d.inplace_done = d.inplace_sent = 0;
  if (!d.headers_out) g_host->header_remove(s_, headers_kind(d), S("content-length"));
  d.streaming = !d.eos_sent && !d.body_end && !d.trailers_seen;
  if (d.streaming) d.ever_streamed = true;
  if (!d.streaming) d.body_mode = kNone;  // nothing more to stream
  if (!d.pending.empty()) return;         // trailers answers still due: release_if_ready resumes
  d.held = false;
  d.headers_out = true;
  g_host->resume(s_, d.dir);
}

sy_filter_status_t Filter::stream_chunk(Direction& d, bool end_stream) {
  sy_str_t chunk{};
  if (g_host->body_get(s_, d.dir, SY_BODY_CHUNK, &chunk) != SY_OK) chunk = {};
  std::string copy(V(chunk));
  if (!copy.empty()) g_host->body_drain(s_, d.dir, SY_BODY_CHUNK, copy.size());
  if (!copy.empty() || end_stream) {
    d.inflight += copy.size();
    d.chunks.push_back(std::move(copy));
    // A view of the kept copy (not of COPY: a short string's bytes move with it).
    Request req;
    req.set_body(d.dir, *d.chunks.back(), end_stream);
    d.eos_sent = end_stream;
    in_callback_ = d.dir;
    send(d, Msg::kBody, req);
    in_callback_ = -1;
  }
  if (ended_) return SY_STOP;
  if (side_over_) return SY_CONTINUE;
  if (end_stream) {
    d.streaming = false;
    if (d.pending.empty()) {
      close_if_done();
      return SY_CONTINUE;
    }
    d.held = true;  // the end waits for the last answers
    return SY_STOP;
  }
  bool watermark = watermark_ok();
  if (d.inflight > kStreamWindow && (watermark || d.trailer_mode != kSend)) {
    // Enough is with the processor: hold the peer back until it has answered. What arrives
    // meanwhile is held (at most to the watermark) and sent as one chunk (start_streaming).
    d.streaming = false;
    d.held = true;
    return watermark ? SY_STOP_AND_WATERMARK : SY_STOP;
  }
  return SY_CONTINUE;
}

void Filter::release_if_ready(Direction& d) {
  if (d.duplex && !ended_ && in_callback_ != int(d.dir)) {
    if (d.taken) {
      if (side_over_) duplex_passthrough(d);
      return;
    }
    if (side_over_ && d.sent_body_len > 0) {
      // Processing ended before the headers' answer, with part of the body already handed to
      // the processor: the message cannot go on whole.
      fail(cfg_->status_on_error, "ext_proc_error_full_duplex_incomplete", false);
      return;
    }
  }
  if (!d.held || ended_ || in_callback_ == int(d.dir)) return;
  if (!advance(d)) return;
  if (streamed(d) && !side_over_ && !d.eos_sent) {
    start_streaming(d);
    return;
  }
  d.held = false;
  d.headers_out = true;
  g_host->resume(s_, d.dir);
}

// streams_closed counts a side stream once, however many ways it is seen to close.
void Filter::count_closed() {
  if (closed_counted_) return;
  closed_counted_ = true;
  count(kStreamsClosed);
}

void Filter::stop_processing() {
  side_over_ = true;
  for (auto& d : d_) stop_timer(d);
  if (cs) {
    sy_callout_stream_t* c = cs;
    cs = nullptr;
    g_host->stream_callout_reset(c);
  }
  for (auto& d : d_) release_if_ready(d);
}

void Filter::fail(uint32_t status, const std::string& details, bool allow_override) {
  if (ended_) return;
  if (g_host->log_enabled(SY_LOG_DEBUG)) {
    std::string line = "stream failed: " + details;
    g_host->log(g_module, SY_LOG_DEBUG, S(line));
  }
  failed_ = true;
  if (failure_mode_allow_ && allow_override) {
    count(kFailureModeAllowed);
    stop_processing();
    return;
  }
  side_over_ = true;
  for (auto& d : d_) stop_timer(d);
  if (cs) {
    sy_callout_stream_t* c = cs;
    cs = nullptr;
    g_host->stream_callout_reset(c);
  }
  local_reply(status, {}, "", details);
}

void Filter::local_reply(uint32_t status,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         std::string_view body, const std::string& details) {
  ended_ = true;
  // Once the response headers went downstream a reply is impossible: reset, as Envoy does.
  if (d_[1].headers_out) {
    g_host->stream_reset(s_, S(details));
    return;
  }
  std::vector<sy_header_t> h;
  for (const auto& [n, v] : headers) h.push_back({S(n), S(v)});
  if (g_host->send_local_reply(s_, status, h.data(), h.size(), S(body), S(details)) != SY_OK)
    g_host->stream_reset(s_, S(details));
}

void Filter::close_if_done() {
  if (!cs || side_over_) return;
  auto done = [](const Direction& d) {
    return d.pending.empty() && (d.body_end || d.trailers_seen || d.header_end) &&
           (!d.duplex || ((d.eos_sent || d.trailers_sent) && d.duplex_done));
  };
  // A response whose every phase is SKIP or NONE sends the processor nothing, and once the
  // request is done nothing can change that (a mode override comes with a headers answer, and
  // the request's is in): it need not be waited for, and the side stream closes while the
  // upstream works instead of on the response's path. A duplex direction is done once the
  // processor's last chunk is in, not only ours.
  const Direction& r = d_[1];
  bool silent =
      !r.started && r.header_mode == kSkip && r.body_mode == kNone && r.trailer_mode == kSkip;
  if (!done(d_[0]) || !(silent || (r.started && done(r)))) return;
  // Processing is complete: close the side stream as Envoy does then, with a cancel
  // (RST_STREAM), not END_STREAM. A half-close asks more of the processor for nothing: it ends
  // the call with trailers, and gRPC's flow-control estimator answers the empty DATA frame with
  // a PING that wants an ACK, two more wake-ups of the processor and one more of this worker
  // per request (at 700 requests/s against grpc-go: its CPU 230 -> 179 us a request, the added
  // p50 214 -> 182 us).
  count_closed();
  stop_processing();
}

// ---- Sending -------------------------------------------------------------------------------

std::vector<sy_header_t> Filter::side_stream_headers() const {
  std::vector<sy_header_t> h = {{S(":method"), S("POST")},
                                {S(":path"), S(kPath)},
                                {S("content-type"), S("application/grpc")},
                                {S("te"), S("trailers")}};
  if (!target_.authority.empty()) h.push_back({S(":authority"), S(target_.authority)});
  for (const auto& [n, v] : target_.initial_metadata) h.push_back({S(n), S(v)});
  for (const auto& [n, v] : extra_metadata_) h.push_back({S(n), S(v)});
  return h;
}

bool Filter::open_side_stream() {
  std::vector<sy_header_t> h = side_stream_headers();
  sy_status_t st = g_host->stream_callout_start(s_, nullptr, S(target_.cluster), h.data(), h.size(),
                                                target_.timeout_ms, &kSideCallbacks, this, &cs);
  if (st != SY_OK) {
    cs = nullptr;
    count(kStreamsFailed);
    fail(cfg_->status_on_error, "ext_proc_error_no_side_stream:" + target_.cluster);
    return false;
  }
  side_started_ = true;
  count(kStreamsStarted);
  return true;
}

bool Filter::send(Direction& d, Msg kind, Request& req, bool expect_answer) {
  if (cfg_->observability_mode) return observe(d, req);
  if (side_over_ || ended_) return false;
  if (!cs && !open_side_stream()) return false;
  prepare(d, req.msg());
  sy_status_t st = g_host->stream_callout_send_data(cs, S(Frame(req).view()), false);
  if (st != SY_OK && st != SY_ABOVE_HIGH_WATERMARK) {
    count(kStreamsFailed);
    fail(cfg_->status_on_error, "ext_proc_error_send_failed");
    return false;
  }
  if (st == SY_ABOVE_HIGH_WATERMARK) side_full_ = true;  // until on_writable
  count(kStreamMsgsSent);
  if (!expect_answer) return true;
  if (d.pending.empty()) wait_answer(d, answer_timeout(d));
  d.pending.push_back(kind);
  return true;
}

void Filter::prepare(Direction& d, pb::ProcessingRequest& req) {
  if (first_message_) {
    first_message_ = false;
    auto* pc = req.mutable_protocol_config();
    pc->set_request_body_mode(
        static_cast<envoy::extensions::filters::http::ext_proc::v3::ProcessingMode_BodySendMode>(
            d_[0].body_mode));
    pc->set_response_body_mode(
        static_cast<envoy::extensions::filters::http::ext_proc::v3::ProcessingMode_BodySendMode>(
            d_[1].body_mode));
    pc->set_send_body_without_waiting_for_header_response(
        cfg_->send_body_without_waiting_for_header_response);
  }
  if (d.dir == SY_REQUEST && !request_attrs_sent_) {
    request_attrs_sent_ = true;
    fill_attributes(s_, cfg_->request_attributes, &req);
  }
  // Every message carries the forwarded namespaces as they are now, as Envoy's do.
  fill_metadata(s_, *forwarding_, *forwarding_typed_, req.mutable_metadata_context());
  if (req.metadata_context().filter_metadata().empty() &&
      req.metadata_context().typed_filter_metadata().empty())
    req.clear_metadata_context();
}

void Filter::send_headers(Direction& d, bool end_stream) {
  Request req;
  pb::HttpHeaders* h = d.dir == SY_REQUEST ? req.msg().mutable_request_headers()
                                           : req.msg().mutable_response_headers();
  fill_header_map(s_, headers_kind(d), *cfg_, h->mutable_headers());
  h->set_end_of_stream(end_stream);
  if (d.dir == SY_RESPONSE) fill_attributes(s_, cfg_->response_attributes, &req.msg());
  send(d, Msg::kHeaders, req);
}

void Filter::send_body(Direction& d, bool end_stream, size_t limit) {
  sy_str_t body{};
  if (g_host->body_get(s_, d.dir, SY_BODY_BUFFERED, &body) != SY_OK) body = {};
  d.sent_body_len = std::min(body.len, limit);
  Request req;  // the body stays in the host's buffer until it is framed
  req.set_body(d.dir, std::string_view(body.ptr, d.sent_body_len), end_stream);
  d.body_sent = true;
  send(d, Msg::kBody, req);
}

void Filter::send_trailers(Direction& d) {
  Request req;
  pb::HttpTrailers* t = d.dir == SY_REQUEST ? req.msg().mutable_request_trailers()
                                            : req.msg().mutable_response_trailers();
  fill_header_map(s_, trailers_kind(d), *cfg_, t->mutable_trailers());
  d.trailers_sent = true;
  send(d, Msg::kTrailers, req);
}

void Filter::start_timer(Direction& d, uint64_t ms) {
  stop_timer(d);
  // A stream_idle_timeout of 0 disables it (as Envoy's).
  if (d.body_mode == kFullDuplex && cfg_->stream_idle_timeout_ms == 0) return;
  d.timer_at = d.wait_until = now_ms() + ms;
  d.timer = g_host->stream_timer(s_, ms, timer_fired, timer_dropped, &d);
}

void Filter::stop_timer(Direction& d) {
  d.wait_until = 0;
  d.reused = false;
  if (d.timer) {
    sy_timer_t* t = d.timer;
    d.timer = nullptr;
    g_host->timer_cancel(t);
  }
}

void Filter::wait_answer(Direction& d, uint64_t ms) {
  if (d.timer && d.wait_until == 0 && d.body_mode != kFullDuplex) {
    uint64_t until = now_ms() + ms;
    if (d.timer_at <= until) {
      d.wait_until = until;
      d.reused = true;
      return;
    }
  }
  start_timer(d, ms);
}

void Filter::answered(Direction& d) {
  if (d.body_mode == kFullDuplex || d.duplex) {
    stop_timer(d);
    return;
  }
  d.wait_until = 0;
}

// ---- The side stream -----------------------------------------------------------------------

void Filter::side_headers(const sy_header_t* h, size_t n, bool end_stream) {
  std::string status = header_value(h, n, ":status");
  if (status != "200") {
    count(kHttpNotOkRespReceived);
    count(kStreamsFailed);
    if (!side_over_) fail(cfg_->status_on_error, "ext_proc_error_http_status_" + status);
    return;
  }
  if (end_stream) side_trailers(h, n);  // a trailers-only response
}

void Filter::side_data(std::string_view data, bool) {
  if (side_over_ || ended_) return;
  bool ok = deframer_.feed(data, [&](std::string_view msg, bool compressed) {
    if (side_over_ || ended_) return;
    // Parsed on an arena whose first block is on this stack, as requests are built (wire.h):
    // a usual answer (a few header mutations) costs no malloc and free per field.
    alignas(16) char block[4096];
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = sizeof block;
    google::protobuf::Arena arena(options);
    auto& r = *google::protobuf::Arena::CreateMessage<pb::ProcessingResponse>(&arena);
    if (compressed || !r.ParseFromArray(msg.data(), int(msg.size()))) {
      count(kStreamsFailed);
      fail(cfg_->status_on_error, "ext_proc_error_bad_response_message");
      return;
    }
    count(kStreamMsgsReceived);
    handle_response(r);
  });
  if (!ok && !side_over_) {
    count(kStreamsFailed);
    fail(cfg_->status_on_error, "ext_proc_error_bad_grpc_frame");
  }
}

void Filter::side_trailers(const sy_header_t* h, size_t n) {
  std::string code = header_value(h, n, "grpc-status");
  if (code.empty() || code == "0") {
    // The processor ended the call: the rest of the stream goes on unprocessed.
    count_closed();
    if (!side_over_) stop_processing();
    return;
  }
  count(kStreamsFailed);
  if (side_over_) return;
  fail(cfg_->status_on_error, "ext_proc_error_gRPC_error_" + code);
}

void Filter::side_done(bool failed, std::string_view why) {
  if (side_over_ || ended_) {
    side_over_ = true;
    return;
  }
  if (failed) {
    count(kStreamsFailed);
    std::string details = "ext_proc_error_side_stream_" + std::string(why);
    for (char& c : details)
      if (c == ' ') c = '_';
    fail(cfg_->status_on_error, details);
    return;
  }
  stop_processing();
}

uint64_t Filter::answer_timeout(const Direction& d) const {
  // FULL_DUPLEX_STREAMED has no message timeout (as Envoy): only the stream idle timeout.
  return d.body_mode == kFullDuplex ? cfg_->stream_idle_timeout_ms : cfg_->message_timeout_ms;
}

void Filter::message_timeout(Direction& d) {
  if (side_over_ || ended_) return;
  // A timer left running after its answers came (answered) fires for nothing. (A timer made by
  // start_timer always has a deadline; stop_timer cancels the timer as it clears it.)
  if (d.wait_until == 0) return;
  if (d.reused) {
    uint64_t now = now_ms();
    if (now < d.wait_until) {
      // Made for an earlier message: the one awaited now has the rest of its own time.
      uint64_t rest = d.wait_until - now;
      d.reused = false;
      d.timer_at = d.wait_until;
      d.timer = g_host->stream_timer(s_, rest, timer_fired, timer_dropped, &d);
      return;
    }
  }
  if (d.body_mode == kFullDuplex) {
    fail(504, "stream_idle_timeout", false);
    return;
  }
  count(kMessageTimeouts);
  fail(504, "ext_proc_error_message_timeout");
}

// ---- Answers -------------------------------------------------------------------------------

void Filter::handle_response(const pb::ProcessingResponse& r) {
  using R = pb::ProcessingResponse;
  if (r.has_override_message_timeout()) {
    // A message of its own: it only extends the wait for the answer in progress.
    count(kOverrideMessageTimeoutReceived);
    Direction* d = !d_[0].pending.empty() ? &d_[0] : !d_[1].pending.empty() ? &d_[1] : nullptr;
    uint64_t ms = duration_ms(r.override_message_timeout());
    if (!d || cfg_->max_message_timeout_ms < 1 || ms < 1 || ms > cfg_->max_message_timeout_ms ||
        d->timeout_overridden) {
      count(kOverrideMessageTimeoutIgnored);
      return;
    }
    d->timeout_overridden = true;
    start_timer(*d, ms);
    return;
  }
  if (r.response_case() == R::kImmediateResponse) {
    if (cfg_->disable_immediate_response) {
      count(kSpuriousMsgsReceived);
      stop_processing();
      return;
    }
    if (d_[0].pending.empty() && d_[1].pending.empty()) {
      count(kSpuriousMsgsReceived);
      fail(cfg_->status_on_error, "ext_proc_error_spurious_message");
      return;
    }
    handle_immediate(r.immediate_response());
    return;
  }
  if (r.response_case() == R::kStreamedImmediateResponse) {
    // Envoy 1.40 streams such a reply (NONE and FULL_DUPLEX_STREAMED bodies); Switchyard's
    // local replies are whole, so it is refused, always closed: under failure_mode_allow the
    // request would otherwise reach the upstream the processor meant to answer for.
    g_host->log(g_module, SY_LOG_INFO,
                S("streamed_immediate_response is not supported (docs/ext_proc.md); the "
                  "stream fails with status_on_error"));
    count(kSpuriousMsgsReceived);
    fail(cfg_->status_on_error, "ext_proc_error_streamed_immediate_response_not_supported", false);
    return;
  }
  Direction* d = nullptr;
  Msg kind = Msg::kHeaders;
  switch (r.response_case()) {
    case R::kRequestHeaders:
      d = &d_[0];
      break;
    case R::kResponseHeaders:
      d = &d_[1];
      break;
    case R::kRequestBody:
      d = &d_[0], kind = Msg::kBody;
      break;
    case R::kResponseBody:
      d = &d_[1], kind = Msg::kBody;
      break;
    case R::kRequestTrailers:
      d = &d_[0], kind = Msg::kTrailers;
      break;
    case R::kResponseTrailers:
      d = &d_[1], kind = Msg::kTrailers;
      break;
    default:
      break;
  }
  if (d && d->duplex && duplex_answer(*d, kind, r)) return;
  if (!d || d->pending.empty() || d->pending.front() != kind) {
    // Out of order or of the wrong type: fail closed (Envoy's spurious message). The log says
    // what was expected, for the processor's authors.
    if (g_host->log_enabled(SY_LOG_INFO)) {
      static const char* const kNames[] = {"headers", "body", "trailers"};
      std::string line = "spurious answer (response oneof field " +
                         std::to_string(int(r.response_case())) + "); waiting for: ";
      for (const auto& x : d_) {
        line += x.dir == SY_REQUEST ? "request " : " response ";
        line += x.pending.empty() ? "nothing" : kNames[int(x.pending.front())];
      }
      g_host->log(g_module, SY_LOG_INFO, S(line));
    }
    count(kSpuriousMsgsReceived);
    fail(cfg_->status_on_error, "ext_proc_error_spurious_message");
    return;
  }
  d->pending.pop_front();
  d->timeout_overridden = false;
  if (d->pending.empty())
    answered(*d);
  else
    start_timer(*d, answer_timeout(*d));
  if (r.has_dynamic_metadata()) apply_dynamic_metadata(r.dynamic_metadata());
  if (kind == Msg::kHeaders && r.has_mode_override()) apply_mode_override(r, *d);
  switch (r.response_case()) {
    case R::kRequestHeaders:
    case R::kResponseHeaders: {
      const auto& c =
          d->dir == SY_REQUEST ? r.request_headers().response() : r.response_headers().response();
      // A mode_override to FULL_DUPLEX_STREAMED turns a held message with a body duplex now.
      if (!d->duplex && d->body_mode == kFullDuplex && d->held && !d->header_end &&
          !d->headers_out) {
        d->duplex = true;
        d->trailer_mode = kSend;
      }
      if (d->duplex)
        duplex_headers_answer(*d, c);
      else
        handle_common(*d, kind, c);
      break;
    }
    case R::kRequestBody:
    case R::kResponseBody:
      handle_common(
          *d, kind,
          d->dir == SY_REQUEST ? r.request_body().response() : r.response_body().response());
      break;
    default: {
      const auto& t = d->dir == SY_REQUEST ? r.request_trailers() : r.response_trailers();
      if (t.has_header_mutation()) {
        MutationOutcome out =
            apply_mutation(s_, trailers_kind(*d), t.header_mutation(), cfg_->rules, false);
        if (out.rejected) count(kRejectedHeaderMutations, out.rejected);
        if (out.error) fail(500, out.why, false);
      }
      if (d->duplex && !d->duplex_done && !ended_) {
        // The trailers end a duplex body: they go on after the processor's chunks.
        d->duplex_done = true;
        stop_timer(*d);
        g_host->resume(s_, d->dir);
      }
      break;
    }
  }
  if (ended_ || side_over_) return;
  release_if_ready(*d);
  close_if_done();
}

void Filter::handle_common(Direction& d, Msg kind, const pb::CommonResponse& c) {
  bool replace = kind == Msg::kHeaders && c.status() == pb::CommonResponse::CONTINUE_AND_REPLACE;
  bool changed = false;
  // A body answer's header mutation applies while the headers are still held (buffered modes).
  if (c.has_header_mutation() && !d.headers_out) {
    MutationOutcome out =
        apply_mutation(s_, headers_kind(d), c.header_mutation(), cfg_->rules, replace);
    if (out.rejected) count(kRejectedHeaderMutations, out.rejected);
    if (out.error) {
      fail(500, out.why, false);
      return;
    }
    changed = out.changed;
  }
  if (d.dir == SY_REQUEST && kind == Msg::kHeaders && !d.headers_out) {
    bool clear = false;
    if (cfg_->route_cache_action == 1) {
      clear = true;
    } else if (c.clear_route_cache()) {
      if (cfg_->disable_clear_route_cache)
        count(kClearRouteCacheDisabled);
      else if (cfg_->route_cache_action == 2 || !changed)
        count(kClearRouteCacheIgnored);
      else
        clear = true;
    }
    if (clear) g_host->clear_route_cache(s_);
  } else if (c.clear_route_cache()) {
    count(kClearRouteCacheIgnored);
  }
  if (kind == Msg::kBody && !d.chunks.empty()) {
    std::optional<std::string> chunk = std::move(d.chunks.front());
    d.chunks.pop_front();
    if (!chunk) {
      // Answered in place: its range of the held bytes becomes the answer's body.
      // In-place chunks are answered in order, so this one starts where the processed bytes
      // end.
      size_t sent = d.inplace_lens.empty() ? 0 : d.inplace_lens.front();
      if (!d.inplace_lens.empty()) d.inplace_lens.pop_front();
      d.inplace = d.inplace_lens.empty() ? 2 : 1;
      sy_str_t cur{};
      if (g_host->body_get(s_, d.dir, SY_BODY_BUFFERED, &cur) != SY_OK) cur = {};
      std::string_view all = V(cur);
      size_t at = std::min(d.inplace_done, all.size());
      size_t n = std::min(sent, all.size() - at);
      std::string_view out = all.substr(at, n);
      const auto& bm = c.body_mutation();
      if (c.has_body_mutation() && bm.has_body()) out = bm.body();
      if (c.has_body_mutation() && bm.has_clear_body()) out = {};
      if (out.data() != all.data() + at || out.size() != n) {
        std::string rebuilt;
        rebuilt.reserve(all.size() - n + out.size());
        rebuilt.append(all.substr(0, at)).append(out).append(all.substr(at + n));
        g_host->body_replace(s_, d.dir, SY_BODY_BUFFERED, S(rebuilt));
      }
      d.inplace_done = at + out.size();
      d.inplace_sent = d.inplace_sent + out.size() - n;
      return;
    }
    if (chunk) {
      d.inflight -= std::min(d.inflight, chunk->size());
      // A streamed chunk: its (processed) bytes go on after this filter now.
      const auto& bm = c.body_mutation();
      std::string_view out = *chunk;
      if (c.has_body_mutation() && bm.has_body()) out = bm.body();
      if (c.has_body_mutation() && bm.has_clear_body()) out = {};
      if (!out.empty()) g_host->inject_data(s_, d.dir, S(out), false);
      return;
    }
  }
  if (c.has_body_mutation() && (kind == Msg::kBody || replace) && d.held) {
    const auto& bm = c.body_mutation();
    std::string_view nb;
    bool apply = true;
    if (bm.has_body())
      nb = bm.body();
    else if (!bm.has_clear_body())
      apply = false;  // streamed_response belongs to FULL_DUPLEX_STREAMED
    if (apply && replace && d.header_end) {
      // A message without a body gets one: its held headers go on as the head of a message
      // with a body (chunked over HTTP/1.1), and the body follows them, whole.
      if (!nb.empty() && SY_HAS_SLOT(g_host, sy_host_t, continue_headers_with_body) &&
          g_host->continue_headers_with_body(s_, d.dir) == SY_OK) {
        d.held = false;
        d.headers_out = true;
        g_host->inject_data(s_, d.dir, S(nb), true);
      }
    } else if (apply) {
      // The bytes that were sent are replaced; anything after them (BUFFERED_PARTIAL's rest)
      // stays.
      size_t n = kind == Msg::kBody ? d.sent_body_len : SIZE_MAX;
      sy_str_t cur{};
      if (g_host->body_get(s_, d.dir, SY_BODY_BUFFERED, &cur) == SY_OK) {
        n = std::min(n, cur.len);
        if (n) g_host->body_drain(s_, d.dir, SY_BODY_BUFFERED, n);
      }
      if (!nb.empty()) g_host->body_prepend(s_, d.dir, SY_BODY_BUFFERED, S(nb));
    }
  }
  if (replace) {
    // Nothing more of this direction goes to the processor; its later data is dropped.
    d.replaced = true;
  }
}

void Filter::handle_immediate(const pb::ImmediateResponse& ir) {
  uint32_t status = ir.has_status() ? uint32_t(ir.status().code()) : 0;
  if (status < 200) status = 200;
  if (status > 599) status = 500;
  std::vector<std::pair<std::string, std::string>> headers;
  int rejected = 0;
  if (ir.has_headers()) immediate_headers(ir.headers(), cfg_->rules, &headers, &rejected);
  if (rejected) count(kRejectedHeaderMutations, rejected);
  if (ir.has_grpc_status())
    headers.emplace_back("grpc-status", std::to_string(ir.grpc_status().status()));
  std::string details = ir.details().empty() ? "ext_proc_immediate_response" : ir.details();
  for (char& c : details)
    if (c == ' ') c = '_';
  side_over_ = true;
  for (auto& d : d_) stop_timer(d);
  if (cs) {
    sy_callout_stream_t* c = cs;
    cs = nullptr;
    g_host->stream_callout_reset(c);
  }
  local_reply(status, headers, ir.body(), details);
}

void Filter::apply_mode_override(const pb::ProcessingResponse& r, Direction& d) {
  if (!cfg_->allow_mode_override || cfg_->send_body_without_waiting_for_header_response) return;
  const auto& o = r.mode_override();
  Mode m;
  m.request_header = o.request_header_mode();
  m.response_header = o.response_header_mode();
  m.request_body = o.request_body_mode();
  m.response_body = o.response_body_mode();
  m.request_trailer = o.request_trailer_mode();
  m.response_trailer = o.response_trailer_mode();
  if (!cfg_->allowed_override_modes.empty()) {
    bool listed = false;
    for (Mode a : cfg_->allowed_override_modes) {
      a.request_header = m.request_header;  // ignored in an override
      listed = listed || a == m;
    }
    if (!listed) return;
  }
  auto supported = [](int b) {
    return b == kNone || b == kStreamed || b == kBuffered || b == kBufferedPartial ||
           (b == kFullDuplex && SY_HAS_SLOT(g_host, sy_host_t, continue_headers_take_body));
  };
  if (!supported(m.request_body) || !supported(m.response_body)) return;
  if (d.dir == SY_REQUEST && !d_[0].body_sent) {
    d_[0].body_mode = m.request_body;
    d_[0].trailer_mode = m.request_trailer == kSend ? kSend : kSkip;
  }
  if (!d_[1].started) d_[1].header_mode = m.response_header == kSkip ? kSkip : kSend;
  if (!d_[1].body_sent) d_[1].body_mode = m.response_body;
  d_[1].trailer_mode = m.response_trailer == kSend ? kSend : kSkip;
}

void Filter::apply_dynamic_metadata(const google::protobuf::Struct& md) {
  for (const auto& [ns, value] : md.fields()) {
    const auto& allowed = *receiving_;
    if (std::find(allowed.begin(), allowed.end(), ns) == allowed.end()) continue;
    if (value.kind_case() != google::protobuf::Value::kStructValue) continue;
    if (SY_HAS_SLOT(g_host, sy_host_t, metadata_ns_merge)) {
      // Merged whole, so the values keep their JSON types (a number forwarded on is a
      // number), as Envoy's setDynamicMetadata merges the Struct.
      std::string json;
      to_json(value, &json);
      g_host->metadata_ns_merge(s_, S(ns), S(json));
      continue;
    }
    for (const auto& [key, v] : value.struct_value().fields()) {
      std::string json;
      to_json(v, &json);
      g_host->metadata_set(s_, S(ns), S(key), S(json));
    }
  }
}

}  // namespace extproc
