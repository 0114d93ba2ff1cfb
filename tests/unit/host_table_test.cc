// The host table's lifetimes (issue 12): stream timers around on_stream_destroy, queue owners
// that go away, metric storage that grows while ids are in use, worker posts and their handle,
// posts that act for one filter of the stream, metric names, and the stream registry's bounds.
#include <gtest/gtest.h>
#include <uv.h>

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "core/filter_chain/chain.h"
#include "core/filter_chain/host_services.h"
#include "core/filter_chain/shared_data.h"
#include "core/filter_chain/stream_registry.h"
#include "core/filter_chain/worker_context.h"
#include "core/stats/stats.h"
#include "tests/unit/chain_fixtures.h"

namespace sy::filters {
namespace {

using namespace chain_test;

// Tasks "posted to a worker" wait here until the test runs (or discards) them.
struct FakeWorkers {
  std::deque<std::function<void()>> tasks;
  uint32_t count = 1;
  void install() {
    HostServices hs;
    hs.worker_count = [this] { return count; };
    hs.post_to_worker = [this](int32_t index, std::function<void()> fn) {
      if (index >= int32_t(count)) return false;
      tasks.push_back(std::move(fn));
      return true;
    };
    set_host_services(std::move(hs));
    bind_worker_thread(0, nullptr);
  }
  void run_all() {
    while (!tasks.empty()) {
      auto t = std::move(tasks.front());
      tasks.pop_front();
      t();
    }
  }
  ~FakeWorkers() { set_host_services({}); }
};

// ---- 2: a stream timer cancelled from on_stream_destroy ----------------------------------

struct TimerFilter {
  sy_timer_t* timer = nullptr;
  int fired = 0;
  int dropped = 0;
  int* destroyed_after_drops = nullptr;
};

void* timer_create(void* config, sy_stream_t* s) {
  auto* f = static_cast<TimerFilter*>(config);
  f->timer = host_table()->stream_timer(
      s, 1, [](sy_stream_t*, void* a) { ++static_cast<TimerFilter*>(a)->fired; },
      [](void* a) { ++static_cast<TimerFilter*>(a)->dropped; }, f);
  return f;
}
void timer_destroy(void* filter) {
  auto* f = static_cast<TimerFilter*>(filter);
  // What a careful module does: cancel what it set. The timer fired or was dropped by now.
  host_table()->timer_cancel(f->timer);
}

sy_http_filter_t timer_vt() {
  sy_http_filter_t vt{};
  vt.size = sizeof vt;
  vt.name = "timer";
  vt.on_stream_create = timer_create;
  vt.on_stream_destroy = timer_destroy;
  return vt;
}
const sy_http_filter_t kTimerVt = timer_vt();

TEST(StreamTimers, CancelInStreamDestroyIsANoOpAfterTheDrop) {
  Loop l;
  Sink sink(&l.loop);
  ModuleScope scope;
  TimerFilter tf;
  {
    FilterChain chain(&sink, {factory_for(&kTimerVt, &tf, &scope)}, sink.route, 1);
    ASSERT_NE(tf.timer, nullptr);
  }
  // The stream ended first: the timer was dropped once, and the cancel did nothing more.
  EXPECT_EQ(tf.dropped, 1);
  EXPECT_EQ(tf.fired, 0);
}

TEST(StreamTimers, CancelAfterTheTimerFiredIsANoOp) {
  Loop l;
  Sink sink(&l.loop);
  ModuleScope scope;
  TimerFilter tf;
  {
    FilterChain chain(&sink, {factory_for(&kTimerVt, &tf, &scope)}, sink.route, 1);
    while (tf.fired == 0) uv_run(&l.loop, UV_RUN_ONCE);
    host_table()->timer_cancel(tf.timer);  // fired: not a live timer any more
  }
  EXPECT_EQ(tf.fired, 1);
  EXPECT_EQ(tf.dropped, 0);
}

// The token table reuses the node of a forgotten token for the next timer: the old handle must
// still be unknown, so a late cancel leaves the new timer alone.
TEST(StreamTimers, CancelOfAnOldHandleLeavesTheTimerThatReusedItsSlot) {
  Loop l;
  Sink sink(&l.loop);
  ModuleScope scope;
  TimerFilter tf;
  {
    FilterChain chain(&sink, {factory_for(&kTimerVt, &tf, &scope)}, sink.route, 1);
    sy_timer_t* old = tf.timer;
    host_table()->timer_cancel(old);
    EXPECT_EQ(tf.dropped, 1);
    TimerFilter second;
    sy_timer_t* fresh = host_table()->stream_timer(
        chain.handle(), 1, [](sy_stream_t*, void* a) { ++static_cast<TimerFilter*>(a)->fired; },
        [](void* a) { ++static_cast<TimerFilter*>(a)->dropped; }, &second);
    ASSERT_NE(fresh, nullptr);
    EXPECT_NE(fresh, old);
    host_table()->timer_cancel(old);  // cancelled already: nothing happens
    EXPECT_EQ(second.dropped, 0);
    while (second.fired == 0) uv_run(&l.loop, UV_RUN_ONCE);
    EXPECT_EQ(second.dropped, 0);
    tf.timer = nullptr;  // on_stream_destroy's cancel then does nothing
  }
  EXPECT_EQ(tf.dropped, 1);
  EXPECT_EQ(tf.fired, 0);
}

// ---- 3: a queue whose owner left -------------------------------------------------------

int g_queue_ready = 0;
sy_http_filter_t queue_vt() {
  sy_http_filter_t vt{};
  vt.size = sizeof vt;
  vt.name = "queue";
  vt.on_queue_ready = [](void*, void*, uint32_t) { ++g_queue_ready; };
  return vt;
}
const sy_http_filter_t kQueueVt = queue_vt();

TEST(SharedQueues, EnqueueAfterTheOwnerLeftIsDroppedAndCounted) {
  FakeWorkers workers;
  workers.install();
  ModuleScope scope;
  auto factory = factory_for(&kQueueVt, nullptr, &scope);
  auto owner = std::make_unique<WorkerContext>();
  owner->factory = factory.get();
  uint32_t q = 0;
  ASSERT_EQ(host_table()->queue_register(scope.handle(), owner->handle(), S("unit.owner_gone"), &q),
            SY_OK);
  ASSERT_EQ(host_table()->queue_enqueue(q, S("one")), SY_OK);
  workers.run_all();
  EXPECT_EQ(g_queue_ready, 1);

  // The owner is erased (config change, swap) with a notification still queued, and another
  // enqueue follows.
  ASSERT_EQ(host_table()->queue_enqueue(q, S("two")), SY_OK);
  owner.reset();
  uint64_t before = queue_notifications_dropped();
  ASSERT_EQ(host_table()->queue_enqueue(q, S("three")), SY_OK);
  workers.run_all();
  EXPECT_EQ(g_queue_ready, 1);
  EXPECT_EQ(queue_notifications_dropped(), before + 2);
  // The data stays: whoever registers the queue next reads it.
  std::string got;
  auto sink = [](void* ctx, sy_str_t b, uint64_t) {
    static_cast<std::string*>(ctx)->append(b.ptr, b.len);
  };
  while (host_table()->queue_dequeue(q, sink, &got) == SY_OK) {
  }
  EXPECT_EQ(got, "onetwothree");
}

// A network filter config's worker context owns a queue as an HTTP filter's does (ABI 1.2).
int g_net_queue_ready = 0;
void* g_net_worker_data = nullptr;
sy_network_filter_t net_queue_vt() {
  sy_network_filter_t vt{};
  vt.size = sizeof vt;
  vt.name = "net_queue";
  vt.on_queue_ready = [](void*, void* worker_data, uint32_t) {
    ++g_net_queue_ready;
    g_net_worker_data = worker_data;
  };
  return vt;
}
const sy_network_filter_t kNetQueueVt = net_queue_vt();

TEST(SharedQueues, NetworkFilterContextIsNotifiedUntilItLeaves) {
  FakeWorkers workers;
  workers.install();
  ModuleScope scope;
  auto factory = std::make_shared<NetworkFilterFactory>();
  factory->vt = &kNetQueueVt;
  factory->scope = &scope;
  auto owner = std::make_unique<WorkerContext>();
  owner->net_factory = factory.get();
  owner->worker_data = &scope;
  uint32_t q = 0;
  ASSERT_EQ(host_table()->queue_register(scope.handle(), owner->handle(), S("unit.net_owner"), &q),
            SY_OK);
  ASSERT_EQ(host_table()->queue_enqueue(q, S("one")), SY_OK);
  workers.run_all();
  EXPECT_EQ(g_net_queue_ready, 1);
  EXPECT_EQ(g_net_worker_data, &scope);
  owner.reset();  // the network filter config left the worker
  uint64_t before = queue_notifications_dropped();
  ASSERT_EQ(host_table()->queue_enqueue(q, S("two")), SY_OK);
  workers.run_all();
  EXPECT_EQ(g_net_queue_ready, 1);
  EXPECT_EQ(queue_notifications_dropped(), before + 1);
}

// A queue registered with the worker's own handle tells the module's descriptor while its
// generation is published and loaded; not before, not after (ABI 1.2).
int g_module_queue_ready = 0;
void* g_module_queue_data = nullptr;

TEST(SharedQueues, WorkerOwnHandleNotifiesTheModuleWhileItsGenerationLives) {
  FakeWorkers workers;
  workers.install();
  ModuleScope scope;
  int module_data = 0;
  scope.module_data = &module_data;
  scope.on_queue_ready = [](void* data, sy_worker_t* w, uint32_t) {
    ++g_module_queue_ready;
    g_module_queue_data = data;
    EXPECT_NE(w, nullptr);
  };
  auto generation = std::make_shared<int>(0);
  publish_generation(&scope, generation);
  // The worker's own handle, as a post_to_worker task receives it.
  static sy_worker_t* own = nullptr;
  ASSERT_EQ(host_table()->post_to_worker(
                0, [](sy_worker_t* w, void*) { own = w; }, nullptr),
            SY_OK);
  workers.run_all();
  ASSERT_NE(own, nullptr);
  uint32_t q = 0;
  ASSERT_EQ(host_table()->queue_register(scope.handle(), own, S("unit.module_owner"), &q), SY_OK);
  ASSERT_EQ(host_table()->queue_enqueue(q, S("one")), SY_OK);
  workers.run_all();
  EXPECT_EQ(g_module_queue_ready, 1);
  EXPECT_EQ(g_module_queue_data, &module_data);

  // Unloaded with a notification queued, and another enqueue after: both dropped and counted.
  uint64_t before = queue_notifications_dropped();
  ASSERT_EQ(host_table()->queue_enqueue(q, S("two")), SY_OK);
  generation.reset();
  ASSERT_EQ(host_table()->queue_enqueue(q, S("three")), SY_OK);
  workers.run_all();
  EXPECT_EQ(g_module_queue_ready, 1);
  EXPECT_EQ(queue_notifications_dropped(), before + 2);
  forget_generation(&scope);
}

// ---- 4: metric storage ------------------------------------------------------------------

TEST(ModuleMetrics, EntriesStayPutWhileMoreAreDefined) {
  ModuleScope scope;
  scope.name = "unit_stable";
  uint32_t first = 0;
  ASSERT_EQ(host_table()->metric_define(scope.handle(), SY_COUNTER, S("first"), nullptr, 0, &first),
            SY_OK);
  const ModuleScope::Metric* before = module_metric(scope.handle(), first);
  ASSERT_NE(before, nullptr);
  // Another thread may define metrics while a worker holds the entry it looked up.
  for (int i = 0; i < 200; ++i) {
    uint32_t id;
    std::string name = "m" + std::to_string(i);
    ASSERT_EQ(host_table()->metric_define(scope.handle(), SY_GAUGE, S(name), nullptr, 0, &id),
              SY_OK);
  }
  EXPECT_EQ(module_metric(scope.handle(), first), before);
  EXPECT_EQ(host_table()->metric_add(scope.handle(), first, 2), SY_OK);
  int64_t v = 0;
  EXPECT_EQ(host_table()->metric_get(scope.handle(), first, &v), SY_OK);
  EXPECT_EQ(v, 2);
}

// ---- 5: worker posts ----------------------------------------------------------------------

TEST(WorkerPosts, TaskGetsAWorkerHandle) {
  FakeWorkers workers;
  workers.count = 2;
  workers.install();
  static sy_worker_t* seen = nullptr;
  static int32_t seen_index = -2;
  ASSERT_EQ(host_table()->post_to_worker(
                1,
                [](sy_worker_t* w, void*) {
                  seen = w;
                  seen_index = host_table()->worker_index(w);
                },
                nullptr),
            SY_OK);
  workers.run_all();
  ASSERT_NE(seen, nullptr);
  EXPECT_EQ(seen_index, 0);  // FakeWorkers runs every task on this thread, as worker 0
}

TEST(WorkerPosts, DropRunsWhenTheTaskNeverRuns) {
  static int ran = 0, dropped = 0;
  {
    FakeWorkers workers;
    workers.install();
    auto task = [](sy_worker_t*, void*) { ++ran; };
    auto drop = [](void*) { ++dropped; };
    EXPECT_EQ(host_table()->post_to_worker_drop(3, task, drop, nullptr), SY_ERR_NOT_FOUND);
    EXPECT_EQ(dropped, 1);
    ASSERT_EQ(host_table()->post_to_worker_drop(0, task, drop, nullptr), SY_OK);
    workers.tasks.clear();  // the worker stopped before running it
  }
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(dropped, 2);
}

TEST(WorkerTimers, DroppedWhenTheirContextLeavesAndCancelLaterIsANoOp) {
  Loop l;
  static int fired = 0, dropped = 0;
  WorkerContext ctx;
  ctx.loop = &l.loop;
  sy_timer_t* t = host_table()->worker_timer_drop(
      ctx.handle(), 1000, [](sy_worker_t*, void*) { ++fired; }, [](void*) { ++dropped; }, nullptr);
  ASSERT_NE(t, nullptr);
  cancel_worker_timers(&ctx);  // the factory leaves this worker
  EXPECT_EQ(dropped, 1);
  host_table()->timer_cancel(t);  // from on_worker_stop, say: already dropped
  EXPECT_EQ(dropped, 1);
  sy_timer_t* t2 = host_table()->worker_timer_drop(
      ctx.handle(), 1, [](sy_worker_t*, void*) { ++fired; }, [](void*) { ++dropped; }, nullptr);
  while (fired == 0) uv_run(&l.loop, UV_RUN_ONCE);
  host_table()->timer_cancel(t2);  // fired: nothing happens
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(dropped, 1);
}

// ---- 6: a post that acts for one filter -------------------------------------------------

struct Actor {
  std::string name;
  std::vector<std::string>* log;
  void* route_cfg_in_task = reinterpret_cast<void*>(1);
  sy_stream_id_t id = 0;
};

sy_filter_status_t actor_req_headers(void* f, sy_stream_t* s, bool) {
  auto* a = static_cast<Actor*>(f);
  a->id = host_table()->stream_id(s);
  // The first filter holds the request and finishes it later, from a task.
  if (a->name == "a") {
    host_table()->post_to_stream(
        a->id,
        [](sy_stream_t* st, void* arg) {
          auto* self = static_cast<Actor*>(arg);
          self->route_cfg_in_task = host_table()->route_config(st);
          host_table()->resume(st, SY_REQUEST);
          host_table()->inject_data(st, SY_REQUEST, S("from-a"), true);
        },
        nullptr, a);
    return SY_STOP;
  }
  return SY_CONTINUE;
}
sy_filter_status_t actor_req_body(void* f, sy_stream_t* s, bool end) {
  auto* a = static_cast<Actor*>(f);
  sy_str_t chunk;
  host_table()->body_get(s, SY_REQUEST, SY_BODY_CHUNK, &chunk);
  a->log->push_back(a->name + ".body(" + std::string(chunk.ptr, chunk.len) + ")" +
                    (end ? "+end" : ""));
  return SY_CONTINUE;
}
void* actor_create(void* config, sy_stream_t*) { return config; }

sy_http_filter_t actor_vt() {
  sy_http_filter_t vt{};
  vt.size = sizeof vt;
  vt.name = "actor";
  vt.on_stream_create = actor_create;
  vt.on_request_headers = actor_req_headers;
  vt.on_request_body = actor_req_body;
  return vt;
}
const sy_http_filter_t kActorVt = actor_vt();

TEST(StreamPosts, TaskActsForTheFilterThatPostedIt) {
  FakeWorkers workers;
  workers.install();
  Loop l;
  Sink sink(&l.loop);
  ModuleScope scope;
  std::vector<std::string> log;
  Actor a{"a", &log}, b{"b", &log};
  auto fa = factory_for(&kActorVt, &a, &scope);
  auto fb = factory_for(&kActorVt, &b, &scope);
  int route_cfg = 7;
  fa->route_configs["r"].config = &route_cfg;
  sy_stream_id_t id = next_stream_id(0);
  FilterChain chain(&sink, {fa, fb}, sink.route, id);
  chain.decode_headers(false);
  workers.run_all();
  // As inside a's callback: a's per-route config, and its bytes go on to b, not back to a.
  EXPECT_EQ(a.route_cfg_in_task, &route_cfg);
  EXPECT_EQ(log, (std::vector<std::string>{"b.body(from-a)+end"}));
  EXPECT_EQ(sink.req_body, "from-a");
}

// A filter that holds the request and hands its position to "another thread" (the test),
// which finishes the request later through post_to_filter.
uint32_t g_held_by = SY_NO_FILTER;
sy_filter_status_t holder_req_headers(void* f, sy_stream_t* s, bool) {
  auto* a = static_cast<Actor*>(f);
  a->id = host_table()->stream_id(s);
  if (a->name != "a") return SY_CONTINUE;
  g_held_by = host_table()->filter_index(s);
  return SY_STOP;
}
sy_http_filter_t holder_vt() {
  sy_http_filter_t vt = actor_vt();
  vt.on_request_headers = holder_req_headers;
  return vt;
}
const sy_http_filter_t kHolderVt = holder_vt();

TEST(StreamPosts, PostToFilterFromElsewhereActsForThatFilter) {
  FakeWorkers workers;
  workers.install();
  Loop l;
  Sink sink(&l.loop);
  ModuleScope scope;
  std::vector<std::string> log;
  Actor a{"a", &log}, b{"b", &log};
  auto fa = factory_for(&kHolderVt, &a, &scope);
  auto fb = factory_for(&kHolderVt, &b, &scope);
  int route_cfg = 9;
  fa->route_configs["r"].config = &route_cfg;
  sy_stream_id_t id = next_stream_id(0);
  FilterChain chain(&sink, {fa, fb}, sink.route, id);
  chain.decode_headers(false);
  ASSERT_EQ(g_held_by, 0u);
  EXPECT_EQ(host_table()->filter_index(chain.handle()), SY_NO_FILTER);  // no filter runs now
  ASSERT_EQ(host_table()->post_to_filter(
                id, g_held_by,
                [](sy_stream_t* st, void* arg) {
                  static_cast<Actor*>(arg)->route_cfg_in_task = host_table()->route_config(st);
                  host_table()->resume(st, SY_REQUEST);
                  host_table()->inject_data(st, SY_REQUEST, S("late"), true);
                },
                nullptr, &a),
            SY_OK);
  workers.run_all();
  EXPECT_EQ(a.route_cfg_in_task, &route_cfg);
  EXPECT_EQ(log, (std::vector<std::string>{"b.body(late)+end"}));
  EXPECT_EQ(sink.events, (std::vector<std::string>{"req_headers", "req_end"}));
}

// The registry holds a stream only once a module has its id (host stream_id), and never again
// after the stream has left it: a post to an id nobody was given, or to an ended stream, is
// stale, and its DROP runs.
TEST(StreamRegistry, OnlyAPublishedIdTakesPosts) {
  FakeWorkers workers;
  workers.install();
  Loop l;
  Sink sink(&l.loop);
  static int ran = 0, dropped = 0;
  auto task = [](sy_stream_t*, void*) { ++ran; };
  auto drop = [](void*) { ++dropped; };
  sy_stream_id_t id = next_stream_id(0);
  FilterChain chain(&sink, {}, sink.route, id);
  EXPECT_EQ(host_table()->post_to_stream(id, task, drop, nullptr), SY_ERR_STALE);
  EXPECT_EQ(dropped, 1);
  ASSERT_EQ(host_table()->stream_id(chain.handle()), id);
  EXPECT_EQ(host_table()->post_to_stream(id, task, drop, nullptr), SY_OK);
  workers.run_all();
  EXPECT_EQ(ran, 1);
  chain.unpublish();
  EXPECT_EQ(host_table()->stream_id(chain.handle()), id);  // asking again does not re-enter it
  EXPECT_EQ(host_table()->post_to_stream(id, task, drop, nullptr), SY_ERR_STALE);
  EXPECT_EQ(dropped, 2);
  EXPECT_EQ(ran, 1);
}

// ---- 8: metric names ------------------------------------------------------------------------

TEST(ModuleMetrics, NamesAreValidatedAndKeptApartFromTheHosts) {
  ModuleScope scope;
  scope.name = "unit_ns";
  uint32_t id = 0;
  for (std::string_view bad : {"x\nloads 99", "a b", "", "semi;colon", "quote\"", "slash/"})
    EXPECT_EQ(host_table()->metric_define(scope.handle(), SY_COUNTER, S(bad), nullptr, 0, &id),
              SY_ERR_INVALID)
        << bad;
  sy_label_t bad_label{S("route"), S("a\nb")};
  EXPECT_EQ(host_table()->metric_define(scope.handle(), SY_COUNTER, S("ok"), &bad_label, 1, &id),
            SY_ERR_INVALID);
  EXPECT_EQ(
      host_table()->metric_define(scope.handle(), SY_COUNTER, S("ok.a-b:c_9"), nullptr, 0, &id),
      SY_OK);

  // The host's own counter for this module and the module's metric of the same name are two.
  stats::Counter* host_loads = module_host_counter("unit_ns", "loads");
  host_loads->inc(5);
  uint32_t loads = 0;
  ASSERT_EQ(host_table()->metric_define(scope.handle(), SY_COUNTER, S("loads"), nullptr, 0, &loads),
            SY_OK);
  ASSERT_EQ(host_table()->metric_add(scope.handle(), loads, 1), SY_OK);
  int64_t v = 0;
  ASSERT_EQ(host_table()->metric_get(scope.handle(), loads, &v), SY_OK);
  EXPECT_EQ(v, 1);
  EXPECT_EQ(host_loads->value(), 5u);
  std::string text = stats::registry().render_text();
  EXPECT_NE(text.find("module.unit_ns.loads: 1\n"), std::string::npos) << text;
}

// ---- issue 11 §2: the registry's bounds ----------------------------------------------------

TEST(StreamRegistry, WorkerIndexBeyondTheLimitIsRefused) {
  Loop l;
  Sink sink(&l.loop);
  sy_stream_id_t id = next_stream_id(0xffff);  // a worker index no config allows
  FilterChain chain(&sink, {}, sink.route, id);
  register_stream(id, &chain, nullptr);
  static int dropped = 0;
  EXPECT_EQ(host_table()->post_to_stream(
                id, [](sy_stream_t*, void*) { FAIL(); }, [](void*) { ++dropped; }, nullptr),
            SY_ERR_STALE);
  EXPECT_EQ(dropped, 1);
  unregister_stream(id);
}

}  // namespace
}  // namespace sy::filters
