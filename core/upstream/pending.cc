// The pools' pending queue and its deadlines.
#include "core/upstream/pending.h"

#include <algorithm>

namespace sy::upstream {

PendingQueue::PendingQueue(uv_loop_t* loop, uint64_t timeout_ms,
                           std::function<void(Client*)> expired)
    : loop_(loop), timeout_ms_(timeout_ms), expired_(std::move(expired)), timer_(loop) {}

void PendingQueue::push_back(Client* client, int preferred) {
  q_.push_back({client, preferred, uv_now(loop_) + timeout_ms_});
  // Every deadline is now + the same timeout, so one already armed comes first.
  if (!timer_.active()) arm();
}

void PendingQueue::push_front(Client* client, int preferred) {
  q_.push_front({client, preferred, uv_now(loop_) + timeout_ms_});
  if (!timer_.active()) arm();
}

bool PendingQueue::remove(Client* client) {
  auto it =
      std::find_if(q_.begin(), q_.end(), [client](const Waiter& w) { return w.client == client; });
  if (it == q_.end()) return false;
  q_.erase(it);
  // The timer stays armed: when it fires early it finds nothing due and re-arms.
  return true;
}

PendingQueue::Waiter PendingQueue::pop_front() {
  Waiter w = q_.front();
  q_.pop_front();
  return w;
}

void PendingQueue::arm() {
  if (q_.empty()) {
    timer_.stop();
    return;
  }
  uint64_t first = q_.front().deadline;
  for (const Waiter& w : q_) first = std::min(first, w.deadline);
  uint64_t now = uv_now(loop_);
  timer_.start(first > now ? first - now : 0, [this] { expire(); });
}

void PendingQueue::expire() {
  // One at a time: a failed request may end others (its connection closes), which then leave
  // the queue through remove() and must not hear of their expiry.
  while (true) {
    uint64_t now = uv_now(loop_);
    auto it =
        std::find_if(q_.begin(), q_.end(), [now](const Waiter& w) { return w.deadline <= now; });
    if (it == q_.end()) break;
    Client* client = it->client;
    q_.erase(it);
    expired_(client);
  }
  if (!timer_.active()) arm();
}

}  // namespace sy::upstream
