// Switchyard C++ SDK: tasks and timers with a drop callback (ABI 1.2). Included by sdk.hpp.
//
// Each takes a callable and an optional ON_DROP that runs instead of it when it never will, so
// whatever the callable captured is released either way. An exception from either is logged.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <switchyard/sdk.hpp>

namespace sy::sdk {

namespace detail {

template <class Fn>
struct TaskBox {
  Fn fn;
  std::function<void()> on_drop;
};

template <class Box>
void drop_box(void* arg) noexcept {
  std::unique_ptr<Box> box(static_cast<Box*>(arg));
  if (!box->on_drop) return;
  try {
    box->on_drop();
  } catch (...) {
    log(SY_LOG_ERROR, "a task's drop callback threw");
  }
}

template <class Box, class Handle>
void run_box(Handle* handle, void* arg) noexcept {
  std::unique_ptr<Box> box(static_cast<Box*>(arg));
  try {
    box->fn(handle);
  } catch (const std::exception& e) {
    log(SY_LOG_ERROR, std::string("a posted task threw: ") + e.what());
  } catch (...) {
    log(SY_LOG_ERROR, "a posted task threw");
  }
}

}  // namespace detail

// The calling filter's position in S's chain, for post_to_filter: inside its callbacks, tasks
// and timers; SY_NO_FILTER elsewhere (and before ABI 1.2).
inline uint32_t filter_index(sy_stream_t* s) {
  if (host() == nullptr || !SY_HAS_SLOT(host(), sy_host_t, filter_index)) return SY_NO_FILTER;
  return host()->filter_index(s);
}

// Any thread. Runs FN on stream ID's worker as the filter at FILTER_INDEX runs in its own
// callback (inject_data enters after it, resume means what it holds). ON_DROP runs instead when
// the stream is gone (SY_ERR_STALE, in this thread) or ends before FN runs.
inline sy_status_t post_to_filter(sy_stream_id_t id, uint32_t filter_index,
                                  std::function<void(sy_stream_t*)> fn,
                                  std::function<void()> on_drop = {}) {
  if (host() == nullptr || !SY_HAS_SLOT(host(), sy_host_t, post_to_filter))
    return SY_ERR_UNSUPPORTED;
  if (!fn) return SY_ERR_INVALID;
  using Box = detail::TaskBox<std::function<void(sy_stream_t*)>>;
  return host()->post_to_filter(id, filter_index, detail::run_box<Box, sy_stream_t>,
                                detail::drop_box<Box>, new Box{std::move(fn), std::move(on_drop)});
}

// Any thread. Runs FN on worker INDEX (-1: any) with the worker's own handle. ON_DROP runs
// instead when there is no such worker (SY_ERR_NOT_FOUND, in this thread) or it stops first.
inline sy_status_t post_to_worker(int32_t index, std::function<void(sy_worker_t*)> fn,
                                  std::function<void()> on_drop = {}) {
  if (host() == nullptr || !SY_HAS_SLOT(host(), sy_host_t, post_to_worker_drop))
    return SY_ERR_UNSUPPORTED;
  if (!fn) return SY_ERR_INVALID;
  using Box = detail::TaskBox<std::function<void(sy_worker_t*)>>;
  return host()->post_to_worker_drop(index, detail::run_box<Box, sy_worker_t>,
                                     detail::drop_box<Box>,
                                     new Box{std::move(fn), std::move(on_drop)});
}

// A one-shot timer on W's worker (W: a worker handle, e.g. what post_to_worker's task gets).
// ON_DROP runs instead when it will never fire: timer_cancel, W's filter config leaving the
// worker, the worker stopping, or no timer made (then nullptr is returned).
inline sy_timer_t* worker_timer(sy_worker_t* w, uint64_t ms, std::function<void(sy_worker_t*)> fn,
                                std::function<void()> on_drop = {}) {
  if (host() == nullptr || !SY_HAS_SLOT(host(), sy_host_t, worker_timer_drop) || w == nullptr ||
      !fn)
    return nullptr;
  using Box = detail::TaskBox<std::function<void(sy_worker_t*)>>;
  return host()->worker_timer_drop(w, ms, detail::run_box<Box, sy_worker_t>, detail::drop_box<Box>,
                                   new Box{std::move(fn), std::move(on_drop)});
}

}  // namespace sy::sdk
