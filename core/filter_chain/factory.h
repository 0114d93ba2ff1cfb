// What the core knows of a loaded module filter: its vtable, its config object, and a reference
// that keeps the module's generation loaded. Built by the loader side, used by streams.
#pragma once

#include <switchyard/module.h>
#include <uv.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/filter_chain/module_call.h"
#include "core/http/headers.h"
#include "core/stats/stats.h"

namespace sy::filters {

// Per-module scope for what the host table attributes to a module (logs, metrics). The loader
// owns one per generation and hands its address to the module as sy_module_t*.
struct ModuleScope {
  std::string name;  // module name
  uint64_t generation = 0;
  // The module's own `config:` block as JSON (host module_config, since ABI 1.2).
  std::string config_json = "{}";
  // Who this generation is, for the marker around each call into it (module_call.h).
  const ModuleIdentity* identity = nullptr;
  // Metrics the module defined, by id (index).
  struct Metric {
    sy_metric_kind_t kind;
    stats::Counter* counter = nullptr;
    stats::Gauge* gauge = nullptr;
    stats::Histogram* histogram = nullptr;
  };
  std::mutex mu;
  // A deque, so an entry stays where it is while another thread defines more: metric_add
  // uses the entry after the lock is released.
  std::deque<Metric> metrics;
  std::map<std::string, uint32_t>
      metric_ids;  // by rendered name, so redefining returns the same id
  stats::Counter* callback_exceptions = nullptr;  // the SDK reports caught exceptions here
  stats::Counter* posts_dropped = nullptr;
  // Streams bound to this generation right now (the filter chain keeps it).
  std::atomic<int64_t> streams_active{0};
  // Never reused: how a queue registered with a worker's own handle names its owner, the
  // generation, without a pointer that could dangle (publish_generation).
  const uint64_t serial = next_serial();
  // Set by the loader before publish_generation: the descriptor's on_queue_ready (ABI 1.2; NULL
  // for older modules) and the module data it receives.
  void (*on_queue_ready)(void* module_data, sy_worker_t* worker, uint32_t queue_id) = nullptr;
  void* module_data = nullptr;

  static ModuleScope* from(sy_module_t* m) { return reinterpret_cast<ModuleScope*>(m); }
  sy_module_t* handle() { return reinterpret_cast<sy_module_t*>(this); }
  static uint64_t next_serial();
};

// The loader tells the host which generation a scope belongs to once it is loaded (GENERATION
// owns SCOPE), and that it is going, first thing in its destructor. A queue owned by the
// module (registered with a worker's own handle) is notified only while it is published, and
// holds the generation for the call. Main thread.
void publish_generation(ModuleScope* scope, std::weak_ptr<const void> generation);
void forget_generation(ModuleScope* scope);

// One `filters:` entry of a listener, instantiated. Shared by all workers; a stream holds a
// shared_ptr for its whole life, and with it the module generation (`keepalive`).
struct HttpFilterFactory {
  std::shared_ptr<void> keepalive;  // the generation
  ModuleScope* scope = nullptr;
  const sy_http_filter_t* vt = nullptr;
  void* config = nullptr;
  std::string module;       // module name, also the key for per_filter
  std::string filter_name;  // factory name inside the module
  config::Location loc;
  // Per-route configs built for this filter, by route name (null = disabled for that route).
  struct RouteConfig {
    bool disabled = false;
    void* config = nullptr;
  };
  std::map<std::string, RouteConfig> route_configs;

  ~HttpFilterFactory();
};

struct NetworkFilterFactory {
  std::shared_ptr<void> keepalive;
  ModuleScope* scope = nullptr;
  const sy_network_filter_t* vt = nullptr;
  void* config = nullptr;
  std::string module, filter_name;
  config::Location loc;

  ~NetworkFilterFactory();
};

// Config and generation teardown must run on the main thread, but the last reference may be
// dropped on a worker. The server installs the main thread's executor here at start-up.
void set_main_executor(std::function<void(std::function<void()>)> exec);
void run_on_main(std::function<void()> fn);

// shared_ptr that is destroyed on the main thread.
template <typename T>
std::shared_ptr<T> make_main_thread_shared(T* p) {
  return std::shared_ptr<T>(p, [](T* x) { run_on_main([x] { delete x; }); });
}

// The host function table (core/filter_chain/host.cc).
const sy_host_t* host_table();

// The entry of a metric the module defined, or nullptr. Stays valid as long as SCOPE.
const ModuleScope::Metric* module_metric(sy_module_t* scope, uint32_t id);
// The host's own stats about a module (loads, swaps, generation, ...). They are named
// loader.<module>.<stat>: module.<module>.* belongs to the metrics the module defines.
stats::Counter* module_host_counter(const std::string& module, const std::string& stat);
stats::Gauge* module_host_gauge(const std::string& module, const std::string& stat);

}  // namespace sy::filters

