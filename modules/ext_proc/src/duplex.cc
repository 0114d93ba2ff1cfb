// FULL_DUPLEX_STREAMED. The headers go to the processor, and the body goes after them chunk by
// chunk as it arrives, without waiting for any answer; the processor answers the headers when
// it likes (after the whole body and the trailers, say) and then streams back any number of
// body chunks (body_mutation.streamed_response), the last with end_of_stream, or a trailers
// answer when the message has trailers. So the headers are held (SY_STOP_AND_WATERMARK) until
// their answer; then they go on without end of stream and the filter takes the body over
// (continue_headers_take_body, ABI 1.2): every original chunk still reaches the filter and goes
// to the processor, and the body the next hop gets is only the processor's chunks (injected).
//
// Flow control, both ways: a chunk is taken out of the host's hold only while the side stream
// takes more (stream_callout_send_data below its high watermark; on_writable says when it
// does again), so a slow processor leaves the bytes held and the host pauses the client at its
// watermark. The processor's chunks are injected toward a peer; while that peer's write buffer
// is above its watermark (on_watermark) the side stream's reading is paused.
// There is no message timeout in this mode (as Envoy); stream_idle_timeout bounds a stream on
// which nothing moves (504).
#include <algorithm>

#include "filter.h"
#include "mutation.h"

