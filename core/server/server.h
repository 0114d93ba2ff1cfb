// The main thread: owns config, workers, listening sockets, signals, reload and drain.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/admin/admin.h"
#include "core/net/post_queue.h"
#include "core/runtime/module_host.h"
#include "core/runtime/runtime.h"
#include "core/server/worker.h"

namespace sy::admin {
class AdminServer;
}

namespace sy::server {

class Server final : public admin::Backend {
 public:
  // MODULES may be null (no module support: configs with filters are refused).
  Server(std::string config_path, ModuleHost* modules);
  ~Server();

  // Starts everything with CFG and runs until drained. Returns the process exit code.
  int run(std::shared_ptr<const config::Config> cfg);

  // --- main thread ---
  // Re-reads the config file and applies it whole, or keeps the old one. Returns "" on
  // success, else the errors (one per line, each with file:line:col).
  std::string reload() override;
  void drain() override;
  bool ready() const override;
  uint64_t version() const override { return runtime_ ? runtime_->version : 0; }
  std::string config_dump() const override;
  // Hot swap: load NAME afresh (from PATH when given) and apply; all or nothing. Returns "" and
  // sets *GENERATION, or the error (the old generation keeps serving).
  std::string swap_module(const std::string& name, const std::string& path,
                          uint64_t* generation) override;
  std::string rollback_module(const std::string& name, uint64_t* generation) override;
  std::string modules_json() const override;
  void refresh_module_stats() override {
    if (modules_) modules_->refresh_stats();
  }
  uv_loop_t* loop() override { return loop_; }
  // Runs FN on the main thread. Thread-safe.
  void post(std::function<void()> fn);

 private:
  struct Bound {
    std::string address;   // as configured
    std::vector<int> fds;  // one per worker, handed over when new
  };
  // Opens sockets for listeners that are new or moved. All or nothing.
  bool bind_listeners(const Runtime& rt, std::map<std::string, Bound>* next,
                      std::vector<std::vector<ListenerFd>>* per_worker, std::string* error);
  std::string apply(std::shared_ptr<const config::Config> cfg);
  void finish_drain();
  // Stops the workers and releases everything a start that failed had built (main thread).
  void stop_after_failed_start();

  void install_host_services();
  void sync_cluster_endpoints();

  std::string config_path_;
  ModuleHost* modules_;
  mutable std::mutex endpoints_mu_;
  std::map<std::string, std::vector<std::string>> endpoints_;  // for cluster_endpoint()
  std::atomic<uint32_t> rr_worker_{0};
  uv_loop_t* loop_;
  net::PostQueue posts_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::shared_ptr<const Runtime> runtime_;
  std::map<std::string, Bound> bound_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::vector<std::unique_ptr<uv_signal_t>> signals_;
  std::unique_ptr<uv_timer_t> drain_timer_;
  std::string loaded_at_;
  bool ready_ = false;
  bool draining_ = false;
  size_t drained_workers_ = 0;
};

}  // namespace sy::server