namespace sy::filters {

// A callout's reply as the host hands it to the module.
struct CalloutResult {
  uint32_t status = 0;
  http::HeaderMap headers, trailers;
  std::string body;
  std::string failure;
};

// What the host table needs from the server, installed once at start-up.
struct HostServices {
  std::function<uint32_t()> worker_count;
  // Any thread: run FN on worker INDEX (-1: any). False when there is no such worker.
  std::function<bool(int32_t index, std::function<void()> fn)> post_to_worker;
  // Any thread: run FN on the main thread (host post_to_main, since ABI 1.2).
  std::function<void(std::function<void()> fn)> post_to_main;
  // Worker thread: an HTTP request to CLUSTER; DONE runs on the same worker. Returns a cancel
  // function (empty when the callout could not start; then DONE has not run and never will).
  std::function<std::function<void()>(
      int worker, const std::string& cluster, http::HeaderMap headers, std::string body,
      uint64_t timeout_ms, std::function<void(const CalloutResult&)> done)>
      callout;
  // Main or worker thread: "host:port" of a cluster's endpoint INDEX.
  std::function<bool(const std::string& cluster, size_t index, std::string* out)> cluster_endpoint;
};
void set_host_services(HostServices services);

// Per (filter factory, worker) state: what sy_worker_t* points at. Each one has a serial
// number, never reused, by which others (a queue's owner) refer to it without a pointer that
// could dangle: a context that is gone is no longer found by its serial.
struct WorkerContext {
  WorkerContext();
  ~WorkerContext();
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;
  const uint64_t serial;
  int index = 0;
  uv_loop_t* loop = nullptr;
  HttpFilterFactory* factory = nullptr;
  // A network filter config's context instead (since ABI 1.2); neither: the worker's own.
  NetworkFilterFactory* net_factory = nullptr;
  void* worker_data = nullptr;
  std::shared_ptr<void> keepalive;  // the factory (and its generation) while callouts run
  static WorkerContext* from(sy_worker_t* w) { return reinterpret_cast<WorkerContext*>(w); }
  sy_worker_t* handle() { return reinterpret_cast<sy_worker_t*>(this); }
};

// Drops the worker timers set through CTX (its factory is leaving this worker): each DROP
// runs. Call it before the factory's on_worker_stop, as a stream's timers are dropped before
// on_stream_destroy. Worker thread.
void cancel_worker_timers(WorkerContext* ctx);
// The worker thread calls this first: the worker handle a posted task receives is this
// worker's own context (index INDEX, loop LOOP).
void bind_worker_thread(int index, uv_loop_t* loop);
// The worker is stopping: timers set through its own context are dropped. Worker thread.
void unbind_worker_thread();
// True while the context with SERIAL exists. Any thread.
bool worker_context_alive(uint64_t serial);

// Streams with filters, by id, so any thread can reach one safely (or learn it is gone).
// An id whose worker index is kMaxWorkers or more is refused (logged; posts to it are stale).
void register_stream(sy_stream_id_t id, class FilterChain* chain,
                     std::shared_ptr<const void> keepalive);
void unregister_stream(sy_stream_id_t id);
// Allocates a never-reused id for a stream on worker INDEX.
sy_stream_id_t next_stream_id(int worker_index);

}  // namespace sy::filters

namespace sy::filters {

// A TCP proxy connection as network filters see it (sy_conn_t* points at one).
class NetConnection {
 public:
  virtual ~NetConnection() = default;
  // The bytes the current on_data callback is about (null outside one, or for the other dir).
  virtual std::string* data(sy_direction_t dir) = 0;
  // Writes toward DIR's destination now (SY_REQUEST: to the upstream).
  virtual bool inject(sy_direction_t dir, std::string_view bytes) = 0;
  virtual void close() = 0;
  virtual bool attribute(std::string_view path, std::string* out) const = 0;
  // Since 1.2 (sy_host_t's conn_resume, conn_pause_reading, conn_shutdown_write): FILTER (what
  // its on_connection_create returned) passes on what it holds in DIR; reading from a side
  // stops or goes on; DIR's destination gets a FIN.
  virtual sy_status_t resume(void* filter, sy_direction_t dir) = 0;
  virtual sy_status_t pause_reading(sy_direction_t side, bool paused) = 0;
  virtual sy_status_t shutdown_write(sy_direction_t dir) = 0;
  sy_conn_t* handle() { return reinterpret_cast<sy_conn_t*>(this); }
  static NetConnection* from(sy_conn_t* c) { return reinterpret_cast<NetConnection*>(c); }
};

}  // namespace sy::filters
