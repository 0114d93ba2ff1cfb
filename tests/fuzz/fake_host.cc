// The in-memory host of fake_host.h. Every slot of the 1.2 table is filled, so a module that
// calls something the target did not expect gets an answer (mostly SY_ERR_UNSUPPORTED), never a
// null function pointer.
#include "tests/fuzz/fake_host.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "tests/fuzz/fuzz_check.h"

namespace fuzzhost {
namespace {

State g_state;

std::string_view V(sy_str_t s) {
  return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}
sy_str_t S(const std::string& s) { return {s.data(), s.size()}; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Fields* block(sy_stream_t* s, sy_header_kind_t kind) {
  FUZZ_CHECK(s == stream_handle());
  FUZZ_CHECK(kind >= SY_REQUEST_HEADERS && kind <= SY_RESPONSE_TRAILERS);
  return &g_state.stream.headers[kind];
}

std::string* body(sy_stream_t* s, sy_direction_t dir, size_t** off) {
  FUZZ_CHECK(s == stream_handle());
  FUZZ_CHECK(dir == SY_REQUEST || dir == SY_RESPONSE);
  *off = &g_state.stream.off[dir];
  return &g_state.stream.buf[dir];
}

StreamCallout* callout(sy_callout_stream_t* cs) {
  for (auto& c : g_state.callouts)
    if (reinterpret_cast<sy_callout_stream_t*>(c.get()) == cs) return c.get();
  FUZZ_CHECK(!"a streaming callout handle the host never gave out");
  return nullptr;
}

void log(sy_module_t*, sy_log_level_t, sy_str_t) {}
bool log_enabled(sy_log_level_t) { return false; }

size_t header_count(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name) {
  Fields* b = block(s, kind);
  if (!name.len) return b->size();
  std::string n = lower(V(name));
  return std::count_if(b->begin(), b->end(), [&](const auto& f) { return f.first == n; });
}

sy_status_t header_get(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name, size_t index,
                       sy_str_t* value) {
  std::string n = lower(V(name));
  for (const auto& f : *block(s, kind))
    if (f.first == n && index-- == 0) {
      *value = S(f.second);
      return SY_OK;
    }
  return SY_ERR_NOT_FOUND;
}

sy_status_t header_at(sy_stream_t* s, sy_header_kind_t kind, size_t index, sy_str_t* name,
                      sy_str_t* value) {
  Fields* b = block(s, kind);
  if (index >= b->size()) return SY_ERR_NOT_FOUND;
  *name = S((*b)[index].first);
  *value = S((*b)[index].second);
  return SY_OK;
}

// The real host refuses names and values that cannot go on the wire; so does this one, so a
// module's own validation is what the fuzzer exercises and a gap in it shows as SY_ERR_INVALID.
bool valid_field(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name)
    if (c <= ' ' || c == 0x7f || (c >= 'A' && c <= 'Z')) return false;
  for (char c : value)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

sy_status_t header_remove(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name) {
  Fields* b = block(s, kind);
  std::string n = lower(V(name));
  std::erase_if(*b, [&](const auto& f) { return f.first == n; });
  return SY_OK;
}

sy_status_t header_add(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name, sy_str_t value) {
  std::string n = lower(V(name));
  if (!valid_field(n, V(value))) return SY_ERR_INVALID;
  block(s, kind)->emplace_back(n, std::string(V(value)));
  return SY_OK;
}

sy_status_t header_set(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name, sy_str_t value) {
  if (!valid_field(lower(V(name)), V(value))) return SY_ERR_INVALID;
  header_remove(s, kind, name);
  return header_add(s, kind, name, value);
}

// The body calls behave as core/filter_chain/host.cc's: the chunk is the buffer's tail.
sy_status_t body_get(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, sy_str_t* out) {
  size_t* off;
  std::string* b = body(s, dir, &off);
  size_t start = part == SY_BODY_CHUNK ? std::min(*off, b->size()) : 0;
  *out = {b->data() + start, b->size() - start};
  return SY_OK;
}
sy_status_t body_replace(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, sy_str_t d) {
  size_t* off;
  std::string* b = body(s, dir, &off);
  if (part == SY_BODY_CHUNK) {
    b->replace(std::min(*off, b->size()), std::string::npos, V(d));
  } else {
    b->assign(V(d));
    *off = 0;
  }
  return SY_OK;
}
sy_status_t body_append(sy_stream_t* s, sy_direction_t dir, sy_body_part_t, sy_str_t d) {
  size_t* off;
  body(s, dir, &off)->append(V(d));
  return SY_OK;
}
sy_status_t body_prepend(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, sy_str_t d) {
  size_t* off;
  std::string* b = body(s, dir, &off);
  if (part == SY_BODY_CHUNK) {
    b->insert(std::min(*off, b->size()), V(d));
  } else {
    b->insert(0, V(d));
    *off += d.len;
  }
  return SY_OK;
}
sy_status_t body_drain(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, size_t n) {
  size_t* off;
  std::string* b = body(s, dir, &off);
  if (part == SY_BODY_CHUNK) {
    b->erase(std::min(*off, b->size()), n);
  } else {
    size_t k = std::min(n, b->size());
    b->erase(0, k);
    *off = *off > k ? *off - k : 0;
  }
  return SY_OK;
}
sy_status_t inject_data(sy_stream_t* s, sy_direction_t dir, sy_str_t d, bool) {
  FUZZ_CHECK(s == stream_handle());
  if (g_state.stream.ended) return SY_ERR_STALE;
  g_state.stream.passed[dir].append(V(d));
  return SY_OK;
}

sy_status_t resume(sy_stream_t* s, sy_direction_t dir) {
  FUZZ_CHECK(s == stream_handle());
  Stream& st = g_state.stream;
  if (st.ended) return SY_ERR_STALE;
  st.paused[dir] = st.held_headers[dir] = false;
  st.passed[dir] += st.buf[dir];
  st.buf[dir].clear();
  st.off[dir] = 0;
  return SY_OK;
}

sy_status_t send_local_reply(sy_stream_t* s, uint32_t status, const sy_header_t* h, size_t n,
                             sy_str_t, sy_str_t) {
  FUZZ_CHECK(s == stream_handle());
  Stream& st = g_state.stream;
  if (st.ended) return SY_ERR_STALE;
  if (status < 200 || status > 599) return SY_ERR_INVALID;
  for (size_t i = 0; i < n; ++i)
    if (!valid_field(lower(V(h[i].name)), V(h[i].value))) return SY_ERR_INVALID;
  st.ended = true;
  st.local_status = status;
  return SY_OK;
}

sy_status_t stream_reset(sy_stream_t* s, sy_str_t) {
  FUZZ_CHECK(s == stream_handle());
  if (g_state.stream.ended) return SY_ERR_STALE;
  g_state.stream.ended = g_state.stream.reset = true;
  return SY_OK;
}

sy_stream_id_t stream_id(sy_stream_t*) { return 1; }
sy_worker_t* stream_worker(sy_stream_t*) { return reinterpret_cast<sy_worker_t*>(&g_state); }

sy_status_t post_to_stream(sy_stream_id_t id, sy_stream_task_fn fn, sy_drop_fn drop, void* arg) {
  if (id != 1) return SY_ERR_NOT_FOUND;
  g_state.tasks.push_back({fn, drop, arg});
  return SY_OK;
}
sy_status_t post_to_filter(sy_stream_id_t id, uint32_t, sy_stream_task_fn fn, sy_drop_fn drop,
                           void* arg) {
  return post_to_stream(id, fn, drop, arg);
}
sy_status_t post_to_worker(int32_t, sy_worker_task_fn, void*) { return SY_ERR_UNSUPPORTED; }
sy_status_t post_to_worker_drop(int32_t, sy_worker_task_fn, sy_drop_fn, void*) {
  return SY_ERR_UNSUPPORTED;
}
uint32_t worker_count() { return 1; }
int32_t worker_index(sy_worker_t*) { return 0; }

sy_timer_t* stream_timer(sy_stream_t* s, uint64_t, sy_stream_task_fn fn, sy_drop_fn drop,
                         void* arg) {
  FUZZ_CHECK(s == stream_handle());
  g_state.timers.push_back(std::make_unique<Timer>(Timer{fn, drop, arg, false}));
  return reinterpret_cast<sy_timer_t*>(g_state.timers.back().get());
}
sy_timer_t* worker_timer(sy_worker_t*, uint64_t, sy_worker_task_fn, void*) { return nullptr; }
sy_timer_t* worker_timer_drop(sy_worker_t*, uint64_t, sy_worker_task_fn, sy_drop_fn, void*) {
  return nullptr;
}
void timer_cancel(sy_timer_t* t) {
  for (auto& x : g_state.timers)
    if (reinterpret_cast<sy_timer_t*>(x.get()) == t) {
      if (x->over) return;  // since 1.2 a spent timer is simply unknown
      x->over = true;
      if (x->drop) x->drop(x->arg);
      return;
    }
  FUZZ_CHECK(!"a timer handle the host never gave out");
}

sy_status_t http_callout(sy_stream_t*, sy_worker_t*, sy_str_t, const sy_header_t*, size_t, sy_str_t,
                         uint64_t, sy_callout_fn, void*) {
  return SY_ERR_UNSUPPORTED;
}
sy_status_t cluster_endpoint(sy_str_t, size_t, sy_bytes_sink_fn, void*) { return SY_ERR_NOT_FOUND; }

sy_status_t metadata_set(sy_stream_t* s, sy_str_t, sy_str_t, sy_str_t) {
  FUZZ_CHECK(s == stream_handle());
  return SY_OK;
}
sy_status_t metadata_get(sy_stream_t*, sy_str_t, sy_str_t, sy_str_t*) { return SY_ERR_NOT_FOUND; }
sy_status_t filter_state_set(sy_stream_t*, sy_str_t, sy_str_t) { return SY_OK; }
sy_status_t filter_state_get(sy_stream_t*, sy_str_t, sy_str_t*) { return SY_ERR_NOT_FOUND; }

sy_status_t attribute_get(sy_stream_t* s, sy_str_t path, sy_str_t* value) {
  FUZZ_CHECK(s == stream_handle());
  auto it = g_state.stream.attributes.find(std::string(V(path)));
  if (it == g_state.stream.attributes.end()) return SY_ERR_NOT_FOUND;
  g_state.scratch = it->second;
  *value = S(g_state.scratch);
  return SY_OK;
}

sy_status_t clear_route_cache(sy_stream_t*) { return SY_OK; }
sy_status_t set_upstream_override_host(sy_stream_t*, sy_str_t) { return SY_OK; }
void* route_config(sy_stream_t*) { return g_state.stream.route_config; }

sy_status_t metric_define(sy_module_t*, sy_metric_kind_t, sy_str_t, const sy_label_t*, size_t,
                          uint32_t* id) {
  *id = 0;
  return SY_OK;
}
sy_status_t metric_add(sy_module_t*, uint32_t, int64_t) { return SY_OK; }
sy_status_t metric_set(sy_module_t*, uint32_t, int64_t) { return SY_OK; }
sy_status_t metric_record(sy_module_t*, uint32_t, uint64_t) { return SY_OK; }
sy_status_t metric_get(sy_module_t*, uint32_t, int64_t* v) {
  *v = 0;
  return SY_OK;
}

sy_status_t shared_get(sy_str_t, sy_bytes_sink_fn, void*) { return SY_ERR_NOT_FOUND; }
sy_status_t shared_set(sy_str_t, sy_str_t, uint64_t) { return SY_ERR_UNSUPPORTED; }
sy_status_t queue_register(sy_module_t*, sy_worker_t*, sy_str_t, uint32_t*) {
  return SY_ERR_UNSUPPORTED;
}
sy_status_t queue_resolve(sy_str_t, uint32_t*) { return SY_ERR_NOT_FOUND; }
sy_status_t queue_enqueue(uint32_t, sy_str_t) { return SY_ERR_NOT_FOUND; }
sy_status_t queue_dequeue(uint32_t, sy_bytes_sink_fn, void*) { return SY_ERR_NOT_FOUND; }

sy_status_t conn_data_get(sy_conn_t*, sy_direction_t, sy_str_t*) { return SY_ERR_UNSUPPORTED; }
sy_status_t conn_data_replace(sy_conn_t*, sy_direction_t, sy_str_t) { return SY_ERR_UNSUPPORTED; }
sy_status_t conn_inject(sy_conn_t*, sy_direction_t, sy_str_t) { return SY_ERR_UNSUPPORTED; }
sy_status_t conn_close(sy_conn_t*) { return SY_ERR_UNSUPPORTED; }
sy_status_t conn_attribute_get(sy_conn_t*, sy_str_t, sy_str_t*) { return SY_ERR_UNSUPPORTED; }

sy_status_t skip_body(sy_stream_t* s, sy_direction_t) {
  FUZZ_CHECK(s == stream_handle());
  return SY_OK;
}
uint32_t filter_index(sy_stream_t*) { return 0; }

sy_status_t stream_callout_start(sy_stream_t* s, sy_worker_t*, sy_str_t cluster,
                                 const sy_header_t* h, size_t n, uint64_t,
                                 const sy_stream_callout_callbacks_t* cb, void* arg,
                                 sy_callout_stream_t** out) {
  FUZZ_CHECK(s == stream_handle());
  if (!cluster.len) return SY_ERR_NOT_FOUND;
  bool method = false, path = false;
  for (size_t i = 0; i < n; ++i) {
    method |= V(h[i].name) == ":method";
    path |= V(h[i].name) == ":path";
  }
  if (!method || !path) return SY_ERR_INVALID;
  auto c = std::make_unique<StreamCallout>();
  c->cb = cb;
  c->arg = arg;
  *out = reinterpret_cast<sy_callout_stream_t*>(c.get());
  g_state.callouts.push_back(std::move(c));
  return SY_OK;
}
sy_status_t stream_callout_send_data(sy_callout_stream_t* cs, sy_str_t data, bool end_stream) {
  StreamCallout* c = callout(cs);
  if (c->over) return SY_ERR_STALE;
  if (c->request_ended) return SY_ERR_WRONG_PHASE;
  c->sent.append(V(data));
  c->request_ended = end_stream;
  return SY_OK;
}
sy_status_t stream_callout_send_trailers(sy_callout_stream_t* cs, const sy_header_t*, size_t) {
  StreamCallout* c = callout(cs);
  if (c->over) return SY_ERR_STALE;
  if (c->request_ended) return SY_ERR_WRONG_PHASE;
  c->request_ended = true;
  return SY_OK;
}
sy_status_t stream_callout_reset(sy_callout_stream_t* cs) {
  callout(cs)->over = true;
  return SY_OK;
}
sy_status_t stream_callout_pause_reading(sy_callout_stream_t* cs, bool) {
  return callout(cs)->over ? SY_ERR_STALE : SY_OK;
}

sy_status_t http_callout_start(sy_stream_t* s, sy_worker_t*, sy_str_t cluster, const sy_header_t* h,
                               size_t n, sy_str_t b, uint64_t, sy_callout_fn fn, void* arg,
                               sy_callout_t** out) {
  FUZZ_CHECK(s == stream_handle());
  if (!cluster.len) return SY_ERR_NOT_FOUND;
  auto c = std::make_unique<UnaryCallout>();
  c->fn = fn;
  c->arg = arg;
  for (size_t i = 0; i < n; ++i) c->headers.emplace_back(V(h[i].name), V(h[i].value));
  c->body.assign(V(b));
  if (out) *out = reinterpret_cast<sy_callout_t*>(c.get());
  g_state.unary.push_back(std::move(c));
  return SY_OK;
}
sy_status_t http_callout_cancel(sy_callout_t* cs) {
  for (auto& c : g_state.unary)
    if (reinterpret_cast<sy_callout_t*>(c.get()) == cs) {
      FUZZ_CHECK(!c->over);  // the ABI: not with a handle whose FN has run
      c->over = true;
      return SY_OK;
    }
  FUZZ_CHECK(!"an HTTP callout handle the host never gave out");
  return SY_ERR_INVALID;
}

sy_status_t metadata_ns_set(sy_stream_t* s, sy_str_t ns, sy_str_t object) {
  FUZZ_CHECK(s == stream_handle());
  if (!ns.len || !object.len || object.ptr[0] != '{') return SY_ERR_INVALID;
  g_state.stream.metadata[std::string(V(ns))] = std::string(V(object));
  return SY_OK;
}
sy_status_t metadata_ns_get(sy_stream_t* s, sy_metadata_source_t source, sy_str_t ns,
                            sy_str_t* out) {
  FUZZ_CHECK(s == stream_handle());
  if (source != SY_METADATA_DYNAMIC) return SY_ERR_NOT_FOUND;
  auto it = g_state.stream.metadata.find(std::string(V(ns)));
  if (it == g_state.stream.metadata.end()) return SY_ERR_NOT_FOUND;
  *out = S(it->second);
  return SY_OK;
}
sy_status_t attribute_get_typed(sy_stream_t*, sy_str_t, sy_value_t*) { return SY_ERR_NOT_FOUND; }
uint64_t buffer_limit(sy_stream_t*) { return g_state.stream.buffer_limit; }
sy_status_t continue_headers_with_body(sy_stream_t* s, sy_direction_t dir) {
  FUZZ_CHECK(s == stream_handle());
  if (g_state.stream.ended) return SY_ERR_STALE;
  g_state.stream.paused[dir] = g_state.stream.held_headers[dir] = false;
  return SY_OK;
}
sy_status_t module_config(sy_module_t*, sy_str_t* out) {
  *out = {"{}", 2};
  return SY_OK;
}
sy_status_t post_to_main(sy_main_task_fn, sy_drop_fn, void*) { return SY_ERR_UNSUPPORTED; }
sy_status_t set_response_flag(sy_stream_t* s, sy_str_t) {
  FUZZ_CHECK(s == stream_handle());
  return g_state.stream.ended ? SY_ERR_STALE : SY_OK;
}

const sy_host_t kHost = {
    sizeof(sy_host_t),
    SY_ABI_MAJOR,
    SY_ABI_MINOR,
    log,
    log_enabled,
    header_count,
    header_get,
    header_at,
    header_set,
    header_add,
    header_remove,
    body_get,
    body_replace,
    body_append,
    body_prepend,
    body_drain,
    inject_data,
    resume,
    send_local_reply,
    stream_id,
    stream_worker,
    post_to_stream,
    post_to_worker,
    worker_count,
    worker_index,
    stream_timer,
    worker_timer,
    timer_cancel,
    http_callout,
    cluster_endpoint,
    metadata_set,
    metadata_get,
    filter_state_set,
    filter_state_get,
    attribute_get,
    clear_route_cache,
    set_upstream_override_host,
    route_config,
    metric_define,
    metric_add,
    metric_set,
    metric_record,
    metric_get,
    shared_get,
    shared_set,
    queue_register,
    queue_resolve,
    queue_enqueue,
    queue_dequeue,
    conn_data_get,
    conn_data_replace,
    conn_inject,
    conn_close,
    conn_attribute_get,
    skip_body,
    post_to_worker_drop,
    worker_timer_drop,
    filter_index,
    post_to_filter,
    stream_callout_start,
    stream_callout_send_data,
    stream_callout_send_trailers,
    stream_callout_reset,
    stream_callout_pause_reading,
    http_callout_start,
    http_callout_cancel,
    stream_reset,
    metadata_ns_set,
    metadata_ns_set,  // metadata_ns_merge: replacing is enough for the fuzz targets
    metadata_ns_get,
    attribute_get_typed,
    buffer_limit,
    continue_headers_with_body,
    module_config,
    post_to_main,
    set_response_flag,
};

}  // namespace

const sy_host_t* host() { return &kHost; }
State& state() { return g_state; }
sy_stream_t* stream_handle() { return reinterpret_cast<sy_stream_t*>(&g_state.stream); }

void begin() {
  for (auto& t : g_state.timers) FUZZ_CHECK(t->over);
  FUZZ_CHECK(g_state.tasks.empty());
  g_state.stream = Stream{};
  g_state.callouts.clear();
  g_state.unary.clear();
  g_state.timers.clear();
}

void end_stream() {
  // Unary callouts are not the host's to end: their FN runs even after the stream ended, so a
  // filter that goes away must have cancelled its own (see fuzz_one_stream).
  for (auto& c : g_state.callouts) c->over = true;
  for (auto& t : g_state.timers)
    if (!t->over) {
      t->over = true;
      if (t->drop) t->drop(t->arg);
    }
  while (!g_state.tasks.empty()) {
    Task t = g_state.tasks.front();
    g_state.tasks.pop_front();
    if (t.drop) t.drop(t.arg);
  }
}

StreamCallout* open_callout() {
  for (auto it = g_state.callouts.rbegin(); it != g_state.callouts.rend(); ++it)
    if (!(*it)->over) return it->get();
  return nullptr;
}

bool fire_timer() {
  for (auto& t : g_state.timers)
    if (!t->over) {
      t->over = true;
      t->fn(stream_handle(), t->arg);
      return true;
    }
  return false;
}

bool run_task() {
  if (g_state.tasks.empty()) return false;
  Task t = g_state.tasks.front();
  g_state.tasks.pop_front();
  t.fn(stream_handle(), t.arg);
  return true;
}

const sy_http_filter_t* load(sy_module_entry_fn entry, void** module_data) {
  static int module_token;
  auto* module = reinterpret_cast<sy_module_t*>(&module_token);
  const sy_module_descriptor_t* d = entry(&kHost, module);
  if (!d) return nullptr;
  sy_error_t err{};
  *module_data = nullptr;
  if (d->on_load && !d->on_load(module, module_data, &err)) return nullptr;
  return d->http_filters ? d->http_filters[0] : nullptr;
}

}  // namespace fuzzhost
