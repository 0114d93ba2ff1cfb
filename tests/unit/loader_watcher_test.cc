// FileWatcher: a replaced file (new inode, as `mv` and most `cp`s make) is reported once, after
// the writer has gone quiet; other files in the folder are ignored; stop() frees the handles.
#include <gtest/gtest.h>
#include <stdio.h>

#include <filesystem>
#include <string>
#include <vector>

#include "loader/watcher.h"
#include "tests/unit/loader_fixtures.h"

namespace sy::loader {
namespace {

using testfix::write_text;

// Runs LOOP until DONE() or until a guard timer (a failure guard, not a timing assertion).
template <typename Done>
void run_until(uv_loop_t* loop, Done done) {
  uv_timer_t guard;
  uv_timer_init(loop, &guard);
  uv_timer_start(
      &guard, [](uv_timer_t* t) { uv_stop(t->loop); }, 10000, 0);
  // Prepare runs before each poll, so a callback that just ran is seen before the loop blocks.
  uv_prepare_t check;
  uv_prepare_init(loop, &check);
  check.data = &done;
  uv_prepare_start(&check, [](uv_prepare_t* c) {
    if ((*static_cast<Done*>(c->data))()) uv_stop(c->loop);
  });
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
}

TEST(FileWatcherTest, ReportsAReplacedFileOnceAndIgnoresItsNeighbours) {
  testfix::TempDir dir;
  std::string path = dir.path + "/libsy_w.so";
  write_text(path, "v1");
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::vector<std::string> calls;
  {
    // These files are not modules, so they count as incomplete: a short grace lets them through.
    FileWatcher w(
        &loop, path, [&](const std::string& p) { calls.push_back(p); }, 20, 50);
    EXPECT_EQ(w.error(), "");
    EXPECT_EQ(w.path(), path);
    // A neighbour changes first, then the file is replaced in two steps the way `cp` + `mv`
    // deploys do; only the file counts, and only once.
    write_text(dir.path + "/other.so", "x");
    write_text(path + ".tmp", "v2-part");
    write_text(path + ".tmp", "v2-complete");
    ASSERT_EQ(rename((path + ".tmp").c_str(), path.c_str()), 0);
    run_until(&loop, [&] { return !calls.empty(); });
    ASSERT_EQ(calls, std::vector<std::string>{path});

    // A rewrite in place (same inode, new contents) is a change too.
    write_text(path, "v3, longer than before");
    run_until(&loop, [&] { return calls.size() == 2; });
    EXPECT_EQ(calls.size(), 2u);
  }
  // The watcher's handles close with it: the loop has nothing left and closes cleanly.
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(FileWatcherTest, AModuleRewrittenInPlaceIsReportedOnceComplete) {
  // A linker truncates its output and writes it again: the empty and the half-written file are
  // not reported (the grace is far longer than this test may run); the complete one is, once.
  testfix::TempDir dir;
  std::string module = testfix::build_module(
      dir.path, "w", testfix::c_module("SY_MODULE_STAMP(\"w\", \"1.0.0\");", "\"w\"", "\"1.0.0\""));
  ASSERT_FALSE(module.empty());
  std::string bytes = testfix::read_text(module);
  std::string path = dir.path + "/live.so";
  write_text(path, bytes);
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::vector<uint64_t> sizes;  // the file's size at each report
  {
    FileWatcher w(
        &loop, path, [&](const std::string& p) { sizes.push_back(std::filesystem::file_size(p)); },
        20, 3600 * 1000);
    write_text(path, "");
    write_text(path, bytes.substr(0, bytes.size() / 2));
    write_text(path, bytes);
    run_until(&loop, [&] { return !sizes.empty(); });
    EXPECT_EQ(sizes, std::vector<uint64_t>{bytes.size()});
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(FileWatcherTest, AMissingDirectoryIsAnErrorNotACrash) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    FileWatcher w(&loop, "/nonexistent-dir-for-sy/libsy_x.so", [](const std::string&) {});
    EXPECT_NE(w.error().find("cannot watch /nonexistent-dir-for-sy"), std::string::npos)
        << w.error();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace sy::loader