namespace extproc {
namespace {

// The largest body message sent at once: what the host holds may be up to its watermark plus a
// chunk.
constexpr size_t kMaxChunk = 1 << 20;

void take_fired(sy_stream_t*, void* arg) {
  auto* d = static_cast<Direction*>(arg);
  d->f->duplex_take(*d);
}

}  // namespace

bool Filter::duplex_wanted(const Direction& d, bool end_stream) const {
  return d.body_mode == kFullDuplex && !end_stream && !side_over_ && !ended_ &&
         SY_HAS_SLOT(g_host, sy_host_t, continue_headers_take_body);
}

sy_filter_status_t Filter::duplex_headers(Direction& d) {
  d.duplex = true;
  d.held = true;
  // The end of the body is the trailers when there are some: they always go (as Envoy's config
  // demands trailer mode SEND with this mode; an override may not have said so).
  d.trailer_mode = kSend;
  g_host->header_remove(s_, headers_kind(d), S("content-length"));
  in_callback_ = d.dir;
  if (d.header_mode == kSend)
    send_headers(d, false);
  else
    g_host->stream_timer(s_, 0, take_fired, nullptr, &d);
  in_callback_ = -1;
  if (ended_) return SY_STOP;
  duplex_idle(d);
  return SY_STOP_AND_WATERMARK;
}

void Filter::duplex_take(Direction& d) {
  if (ended_ || d.taken) return;
  if (side_over_) {
    release_if_ready(d);
    return;
  }
  pb::CommonResponse none;
  duplex_headers_answer(d, none);
}

sy_filter_status_t Filter::duplex_body(Direction& d, bool end_stream) {
  if (end_stream) d.body_end = true;
  in_callback_ = d.dir;
  duplex_flush(d);
  in_callback_ = -1;
  if (ended_) return SY_STOP;
  // Before the headers' answer and after it alike the chunk stays with the filter: what was
  // not sent yet waits in the host's hold (the client pauses at the watermark).
  return SY_STOP_AND_WATERMARK;
}

sy_filter_status_t Filter::duplex_trailers(Direction& d) {
  d.trailers_seen = true;
  in_callback_ = d.dir;
  duplex_flush(d);
  in_callback_ = -1;
  // The trailers wait for their answer (resume, in handle_response).
  return SY_STOP;
}

void Filter::duplex_flush(Direction& d) {
  while (!side_full_ && !ended_ && !side_over_ && !d.eos_sent) {
    sy_str_t held{};
    if (g_host->body_get(s_, d.dir, SY_BODY_BUFFERED, &held) != SY_OK) held = {};
    bool end = d.body_end && !d.trailers_seen;
    if (held.len == 0 && !end) break;
    size_t n = std::min(held.len, kMaxChunk);
    // A copy: the held bytes are drained before the send.
    std::string chunk(held.ptr, n);
    bool eos = end && n == held.len;
    Request req;
    req.set_body(d.dir, chunk, eos);
    if (n) g_host->body_drain(s_, d.dir, SY_BODY_BUFFERED, n);
    d.eos_sent = eos;
    d.sent_body_len += n;
    if (!send(d, Msg::kBody, req, false)) return;
  }
  if (ended_ || side_over_ || side_full_) return;
  sy_str_t held{};
  if (g_host->body_get(s_, d.dir, SY_BODY_BUFFERED, &held) != SY_OK) held = {};
  if (d.trailers_seen && !d.trailers_sent && held.len == 0) send_trailers(d);
  if (!ended_) duplex_idle(d);
}

void Filter::duplex_headers_answer(Direction& d, const pb::CommonResponse& c) {
  // The header mutation applies while the headers are still held. CONTINUE_AND_REPLACE's body
  // has no meaning here (the body is the processor's stream anyway): it counts as CONTINUE.
  pb::CommonResponse headers_only = c;
  headers_only.clear_body_mutation();
  headers_only.set_status(pb::CommonResponse::CONTINUE);
  handle_common(d, Msg::kHeaders, headers_only);
  if (ended_ || side_over_) return;
  g_host->header_remove(s_, headers_kind(d), S("content-length"));
  if (g_host->continue_headers_take_body(s_, d.dir) != SY_OK) {
    fail(500, "ext_proc_error_full_duplex_take_body", false);
    return;
  }
  d.taken = true;
  d.held = false;
  d.headers_out = true;
  // Whatever arrived meanwhile and is still held goes to the processor now (an override to
  // this mode leaves the whole body held, say).
  duplex_flush(d);
}

bool Filter::duplex_answer(Direction& d, Msg kind, const pb::ProcessingResponse& r) {
  if (kind != Msg::kBody) return false;
  // A body chunk: only after the headers' answer and before the end of the direction.
  // Otherwise it is out of order, which always fails the stream (Envoy's 500 in this mode).
  if (!d.taken || d.duplex_done) {
    count(kSpuriousMsgsReceived);
    fail(cfg_->status_on_error, "ext_proc_error_spurious_message", false);
    return true;
  }
  if (r.has_dynamic_metadata()) apply_dynamic_metadata(r.dynamic_metadata());
  const auto& c = d.dir == SY_REQUEST ? r.request_body().response() : r.response_body().response();
  const auto& bm = c.body_mutation();
  std::string_view data;
  bool eos = false;
  if (bm.has_streamed_response()) {
    data = bm.streamed_response().body();
    eos = bm.streamed_response().end_of_stream();
  } else if (bm.has_body()) {
    data = bm.body();  // lenient: a plain body is one more chunk
  }
  if (eos) d.duplex_done = true;
  if (!data.empty() || eos) g_host->inject_data(s_, d.dir, S(data), eos);
  if (ended_) return true;
  duplex_idle(d);
  close_if_done();
  return true;
}

void Filter::duplex_passthrough(Direction& d) {
  if (d.duplex_done || ended_) return;
  sy_str_t held{};
  if (g_host->body_get(s_, d.dir, SY_BODY_BUFFERED, &held) == SY_OK && held.len) {
    std::string copy(V(held));
    g_host->body_drain(s_, d.dir, SY_BODY_BUFFERED, copy.size());
    g_host->inject_data(s_, d.dir, S(copy), false);
  }
  if (d.trailers_seen) {
    d.duplex_done = true;
    g_host->resume(s_, d.dir);
  } else if (d.body_end) {
    d.duplex_done = true;
    g_host->inject_data(s_, d.dir, S(""), true);
  }
}

void Filter::duplex_idle(Direction& d) {
  if (d.duplex_done || side_over_ || ended_) {
    stop_timer(d);
    return;
  }
  start_timer(d, cfg_->stream_idle_timeout_ms);
}

void Filter::side_writable() {
  side_full_ = false;
  for (auto& d : d_)
    if (d.duplex && !ended_) duplex_flush(d);
}

void Filter::on_watermark(sy_direction_t dir, bool above) {
  write_above_[dir] = above;
  // Only the processor's own chunks fill a peer's buffer from the side stream.
  bool pause = (write_above_[0] && d_[0].duplex) || (write_above_[1] && d_[1].duplex);
  if (!cs || pause == paused_side_) return;
  paused_side_ = pause;
  g_host->stream_callout_pause_reading(cs, pause);
}

}  // namespace extproc
