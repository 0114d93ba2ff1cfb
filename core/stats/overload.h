// Process-wide overload protection: how many downstream connections every worker holds
// together, and how many bytes all streams hold in buffers (socket write queues, HTTP/2
// outgoing bodies, bodies held by filters). Past a cap, new connections are refused and new
// streams answered 503, instead of the kernel's OOM killer ending every stream at once.
//
// Everything here is one relaxed atomic per update: the counts steer admission, and being off
// by a few in-flight updates across threads only moves the point of refusal by as much.
#pragma once

#include <cstdint>

#include "core/stats/stats.h"

namespace sy::stats {

class Overload {
 public:
  // The caps (0 = none); set on the main thread at each config apply.
  void set_limits(uint64_t max_connections, uint64_t max_buffered_bytes);

  // Called at accept: false (and the refusal counted) when the connection cap is reached.
  bool admit_connection();
  void connection_opened() { connections_->inc(); }
  void connection_closed() { connections_->dec(); }

  // Bytes entering (N > 0) or leaving (N < 0) a buffer that counts against the memory cap.
  void buffered(int64_t n) { buffered_->inc(n); }
  // Called for each new stream: false (and the refusal counted) past the memory cap. Streams
  // already in flight are not affected: they are what will bring the figure down.
  bool admit_stream();

  int64_t connections() const { return connections_->value(); }
  int64_t buffered_bytes() const { return buffered_->value(); }

 private:
  friend Overload& overload();
  Overload();

  Gauge* connections_;
  Gauge* buffered_;
  Gauge* max_connections_;
  Gauge* max_buffered_;
  Counter* cx_refused_;
  Counter* rq_refused_;
};

// The one instance (made on first use).
Overload& overload();

// The defaults for caps left at 0 in the config: derived from the open-file limit (each
// connection also needs an upstream socket) and from the machine's memory.
uint64_t default_max_connections();
uint64_t default_max_buffered_bytes();

}  // namespace sy::stats
