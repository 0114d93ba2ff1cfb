// What the server needs from the module loader (implemented in loader/, wired by main), so
// core never depends on the loader: filter resolution for config builds, and hot swap. The
// loader's whole view of core is this file and core/filter_chain/factory.h.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/filter_chain/factory.h"

namespace sy::server {

// Turns a `filters:` entry into a factory (loads the module if needed, builds its config).
// Appends to ERRORS and returns nullptr when it cannot.
struct FilterResolver {
  virtual ~FilterResolver() = default;
  virtual std::shared_ptr<filters::HttpFilterFactory> http(const config::Listener& listener,
                                                           const config::FilterRef& ref,
                                                           std::vector<config::Error>* errors) = 0;
  virtual std::shared_ptr<filters::NetworkFilterFactory> network(
      const config::Listener& listener, const config::FilterRef& ref,
      std::vector<config::Error>* errors) = 0;
};

class ModuleHost : public FilterResolver {
 public:
  // A config build is starting: module specs and module_path come from CFG.
  virtual void begin(const config::Config& cfg) = 0;
  // The build succeeded and is live: generations loaded for it become current.
  virtual void commit() = 0;
  // The build failed: generations loaded for it are dropped; nothing changes.
  virtual void abort() = 0;
  // The next build loads NAME afresh (from PATH when given). "" or why not.
  virtual std::string prepare_swap(const std::string& name, const std::string& path) = 0;
  // The next build uses NAME's previous generation. "" or why not.
  virtual std::string prepare_rollback(const std::string& name) = 0;
  virtual uint64_t generation(const std::string& name) const = 0;
  virtual void record_error(const std::string& name, const std::string& error) = 0;
  // GET /modules.
  virtual std::string list_json() const = 0;
  // Brings the module gauges in /stats up to date (before rendering them).
  virtual void refresh_stats() = 0;
  // Watches the files of modules declared with watch: true (re-synced after every commit) and
  // calls ON_CHANGE(name) on LOOP's thread when one is replaced.
  virtual void watch(uv_loop_t* loop, std::function<void(const std::string& name)> on_change) = 0;
};

}  // namespace sy::server
