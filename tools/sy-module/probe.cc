// Runs a module's entry function in a forked child with a host table of stubs, so a module that
// crashes, hangs or misbehaves while loading costs the child, never sy-module.
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <type_traits>

#include "loader/elf.h"
#include "loader/loader.h"
#include "tools/sy-module/commands.h"

namespace sy::tool {
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

sy_host_t stub_host() {
  sy_host_t h{};
  h.size = sizeof h;
  h.abi_major = SY_ABI_MAJOR;
  h.abi_minor = SY_ABI_MINOR;
  size_t n = 0;
#define SY_STUB(field) (h.field = Stub<decltype(h.field)>::fn, ++n)
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
#undef SY_STUB
  // A slot added to sy_host_t in a later minor must get its stub here too.
  static_assert(sizeof(sy_host_t) == 8 + 56 * sizeof(void*), "stub every host function");
  (void)n;
  return h;
}

// Records on the pipe: one tag byte, the text, a NUL. 'h'/'n' filter names, 'e' an error,
// 'd' done.
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

[[noreturn]] void child(const std::string& file, int fd) {
  // Whatever the module prints must not end up in our JSON, and a crash needs no core file.
  ::dup2(STDERR_FILENO, STDOUT_FILENO);
  struct rlimit no_core = {0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  // The stamp the descriptor is compared with, read before any module code runs.
  loader::Stamp stamp;
  std::string error;
  if (!loader::read_stamp(file, &stamp, &error)) {
    put(fd, 'e', error);
    _exit(3);
  }
  // Without a slash dlopen would search the library path instead of opening this file.
  std::string path = file.find('/') == std::string::npos ? "./" + file : file;
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    const char* why = dlerror();
    put(fd, 'e', "cannot load " + file + ": " + (why ? why : "dlopen failed"));
    _exit(3);
  }
  auto entry = reinterpret_cast<sy_module_entry_fn>(dlsym(dl, SY_MODULE_ENTRY_SYMBOL));
  if (!entry) {
    put(fd, 'e',
        "missing entry symbol " SY_MODULE_ENTRY_SYMBOL " in " + file +
            ": declare it with SY_MODULE_ENTRY");
    _exit(3);
  }
  static sy_host_t host = stub_host();
  static char module_handle;  // the module may keep it; nothing behind it is ever read
  const sy_module_descriptor_t* d = entry(&host, reinterpret_cast<sy_module_t*>(&module_handle));
  if (std::string m = loader::check_descriptor(file, stamp, d); !m.empty()) {
    put(fd, 'e', m);
    _exit(3);
  }
  for (size_t i = 0; d->http_filters && d->http_filters[i]; ++i)
    put(fd, 'h', d->http_filters[i]->name);
  for (size_t i = 0; d->network_filters && d->network_filters[i]; ++i)
    put(fd, 'n', d->network_filters[i]->name);
  put(fd, 'd', "");
  // No destructors, no atexit handlers: the module's teardown is not what we are checking.
  _exit(0);
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return std::string("the module crashed while loading (signal ") + std::to_string(sig) + ", " +
           strsignal(sig) + ")";
  }
  if (WIFEXITED(status))
    return "the module exited while loading (status " + std::to_string(WEXITSTATUS(status)) + ")";
  return "the module's loader process ended unexpectedly";
}

}  // namespace

ChildReport probe_in_child(const std::string& file, int timeout_ms) {
  ChildReport report;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    report.error = std::string("cannot make a pipe: ") + std::strerror(errno);
    return report;
  }
  fflush(nullptr);  // the child must not flush our buffered output a second time
  pid_t pid = ::fork();
  if (pid < 0) {
    report.error = std::string("cannot fork: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return report;
  }
  if (pid == 0) {
    ::close(fds[0]);
    child(file, fds[1]);
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
  for (size_t pos = 0; pos < data.size();) {
    size_t end = data.find('\0', pos);
    if (end == std::string::npos) break;
    char tag = data[pos];
    std::string text = data.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag == 'h') report.http.push_back(text);
    if (tag == 'n') report.network.push_back(text);
    if (tag == 'e') report.error = text;
    if (tag == 'd') done = true;
  }
  if (timed_out) {
    report.error = "the module did not finish loading within " + std::to_string(timeout_ms / 1000) +
                   " s (its entry function or static constructors hang)";
  } else if (!done && report.error.empty()) {
    report.error = describe_status(status);
  }
  report.ran = done;
  return report;
}

}  // namespace sy::tool
