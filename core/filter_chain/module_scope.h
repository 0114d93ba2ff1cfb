// A module's scope on the host side: who it is, its config, and the metrics it defined; the
// loader owns one per generation and hands its address to the module as sy_module_t*.
#pragma once

#include <switchyard/module.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/filter_chain/module_call.h"
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

// The entry of a metric the module defined, or nullptr. Stays valid as long as SCOPE.
const ModuleScope::Metric* module_metric(sy_module_t* scope, uint32_t id);
// The host's own stats about a module (loads, swaps, generation, ...). They are named
// loader.<module>.<stat>: module.<module>.* belongs to the metrics the module defines.
stats::Counter* module_host_counter(const std::string& module, const std::string& stat);
stats::Gauge* module_host_gauge(const std::string& module, const std::string& stat);

}  // namespace sy::filters
