// proxy_http_call on the ABI's cancellable unary callouts; the reply is delivered to the root
// context (proxy_on_http_call_response), as Envoy does.
#include <cstring>

#include "hostcall.h"

namespace sywasm {
namespace {

struct CallArg {
  std::weak_ptr<Vm> vm;
  uint32_t token;
  uint32_t root;  // the root context the reply goes to
  // The stream context that made the call, if any: the reply is delivered inside a task of
  // that stream, so the plugin may edit its headers and resume it from the callback.
  uint32_t ctx_id = 0;
  sy_stream_id_t sid = 0;
  uint32_t filter_index = SY_NO_FILTER;
};

// A reply kept past its callback (the views the host gave are valid during it only).
struct OwnedReply {
  std::unique_ptr<CallArg> call;
  uint32_t status = 0;
  std::vector<std::pair<std::string, std::string>> headers, trailers;
  std::string body, failure;
  std::vector<sy_header_t> h, t;
  sy_callout_response_t view{};

  void copy(const sy_callout_response_t* r) {
    status = r->status;
    for (size_t i = 0; i < r->header_count; ++i)
      headers.emplace_back(std::string(sywasm::view(r->headers[i].name)),
                           std::string(sywasm::view(r->headers[i].value)));
    for (size_t i = 0; i < r->trailer_count; ++i)
      trailers.emplace_back(std::string(sywasm::view(r->trailers[i].name)),
                            std::string(sywasm::view(r->trailers[i].value)));
    body.assign(r->body.ptr, r->body.len);
    failure.assign(r->failure.ptr, r->failure.len);
  }
  const sy_callout_response_t* response() {
    h.clear();
    t.clear();
    for (const auto& [k, v] : headers) h.push_back({str(k), str(v)});
    for (const auto& [k, v] : trailers) t.push_back({str(k), str(v)});
    view = {sizeof view, status, h.data(), h.size(), str(body), t.data(), t.size(), str(failure)};
    return &view;
  }
};

// Calls proxy_on_http_call_response with R; STREAM is the calling stream when delivered in its
// task (else null).
void deliver(Vm& vm, const CallArg& c, const sy_callout_response_t* r, sy_stream_t* stream) {
  if (vm.failed) return;
  StreamCtx* ctx = nullptr;
  if (stream) {
    auto it = vm.ctxs.find(c.ctx_id);
    if (it == vm.ctxs.end()) return;  // the stream's context is gone: Envoy cancels the call
    ctx = it->second;
    ctx->s = stream;
  }
  vm.call_response = r;
  vm.call_status = std::to_string(r->status);
  // A failed call is reported with no headers, as Envoy does.
  size_t headers = r->status ? response_header_count(vm) : 0;
  vm.effective = c.root;
  vm.call(kOnHttpCallResponse, {c.root, c.token, headers, r->status ? r->body.len : 0,
                                r->status ? r->trailer_count : 0});
  vm.call_response = nullptr;
  if (ctx) ctx->s = nullptr;
}

void on_reply(void* arg, const sy_callout_response_t* r) {
  std::unique_ptr<CallArg> c(static_cast<CallArg*>(arg));
  std::shared_ptr<Vm> vm = c->vm.lock();
  if (!vm) return;
  if (!c->sid) {
    deliver(*vm, *c, r, nullptr);
    return;
  }
  auto* owned = new OwnedReply();
  owned->copy(r);
  sy_stream_id_t sid = c->sid;
  uint32_t index = c->filter_index;
  owned->call = std::move(c);
  g_host->post_to_filter(
      sid, index,
      [](sy_stream_t* s, void* a) {
        std::unique_ptr<OwnedReply> o(static_cast<OwnedReply*>(a));
        if (std::shared_ptr<Vm> vm = o->call->vm.lock()) deliver(*vm, *o->call, o->response(), s);
      },
      [](void* a) { delete static_cast<OwnedReply*>(a); }, owned);
}

uint32_t g_next_token = 1;  // per process; tokens only need to be unique within a VM

int64_t h_http_call(Vm& vm, const wasmtime_val_t* a) {
  std::string_view upstream, hdrs, body, trailers;
  if (!vm.read(u32(a, 0), u32(a, 1), &upstream) || !vm.read(u32(a, 2), u32(a, 3), &hdrs) ||
      !vm.read(u32(a, 4), u32(a, 5), &body) || !vm.read(u32(a, 6), u32(a, 7), &trailers))
    return kInvalidMemoryAccess;
  std::vector<std::pair<std::string, std::string>> kv;
  if (!parse_pairs(hdrs, &kv)) return kBadArgument;
  bool method = false, path = false, authority = false;
  std::vector<sy_header_t> h;
  for (const auto& [k, v] : kv) {
    method = method || k == ":method";
    path = path || k == ":path";
    authority = authority || k == ":authority";
    h.push_back({str(k), str(v)});
  }
  if (!method || !path || !authority) return kBadArgument;
  // None on the config-time probe VM, or once the plugin left the worker.
  sy_worker_t* w = vm.cur_worker();
  RootCtx* root = vm.cur_root();
  if (!w || !root) return kInternalFailure;
  uint32_t token = g_next_token++;
  auto* arg = new CallArg{vm.weak_from_this(), token, root->id};
  if (StreamCtx* ctx = vm.effective_stream(); ctx && !ctx->conn) {
    arg->ctx_id = ctx->id;
    arg->sid = ctx->sid;
    arg->filter_index = ctx->filter_index;
  }
  std::string cluster(upstream), b(body);
  sy_status_t st = g_host->http_callout_start(nullptr, w, str(cluster), h.data(), h.size(), str(b),
                                              u32(a, 8), on_reply, arg, nullptr);
  if (st != SY_OK) {
    delete arg;
    return st == SY_ERR_NOT_FOUND || st == SY_ERR_INVALID ? kBadArgument : kInternalFailure;
  }
  return vm.write_u32(u32(a, 9), token) ? kOk : kInvalidMemoryAccess;
}

}  // namespace

void add_callout_defs(std::vector<HostDef>* out) {
  const HostDef defs[] = {
      {"env", "proxy_http_call", "iiiiiiiiii", "i", h_http_call},
  };
  out->insert(out->end(), std::begin(defs), std::end(defs));
}

}  // namespace sywasm
