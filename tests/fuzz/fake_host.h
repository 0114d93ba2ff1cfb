// A host table for fuzzing a module's filter code without the proxy: one HTTP stream whose header
// blocks and bodies live in memory, streaming and unary callouts whose answers the fuzz target
// delivers, and timers and posted tasks the target fires when it chooses. It follows the ABI's
// documented rules (module.h) where a module could tell the difference: a callout's callbacks
// stop once it is reset, completed or failed; timers and tasks are dropped when the stream ends;
// a timer that fired or was dropped is unknown to timer_cancel. Uses the module makes that the
// ABI forbids (a callout or timer handle the host never gave out, an HTTP callout cancelled
// after its answer ran) fail a FUZZ_CHECK, as they would be use-after-free in the real host.
#pragma once

#include <switchyard/module.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fuzzhost {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct StreamCallout {
  const sy_stream_callout_callbacks_t* cb = nullptr;
  void* arg = nullptr;
  std::string sent;  // request bytes the module sent
  bool request_ended = false;
  bool over = false;  // completed, failed or reset: no callback runs any more
};

struct UnaryCallout {
  sy_callout_fn fn = nullptr;
  void* arg = nullptr;
  Fields headers;
  std::string body;
  bool over = false;  // answered or cancelled
};

struct Timer {
  sy_stream_task_fn fn = nullptr;
  sy_drop_fn drop = nullptr;
  void* arg = nullptr;
  bool over = false;  // fired, cancelled or dropped
};

struct Task {
  sy_stream_task_fn fn = nullptr;
  sy_drop_fn drop = nullptr;
  void* arg = nullptr;
};

// The one stream of an input. Reset by begin().
struct Stream {
  Fields headers[4];  // by sy_header_kind_t
  // By direction, as the real host keeps it: BUF is everything the filter holds, and the chunk
  // of the running body callback is its tail from OFF (outside a body callback, OFF is the end).
  std::string buf[2];
  size_t off[2] = {0, 0};
  std::string passed[2];            // body bytes that went on past the filter (for the checks)
  bool paused[2] = {false, false};  // no callback in the direction until resume()
  bool held_headers[2] = {false, false};  // the headers wait (a stop status from their callback)
  bool ended = false;                     // a local reply or a reset ended it
  uint32_t local_status = 0;
  bool reset = false;
  std::map<std::string, std::string> metadata;  // namespace -> JSON object (merged naively)
  std::map<std::string, std::string> attributes;
  void* route_config = nullptr;
  uint64_t buffer_limit = 1 << 20;
};

struct State {
  Stream stream;
  std::vector<std::unique_ptr<StreamCallout>> callouts;
  std::vector<std::unique_ptr<UnaryCallout>> unary;
  std::vector<std::unique_ptr<Timer>> timers;
  std::deque<Task> tasks;
  std::string scratch;  // attribute_get's view
};

// The table (ABI 1.2, every slot filled) and the state behind it.
const sy_host_t* host();
State& state();
sy_stream_t* stream_handle();

// Forgets the previous input's stream, callouts, timers and tasks (all must be over).
void begin();
// The stream ended (after on_stream_complete): open streaming callouts are reset silently and
// pending timers and tasks dropped, as the host does before on_stream_destroy. HTTP callouts
// are left alone: the ABI runs their FN even after the stream ended.
void end_stream();

// Delivers to the newest open streaming callout; false when there is none.
StreamCallout* open_callout();
bool fire_timer();  // the oldest pending timer; false when none
bool run_task();    // the oldest posted task; false when none

// Calls the module's entry with this host; returns the first HTTP filter, or null.
const sy_http_filter_t* load(sy_module_entry_fn entry, void** module_data);

}  // namespace fuzzhost
