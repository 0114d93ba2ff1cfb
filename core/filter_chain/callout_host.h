// The host side of the 1.2 callout functions (streaming callouts, cancellable unary callouts,
// stream reset): the handles modules hold, and the narrow interface the server implements to
// carry a streaming callout over its upstream pools (core/server/stream_callout.cc).
#pragma once

#include <switchyard/module.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/filter_chain/factory.h"
#include "core/filter_chain/host_services.h"
#include "core/filter_chain/worker_context.h"
#include "core/http/headers.h"

namespace sy::filters {

// What a streaming callout reports to the host table, on its worker. After a terminal event
// (complete, failure) the transport never touches the events object again.
class CalloutEvents {
 public:
  virtual ~CalloutEvents() = default;
  virtual void on_headers(const http::HeaderMap& headers, bool end_stream) = 0;
  virtual void on_data(std::string_view data, bool end_stream) = 0;
  virtual void on_trailers(const http::HeaderMap& trailers) = 0;
  virtual void on_complete() = 0;
  virtual void on_failure(sy_callout_failure_t reason, const std::string& details) = 0;
  virtual void on_writable() = 0;
};

// A streaming callout as the host table drives it. The transport owns itself: it frees itself
// (later, never on the caller's stack) after a terminal event or reset().
class CalloutTransport {
 public:
  // Queue request bytes (copied). Returns true while the queue is above its high watermark;
  // on_writable follows when it drains below the low one.
  virtual bool send_data(std::string_view data, bool end_stream) = 0;
  virtual bool send_trailers(const http::HeaderMap& trailers) = 0;
  virtual void pause_reading(bool paused) = 0;
  // Ends it now, with no further event.
  virtual void reset() = 0;

 protected:
  ~CalloutTransport() = default;
};

// Installed by the server at start-up.
struct CalloutServices {
  // Worker thread WORKER: starts a streaming callout; nullptr when CLUSTER is not configured.
  // No event is delivered before it returns.
  std::function<CalloutTransport*(int worker, const std::string& cluster, http::HeaderMap headers,
                                  uint64_t timeout_ms, CalloutEvents* events)>
      start_stream;
  // Worker thread WORKER: a unary callout as HostServices::callout starts one, except that DONE
  // never runs before this returns. Returns its cancel function (empty: unknown cluster).
  std::function<std::function<void()>(
      int worker, const std::string& cluster, http::HeaderMap headers, std::string body,
      uint64_t timeout_ms, std::function<void(const CalloutResult&)> done)>
      start_unary;
};
void set_callout_services(CalloutServices services);

// Fills the 1.2 callout slots of the host table (host.cc calls it while building the table).
void install_callout_slots(sy_host_t* h);

// The stream ID has ended (after on_stream_complete): its open streaming callouts are reset
// with no callback. Their handles stay valid (stale) until free_stream_callouts.
void end_stream_callouts(sy_stream_id_t id);
// The stream's filters are destroyed: free the handles kept for them.
void free_stream_callouts(sy_stream_id_t id);

}  // namespace sy::filters
