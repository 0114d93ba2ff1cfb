// Main-thread orchestration: start, reload (all or nothing), drain, stop.
#include "core/server/server.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <thread>

#include "config/json_text.h"
#include "core/admin/admin.h"
#include "core/filter_chain/callout_host.h"
#include "core/filter_chain/factory.h"
#include "core/filter_chain/host_services.h"
#include "core/log/log.h"
#include "core/net/socket.h"
#include "core/server/stream_callout.h"
#include "core/stats/overload.h"

namespace sy::server {
namespace {

std::string now_iso() {
  time_t t = time(nullptr);
  tm g;
  gmtime_r(&t, &g);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &g);
  return buf;
}

}  // namespace

Server::Server(std::string config_path, ModuleHost* modules)
    : config_path_(std::move(config_path)), modules_(modules) {
  loop_ = uv_default_loop();
  posts_.open(loop_);
}

Server::~Server() = default;

void Server::post(std::function<void()> fn) { posts_.post(std::move(fn)); }

bool Server::bind_listeners(const Runtime& rt, std::map<std::string, Bound>* next,
                            std::vector<std::vector<ListenerFd>>* per_worker, std::string* error) {
  per_worker->assign(workers_.size(), {});
  std::vector<int> opened;
  auto fail = [&](const std::string& e) {
    for (int fd : opened) ::close(fd);
    *error = e;
    return false;
  };
  for (const auto& lr : rt.listeners) {
    const config::Listener& l = *lr.cfg;
    std::string addr = l.address.str();
    auto old = bound_.find(l.name);
    if (old != bound_.end() && old->second.address == addr) {
      (*next)[l.name] = {addr, {}};
      for (auto& w : *per_worker) w.push_back({l.name, -1});
      continue;
    }
    sockaddr_storage ss;
    if (!net::parse_sockaddr(l.address.host, l.address.port, &ss))
      return fail(l.loc.str() + ": listener '" + l.name + "': bad address " + addr);
    // SO_REUSEPORT would let a second proxy share this address silently. A probe socket
    // without it fails when anyone else holds the address, so that case is refused.
    if (l.address.port != 0) {
      uint16_t probe_port;
      int probe = net::listen_socket(ss, false, 1, &probe_port);
      if (probe < 0)
        return fail(l.loc.str() + ": listener '" + l.name + "': cannot listen on " + addr + ": " +
                    strerror(-probe));
      ::close(probe);
    }
    Bound b{addr, {}};
    uint16_t port = l.address.port;
    for (size_t i = 0; i < workers_.size(); ++i) {
      sockaddr_storage at;
      net::parse_sockaddr(l.address.host, port, &at);
      int fd = net::listen_socket(at, true, 1024, &port);
      if (fd < 0)
        return fail(l.loc.str() + ": listener '" + l.name + "': cannot listen on " + addr + ": " +
                    strerror(-fd));
      opened.push_back(fd);
      b.fds.push_back(fd);
      (*per_worker)[i].push_back({l.name, fd});
    }
    SY_INFO("listener %s on %s:%u", l.name.c_str(), l.address.host.c_str(), unsigned(port));
    (*next)[l.name] = b;
  }
  return true;
}

std::string Server::apply(std::shared_ptr<const config::Config> cfg) {
  std::vector<config::Error> errors;
  if (modules_) modules_->begin(*cfg);
  auto rt = Runtime::build(cfg, runtime_.get(), &errors, modules_);
  if (!rt) {
    if (modules_) modules_->abort();
    std::string out;
    for (const auto& e : errors) out += e.str() + "\n";
    return out;
  }
  std::map<std::string, Bound> next;
  std::vector<std::vector<ListenerFd>> per_worker;
  std::string err;
  if (!bind_listeners(*rt, &next, &per_worker, &err)) {
    if (modules_) modules_->abort();
    return err + "\n";
  }
  if (modules_) modules_->commit();
  const config::Overload& ol = cfg->overload;
  stats::overload().set_limits(
      ol.max_downstream_connections ? ol.max_downstream_connections
                                    : stats::default_max_connections(),
      ol.max_buffered_bytes ? ol.max_buffered_bytes : stats::default_max_buffered_bytes());
  bound_ = std::move(next);
  runtime_ = rt;
  sync_cluster_endpoints();
  loaded_at_ = now_iso();
  for (size_t i = 0; i < workers_.size(); ++i) {
    auto fds = per_worker[i];
    Worker* w = workers_[i].get();
    w->post([w, rt, fds] { w->apply(rt, fds); });
  }
  return "";
}

