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

class SharedData {
 public:
  sy_status_t get(std::string_view key, sy_bytes_sink_fn sink, void* ctx);
  sy_status_t set(std::string_view key, std::string_view value, uint64_t cas);
  sy_status_t queue_register(std::string_view name, WorkerContext* owner, uint32_t* id);
  sy_status_t queue_resolve(std::string_view name, uint32_t* id);
  sy_status_t enqueue(uint32_t id, std::string_view data);
  sy_status_t dequeue(uint32_t id, sy_bytes_sink_fn sink, void* ctx);

 private:
  struct Value {
    std::string data;
    uint64_t cas;
  };
  // The owner is named by its context's serial and worker, never by its address: contexts
  // go away on a config change or a swap while the queue stays.
  struct Queue {
    std::string name;
    uint64_t owner_serial = 0;  // 0: nobody is notified
    int owner_worker = 0;
    std::deque<std::string> items;
  };
  std::mutex mu_;
  std::map<std::string, Value, std::less<>> values_;
  uint64_t next_cas_ = 1;
  std::vector<Queue> queues_;
};

SharedData& shared_data();
// Runs the owner's on_queue_ready on its worker, if the owner (the context with OWNER_SERIAL)
// still exists by then; else counts the notification as dropped (host.cc).
void post_queue_ready(uint64_t owner_serial, int owner_worker, uint32_t queue_id);
// Notifications dropped because the queue's owner was gone (host.queue_notifications_dropped).
uint64_t queue_notifications_dropped();

}  // namespace sy::filters
