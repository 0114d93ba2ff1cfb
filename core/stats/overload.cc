// Process-wide overload caps (see overload.h).
#include "core/stats/overload.h"

#include <sys/resource.h>
#include <unistd.h>

namespace sy::stats {

Overload::Overload() {
  Registry& r = registry();
  connections_ = r.gauge("overload", {}, "downstream_connections");
  buffered_ = r.gauge("overload", {}, "buffered_bytes");
  max_connections_ = r.gauge("overload", {}, "max_downstream_connections");
  max_buffered_ = r.gauge("overload", {}, "max_buffered_bytes");
  cx_refused_ = r.counter("overload", {}, "cx_refused");
  rq_refused_ = r.counter("overload", {}, "rq_refused");
}

Overload& overload() {
  static Overload* o = new Overload();  // never destroyed: workers may still count at exit
  return *o;
}

void Overload::set_limits(uint64_t max_connections, uint64_t max_buffered_bytes) {
  max_connections_->set(int64_t(max_connections));
  max_buffered_->set(int64_t(max_buffered_bytes));
}

bool Overload::admit_connection() {
  int64_t max = max_connections_->value();
  if (max > 0 && connections_->value() >= max) {
    cx_refused_->inc();
    return false;
  }
  return true;
}

bool Overload::admit_stream() {
  int64_t max = max_buffered_->value();
  if (max > 0 && buffered_->value() >= max) {
    rq_refused_->inc();
    return false;
  }
  return true;
}

uint64_t default_max_connections() {
  // One descriptor per client connection, less a reserve for listeners, log files, modules and
  // the admin API. Not two per connection: idle keep-alive clients (the common case at high
  // connection counts) hold no upstream socket, since upstream connections are pooled and shared.
  // Halving the limit refused idle clients that Envoy, nginx and HAProxy all keep; an upstream
  // connect that does run out of descriptors fails that one request with a 503, not the process.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
  uint64_t fds = uint64_t(rl.rlim_cur);
  if (fds <= 256) return fds / 2 > 0 ? fds / 2 : 1;
  return fds - 128;
}

uint64_t default_max_buffered_bytes() {
  // A quarter of physical memory: the rest is left to the process's own structures, to the
  // modules and to everything else on the machine.
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return uint64_t(pages) * uint64_t(page) / 4;
}

}  // namespace sy::stats
