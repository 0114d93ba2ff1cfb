// FileWatcher: inotify (through uv_fs_event) on the file's directory, debounced by a uv_timer.
#include "loader/watcher.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "core/log/log.h"
#include "loader/loader.h"

namespace sy::loader {

struct FileWatcher::Handles {
  uv_fs_event_t event;
  uv_timer_t timer;
  FileWatcher* owner = nullptr;
  int open = 0;
};

bool FileWatcher::Identity::operator==(const Identity& o) const {
  return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec;
}

bool FileWatcher::identify(const std::string& path, Identity* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  out->dev = st.st_dev;
  out->ino = st.st_ino;
  out->size = st.st_size;
  out->mtime = st.st_mtim;
  return true;
}

FileWatcher::FileWatcher(uv_loop_t* loop, std::string path, Callback cb, uint64_t quiet_ms,
                         uint64_t incomplete_grace_ms)
    : path_(std::move(path)),
      cb_(std::move(cb)),
      quiet_ms_(quiet_ms),
      incomplete_grace_ms_(incomplete_grace_ms),
      loop_(loop) {
  // The directory, not the file: `cp` and `mv` may give the path a new inode, and a watch on
  // the old inode would never hear of it.
  std::filesystem::path p(path_);
  dir_ = p.parent_path().empty() ? "." : p.parent_path().string();
  base_ = p.filename().string();
  identify(path_, &last_);

  h_ = new Handles;
  h_->owner = this;
  uv_fs_event_init(loop, &h_->event);
  uv_timer_init(loop, &h_->timer);
  h_->open = 2;
  h_->event.data = h_;
  h_->timer.data = h_;
  int rc = uv_fs_event_start(
      &h_->event,
      [](uv_fs_event_t* ev, const char* filename, int, int status) {
        auto* h = static_cast<Handles*>(ev->data);
        if (h->owner && status == 0) h->owner->on_event(filename);
      },
      dir_.c_str(), 0);
  if (rc != 0) {
    error_ = "cannot watch " + dir_ + " for changes of " + base_ + ": " + uv_strerror(rc);
    SY_WARN("%s", error_.c_str());
  }
}

FileWatcher::~FileWatcher() { stop(); }

void FileWatcher::stop() {
  if (!h_) return;
  h_->owner = nullptr;
  uv_fs_event_stop(&h_->event);
  uv_timer_stop(&h_->timer);
  auto closed = [](uv_handle_t* handle) {
    auto* h = static_cast<Handles*>(handle->data);
    if (--h->open == 0) delete h;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&h_->event), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&h_->timer), closed);
  h_ = nullptr;
}

void FileWatcher::on_event(const char* filename) {
  // No name means the kernel dropped events (queue overflow): assume it may have been ours.
  if (filename && base_ != filename) return;
  // Every event restarts the wait: the callback runs once the writer has been quiet.
  check_again(quiet_ms_);
}

void FileWatcher::check_again(uint64_t ms) {
  uv_timer_start(
      &h_->timer,
      [](uv_timer_t* t) {
        auto* h = static_cast<Handles*>(t->data);
        if (h->owner) h->owner->on_quiet();
      },
      ms, 0);
}

void FileWatcher::on_quiet() {
  Identity now;
  // Gone (mid-`mv`, or deleted): wait for the file to come back. Unchanged (a chmod, or a
  // neighbour's event after overflow): nothing to reload.
  if (!identify(path_, &now) || now == last_) return;
  // Stable: the same size, mtime and inode at two checks a quiet interval apart. A writer that
  // pauses without a new event in between is still caught by the second look.
  if (!(now == candidate_)) {
    candidate_ = now;
    check_again(quiet_ms_);
    return;
  }
  // Complete: a linker writing in place leaves the file empty or cut short for a while, which
  // is no reason to refuse it. Its stamp (the ELF headers, the section table at the end of the
  // file and the stamp section) reads only once the whole file is there.
  Stamp stamp;
  std::string why;
  if (!read_stamp(path_, &stamp, &why)) {
    uint64_t t = uv_now(loop_);
    if (!(now == incomplete_)) {
      incomplete_ = now;
      incomplete_since_ = t;
      SY_INFO(
          "%s is not complete yet (%lld bytes, no readable module stamp); waiting for its "
          "writer to finish",
          path_.c_str(), (long long)now.size);
    }
    // One that stays so is not being written: report it, and the loader says what is wrong.
    if (t - incomplete_since_ < incomplete_grace_ms_) {
      check_again(std::min(quiet_ms_, incomplete_grace_ms_ - (t - incomplete_since_)));
      return;
    }
  }
  last_ = now;
  SY_INFO("%s changed", path_.c_str());
  // The callback may destroy this watcher (a swap re-syncs watchers): run it from copies.
  Callback cb = cb_;
  std::string path = path_;
  cb(path);
}

}  // namespace sy::loader
