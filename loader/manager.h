// The loader's side of the server's ModuleHost: resolves `filters:` entries to module filter
// factories, and runs hot swap and rollback through the Registry.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/runtime/module_host.h"
#include "loader/loader.h"
#include "loader/module_state.h"

namespace sy::loader {

class FileWatcher;

class Manager : public server::ModuleHost {
 public:
  // STATE_DIR: what outlives the process (module_state.h); the private copies go in
  // STATE_DIR/run/PID, removed when the Manager goes.
  explicit Manager(const std::string& state_dir);
  ~Manager() override;

  // server::ModuleHost
  void begin(const config::Config& cfg) override;
  void commit() override;
  void abort() override;
  std::string prepare_swap(const std::string& name, const std::string& path) override;
  std::string prepare_rollback(const std::string& name) override;
  uint64_t generation(const std::string& name) const override;
  void record_error(const std::string& name, const std::string& error) override;
  std::string list_json() const override;
  void refresh_stats() override { registry_.update_gauges(); }
  void watch(uv_loop_t* loop, std::function<void(const std::string& name)> on_change) override;

  // server::FilterResolver
  std::shared_ptr<filters::HttpFilterFactory> http(const config::Listener& listener,
                                                   const config::FilterRef& ref,
                                                   std::vector<config::Error>* errors) override;
  std::shared_ptr<filters::NetworkFilterFactory> network(
      const config::Listener& listener, const config::FilterRef& ref,
      std::vector<config::Error>* errors) override;

  Registry& registry() { return registry_; }

 private:
  // The generation a build should use for NAME: a pending one, the current one, or a new load.
  std::shared_ptr<Generation> generation_for(const std::string& name, const config::Location& loc,
                                             std::vector<config::Error>* errors);
  ModuleSpec spec_for(const std::string& name, std::string* error) const;
  void sync_watchers();

  // In this order: the registry's generations go before the directory of their copies.
  ModuleState state_;
  RunDir run_dir_;
  Registry registry_;
  bool running_ = false;  // a build has gone live: later loads go into a serving proxy
  std::vector<std::string> module_path_;
  std::vector<config::Module> declared_;
  std::map<std::string, std::shared_ptr<Generation>> pending_;  // loaded for the current build
  std::map<std::string, std::string> swap_;                     // name -> path ("" = same file)
  std::map<std::string, std::shared_ptr<Generation>> rollback_;
  // A path given to POST /modules/NAME/reload stays the module's path for later builds.
  std::map<std::string, std::string> path_override_, path_override_pending_;
  uv_loop_t* watch_loop_ = nullptr;
  std::function<void(const std::string&)> on_change_;
  std::map<std::string, std::unique_ptr<FileWatcher>> watchers_;  // by module name
};

}  // namespace sy::loader
