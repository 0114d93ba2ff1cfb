// FileWatcher: calls back once a watched file has been replaced or rewritten and then left
// alone for a short while (so a `cp` in progress is never loaded half-written).
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

  // Watches PATH on LOOP (whose thread runs CB). QUIET_MS: how long the file must stay unchanged
  // before CB runs. If the directory cannot be watched, error() says why and CB never runs.
  FileWatcher(uv_loop_t* loop, std::string path, Callback cb, uint64_t quiet_ms = 200);
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

  std::string path_, dir_, base_, error_;
  Callback cb_;
  uint64_t quiet_ms_;
  Identity last_;  // the file as it was when we last reported it (or started)
  Handles* h_ = nullptr;
};

}  // namespace sy::loader
