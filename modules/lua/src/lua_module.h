// The Lua module's shared declarations: configs, the per-worker Lua states (Vm), and the
// per-stream runtime (Stream, Dir) that drives one coroutine per direction.
//
// Threading: configs are built on the main thread and read-only afterwards. A Vm belongs to
// one worker and only that worker touches it; streams live on their worker. The only
// cross-thread state is the host's (shared data, metrics).
#pragma once

#include <switchyard/module.h>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <switchyard/json.hpp>
#include <unordered_map>
#include <vector>

namespace sylua {

// Configs and metadata arrive as JSON text; the SDK's reader reads them.
namespace json = sy::sdk::json;

extern const sy_host_t* g_host;
extern sy_module_t* g_module;

inline sy_str_t S(std::string_view v) { return {v.data(), v.size()}; }
inline std::string_view V(sy_str_t s) { return {s.ptr ? s.ptr : "", s.len}; }
void log(sy_log_level_t level, std::string_view msg);

// ---- configuration ---------------------------------------------------------------------

struct Limits {
  uint64_t instructions = 20'000'000;  // per handler call, 0 = none
  uint64_t memory = 64ull << 20;       // per Lua state, bytes, 0 = none
};

// What a Lua state is built from, besides the script: states are shared only when all match.
struct Settings {
  std::vector<std::string> package_paths, package_cpaths;
  Limits limits;
  std::string key() const;
};

struct Stats {         // ids of this config's counters (names carry stat_prefix)
  std::string prefix;  // "" or "<stat_prefix>."
  uint32_t errors = 0, executions = 0, budget_exceeded = 0, memory_exceeded = 0, script_reloads = 0,
           script_reload_errors = 0;
  void define(const std::string& stat_prefix);
  void inc(uint32_t id) const { g_host->metric_add(g_module, id, 1); }
};

class Vm;

// One script as configured (default, named, or a route's) and the states that run it: one per
// worker, created on the worker at its first stream. Identical scripts (same code, settings,
// and not watched) share one VmSet, so they share the per-worker states.
struct VmSet {
  std::string code;
  std::string chunkname;  // what error messages show: [string "..."] or @file
  std::string filename;   // set for filename sources
  bool watch = false;
  Settings settings;
  std::string share_key;  // "" when not shared

  struct Slot {
    std::shared_ptr<Vm> vm;
    int64_t next_check_ms = 0;
    struct timespec mtime = {0, 0};
    off_t size = -1;
    ino_t ino = 0;
    size_t hash = 0;  // of the code its state runs (watched files)
  };
  std::vector<Slot> slots;  // by worker index; each touched by its worker only
  // A watched file's versions as the workers met them, so that an edit counts once in
  // script_reloads / script_reload_errors however many workers pick it up.
  std::mutex seen_mu;
  size_t loaded_hash = 0, failed_hash = 0;
  std::string good_code;  // the last version that loaded (a new worker starts from it)

