// The pools' pending queue: arrival order, removal, and deadlines that fail waiters.
#include <gtest/gtest.h>
#include <uv.h>

#include <vector>

#include "core/upstream/pending.h"

namespace sy::upstream {
namespace {

// The queue only keeps and hands back client pointers: any distinct addresses do.
Client* fake(int i) { return reinterpret_cast<Client*>(0x1000 + 16 * i); }

class PendingQueueTest : public ::testing::Test {
 protected:
  void SetUp() override { uv_loop_init(&loop_); }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_NOWAIT);  // let closed handles go
    uv_loop_close(&loop_);
  }
  uv_loop_t loop_;
};

TEST_F(PendingQueueTest, OldestFirstAndRemove) {
  std::vector<Client*> expired;
  {
    PendingQueue q(&loop_, 60'000, [&](Client* c) { expired.push_back(c); });
    q.push_back(fake(1), -1);
    q.push_back(fake(2), 3);
    q.push_front(fake(0), -1);
    EXPECT_TRUE(q.remove(fake(1)));
    EXPECT_FALSE(q.remove(fake(1)));
    EXPECT_EQ(q.size(), 2u);
    EXPECT_EQ(q.pop_front().client, fake(0));
    PendingQueue::Waiter w = q.pop_front();
    EXPECT_EQ(w.client, fake(2));
    EXPECT_EQ(w.preferred, 3);
    EXPECT_TRUE(q.empty());
  }
  EXPECT_TRUE(expired.empty());
}

TEST_F(PendingQueueTest, WaitersPastTheirDeadlineAreFailedOnce) {
  std::vector<Client*> expired;
  PendingQueue q(&loop_, 5, [&](Client* c) { expired.push_back(c); });
  q.push_back(fake(1), -1);
  q.push_back(fake(2), -1);
  q.push_back(fake(3), -1);
  q.remove(fake(2));  // served or cancelled before its deadline: never expires
  while (!q.empty()) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(expired, (std::vector<Client*>{fake(1), fake(3)}));
}

TEST_F(PendingQueueTest, AnExpiryMayEndOtherWaiters) {
  // A failed request can close a connection whose other streams leave the queue at once.
  std::vector<Client*> expired;
  PendingQueue* self = nullptr;
  PendingQueue q(&loop_, 5, [&](Client* c) {
    expired.push_back(c);
    self->remove(fake(2));
  });
  self = &q;
  q.push_back(fake(1), -1);
  q.push_back(fake(2), -1);
  while (!q.empty()) uv_run(&loop_, UV_RUN_ONCE);
  EXPECT_EQ(expired, (std::vector<Client*>{fake(1)}));
}

}  // namespace
}  // namespace sy::upstream
