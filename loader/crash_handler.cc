// The crash handler. Everything below runs in a signal handler of a process that is falling
// apart, so it uses only async-signal-safe calls (write, open, rename, clock_gettime,
// sigaction, raise) and buffers on the stack: no malloc, no stdio, no locks.
#include "loader/crash_handler.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/filter_chain/module_call.h"
#include "loader/crash_record.h"

namespace sy::loader {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
struct sigaction g_previous[NSIG];
std::atomic<bool> g_reported{false};

// A line of text on the stack.
struct Line {
  char buf[1024];
  size_t len = 0;
  void add(const char* s) {
    for (; s && *s && len < sizeof buf - 1; ++s) buf[len++] = *s;
  }
  void add_number(uint64_t v) {
    char digits[20];
    int n = 0;
    do {
      digits[n++] = char('0' + v % 10);
      v /= 10;
    } while (v);
    while (n && len < sizeof buf - 1) buf[len++] = digits[--n];
  }
};

void write_all(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= size_t(w);
  }
}

// Writes the record through a temporary file and a rename, so a reader never sees half of one.
bool write_record(const char* path, const CrashFacts& facts) {
  char text[2048];
  size_t n = format_crash_record(text, sizeof text, facts);
  char tmp[4096];
  size_t plen = strlen(path);
  static const char kSuffix[] = ".tmp";
  if (n == 0 || plen + sizeof kSuffix > sizeof tmp) return false;
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, kSuffix, sizeof kSuffix);
  int fd = ::open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  write_all(fd, text, n);
  ::close(fd);
  return ::rename(tmp, path) == 0;
}

void on_fatal_signal(int sig, siginfo_t* info, void* /*context*/) {
  int saved_errno = errno;
  // One report per process: a second thread crashing meanwhile goes straight to the end.
  if (!g_reported.exchange(true)) {
    const filters::ModuleCall* call = filters::t_module_call;
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    char when[32];
    format_utc(when, now.tv_sec);
    Line line;
    line.add("[");
    line.add(when);
    line.add("] [error] ");
    if (call && call->module) {
      const filters::ModuleIdentity* m = call->module;
      CrashFacts facts{m->name, m->sha256,  m->generation,    call->callback,
                       sig,     now.tv_sec, int64_t(getpid())};
      bool recorded = *m->crash_record && write_record(m->crash_record, facts);
      line.add("module ");
      line.add(m->name);
      line.add(" generation ");
      line.add_number(m->generation);
      line.add(" (sha256 ");
      line.add(m->sha256);
      line.add(") crashed the process: signal ");
      line.add_number(uint64_t(sig));
      line.add(" (");
      line.add(signal_name(sig));
      line.add(") in its ");
      line.add(call->callback);
      line.add(" callback; ");
      if (recorded) {
        line.add("crash record: ");
        line.add(m->crash_record);
        line.add(" (the next start will not load this sha256 again; see on_module_crash)");
      } else {
        line.add("no crash record written");
        if (*m->crash_record) {
          line.add(" (cannot write ");
          line.add(m->crash_record);
          line.add(")");
        }
      }
    } else if (call) {
      line.add("module code of no known module crashed the process: signal ");
      line.add_number(uint64_t(sig));
      line.add(" (");
      line.add(signal_name(sig));
      line.add(") in ");
      line.add(call->callback);
    } else {
      line.add("switchyard crashed: signal ");
      line.add_number(uint64_t(sig));
      line.add(" (");
      line.add(signal_name(sig));
      line.add(") outside any module call");
    }
    line.buf[line.len++] = '\n';
    write_all(STDERR_FILENO, line.buf, line.len);
  }

  // Hand the signal on to what was there before us: the default action (death, and a core
  // dump when enabled) unless a sanitizer or runtime had installed its own handler.
  const struct sigaction& prev = g_previous[sig];
  ::sigaction(sig, &prev, nullptr);
  bool prev_is_handler = (prev.sa_flags & SA_SIGINFO)
                             ? prev.sa_sigaction != nullptr
                             : (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN);
  // A fault the kernel raised happens again when we return, now reaching the previous handler
  // with its real details. Anything else (abort(), kill) is raised again: it is blocked until
  // we return, then delivered with the restored action.
  if (!(prev_is_handler && info && info->si_code > 0)) raise(sig);
  errno = saved_errno;
}

}  // namespace

void install_crash_handler() {
  filters::use_crash_signal_stack();
  struct sigaction sa {};
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (int sig : kSignals) ::sigaction(sig, &sa, &g_previous[sig]);
}

}  // namespace sy::loader