  ~VmSet();
  // The state for worker W (made now if needed; picks up file changes when watched).
  std::shared_ptr<Vm> get(int worker, const Stats& stats);
};

struct FilterConfig {
  std::shared_ptr<VmSet> default_script;  // may be null
  std::map<std::string, std::shared_ptr<VmSet>> named;
  std::string stat_prefix;
  bool clear_route_cache = true;
  json::Value filter_context, metadata, vhost_metadata;
  Settings settings;
  bool watch = false;
  Stats stats;
};

struct RouteConfig {
  bool has_name = false;
  std::string name;
  std::shared_ptr<VmSet> script;
  json::Value filter_context, metadata;
};

// Builds configs from the filter's JSON; on failure returns null and writes ERR.
FilterConfig* parse_filter_config(std::string_view json, std::string* err);
RouteConfig* parse_route_config(std::string_view json, std::string* err);
// A VmSet for CODE, compiled and run once on a scratch state to validate it (syntax errors,
// refused LuaJIT-only modules, top-level errors). Shared with identical scripts.
std::shared_ptr<VmSet> make_vmset(const std::string& code, const std::string& chunkname,
                                  const std::string& filename, bool watch, const Settings& settings,
                                  std::string* err);
void vm_count_add(int64_t delta);
void memory_gauge_add(int64_t delta);

// ---- the runtime -----------------------------------------------------------------------

struct Dir;
struct Stream;

enum class State {
  Idle,          // not started (or no handler)
  Running,       // in lua_resume
  WaitBody,      // body(): until end of stream
  WaitChunk,     // bodyChunks(): until the next chunk
  WaitTrailers,  // trailers(): until trailers or end of stream
  HttpCall,      // synchronous httpCall()
  Responded,     // respond() sent a local reply; never resumed
  Done,          // finished (or failed: the stream goes on untouched)
};

enum class Kill { None, Budget, Memory };

struct Dir {
  Stream* st = nullptr;
  sy_direction_t d = SY_REQUEST;
  lua_State* co = nullptr;
  int co_ref = LUA_NOREF;
  State state = State::Idle;
  // Identifies this coroutine run among all of the state's: objects carry it and are usable
  // only while the run with the same serial is the one executing (so an object kept in a
  // global is recognised as stale without ever touching freed memory, and needs no __gc).
  uint64_t serial = 0;
  bool headers_continued = false;  // our filter let this direction's headers go on
  bool end_seen = false;           // end of stream reached our filter
  bool headers_end = false;        // the headers ended the stream: there is no body
  bool trailers_seen = false;
  bool headers_modified = false;
  bool body_streamed = false;  // bodyChunks() started
  bool body_buffered = false;  // body() was called
  uint32_t chunk_gen = 0;      // bumps at every bodyChunks() step: older chunks are dead
  uint32_t yield_gen = 0;      // bumps at every yield: header iterators are dead
  uint64_t instructions = 0;
  Kill kill = Kill::None;
  unsigned iterating = 0;  // bit per sy_header_kind_t with an open iterator (until a yield)
  bool is_request() const { return d == SY_REQUEST; }
};

struct Stream {
  FilterConfig* cfg = nullptr;
  RouteConfig* rc = nullptr;
  std::shared_ptr<Vm> vm;
  sy_stream_t* s = nullptr;  // valid while a callback or task of this stream runs
  sy_stream_id_t id = 0;
  Dir dir[2];
  int ctx_ref = LUA_NOREF;       // handle:ctx()
  int metadata_ref = LUA_NOREF;  // dynamicMetadata() namespaces set by this filter
  ~Stream();
};

class Vm {
 public:
  // Builds a state: libraries, prelude, API, then the script's top-level code. COUNTED: a
  // worker's state (in the vm_count gauge), not a scratch one made to validate a config.
  static std::shared_ptr<Vm> create(const std::string& code, const std::string& chunkname,
                                    const Settings& settings, bool counted, std::string* err);
  ~Vm();
  lua_State* L = nullptr;
  uint64_t mem_used = 0, mem_limit = 0;
  bool enforce = false;      // the memory cap applies (while scripts run)
  bool mem_refused = false;  // the allocator refused since the run began
  bool poisoned = false;     // full of garbage it cannot free: streams get a new state
  bool counted = false;
  uint64_t budget = 0, load_instructions = 0;
  int64_t mem_reported = 0;  // what the memory_bytes gauge holds for this state
  // Moves the memory_bytes gauge when this state's size changed by more than a little.
  void report_memory();
  int on_request = LUA_NOREF, on_response = LUA_NOREF;
  Dir* running = nullptr;  // the direction whose coroutine runs now
  uint64_t next_serial = 0;
  std::unordered_map<std::string, uint32_t> custom_metrics;
  // Coroutines that finished cleanly, kept for the next handler call (a thread costs an
  // allocation and GC work per request otherwise).
  std::vector<std::pair<lua_State*, int>> idle_threads;
  static Vm* of(lua_State* L) { return *static_cast<Vm**>(lua_getextraspace(L)); }

 private:
  Vm() = default;
};

// Starts DIR's handler (if the script has one) with the stream handle. False: no handler.
bool start(Dir& d);
// Resumes DIR's coroutine with the NARGS values pushed on its stack.
void resume(Dir& d, int nargs);
// Ends the coroutine (finished, failed, or the stream is going away). REUSABLE: it returned
// normally, so its thread can serve another handler call.
void finish(Dir& d, bool reusable = false);
// After a coroutine resumed outside a filter callback (a callout's reply): let the direction
// go on if the script no longer holds it.
void resumed_async(Dir& d);

// Lua-side API registration (api_*.cc), called once per new state.
void register_api(lua_State* L);
void register_objects(lua_State* L);
void register_extra(lua_State* L);
void register_crypto(lua_State* L);
extern const char* const kPrelude;

// Object constructors used across files (they push one value).
void push_handle(lua_State* L, Dir& d);
void push_headers(lua_State* L, Dir& d, sy_header_kind_t kind, bool read_only);
void push_buffer(lua_State* L, Dir& d, sy_body_part_t part);
void push_metadata_object(lua_State* L, const json::Value* v);  // route/vhost/filterContext
void push_json(lua_State* L, const json::Value& v);
void push_ssl(lua_State* L, Dir& d);
// The Dir an object belongs to, or a Lua error ("object used outside of proper scope").
struct Obj;
Dir& live(lua_State* L, const Obj* o);
// Numbers as LuaJIT prints them (integral floats without ".0").
void push_number_text(lua_State* L, int idx);
// Argument I as a string; numbers are converted LuaJIT-style.
std::string_view arg_string(lua_State* L, int i);

}  // namespace sylua
