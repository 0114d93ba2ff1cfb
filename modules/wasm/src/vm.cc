// A VM group's VM on one worker: instantiation, the start sequence, root contexts, and guarded
// calls (an epoch deadline per callback; a trap or a missed deadline fails the VM instead of
// the process).
#include "vm.h"

#include <cstring>

namespace sywasm {
namespace {

const char* const kFnNames[kFnCount] = {
    "malloc",
    "proxy_on_memory_allocate",
    "_initialize",
    "_start",
    "main",
    "proxy_on_context_create",
    "proxy_on_vm_start",
    "proxy_on_configure",
    "proxy_on_tick",
    "proxy_on_done",
    "proxy_on_log",
    "proxy_on_delete",
    "proxy_on_request_headers",
    "proxy_on_request_body",
    "proxy_on_request_trailers",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_http_call_response",
    "proxy_on_queue_ready",
    "proxy_on_new_connection",
    "proxy_on_downstream_data",
    "proxy_on_upstream_data",
    "proxy_on_downstream_connection_close",
    "proxy_on_upstream_connection_close",
    "proxy_on_foreign_function",
    "proxy_on_grpc_receive_initial_metadata",
    "proxy_on_grpc_receive",
    "proxy_on_grpc_receive_trailing_metadata",
    "proxy_on_grpc_close",
};

std::string error_text(wasmtime_error_t* e) {
  wasm_name_t msg;
  wasmtime_error_message(e, &msg);
  std::string s(msg.data, msg.size);
  wasm_byte_vec_delete(&msg);
  wasmtime_error_delete(e);
  return s;
}

std::string trap_text(wasm_trap_t* t) {
  wasm_name_t msg;
  wasm_trap_message(t, &msg);
  std::string s(msg.data, msg.size);
  wasm_byte_vec_delete(&msg);
  // The message holds a NUL at its end.
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

}  // namespace

Vm::~Vm() {
  // The last holder let go: no plugin joins this VM any more and no stream or call runs on it.
  // Each root context hears proxy_on_done, then proxy_on_delete, as in Envoy's VM shutdown.
  // A root answering false to on_done would have Envoy wait for its proxy_done; nothing is
  // left here for it to finish, so the answer is not awaited.
  for (auto& r : roots) {
    if (r->tick_timer) g_host->timer_cancel(r->tick_timer);
    r->tick_timer = nullptr;
    if (!store || failed) continue;
    effective = r->id;
    call(kOnDone, {r->id});
    call(kOnDelete, {r->id});
  }
  if (store) wasmtime_store_delete(store);
}

bool Vm::start(std::string* err) {
  store = wasmtime_store_new(group->mod->engine, this, nullptr);
  cx = wasmtime_store_context(store);
  // The memory limit per VM: memory.grow past it fails (returns -1) instead of growing.
  wasmtime_store_limiter(store, int64_t(group->cfg.memory_limit_bytes), -1, -1, -1, -1);
  wasmtime_context_set_epoch_deadline(cx, group->cfg.callback_deadline_ms / kTickMs + 2);

  wasmtime_instance_t instance;
  wasm_trap_t* trap = nullptr;
  if (wasmtime_error_t* e =
          wasmtime_linker_instantiate(code->linker, cx, code->module, &instance, &trap)) {
    *err = "cannot instantiate: " + error_text(e);
    return false;
  }
  if (trap) {
    *err = "trapped while instantiating: " + trap_text(trap);
    wasm_trap_delete(trap);
    return false;
  }
  wasmtime_extern_t ext;
  if (wasmtime_instance_export_get(cx, &instance, "memory", 6, &ext) &&
      ext.kind == WASMTIME_EXTERN_MEMORY) {
    memory = ext.of.memory;
    has_memory = true;
  }
  for (int f = 0; f < kFnCount; ++f) {
    if (wasmtime_instance_export_get(cx, &instance, kFnNames[f], strlen(kFnNames[f]), &ext) &&
        ext.kind == WASMTIME_EXTERN_FUNC) {
      fns_[f] = ext.of.func;
      has_[f] = true;
    }
  }
  if (!has_memory) {
    *err = "the module exports no memory";
    return false;
  }
  if (!has_[kMalloc] && !has_[kOnMemoryAllocate]) {
    *err = "the module exports neither proxy_on_memory_allocate nor malloc";
    return false;
  }
  // A WASI reactor is initialised with _initialize (then main, if the toolchain exports it);
  // a command with _start, whose proc_exit(0) is a normal end.
  if (has_[kInitialize]) {
    if (!call(kInitialize, {})) {
      *err = "_initialize failed: " + fail_reason;
      return false;
    }
    if (has_[kMain] && !call(kMain, {0, 0})) {
      *err = "main failed: " + fail_reason;
      return false;
    }
  } else if (has_[kStart]) {
    if (!call(kStart, {}) && exit_code != 0) {
      *err = "_start failed: " + fail_reason;
      return false;
    }
    failed = false;
  }
  return true;
}

RootCtx* Vm::add_root(Plugin* p, sy_worker_t* w, std::string* err) {
  auto owned = std::make_unique<RootCtx>();
  RootCtx* r = owned.get();
  r->id = next_id++;
  r->plugin = p;
  r->worker = w;
  roots.push_back(std::move(owned));
  effective = r->id;
  if (has_[kOnContextCreate] && !call(kOnContextCreate, {r->id, 0})) {
    *err = "proxy_on_context_create of the root context failed: " + fail_reason;
    return nullptr;
  }
  // Every root context gets on_vm_start, not only the VM's first: Envoy's host does the same
  // (the Rust SDK keeps it per root context), with the VM's configuration.
  uint64_t ok = 1;
  if (has_[kOnVmStart] && !call(kOnVmStart, {r->id, group->cfg.vm_configuration.size()}, &ok)) {
    *err = "proxy_on_vm_start failed: " + fail_reason;
    return nullptr;
  }
  if (!ok) {
    *err = "proxy_on_vm_start returned false";
    return nullptr;
  }
  if (has_[kOnConfigure] && !call(kOnConfigure, {r->id, p->cfg.plugin_configuration.size()}, &ok)) {
    *err = "proxy_on_configure failed: " + fail_reason;
    return nullptr;
  }
  if (!ok) {
    *err = "proxy_on_configure returned false (the plugin rejected its configuration)";
    return nullptr;
  }
  // proxy_set_tick_period_milliseconds during the start recorded the period; arm it now.
  if (r->tick_ms) arm_tick(r);
  return r;
}

void Vm::drop_root(Plugin* p) {
  RootCtx* r = root_for(p);
  if (!r) return;
  if (r->tick_timer) g_host->timer_cancel(r->tick_timer);
  r->tick_timer = nullptr;
  r->tick_ms = 0;
  r->plugin = nullptr;
  r->worker = nullptr;
  // The last plugin using this VM left the worker (a reload replaced them all): plugins that
  // arrive later start a fresh VM instead of inheriting this one's state, whether or not
  // streams in flight still hold it.
  for (auto& other : roots)
    if (other->plugin) return;
  if (worker_index >= 0 && group->vms[size_t(worker_index)].lock().get() == this)
    group->vms[size_t(worker_index)].reset();
}

RootCtx* Vm::root_for(Plugin* p) {
  for (auto& r : roots)
    if (r->plugin == p) return r.get();
  return nullptr;
}

RootCtx* Vm::root(uint32_t id) {
  for (auto& r : roots)
    if (r->id == id) return r.get();
  return nullptr;
}

RootCtx* Vm::cur_root() {
  StreamCtx* c = effective_stream();
  return root(c ? c->root : effective);
}

Plugin* Vm::cur_plugin() {
  if (StreamCtx* c = effective_stream()) return c->plugin;
  RootCtx* r = root(effective);
  return r ? r->plugin : nullptr;
}

sy_worker_t* Vm::cur_worker() {
  RootCtx* r = cur_root();
  return r ? r->worker : nullptr;
}

bool Vm::call(Fn f, std::initializer_list<uint64_t> args, uint64_t* ret) {
  bool ok = call_once(f, args, ret);
  // Taken before running: an action may call into this VM, which then runs its own.
  while (depth_ == 0 && !after_call_.empty()) {
    std::vector<std::function<void()>> todo;
    todo.swap(after_call_);
    for (auto& fn : todo) fn();
  }
  return ok;
}

bool Vm::call_once(Fn f, std::initializer_list<uint64_t> args, uint64_t* ret) {
  if (ret) *ret = 0;
  if (!has_[f] || failed) return !failed;
  wasm_functype_t* ty = wasmtime_func_type(cx, &fns_[f]);
  const wasm_valtype_vec_t* params = wasm_functype_params(ty);
  const wasm_valtype_vec_t* results = wasm_functype_results(ty);
  wasmtime_val_t in[8];
  size_t n = params->size < 8 ? params->size : 8;
  auto it = args.begin();
  for (size_t i = 0; i < n; ++i) {
    uint64_t v = it != args.end() ? *it++ : 0;
    if (wasm_valtype_kind(params->data[i]) == WASM_I64) {
      in[i].kind = WASMTIME_I64;
      in[i].of.i64 = int64_t(v);
    } else {
      in[i].kind = WASMTIME_I32;
      in[i].of.i32 = int32_t(uint32_t(v));
    }
  }
  size_t nres = results->size < 2 ? results->size : 2;
  wasm_functype_delete(ty);
  wasmtime_val_t out[2];
  if (depth_ == 0)
    wasmtime_context_set_epoch_deadline(cx, group->cfg.callback_deadline_ms / kTickMs + 2);
  ++depth_;
  wasm_trap_t* trap = nullptr;
  wasmtime_error_t* e = wasmtime_func_call(cx, &fns_[f], in, n, out, nres, &trap);
  --depth_;
  if (e) {
    fail(std::string(kFnNames[f]) + ": " + error_text(e));
    return false;
  }
  if (trap) {
    wasmtime_trap_code_t code;
    bool deadline = wasmtime_trap_code(trap, &code) && code == WASMTIME_TRAP_CODE_INTERRUPT;
    std::string why = std::string(kFnNames[f]) +
                      (deadline ? " ran past its deadline of " +
                                      std::to_string(group->cfg.callback_deadline_ms) + " ms"
                                : " trapped: " + trap_text(trap));
    wasm_trap_delete(trap);
    if (!failed) fail(why, deadline);
    return false;
  }
  if (failed) return false;
  if (ret && nres)
    *ret = out[0].kind == WASMTIME_I64 ? uint64_t(out[0].of.i64) : uint32_t(out[0].of.i32);
  return true;
}

void Vm::write_output(int fd, std::string_view bytes) {
  // WASI stdout and stderr are line-buffered into log lines: runtimes write a line in pieces
  // (Go's panic output comes a few bytes per write).
  std::string& buf = output_[fd == 1 ? 0 : 1];
  buf.append(bytes);
  size_t nl;
  while ((nl = buf.find('\n')) != std::string::npos) {
    if (nl) log(fd == 1 ? SY_LOG_INFO : SY_LOG_ERROR, std::string_view(buf).substr(0, nl));
    buf.erase(0, nl + 1);
  }
  if (buf.size() > 4096) flush_output();
}

void Vm::flush_output() {
  for (int i = 0; i < 2; ++i) {
    if (!output_[i].empty()) log(i == 0 ? SY_LOG_INFO : SY_LOG_ERROR, output_[i]);
    output_[i].clear();
  }
}

void Vm::fail(const std::string& why, bool deadline) {
  if (failed) return;
  failed = true;
  flush_output();
  fail_reason = why;
  // Counted for the plugin whose callback failed; the VM fails for every plugin sharing it.
  Plugin* p = cur_plugin();
  if (p) p->count(deadline ? p->m_deadline : p->m_traps);
  log(SY_LOG_ERROR,
      "VM failed: " + why +
          (p ? std::string(" (failure_policy ") + failure_policy_name(p->cfg.failure_policy) + ")"
             : std::string()));
}

void Vm::log(sy_log_level_t level, std::string_view msg) {
  Plugin* p = cur_plugin();
  std::string line = p ? p->log_prefix() : group->log_prefix();
  line += msg;
  g_host->log(group->mod->self, level, str(line));
}

uint8_t* Vm::mem(uint64_t ptr, uint64_t len) {
  if (!has_memory) return nullptr;
  size_t size = wasmtime_memory_data_size(cx, &memory);
  if (ptr > size || len > size - ptr) return nullptr;
  return wasmtime_memory_data(cx, &memory) + ptr;
}

bool Vm::read(uint64_t ptr, uint64_t len, std::string_view* out) {
  uint8_t* p = mem(ptr, len);
  if (!p && len) return false;
  *out = std::string_view(reinterpret_cast<const char*>(p), p ? len : 0);
  return true;
}

bool Vm::write_u32(uint64_t ptr, uint32_t v) {
  uint8_t* p = mem(ptr, 4);
  if (!p) return false;
  memcpy(p, &v, 4);  // wasm is little-endian, as is every host this builds on
  return true;
}

bool Vm::write_u64(uint64_t ptr, uint64_t v) {
  uint8_t* p = mem(ptr, 8);
  if (!p) return false;
  memcpy(p, &v, 8);
  return true;
}

bool Vm::give(std::string_view data, uint64_t ptr_out, uint64_t size_out) {
  if (!mem(ptr_out, 4) || !mem(size_out, 4)) return false;
  // Nothing to copy: no allocation (Go's allocator panics on a zero-size request).
  if (data.empty()) return write_u32(ptr_out, 0) && write_u32(size_out, 0);
  uint64_t addr = 0;
  if (!call(has_[kOnMemoryAllocate] ? kOnMemoryAllocate : kMalloc, {data.size()}, &addr))
    return false;
  if (addr == 0 && !data.empty()) return false;
  uint8_t* p = mem(addr, data.size());
  if (!p && !data.empty()) return false;
  if (!data.empty()) memcpy(p, data.data(), data.size());
  return write_u32(ptr_out, uint32_t(addr)) && write_u32(size_out, uint32_t(data.size()));
}

StreamCtx* Vm::effective_stream() {
  auto it = ctxs.find(effective);
  return it == ctxs.end() ? nullptr : it->second;
}

namespace {
struct TickArg {
  std::weak_ptr<Vm> vm;
  uint32_t root;
};
}  // namespace

void Vm::arm_tick(RootCtx* r) {
  if (r->tick_timer) {
    g_host->timer_cancel(r->tick_timer);
    r->tick_timer = nullptr;
  }
  if (r->tick_ms == 0 || failed || !r->worker) return;
  auto* arg = new TickArg{weak_from_this(), r->id};
  r->tick_timer = g_host->worker_timer_drop(
      r->worker, r->tick_ms,
      [](sy_worker_t*, void* a) {
        std::unique_ptr<TickArg> t(static_cast<TickArg*>(a));
        auto vm = t->vm.lock();
        if (!vm) return;
        RootCtx* r = vm->root(t->root);
        if (!r) return;
        r->tick_timer = nullptr;
        vm->effective = r->id;
        vm->call(kOnTick, {r->id});
        // The root may have been dropped during the call (it stays in the list).
        vm->arm_tick(r);
      },
      [](void* a) { delete static_cast<TickArg*>(a); }, arg);
}

}  // namespace sywasm
