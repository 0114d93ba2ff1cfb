// proxy_grpc_call / _stream / _send / _cancel / _close on the ABI's streaming callouts: the
// module frames gRPC messages itself, and the replies come to proxy_on_grpc_* on the root
// context, as in Envoy.
#include <cstring>

#include "hostcall.h"

namespace sywasm {
namespace {

struct GrpcCall {
  std::weak_ptr<Vm> vm;
  uint32_t token = 0;
  uint32_t root = 0;         // the root context its replies go to
  uint32_t ctx_id = 0;       // the stream context that started it (0: none)
  sy_stream_t* s = nullptr;  // that stream, valid inside the callout's callbacks
  sy_callout_stream_t* cs = nullptr;
  std::string pending;  // response bytes not yet a whole message
  std::vector<std::pair<std::string, std::string>> initial, trailing;
  uint32_t status = 0;
  std::string message;
  bool closed = false;
};

uint32_t g_next_grpc_token = 1u << 30;  // apart from proxy_http_call's tokens

// Calls FN of the VM with the call's stream context in place (if any).
template <typename F>
void with_vm(GrpcCall* g, F fn) {
  std::shared_ptr<Vm> vm = g->vm.lock();
  if (!vm || vm->failed) return;
  StreamCtx* ctx = nullptr;
  if (g->ctx_id) {
    auto it = vm->ctxs.find(g->ctx_id);
    if (it != vm->ctxs.end()) {
      ctx = it->second;
      ctx->s = g->s;
    }
  }
  vm->grpc = g;
  vm->effective = g->root;
  fn(*vm);
  vm->grpc = nullptr;
  if (ctx) ctx->s = nullptr;
}

void finish(GrpcCall* g) {
  if (!g->closed) {
    g->closed = true;
    with_vm(g, [&](Vm& vm) { vm.call(kOnGrpcClose, {g->root, g->token, g->status}); });
  }
  if (std::shared_ptr<Vm> vm = g->vm.lock()) vm->grpc_calls.erase(g->token);
  delete g;
}

void take_status(GrpcCall* g, const std::vector<std::pair<std::string, std::string>>& hs) {
  for (const auto& [k, v] : hs) {
    if (k == "grpc-status") g->status = uint32_t(strtoul(v.c_str(), nullptr, 10));
    if (k == "grpc-message") g->message = v;
  }
}

void on_headers(void* arg, sy_callout_stream_t*, const sy_header_t* h, size_t n, bool eos) {
  auto* g = static_cast<GrpcCall*>(arg);
  for (size_t i = 0; i < n; ++i) g->initial.emplace_back(view(h[i].name), view(h[i].value));
  if (eos) {  // a trailers-only response: the status is in the head
    g->trailing = g->initial;
    take_status(g, g->trailing);
    return;
  }
  with_vm(g, [&](Vm& vm) {
    vm.call(kOnGrpcReceiveInitialMetadata, {g->root, g->token, g->initial.size()});
  });
}

void on_data(void* arg, sy_callout_stream_t*, sy_str_t data, bool) {
  auto* g = static_cast<GrpcCall*>(arg);
  g->pending.append(data.ptr, data.len);
  // Whole messages: a 1-byte flag, a 4-byte big-endian length, then the message.
  while (g->pending.size() >= 5) {
    const auto* p = reinterpret_cast<const unsigned char*>(g->pending.data());
    uint32_t len = uint32_t(p[1]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 8 | p[4];
    if (g->pending.size() < 5 + size_t(len)) break;
    std::string msg = g->pending.substr(5, len);
    g->pending.erase(0, 5 + size_t(len));
    with_vm(g, [&](Vm& vm) {
      vm.grpc_message = msg;
      vm.call(kOnGrpcReceive, {g->root, g->token, msg.size()});
      vm.grpc_message.clear();
    });
  }
}

void on_trailers(void* arg, sy_callout_stream_t*, const sy_header_t* t, size_t n) {
  auto* g = static_cast<GrpcCall*>(arg);
  for (size_t i = 0; i < n; ++i) g->trailing.emplace_back(view(t[i].name), view(t[i].value));
  take_status(g, g->trailing);
  with_vm(g, [&](Vm& vm) {
    vm.call(kOnGrpcReceiveTrailingMetadata, {g->root, g->token, g->trailing.size()});
  });
}

void on_complete(void* arg, sy_callout_stream_t*) { finish(static_cast<GrpcCall*>(arg)); }

void on_failure(void* arg, sy_callout_stream_t*, sy_callout_failure_t reason, sy_str_t details) {
  auto* g = static_cast<GrpcCall*>(arg);
  g->status = reason == SY_CALLOUT_TIMEOUT ? 4 : 14;  // DEADLINE_EXCEEDED, UNAVAILABLE
  g->message.assign(details.ptr, details.len);
  finish(g);
}

const sy_stream_callout_callbacks_t kCallbacks = {sizeof(sy_stream_callout_callbacks_t),
                                                  on_headers,
                                                  on_data,
                                                  on_trailers,
                                                  on_complete,
                                                  on_failure,
                                                  nullptr};

// Envoy's `service` is a serialized GrpcService ({envoy_grpc: {cluster_name}}) or, from the
// SDKs that pass a name, the cluster name itself.
std::string cluster_of(std::string_view service) {
  auto field = [](std::string_view in, std::string_view* out) {
    if (in.size() < 2 || in[0] != 0x0a || size_t((unsigned char)in[1]) + 2 > in.size() ||
        (unsigned char)in[1] >= 0x80)
      return false;
    *out = in.substr(2, (unsigned char)in[1]);
    return true;
  };
  std::string_view envoy_grpc, name;
  if (field(service, &envoy_grpc) && field(envoy_grpc, &name)) return std::string(name);
  return std::string(service);
}

std::string frame(std::string_view msg) {
  std::string out(5, '\0');
  uint32_t n = uint32_t(msg.size());
  out[1] = char(n >> 24);
  out[2] = char(n >> 16);
  out[3] = char(n >> 8);
  out[4] = char(n);
  out.append(msg);
  return out;
}

// Starts a call; SEND (may be null) is the unary request, sent with the end of the stream.
int64_t start(Vm& vm, const wasmtime_val_t* a, const std::string_view* send, uint64_t timeout_ms,
              uint64_t token_out) {
  std::string_view service, svc_name, method, md;
  if (!vm.read(u32(a, 0), u32(a, 1), &service) || !vm.read(u32(a, 2), u32(a, 3), &svc_name) ||
      !vm.read(u32(a, 4), u32(a, 5), &method) || !vm.read(u32(a, 6), u32(a, 7), &md))
    return kInvalidMemoryAccess;
  std::vector<std::pair<std::string, std::string>> kv;
  if (!parse_pairs(md, &kv)) return kBadArgument;
  if (vm.worker_index < 0) return kInternalFailure;  // the config-time probe calls nothing
  // Built by appending: GCC 12 warns falsely (-Wrestrict) on "/" + std::string(...).
  std::string path = "/";
  path.append(svc_name).append("/").append(method);
  std::vector<sy_header_t> h = {{str(":method"), str("POST")},
                                {str(":path"), str(path)},
                                {str("content-type"), str("application/grpc")},
                                {str("te"), str("trailers")}};
  for (const auto& [k, v] : kv) h.push_back({str(k), str(v)});
  auto* g = new GrpcCall();
  g->vm = vm.weak_from_this();
  g->token = g_next_grpc_token++;
  RootCtx* root = vm.cur_root();
  g->root = root ? root->id : 0;
  StreamCtx* ctx = vm.effective_stream();
  if (ctx && ctx->s) {
    g->ctx_id = ctx->id;
    g->s = ctx->s;
  }
  std::string cluster = cluster_of(service);
  // A call of a stream lives with the stream; one of the root context with the plugin's
  // handle on the worker (none once the plugin left the worker).
  sy_worker_t* w = g->s ? nullptr : vm.cur_worker();
  sy_status_t st = g->s || w
                       ? g_host->stream_callout_start(g->s, w, str(cluster), h.data(), h.size(),
                                                      timeout_ms, &kCallbacks, g, &g->cs)
                       : SY_ERR_STALE;
  if (st != SY_OK) {
    delete g;
    return st == SY_ERR_NOT_FOUND || st == SY_ERR_INVALID ? kBadArgument : kInternalFailure;
  }
  vm.grpc_calls[g->token] = g;
  if (send) g_host->stream_callout_send_data(g->cs, str(frame(*send)), true);
  return vm.write_u32(token_out, g->token) ? kOk : kInvalidMemoryAccess;
}

int64_t h_grpc_call(Vm& vm, const wasmtime_val_t* a) {
  std::string_view req;
  if (!vm.read(u32(a, 8), u32(a, 9), &req)) return kInvalidMemoryAccess;
  std::string copy(req);
  std::string_view send(copy);
  return start(vm, a, &send, u32(a, 10), u32(a, 11));
}

int64_t h_grpc_stream(Vm& vm, const wasmtime_val_t* a) {
  return start(vm, a, nullptr, 0, u32(a, 8));
}

GrpcCall* find(Vm& vm, uint32_t token) {
  auto it = vm.grpc_calls.find(token);
  return it == vm.grpc_calls.end() ? nullptr : static_cast<GrpcCall*>(it->second);
}

int64_t h_grpc_send(Vm& vm, const wasmtime_val_t* a) {
  GrpcCall* g = find(vm, u32(a, 0));
  if (!g) return kNotFound;
  std::string_view msg;
  if (!vm.read(u32(a, 1), u32(a, 2), &msg)) return kInvalidMemoryAccess;
  sy_status_t st = g_host->stream_callout_send_data(g->cs, str(frame(msg)), u32(a, 3) != 0);
  return st == SY_OK || st == SY_ABOVE_HIGH_WATERMARK ? kOk : kBadArgument;
}

int64_t h_grpc_cancel(Vm& vm, const wasmtime_val_t* a) {
  GrpcCall* g = find(vm, u32(a, 0));
  if (!g) return kNotFound;
  // Cancelled calls report nothing more, as in Envoy.
  vm.grpc_calls.erase(g->token);
  g_host->stream_callout_reset(g->cs);
  delete g;
  return kOk;
}

int64_t h_grpc_close(Vm& vm, const wasmtime_val_t* a) {
  GrpcCall* g = find(vm, u32(a, 0));
  if (!g) return kNotFound;
  // Closes our side of the stream; the server's reply still arrives.
  g_host->stream_callout_send_data(g->cs, sy_str_t{nullptr, 0}, true);
  return kOk;
}

}  // namespace

void grpc_stream_gone(Vm& vm, uint32_t ctx_id) {
  for (auto it = vm.grpc_calls.begin(); it != vm.grpc_calls.end();) {
    auto* g = static_cast<GrpcCall*>(it->second);
    if (g->ctx_id == ctx_id) {
      // The host has reset the stream's callouts already; the handle is valid until the
      // stream's on_stream_destroy returns, so this reset does nothing and is safe.
      g_host->stream_callout_reset(g->cs);
      delete g;
      it = vm.grpc_calls.erase(it);
    } else {
      ++it;
    }
  }
}

bool grpc_buffer(Vm& vm, uint32_t type, sy_str_t* out) {
  if (type != 5 || !vm.grpc) return false;
  *out = str(vm.grpc_message);
  return true;
}

bool grpc_pairs(Vm& vm, uint32_t type,
                std::vector<std::pair<std::string_view, std::string_view>>* out) {
  auto* g = static_cast<GrpcCall*>(vm.grpc);
  if (!g || (type != 4 && type != 5)) return false;
  for (const auto& [k, v] : type == 4 ? g->initial : g->trailing) out->emplace_back(k, v);
  return true;
}

bool grpc_status(Vm& vm, uint32_t* code, std::string_view* message) {
  auto* g = static_cast<GrpcCall*>(vm.grpc);
  if (!g) return false;
  *code = g->status;
  *message = g->message;
  return true;
}

void add_grpc_defs(std::vector<HostDef>* out) {
  const HostDef defs[] = {
      {"env", "proxy_grpc_call", "iiiiiiiiiiii", "i", h_grpc_call},
      {"env", "proxy_grpc_stream", "iiiiiiiii", "i", h_grpc_stream},
      {"env", "proxy_grpc_send", "iiii", "i", h_grpc_send},
      {"env", "proxy_grpc_cancel", "i", "i", h_grpc_cancel},
      {"env", "proxy_grpc_close", "i", "i", h_grpc_close},
  };
  out->insert(out->end(), std::begin(defs), std::end(defs));
}

}  // namespace sywasm
