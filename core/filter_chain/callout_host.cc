// The 1.2 callout slots of the host table: streaming callouts (the handles modules hold and the
// delivery of their events), cancellable unary callouts, and stream reset.
#include "core/filter_chain/callout_host.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "config/http_syntax.h"
#include "core/filter_chain/chain.h"
#include "core/filter_chain/factory.h"

namespace sy::filters {
namespace {

CalloutServices g_callouts;

std::string_view sv(sy_str_t s) { return {s.ptr ? s.ptr : "", s.len}; }

// The one header rule of the config and the host table. OUT (empty) makes room for every
// header at once, and a name that is lower-case already (most are: ":method", "content-type",
// "te") is stored as it is, without a second pass to lower it: the map's own add_lowercase,
// as a filter's header_set uses.
bool to_map(const sy_header_t* headers, size_t n, http::HeaderMap* out) {
  if (n > 0 && !headers) return false;
  out->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string_view name = sv(headers[i].name), value = sv(headers[i].value);
    config::NameCheck check = config::check_header_name(name);
    if (check == config::NameCheck::kInvalid || !config::is_safe_header_value(value)) return false;
    if (check == config::NameCheck::kLowerCase)
      out->add_lowercase(name, value);
    else
      out->add(name, value);
  }
  return true;
}

// A streaming callout keeps the module's content-length (HTTP/1.1 then frames the body by it
// instead of chunking), so there must be at most one, a decimal number.
bool valid_length(const http::HeaderMap& h) {
  int seen = 0;
  for (const auto& x : h) {
    if (x.name != "content-length") continue;
    if (++seen > 1 || x.value.empty() || x.value.size() > 18 ||
        !std::all_of(x.value.begin(), x.value.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
  }
  return true;
}

std::vector<sy_header_t> to_views(const http::HeaderMap& h) {
  std::vector<sy_header_t> v;
  v.reserve(h.size());
  for (const auto& x : h)
    v.push_back({{x.name.data(), x.name.size()}, {x.value.data(), x.value.size()}});
  return v;
}

int worker_of(sy_stream_t* s, sy_worker_t* w) {
  return s ? FilterChain::from(s)->sink()->worker_index() : WorkerContext::from(w)->index;
}

// ---- streaming callouts ----

// What sy_callout_stream_t* points at. States: open (transport set); over (a terminal event
// was delivered or the module reset it: freed once no callback of it is on the stack); stale
// (its stream ended: kept, inert, until the stream's filters are destroyed).
class StreamHandle;
// Per worker thread: the open handles of each stream, so the stream's end can reach them.
thread_local std::unordered_map<sy_stream_id_t, std::vector<StreamHandle*>> t_by_stream;

class StreamHandle final : public CalloutEvents {
 public:
  StreamHandle(const sy_stream_callout_callbacks_t* cb, void* arg, FilterChain* chain,
               std::shared_ptr<const void> keep)
      : arg_(arg), chain_(chain), keep_(std::move(keep)) {
    // A module built against a later minor may pass a bigger struct; one built against an
    // earlier one a smaller struct: take the slots both know, the rest stay NULL.
    std::memcpy(&cb_, cb, std::min<size_t>(cb->size, sizeof(cb_)));
    cb_.size = sizeof(cb_);
    if (chain_) {
      stream_id_ = chain_->id();
      // The callbacks act for the filter that started the callout, as its tasks do.
      position_ = chain_->current_position();
      t_by_stream[stream_id_].push_back(this);
      chain_->callout_opened();
    }
    owner_ = current_module();
    if (!owner_ && chain_) owner_ = chain_->module_at(position_);
  }

  sy_callout_stream_t* handle() { return reinterpret_cast<sy_callout_stream_t*>(this); }
  static StreamHandle* from(sy_callout_stream_t* cs) { return reinterpret_cast<StreamHandle*>(cs); }

  void attach(CalloutTransport* t) { t_ = t; }
  bool stale() const { return stale_; }
  bool open() const { return t_ != nullptr; }
  bool request_done() const { return request_done_; }

  sy_status_t send_data(std::string_view data, bool end_stream) {
    if (stale_) return SY_ERR_STALE;
    if (!t_) return SY_ERR_WRONG_PHASE;
    if (request_done_) return SY_ERR_WRONG_PHASE;
    request_done_ = end_stream;
    return t_->send_data(data, end_stream) ? SY_ABOVE_HIGH_WATERMARK : SY_OK;
  }

  sy_status_t send_trailers(const http::HeaderMap& trailers) {
    if (stale_) return SY_ERR_STALE;
    if (!t_ || request_done_) return SY_ERR_WRONG_PHASE;
    request_done_ = true;
    return t_->send_trailers(trailers) ? SY_ABOVE_HIGH_WATERMARK : SY_OK;
  }

  sy_status_t pause_reading(bool paused) {
    if (stale_) return SY_ERR_STALE;
    if (!t_) return SY_ERR_WRONG_PHASE;
    t_->pause_reading(paused);
    return SY_OK;
  }

  // The module's reset: no callback after this returns.
  void reset() {
    if (stale_ || !t_) return;  // stale: the stream's end reset it; over: nothing to do
    CalloutTransport* t = t_;
    t_ = nullptr;
    t->reset();
    retire();
  }

  // The stream ended: reset silently and go stale.
  void end_with_stream() {
    stale_ = true;
    if (t_) {
      CalloutTransport* t = t_;
      t_ = nullptr;
      t->reset();
    }
  }

  // --- CalloutEvents ---
  void on_headers(const http::HeaderMap& headers, bool end_stream) override {
    if (!cb_.on_headers) return;
    // The callbacks' arguments go in one struct, so that each lambda below holds two pointers
    // and std::function keeps it inline instead of allocating it (one per message).
    struct Args {
      std::vector<sy_header_t> v;
      bool end;
    } a{to_views(headers), end_stream};
    deliver("callout on_headers",
            [this, &a] { cb_.on_headers(arg_, handle(), a.v.data(), a.v.size(), a.end); });
  }
  void on_data(std::string_view data, bool end_stream) override {
    if (!cb_.on_data) return;
    struct Args {
      sy_str_t data;
      bool end;
    } a{{data.data(), data.size()}, end_stream};
    deliver("callout on_data", [this, &a] { cb_.on_data(arg_, handle(), a.data, a.end); });
  }
  void on_trailers(const http::HeaderMap& trailers) override {
    if (!cb_.on_trailers) return;
    auto v = to_views(trailers);
    deliver("callout on_trailers", [&] { cb_.on_trailers(arg_, handle(), v.data(), v.size()); });
  }
  void on_writable() override {
    if (!cb_.on_writable) return;
    deliver("callout on_writable", [&] { cb_.on_writable(arg_, handle()); });
  }
  void on_complete() override {
    t_ = nullptr;  // the transport is done with us
    if (cb_.on_complete) deliver("callout on_complete", [&] { cb_.on_complete(arg_, handle()); });
    retire();
  }
  void on_failure(sy_callout_failure_t reason, const std::string& details) override {
    t_ = nullptr;
    if (cb_.on_failure)
      deliver("callout on_failure", [&] {
        cb_.on_failure(arg_, handle(), reason, {details.data(), details.size()});
      });
    retire();
  }

  // Frees a stale handle (its stream's filters are gone).
  void destroy_stale() { delete this; }

 private:
  // CALLBACK: the callback's name, for the crash marker.
  void deliver(const char* callback, const std::function<void()>& fn) {
    ++depth_;
    ModuleCallMark mark(owner_, callback);
    if (chain_)
      chain_->run_as(position_, fn);  // what it causes may end the stream, and this callout
    else
      fn();
    --depth_;
    if (depth_ == 0 && retired_ && !stale_) delete this;
  }

  // Over: leave the stream's list and go, once no callback of ours is on the stack. A stale
  // handle stays: its stream frees it.
  void retire() {
    if (retired_ || stale_) return;
    retired_ = true;
    if (chain_) {
      auto it = t_by_stream.find(stream_id_);
      if (it != t_by_stream.end()) {
        std::erase(it->second, this);
        if (it->second.empty()) t_by_stream.erase(it);
      }
    }
    if (depth_ == 0) delete this;
  }

  sy_stream_callout_callbacks_t cb_{};
  void* arg_;
  FilterChain* chain_;  // null for a callout started from a worker
  sy_stream_id_t stream_id_ = 0;
  uint32_t position_ = FilterChain::kNoFilter;
  const ModuleIdentity* owner_ = nullptr;  // the module whose callbacks these are
  std::shared_ptr<const void> keep_;       // the module's generation, for worker callouts
  CalloutTransport* t_ = nullptr;          // null once over or stale
  int depth_ = 0;
  bool retired_ = false;
  bool stale_ = false;
  bool request_done_ = false;
};

sy_status_t h_stream_callout_start(sy_stream_t* s, sy_worker_t* w, sy_str_t cluster,
                                   const sy_header_t* headers, size_t n, uint64_t timeout_ms,
                                   const sy_stream_callout_callbacks_t* cb, void* arg,
                                   sy_callout_stream_t** out) {
  if (!out || !cb || cb->size < sizeof(uint32_t) || (!s && !w) || (s && w) ||
      !g_callouts.start_stream)
    return SY_ERR_INVALID;
  http::HeaderMap h;
  if (!to_map(headers, n, &h) || !h.has(":method") || !h.has(":path") || !valid_length(h))
    return SY_ERR_INVALID;
  std::shared_ptr<const void> keep;
  FilterChain* chain = s ? FilterChain::from(s) : nullptr;
  // A stream's callouts end with it, and the stream holds the generation; a worker's may
  // outlive anything else of the module, so they hold it themselves.
  if (!chain) keep = WorkerContext::from(w)->keepalive;
  auto* handle = new StreamHandle(cb, arg, chain, std::move(keep));
  CalloutTransport* t = g_callouts.start_stream(worker_of(s, w), std::string(sv(cluster)),
                                                std::move(h), timeout_ms, handle);
  if (!t) {
    handle->end_with_stream();  // never attached: drop it without any callback
    if (chain) {
      auto& v = t_by_stream[chain->id()];
      std::erase(v, handle);
      if (v.empty()) t_by_stream.erase(chain->id());
    }
    handle->destroy_stale();
    return SY_ERR_NOT_FOUND;
  }
  handle->attach(t);
  *out = handle->handle();
  return SY_OK;
}

sy_status_t h_stream_callout_send_data(sy_callout_stream_t* cs, sy_str_t data, bool end_stream) {
  if (!cs) return SY_ERR_INVALID;
  return StreamHandle::from(cs)->send_data(sv(data), end_stream);
}

sy_status_t h_stream_callout_send_trailers(sy_callout_stream_t* cs, const sy_header_t* trailers,
                                           size_t n) {
  if (!cs) return SY_ERR_INVALID;
  http::HeaderMap t;
  if (!to_map(trailers, n, &t)) return SY_ERR_INVALID;
  return StreamHandle::from(cs)->send_trailers(t);
}

sy_status_t h_stream_callout_reset(sy_callout_stream_t* cs) {
  if (!cs) return SY_ERR_INVALID;
  StreamHandle::from(cs)->reset();
  return SY_OK;
}

sy_status_t h_stream_callout_pause_reading(sy_callout_stream_t* cs, bool paused) {
  if (!cs) return SY_ERR_INVALID;
  return StreamHandle::from(cs)->pause_reading(paused);
}

// ---- unary callouts with cancel ----

// What sy_callout_t* points at; shared by the reply callback, freed after both are done.
struct UnaryCallout {
  sy_callout_fn fn;
  void* arg;
  const ModuleIdentity* owner;  // the module that started it (crash marker)
  std::shared_ptr<const void> keep;
  std::function<void()> cancel;
  bool cancelled = false;
  bool replied = false;
};

sy_status_t h_http_callout_start(sy_stream_t* s, sy_worker_t* w, sy_str_t cluster,
                                 const sy_header_t* headers, size_t n, sy_str_t body,
                                 uint64_t timeout_ms, sy_callout_fn fn, void* arg,
                                 sy_callout_t** out) {
  if (!fn || (!s && !w) || !g_callouts.start_unary) return SY_ERR_INVALID;
  http::HeaderMap h;
  if (!to_map(headers, n, &h) || !h.has(":method") || !h.has(":path")) return SY_ERR_INVALID;
  auto c = std::make_shared<UnaryCallout>();
  c->fn = fn;
  c->arg = arg;
  c->owner = current_module();
  // The reply runs module code even after the stream ended: hold the generation until then.
  c->keep = s ? FilterChain::from(s)->sink()->generations() : WorkerContext::from(w)->keepalive;
  auto done = [c](const CalloutResult& r) {
    if (c->cancelled || c->replied) return;
    c->replied = true;
    auto hs = to_views(r.headers);
    auto ts = to_views(r.trailers);
    sy_callout_response_t resp{
        sizeof(sy_callout_response_t),  r.status,  hs.data(), hs.size(),
        {r.body.data(), r.body.size()}, ts.data(), ts.size(), {r.failure.data(), r.failure.size()}};
    {
      ModuleCallMark mark(c->owner, "callout reply");
      c->fn(c->arg, &resp);
    }
    c->cancel = nullptr;
  };
  c->cancel = g_callouts.start_unary(worker_of(s, w), std::string(sv(cluster)), std::move(h),
                                     std::string(sv(body)), timeout_ms, std::move(done));
  if (!c->cancel) return SY_ERR_NOT_FOUND;
  if (out) *out = reinterpret_cast<sy_callout_t*>(c.get());
  return SY_OK;
}

sy_status_t h_http_callout_cancel(sy_callout_t* handle) {
  if (!handle) return SY_ERR_INVALID;
  auto* c = reinterpret_cast<UnaryCallout*>(handle);
  if (c->cancelled || c->replied) return SY_ERR_STALE;
  c->cancelled = true;
  // The upstream side ends now; its completion finds the callout cancelled and calls nothing.
  // The callback holds C, so C outlives this call even if it is the last reference.
  auto cancel = std::move(c->cancel);
  if (cancel) cancel();
  return SY_OK;
}

// ---- stream reset ----

sy_status_t h_stream_reset(sy_stream_t* s, sy_str_t details) {
  if (!s) return SY_ERR_INVALID;
  return FilterChain::from(s)->sink()->reset_from_filter(std::string(sv(details))) ? SY_OK
                                                                                   : SY_ERR_STALE;
}

}  // namespace

void set_callout_services(CalloutServices services) { g_callouts = std::move(services); }

void install_callout_slots(sy_host_t* h) {
  h->stream_callout_start = h_stream_callout_start;
  h->stream_callout_send_data = h_stream_callout_send_data;
  h->stream_callout_send_trailers = h_stream_callout_send_trailers;
  h->stream_callout_reset = h_stream_callout_reset;
  h->stream_callout_pause_reading = h_stream_callout_pause_reading;
  h->http_callout_start = h_http_callout_start;
  h->http_callout_cancel = h_http_callout_cancel;
  h->stream_reset = h_stream_reset;
}

void end_stream_callouts(sy_stream_id_t id) {
  auto it = t_by_stream.find(id);
  if (it == t_by_stream.end()) return;
  // Resetting runs no module code, so the list cannot change underneath.
  for (StreamHandle* h : it->second) h->end_with_stream();
}

void free_stream_callouts(sy_stream_id_t id) {
  auto it = t_by_stream.find(id);
  if (it == t_by_stream.end()) return;
  std::vector<StreamHandle*> handles = std::move(it->second);
  t_by_stream.erase(it);
  for (StreamHandle* h : handles) {
    h->end_with_stream();
    h->destroy_stale();
  }
}

}  // namespace sy::filters
