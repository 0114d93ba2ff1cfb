// What the loader keeps about modules across restarts, in the state directory:
//
//   STATE/modules/NAME/good           sha256s of the generations that served, newest first
//   STATE/modules/NAME/SHA256.so      a copy of each of those (content-addressed)
//   STATE/modules/NAME/SHA256.crash   a crash record (crash_record.h): that sha256 crashed
//   STATE/run/PID/                    the private copies a running proxy has dlopen'ed
//
// so that a generation recorded as crashing is not loaded again, and the previous good one can
// be found and loaded in its place. Main thread only.
#pragma once

#include <string>
#include <vector>

#include "loader/crash_record.h"

namespace sy::loader {

class ModuleState {
 public:
  // DIR is created if missing (mode 0700).
  explicit ModuleState(std::string dir);

  const std::string& dir() const { return dir_; }
  // STATE/modules/NAME (NAME made safe for a path), created if missing.
  std::string module_dir(const std::string& name) const;
  // Where the crash handler writes the record for (NAME, SHA256).
  std::string record_path(const std::string& name, const std::string& sha256) const;
  // The crash record of (NAME, SHA256), if there is one. A record that does not parse still
  // counts (the file says that sha256 crashed); it is logged and reported as such.
  bool crashed(const std::string& name, const std::string& sha256, CrashRecord* out) const;
  // Every crash record of NAME, newest first.
  std::vector<CrashRecord> crashes(const std::string& name) const;
  // The generation with SHA256 (whose private copy is COPY) is serving: keep a copy of it and
  // put it first in NAME's good list. Failures are logged; they only cost a fallback later.
  void remember_good(const std::string& name, const std::string& sha256,
                     const std::string& copy) const;
  // The newest good generation of NAME other than SKIP, with no crash record and a kept copy:
  // its sha256 and the copy's path. False when there is none.
  bool previous_good(const std::string& name, const std::string& skip, std::string* sha256,
                     std::string* path) const;

 private:
  std::vector<std::string> good_list(const std::string& name) const;
  std::string dir_;
};

// The directory for this process's private copies, STATE/run/PID: created now, removed (with
// what is left in it) when this object goes. Directories of processes that no longer exist (a
// crash leaves its own behind) are removed on the way.
class RunDir {
 public:
  explicit RunDir(const std::string& state_dir);
  ~RunDir();
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sy::loader
