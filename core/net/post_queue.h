// Tasks that other threads hand to one libuv loop: a locked queue plus the uv_async_t that
// wakes the loop to run them. The main thread and every worker take posts this one way.
#pragma once

#include <uv.h>

#include <functional>
#include <mutex>
#include <vector>

namespace sy::net {

class PostQueue {
 public:
  PostQueue() = default;
  PostQueue(const PostQueue&) = delete;
  PostQueue& operator=(const PostQueue&) = delete;

  // Binds the queue to LOOP, on the loop's thread or before the loop runs.
  void open(uv_loop_t* loop);
  // Runs FN on the loop's thread, in the order posted. Thread-safe.
  void post(std::function<void()> fn);
  // Runs what is queued, and what those tasks post, until the queue is empty: for teardown,
  // once the loop no longer runs.
  void run_all();
  // Closes the wake-up handle (on the loop's thread); nothing may be posted after.
  void close();

 private:
  static void on_async(uv_async_t* h);
  // Runs the tasks queued now; how many there were.
  size_t run_queued();

  uv_async_t async_{};
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
};

}  // namespace sy::net
