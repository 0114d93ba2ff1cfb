// Worker contexts by serial: a context is found again by its serial number, never by a pointer
// that could dangle.
#include "core/filter_chain/worker_context.h"

#include <mutex>
#include <unordered_map>

namespace sy::filters {
namespace {

struct LiveContexts {
  std::mutex mu;
  std::unordered_map<uint64_t, WorkerContext*> by_serial;
  uint64_t next = 1;
};
LiveContexts& live_contexts() {
  static LiveContexts* l = new LiveContexts();  // thread-local contexts unregister at exit
  return *l;
}

}  // namespace

WorkerContext::WorkerContext()
    : serial([] {
        auto& l = live_contexts();
        std::lock_guard<std::mutex> lock(l.mu);
        return l.next++;
      }()) {
  auto& l = live_contexts();
  std::lock_guard<std::mutex> lock(l.mu);
  l.by_serial[serial] = this;
}

WorkerContext::~WorkerContext() {
  auto& l = live_contexts();
  std::lock_guard<std::mutex> lock(l.mu);
  l.by_serial.erase(serial);
}

bool worker_context_alive(uint64_t serial) {
  auto& l = live_contexts();
  std::lock_guard<std::mutex> lock(l.mu);
  return l.by_serial.count(serial) != 0;
}

WorkerContext* find_worker_context(uint64_t serial) {
  auto& l = live_contexts();
  std::lock_guard<std::mutex> lock(l.mu);
  auto it = l.by_serial.find(serial);
  return it == l.by_serial.end() ? nullptr : it->second;
}

}  // namespace sy::filters
