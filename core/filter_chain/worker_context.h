// What sy_worker_t* points at: a filter factory's state on one worker, found again by a serial
// number that is never reused; and the binding of a worker thread to its own context.
#pragma once

#include <switchyard/module.h>
#include <uv.h>

#include <cstdint>
#include <memory>

namespace sy::filters {

struct HttpFilterFactory;
struct NetworkFilterFactory;

// Per (filter factory, worker) state: what sy_worker_t* points at. Each one has a serial
// number, never reused, by which others (a queue's owner) refer to it without a pointer that
// could dangle: a context that is gone is no longer found by its serial.
struct WorkerContext {
  WorkerContext();
  ~WorkerContext();
  WorkerContext(const WorkerContext&) = delete;
  WorkerContext& operator=(const WorkerContext&) = delete;
  const uint64_t serial;
  int index = 0;
  uv_loop_t* loop = nullptr;
  HttpFilterFactory* factory = nullptr;
  // A network filter config's context instead (since ABI 1.2); neither: the worker's own.
  NetworkFilterFactory* net_factory = nullptr;
  void* worker_data = nullptr;
  std::shared_ptr<void> keepalive;  // the factory (and its generation) while callouts run
  static WorkerContext* from(sy_worker_t* w) { return reinterpret_cast<WorkerContext*>(w); }
  sy_worker_t* handle() { return reinterpret_cast<sy_worker_t*>(this); }
};

// Drops the worker timers set through CTX (its factory is leaving this worker): each DROP
// runs. Call it before the factory's on_worker_stop, as a stream's timers are dropped before
// on_stream_destroy. Worker thread.
void cancel_worker_timers(WorkerContext* ctx);
// The worker thread calls this first: the worker handle a posted task receives is this
// worker's own context (index INDEX, loop LOOP).
void bind_worker_thread(int index, uv_loop_t* loop);
// The worker is stopping: timers set through its own context are dropped. Worker thread.
void unbind_worker_thread();
// True while the context with SERIAL exists. Any thread.
bool worker_context_alive(uint64_t serial);
// The live context with SERIAL, or null. Contexts are created and erased on their own worker:
// one found there lives until the caller returns to its loop. Any thread may ask, only that
// worker may use it.
WorkerContext* find_worker_context(uint64_t serial);

}  // namespace sy::filters
