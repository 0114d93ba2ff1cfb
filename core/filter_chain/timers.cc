// Module timers on a worker: a stream's (owned by its FilterChain) and a worker context's
// (owned here). Their handles are tokens looked up in the worker's table, never pointers.
#include "core/filter_chain/timers.h"

#include <atomic>
#include <list>
#include <unordered_map>
#include <vector>

#include "core/filter_chain/chain.h"
#include "core/filter_chain/worker_context.h"

namespace sy::filters {
namespace {

// A timer handle is a token, looked up in the worker's table on use, never a pointer: a timer
// that fired, was cancelled or was dropped is simply not found, so a late cancel is harmless.
struct WorkerTimer;
struct TimerEntry {
  FilterChain::StreamTimer* stream = nullptr;
  WorkerTimer* worker = nullptr;
};
// The worker's table dies with its thread. Timers still pending at thread exit forget their
// tokens in their destructors (forget_timer), which may run after the table's: thread-local
// objects are destroyed in the reverse order of their making. The flag, trivially destructible,
// stays readable until the thread ends, so a late forget finds the table gone and does nothing.
thread_local bool t_timer_table_gone = false;
using TimerMap = std::unordered_map<uint64_t, TimerEntry>;
struct TimerTable {
  ~TimerTable() { t_timer_table_gone = true; }
  TimerMap map;
  // Nodes of forgotten tokens, kept for the next timers: a stream sets and cancels a timer per
  // message awaited (ext_proc), and a reused node costs no allocation.
  std::vector<TimerMap::node_type> spare;
};
// A few dozen nodes cover the timers a worker sets and forgets between two loop turns.
constexpr size_t kSpareNodes = 64;
TimerTable& timer_state() {
  thread_local TimerTable t;
  return t;
}
TimerMap& timer_table() { return timer_state().map; }
void remember_timer(uint64_t token, TimerEntry entry) {
  TimerTable& t = timer_state();
  if (t.spare.empty()) {
    t.map.emplace(token, entry);
    return;
  }
  TimerMap::node_type node = std::move(t.spare.back());
  t.spare.pop_back();
  node.key() = token;
  node.mapped() = entry;
  t.map.insert(std::move(node));
}
void forget_timer(uint64_t token) {
  if (t_timer_table_gone) return;
  TimerTable& t = timer_state();
  TimerMap::node_type node = t.map.extract(token);
  if (node && t.spare.size() < kSpareNodes) t.spare.push_back(std::move(node));
}
std::atomic<uint64_t> g_next_timer{1};

sy_timer_t* timer_handle(uint64_t token) {
  return reinterpret_cast<sy_timer_t*>(static_cast<uintptr_t>(token));
}

// Worker timers: owned by this table, since no stream holds them.
struct WorkerTimer {
  ~WorkerTimer() { forget_timer(token); }
  uint64_t token = 0;
  std::unique_ptr<net::Timer> timer;
  WorkerContext* ctx;
  sy_worker_task_fn fn;
  sy_drop_fn drop;
  void* arg;
  const ModuleIdentity* owner;  // the module whose code FN and DROP are (crash marker)
};
thread_local std::list<std::unique_ptr<WorkerTimer>> t_worker_timers;

// Removes the worker timers PRED selects, then runs their DROPs (the handles are already
// unknown by then, so a cancel from a DROP does nothing).
template <typename Pred>
void drop_worker_timers(Pred pred, bool count = true) {
  struct Drop {
    sy_drop_fn drop;
    void* arg;
    const ModuleIdentity* owner;
  };
  std::vector<Drop> drops;
  for (auto it = t_worker_timers.begin(); it != t_worker_timers.end();) {
    if (!pred(**it)) {
      ++it;
      continue;
    }
    drops.push_back({(*it)->drop, (*it)->arg, (*it)->owner});
    it = t_worker_timers.erase(it);
  }
  for (auto& d : drops) {
    if (count) host_posts_dropped()->inc();
    if (!d.drop) continue;
    ModuleCallMark mark(d.owner, "drop");
    d.drop(d.arg);
  }
}

}  // namespace

sy_timer_t* stream_timer(sy_stream_t* s, uint64_t ms, sy_stream_task_fn fn, sy_drop_fn drop,
                         void* arg) {
  if (!s || !fn) {
    if (drop) drop(arg);
    return nullptr;
  }
  FilterChain* c = FilterChain::from(s);
  // The list's node holds the timer itself: one allocation (and libuv's) per timer set.
  FilterChain::StreamTimer* raw = &c->timers.emplace_back(c->sink()->loop());
  raw->token = g_next_timer.fetch_add(1, std::memory_order_relaxed);
  raw->fn = fn;
  raw->drop = drop;
  raw->arg = arg;
  raw->chain = c;
  raw->position = c->current_position();  // it fires as the filter that set it
  raw->owner = current_module() ? current_module() : c->module_at(raw->position);
  remember_timer(raw->token, {raw, nullptr});
  raw->timer.start(ms, [c, raw] {
    sy_stream_task_fn f = raw->fn;
    void* a = raw->arg;
    uint32_t position = raw->position;
    const ModuleIdentity* owner = raw->owner;
    c->timers.remove_if([raw](const auto& t) { return &t == raw; });  // forgets the token
    c->run_as(position, [&] {
      ModuleCallMark mark(owner, "stream timer");
      f(c->handle(), a);
    });
  });
  return timer_handle(raw->token);
}

sy_timer_t* worker_timer(sy_worker_t* w, uint64_t ms, sy_worker_task_fn fn, sy_drop_fn drop,
                         void* arg) {
  // No timer made is a timer that will never fire: DROP says so, as for one dropped later.
  if (!w || !fn || !WorkerContext::from(w)->loop) {
    if (drop) drop(arg);
    return nullptr;
  }
  WorkerContext* ctx = WorkerContext::from(w);
  auto t = std::make_unique<WorkerTimer>();
  WorkerTimer* raw = t.get();
  raw->token = g_next_timer.fetch_add(1, std::memory_order_relaxed);
  raw->timer = std::make_unique<net::Timer>(ctx->loop);
  raw->ctx = ctx;
  raw->fn = fn;
  raw->drop = drop;
  raw->arg = arg;
  raw->owner = current_module();
  if (!raw->owner && ctx->factory && ctx->factory->scope)
    raw->owner = ctx->factory->scope->identity;
  if (!raw->owner && ctx->net_factory && ctx->net_factory->scope)
    raw->owner = ctx->net_factory->scope->identity;
  t_worker_timers.push_back(std::move(t));
  remember_timer(raw->token, {nullptr, raw});
  raw->timer->start(ms, [raw] {
    auto fn2 = raw->fn;
    void* a = raw->arg;
    WorkerContext* c = raw->ctx;
    const ModuleIdentity* owner = raw->owner;
    t_worker_timers.remove_if([raw](const auto& p) { return p.get() == raw; });
    ModuleCallMark mark(owner, "worker timer");
    fn2(c->handle(), a);
  });
  return timer_handle(raw->token);
}

void timer_cancel(sy_timer_t* t) {
  auto it = timer_table().find(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(t)));
  if (it == timer_table().end()) return;  // fired, cancelled or dropped already: nothing to do
  TimerEntry e = it->second;
  if (e.worker) {
    drop_worker_timers([&](const WorkerTimer& wt) { return &wt == e.worker; }, false);
    return;
  }
  FilterChain::StreamTimer* raw = e.stream;
  sy_drop_fn drop = raw->drop;
  void* arg = raw->arg;
  const ModuleIdentity* owner = raw->owner;
  raw->chain->timers.remove_if([raw](const auto& t) { return &t == raw; });
  if (!drop) return;
  ModuleCallMark mark(owner, "drop");
  drop(arg);
}

stats::Counter* host_posts_dropped() {
  static stats::Counter* c = stats::registry().counter("host", {}, "posts_dropped");
  return c;
}

FilterChain::StreamTimer::~StreamTimer() { forget_timer(token); }

void cancel_worker_timers(WorkerContext* ctx) {
  drop_worker_timers([ctx](const WorkerTimer& t) { return t.ctx == ctx; });
}

void drop_all_worker_timers() {
  drop_worker_timers([](const WorkerTimer&) { return true; });
}

}  // namespace sy::filters
