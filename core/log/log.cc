// Process log implementation: whole lines with one write(2) each, so threads never interleave.
#include "core/log/log.h"

#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

namespace sy::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
const char* kNames[] = {"trace", "debug", "info", "warn", "error", "off"};
}  // namespace

Level level() { return g_level.load(std::memory_order_relaxed); }
void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }

bool parse_level(std::string_view name, Level* out) {
  for (int i = 0; i <= int(Level::kOff); ++i) {
    if (name == kNames[i]) {
      *out = Level(i);
      return true;
    }
  }
  return false;
}

void write(Level l, std::string_view msg) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  gmtime_r(&tv.tv_sec, &t);
  char head[64];
  int n = snprintf(head, sizeof head, "[%04d-%02d-%02dT%02d:%02d:%02d.%03dZ] [%s] ",
                   t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                   int(tv.tv_usec / 1000), kNames[int(l)]);
  std::string line;
  line.reserve(size_t(n) + msg.size() + 1);
  line.append(head, size_t(n)).append(msg).push_back('\n');
  ssize_t off = 0;
  while (off < ssize_t(line.size())) {
    ssize_t w = ::write(2, line.data() + off, line.size() - size_t(off));
    if (w <= 0) break;
    off += w;
  }
}

}  // namespace sy::log
