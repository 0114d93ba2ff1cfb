// A worker thread: its own libuv loop, its listeners (SO_REUSEPORT), connections and pools.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/filter_chain/host_services.h"
#include "core/filter_chain/worker_context.h"
#include "core/net/post_queue.h"
#include "core/net/socket.h"
#include "core/runtime/runtime.h"
#include "core/server/client_limits.h"
#include "core/server/stream_owner.h"

namespace sy::upstream {
class Pool;
}

namespace sy::server {

class Worker;

// What a worker tracks of each downstream connection, whatever its protocol.
class DownstreamConn {
 public:
  virtual ~DownstreamConn() = default;
  // Close once idle (drain).
  virtual void drain() = 0;
  // Close now.
  virtual void abort() = 0;
  // The listener it came in on.
  virtual const std::string& listener() const = 0;
};

// One listener as a worker sees it. Connections keep it alive; reloads update it in place.
struct ListenerSlot {
  std::string name;
  Worker* worker = nullptr;
  uv_tcp_t* server = nullptr;  // null once the listener is closed
  std::shared_ptr<const Runtime> runtime;
  const ListenerRuntime* lr = nullptr;
  // What each client address holds here; kept across reloads, like the connections.
  std::shared_ptr<ClientTable> clients = std::make_shared<ClientTable>();
};

// What a connection keeps of the snapshot it was accepted under: its listener's config (limits,
// timeouts), stats, TLS context and protocols; these stay fixed for the connection's life. Not
// the snapshot itself, which holds the filter factories and with them module generations: a
// keep-alive connection idling between requests must not keep a swapped-out generation loaded.
// Its streams each take the slot's latest snapshot (and hold its generations while they run).
struct ListenerView {
  std::shared_ptr<const config::Config> config;  // keeps `cfg` alive
  const config::Listener* cfg = nullptr;
  ListenerStats stats;
  std::shared_ptr<tls::ServerContext> tls;  // null: plain TCP
  bool http1 = true, http2 = false;

  static ListenerView of(const ListenerSlot& slot) {
    return {slot.runtime->config, slot.lr->cfg,   slot.lr->stats,
            slot.lr->tls,         slot.lr->http1, slot.lr->http2};
  }
};

// A listening socket handed to a worker: a new fd, or -1 to keep the one it has.
struct ListenerFd {
  std::string name;
  int fd = -1;
};

class Worker final : public StreamWorker {
 public:
  explicit Worker(int index);
  ~Worker();

  void start();
  void join();
  // Runs FN on this worker's thread. Thread-safe.
  void post(std::function<void()> fn);

  // --- worker thread only ---
  // Switches to RT; opens the listeners in FDS, closes the ones not in RT.
  void apply(std::shared_ptr<const Runtime> rt, const std::vector<ListenerFd>& fds);
  // Stops accepting and closes connections as their streams finish. DONE runs (on this
  // thread) once no connection is left.
  void drain(std::function<void()> done);
  // Closes everything and ends the loop.
  void stop();

  uv_loop_t* loop() override { return &loop_; }
  int index() const override { return index_; }
  const std::shared_ptr<const Runtime>& runtime() const { return runtime_; }
  upstream::Pool* pool(const std::shared_ptr<ClusterRuntime>& cluster) override;
  // Connection bookkeeping, for drain and for freeing objects outside their own callbacks.
  void add(DownstreamConn* c);
  void remove(DownstreamConn* c);
  void defer_delete(std::function<void()> deleter);
  void access_log(std::string line) override;
  // A module callout to CLUSTER on this worker. Returns a cancel function, or an empty one when
  // the cluster does not exist (DONE is then never called).
  std::function<void()> start_callout(const std::string& cluster, http::HeaderMap headers,
                                      std::string body, uint64_t timeout_ms,
                                      std::function<void(const filters::CalloutResult&)> done);
  bool draining() const override { return draining_; }
  // Whether this worker has applied a config (its listeners, its filters' worker contexts): the
  // proxy is ready once every worker has. Set on the worker's thread, read on the main thread.
  bool applied() const { return applied_.load(std::memory_order_acquire); }

 private:
  static void on_accept(uv_stream_t* server, int status);
  void close_listener(ListenerSlot& slot);
  void check_drained();
  void run_deferred();
  void flush_access_log();

  int index_;
  uv_loop_t loop_;
  net::PostQueue posts_;
  std::thread thread_;

  std::shared_ptr<const Runtime> runtime_;
  std::map<std::string, std::shared_ptr<ListenerSlot>> listeners_;
  std::map<ClusterRuntime*,
           std::pair<std::shared_ptr<ClusterRuntime>, std::unique_ptr<upstream::Pool>>>
      pools_;
  std::vector<DownstreamConn*> conns_;
  std::vector<std::function<void()>> deferred_;
  std::unique_ptr<net::Timer> reaper_;
  std::unique_ptr<net::Timer> log_timer_;
  std::string log_buf_;
  // Per filter factory: the worker's context for it (sy_worker_t*), started and stopped with
  // the snapshots that use the factory.
  void sync_filter_workers();
  std::map<filters::HttpFilterFactory*, std::pair<std::shared_ptr<filters::HttpFilterFactory>,
                                                  std::unique_ptr<filters::WorkerContext>>>
      filter_workers_;
  // The same for network filters' factories (their on_worker_start, since ABI 1.2).
  std::map<filters::NetworkFilterFactory*, std::pair<std::shared_ptr<filters::NetworkFilterFactory>,
                                                     std::unique_ptr<filters::WorkerContext>>>
      net_filter_workers_;
  std::vector<std::unique_ptr<class Callout>> callouts_;
  bool draining_ = false;
  std::atomic<bool> applied_{false};
  std::function<void()> drained_;
};

}  // namespace sy::server
