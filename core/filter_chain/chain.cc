// FilterChain: the iteration rules of sy_filter_status_t, per direction and per filter.
//
// Why this file is over 600 lines: the rules are one state machine (holds, buffering, resume,
// inject, trailers and watermarks in two directions) whose steps call one another and share the
// per-filter state; split across files, each part would need the others' private state.
#include "core/filter_chain/chain.h"

#include <array>

#include "core/filter_chain/callout_host.h"
#include "core/filter_chain/stream_registry.h"
#include "core/log/log.h"
#include "core/stats/overload.h"

namespace sy::filters {

namespace {
const ModuleIdentity* identity_of(const ModuleScope* scope) {
  return scope ? scope->identity : nullptr;
}
}  // namespace

HttpFilterFactory::~HttpFilterFactory() {
  for (auto& [route, rc] : route_configs) {
    if (!rc.config || !vt->on_route_config_destroy) continue;
    ModuleCallMark mark(identity_of(scope), "on_route_config_destroy");
    vt->on_route_config_destroy(rc.config);
  }
  if (config && vt->on_config_destroy) {
    ModuleCallMark mark(identity_of(scope), "on_config_destroy");
    vt->on_config_destroy(config);
  }
}

NetworkFilterFactory::~NetworkFilterFactory() {
  if (config && vt->on_config_destroy) {
    ModuleCallMark mark(identity_of(scope), "on_config_destroy");
    vt->on_config_destroy(config);
  }
}

void FilterChain::start(const Factories& factories, const std::string& route_name,
                        int worker_index) {
  if (factories.empty()) return;
  id_worker_ = worker_index;
  add_filters(factories, route_name, 0);
}

// A worker starts and ends streams all the time: each chain with filters takes a vector an
// ended one left (cleared, its capacity kept) instead of allocating its own, and gives it back
// when it ends. Per thread, so no lock; a stream starts and ends on its worker's thread. A few
// are enough: a chain takes one when it starts and gives one back when it ends.
struct FilterChain::SpareEntries {
  std::array<std::vector<Entry>, 16> vectors;
  size_t count = 0;  // vectors[0, count) are spare (the rest were taken: empty)
};

// Inline: every stream with filters asks twice.
[[gnu::always_inline]] inline FilterChain::SpareEntries& FilterChain::spare_entries() {
  thread_local SpareEntries spare;
  return spare;
}

void FilterChain::add_filters(const Factories& factories, const std::string& route_name,
                              sy_stream_id_t id) {
  if (id) id_ = id;
  if (auto& spare = spare_entries(); spare.count)
    entries_ = std::move(spare.vectors[--spare.count]);
  // Reserved first, so the vector never moves while the filters are made: on_stream_create may
  // already use the handle, and current_ points into it.
  entries_.reserve(factories.size());
  for (const auto& f : factories) {
    void* route_config = nullptr;
    if (!f->route_configs.empty()) {
      auto rc = f->route_configs.find(route_name);
      if (rc != f->route_configs.end()) {
        if (rc->second.disabled) continue;  // per_filter: {disabled: true}
        route_config = rc->second.config;
      }
    }
    Entry& e = entries_.emplace_back();
    e.factory = f.get();
    e.route_config = route_config;
    f->scope->streams_active.fetch_add(1, std::memory_order_relaxed);
    const auto* vt = f->vt;
    if (vt->on_stream_create) {
      current_ = &e;
      ModuleCallMark mark(f->scope->identity, "on_stream_create");
      e.filter = vt->on_stream_create(f->config, handle());
      current_ = nullptr;
    }
    if (!e.filter) continue;
    headers_cb_[SY_REQUEST] = headers_cb_[SY_REQUEST] || vt->on_request_headers;
    headers_cb_[SY_RESPONSE] = headers_cb_[SY_RESPONSE] || vt->on_response_headers;
    // (on_stream_create may already have stepped out of a body with skip_body.)
    if (vt->on_request_body && !e.dir[SY_REQUEST].skip_body) ++body_filters_[SY_REQUEST];
    if (vt->on_response_body && !e.dir[SY_RESPONSE].skip_body) ++body_filters_[SY_RESPONSE];
  }
}

sy_stream_id_t FilterChain::published_id() {
  if (registry_ == Registry::kPrivate) {
    registry_ = Registry::kPublished;
    register_stream(id(), this, sink_->generations());
  }
  return id_;
}

FilterChain::~FilterChain() { destroy(); }

void FilterChain::destroy() {
  if (destroyed_) return;
  destroyed_ = true;
  unpublish();
  if (counted_bytes_[0] + counted_bytes_[1]) {
    stats::overload().buffered(-int64_t(counted_bytes_[0] + counted_bytes_[1]));
    counted_bytes_[0] = counted_bytes_[1] = 0;
  }
  // Only a filter can have opened a callout or set a timer.
  if (entries_.empty()) return;
  if (callouts_) end_stream_callouts(id());
  // Timers first: each is forgotten before its DROP runs, so a timer_cancel from the DROP or
  // from on_stream_destroy finds nothing and does nothing.
  while (!timers.empty()) {
    sy_drop_fn drop = timers.front().drop;
    void* arg = timers.front().arg;
    const ModuleIdentity* owner = timers.front().owner;
    timers.pop_front();
    if (drop) {
      ModuleCallMark mark(owner, "drop");
      drop(arg);
    }
  }
  for (auto& e : entries_) {
    if (e.filter && e.factory->vt->on_stream_destroy) {
      ModuleCallMark mark(e.factory->scope->identity, "on_stream_destroy");
      e.factory->vt->on_stream_destroy(e.filter);
    }
    e.factory->scope->streams_active.fetch_sub(1, std::memory_order_relaxed);
  }
  entries_.clear();
  if (auto& spare = spare_entries(); spare.count < spare.vectors.size())
    spare.vectors[spare.count++] = std::move(entries_);
  // on_stream_destroy has run: the handles kept for it go too.
  if (callouts_) free_stream_callouts(id());
}

void FilterChain::end() {
  complete();
  halt();
  unpublish();
  if (!entries_.empty() && callouts_) end_stream_callouts(id());
}

void FilterChain::complete() {
  if (completed_) return;
  if (depth_ > 0) {
    // Inside a filter callback (it sent a local reply): the ABI promises no other callback
    // runs before it returns, so completion waits for that.
    complete_pending_ = true;
    return;
  }
  completed_ = true;
  for (auto& e : entries_) {
    if (!e.filter || !e.factory->vt->on_stream_complete) continue;
    current_ = &e;
    ModuleCallMark mark(e.factory->scope->identity, "on_stream_complete");
    e.factory->vt->on_stream_complete(e.filter, handle());
  }
  current_ = nullptr;
}

sy_status_t FilterChain::skip_body(sy_direction_t dir) {
  if (!current_ || halted_) return SY_ERR_WRONG_PHASE;
  auto& d = current_->dir[dir];
  if (d.paused || d.buffering) return SY_ERR_WRONG_PHASE;
  // The filter leaves the count of body filters, if it is in it (it is once it has been made,
  // with a body callback of DIR, and had not stepped out before).
  const auto* vt = current_->factory->vt;
  if (!d.skip_body && current_->filter &&
      (dir == SY_REQUEST ? vt->on_request_body : vt->on_response_body))
    --body_filters_[dir];
  d.skip_body = true;
  return SY_OK;
}

bool FilterChain::any_holds(sy_direction_t dir) const {
  for (const auto& e : entries_)
    if (e.dir[dir].paused || e.dir[dir].buffering || e.dir[dir].owned) return true;
  return false;
}

inline FilterChain::Entry* FilterChain::entry_at(sy_direction_t dir, size_t k) {
  return dir == SY_REQUEST ? &entries_[k] : &entries_[entries_.size() - 1 - k];
}

void* FilterChain::current_route_config() const {
  return current_ ? current_->route_config : nullptr;
}

void FilterChain::add_pseudo(sy_direction_t dir) {
  pseudo_due_[dir] = false;
  pseudo_in_[dir] = true;
  std::vector<http::Header> pseudo;
  sink_->pseudo_headers(dir, pseudo);
  (dir == SY_REQUEST ? request_headers : response_headers).prepend(std::move(pseudo));
}

std::string* FilterChain::body(sy_direction_t dir, sy_body_part_t part, size_t** chunk_off) {
  // Only inside a body callback of that direction, or for the entry's held bytes in a task.
  if (cur_body_ && current_dir_ == dir) {
    *chunk_off = cur_chunk_off_;
    return cur_body_;
  }
  // Outside a body callback (e.g. a task after SY_STOP): the held body of the filter the task
  // acts for, else of the first paused one.
  if (current_ && (current_->dir[dir].paused || current_->dir[dir].buffering)) {
    *chunk_off = &current_->dir[dir].chunk_off;
    return &current_->dir[dir].held;
  }
  for (size_t k = 0; k < entries_.size(); ++k) {
    Entry* e = entry_at(dir, k);
    if (e->dir[dir].paused || e->dir[dir].buffering) {
      *chunk_off = &e->dir[dir].chunk_off;
      return &e->dir[dir].held;
    }
  }
  return nullptr;
}

void FilterChain::when_idle(std::function<void()> fn) {
  if (depth_ > 0) {
    idle_fn_ = std::move(fn);
    return;
  }
  fn();
}

namespace {
thread_local FilterChain* t_active = nullptr;
}

FilterChain* FilterChain::active() { return t_active; }

// Inline: every call into a filter makes one.
inline FilterChain::Scope::Scope(FilterChain* c)
    : chain(c),
      prev_active(t_active),
      current(c->current_),
      dir(c->current_dir_),
      body(c->cur_body_),
      chunk_off(c->cur_chunk_off_) {
  t_active = c;
  ++c->depth_;
}

inline FilterChain::Scope::~Scope() {
  chain->current_ = current;
  chain->current_dir_ = dir;
  chain->cur_body_ = body;
  chain->cur_chunk_off_ = chunk_off;
  t_active = prev_active;
  chain->leave();
}

const ModuleIdentity* FilterChain::module_at(uint32_t position) const {
  return position < entries_.size() ? entries_[position].factory->scope->identity : nullptr;
}

uint32_t FilterChain::current_position() const {
  if (!current_) return kNoFilter;
  return uint32_t(current_ - entries_.data());
}

bool FilterChain::attribute(std::string_view path, std::string* out) const {
  if (path == "plugin_name") {
    if (!current_) return false;
    *out = current_->factory->filter_name;
    return true;
  }
  return sink_->attribute(path, out);
}

void FilterChain::run_as(uint32_t position, const std::function<void()>& fn) {
  Scope scope(this);
  current_ = position < entries_.size() ? &entries_[position] : nullptr;
  cur_body_ = nullptr;
  cur_chunk_off_ = nullptr;
  fn();
}

void FilterChain::run_idle() {
  if (idle_fn_) {
    auto fn = std::move(idle_fn_);
    idle_fn_ = nullptr;
    fn();
  }
  if (depth_ == 0 && complete_pending_) {
    complete_pending_ = false;
    complete();
  }
}

// ---- calls into filters ----

// Inline into run_headers, its one caller: every filter's headers callback is called here.
[[gnu::always_inline]] inline sy_filter_status_t FilterChain::call_headers(sy_direction_t dir,
                                                                           Entry& e,
                                                                           bool end_stream) {
  auto fn =
      dir == SY_REQUEST ? e.factory->vt->on_request_headers : e.factory->vt->on_response_headers;
  if (!fn) return SY_CONTINUE;
  Scope scope(this);
  current_ = &e;
  current_dir_ = dir;
  cur_body_ = nullptr;
  cur_chunk_off_ = nullptr;
  ModuleCallMark mark(e.factory->scope->identity,
                      dir == SY_REQUEST ? "on_request_headers" : "on_response_headers");
  sy_filter_status_t st = fn(e.filter, handle(), end_stream);
  if (st != SY_CONTINUE) may_hold_[dir] = true;  // it may hold DIR now (holds())
  return st;
}

sy_filter_status_t FilterChain::call_body(sy_direction_t dir, Entry& e, bool end_stream) {
  auto fn = dir == SY_REQUEST ? e.factory->vt->on_request_body : e.factory->vt->on_response_body;
  if (!fn) return SY_CONTINUE;
  Scope scope(this);
  current_ = &e;
  current_dir_ = dir;
  cur_body_ = &e.dir[dir].held;
  cur_chunk_off_ = &e.dir[dir].chunk_off;
  ModuleCallMark mark(e.factory->scope->identity,
                      dir == SY_REQUEST ? "on_request_body" : "on_response_body");
  sy_filter_status_t st = fn(e.filter, handle(), end_stream);
  if (st != SY_CONTINUE) may_hold_[dir] = true;  // it may hold DIR now (holds())
  return st;
}

sy_filter_status_t FilterChain::call_trailers(sy_direction_t dir, Entry& e) {
  auto fn =
      dir == SY_REQUEST ? e.factory->vt->on_request_trailers : e.factory->vt->on_response_trailers;
  if (!fn) return SY_CONTINUE;
  Scope scope(this);
  current_ = &e;
  current_dir_ = dir;
  cur_body_ = nullptr;
  cur_chunk_off_ = nullptr;
  ModuleCallMark mark(e.factory->scope->identity,
                      dir == SY_REQUEST ? "on_request_trailers" : "on_response_trailers");
  sy_filter_status_t st = fn(e.filter, handle());
  if (st != SY_CONTINUE) may_hold_[dir] = true;  // it may hold DIR now (holds())
  return st;
}

// ---- iteration ----

// A phase no filter acts on goes straight on: no loop, no copy of the data. That is every
// phase of an empty chain (a listener without filters, or a route that disables them all),
// the headers of a direction whose filters have no headers callback, and body data that would
// pass every filter untouched (body_passthrough: no body callback, nothing held).
void FilterChain::decode_headers(bool end_stream) {
  pseudo_due_[SY_REQUEST] = true;
  if (!headers_cb_[SY_REQUEST]) {
    if (!stopped(SY_REQUEST)) emit_headers(SY_REQUEST, end_stream, ChainSink::kKeepLength);
    return;
  }
  run_headers(SY_REQUEST, 0, end_stream, ChainSink::kKeepLength);
}
void FilterChain::decode_data(std::string data, bool end_stream) {
  if (entries_.empty() || body_passthrough(SY_REQUEST)) {
    if (!stopped(SY_REQUEST)) emit_data(SY_REQUEST, data, end_stream);
    return;
  }
  run_data(SY_REQUEST, 0, std::move(data), end_stream);
}
void FilterChain::decode_trailers() { run_trailers(SY_REQUEST, 0); }
void FilterChain::encode_headers(bool end_stream) {
  response_entered_ = true;
  pseudo_due_[SY_RESPONSE] = true;
  if (!headers_cb_[SY_RESPONSE]) {
    if (!stopped(SY_RESPONSE)) emit_headers(SY_RESPONSE, end_stream, ChainSink::kKeepLength);
    return;
  }
  run_headers(SY_RESPONSE, 0, end_stream, ChainSink::kKeepLength);
}
void FilterChain::encode_data(std::string data, bool end_stream) {
  if (entries_.empty() || body_passthrough(SY_RESPONSE)) {
    if (!stopped(SY_RESPONSE)) emit_data(SY_RESPONSE, data, end_stream);
    return;
  }
  run_data(SY_RESPONSE, 0, std::move(data), end_stream);
}
void FilterChain::encode_trailers() { run_trailers(SY_RESPONSE, 0); }

void FilterChain::run_headers(sy_direction_t dir, size_t from, bool end_stream,
                              int64_t body_length) {
  for (size_t k = from; k < entries_.size() && !stopped(dir); ++k) {
    Entry& e = *entry_at(dir, k);
    if (!e.filter) continue;
    sy_filter_status_t st = call_headers(dir, e, end_stream);
    if (stopped(dir)) return;
    if (st == SY_CONTINUE) continue;
    auto& d = e.dir[dir];
    d.headers_held = true;
    d.headers_end = end_stream;
    if ((st == SY_STOP_AND_BUFFER || st == SY_STOP_AND_WATERMARK) && !end_stream) {
      d.buffering = true;
      d.watermark = st == SY_STOP_AND_WATERMARK;
    } else
      d.paused = true;
    return;
  }
  if (!stopped(dir)) emit_headers(dir, end_stream, body_length);
}

void FilterChain::run_data(sy_direction_t dir, size_t from, std::string data, bool end_stream) {
  for (size_t k = from; k < entries_.size() && !stopped(dir); ++k) {
    Entry& e = *entry_at(dir, k);
    if (!e.filter) continue;
    auto& d = e.dir[dir];
    if (d.owned) {
      // The filter owns this body: it sees every chunk and passes on only what it injects.
      if (d.owned_end) return;  // it has ended the direction: the rest is not wanted
      d.chunk_off = d.held.size();
      d.held += data;
      d.end_held = d.end_held || end_stream;
      bool has_body_cb =
          dir == SY_REQUEST ? e.factory->vt->on_request_body : e.factory->vt->on_response_body;
      if (has_body_cb) call_body(dir, e, end_stream);
      if (stopped(dir)) return;
      held_changed(dir);
      return;
    }
    if (d.paused) {
      d.held += data;
      d.end_held = d.end_held || end_stream;
      held_bytes_[dir] += data.size();
      held_changed(dir);
      return;
    }
    bool has_body_cb =
        !d.skip_body && (dir == SY_REQUEST ? e.factory->vt->on_request_body != nullptr
                                           : e.factory->vt->on_response_body != nullptr);
    if (!has_body_cb && !d.buffering) continue;  // nothing to call, nothing to hold
    // The filter sees [0, chunk_off) as what it buffered before and the rest as this chunk.
    d.chunk_off = d.held.size();
    held_bytes_[dir] += data.size();
    d.held += data;
    const size_t before = d.held.size();
    sy_filter_status_t st = call_body(dir, e, end_stream);
    if (stopped(dir)) return;
    if (d.owned) {  // it took the body over (continue_headers_take_body) in this callback
      d.end_held = d.end_held || end_stream;
      held_changed(dir);
      return;
    }
    // The filter may have drained or grown what it holds (body_drain, body_append, ...): keep
    // the count of held bytes true, or a drained chunk would stay counted and, past the high
    // watermark, pause the source for good.
    if (d.held.size() < before)
      held_bytes_[dir] -= std::min(held_bytes_[dir], before - d.held.size());
    else
      held_bytes_[dir] += d.held.size() - before;
    if (st == SY_CONTINUE) {
      std::string out;
      out.swap(d.held);
      held_bytes_[dir] -= std::min(held_bytes_[dir], out.size() + 0);
      d.chunk_off = 0;
      held_changed(dir);
      if (d.headers_held) {
        d.headers_held = false;
        d.buffering = false;
        // Everything held so far goes on with the headers; its length is known only at the end.
        run_headers(dir, k + 1, false,
                    end_stream ? int64_t(out.size()) : ChainSink::kUnknownLength);
        if (stopped(dir)) return;
      }
      d.buffering = false;
      d.watermark = false;
      run_data(dir, k + 1, std::move(out), end_stream);
      return;
    }
    // A watermark hold is bounded by pausing the peer instead of by the buffer limit.
    if (st != SY_STOP_AND_WATERMARK && over_limit(dir, d)) return;
    if (st == SY_STOP || end_stream) {
      d.paused = true;
      d.buffering = false;
      d.watermark = false;
      d.end_held = d.end_held || end_stream;
    } else {
      d.buffering = true;
      d.watermark = st == SY_STOP_AND_WATERMARK;
    }
    held_changed(dir);
    return;
  }
  if (!stopped(dir)) emit_data(dir, data, end_stream);
}

void FilterChain::run_trailers(sy_direction_t dir, size_t from) {
  for (size_t k = from; k < entries_.size() && !stopped(dir); ++k) {
    Entry& e = *entry_at(dir, k);
    if (!e.filter) continue;
    auto& d = e.dir[dir];
    if (d.owned) {
      // The filter owns the direction: it sees the trailers, which wait for its resume().
      // Held before the call, so a resume() from inside the callback sends them.
      if (d.owned_end) return;
      d.trailers_held = true;
      call_trailers(dir, e);
      return;
    }
    if (d.paused) {
      d.trailers_held = true;
      return;
    }
    sy_filter_status_t st = call_trailers(dir, e);
    if (stopped(dir)) return;
    if (d.owned) {  // it took the body over in this callback
      if (!d.owned_end) d.trailers_held = true;
      return;
    }
    if (d.buffering || st != SY_CONTINUE) {
      // A buffering filter that gets trailers has seen its whole body: it decides now.
      if (st == SY_CONTINUE) {
        release(dir, k);
        run_trailers(dir, k + 1);
        return;
      }
      d.paused = true;
      d.buffering = false;
      d.trailers_held = true;
      return;
    }
  }
  if (!stopped(dir)) emit_trailers(dir);
}

void FilterChain::release(sy_direction_t dir, size_t k) {
  Entry& e = *entry_at(dir, k);
  auto& d = e.dir[dir];
  d.paused = false;
  d.buffering = false;
  d.watermark = false;
  std::string data;
  data.swap(d.held);
  held_bytes_[dir] -= std::min(held_bytes_[dir], data.size());
  d.chunk_off = 0;
  bool end = d.end_held;
  bool trailers = d.trailers_held;
  d.end_held = false;
  d.trailers_held = false;
  held_changed(dir);
  if (d.headers_held) {
    d.headers_held = false;
    if (d.headers_end) {  // a message without body: only the headers were held
      run_headers(dir, k + 1, true, ChainSink::kKeepLength);
      return;
    }
    int64_t len = (end && !trailers) ? int64_t(data.size()) : ChainSink::kUnknownLength;
    run_headers(dir, k + 1, false, len);
    if (stopped(dir)) return;
  }
  if (!data.empty() || (end && !trailers)) run_data(dir, k + 1, std::move(data), end && !trailers);
  if (stopped(dir)) return;
  // Trailers wait for resume like the rest; a filter that held only trailers releases them now.
  if (trailers) run_trailers(dir, k + 1);
}

size_t FilterChain::index_of(sy_direction_t dir, const Entry* e) const {
  size_t i = size_t(e - entries_.data());
  return dir == SY_REQUEST ? i : entries_.size() - 1 - i;
}

sy_status_t FilterChain::resume(sy_direction_t dir) {
  if (stopped(dir)) return SY_ERR_STALE;
  // From a filter's callback or task: that filter's hold, if it has one.
  if (current_ && current_->dir[dir].owned) {
    if (current_->dir[dir].owned_end) return SY_ERR_WRONG_PHASE;
    end_owned(dir, index_of(dir, current_));
    return SY_OK;
  }
  if (current_ && (current_->dir[dir].paused || current_->dir[dir].buffering)) {
    if (cur_body_) return SY_ERR_WRONG_PHASE;  // return SY_CONTINUE instead
    release(dir, index_of(dir, current_));
    return SY_OK;
  }
  for (size_t k = 0; k < entries_.size(); ++k) {
    Entry& e = *entry_at(dir, k);
    if (e.dir[dir].owned) {
      if (e.dir[dir].owned_end) continue;
      end_owned(dir, k);
      return SY_OK;
    }
    if (e.dir[dir].paused || e.dir[dir].buffering) {
      if (current_ == &e && cur_body_) return SY_ERR_WRONG_PHASE;  // return SY_CONTINUE instead
      release(dir, k);
      return SY_OK;
    }
  }
  return SY_ERR_WRONG_PHASE;
}

void FilterChain::end_owned(sy_direction_t dir, size_t k) {
  auto& d = entry_at(dir, k)->dir[dir];
  d.owned_end = true;
  d.held.clear();  // what the filter did not take is not part of the message any more
  d.chunk_off = 0;
  bool trailers = d.trailers_held;
  d.trailers_held = false;
  d.end_held = false;
  held_changed(dir);
  if (trailers)
    run_trailers(dir, k + 1);
  else
    run_data(dir, k + 1, std::string(), true);
}

void FilterChain::watermark(sy_direction_t dir, bool above) {
  if (halted_ || write_above_[dir] == above) return;
  write_above_[dir] = above;
  for (auto& e : entries_) {
    if (!e.filter || !e.factory->vt->on_watermark) continue;
    Scope scope(this);
    current_ = &e;
    current_dir_ = dir;
    cur_body_ = nullptr;
    cur_chunk_off_ = nullptr;
    ModuleCallMark mark(e.factory->scope->identity, "on_watermark");
    e.factory->vt->on_watermark(e.filter, handle(), dir, above);
    if (halted_) return;
  }
}

sy_status_t FilterChain::continue_headers_with_body(sy_direction_t dir) {
  if (stopped(dir)) return SY_ERR_STALE;
  // Inside the filter's own headers callback nothing is held yet: that is WRONG_PHASE too.
  if (!current_) return SY_ERR_WRONG_PHASE;
  auto& d = current_->dir[dir];
  if (!d.headers_held || !d.headers_end) return SY_ERR_WRONG_PHASE;
  for (size_t k = 0; k < entries_.size(); ++k) {
    if (entry_at(dir, k) != current_) continue;
    d.headers_held = false;
    d.headers_end = false;
    d.paused = false;
    d.buffering = false;
    d.watermark = false;
    // The body comes from the filter's inject_data, after it: its length is not known yet.
    run_headers(dir, k + 1, false, ChainSink::kUnknownLength);
    return SY_OK;
  }
  return SY_ERR_WRONG_PHASE;
}

sy_status_t FilterChain::continue_headers_take_body(sy_direction_t dir) {
  if (stopped(dir)) return SY_ERR_STALE;
  // Inside the filter's own headers callback nothing is held yet: that is WRONG_PHASE too.
  if (!current_) return SY_ERR_WRONG_PHASE;
  auto& d = current_->dir[dir];
  if (!d.headers_held || d.owned) return SY_ERR_WRONG_PHASE;
  size_t k = index_of(dir, current_);
  // What the filter holds stays held, for it to take; an end of stream already seen is its
  // to pass on (with its last inject_data), as are trailers already held (with resume).
  d.end_held = d.end_held || d.headers_end;
  d.headers_held = false;
  d.headers_end = false;
  d.paused = false;
  d.buffering = true;
  d.watermark = true;
  d.owned = true;
  may_hold_[dir] = true;
  held_changed(dir);
  run_headers(dir, k + 1, false, ChainSink::kUnknownLength);
  return SY_OK;
}

sy_status_t FilterChain::inject(sy_direction_t dir, std::string_view data, bool end_stream) {
  if (halted_) return SY_ERR_STALE;
  // Injected data enters after the calling filter (the one a task or timer acts for), or at
  // the chain's start when no filter is calling.
  size_t from = 0;
  if (current_) {
    for (size_t k = 0; k < entries_.size(); ++k)
      if (entry_at(dir, k) == current_) from = k + 1;
  }
  if (!headers_out_[dir] && from >= entries_.size()) return SY_ERR_WRONG_PHASE;
  if (current_ && current_->dir[dir].owned) {
    auto& d = current_->dir[dir];
    if (d.owned_end) return SY_ERR_WRONG_PHASE;  // the filter already ended the direction
    if (end_stream) {
      // The filter's last piece: what it still holds, and trailers, are not part of it.
      d.owned_end = true;
      d.held.clear();
      d.chunk_off = 0;
      d.trailers_held = false;
      held_changed(dir);
    }
  }
  run_data(dir, from, std::string(data), end_stream);
  return SY_OK;
}

bool FilterChain::over_limit(sy_direction_t dir, Entry::Dir& d) {
  uint64_t limit = sink_->buffer_limit();
  if (limit == 0 || d.held.size() <= limit) return false;
  // The stream halts the chain as a local reply does: a 413 still meets the response filters
  // (as Envoy's does), a 500 replaces a response they have seen.
  bool replied = dir == SY_REQUEST ? sink_->local_reply_from_filter(
                                         413, {}, "request body too large for the filter buffer\n",
                                         "request_payload_too_large")
                                   : sink_->local_reply_from_filter(
                                         500, {}, "response body too large for the filter buffer\n",
                                         "response_payload_too_large");
  if (!replied) halted_ = true;  // too late for a reply: at least stop buffering
  return true;
}

void FilterChain::held_changed(sy_direction_t dir) {
  // A filter that buffers (SY_STOP_AND_BUFFER) needs the rest of the body to decide: pausing
  // the source would wait forever. Its buffer is bounded by the listener's buffered_body
  // limit instead (413/500). Held data behind SY_STOP waits for resume(): that is what the
  // watermarks hold back.
  // Held bodies count against the process-wide memory cap; only the change since the last
  // call is added, so the hot path pays one relaxed atomic per change.
  // Counted from the filters' holds, which body calls from tasks may have changed too.
  held_bytes_[dir] = 0;
  for (const auto& e : entries_) held_bytes_[dir] += e.dir[dir].held.size();
  if (held_bytes_[dir] != counted_bytes_[dir]) {
    stats::overload().buffered(int64_t(held_bytes_[dir]) - int64_t(counted_bytes_[dir]));
    counted_bytes_[dir] = held_bytes_[dir];
  }
  bool buffering = false;
  for (const auto& e : entries_)
    buffering = buffering || (e.dir[dir].buffering && !e.dir[dir].watermark);
  bool high = held_bytes_[dir] > net::Socket::kHighWatermark && !buffering;
  if (high && !source_paused_[dir]) {
    source_paused_[dir] = true;
    sink_->pause_source(dir);
  } else if (!high && source_paused_[dir] &&
             (buffering || held_bytes_[dir] < net::Socket::kLowWatermark)) {
    source_paused_[dir] = false;
    sink_->resume_source(dir);
  }
}

void FilterChain::emit_headers(sy_direction_t dir, bool end_stream, int64_t body_length) {
  headers_out_[dir] = true;
  if (body_length == ChainSink::kKeepLength && !end_stream && any_body_filter(dir))
    body_length = ChainSink::kUnknownLength;
  if (dir == SY_REQUEST)
    sink_->request_headers_out(end_stream, body_length);
  else
    sink_->response_headers_out(end_stream, body_length);
}

void FilterChain::emit_data(sy_direction_t dir, std::string& data, bool end_stream) {
  if (dir == SY_REQUEST)
    sink_->request_data_out(data, end_stream);
  else
    sink_->response_data_out(data, end_stream);
}

void FilterChain::emit_trailers(sy_direction_t dir) {
  if (dir == SY_REQUEST)
    sink_->request_trailers_out();
  else
    sink_->response_trailers_out();
}

}  // namespace sy::filters
