// Cross-thread posts to a libuv loop (see post_queue.h).
#include "core/net/post_queue.h"

namespace sy::net {

void PostQueue::open(uv_loop_t* loop) {
  uv_async_init(loop, &async_, on_async);
  async_.data = this;
}

void PostQueue::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(fn));
  }
  uv_async_send(&async_);
}

void PostQueue::on_async(uv_async_t* h) { static_cast<PostQueue*>(h->data)->run_queued(); }

size_t PostQueue::run_queued() {
  // Swapped out under the lock and run outside it: a task may post again.
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& t : tasks) t();
  return tasks.size();
}

void PostQueue::run_all() {
  while (run_queued() != 0) {
  }
}

void PostQueue::close() { uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr); }

}  // namespace sy::net
