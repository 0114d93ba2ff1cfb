// The host function table: what modules call. Stream functions work on a FilterChain;
// module-wide ones (logs, metrics) on a ModuleScope; the rest on process-wide state. What the
// thunks stand on lives elsewhere: the stream registry (stream_registry.cc), worker contexts
// (worker_context.cc), module scopes (module_scope.cc), timers, callouts, metadata and shared
// data in their own files.
//
// Why this file is over 600 lines: it is the host table, one short thunk for each of the
// functions of sy_host_t it fills (the 1.2 callout and metadata slots are filled by their own
// files). The thunks only check arguments and forward; splitting them further by theme would
// scatter the table without making any part of it simpler.
#include <atomic>
#include <cctype>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "config/http_syntax.h"
#include "core/filter_chain/callout_host.h"
#include "core/filter_chain/chain.h"
#include "core/filter_chain/factory.h"
#include "core/filter_chain/host_services.h"
#include "core/filter_chain/net_connection.h"
#include "core/filter_chain/shared_data.h"
#include "core/filter_chain/stream_registry.h"
#include "core/filter_chain/timers.h"
#include "core/filter_chain/worker_context.h"
#include "core/log/log.h"

namespace sy::filters {
namespace {

HostServices g_services;
// Attribute values must outlive the call: keep the last one per thread.
thread_local std::string t_attr;
std::function<void(std::function<void()>)> g_main_exec;
// Whether the main thread takes tasks (post_to_main), readable from any thread.
std::atomic<bool> g_main_open{false};

std::string_view sv(sy_str_t s) { return {s.ptr ? s.ptr : "", s.len}; }
sy_str_t view(const std::string& s) { return {s.data(), s.size()}; }

stats::Counter* posts_dropped() { return host_posts_dropped(); }
stats::Counter* queue_drops() {
  static stats::Counter* c = stats::registry().counter("host", {}, "queue_notifications_dropped");
  return c;
}

// ---- module generations, by their scope's serial (queues the module itself owns) ----

struct LiveGenerations {
  struct Entry {
    ModuleScope* scope;
    std::weak_ptr<const void> generation;
  };
  std::mutex mu;
  std::unordered_map<uint64_t, Entry> by_serial;
};
LiveGenerations& live_generations() {
  static LiveGenerations* g = new LiveGenerations();  // workers may look up until they stop
  return *g;
}

bool generation_published(uint64_t serial) {
  auto& g = live_generations();
  std::lock_guard<std::mutex> lock(g.mu);
  auto it = g.by_serial.find(serial);
  return it != g.by_serial.end() && !it->second.generation.expired();
}

// ---- logging ----

void h_log(sy_module_t* module, sy_log_level_t level, sy_str_t message) {
  log::Level l = log::Level(std::min<int>(int(level), int(log::Level::kError)));
  if (log::level() > l) return;
  ModuleScope* m = module ? ModuleScope::from(module) : nullptr;
  std::string line = "[module " + (m ? m->name : std::string("?")) + "] ";
  line.append(sv(message));
  log::write(l, line);
}

bool h_log_enabled(sy_log_level_t level) {
  return log::level() <= log::Level(std::min<int>(int(level), int(log::Level::kError)));
}

// ---- headers ----

bool valid_kind(int k) { return k >= SY_REQUEST_HEADERS && k <= SY_RESPONSE_TRAILERS; }

// The pseudo-headers are made on demand (FilterChain::headers): only a call that names one,
// or that sees the block as a whole, needs them.
bool names_pseudo(sy_str_t name) { return name.len == 0 || !name.ptr || name.ptr[0] == ':'; }

http::HeaderMap* block(sy_stream_t* s, sy_header_kind_t kind, bool with_pseudo) {
  if (!s || !valid_kind(kind)) return nullptr;
  return FilterChain::from(s)->headers(kind, with_pseudo);
}

size_t h_header_count(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name) {
  http::HeaderMap* h = block(s, kind, names_pseudo(name));
  if (!h) return 0;
  if (name.len == 0) return h->size();
  return h->get_all(sv(name)).size();
}

sy_status_t h_header_get(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name, size_t index,
                         sy_str_t* value) {
  http::HeaderMap* h = block(s, kind, names_pseudo(name));
  if (!h) return SY_ERR_INVALID;
  size_t seen = 0;
  for (const auto& hd : *h) {
    if (!http::iequals(hd.name, sv(name))) continue;
    if (seen++ == index) {
      *value = view(hd.value);
      return SY_OK;
    }
  }
  return SY_ERR_NOT_FOUND;
}

sy_status_t h_header_at(sy_stream_t* s, sy_header_kind_t kind, size_t index, sy_str_t* name,
                        sy_str_t* value) {
  http::HeaderMap* h = block(s, kind, true);
  if (!h) return SY_ERR_INVALID;
  if (index >= h->size()) return SY_ERR_NOT_FOUND;
  const auto& hd = h->raw()[index];
  *name = view(hd.name);
  *value = view(hd.value);
  return SY_OK;
}

// A header block as the listener's limits count a client's: header lines (pseudo-headers are
// not lines) and the bytes of their names and values, plus the request target.
struct BlockSize {
  size_t count = 0, bytes = 0;
};

size_t entry_bytes(sy_header_kind_t kind, std::string_view name, std::string_view value) {
  if (!name.starts_with(":")) return name.size() + value.size();
  return kind == SY_REQUEST_HEADERS && name == ":path" ? value.size() : 0;
}

// Whether setting (op 0) or adding (op 1) NAME: VALUE would take the block past the listener's
// limits. What a client may not send, a filter may not make either (Envoy's ext_proc checks a
// mutation's result the same way). Only growth past a limit is refused: a block the proxy's own
// headers took over it can still be edited and shrunk.
//
// This runs on every header_set and header_add of every filter, so the common case costs no
// walk: the map's entry count and byte total (kept as it changes) count every entry, pseudo-
// headers too, so with the new entry added they bound what the limits would count. Only a block
// near a limit is walked, to count exactly.
bool over_limits(FilterChain* c, const http::HeaderMap& h, sy_header_kind_t kind,
                 std::string_view name, std::string_view value, int op) {
  ChainSink::HeaderLimits lim = c->sink()->header_limits();
  if (!lim.count && !lim.bytes) return false;
  if ((!lim.count || h.size() + 1 <= lim.count) &&
      (!lim.bytes || h.byte_size() + name.size() + value.size() <= lim.bytes))
    return false;
  // One pass, comparing names case-insensitively rather than lower-casing a copy (only a
  // pseudo-header's name is lowered, for entry_bytes' ":path").
  BlockSize before, after;
  for (const auto& hd : h) {
    size_t count = hd.name.starts_with(":") ? 0 : 1;
    size_t bytes = entry_bytes(kind, hd.name, hd.value);
    before.count += count;
    before.bytes += bytes;
    if (op == 0 && http::iequals(hd.name, name)) continue;  // replaced by the new entry
    after.count += count;
    after.bytes += bytes;
  }
  bool pseudo = name.starts_with(":");
  after.count += pseudo ? 0 : 1;
  after.bytes +=
      pseudo ? entry_bytes(kind, http::to_lower(name), value) : entry_bytes(kind, name, value);
  return (lim.count && after.count > lim.count && after.count > before.count) ||
         (lim.bytes && after.bytes > lim.bytes && after.bytes > before.bytes);
}

sy_status_t mutate(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name, sy_str_t value, int op) {
  // The listener's limits count the request target (:path) in the request block's bytes, so
  // that block is checked with its pseudo-headers in it.
  http::HeaderMap* h = block(s, kind, names_pseudo(name) || kind == SY_REQUEST_HEADERS);
  if (!h) return SY_ERR_INVALID;
  // Every module's names and values are checked (the SDKs' own checks are not the host's);
  // the name's check also says whether it needs lower-casing.
  config::NameCheck check = config::check_header_name(sv(name));
  if (check == config::NameCheck::kInvalid || !config::is_safe_header_value(sv(value)))
    return SY_ERR_INVALID;
  FilterChain* c = FilterChain::from(s);
  if (over_limits(c, *h, kind, sv(name), sv(value), op)) return SY_ERR_TOO_LARGE;
  if (kind == SY_REQUEST_TRAILERS) c->has_request_trailers = true;
  if (kind == SY_RESPONSE_TRAILERS) c->has_response_trailers = true;
  bool lower = check == config::NameCheck::kLowerCase;
  if (op == 0)
    lower ? h->set_lowercase(sv(name), sv(value)) : h->set(sv(name), sv(value));
  else
    lower ? h->add_lowercase(sv(name), sv(value)) : h->add(sv(name), sv(value));
  return SY_OK;
}

sy_status_t h_header_set(sy_stream_t* s, sy_header_kind_t k, sy_str_t n, sy_str_t v) {
  return mutate(s, k, n, v, 0);
}
sy_status_t h_header_add(sy_stream_t* s, sy_header_kind_t k, sy_str_t n, sy_str_t v) {
  return mutate(s, k, n, v, 1);
}
sy_status_t h_header_remove(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name) {
  http::HeaderMap* h = block(s, kind, names_pseudo(name));
  if (!h) return SY_ERR_INVALID;
  return h->remove(sv(name)) ? SY_OK : SY_ERR_NOT_FOUND;
}

// ---- bodies ----

std::string* body_of(sy_stream_t* s, sy_direction_t dir, size_t** off) {
  if (!s || (dir != SY_REQUEST && dir != SY_RESPONSE)) return nullptr;
  return FilterChain::from(s)->body(dir, SY_BODY_CHUNK, off);
}

sy_status_t h_body_get(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, sy_str_t* out) {
  size_t* off;
  std::string* b = body_of(s, dir, &off);
  if (!b) return SY_ERR_WRONG_PHASE;
  size_t start = part == SY_BODY_CHUNK ? std::min(*off, b->size()) : 0;
  *out = {b->data() + start, b->size() - start};
  return SY_OK;
}

sy_status_t h_body_replace(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, sy_str_t d) {
  size_t* off;
  std::string* b = body_of(s, dir, &off);
  if (!b) return SY_ERR_WRONG_PHASE;
  if (part == SY_BODY_CHUNK) {
    b->replace(std::min(*off, b->size()), std::string::npos, sv(d));
  } else {
    b->assign(sv(d));
    *off = 0;
  }
  return SY_OK;
}

sy_status_t h_body_append(sy_stream_t* s, sy_direction_t dir, sy_body_part_t, sy_str_t d) {
  size_t* off;
  std::string* b = body_of(s, dir, &off);
  if (!b) return SY_ERR_WRONG_PHASE;
  b->append(sv(d));  // the chunk is the tail either way
  return SY_OK;
}

sy_status_t h_body_prepend(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, sy_str_t d) {
  size_t* off;
  std::string* b = body_of(s, dir, &off);
  if (!b) return SY_ERR_WRONG_PHASE;
  if (part == SY_BODY_CHUNK) {
    b->insert(std::min(*off, b->size()), sv(d));
  } else {
    b->insert(0, sv(d));
    *off += d.len;
  }
  return SY_OK;
}

sy_status_t h_body_drain(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, size_t n) {
  size_t* off;
  std::string* b = body_of(s, dir, &off);
  if (!b) return SY_ERR_WRONG_PHASE;
  if (part == SY_BODY_CHUNK) {
    size_t at = std::min(*off, b->size());
    b->erase(at, n);
  } else {
    size_t k = std::min(n, b->size());
    b->erase(0, k);
    *off = *off > k ? *off - k : 0;
  }
  FilterChain::from(s)->held_edited(dir);  // a watermark hold may fall below the low mark
  return SY_OK;
}

sy_status_t h_inject(sy_stream_t* s, sy_direction_t dir, sy_str_t data, bool end_stream) {
  if (!s) return SY_ERR_INVALID;
  return FilterChain::from(s)->inject(dir, sv(data), end_stream);
}

// ---- flow ----

sy_status_t h_resume(sy_stream_t* s, sy_direction_t dir) {
  if (!s || (dir != SY_REQUEST && dir != SY_RESPONSE)) return SY_ERR_INVALID;
  return FilterChain::from(s)->resume(dir);
}

sy_status_t h_local_reply(sy_stream_t* s, uint32_t status, const sy_header_t* headers, size_t n,
                          sy_str_t body, sy_str_t details) {
  if (!s) return SY_ERR_INVALID;
  if (status < 200 || status > 599) return SY_ERR_INVALID;
  FilterChain* c = FilterChain::from(s);
  if (c->sink()->response_started()) return SY_ERR_WRONG_PHASE;
  http::HeaderMap h;
  for (size_t i = 0; i < n; ++i) {
    if (!config::is_header_name(sv(headers[i].name)) ||
        !config::is_safe_header_value(sv(headers[i].value)))
      return SY_ERR_INVALID;
    h.add(sv(headers[i].name), sv(headers[i].value));
  }
  // The stream halts what has to stop: everything for a reply from a response phase, the
  // request phases only for one from a request phase (its response still meets the filters).
  return c->sink()->local_reply_from_filter(int(status), h, sv(body), std::string(sv(details)))
             ? SY_OK
             : SY_ERR_WRONG_PHASE;
}

sy_status_t h_set_response_flag(sy_stream_t* s, sy_str_t flag) {
  if (!s) return SY_ERR_INVALID;
  log::ResponseFlag f = log::filter_flag(sv(flag));
  if (f == log::ResponseFlag::kNone) return SY_ERR_INVALID;
  return FilterChain::from(s)->sink()->set_response_flag(f) ? SY_OK : SY_ERR_STALE;
}

sy_stream_id_t h_stream_id(sy_stream_t* s) { return s ? FilterChain::from(s)->published_id() : 0; }

sy_worker_t* h_stream_worker(sy_stream_t* s);

// ---- scheduler ----

sy_status_t post_as(sy_stream_id_t id, uint32_t position, sy_stream_task_fn fn, sy_drop_fn drop,
                    void* arg) {
  int w = stream_worker(id);
  if (!fn) return SY_ERR_INVALID;
  std::shared_ptr<const void> keep = registered_generations(id);
  if (!keep) {
    posts_dropped()->inc();
    if (drop) drop(arg);
    return SY_ERR_STALE;
  }
  // The task holds the stream's generations, so the module's code stays mapped until it runs.
  const ModuleIdentity* owner = current_module();
  bool ok =
      g_services.post_to_worker(w, [id, position, fn, drop, arg, owner, keep = std::move(keep)] {
        FilterChain* chain = registered_chain(id);
        if (!chain) {
          posts_dropped()->inc();
          ModuleCallMark mark(owner, "drop");
          if (drop) drop(arg);
          return;
        }
        chain->run_as(position, [&] {
          ModuleCallMark mark(owner ? owner : chain->module_at(position), "stream task");
          fn(chain->handle(), arg);
        });
      });
  if (!ok) {
    posts_dropped()->inc();
    if (drop) drop(arg);
    return SY_ERR_STALE;
  }
  return SY_OK;
}

sy_status_t h_post_to_stream(sy_stream_id_t id, sy_stream_task_fn fn, sy_drop_fn drop, void* arg) {
  // Posted from a callback of that same stream: the task acts for the filter that posted it.
  FilterChain* active = FilterChain::active();
  uint32_t position =
      active && active->id() == id ? active->current_position() : FilterChain::kNoFilter;
  return post_as(id, position, fn, drop, arg);
}

sy_status_t h_post_to_filter(sy_stream_id_t id, uint32_t position, sy_stream_task_fn fn,
                             sy_drop_fn drop, void* arg) {
  return post_as(id, position, fn, drop, arg);
}

uint32_t h_filter_index(sy_stream_t* s) {
  if (!s) return SY_NO_FILTER;
  uint32_t p = FilterChain::from(s)->current_position();
  return p == FilterChain::kNoFilter ? SY_NO_FILTER : p;
}

// The worker's own context: what a task posted to the worker receives.
thread_local WorkerContext t_worker_ctx;

// Calls DROP unless the task ran: a task the worker never runs (it stopped first) is destroyed
// with its queue, and that is when DROP runs.
struct PostGuard {
  PostGuard(sy_drop_fn d, void* a) : drop(d), arg(a), owner(current_module()) {}
  PostGuard(const PostGuard&) = delete;
  PostGuard& operator=(const PostGuard&) = delete;
  sy_drop_fn drop;
  void* arg;
  const ModuleIdentity* owner;  // the module that posted: FN and DROP are its code
  bool ran = false;
  ~PostGuard() {
    if (ran) return;
    posts_dropped()->inc();
    ModuleCallMark mark(owner, "drop");
    if (drop) drop(arg);
  }
};

sy_status_t post_worker(int32_t index, sy_worker_task_fn fn, sy_drop_fn drop, void* arg) {
  if (!fn) return SY_ERR_INVALID;
  uint32_t n = g_services.worker_count ? g_services.worker_count() : 0;
  if (index >= int32_t(n) || !g_services.post_to_worker) {
    posts_dropped()->inc();
    if (drop) drop(arg);
    return SY_ERR_NOT_FOUND;
  }
  auto guard = std::make_shared<PostGuard>(drop, arg);
  bool ok = g_services.post_to_worker(index, [fn, guard] {
    guard->ran = true;
    ModuleCallMark mark(guard->owner, "worker task");
    fn(t_worker_ctx.handle(), guard->arg);
  });
  // Refused: the lambda (and with it the guard's last copy) is gone, so DROP has run.
  return ok ? SY_OK : SY_ERR_NOT_FOUND;
}

// The main executor is cleared when the proxy stops: a task posted then would never run.
sy_status_t h_post_to_main(sy_main_task_fn fn, sy_drop_fn drop, void* arg) {
  if (!fn) return SY_ERR_INVALID;
  if (!g_main_open.load(std::memory_order_acquire) || !g_services.post_to_main) {
    posts_dropped()->inc();
    if (drop) drop(arg);
    return SY_ERR_NOT_FOUND;
  }
  auto guard = std::make_shared<PostGuard>(drop, arg);
  g_services.post_to_main([fn, guard] {
    guard->ran = true;
    ModuleCallMark mark(guard->owner, "main task");
    fn(guard->arg);
  });
  return SY_OK;
}

sy_status_t h_post_to_worker(int32_t index, sy_worker_task_fn fn, void* arg) {
  return post_worker(index, fn, nullptr, arg);
}

sy_status_t h_post_to_worker_drop(int32_t index, sy_worker_task_fn fn, sy_drop_fn drop, void* arg) {
  return post_worker(index, fn, drop, arg);
}

uint32_t h_worker_count() { return g_services.worker_count ? g_services.worker_count() : 0; }

int32_t h_worker_index(sy_worker_t* w) { return w ? WorkerContext::from(w)->index : -1; }

sy_timer_t* h_stream_timer(sy_stream_t* s, uint64_t ms, sy_stream_task_fn fn, sy_drop_fn drop,
                           void* arg) {
  return stream_timer(s, ms, fn, drop, arg);
}

sy_timer_t* h_worker_timer(sy_worker_t* w, uint64_t ms, sy_worker_task_fn fn, void* arg) {
  return worker_timer(w, ms, fn, nullptr, arg);
}

sy_timer_t* h_worker_timer_drop(sy_worker_t* w, uint64_t ms, sy_worker_task_fn fn, sy_drop_fn drop,
                                void* arg) {
  return worker_timer(w, ms, fn, drop, arg);
}

void h_timer_cancel(sy_timer_t* t) { timer_cancel(t); }

// ---- callouts ----

sy_status_t h_http_callout(sy_stream_t* s, sy_worker_t* w, sy_str_t cluster,
                           const sy_header_t* headers, size_t n, sy_str_t body, uint64_t timeout_ms,
                           sy_callout_fn fn, void* arg) {
  if (!fn || (!s && !w) || !g_services.callout) return SY_ERR_INVALID;
  http::HeaderMap h;
  for (size_t i = 0; i < n; ++i) {
    if (!config::is_header_name(sv(headers[i].name)) ||
        !config::is_safe_header_value(sv(headers[i].value)))
      return SY_ERR_INVALID;
    h.add(sv(headers[i].name), sv(headers[i].value));
  }
  if (!h.has(":method") || !h.has(":path")) return SY_ERR_INVALID;
  int worker = s ? FilterChain::from(s)->sink()->worker_index() : WorkerContext::from(w)->index;
  // The reply runs module code: the callout holds the module's generation until then, even if
  // the stream ends or the module is swapped in the meantime.
  std::shared_ptr<const void> keep;
  if (s) {
    keep = FilterChain::from(s)->sink()->generations();
  } else if (WorkerContext::from(w)->keepalive) {
    keep = WorkerContext::from(w)->keepalive;
  }
  auto done = [fn, arg, owner = current_module(), keep = std::move(keep)](const CalloutResult& r) {
    std::vector<sy_header_t> hs, ts;
    for (const auto& x : r.headers) hs.push_back({view(x.name), view(x.value)});
    for (const auto& x : r.trailers) ts.push_back({view(x.name), view(x.value)});
    sy_callout_response_t resp{sizeof(sy_callout_response_t),
                               r.status,
                               hs.data(),
                               hs.size(),
                               view(r.body),
                               ts.data(),
                               ts.size(),
                               view(r.failure)};
    ModuleCallMark mark(owner, "callout reply");
    fn(arg, &resp);
  };
  auto cancel = g_services.callout(worker, std::string(sv(cluster)), std::move(h),
                                   std::string(sv(body)), timeout_ms, std::move(done));
  return cancel ? SY_OK : SY_ERR_NOT_FOUND;
}

sy_status_t h_cluster_endpoint(sy_str_t cluster, size_t index, sy_bytes_sink_fn sink, void* ctx) {
  std::string out;
  if (!sink || !g_services.cluster_endpoint ||
      !g_services.cluster_endpoint(std::string(sv(cluster)), index, &out))
    return SY_ERR_NOT_FOUND;
  sink(ctx, view(out), 0);
  return SY_OK;
}

// ---- metadata, filter state, attributes, route ----

sy_status_t h_metadata_set(sy_stream_t* s, sy_str_t ns, sy_str_t key, sy_str_t value) {
  if (!s || ns.len == 0) return SY_ERR_INVALID;
  FilterChain::from(s)->metadata[std::string(sv(ns))][std::string(sv(key))] = {
      std::string(sv(value)), false};
  return SY_OK;
}

sy_status_t h_metadata_get(sy_stream_t* s, sy_str_t ns, sy_str_t key, sy_str_t* value) {
  if (!s) return SY_ERR_INVALID;
  auto& md = FilterChain::from(s)->metadata;
  auto n = md.find(std::string(sv(ns)));
  if (n == md.end()) return SY_ERR_NOT_FOUND;
  auto k = n->second.find(std::string(sv(key)));
  if (k == n->second.end()) return SY_ERR_NOT_FOUND;
  *value = view(k->second.text);
  return SY_OK;
}

sy_status_t h_filter_state_set(sy_stream_t* s, sy_str_t key, sy_str_t value) {
  if (!s || key.len == 0) return SY_ERR_INVALID;
  FilterChain::from(s)->filter_state[std::string(sv(key))] = std::string(sv(value));
  return SY_OK;
}

sy_status_t h_filter_state_get(sy_stream_t* s, sy_str_t key, sy_str_t* value) {
  if (!s) return SY_ERR_INVALID;
  auto& fs = FilterChain::from(s)->filter_state;
  auto it = fs.find(std::string(sv(key)));
  if (it == fs.end()) return SY_ERR_NOT_FOUND;
  *value = view(it->second);
  return SY_OK;
}

sy_status_t h_attribute_get(sy_stream_t* s, sy_str_t path, sy_str_t* value) {
  if (!s) return SY_ERR_INVALID;
  if (!FilterChain::from(s)->attribute(sv(path), &t_attr)) return SY_ERR_NOT_FOUND;
  *value = view(t_attr);
  return SY_OK;
}

sy_status_t h_skip_body(sy_stream_t* s, sy_direction_t dir) {
  if (!s || (dir != SY_REQUEST && dir != SY_RESPONSE)) return SY_ERR_INVALID;
  return FilterChain::from(s)->skip_body(dir);
}

sy_status_t h_clear_route_cache(sy_stream_t* s) {
  if (!s) return SY_ERR_INVALID;
  FilterChain::from(s)->sink()->clear_route_cache();
  return SY_OK;
}

sy_status_t h_set_upstream_override_host(sy_stream_t* s, sy_str_t host) {
  if (!s) return SY_ERR_INVALID;
  return FilterChain::from(s)->sink()->set_upstream_override(sv(host)) ? SY_OK : SY_ERR_NOT_FOUND;
}

void* h_route_config(sy_stream_t* s) {
  return s ? FilterChain::from(s)->current_route_config() : nullptr;
}

// ---- metrics ----

// Metric names: [A-Za-z0-9_.:-], so that no name can break a line of /stats or a Prometheus
// sample. Label names as Prometheus wants them; label values visible ASCII without a space.
bool valid_metric_name(std::string_view n) {
  if (n.empty() || n.size() > 200) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && !strchr("_.:-", c)) return false;
  return true;
}
bool valid_label_name(std::string_view n) {
  if (n.empty() || n.size() > 100 || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return n != "module";  // the host's label: which module
}
bool valid_label_value(std::string_view v) {
  if (v.empty() || v.size() > 200) return false;
  for (unsigned char c : v)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

sy_status_t h_metric_define(sy_module_t* module, sy_metric_kind_t kind, sy_str_t name,
                            const sy_label_t* labels, size_t n, uint32_t* id) {
  if (!module || !id || kind < SY_COUNTER || kind > SY_HISTOGRAM) return SY_ERR_INVALID;
  if (!valid_metric_name(sv(name)) || (n > 0 && !labels)) return SY_ERR_INVALID;
  for (size_t i = 0; i < n; ++i)
    if (!valid_label_name(sv(labels[i].name)) || !valid_label_value(sv(labels[i].value)))
      return SY_ERR_INVALID;
  ModuleScope* m = ModuleScope::from(module);
  // module.<module>.<label values>.<name>: the module's own namespace; the host's stats about
  // the module are loader.<module>.* (module_host_counter).
  stats::Labels l{{"module", m->name}};
  std::string key(sv(name));
  for (size_t i = 0; i < n; ++i) {
    l.emplace_back(std::string(sv(labels[i].name)), std::string(sv(labels[i].value)));
    key += "|" + l.back().first + "=" + l.back().second;
  }
  std::lock_guard<std::mutex> lock(m->mu);
  auto it = m->metric_ids.find(key);
  if (it != m->metric_ids.end()) {
    if (m->metrics[it->second].kind != kind) return SY_ERR_INVALID;
    *id = it->second;
    return SY_OK;
  }
  ModuleScope::Metric metric{kind};
  auto& r = stats::registry();
  std::string nm(sv(name));
  if (kind == SY_COUNTER) metric.counter = r.counter("module", l, nm);
  if (kind == SY_GAUGE) metric.gauge = r.gauge("module", l, nm);
  if (kind == SY_HISTOGRAM) metric.histogram = r.histogram("module", l, nm);
  m->metrics.push_back(metric);
  *id = uint32_t(m->metrics.size() - 1);
  m->metric_ids[key] = *id;
  return SY_OK;
}

const ModuleScope::Metric* metric(sy_module_t* module, uint32_t id) {
  return module_metric(module, id);
}

sy_status_t h_metric_add(sy_module_t* module, uint32_t id, int64_t delta) {
  auto* mt = metric(module, id);
  if (!mt) return SY_ERR_NOT_FOUND;
  if (mt->counter) {
    if (delta < 0) return SY_ERR_INVALID;
    mt->counter->inc(uint64_t(delta));
  } else if (mt->gauge) {
    mt->gauge->inc(delta);
  } else {
    return SY_ERR_INVALID;
  }
  return SY_OK;
}

sy_status_t h_metric_set(sy_module_t* module, uint32_t id, int64_t value) {
  auto* mt = metric(module, id);
  if (!mt) return SY_ERR_NOT_FOUND;
  if (!mt->gauge) return SY_ERR_INVALID;
  mt->gauge->set(value);
  return SY_OK;
}

sy_status_t h_metric_record(sy_module_t* module, uint32_t id, uint64_t value) {
  auto* mt = metric(module, id);
  if (!mt) return SY_ERR_NOT_FOUND;
  if (!mt->histogram) return SY_ERR_INVALID;
  mt->histogram->record(double(value));
  return SY_OK;
}

sy_status_t h_metric_get(sy_module_t* module, uint32_t id, int64_t* value) {
  auto* mt = metric(module, id);
  if (!mt || !value) return SY_ERR_NOT_FOUND;
  if (mt->counter)
    *value = int64_t(mt->counter->value());
  else if (mt->gauge)
    *value = mt->gauge->value();
  else
    *value = int64_t(mt->histogram->count());
  return SY_OK;
}

// ---- shared data and queues (shared_data.cc) ----

sy_status_t h_shared_get(sy_str_t key, sy_bytes_sink_fn sink, void* ctx) {
  return shared_data().get(sv(key), sink, ctx);
}
sy_status_t h_shared_set(sy_str_t key, sy_str_t value, uint64_t cas) {
  return shared_data().set(sv(key), sv(value), cas);
}
sy_status_t h_queue_register(sy_module_t* module, sy_worker_t* w, sy_str_t name, uint32_t* id) {
  return shared_data().queue_register(sv(name), w ? WorkerContext::from(w) : nullptr,
                                      module ? ModuleScope::from(module) : nullptr, id);
}
sy_status_t h_queue_resolve(sy_str_t name, uint32_t* id) {
  return shared_data().queue_resolve(sv(name), id);
}
sy_status_t h_queue_enqueue(uint32_t id, sy_str_t data) {
  return shared_data().enqueue(id, sv(data));
}
sy_status_t h_queue_dequeue(uint32_t id, sy_bytes_sink_fn sink, void* ctx) {
  return shared_data().dequeue(id, sink, ctx);
}

// ---- connections: implemented by the TCP proxy (network_host.cc) ----

sy_status_t h_conn_data_get(sy_conn_t* c, sy_direction_t dir, sy_str_t* out) {
  if (!c || !out) return SY_ERR_INVALID;
  std::string* d = NetConnection::from(c)->data(dir);
  if (!d) return SY_ERR_WRONG_PHASE;
  *out = view(*d);
  return SY_OK;
}

sy_status_t h_conn_data_replace(sy_conn_t* c, sy_direction_t dir, sy_str_t data) {
  if (!c) return SY_ERR_INVALID;
  std::string* d = NetConnection::from(c)->data(dir);
  if (!d) return SY_ERR_WRONG_PHASE;
  d->assign(sv(data));
  return SY_OK;
}

sy_status_t h_conn_inject(sy_conn_t* c, sy_direction_t dir, sy_str_t data) {
  if (!c) return SY_ERR_INVALID;
  return NetConnection::from(c)->inject(dir, sv(data)) ? SY_OK : SY_ERR_STALE;
}

sy_status_t h_conn_close(sy_conn_t* c) {
  if (!c) return SY_ERR_INVALID;
  NetConnection::from(c)->close();
  return SY_OK;
}

sy_status_t h_conn_attribute_get(sy_conn_t* c, sy_str_t path, sy_str_t* value) {
  if (!c) return SY_ERR_INVALID;
  if (!NetConnection::from(c)->attribute(sv(path), &t_attr)) return SY_ERR_NOT_FOUND;
  *value = view(t_attr);
  return SY_OK;
}

// Since 1.2: flow per direction and half-close.
sy_status_t h_conn_resume(sy_conn_t* c, void* filter, sy_direction_t dir) {
  if (!c || (dir != SY_REQUEST && dir != SY_RESPONSE)) return SY_ERR_INVALID;
  return NetConnection::from(c)->resume(filter, dir);
}

sy_status_t h_conn_pause_reading(sy_conn_t* c, sy_direction_t side, bool paused) {
  if (!c || (side != SY_REQUEST && side != SY_RESPONSE)) return SY_ERR_INVALID;
  return NetConnection::from(c)->pause_reading(side, paused);
}

sy_status_t h_conn_shutdown_write(sy_conn_t* c, sy_direction_t dir) {
  if (!c || (dir != SY_REQUEST && dir != SY_RESPONSE)) return SY_ERR_INVALID;
  return NetConnection::from(c)->shutdown_write(dir);
}

// A connection lives on the worker that calls this (its callbacks run there), so the worker's
// own context is the answer.
sy_worker_t* h_conn_worker(sy_conn_t* c) { return c ? t_worker_ctx.handle() : nullptr; }

sy_host_t g_host = [] {
  sy_host_t h{};
  h.size = sizeof(sy_host_t);
  h.abi_major = SY_ABI_MAJOR;
  h.abi_minor = SY_ABI_MINOR;
  h.log = h_log;
  h.log_enabled = h_log_enabled;
  h.header_count = h_header_count;
  h.header_get = h_header_get;
  h.header_at = h_header_at;
  h.header_set = h_header_set;
  h.header_add = h_header_add;
  h.header_remove = h_header_remove;
  h.body_get = h_body_get;
  h.body_replace = h_body_replace;
  h.body_append = h_body_append;
  h.body_prepend = h_body_prepend;
  h.body_drain = h_body_drain;
  h.inject_data = h_inject;
  h.resume = h_resume;
  h.send_local_reply = h_local_reply;
  h.stream_id = h_stream_id;
  h.stream_worker = h_stream_worker;
  h.post_to_stream = h_post_to_stream;
  h.post_to_worker = h_post_to_worker;
  h.worker_count = h_worker_count;
  h.worker_index = h_worker_index;
  h.stream_timer = h_stream_timer;
  h.worker_timer = h_worker_timer;
  h.timer_cancel = h_timer_cancel;
  h.http_callout = h_http_callout;
  h.cluster_endpoint = h_cluster_endpoint;
  h.metadata_set = h_metadata_set;
  h.metadata_get = h_metadata_get;
  h.filter_state_set = h_filter_state_set;
  h.filter_state_get = h_filter_state_get;
  h.attribute_get = h_attribute_get;
  h.clear_route_cache = h_clear_route_cache;
  h.set_upstream_override_host = h_set_upstream_override_host;
  h.skip_body = h_skip_body;
  h.route_config = h_route_config;
  h.metric_define = h_metric_define;
  h.metric_add = h_metric_add;
  h.metric_set = h_metric_set;
  h.metric_record = h_metric_record;
  h.metric_get = h_metric_get;
  h.shared_get = h_shared_get;
  h.shared_set = h_shared_set;
  h.queue_register = h_queue_register;
  h.queue_resolve = h_queue_resolve;
  h.queue_enqueue = h_queue_enqueue;
  h.queue_dequeue = h_queue_dequeue;
  h.conn_data_get = h_conn_data_get;
  h.conn_data_replace = h_conn_data_replace;
  h.conn_inject = h_conn_inject;
  h.conn_close = h_conn_close;
  h.conn_attribute_get = h_conn_attribute_get;
  h.post_to_worker_drop = h_post_to_worker_drop;
  h.worker_timer_drop = h_worker_timer_drop;
  h.filter_index = h_filter_index;
  h.post_to_filter = h_post_to_filter;
  install_callout_slots(&h);   // since 1.2: callout_host.cc
  install_metadata_slots(&h);  // since 1.2: metadata.cc
  h.post_to_main = h_post_to_main;
  h.set_response_flag = h_set_response_flag;
  h.conn_resume = h_conn_resume;
  h.conn_pause_reading = h_conn_pause_reading;
  h.conn_shutdown_write = h_conn_shutdown_write;
  h.conn_worker = h_conn_worker;
  return h;
}();

sy_worker_t* h_stream_worker(sy_stream_t* s) {
  if (!s) return nullptr;
  t_worker_ctx.index = FilterChain::from(s)->sink()->worker_index();
  t_worker_ctx.loop = FilterChain::from(s)->sink()->loop();
  return t_worker_ctx.handle();
}

}  // namespace

uint64_t ModuleScope::next_serial() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void publish_generation(ModuleScope* scope, std::weak_ptr<const void> generation) {
  auto& g = live_generations();
  std::lock_guard<std::mutex> lock(g.mu);
  g.by_serial[scope->serial] = {scope, std::move(generation)};
}

void forget_generation(ModuleScope* scope) {
  auto& g = live_generations();
  std::lock_guard<std::mutex> lock(g.mu);
  g.by_serial.erase(scope->serial);
}

sy_host_t* mutable_host_table() { return &g_host; }
const sy_host_t* host_table() { return &g_host; }

void set_host_services(HostServices services) { g_services = std::move(services); }

void set_main_executor(std::function<void(std::function<void()>)> exec) {
  g_main_open.store(bool(exec), std::memory_order_release);
  g_main_exec = std::move(exec);
}

void run_on_main(std::function<void()> fn) {
  if (g_main_exec)
    g_main_exec(std::move(fn));
  else
    fn();
}

void bind_worker_thread(int index, uv_loop_t* loop) {
  t_worker_ctx.index = index;
  t_worker_ctx.loop = loop;
  use_crash_signal_stack();  // workers run module code: the crash handler needs a stack here
}

void unbind_worker_thread() { drop_all_worker_timers(); }

uint64_t queue_notifications_dropped() { return queue_drops()->value(); }

QueueOwner queue_owner(WorkerContext* ctx, ModuleScope* module) {
  QueueOwner o;
  if (!ctx) return o;
  o.worker = ctx->index;
  if (ctx->factory || ctx->net_factory) {
    o.context_serial = ctx->serial;
  } else if (module) {
    // The worker's own handle: the module itself is told, through its descriptor.
    o.module_serial = module->serial;
  }
  return o;
}

namespace {

// On the owner's worker: the filter config's context, found again by its serial.
void notify_context(uint64_t serial, uint32_t queue_id) {
  WorkerContext* owner = find_worker_context(serial);
  // Contexts are created and erased on their own worker, which is this thread: the owner
  // found here lives until this function returns.
  if (!owner) {
    queue_drops()->inc();
    return;
  }
  if (HttpFilterFactory* f = owner->factory) {
    if (!f->vt->on_queue_ready) return;
    ModuleCallMark mark(f->scope ? f->scope->identity : nullptr, "on_queue_ready");
    f->vt->on_queue_ready(f->config, owner->worker_data, queue_id);
  } else if (NetworkFilterFactory* n = owner->net_factory) {
    if (!n->vt->on_queue_ready) return;
    ModuleCallMark mark(n->scope ? n->scope->identity : nullptr, "on_queue_ready");
    n->vt->on_queue_ready(n->config, owner->worker_data, queue_id);
  }
}

// On the owner's worker: the module generation, if it is still loaded, through its descriptor.
void notify_module(uint64_t serial, uint32_t queue_id) {
  std::shared_ptr<const void> keep;  // holds the generation for the whole call
  ModuleScope* scope = nullptr;
  {
    auto& g = live_generations();
    std::lock_guard<std::mutex> lock(g.mu);
    auto it = g.by_serial.find(serial);
    if (it != g.by_serial.end()) {
      keep = it->second.generation.lock();
      scope = it->second.scope;
    }
  }
  if (!keep) {
    queue_drops()->inc();
    return;
  }
  if (!scope->on_queue_ready) return;
  ModuleCallMark mark(scope->identity, "on_queue_ready");
  scope->on_queue_ready(scope->module_data, t_worker_ctx.handle(), queue_id);
}

}  // namespace

void post_queue_ready(const QueueOwner& owner, uint32_t queue_id) {
  // The owner is looked up now and again on its worker: it may go (config change, swap) at any
  // time until the task runs there.
  bool alive = owner.context_serial ? worker_context_alive(owner.context_serial)
                                    : generation_published(owner.module_serial);
  if (!g_services.post_to_worker || !alive) {
    queue_drops()->inc();
    return;
  }
  bool ok = g_services.post_to_worker(owner.worker, [owner, queue_id] {
    if (owner.context_serial)
      notify_context(owner.context_serial, queue_id);
    else
      notify_module(owner.module_serial, queue_id);
  });
  if (!ok) queue_drops()->inc();
}

}  // namespace sy::filters