// Ready once start-up has finished and every worker serves the config it was posted: before
// that, a worker still starting its filters (a Wasm VM, on_worker_start) would leave the
// first requests to the others, or to a half-started filter.
bool Server::ready() const {
  if (!ready_) return false;
  for (const auto& w : workers_)
    if (!w->applied()) return false;
  return true;
}

std::string Server::reload() {
  if (draining_) return "the proxy is draining\n";
  auto result = config::load_file(config_path_);
  if (!result.errors.empty()) {
    std::string out;
    for (const auto& e : result.errors) out += e.str() + "\n";
    SY_WARN("config reload refused; keeping version %llu:\n%s", (unsigned long long)version(),
            out.c_str());
    return out;
  }
  if (result.config->workers != runtime_->config->workers ||
      result.config->admin.address.str() != runtime_->config->admin.address.str()) {
    SY_WARN("config reload: 'workers' and 'admin' changes take effect at the next restart");
  }
  // The loader keeps its state directory for the life of the process (its private copies are
  // there, and the crash records of what it loaded will be).
  if (result.config->state_dir != runtime_->config->state_dir)
    SY_WARN("config reload: a 'state_dir' change takes effect at the next restart");
  std::string err = apply(result.config);
  if (!err.empty()) {
    SY_WARN("config reload refused; keeping version %llu:\n%s", (unsigned long long)version(),
            err.c_str());
    return err;
  }
  SY_INFO("config reloaded: version %llu", (unsigned long long)version());
  return "";
}

std::string Server::config_dump() const {
  std::string out;
  json::Writer(out)
      .begin_object()
      .key("file")
      .value(config_path_)
      .key("version")
      .value(version())
      .key("loaded_at")
      .value(loaded_at_)
      .key("workers")
      .value(uint64_t(workers_.size()))
      .key("yaml")
      .value(runtime_ ? std::string_view(runtime_->config->yaml) : "")
      .end_object();
  return out + "\n";
}

int Server::run(std::shared_ptr<const config::Config> cfg) {
  signal(SIGPIPE, SIG_IGN);
  unsigned n = cfg->workers ? cfg->workers
                            : std::clamp(std::thread::hardware_concurrency(), 1u,
                                         unsigned(config::kMaxWorkers));
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(int(i)));
  for (auto& w : workers_) w->start();

  install_host_services();
  std::string err = apply(cfg);
  if (!err.empty()) {
    SY_ERROR("cannot start:\n%s", err.c_str());
    stop_after_failed_start();
    return 1;
  }

  admin_ = std::make_unique<admin::AdminServer>(this);
  std::string admin_err = admin_->listen(cfg->admin.address);
  if (!admin_err.empty()) {
    SY_ERROR("%s", admin_err.c_str());
    stop_after_failed_start();
    return 1;
  }

  auto add_signal = [this](int signum, uv_signal_cb cb) {
    auto s = std::make_unique<uv_signal_t>();
    uv_signal_init(loop_, s.get());
    s->data = this;
    uv_signal_start(s.get(), cb, signum);
    signals_.push_back(std::move(s));
  };
  add_signal(SIGHUP, [](uv_signal_t* s, int) {
    SY_INFO("SIGHUP: reloading the config");
    static_cast<Server*>(s->data)->reload();
  });
  auto on_term = [](uv_signal_t* s, int signum) {
    SY_INFO("%s: draining", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    static_cast<Server*>(s->data)->drain();
  };
  add_signal(SIGTERM, on_term);
  add_signal(SIGINT, on_term);

  if (modules_) {
    modules_->watch(loop_, [this](const std::string& name) {
      uint64_t gen = 0;
      std::string e = swap_module(name, "", &gen);
      if (e.empty())
        SY_INFO("module %s: file replaced; now generation %llu", name.c_str(),
                (unsigned long long)gen);
      else
        SY_WARN("module %s: file replaced but not swapped:\n%s", name.c_str(), e.c_str());
    });
  }
  ready_ = true;
  SY_INFO("switchyard %s ready: %u workers, admin on %s", SY_VERSION, n, admin_->address().c_str());
  uv_run(loop_, UV_RUN_DEFAULT);
  return 0;
}

