// The preflight child: a host table of stubs, the load steps reported on a pipe, and the parent's
// reading of what the child said, or of how it died.
#include "loader/preflight.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <type_traits>

namespace sy::loader {
namespace {

// A no-op for any host function: SY_ERR_UNSUPPORTED where a status is expected, else zero.
template <typename F>
struct Stub;
template <typename R, typename... A>
struct Stub<R (*)(A...)> {
  static R fn(A...) {
    if constexpr (std::is_same_v<R, sy_status_t>) {
      return SY_ERR_UNSUPPORTED;
    } else if constexpr (!std::is_void_v<R>) {
      return R{};
    }
  }
};

// What modules do while loading must succeed in the child as it would in the proxy: a module
// that refuses to load when the host refuses its counters would otherwise fail every preflight.
std::atomic<uint32_t> g_next_id{0};
sy_status_t define_metric(sy_module_t*, sy_metric_kind_t, sy_str_t, const sy_label_t*, size_t,
                          uint32_t* id) {
  if (id) *id = g_next_id++;
  return SY_OK;
}
sy_status_t metric_value(sy_module_t*, uint32_t, int64_t) { return SY_OK; }
sy_status_t metric_sample(sy_module_t*, uint32_t, uint64_t) { return SY_OK; }
sy_status_t metric_read(sy_module_t*, uint32_t, int64_t* value) {
  if (value) *value = 0;
  return SY_OK;
}
sy_status_t shared_absent(sy_str_t, sy_bytes_sink_fn, void*) { return SY_ERR_NOT_FOUND; }
sy_status_t shared_store(sy_str_t, sy_str_t, uint64_t) { return SY_OK; }
sy_status_t register_queue(sy_module_t*, sy_worker_t*, sy_str_t, uint32_t* id) {
  if (id) *id = g_next_id++;
  return SY_OK;
}
sy_status_t queue_absent(sy_str_t, uint32_t*) { return SY_ERR_NOT_FOUND; }
uint32_t one_worker() { return 1; }
// The module's `config:` in the child, as the real load will give it (module_config).
std::string g_module_config = "{}";
sy_status_t module_config(sy_module_t*, sy_str_t* out) {
  if (!out) return SY_ERR_INVALID;
  *out = {g_module_config.data(), g_module_config.size()};
  return SY_OK;
}

sy_host_t stub_host() {
  sy_host_t h{};
  h.size = sizeof h;
  h.abi_major = SY_ABI_MAJOR;
  h.abi_minor = SY_ABI_MINOR;
#define SY_STUB(field) (h.field = Stub<decltype(h.field)>::fn)
  SY_STUB(log), SY_STUB(log_enabled), SY_STUB(header_count), SY_STUB(header_get);
  SY_STUB(header_at), SY_STUB(header_set), SY_STUB(header_add), SY_STUB(header_remove);
  SY_STUB(body_get), SY_STUB(body_replace), SY_STUB(body_append), SY_STUB(body_prepend);
  SY_STUB(body_drain), SY_STUB(inject_data), SY_STUB(resume), SY_STUB(send_local_reply);
  SY_STUB(stream_id), SY_STUB(stream_worker), SY_STUB(post_to_stream), SY_STUB(post_to_worker);
  SY_STUB(worker_count), SY_STUB(worker_index), SY_STUB(stream_timer), SY_STUB(worker_timer);
  SY_STUB(timer_cancel), SY_STUB(http_callout), SY_STUB(cluster_endpoint);
  SY_STUB(metadata_set), SY_STUB(metadata_get), SY_STUB(filter_state_set);
  SY_STUB(filter_state_get), SY_STUB(attribute_get), SY_STUB(clear_route_cache);
  SY_STUB(set_upstream_override_host), SY_STUB(route_config), SY_STUB(metric_define);
  SY_STUB(metric_add), SY_STUB(metric_set), SY_STUB(metric_record), SY_STUB(metric_get);
  SY_STUB(shared_get), SY_STUB(shared_set), SY_STUB(queue_register), SY_STUB(queue_resolve);
  SY_STUB(queue_enqueue), SY_STUB(queue_dequeue), SY_STUB(conn_data_get);
  SY_STUB(conn_data_replace), SY_STUB(conn_inject), SY_STUB(conn_close);
  SY_STUB(conn_attribute_get);
  SY_STUB(skip_body);
  SY_STUB(post_to_worker_drop), SY_STUB(worker_timer_drop), SY_STUB(filter_index);
  SY_STUB(post_to_filter);
  SY_STUB(stream_callout_start), SY_STUB(stream_callout_send_data);
  SY_STUB(stream_callout_send_trailers), SY_STUB(stream_callout_reset);
  SY_STUB(stream_callout_pause_reading), SY_STUB(http_callout_start);
  SY_STUB(http_callout_cancel), SY_STUB(stream_reset);
  SY_STUB(metadata_ns_set), SY_STUB(metadata_ns_merge), SY_STUB(metadata_ns_get);
  SY_STUB(attribute_get_typed), SY_STUB(buffer_limit);
  SY_STUB(continue_headers_with_body), SY_STUB(module_config), SY_STUB(post_to_main);
  SY_STUB(set_response_flag);
  SY_STUB(conn_resume), SY_STUB(conn_pause_reading), SY_STUB(conn_shutdown_write);
  SY_STUB(conn_worker), SY_STUB(continue_headers_take_body);
#undef SY_STUB
  // A slot added to sy_host_t in a later minor must get its stub here too.
  static_assert(sizeof(sy_host_t) == 8 + 78 * sizeof(void*), "stub every host function");
  h.metric_define = define_metric;
  h.metric_add = metric_value;
  h.metric_set = metric_value;
  h.metric_record = metric_sample;
  h.metric_get = metric_read;
  h.shared_get = shared_absent;
  h.shared_set = shared_store;
  h.queue_register = register_queue;
  h.queue_resolve = queue_absent;
  h.worker_count = one_worker;
  h.module_config = module_config;
  return h;
}

// Records on the pipe: one tag byte, the text, a NUL. 's' the step about to run, 'h'/'n' filter
// names, 'e' an error, 'd' done.
void put(int fd, char tag, std::string_view text) {
  std::string rec(1, tag);
  rec.append(text.substr(0, text.find('\0'))).push_back('\0');
  for (size_t off = 0; off < rec.size();) {
    ssize_t n = ::write(fd, rec.data() + off, rec.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(4);
    off += size_t(n);
  }
}

[[noreturn]] void child(const std::string& path, const std::string& display, const Stamp& stamp,
                        int fd) {
  // The proxy's signal handlers (libuv's, which write to the parent's loop; the crash handler,
  // which would record a crash the parent is about to report) must not run here, and whatever
  // the module prints must not end up in sy-module's JSON. A crash needs no core.
  for (int sig :
       {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL})
    ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::dup2(STDERR_FILENO, STDOUT_FILENO);
  struct rlimit no_core = {0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);

  put(fd, 's', "static constructors");
  // Without a slash dlopen would search the library path instead of opening this file.
  std::string p = path.find('/') == std::string::npos ? "./" + path : path;
  void* dl = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    const char* why = dlerror();
    put(fd, 'e',
        "cannot load " + display + ": " + (why ? why : "dlopen failed") +
            ": check that the libraries it needs are installed (ldd " + display + ")");
    _exit(3);
  }
  auto entry = reinterpret_cast<sy_module_entry_fn>(dlsym(dl, SY_MODULE_ENTRY_SYMBOL));
  if (!entry) {
    put(fd, 'e',
        "missing entry symbol " SY_MODULE_ENTRY_SYMBOL " in " + display +
            ": declare it with SY_MODULE_ENTRY");
    _exit(3);
  }
  static sy_host_t host = stub_host();
  static char module_handle;  // the module may keep it; nothing behind it is ever read
  sy_module_t* module = reinterpret_cast<sy_module_t*>(&module_handle);
  put(fd, 's', "entry function");
  const sy_module_descriptor_t* d = entry(&host, module);
  if (std::string m = check_descriptor(display, stamp, d); !m.empty()) {
    put(fd, 'e', m);
    _exit(3);
  }
  if (d->on_load) {
    put(fd, 's', "on_load");
    sy_error_t err{};
    void* data = nullptr;
    if (!d->on_load(module, &data, &err)) {
      put(fd, 'e', on_load_refusal(stamp.name, display, err));
      _exit(3);
    }
  }
  for (size_t i = 0; d->http_filters && d->http_filters[i]; ++i)
    put(fd, 'h', d->http_filters[i]->name);
  for (size_t i = 0; d->network_filters && d->network_filters[i]; ++i)
    put(fd, 'n', d->network_filters[i]->name);
  put(fd, 'd', "");
  // No on_unload, destructors or atexit handlers: the module's teardown is not what is checked,
  // and the parent's (copied) state must not be torn down here.
  _exit(0);
}

std::string describe_status(int status, const std::string& step) {
  std::string where = step.empty() ? "" : " in its " + step;
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return std::string("the module crashed while loading (signal ") + std::to_string(sig) + ", " +
           strsignal(sig) + ")" + where;
  }
  if (WIFEXITED(status))
    return "the module exited while loading (status " + std::to_string(WEXITSTATUS(status)) + ")" +
           where;
  return "the module's loader process ended unexpectedly" + where;
}

}  // namespace

