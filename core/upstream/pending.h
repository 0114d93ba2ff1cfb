// The requests waiting for a connection of a cluster's per-worker pool: oldest first, each
// with a deadline (the cluster's pending_timeout), so that a pool held by slow requests makes
// the others fail fast instead of hanging.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>

#include "core/net/socket.h"

namespace sy::upstream {

class Client;

class PendingQueue {
 public:
  struct Waiter {
    Client* client;
    int preferred;      // the endpoint asked for, or -1
    uint64_t deadline;  // uv_now() milliseconds
  };
  // EXPIRED runs for each waiter whose deadline passed, once it has left the queue; it may
  // push, remove and pop.
  PendingQueue(uv_loop_t* loop, uint64_t timeout_ms, std::function<void(Client*)> expired);

  bool empty() const { return q_.empty(); }
  size_t size() const { return q_.size(); }
  void push_back(Client* client, int preferred);
  // A waiter that was already served once and must wait again goes first.
  void push_front(Client* client, int preferred);
  // False when CLIENT was not waiting.
  bool remove(Client* client);
  // The oldest waiter, out of the queue.
  Waiter pop_front();

 private:
  void arm();
  void expire();

  uv_loop_t* loop_;
  uint64_t timeout_ms_;
  std::function<void(Client*)> expired_;
  std::deque<Waiter> q_;
  net::Timer timer_;
};

}  // namespace sy::upstream
