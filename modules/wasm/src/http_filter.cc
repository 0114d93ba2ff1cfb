// The HTTP filter `wasm`: one Proxy-Wasm stream context per stream, on the worker's VM.
#include "hostcall.h"

namespace sywasm {
namespace {

struct HttpStream {
  Plugin* plugin = nullptr;
  std::shared_ptr<Vm> vm;  // the VM the stream started on, even if FAIL_RELOAD replaces it
  StreamCtx ctx;
  bool bypass = false;  // the plugin is out of this stream (after a failure)
  bool created = false;
};

// The failure policy, for a stream whose VM has failed. The stream whose callback failed
// (FAILED_HERE) fails closed whatever the policy, as in Envoy; FAIL_OPEN lets later streams
// pass without the plugin.
sy_filter_status_t fail_stream(HttpStream* f, sy_stream_t* s, bool failed_here = false) {
  f->bypass = true;
  f->plugin->count(f->plugin->m_failed);
  if (!failed_here && f->plugin->cfg.failure_policy == FailurePolicy::kFailOpen) return SY_CONTINUE;
  if (g_host->send_local_reply(s, 503, nullptr, 0, str("wasm plugin failed\n"),
                               str("wasm_fail_closed")) != SY_OK)
    g_host->stream_reset(s, str("wasm_fail_closed"));
  return SY_STOP;
}

// Calls FN for the stream with the context made effective; maps the plugin's action.
sy_filter_status_t phase(HttpStream* f, sy_stream_t* s, Fn fn, std::initializer_list<uint64_t> args,
                         bool body) {
  if (f->bypass) return SY_CONTINUE;
  Vm& vm = *f->vm;
  if (vm.failed || !f->created) return fail_stream(f, s);
  if (!vm.has(fn)) return SY_CONTINUE;
  f->ctx.s = s;
  f->ctx.filter_index = g_host->filter_index(s);
  f->ctx.local_reply_sent = false;
  vm.effective = f->ctx.id;
  uint64_t action = 0;
  bool ok = vm.call(fn, args, &action);
  f->ctx.s = nullptr;
  if (!ok) return fail_stream(f, s, true);
  if (f->ctx.local_reply_sent) return SY_STOP;
  // Pause in a body callback asks the host to buffer (Envoy's StopIterationAndBuffer).
  if (action == 0) return SY_CONTINUE;
  return body ? SY_STOP_AND_BUFFER : SY_STOP;
}

size_t count(sy_stream_t* s, sy_header_kind_t k) {
  return g_host->header_count(s, k, {nullptr, 0});
}

size_t body_size(sy_stream_t* s, sy_direction_t dir) {
  sy_str_t b{nullptr, 0};
  g_host->body_get(s, dir, SY_BODY_BUFFERED, &b);
  return b.len;
}

void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  return plugin_create(module_data, json, err, false);
}

void* on_stream_create(void* config, sy_stream_t* s) {
  auto* p = static_cast<Plugin*>(config);
  auto* f = new HttpStream();
  f->plugin = p;
  f->vm = p->vm_for(g_host->stream_worker(s));
  if (!f->vm) {
    // No VM on this worker (it failed to start): the failure policy decides at the first phase.
    f->vm = std::make_shared<Vm>(p->group, -1);
    f->vm->failed = true;
    return f;
  }
  Vm& vm = *f->vm;
  RootCtx* root = vm.root_for(p);
  f->ctx.id = vm.next_id++;
  f->ctx.root = root ? root->id : 0;
  f->ctx.plugin = p;
  f->ctx.sid = g_host->stream_id(s);
  vm.ctxs[f->ctx.id] = &f->ctx;
  if (vm.failed || !root) return f;
  f->ctx.s = s;
  vm.effective = f->ctx.id;
  f->created = vm.call(kOnContextCreate, {f->ctx.id, root->id});
  f->ctx.s = nullptr;
  return f;
}

sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool eos) {
  auto* f = static_cast<HttpStream*>(filter);
  return phase(f, s, kOnRequestHeaders, {f->ctx.id, count(s, SY_REQUEST_HEADERS), eos}, false);
}
sy_filter_status_t on_request_body(void* filter, sy_stream_t* s, bool eos) {
  auto* f = static_cast<HttpStream*>(filter);
  return phase(f, s, kOnRequestBody, {f->ctx.id, body_size(s, SY_REQUEST), eos}, true);
}
sy_filter_status_t on_request_trailers(void* filter, sy_stream_t* s) {
  auto* f = static_cast<HttpStream*>(filter);
  return phase(f, s, kOnRequestTrailers, {f->ctx.id, count(s, SY_REQUEST_TRAILERS)}, false);
}
sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool eos) {
  auto* f = static_cast<HttpStream*>(filter);
  return phase(f, s, kOnResponseHeaders, {f->ctx.id, count(s, SY_RESPONSE_HEADERS), eos}, false);
}
sy_filter_status_t on_response_body(void* filter, sy_stream_t* s, bool eos) {
  auto* f = static_cast<HttpStream*>(filter);
  return phase(f, s, kOnResponseBody, {f->ctx.id, body_size(s, SY_RESPONSE), eos}, true);
}
sy_filter_status_t on_response_trailers(void* filter, sy_stream_t* s) {
  auto* f = static_cast<HttpStream*>(filter);
  return phase(f, s, kOnResponseTrailers, {f->ctx.id, count(s, SY_RESPONSE_TRAILERS)}, false);
}

void on_stream_complete(void* filter, sy_stream_t* s) {
  auto* f = static_cast<HttpStream*>(filter);
  Vm& vm = *f->vm;
  if (!f->created || vm.failed) return;
  f->ctx.s = s;
  vm.effective = f->ctx.id;
  vm.call(kOnDone, {f->ctx.id});
  vm.call(kOnLog, {f->ctx.id});
  f->ctx.s = nullptr;
}

void on_stream_destroy(void* filter) {
  auto* f = static_cast<HttpStream*>(filter);
  Vm& vm = *f->vm;
  if (f->created && !vm.failed) {
    vm.effective = f->ctx.id;
    vm.call(kOnDelete, {f->ctx.id});
  }
  grpc_stream_gone(vm, f->ctx.id);
  vm.ctxs.erase(f->ctx.id);
  if (vm.effective == f->ctx.id) vm.effective = f->ctx.root;
  delete f;
}

}  // namespace

const sy_http_filter_t kHttpFilter = {
    sizeof(sy_http_filter_t),
    "wasm",
    on_config_create,
    plugin_destroy,
    nullptr,
    nullptr,
    plugin_worker_start,
    plugin_worker_stop,
    on_stream_create,
    on_request_headers,
    on_request_body,
    on_request_trailers,
    on_response_headers,
    on_response_body,
    on_response_trailers,
    on_stream_complete,
    on_stream_destroy,
    plugin_queue_ready,
    nullptr,  // on_watermark: Proxy-Wasm has no watermark callback
};

}  // namespace sywasm
