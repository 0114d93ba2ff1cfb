// Process-wide key/value data with compare-and-swap, and named queues, shared by all workers
// (Proxy-Wasm shared data and shared queues are built on these).
#pragma once

#include <switchyard/module.h>

#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sy::filters {

struct WorkerContext;
struct ModuleScope;

// Who is told that a queue has data, named so that a gone owner is recognised, never touched:
// a filter config's context on one worker (HTTP or network filter) by its serial, or, for a
// queue registered with a worker's own handle, the module generation (held weakly) on that
// worker. Contexts and generations go away on a config change or a swap while the queue stays.
struct QueueOwner {
  uint64_t context_serial = 0;  // a filter config's worker context, or 0
  uint64_t module_serial = 0;   // else this module generation's scope, or 0
  int worker = 0;
  bool any() const { return context_serial != 0 || module_serial != 0; }
};

class SharedData {
 public:
  sy_status_t get(std::string_view key, sy_bytes_sink_fn sink, void* ctx);
  sy_status_t set(std::string_view key, std::string_view value, uint64_t cas);
  // OWNER (may be null) is told of new data from now on; MODULE is the registering module, the
  // owner itself when OWNER is a worker's own handle rather than a filter config's.
  sy_status_t queue_register(std::string_view name, WorkerContext* owner, ModuleScope* module,
                             uint32_t* id);
  sy_status_t queue_resolve(std::string_view name, uint32_t* id);
  sy_status_t enqueue(uint32_t id, std::string_view data);
  sy_status_t dequeue(uint32_t id, sy_bytes_sink_fn sink, void* ctx);

 private:
  struct Value {
    std::string data;
    uint64_t cas;
  };
  struct Queue {
    std::string name;
    QueueOwner owner;  // nobody is notified when it has no owner
    std::deque<std::string> items;
  };
  std::mutex mu_;
  std::map<std::string, Value, std::less<>> values_;
  uint64_t next_cas_ = 1;
  std::vector<Queue> queues_;
};

SharedData& shared_data();
// Runs the owner's on_queue_ready on its worker, if the owner still exists by then; else counts
// the notification as dropped (host.cc).
void post_queue_ready(const QueueOwner& owner, uint32_t queue_id);
// The owner a queue registered through context CTX by MODULE gets (nobody, when CTX is null).
QueueOwner queue_owner(WorkerContext* ctx, ModuleScope* module);
// Notifications dropped because the queue's owner was gone (host.queue_notifications_dropped).
uint64_t queue_notifications_dropped();

}  // namespace sy::filters
