// One instance of a VM group's module on one worker (a Proxy-Wasm VM): its store, its exports,
// its root contexts (one per plugin sharing it) and stream contexts, and the guarded calls.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wasm_module.h"

namespace sywasm {

// The module's exports the host calls, looked up once per instance.
enum Fn {
  kMalloc,
  kOnMemoryAllocate,
  kInitialize,
  kStart,
  kMain,
  kOnContextCreate,
  kOnVmStart,
  kOnConfigure,
  kOnTick,
  kOnDone,
  kOnLog,
  kOnDelete,
  kOnRequestHeaders,
  kOnRequestBody,
  kOnRequestTrailers,
  kOnResponseHeaders,
  kOnResponseBody,
  kOnResponseTrailers,
  kOnHttpCallResponse,
  kOnQueueReady,
  kOnNewConnection,
  kOnDownstreamData,
  kOnUpstreamData,
  kOnDownstreamClose,
  kOnUpstreamClose,
  kOnForeignFunction,
  kOnGrpcReceiveInitialMetadata,
  kOnGrpcReceive,
  kOnGrpcReceiveTrailingMetadata,
  kOnGrpcClose,
  kFnCount
};

// A stream (HTTP) or connection (network) context of this VM.
struct StreamCtx {
  uint32_t id = 0;
  uint32_t root = 0;         // its plugin's root context
  Plugin* plugin = nullptr;  // valid while the stream lives (a config outlives its streams)
  sy_stream_t* s = nullptr;  // set only while inside one of the stream's callbacks
  sy_stream_id_t sid = 0;
  uint32_t filter_index = SY_NO_FILTER;
  // Network filter: the connection, from on_connection_create until on_connection_destroy
  // (ABI 1.2 keeps it valid on its worker that long), and the filter object the host knows.
  sy_conn_t* conn = nullptr;
  void* net_filter = nullptr;
  bool response_started = false;
  bool local_reply_sent = false;
};

// A plugin's root context in this VM. Kept (by id) after the plugin leaves the worker: calls
// it made may still answer, and its streams may still run. It hears on_done and on_delete when
// the VM is let go (~Vm).
struct RootCtx {
  uint32_t id = 0;
  Plugin* plugin = nullptr;       // null once the plugin left the worker
  sy_worker_t* worker = nullptr;  // the plugin's handle on this worker (timers, calls, queues)
  uint64_t tick_ms = 0;
  sy_timer_t* tick_timer = nullptr;
};

class Vm : public std::enable_shared_from_this<Vm> {
 public:
  // INDEX is the worker's index, -1 for a VM started on the main thread to check a config.
  Vm(std::shared_ptr<VmGroup> g, int32_t index)
      : group(std::move(g)), worker_index(index), code(group->current_code()) {}
  ~Vm();

  // Instantiates the module and runs _initialize/_start. False (ERR set) when any of it fails.
  bool start(std::string* err);
  // Gives P a root context (W its handle on this worker, null on the main thread) and calls
  // proxy_on_context_create, proxy_on_vm_start and proxy_on_configure for it, as Envoy does
  // for each root context. Null (ERR set) when any of it fails.
  RootCtx* add_root(Plugin* p, sy_worker_t* w, std::string* err);
  // P leaves this worker: its root's tick stops and its plugin is forgotten. When no plugin is
  // left, the VM is no longer the one its group's plugins join on this worker.
  void drop_root(Plugin* p);
  RootCtx* root_for(Plugin* p);
  RootCtx* root(uint32_t id);
  // The root context of the effective context (itself, or a stream's root), if any.
  RootCtx* cur_root();
  // The plugin the effective context belongs to; null when it left the worker.
  Plugin* cur_plugin();
  // The handle for timers, calls and queues on behalf of the effective context (null on the
  // main thread or once its plugin left).
  sy_worker_t* cur_worker();

  // Calls export F with ARGS (extra args are dropped when the export takes fewer, as 0.1.0's
  // two-argument on_request_headers). False when it trapped or ran past its deadline; the VM is
  // failed then. RET gets the first result (0 if none).
  bool call(Fn f, std::initializer_list<uint64_t> args, uint64_t* ret = nullptr);
  // Runs FN once the outermost call into the module has returned, as Envoy defers what a host
  // call asks of the proxy (continue or close a connection) until the VM is no longer on the
  // stack: the proxy may call into this VM again while doing it.
  void after_call(std::function<void()> fn) { after_call_.push_back(std::move(fn)); }
  bool has(Fn f) const { return has_[f]; }

  // Guest memory: a pointer to LEN bytes at PTR, or null when out of bounds.
  uint8_t* mem(uint64_t ptr, uint64_t len);
  bool read(uint64_t ptr, uint64_t len, std::string_view* out);
  bool write_u32(uint64_t ptr, uint32_t v);
  bool write_u64(uint64_t ptr, uint64_t v);
  // Copies DATA into memory the module allocates, and writes its address and size to PTR_OUT
  // and SIZE_OUT. False when the module cannot allocate or the pointers are out of bounds.
  bool give(std::string_view data, uint64_t ptr_out, uint64_t size_out);

  // Marks the VM failed (a trap inside a host call, proc_exit): the current call unwinds.
  void fail(const std::string& why, bool deadline = false);
  void log(sy_log_level_t level, std::string_view msg);
  // WASI fd 1 and 2: logged line by line, at info and error.
  void write_output(int fd, std::string_view bytes);
  void flush_output();

  StreamCtx* effective_stream();

  std::shared_ptr<VmGroup> group;
  int32_t worker_index;
  std::shared_ptr<Code> code;  // the version this VM runs
  wasmtime_store_t* store = nullptr;
  wasmtime_context_t* cx = nullptr;
  wasmtime_memory_t memory{};
  bool has_memory = false;

  std::vector<std::unique_ptr<RootCtx>> roots;
  uint32_t next_id = 1;
  uint32_t effective = 0;
  std::unordered_map<uint32_t, StreamCtx*> ctxs;

  bool failed = false;
  std::string fail_reason;
  bool pending_trap = false;  // a host call asks the current call to unwind
  int exit_code = -1;         // proc_exit's code

  // Set during on_http_call_response.
  const sy_callout_response_t* call_response = nullptr;
  std::string call_status;
  // Set during proxy_on_grpc_* (abi_grpc.cc's call, and the message being delivered).
  void* grpc = nullptr;
  std::unordered_map<uint32_t, void*> grpc_calls;  // gRPC calls in flight, by token
  std::string grpc_message;
  // (Re-)arms R's tick timer with its period, on its worker handle.
  void arm_tick(RootCtx* r);

 private:
  bool call_once(Fn f, std::initializer_list<uint64_t> args, uint64_t* ret);
  wasmtime_func_t fns_[kFnCount]{};
  std::vector<std::function<void()>> after_call_;
  bool has_[kFnCount]{};
  int depth_ = 0;
  std::string output_[2];
};

}  // namespace sywasm
