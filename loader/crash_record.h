// The crash record: what the crash handler writes when module code kills the process, and what
// the next start reads to decide whether that module generation may load again.
//
// One file per crashing (module, sha256), STATE_DIR/modules/NAME/SHA256.crash, text, one
// `key=value` a line after a fixed first line:
//
//   switchyard crash record 1
//   module=fx_segfault
//   sha256=<64 hex digits>
//   generation=2
//   callback=on_request_headers
//   signal=11
//   signal_name=SIGSEGV
//   time=2026-12-06T16:02:11Z
//   pid=41234
//
// Readers ignore keys they do not know, so later versions may add some.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace sy::loader {

struct CrashRecord {
  std::string module, sha256, callback, signal_name, time;
  uint64_t generation = 0;
  int signal = 0;
  int64_t pid = 0;
  std::string path;  // the file it was read from
};

// What the crash handler knows, as plain pointers and integers (no allocation).
struct CrashFacts {
  const char* module;
  const char* sha256;
  uint64_t generation;
  const char* callback;
  int signal;
  time_t time;  // seconds since the epoch (UTC)
  int64_t pid;
};

// Writes the record for FACTS into BUF (at most CAP bytes) and returns its length (0 if CAP is
// too small). Async-signal-safe: no allocation, no locale, no stdio.
size_t format_crash_record(char* buf, size_t cap, const CrashFacts& facts);
// Parses a record. False, with ERROR saying what is wrong, when TEXT is not one.
bool parse_crash_record(std::string_view text, CrashRecord* out, std::string* error);
// Reads and parses the record in FILE (setting out->path). ERROR names the file.
bool read_crash_record(const std::string& file, CrashRecord* out, std::string* error);

// "SIGSEGV" for 11, ...; "signal N" for others. Async-signal-safe (a static string).
const char* signal_name(int sig);
// 2026-12-06T16:02:11Z into BUF (at least 21 bytes); async-signal-safe. Returns the length.
size_t format_utc(char* buf, time_t t);

// {"when","signal","signal_name","generation","sha256","callback","pid","record"} for /modules.
std::string crash_record_json(const CrashRecord& r);

}  // namespace sy::loader
