// The per-worker tables of registered streams (stream_registry.h).
#include "core/filter_chain/stream_registry.h"

#include <mutex>
#include <unordered_map>

#include "config/config.h"
#include "core/log/log.h"

namespace sy::filters {
namespace {

struct Registered {
  FilterChain* chain;
  std::shared_ptr<const void> keepalive;
};
struct WorkerStreams {
  std::mutex mu;
  std::unordered_map<sy_stream_id_t, Registered> streams;
};
constexpr int kMaxWorkers = int(config::kMaxWorkers);
WorkerStreams g_streams[kMaxWorkers];

int worker_of(sy_stream_id_t id) { return int(id >> 48); }

}  // namespace

void register_stream(sy_stream_id_t id, FilterChain* chain, std::shared_ptr<const void> keep) {
  if (worker_of(id) >= kMaxWorkers) {
    SY_ERROR("stream %llu: worker %d is beyond the registry's %d workers; posts to it are stale",
             (unsigned long long)id, worker_of(id), kMaxWorkers);
    return;
  }
  auto& ws = g_streams[worker_of(id)];
  std::lock_guard<std::mutex> lock(ws.mu);
  ws.streams[id] = {chain, std::move(keep)};
}

void unregister_stream(sy_stream_id_t id) {
  if (worker_of(id) >= kMaxWorkers) return;
  std::shared_ptr<const void> keep;  // released outside the lock
  auto& ws = g_streams[worker_of(id)];
  std::lock_guard<std::mutex> lock(ws.mu);
  auto it = ws.streams.find(id);
  if (it == ws.streams.end()) return;
  keep.swap(it->second.keepalive);
  ws.streams.erase(it);
}

sy_stream_id_t next_stream_id(int worker_index) {
  thread_local uint64_t serial = 0;
  return (uint64_t(worker_index) << 48) | (++serial & 0xffffffffffffULL);
}

int stream_worker(sy_stream_id_t id) { return worker_of(id); }

std::shared_ptr<const void> registered_generations(sy_stream_id_t id) {
  if (worker_of(id) >= kMaxWorkers) return nullptr;
  auto& ws = g_streams[worker_of(id)];
  std::lock_guard<std::mutex> lock(ws.mu);
  auto it = ws.streams.find(id);
  return it == ws.streams.end() ? nullptr : it->second.keepalive;
}

FilterChain* registered_chain(sy_stream_id_t id) {
  if (worker_of(id) >= kMaxWorkers) return nullptr;
  auto& ws = g_streams[worker_of(id)];
  std::lock_guard<std::mutex> lock(ws.mu);
  auto it = ws.streams.find(id);
  return it == ws.streams.end() ? nullptr : it->second.chain;
}

}  // namespace sy::filters
