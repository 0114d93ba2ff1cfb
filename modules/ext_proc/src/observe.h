// observability_mode's side stream ("send and go"): the filter sends its messages and never
// waits for an answer; answers are ignored. The side stream outlives its HTTP stream by up to
// deferred_close_timeout, so messages still queued reach the processor: when the HTTP stream
// ends the request side is half-closed (END_STREAM), and the call is reset if the processor has
// not ended it by then.
// Nothing waits in this mode, so nothing holds the client back either: while the side stream's
// send queue is above its high watermark (a processor that reads slowly or not at all), body
// messages are dropped (counted in stream_msgs_dropped) until it drains below the low watermark;
// headers and trailers, bounded by the listener's header limits, always go. The queue, and so
// the proxy's memory, stays bounded and the request is never delayed. (Envoy instead pushes back
// on the client through the side stream's watermark.)
#pragma once

#include <string_view>
#include <vector>

#include "ext_proc.h"

namespace extproc {

class Observer {
 public:
  // Opens the side stream for the HTTP stream S: a callout of the worker's ext_proc config, so
  // it may outlive S (a stream's own callout if that config has left the worker). Null when it
  // cannot be opened.
  static Observer* open(const Config* cfg, sy_stream_t* s, const GrpcTarget& target,
                        const std::vector<sy_header_t>& headers);
  // Sends one gRPC-framed message; false once the side stream is over.
  bool send(std::string_view framed);
  // Whether the side stream's queue is above its high watermark: a body message now would only
  // grow it (see above).
  bool full() const { return full_; }
  // The HTTP stream is gone: END_STREAM now, a reset after CLOSE_MS unless the processor ends
  // the call first. The observer frees itself; the caller forgets it.
  void finish(uint64_t close_ms);

  // Callout and timer events (C callbacks).
  void ended(bool failed);
  void close_now();
  void writable() { full_ = false; }
  sy_timer_t* timer = nullptr;
  bool grpc_failed = false;  // the call ended with a gRPC status other than OK

 private:
  Observer(const Config* cfg, int32_t worker) : cfg_(cfg), worker_(worker) {}

  const Config* cfg_;
  int32_t worker_;  // the index of the worker it runs on
  sy_callout_stream_t* cs_ = nullptr;
  bool stream_owned_ = false;  // a callout of the HTTP stream: the host ends it with the stream
  bool finished_ = false;
  bool counted_ = false;
  bool full_ = false;  // from SY_ABOVE_HIGH_WATERMARK until on_writable
};

// CFG's handle on worker W (on_worker_start / on_worker_stop), for the callouts and timers that
// outlive a stream.
void worker_started(const Config* cfg, sy_worker_t* w);
void worker_stopped(const Config* cfg, sy_worker_t* w);

}  // namespace extproc