void Server::stop_after_failed_start() {
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->post([wp] { wp->stop(); });
  }
  for (auto& w : workers_) w->join();
  // The main loop never ran, so the teardown queued for it (filter configs and module
  // generations whose last reference went while the start was being built) would be dropped
  // with the queue, and no module's on_unload would run. With the workers gone it runs here:
  // first what the workers' unrun tasks and the snapshot held, then what was queued.
  filters::set_main_executor(nullptr);
  workers_.clear();
  runtime_.reset();
  admin_.reset();
  posts_.run_all();
  posts_.close();
  uv_run(loop_, UV_RUN_NOWAIT);
}

void Server::drain() {
  if (draining_) return;
  draining_ = true;
  ready_ = false;
  uint64_t timeout_ms = 0;
  for (const auto& l : runtime_->config->listeners)
    timeout_ms = std::max<uint64_t>(timeout_ms, uint64_t(l.timeouts.drain.count()));
  if (timeout_ms == 0) timeout_ms = 30000;
  drain_timer_ = std::make_unique<uv_timer_t>();
  uv_timer_init(loop_, drain_timer_.get());
  drain_timer_->data = this;
  uv_timer_start(
      drain_timer_.get(),
      [](uv_timer_t* t) {
        SY_WARN("drain timeout: closing the connections still open");
        static_cast<Server*>(t->data)->finish_drain();
      },
      timeout_ms, 0);
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->post([this, wp] {
      wp->drain([this] {
        post([this] {
          if (++drained_workers_ == workers_.size()) finish_drain();
        });
      });
    });
  }
}

