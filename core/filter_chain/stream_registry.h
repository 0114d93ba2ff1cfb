// Streams by id: the one way back into a stream from another thread or a later time. A
// stream is entered only once a module has its id (FilterChain::published_id), and each worker
// has its own table, locked because posts look ids up from any thread.
#pragma once

#include <switchyard/module.h>

#include <memory>

namespace sy::filters {

class FilterChain;

// Streams with filters, by id, so any thread can reach one safely (or learn it is gone).
// An id whose worker index is kMaxWorkers or more is refused (logged; posts to it are stale).
void register_stream(sy_stream_id_t id, class FilterChain* chain,
                     std::shared_ptr<const void> keepalive);
void unregister_stream(sy_stream_id_t id);
// Allocates a never-reused id for a stream on worker INDEX.
sy_stream_id_t next_stream_id(int worker_index);
// The worker index an id carries.
int stream_worker(sy_stream_id_t id);
// What the registered stream ID holds of its generations, or null when ID is not (or no longer)
// registered. Any thread.
std::shared_ptr<const void> registered_generations(sy_stream_id_t id);
// The registered stream ID's chain, or null. On that stream's worker only.
FilterChain* registered_chain(sy_stream_id_t id);

}  // namespace sy::filters
