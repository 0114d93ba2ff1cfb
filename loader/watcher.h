// FileWatcher: calls back once a watched file has been replaced or rewritten, has then stayed the
// same (size, mtime, inode) at two checks a quiet interval apart, and reads as a complete module
// (its ELF stamp parses). Compilers and linkers rewrite their output in place (truncate, then
// write), so a file seen empty or cut short is waited for, not reported; only one that stays
// incomplete for a grace period is reported (the loader then says what is wrong with it).
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstdint>
#include <ctime>
#include <functional>
#include <string>

namespace sy::loader {

class FileWatcher {
 public:
  using Callback = std::function<void(const std::string& path)>;

  // Watches PATH on LOOP (whose thread runs CB). QUIET_MS: the interval between the checks that
  // must find the file unchanged before CB runs. INCOMPLETE_GRACE_MS: how long a file that is not
  // a complete module must stay as it is before CB runs anyway. If the directory cannot be
  // watched, error() says why and CB never runs.
  FileWatcher(uv_loop_t* loop, std::string path, Callback cb, uint64_t quiet_ms = 200,
              uint64_t incomplete_grace_ms = 5000);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }
  void stop();

 private:
  struct Handles;  // libuv handles, freed by their close callbacks, after this object may be gone
  struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    timespec mtime{};
    bool operator==(const Identity& o) const;
  };
  static bool identify(const std::string& path, Identity* out);
  void on_event(const char* filename);
  void on_quiet();
  void check_again(uint64_t ms);

  std::string path_, dir_, base_, error_;
  Callback cb_;
  uint64_t quiet_ms_, incomplete_grace_ms_;
  uv_loop_t* loop_;
  Identity last_;        // the file as it was when we last reported it (or started)
  Identity candidate_;   // as the previous check found it: reported if the next finds the same
  Identity incomplete_;  // last seen not a complete module (logged once per version)
  uint64_t incomplete_since_ = 0;  // loop time it was first seen so
  Handles* h_ = nullptr;
};

}  // namespace sy::loader
