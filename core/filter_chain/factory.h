// What the core knows of a loaded module filter: its vtable, its config object, and a reference
// that keeps the module's generation loaded. Built by the loader side, used by streams. The
// other concepts of the host side each have their header: module_scope.h (a module's scope and
// metrics), host_services.h (what the host table needs from the server), worker_context.h
// (sy_worker_t), stream_registry.h (streams by id), net_connection.h (sy_conn_t).
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
#include "core/filter_chain/module_scope.h"
#include "core/http/headers.h"
#include "core/stats/stats.h"

namespace sy::filters {

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

}  // namespace sy::filters
