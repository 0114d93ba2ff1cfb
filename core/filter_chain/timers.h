// Module timers on a worker (host table: stream_timer, worker_timer, timer_cancel). A handle is
// a token looked up in the calling worker's table: a timer that fired, was cancelled or was
// dropped is not found, so cancelling it then does nothing.
#pragma once

#include <switchyard/module.h>

#include "core/stats/stats.h"

namespace sy::filters {

// A one-shot timer on the stream's worker; it fires as the filter whose callback set it.
// Dropped (DROP runs) when the stream ends, before on_stream_destroy.
sy_timer_t* stream_timer(sy_stream_t* s, uint64_t ms, sy_stream_task_fn fn, sy_drop_fn drop,
                         void* arg);
// A one-shot timer on worker context W; dropped when W leaves (cancel_worker_timers) or the
// worker stops (drop_all_worker_timers).
sy_timer_t* worker_timer(sy_worker_t* w, uint64_t ms, sy_worker_task_fn fn, sy_drop_fn drop,
                         void* arg);
// Cancels a live timer (its DROP runs); does nothing for any other handle.
void timer_cancel(sy_timer_t* t);
// Drops every worker timer of this thread (the worker is stopping).
void drop_all_worker_timers();
// host.posts_dropped: posts and timers that could not run (their stream or worker was gone).
stats::Counter* host_posts_dropped();

}  // namespace sy::filters