void Server::finish_drain() {
  static bool done = false;
  if (done) return;
  done = true;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    wp->post([wp] { wp->stop(); });
  }
  for (auto& w : workers_) w->join();
  workers_.clear();
  // With the workers gone, teardown runs right here: filter configs and module generations are
  // released in order and each module's on_unload runs before the process exits.
  filters::set_main_executor(nullptr);
  // What the workers queued for the main thread while they stopped runs first, in the order
  // posted: a stream aborted by Worker::stop can drop the last reference to a filter config a
  // reload replaced, whose teardown then waits in this queue; the loop does not run again, so
  // closing the queue unrun would leak the config and its generation and skip on_unload.
  posts_.run_all();
  runtime_.reset();
  admin_.reset();
  uv_timer_stop(drain_timer_.get());
  uv_close(reinterpret_cast<uv_handle_t*>(drain_timer_.release()),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  for (auto& s : signals_)
    uv_close(reinterpret_cast<uv_handle_t*>(s.release()),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
  signals_.clear();
  posts_.close();
  SY_INFO("drained; exiting");
  // Admin clients may still hold sockets open; nothing is left to serve them.
  uv_stop(loop_);
}

void Server::install_host_services() {
  filters::HostServices hs;
  hs.worker_count = [this] { return uint32_t(workers_.size()); };
  hs.post_to_main = [this](std::function<void()> fn) { post(std::move(fn)); };
  hs.post_to_worker = [this](int32_t index, std::function<void()> fn) {
    size_t n = workers_.size();
    if (n == 0) return false;
    size_t i = index < 0 ? rr_worker_.fetch_add(1) % n : size_t(index);
    if (i >= n) return false;
    workers_[i]->post(std::move(fn));
    return true;
  };
  hs.callout = [this](int worker, const std::string& cluster, http::HeaderMap headers,
                      std::string body, uint64_t timeout_ms,
                      std::function<void(const filters::CalloutResult&)> done) {
    if (worker < 0 || size_t(worker) >= workers_.size()) return std::function<void()>();
    return workers_[size_t(worker)]->start_callout(cluster, std::move(headers), std::move(body),
                                                   timeout_ms, std::move(done));
  };
  hs.cluster_endpoint = [this](const std::string& cluster, size_t index, std::string* out) {
    std::lock_guard<std::mutex> lock(endpoints_mu_);
    auto it = endpoints_.find(cluster);
    if (it == endpoints_.end() || index >= it->second.size()) return false;
    *out = it->second[index];
    return true;
  };
  filters::set_host_services(std::move(hs));
  filters::CalloutServices cs;
  cs.start_stream = [this](int worker, const std::string& cluster, http::HeaderMap headers,
                           uint64_t timeout_ms,
                           filters::CalloutEvents* events) -> filters::CalloutTransport* {
    if (worker < 0 || size_t(worker) >= workers_.size()) return nullptr;
    return StreamCallout::start(workers_[size_t(worker)].get(), cluster, std::move(headers),
                                timeout_ms, events);
  };
  cs.start_unary = [this](int worker, const std::string& cluster, http::HeaderMap headers,
                          std::string body, uint64_t timeout_ms,
                          std::function<void(const filters::CalloutResult&)> done) {
    if (worker < 0 || size_t(worker) >= workers_.size()) return std::function<void()>();
    Worker* w = workers_[size_t(worker)].get();
    // A callout that fails at once (no endpoint) answers inside start_callout: hold such an
    // answer for the next loop turn, so the module has its handle before its callback runs.
    auto starting = std::make_shared<bool>(true);
    auto once = [w, starting, done = std::move(done)](const filters::CalloutResult& r) {
      if (!*starting) return done(r);
      w->defer_delete([done, r] { done(r); });
    };
    auto cancel =
        w->start_callout(cluster, std::move(headers), std::move(body), timeout_ms, std::move(once));
    *starting = false;
    return cancel;
  };
  filters::set_callout_services(std::move(cs));
  // Teardown of filter configs and generations runs on the main thread, and only after every
  // worker has run what was queued before it: a task posted by a module must not outlive it.
  filters::set_main_executor([this](std::function<void()> fn) {
    post([this, fn = std::move(fn)]() mutable {
      if (workers_.empty()) {
        fn();
        return;
      }
      auto left = std::make_shared<size_t>(workers_.size());
      auto task = std::make_shared<std::function<void()>>(std::move(fn));
      for (auto& w : workers_) {
        w->post([this, left, task] {
          post([left, task] {
            if (--*left == 0) (*task)();
          });
        });
      }
    });
  });
}

void Server::sync_cluster_endpoints() {
  std::lock_guard<std::mutex> lock(endpoints_mu_);
  endpoints_.clear();
  for (const auto& [name, c] : runtime_->clusters) endpoints_[name] = c->addr_strs;
}

std::string Server::swap_module(const std::string& name, const std::string& path,
                                uint64_t* generation) {
  if (!modules_) return "modules are not supported by this build";
  if (draining_) return "the proxy is draining";
  std::string err = modules_->prepare_swap(name, path);
  if (err.empty()) err = apply(runtime_->config);
  if (!err.empty()) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    modules_->record_error(name, err);
    SY_WARN("module %s: swap refused; generation %llu keeps serving: %s", name.c_str(),
            (unsigned long long)modules_->generation(name), err.c_str());
    return err;
  }
  *generation = modules_->generation(name);
  SY_INFO("module %s: swapped to generation %llu", name.c_str(), (unsigned long long)*generation);
  return "";
}

std::string Server::rollback_module(const std::string& name, uint64_t* generation) {
  if (!modules_) return "modules are not supported by this build";
  std::string err = modules_->prepare_rollback(name);
  if (err.empty()) err = apply(runtime_->config);
  if (!err.empty()) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return err;
  }
  *generation = modules_->generation(name);
  SY_INFO("module %s: rolled back to generation %llu", name.c_str(),
          (unsigned long long)*generation);
  return "";
}

std::string Server::modules_json() const { return modules_ ? modules_->list_json() : "[]\n"; }

}  // namespace sy::server
