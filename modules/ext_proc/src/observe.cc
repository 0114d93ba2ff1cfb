#include "observe.h"

#include "filter.h"
#include "wire.h"

namespace extproc {
namespace {

sy_worker_t* worker_of(const Config* cfg, int32_t index) {
  std::lock_guard<std::mutex> lock(cfg->workers.mu);
  auto it = cfg->workers.by_index.find(index);
  return it == cfg->workers.by_index.end() ? nullptr : it->second;
}

Observer* self(void* arg) { return static_cast<Observer*>(arg); }

void cb_headers(void*, sy_callout_stream_t*, const sy_header_t* h, size_t n, bool) {
  for (size_t i = 0; i < n; ++i)
    if (V(h[i].name) == ":status" && V(h[i].value) != "200") count(kHttpNotOkRespReceived);
}
// Answers are ignored in observability mode, as Envoy ignores them.
void cb_data(void*, sy_callout_stream_t*, sy_str_t, bool) {}
void cb_trailers(void* arg, sy_callout_stream_t*, const sy_header_t* h, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (V(h[i].name) == "grpc-status" && V(h[i].value) != "0") self(arg)->grpc_failed = true;
}
void cb_complete(void* arg, sy_callout_stream_t*) { self(arg)->ended(self(arg)->grpc_failed); }
void cb_failure(void* arg, sy_callout_stream_t*, sy_callout_failure_t, sy_str_t) {
  self(arg)->ended(true);
}
void cb_writable(void* arg, sy_callout_stream_t*) { self(arg)->writable(); }

const sy_stream_callout_callbacks_t kCallbacks = {sizeof(sy_stream_callout_callbacks_t),
                                                  cb_headers,
                                                  cb_data,
                                                  cb_trailers,
                                                  cb_complete,
                                                  cb_failure,
                                                  cb_writable};

void timer_fired(sy_worker_t*, void* arg) {
  self(arg)->timer = nullptr;
  self(arg)->close_now();
}
// The config left the worker (or the worker stops) before the timer fired: close now. A timer
// cancelled by ended() has been forgotten already, and ended() frees the observer itself.
void timer_dropped(void* arg) {
  if (!self(arg)->timer) return;
  self(arg)->timer = nullptr;
  self(arg)->close_now();
}

}  // namespace

void worker_started(const Config* cfg, sy_worker_t* w) {
  std::lock_guard<std::mutex> lock(cfg->workers.mu);
  cfg->workers.by_index[g_host->worker_index(w)] = w;
}

void worker_stopped(const Config* cfg, sy_worker_t* w) {
  std::lock_guard<std::mutex> lock(cfg->workers.mu);
  cfg->workers.by_index.erase(g_host->worker_index(w));
}

Observer* Observer::open(const Config* cfg, sy_stream_t* s, const GrpcTarget& target,
                         const std::vector<sy_header_t>& headers) {
  int32_t index = g_host->worker_index(g_host->stream_worker(s));
  auto* o = new Observer(cfg, index);
  sy_worker_t* w = worker_of(cfg, index);
  o->stream_owned_ = w == nullptr;
  sy_status_t st =
      g_host->stream_callout_start(w ? nullptr : s, w, S(target.cluster), headers.data(),
                                   headers.size(), target.timeout_ms, &kCallbacks, o, &o->cs_);
  if (st != SY_OK) {
    delete o;
    return nullptr;
  }
  return o;
}

bool Observer::send(std::string_view framed) {
  if (!cs_) return false;
  sy_status_t st = g_host->stream_callout_send_data(cs_, S(framed), false);
  if (st == SY_ABOVE_HIGH_WATERMARK) full_ = true;
  return st == SY_OK || st == SY_ABOVE_HIGH_WATERMARK;
}

void Observer::finish(uint64_t close_ms) {
  finished_ = true;
  if (!cs_) {
    delete this;
    return;
  }
  g_host->stream_callout_send_data(cs_, S(""), true);
  if (stream_owned_) {
    // The host resets a stream's callouts when the stream ends; nothing calls back after.
    delete this;
    return;
  }
  sy_worker_t* w = worker_of(cfg_, worker_);
  timer = w ? g_host->worker_timer_drop(w, close_ms, timer_fired, timer_dropped, this) : nullptr;
  if (!timer) close_now();
}

void Observer::ended(bool failed) {
  cs_ = nullptr;
  if (!counted_) {
    counted_ = true;
    count(failed ? kStreamsFailed : kStreamsClosed);
  }
  if (!finished_) return;  // the filter still holds the observer and frees it in finish()
  if (timer) {
    sy_timer_t* t = timer;
    timer = nullptr;  // so the DROP that timer_cancel runs leaves the observer alone
    g_host->timer_cancel(t);
  }
  delete this;
}

void Observer::close_now() {
  if (cs_) {
    sy_callout_stream_t* c = cs_;
    cs_ = nullptr;
    g_host->stream_callout_reset(c);
  }
  if (!counted_) {
    counted_ = true;
    count(kStreamsClosed);
  }
  delete this;
}

}  // namespace extproc

// ---- The filter's side of observability mode ---------------------------------------------

namespace extproc {

bool Filter::observe(Direction& d, Request& req) {
  if (!obs_opened_) {
    obs_opened_ = true;
    obs_ = Observer::open(cfg_, s_, target_, side_stream_headers());
    count(obs_ ? kStreamsStarted : kStreamsFailed);
  }
  if (!obs_) return false;  // the HTTP stream goes on regardless
  prepare(d, req.msg());
  req.msg().set_observability_mode(true);
  if (!obs_->send(Frame(req).view())) return false;
  count(kStreamMsgsSent);
  return true;
}

// Only STREAMED bodies are sent, chunk by chunk, as Envoy does; the other body modes would
// have to hold the body, which observability mode never does, so nothing of it is sent.
sy_filter_status_t Filter::observe_body(Direction& d, bool end_stream) {
  if (d.body_mode != kStreamed) return SY_CONTINUE;
  sy_str_t chunk{};
  if (g_host->body_get(s_, d.dir, SY_BODY_CHUNK, &chunk) != SY_OK) chunk = {};
  if (chunk.len == 0 && !end_stream) return SY_CONTINUE;
  if (obs_ && obs_->full() && chunk.len) {
    // The processor is not keeping up: drop this chunk rather than queue it (observe.h). The
    // end of the body still goes, as an empty chunk, so the processor sees the body end.
    count(kStreamMsgsDropped);
    if (!end_stream) return SY_CONTINUE;
    chunk = {};
  }
  Request req;
  req.set_body(d.dir, V(chunk), end_stream);
  send(d, Msg::kBody, req);
  return SY_CONTINUE;
}

}  // namespace extproc
