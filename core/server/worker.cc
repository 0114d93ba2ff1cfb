// Worker threads: loop, listeners, connection bookkeeping, pools, access-log buffering.
#include "core/server/worker.h"

#include <unistd.h>

#include <algorithm>

#include "core/log/log.h"
#include "core/server/callout.h"
#include "core/server/conn_setup.h"
#include "core/server/http1_conn.h"
#include "core/server/http2_conn.h"
#include "core/server/stream_callout.h"
#include "core/server/tcp_proxy.h"
#include "core/stats/overload.h"
#include "core/upstream/pool.h"

namespace sy::server {
namespace {
constexpr size_t kLogFlushBytes = 32 * 1024;
constexpr uint64_t kLogFlushMs = 100;
}  // namespace

Worker::Worker(int index) : index_(index) {
  uv_loop_init(&loop_);
  posts_.open(&loop_);
  reaper_ = std::make_unique<net::Timer>(&loop_);
  log_timer_ = std::make_unique<net::Timer>(&loop_);
}

Worker::~Worker() { uv_loop_close(&loop_); }

void Worker::start() {
  thread_ = std::thread([this] {
    filters::bind_worker_thread(index_, &loop_);
    uv_run(&loop_, UV_RUN_DEFAULT);
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::post(std::function<void()> fn) { posts_.post(std::move(fn)); }

void Worker::on_accept(uv_stream_t* server, int status) {
  auto* slot = static_cast<ListenerSlot*>(server->data);
  if (status != 0 || !slot) return;
  Worker* w = slot->worker;
  // Accept everything that is waiting: one wakeup per burst instead of one per connection.
  net::Socket* s = net::Socket::accept(server, nullptr);
  if (!s) return;
  // Past the process-wide connection cap the connection is closed at once (and counted), so
  // the descriptors and memory of those already open stay enough to serve them.
  if (!stats::overload().admit_connection()) {
    s->close();
    return;
  }
  auto it = w->listeners_.find(slot->name);
  if (it == w->listeners_.end()) {
    s->close();
    return;
  }
  const ListenerRuntime* lr = it->second->lr;
  if (lr->cfg->tcp_proxy) {
    if (lr->tls) {
      auto* c = new ConnectionSetup(w, it->second, s, nullptr);
      c->start();
      return;
    }
    auto* t = new TcpSession(w, it->second, s);
    t->start();
    return;
  }
  // One address may hold only so many connections: past that, it is closed at once, before
  // any handshake or read costs anything.
  auto lease = it->second->clients->take(s->peer_ip(), ClientLease::kConnection,
                                         lr->cfg->limits.connections_per_client);
  if (!lease) {
    lr->stats.cx_client_limit->inc();
    s->close();
    return;
  }
  if (lr->tls || (lr->http1 && lr->http2)) {
    // TLS first, or a look at the first bytes: the protocol is decided per connection.
    auto* c = new ConnectionSetup(w, it->second, s, std::move(lease));
    c->start();
    return;
  }
  if (lr->http2) {
    auto* c = new Http2Connection(w, it->second, s, make_conn_info(s, std::move(lease)));
    c->start();
    return;
  }
  auto* c = new Http1Connection(w, it->second, s, make_conn_info(s, std::move(lease)));
  c->start();
}

void Worker::apply(std::shared_ptr<const Runtime> rt, const std::vector<ListenerFd>& fds) {
  runtime_ = rt;
  for (const auto& lf : fds) {
    auto& slot = listeners_[lf.name];
    if (!slot) {
      slot = std::make_shared<ListenerSlot>();
      slot->name = lf.name;
      slot->worker = this;
    }
    if (lf.fd >= 0) {
      if (slot->server) close_listener(*slot);
      auto* tcp = new uv_tcp_t;
      uv_tcp_init(&loop_, tcp);
      if (uv_tcp_open(tcp, lf.fd) != 0 ||
          uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 1024, on_accept) != 0) {
        SY_ERROR("worker %d: cannot listen on the socket for listener %s", index_, lf.name.c_str());
        uv_close(reinterpret_cast<uv_handle_t*>(tcp),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
        continue;
      }
      tcp->data = slot.get();
      slot->server = tcp;
    }
  }
  // Every slot follows the new snapshot; slots the new config does not name are closed, and
  // their connections finish on the snapshot they hold.
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    auto& slot = it->second;
    const ListenerRuntime* lr = rt->listener(slot->name);
    if (!lr) {
      close_listener(*slot);
      // Its connections finish what they are doing and close, rather than serving on forever
      // with a listener the config no longer has.
      std::vector<DownstreamConn*> conns = conns_;
      for (auto* c : conns)
        if (c->listener() == slot->name) c->drain();
      it = listeners_.erase(it);
      continue;
    }
    slot->runtime = rt;
    slot->lr = lr;
    ++it;
  }
  sync_filter_workers();
  // Pools of clusters that left the config (or changed) stop reusing connections.
  for (auto it = pools_.begin(); it != pools_.end();) {
    bool live = false;
    for (const auto& [name, c] : rt->clusters) live = live || c.get() == it->first;
    if (!live) {
      it->second.second->retire();
      if (it->second.second->empty()) {
        it = pools_.erase(it);
        continue;
      }
    }
    ++it;
  }
  applied_.store(true, std::memory_order_release);
}

namespace {

// The context CTX of factory F on this worker: which kind of factory it serves.
void bind_context(filters::WorkerContext* ctx, filters::HttpFilterFactory* f) { ctx->factory = f; }
void bind_context(filters::WorkerContext* ctx, filters::NetworkFilterFactory* f) {
  ctx->net_factory = f;
}

// Starts a context for each factory in LIVE this worker has none for, and stops those of
// factories no longer in LIVE. HTTP and network filter factories alike (both tables have
// on_worker_start and on_worker_stop; a module's table without them has them NULL).
template <typename Factory, typename Contexts>
void sync_contexts(const std::map<Factory*, std::shared_ptr<Factory>>& live, Contexts* contexts,
                   int index, uv_loop_t* loop) {
  for (auto it = contexts->begin(); it != contexts->end();) {
    if (live.count(it->first)) {
      ++it;
      continue;
    }
    auto& [factory, ctx] = it->second;
    // Timers go first (their DROPs run), as a stream's go before on_stream_destroy.
    filters::cancel_worker_timers(ctx.get());
    if (factory->vt->on_worker_stop) {
      filters::ModuleCallMark mark(factory->scope ? factory->scope->identity : nullptr,
                                   "on_worker_stop");
      factory->vt->on_worker_stop(factory->config, ctx->worker_data);
    }
    it = contexts->erase(it);
  }
  for (auto& [raw, f] : live) {
    if (contexts->count(raw)) continue;
    auto ctx = std::make_unique<filters::WorkerContext>();
    ctx->index = index;
    ctx->loop = loop;
    bind_context(ctx.get(), raw);
    ctx->keepalive = f;
    if (f->vt->on_worker_start) {
      filters::ModuleCallMark mark(f->scope ? f->scope->identity : nullptr, "on_worker_start");
      ctx->worker_data = f->vt->on_worker_start(f->config, ctx->handle());
    }
    (*contexts)[raw] = {f, std::move(ctx)};
  }
}

}  // namespace

void Worker::sync_filter_workers() {
  std::map<filters::HttpFilterFactory*, std::shared_ptr<filters::HttpFilterFactory>> live;
  std::map<filters::NetworkFilterFactory*, std::shared_ptr<filters::NetworkFilterFactory>> net;
  if (runtime_)
    for (const auto& l : runtime_->listeners) {
      for (const auto& f : l.filters) live[f.get()] = f;
      for (const auto& f : l.network_filters) net[f.get()] = f;
    }
  sync_contexts(live, &filter_workers_, index_, &loop_);
  sync_contexts(net, &net_filter_workers_, index_, &loop_);
}

std::function<void()> Worker::start_callout(
    const std::string& cluster, http::HeaderMap headers, std::string body, uint64_t timeout_ms,
    std::function<void(const filters::CalloutResult&)> done) {
  if (!runtime_) return {};
  auto it = runtime_->clusters.find(cluster);
  if (it == runtime_->clusters.end()) return {};
  auto c = std::make_unique<Callout>(&loop_, pool(it->second), cluster, it->second->tls != nullptr,
                                     std::move(headers), std::move(body), timeout_ms,
                                     std::move(done), [this](Callout* self) {
                                       for (auto& p : callouts_) {
                                         if (p.get() != self) continue;
                                         Callout* raw = p.release();
                                         std::erase(callouts_, nullptr);
                                         defer_delete([raw] { delete raw; });
                                         return;
                                       }
                                     });
  Callout* raw = c.get();
  callouts_.push_back(std::move(c));
  raw->start();
  // The callout may have finished inside start() (no endpoint): then it is already queued for
  // deletion and cancelling is a no-op.
  return [this, raw] {
    bool live = false;
    for (auto& p : callouts_) live = live || p.get() == raw;
    if (live) raw->cancel();
  };
}

void Worker::close_listener(ListenerSlot& slot) {
  if (!slot.server) return;
  slot.server->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(slot.server),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  slot.server = nullptr;
}

upstream::Pool* Worker::pool(const std::shared_ptr<ClusterRuntime>& cluster) {
  auto& entry = pools_[cluster.get()];
  if (!entry.second) {
    entry.first = cluster;
    entry.second = upstream::make_pool(&loop_, cluster);
  }
  return entry.second.get();
}

void Worker::add(DownstreamConn* c) {
  conns_.push_back(c);
  stats::overload().connection_opened();
}

void Worker::remove(DownstreamConn* c) {
  auto it = std::find(conns_.begin(), conns_.end(), c);
  if (it != conns_.end()) {
    *it = conns_.back();
    conns_.pop_back();
    stats::overload().connection_closed();
  }
  defer_delete([c] { delete c; });
  if (draining_) check_drained();
}

void Worker::defer_delete(std::function<void()> deleter) {
  deferred_.push_back(std::move(deleter));
  if (deferred_.size() == 1) {
    reaper_->start(0, [this] { run_deferred(); });
  }
}

void Worker::run_deferred() {
  // Deleting may defer more deletions; run until none is left.
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> batch;
    batch.swap(deferred_);
    for (auto& d : batch) d();
  }
}

void Worker::access_log(std::string line) {
  log_buf_ += line;
  if (log_buf_.size() >= kLogFlushBytes) {
    flush_access_log();
  } else if (!log_timer_->active()) {
    log_timer_->start(kLogFlushMs, [this] { flush_access_log(); });
  }
}

void Worker::flush_access_log() {
  if (log_buf_.empty()) return;
  if (runtime_ && runtime_->access_log) runtime_->access_log->write(log_buf_);
  log_buf_.clear();
}

void Worker::drain(std::function<void()> done) {
  draining_ = true;
  drained_ = std::move(done);
  for (auto& [name, slot] : listeners_) close_listener(*slot);
  std::vector<DownstreamConn*> conns = conns_;
  for (auto* c : conns) c->drain();
  check_drained();
}

void Worker::check_drained() {
  if (conns_.empty() && drained_) {
    auto done = std::move(drained_);
    drained_ = nullptr;
    done();
  }
}

void Worker::stop() {
  for (auto& [name, slot] : listeners_) close_listener(*slot);
  listeners_.clear();
  // Connections go first, while the pools their streams release into still exist; their
  // deferred deletions run before the pools are torn down.
  std::vector<DownstreamConn*> conns = conns_;
  for (auto* c : conns) c->abort();
  run_deferred();
  // Cancelled callouts report to their modules; the owner list is detached first because each
  // one removes itself from it.
  auto callouts = std::move(callouts_);
  callouts_.clear();
  for (auto& c : callouts) c->cancel();
  callouts.clear();
  StreamCallout::shutdown_all();
  run_deferred();
  flush_access_log();
  runtime_.reset();
  sync_filter_workers();
  filters::unbind_worker_thread();  // timers set through the worker's own handle
  pools_.clear();
  run_deferred();
  reaper_.reset();
  log_timer_.reset();
  net::Socket::close_ended();  // the walk below would close them without freeing them
  posts_.close();
  // Whatever is still open closes now; uv_run returns once every handle is closed.
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
}

}  // namespace sy::server
