// Lua states and the coroutine driver: the allocator with its cap, the instruction budget,
// loading a script, and resuming a direction's coroutine.
#include <cstdlib>
#include <cstring>
#include <tuple>

#include "lua_module.h"

namespace sylua {
namespace {

// How often (in VM instructions) the budget hook runs: rare enough to cost nothing measurable,
// often enough that a runaway loop stops within microseconds of its budget.
constexpr int kHookStep = 1000;

void* alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  Vm* vm = static_cast<Vm*>(ud);
  size_t old = ptr ? osize : 0;  // without PTR, OSIZE is a type tag
  if (nsize == 0) {
    std::free(ptr);
    vm->mem_used -= old;
    return nullptr;
  }
  // The cap is enforced while scripts run; host-side pushes between runs are small and must
  // not fail outside a protected call (that would abort the process).
  if (vm->enforce && vm->mem_limit && nsize > old && vm->mem_used + (nsize - old) > vm->mem_limit) {
    vm->mem_refused = true;
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (!p) return nullptr;
  vm->mem_used += nsize;
  vm->mem_used -= old;
  return p;
}

// Counts instructions of the running handler; a handler over its budget (or one that went on
// after the allocator refused it memory) is stopped by yielding from the hook, which pcall
// cannot catch. Where yielding is impossible (inside a C call such as table.sort), an error.
void hook(lua_State* L, lua_Debug*) {
  Vm* vm = Vm::of(L);
  Dir* d = vm->running;
  if (!d) {  // top-level code at load time
    vm->load_instructions += kHookStep;
    if (vm->budget && vm->load_instructions > vm->budget)
      luaL_error(L, "instruction budget exceeded (%d)", (int)vm->budget);
    return;
  }
  if (d->kill == Kill::None) {
    d->instructions += kHookStep;
    if (vm->budget && d->instructions > vm->budget)
      d->kill = Kill::Budget;
    else if (vm->mem_refused)
      d->kill = Kill::Memory;
  }
  if (d->kill == Kill::None) return;
  if (lua_isyieldable(L)) {
    lua_yield(L, 0);
    return;
  }
  luaL_error(L, d->kill == Kill::Budget ? "instruction budget exceeded" : "memory limit exceeded");
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    out += s;
    out += ';';
  }
  return out;
}

int get_ref(lua_State* L, const char* name) {
  lua_getglobal(L, name);
  if (lua_type(L, -1) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return LUA_NOREF;
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

}  // namespace

std::shared_ptr<Vm> Vm::create(const std::string& code, const std::string& chunkname,
                               const Settings& settings, bool counted, std::string* err) {
  auto vm = std::shared_ptr<Vm>(new Vm());
  vm->mem_limit = settings.limits.memory;
  vm->budget = settings.limits.instructions;
  vm->L = lua_newstate(alloc, vm.get());
  if (!vm->L) {
    *err = "cannot create a Lua state";
    return nullptr;
  }
  lua_State* L = vm->L;
  *static_cast<Vm**>(lua_getextraspace(L)) = vm.get();
  luaL_openlibs(L);
  // package_paths come first, then Lua's defaults, as in Envoy (PR #46963).
  lua_getglobal(L, "package");
  if (!settings.package_paths.empty()) {
    lua_getfield(L, -1, "path");
    std::string p = join(settings.package_paths) + (lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
    lua_pushlstring(L, p.data(), p.size());
    lua_setfield(L, -2, "path");
  }
  if (!settings.package_cpaths.empty()) {
    lua_getfield(L, -1, "cpath");
    std::string p =
        join(settings.package_cpaths) + (lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
    lua_pushlstring(L, p.data(), p.size());
    lua_setfield(L, -2, "cpath");
  }
  lua_pop(L, 1);
  register_api(L);
  register_objects(L);
  register_extra(L);
  register_crypto(L);
  if (luaL_loadbuffer(L, kPrelude, std::strlen(kPrelude), "=prelude") != LUA_OK ||
      lua_pcall(L, 0, 0, 0) != LUA_OK) {
    *err = std::string("prelude: ") + lua_tostring(L, -1);
    return nullptr;
  }
  lua_sethook(L, hook, LUA_MASKCOUNT, kHookStep);
  vm->enforce = true;
  int rc = luaL_loadbufferx(L, code.data(), code.size(), chunkname.c_str(), "t");
  if (rc == LUA_OK) rc = lua_pcall(L, 0, 0, 0);
  vm->enforce = false;
  if (rc != LUA_OK) {
    const char* m = lua_tostring(L, -1);
    *err = std::string("script load error: ") + (m ? m : "(error object is not a string)");
    return nullptr;
  }
  vm->on_request = get_ref(L, "envoy_on_request");
  vm->on_response = get_ref(L, "envoy_on_response");
  vm->counted = counted;
  if (counted) {
    vm_count_add(1);
    vm->report_memory();
  }
  return vm;
}

Vm::~Vm() {
  if (L) lua_close(L);
  if (counted) {
    vm_count_add(-1);
    memory_gauge_add(-mem_reported);
  }
}

void Vm::report_memory() {
  auto now = int64_t(mem_used);
  if (!counted || (now - mem_reported < 16384 && mem_reported - now < 16384)) return;
  memory_gauge_add(now - mem_reported);
  mem_reported = now;
}

Stream::~Stream() {
  for (auto& d : dir) finish(d);
  if (vm) {
    if (ctx_ref != LUA_NOREF) luaL_unref(vm->L, LUA_REGISTRYINDEX, ctx_ref);
    if (metadata_ref != LUA_NOREF) luaL_unref(vm->L, LUA_REGISTRYINDEX, metadata_ref);
  }
}

bool start(Dir& d) {
  Vm& vm = *d.st->vm;
  int fn = d.is_request() ? vm.on_request : vm.on_response;
  if (fn == LUA_NOREF) return false;
  lua_State* L = vm.L;
  if (!vm.idle_threads.empty()) {
    std::tie(d.co, d.co_ref) = vm.idle_threads.back();
    vm.idle_threads.pop_back();
  } else {
    d.co = lua_newthread(L);
    d.co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  d.serial = ++vm.next_serial;
  lua_rawgeti(d.co, LUA_REGISTRYINDEX, fn);
  push_handle(d.co, d);
  d.st->cfg->stats.inc(d.st->cfg->stats.executions);
  resume(d, 1);
  return true;
}

void finish(Dir& d, bool reusable) {
  d.serial = 0;
  constexpr size_t kIdleThreads = 64;
  if (d.co_ref != LUA_NOREF && d.st && d.st->vm) {
    Vm& vm = *d.st->vm;
    if (reusable && lua_status(d.co) == LUA_OK && vm.idle_threads.size() < kIdleThreads) {
      lua_settop(d.co, 0);
      vm.idle_threads.emplace_back(d.co, d.co_ref);
    } else {
      luaL_unref(vm.L, LUA_REGISTRYINDEX, d.co_ref);
    }
  }
  d.co_ref = LUA_NOREF;
  d.co = nullptr;
}

namespace {

void killed(Dir& d) {
  Stream& st = *d.st;
  Vm& vm = *st.vm;
  bool budget = d.kill == Kill::Budget;
  const Stats& stats = st.cfg->stats;
  stats.inc(budget ? stats.budget_exceeded : stats.memory_exceeded);
  log(SY_LOG_ERROR, budget ? "script error: instruction budget exceeded; the request gets a 500"
                           : "script error: memory limit of the Lua state exceeded; the request "
                             "gets a 500");
  finish(d);
  if (!budget) {
    lua_gc(vm.L, LUA_GCCOLLECT);
    // Still near the cap with the handler gone: globals hold the memory. Later streams get a
    // fresh state instead of failing one after another.
    if (vm.mem_used > vm.mem_limit / 10 * 9) vm.poisoned = true;
  }
  std::string_view body = budget ? "lua script exceeded its instruction budget\n"
                                 : "lua script exceeded its memory limit\n";
  sy_header_t h[] = {{S("content-type"), S("text/plain")}};
  if (g_host->send_local_reply(st.s, 500, h, 1, S(body),
                               S(budget ? "lua_budget_exceeded" : "lua_memory_exceeded")) == SY_OK)
    d.state = State::Responded;
  else
    d.state = State::Done;  // the response has started: it goes on without the script
}

}  // namespace

void resume(Dir& d, int nargs) {
  Vm& vm = *d.st->vm;
  Dir* prev = vm.running;
  vm.running = &d;
  d.state = State::Running;
  vm.mem_refused = false;
  vm.enforce = true;
  int nres = 0;
  int rc = lua_resume(d.co, nullptr, nargs, &nres);
  vm.enforce = false;
  vm.running = prev;
  vm.report_memory();
  ++d.yield_gen;
  d.iterating = 0;  // iterators do not survive a yield
  if (vm.mem_refused && d.kill == Kill::None && rc != LUA_OK && rc != LUA_YIELD)
    d.kill = Kill::Memory;
  if (d.kill != Kill::None) {
    killed(d);
    return;
  }
  if (rc == LUA_YIELD) {
    lua_pop(d.co, nres);
    if (d.state == State::Running) {
      // coroutine.yield() from the handler itself: Envoy's error, and the stream goes on.
      log(SY_LOG_ERROR, "script error: script performed an unexpected yield");
      d.st->cfg->stats.inc(d.st->cfg->stats.errors);
      d.state = State::Done;
      finish(d);
    } else if (d.state == State::Responded) {
      finish(d);
    }
    return;
  }
  if (rc != LUA_OK) {
    size_t n = 0;
    const char* m = luaL_tolstring(d.co, -1, &n);
    std::string msg = "script error: ";
    msg.append(m, n);
    log(SY_LOG_ERROR, msg);
    d.st->cfg->stats.inc(d.st->cfg->stats.errors);
  }
  d.state = State::Done;
  finish(d, rc == LUA_OK);
}

}  // namespace sylua