std::string on_load_refusal(const std::string& module, const std::string& display,
                            const sy_error_t& err) {
  size_t n = strnlen(err.message, sizeof err.message);
  return "module " + module + " (" + display + ") refused to load: on_load failed: " +
         (n ? std::string(err.message, n) : std::string("(no reason given)"));
}

PreflightReport preflight_in_child(const std::string& path, const std::string& display,
                                   const Stamp& stamp, int timeout_ms,
                                   const std::string& module_config_json) {
  g_module_config = module_config_json;  // copied into the child by the fork
  PreflightReport report;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    report.error =
        std::string("cannot make a pipe for the module preflight: ") + std::strerror(errno);
    return report;
  }
  fflush(nullptr);  // the child must not flush our buffered output a second time
  pid_t pid = ::fork();
  if (pid < 0) {
    report.error = std::string("cannot fork the module preflight: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return report;
  }
  if (pid == 0) {
    ::close(fds[0]);
    child(path, display, stamp, fds[1]);
  }
  ::close(fds[1]);

  std::string data;
  bool timed_out = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, int(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;  // timeout: the loop's deadline check ends it
    char buf[4096];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is done or dead
    data.append(buf, size_t(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  bool done = false;
  std::string step;
  for (size_t pos = 0; pos < data.size();) {
    size_t end = data.find('\0', pos);
    if (end == std::string::npos) break;
    char tag = data[pos];
    std::string text = data.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag == 's') step = text;
    if (tag == 'h') report.http.push_back(text);
    if (tag == 'n') report.network.push_back(text);
    if (tag == 'e') report.error = text;
    if (tag == 'd') done = true;
  }
  const std::string fix =
      ": it was tried in a child process and not loaded into this one; fix the module (run "
      "`sy-module check` on it under a debugger or sanitizers)";
  if (timed_out) {
    report.error = display + ": the module did not finish loading within " +
                   std::to_string(timeout_ms / 1000) + " s (its " +
                   (step.empty() ? std::string("static constructors") : step) + " hangs)" + fix;
  } else if (!done && report.error.empty()) {
    report.error = display + ": " + describe_status(status, step) + fix;
  }
  report.ran = done;
  return report;
}

}  // namespace sy::loader
