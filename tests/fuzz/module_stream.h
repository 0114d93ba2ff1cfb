// Drives one HTTP stream through a module's HTTP filter table on the fake host (fake_host.h), the
// way core/filter_chain calls a filter: request headers, body chunks and trailers, then the
// response's, each only when the filter has not paused its direction, with the filter's
// status applied to the host's body buffer as the real chain applies it. The fuzz targets of
// the callout modules (ext_proc, ext_authz) interleave these steps with their server's answers.
#pragma once

#include <switchyard/module.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/fuzz/fake_host.h"

namespace fuzzhost {

class StreamDriver {
 public:
  // SHAPE's bits: 0 request body, 1 request trailers, 2 response body, 3 response trailers,
  // 4-5 chunks per body less one, 6-7 chunk size class.
  StreamDriver(const sy_http_filter_t* f, void* filter, unsigned shape);

  // The next phase callback, when the stream is in a state to get it; false when it is not
  // (paused direction, ended stream, nothing left).
  bool step();
  bool done() const;
  // on_stream_complete, the host's end of stream (callouts reset, timers dropped), destroy.
  void finish();

 private:
  enum Kind { kHeaders, kBody, kTrailers };
  struct Event {
    sy_direction_t dir;
    Kind kind;
    bool end;
    std::string data;
  };
  void after_body(sy_direction_t dir, sy_filter_status_t st);

  const sy_http_filter_t* f_;
  void* filter_;
  std::vector<Event> events_;
  size_t next_ = 0;
  bool finished_ = false;
};

// Runs the operations in DATA against STREAM and the callouts its filter opens, one byte each
// (the byte % 9), some followed by their data:
//   0 the stream's next phase callback (StreamDriver::step)
//   1 N, then N bytes: response data on the newest open streaming callout (a 200 head first,
//     if it had none)
//   2 B: its response head (:status 200 unless B & 1; grpc-status 14 if B & 4; B & 2: the head
//     ends the response, and the callout completes)
//   3 B: its trailers (grpc-status B % 17), and it completes
//   4 it completes                           5 B: it fails (reason B % 6)
//   6 a timer fires, or else a posted task runs
//   7 it is writable again
//   8 B, N, then N bytes: the answer to the oldest unanswered unary callout: status by B % 8
//     (0 is a failure), then the bytes as "name: value" lines, an empty line and the body
// Stops when the stream has ended; the caller then calls STREAM.finish().
void run_ops(StreamDriver& stream, const uint8_t* data, size_t size);

// A module loaded on the fake host, with one filter config made from each of CONFIGS (each must
// be accepted: a refused one fails a FUZZ_CHECK with the module's message).
struct Loaded {
  const sy_http_filter_t* filter = nullptr;
  std::vector<void*> configs;
};
Loaded load_with_configs(sy_module_entry_fn entry, const char* const* configs, size_t count);

// One input: byte 0 picks a config, byte 1 the stream's shape (StreamDriver), the rest is
// run_ops'; then the stream completes and is destroyed.
void fuzz_one_stream(const Loaded& m, const uint8_t* data, size_t size);

}  // namespace fuzzhost
