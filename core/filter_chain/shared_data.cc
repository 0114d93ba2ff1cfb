// Shared key/value data and queues.
#include "core/filter_chain/shared_data.h"

#include "core/filter_chain/factory.h"
#include "core/filter_chain/worker_context.h"

namespace sy::filters {

SharedData& shared_data() {
  static SharedData* d = new SharedData();  // lives for the process: workers use it to the end
  return *d;
}

sy_status_t SharedData::get(std::string_view key, sy_bytes_sink_fn sink, void* ctx) {
  if (!sink) return SY_ERR_INVALID;
  std::string copy;
  uint64_t cas;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = values_.find(key);
    if (it == values_.end()) return SY_ERR_NOT_FOUND;
    copy = it->second.data;
    cas = it->second.cas;
  }
  // The sink runs outside the lock: it is module code and may call back into the host.
  sink(ctx, {copy.data(), copy.size()}, cas);
  return SY_OK;
}

sy_status_t SharedData::set(std::string_view key, std::string_view value, uint64_t cas) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = values_.find(key);
  if (cas != 0) {
    if (it == values_.end() || it->second.cas != cas) return SY_ERR_CAS_MISMATCH;
  }
  if (it == values_.end()) it = values_.emplace(std::string(key), Value{}).first;
  it->second.data.assign(value);
  it->second.cas = next_cas_++;
  return SY_OK;
}

sy_status_t SharedData::queue_register(std::string_view name, WorkerContext* ctx,
                                       ModuleScope* module, uint32_t* id) {
  if (!id || name.empty()) return SY_ERR_INVALID;
  QueueOwner owner = queue_owner(ctx, module);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (queues_[i].name == name) {
      if (owner.any()) queues_[i].owner = std::move(owner);
      *id = uint32_t(i + 1);
      return SY_OK;
    }
  }
  queues_.push_back({std::string(name), std::move(owner), {}});
  *id = uint32_t(queues_.size());
  return SY_OK;
}

sy_status_t SharedData::queue_resolve(std::string_view name, uint32_t* id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (queues_[i].name == name) {
      *id = uint32_t(i + 1);
      return SY_OK;
    }
  }
  return SY_ERR_NOT_FOUND;
}

sy_status_t SharedData::enqueue(uint32_t id, std::string_view data) {
  QueueOwner owner;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (id == 0 || id > queues_.size()) return SY_ERR_NOT_FOUND;
    queues_[id - 1].items.emplace_back(data);
    owner = queues_[id - 1].owner;
  }
  // Tell the registering worker's owner that there is something to read. The data stays
  // queued even when the owner is gone: whoever registers the queue next reads it.
  if (owner.any()) post_queue_ready(owner, id);
  return SY_OK;
}

sy_status_t SharedData::dequeue(uint32_t id, sy_bytes_sink_fn sink, void* ctx) {
  if (!sink) return SY_ERR_INVALID;
  std::string item;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (id == 0 || id > queues_.size()) return SY_ERR_NOT_FOUND;
    auto& q = queues_[id - 1].items;
    if (q.empty()) return SY_ERR_EMPTY;
    item = std::move(q.front());
    q.pop_front();
  }
  sink(ctx, {item.data(), item.size()}, 0);
  return SY_OK;
}

}  // namespace sy::filters
