// The cross-thread post queue: posts from another thread run on the loop in order, and
// run_all drains tasks that post more.
#include "core/net/post_queue.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace sy::net {
namespace {

TEST(PostQueue, PostsFromAnotherThreadRunOnTheLoopInOrder) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  PostQueue q;
  q.open(&loop);
  std::vector<int> ran;
  std::thread::id loop_thread = std::this_thread::get_id();
  bool on_loop_thread = true;
  std::thread poster([&] {
    for (int i = 0; i < 100; ++i)
      q.post([&, i] {
        on_loop_thread = on_loop_thread && std::this_thread::get_id() == loop_thread;
        ran.push_back(i);
        if (ran.size() == 100) q.close();  // the loop ends once its only handle is closed
      });
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  poster.join();
  ASSERT_EQ(ran.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ran[size_t(i)], i);
  EXPECT_TRUE(on_loop_thread);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(PostQueue, RunAllRunsWhatTasksPost) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  PostQueue q;
  q.open(&loop);
  int depth = 0;
  std::function<void()> again = [&] {
    if (++depth < 5) q.post(again);
  };
  q.post(again);
  q.run_all();
  EXPECT_EQ(depth, 5);
  q.close();
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace sy::net
