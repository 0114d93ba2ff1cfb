// Proxy-Wasm host functions on streams: logging, headers, bodies, stream control, properties,
// shared data, queues and metrics, mapped onto the Switchyard ABI.
#include <sys/time.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <functional>

#include "hostcall.h"

namespace sywasm {
namespace {

sy_log_level_t level_of(uint32_t l) {
  switch (l) {
    case 0:
      return SY_LOG_TRACE;
    case 1:
      return SY_LOG_DEBUG;
    case 2:
      return SY_LOG_INFO;
    case 3:
      return SY_LOG_WARN;
    default:
      return SY_LOG_ERROR;
  }
}

// The stream the effective context means, when inside one of its callbacks.
sy_stream_t* cur_stream(Vm& vm) {
  StreamCtx* c = vm.effective_stream();
  return c ? c->s : nullptr;
}

bool header_kind(uint32_t type, sy_header_kind_t* kind) {
  if (type > 3) return false;
  *kind = sy_header_kind_t(type);  // the first four map types match the ABI's kinds
  return true;
}

// Runs FN on the effective stream: now when inside its callback, else as a task of the filter
// (from a tick, a callout reply or another context made effective).
int64_t on_stream(Vm& vm, std::function<void(sy_stream_t*)> fn) {
  StreamCtx* c = vm.effective_stream();
  if (!c || c->conn) return kNotFound;
  if (c->s) {
    fn(c->s);
    return kOk;
  }
  auto* arg = new std::function<void(sy_stream_t*)>(std::move(fn));
  sy_status_t st = g_host->post_to_filter(
      c->sid, c->filter_index,
      [](sy_stream_t* s, void* a) {
        std::unique_ptr<std::function<void(sy_stream_t*)>> f(
            static_cast<std::function<void(sy_stream_t*)>*>(a));
        (*f)(s);
      },
      [](void* a) { delete static_cast<std::function<void(sy_stream_t*)>*>(a); }, arg);
  return st == SY_OK ? kOk : kNotFound;
}

}  // namespace

bool parse_pairs(std::string_view in, std::vector<std::pair<std::string, std::string>>* out) {
  if (in.size() < 4) return in.empty() || (in.size() == 1 && in[0] == 0);
  uint32_t n;
  memcpy(&n, in.data(), 4);
  if (uint64_t(n) * 8 + 4 > in.size()) return false;
  size_t pos = 4 + size_t(n) * 8;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t kl, vl;
    memcpy(&kl, in.data() + 4 + i * 8, 4);
    memcpy(&vl, in.data() + 8 + i * 8, 4);
    if (uint64_t(pos) + kl + 1 + vl + 1 > in.size()) return false;
    std::string k(in.substr(pos, kl));
    pos += kl + 1;
    std::string v(in.substr(pos, vl));
    pos += vl + 1;
    out->emplace_back(std::move(k), std::move(v));
  }
  return true;
}

namespace {

std::string serialize_pairs(const std::vector<std::pair<std::string_view, std::string_view>>& kv) {
  std::string out(4, '\0');
  uint32_t n = uint32_t(kv.size());
  memcpy(out.data(), &n, 4);
  for (const auto& [k, v] : kv) {
    uint32_t l[2] = {uint32_t(k.size()), uint32_t(v.size())};
    out.append(reinterpret_cast<const char*>(l), 8);
  }
  for (const auto& [k, v] : kv) {
    out.append(k);
    out.push_back('\0');
    out.append(v);
    out.push_back('\0');
  }
  return out;
}

// The pairs of map TYPE for the effective context.
bool collect_pairs(Vm& vm, uint32_t type,
                   std::vector<std::pair<std::string_view, std::string_view>>* out) {
  if (type == 6 || type == 7) {
    const sy_callout_response_t* r = vm.call_response;
    if (!r) return false;
    const sy_header_t* h = type == 6 ? r->headers : r->trailers;
    size_t n = type == 6 ? r->header_count : r->trailer_count;
    bool has_status = false;
    for (size_t i = 0; i < n; ++i) has_status = has_status || view(h[i].name) == ":status";
    // The SDKs read the reply's status from its :status header.
    if (type == 6 && !has_status) out->emplace_back(":status", vm.call_status);
    for (size_t i = 0; i < n; ++i) out->emplace_back(view(h[i].name), view(h[i].value));
    return true;
  }
  if (type == 4 || type == 5) return grpc_pairs(vm, type, out);
  sy_header_kind_t kind;
  sy_stream_t* s = cur_stream(vm);
  if (!s || !header_kind(type, &kind)) return false;
  size_t n = g_host->header_count(s, kind, sy_str_t{nullptr, 0});
  for (size_t i = 0; i < n; ++i) {
    sy_str_t name, value;
    if (g_host->header_at(s, kind, i, &name, &value) == SY_OK)
      out->emplace_back(view(name), view(value));
  }
  return true;
}

int64_t h_log(Vm& vm, const wasmtime_val_t* a) {
  std::string_view msg;
  if (!vm.read(u32(a, 1), u32(a, 2), &msg)) return kInvalidMemoryAccess;
  vm.log(level_of(u32(a, 0)), msg);
  return kOk;
}

int64_t h_get_log_level(Vm& vm, const wasmtime_val_t* a) {
  uint32_t level = 4;
  for (uint32_t l = 0; l < 4; ++l) {
    if (g_host->log_enabled(level_of(l))) {
      level = l;
      break;
    }
  }
  return vm.write_u32(u32(a, 0), level) ? kOk : kInvalidMemoryAccess;
}

int64_t h_set_tick(Vm& vm, const wasmtime_val_t* a) {
  // The period is the root context's (of the effective context), as in Envoy.
  RootCtx* r = vm.cur_root();
  if (!r) return kBadArgument;
  r->tick_ms = u32(a, 0);
  vm.arm_tick(r);  // only once the root has its worker handle; add_root arms it then
  return kOk;
}

int64_t h_time(Vm& vm, const wasmtime_val_t* a) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return vm.write_u64(u32(a, 0), uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec))
             ? kOk
             : kInvalidMemoryAccess;
}

int64_t h_set_effective_context(Vm& vm, const wasmtime_val_t* a) {
  uint32_t id = u32(a, 0);
  if (!vm.root(id) && !vm.ctxs.count(id)) return kBadArgument;
  vm.effective = id;
  return kOk;
}

int64_t h_done(Vm&, const wasmtime_val_t*) { return kOk; }

// ---- buffers ----

// The bytes of buffer TYPE: a view of the host's copy.
bool buffer_of(Vm& vm, uint32_t type, sy_str_t* out) {
  StreamCtx* c = vm.effective_stream();
  switch (type) {
    case 0:
    case 1:
      return c && c->s &&
             g_host->body_get(c->s, type == 0 ? SY_REQUEST : SY_RESPONSE, SY_BODY_BUFFERED, out) ==
                 SY_OK;
    case 2:
    case 3:
      return c && c->conn &&
             g_host->conn_data_get(c->conn, type == 2 ? SY_REQUEST : SY_RESPONSE, out) == SY_OK;
    case 4:
      if (!vm.call_response) return false;
      *out = vm.call_response->body;
      return true;
    case 5:
      return grpc_buffer(vm, type, out);
    case 6:
      *out = str(vm.group->cfg.vm_configuration);
      return true;
    case 7: {
      Plugin* p = vm.cur_plugin();
      if (p) *out = str(p->cfg.plugin_configuration);
      return p != nullptr;
    }
    default:
      return false;
  }
}

int64_t h_get_buffer_bytes(Vm& vm, const wasmtime_val_t* a) {
  sy_str_t b;
  if (!buffer_of(vm, u32(a, 0), &b)) return kNotFound;
  uint64_t start = u32(a, 1), max = u32(a, 2);
  if (start > b.len) return kBadArgument;
  uint64_t n = std::min<uint64_t>(max, b.len - start);
  std::string copy(b.ptr + start, n);  // the module's allocation may run host code
  return vm.give(copy, u32(a, 3), u32(a, 4)) ? kOk : kInvalidMemoryAccess;
}

int64_t h_get_buffer_status(Vm& vm, const wasmtime_val_t* a) {
  sy_str_t b;
  if (!buffer_of(vm, u32(a, 0), &b)) return kNotFound;
  return vm.write_u32(u32(a, 1), uint32_t(b.len)) && vm.write_u32(u32(a, 2), 0)
             ? kOk
             : kInvalidMemoryAccess;
}

int64_t h_set_buffer_bytes(Vm& vm, const wasmtime_val_t* a) {
  uint32_t type = u32(a, 0);
  std::string_view data;
  if (!vm.read(u32(a, 3), u32(a, 4), &data)) return kInvalidMemoryAccess;
  sy_str_t b;
  if (type > 3 || !buffer_of(vm, type, &b)) return kNotFound;
  // Replace [start, start+size) of the buffer: (0, 0) prepends, start past the end appends,
  // (0, >= length) replaces it all.
  uint64_t start = std::min<uint64_t>(u32(a, 1), b.len);
  uint64_t end = std::min<uint64_t>(start + u32(a, 2), b.len);
  std::string next(b.ptr, start);
  next.append(data);
  next.append(b.ptr + end, b.len - end);
  StreamCtx* c = vm.effective_stream();
  sy_status_t st = type < 2 ? g_host->body_replace(c->s, type == 0 ? SY_REQUEST : SY_RESPONSE,
                                                   SY_BODY_BUFFERED, str(next))
                            : g_host->conn_data_replace(
                                  c->conn, type == 2 ? SY_REQUEST : SY_RESPONSE, str(next));
  return st == SY_OK ? kOk : kBadArgument;
}

// ---- header maps ----

int64_t h_get_header_map_pairs(Vm& vm, const wasmtime_val_t* a) {
  std::vector<std::pair<std::string_view, std::string_view>> kv;
  if (!collect_pairs(vm, u32(a, 0), &kv)) return kNotFound;
  std::string out = serialize_pairs(kv);
  return vm.give(out, u32(a, 1), u32(a, 2)) ? kOk : kInvalidMemoryAccess;
}

int64_t h_get_header_map_size(Vm& vm, const wasmtime_val_t* a) {
  std::vector<std::pair<std::string_view, std::string_view>> kv;
  if (!collect_pairs(vm, u32(a, 0), &kv)) return kNotFound;
  return vm.write_u32(u32(a, 1), uint32_t(serialize_pairs(kv).size())) ? kOk : kInvalidMemoryAccess;
}

int64_t h_set_header_map_pairs(Vm& vm, const wasmtime_val_t* a) {
  std::string_view in;
  if (!vm.read(u32(a, 1), u32(a, 2), &in)) return kInvalidMemoryAccess;
  std::vector<std::pair<std::string, std::string>> kv;
  if (!parse_pairs(in, &kv)) return kBadArgument;
  sy_header_kind_t kind;
  sy_stream_t* s = cur_stream(vm);
  if (!header_kind(u32(a, 0), &kind)) return kBadArgument;
  if (!s) return kNotFound;
  std::vector<std::string> names;
  std::vector<std::pair<std::string_view, std::string_view>> old;
  collect_pairs(vm, u32(a, 0), &old);
  for (const auto& [k, v] : old) names.emplace_back(k);
  for (const auto& n : names) g_host->header_remove(s, kind, str(n));
  for (const auto& [k, v] : kv) g_host->header_add(s, kind, str(k), str(v));
  return kOk;
}

int64_t h_get_header_map_value(Vm& vm, const wasmtime_val_t* a) {
  std::string_view key;
  if (!vm.read(u32(a, 1), u32(a, 2), &key)) return kInvalidMemoryAccess;
  std::string k(key);
  uint32_t type = u32(a, 0);
  std::string value;
  bool found = false;
  if (type <= 7) {
    std::vector<std::pair<std::string_view, std::string_view>> kv;
    if (!collect_pairs(vm, type, &kv)) return kNotFound;
    for (const auto& [n, v] : kv) {
      if (n.size() == k.size() && strncasecmp(n.data(), k.data(), k.size()) == 0) {
        value = v;
        found = true;
        break;
      }
    }
  } else {
    return kBadArgument;
  }
  // ABI 0.1.0 answered a missing header with OK and an empty value; 0.2.0 made it NOT_FOUND.
  if (!found && vm.code->abi != AbiVersion::k0_1_0) return kNotFound;
  return vm.give(value, u32(a, 3), u32(a, 4)) ? kOk : kInvalidMemoryAccess;
}

int64_t header_edit(Vm& vm, const wasmtime_val_t* a, int op) {
  std::string_view key, value;
  if (!vm.read(u32(a, 1), u32(a, 2), &key)) return kInvalidMemoryAccess;
  if (op != 2 && !vm.read(u32(a, 3), u32(a, 4), &value)) return kInvalidMemoryAccess;
  sy_header_kind_t kind;
  if (!header_kind(u32(a, 0), &kind)) return kBadArgument;
  std::string k(key), v(value);
  auto edit = [kind, k, v, op](sy_stream_t* s) {
    return op == 0   ? g_host->header_set(s, kind, str(k), str(v))
           : op == 1 ? g_host->header_add(s, kind, str(k), str(v))
                     : g_host->header_remove(s, kind, str(k));
  };
  sy_stream_t* s = cur_stream(vm);
  if (!s) {
    // A paused stream's headers edited from another context (a tick, a queue) after
    // proxy_set_effective_context: done in a task of the stream, before any resume the plugin
    // asks for next (tasks run in order).
    return on_stream(vm, [edit](sy_stream_t* st) { edit(st); });
  }
  sy_status_t st = edit(s);
  if (st == SY_ERR_NOT_FOUND && op == 2) return kOk;
  return st == SY_OK ? kOk : kBadArgument;
}
int64_t h_replace_header(Vm& vm, const wasmtime_val_t* a) { return header_edit(vm, a, 0); }
int64_t h_add_header(Vm& vm, const wasmtime_val_t* a) { return header_edit(vm, a, 1); }
int64_t h_remove_header(Vm& vm, const wasmtime_val_t* a) { return header_edit(vm, a, 2); }

// ---- stream control ----

// Runs FN on the effective context's connection after the current call into the module, if
// the connection is still there then.
int64_t on_conn(Vm& vm, StreamCtx* c, std::function<void(sy_conn_t*, void*)> fn) {
  vm.after_call([w = vm.weak_from_this(), id = c->id, fn = std::move(fn)] {
    auto v = w.lock();
    if (!v) return;
    auto it = v->ctxs.find(id);
    if (it != v->ctxs.end() && it->second->conn) fn(it->second->conn, it->second->net_filter);
  });
  return kOk;
}

int64_t continue_dir(Vm& vm, uint32_t type) {
  StreamCtx* c = vm.effective_stream();
  if (c && c->conn) {
    // A connection: DOWNSTREAM or UPSTREAM passes on what the plugin paused in that direction
    // (Envoy continues only DOWNSTREAM and answers UNIMPLEMENTED for UPSTREAM, whose paused
    // bytes it re-delivers with the next ones; here both are held, so both can go on). The
    // HTTP types mean nothing on a connection, which Envoy answers with OK.
    if (type > 3) return kBadArgument;
    if (type < 2) return kOk;
    sy_direction_t dir = type == 2 ? SY_REQUEST : SY_RESPONSE;
    return on_conn(
        vm, c, [dir](sy_conn_t* conn, void* filter) { g_host->conn_resume(conn, filter, dir); });
  }
  if (type > 1) return kBadArgument;
  sy_direction_t dir = type == 0 ? SY_REQUEST : SY_RESPONSE;
  return on_stream(vm, [dir](sy_stream_t* s) { g_host->resume(s, dir); });
}
int64_t h_continue_stream(Vm& vm, const wasmtime_val_t* a) { return continue_dir(vm, u32(a, 0)); }
int64_t h_continue_request(Vm& vm, const wasmtime_val_t*) { return continue_dir(vm, 0); }
int64_t h_continue_response(Vm& vm, const wasmtime_val_t*) { return continue_dir(vm, 1); }

int64_t h_close_stream(Vm& vm, const wasmtime_val_t* a) {
  StreamCtx* c = vm.effective_stream();
  if (c && c->conn) {
    // Envoy closes the connection with FlushWrite for DOWNSTREAM and for UPSTREAM: what is
    // queued still goes out. Here: a FIN both ways after the queued bytes, then the close.
    uint32_t type = u32(a, 0);
    if (type > 3) return kBadArgument;
    if (type < 2) return kOk;
    return on_conn(vm, c, [](sy_conn_t* conn, void*) {
      g_host->conn_shutdown_write(conn, SY_RESPONSE);
      g_host->conn_shutdown_write(conn, SY_REQUEST);
    });
  }
  if (u32(a, 0) > 1) return kBadArgument;
  return on_stream(vm, [](sy_stream_t* s) { g_host->stream_reset(s, str("wasm_close_stream")); });
}

int64_t h_send_local_response(Vm& vm, const wasmtime_val_t* a) {
  uint32_t status = u32(a, 0);
  std::string_view details, body, hdrs;
  if (!vm.read(u32(a, 1), u32(a, 2), &details) || !vm.read(u32(a, 3), u32(a, 4), &body) ||
      !vm.read(u32(a, 5), u32(a, 6), &hdrs))
    return kInvalidMemoryAccess;
  auto kv = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
  if (!parse_pairs(hdrs, kv.get())) return kBadArgument;
  if (status < 100 || status > 599) return kBadArgument;
  int32_t grpc = a[7].of.i32;
  if (grpc >= 0 && grpc != 0xffff) {
    // A gRPC reply: the status goes in grpc-status, as Envoy's sendLocalReply does.
    kv->emplace_back("grpc-status", std::to_string(grpc));
    if (!details.empty()) kv->emplace_back("grpc-message", std::string(details));
  }
  StreamCtx* c = vm.effective_stream();
  if (c) c->local_reply_sent = true;
  std::string b(body), d = details.empty() ? std::string("wasm_local_reply") : std::string(details);
  return on_stream(vm, [status, kv, b, d](sy_stream_t* s) {
    std::vector<sy_header_t> h;
    for (const auto& [k, v] : *kv) h.push_back({str(k), str(v)});
    if (g_host->send_local_reply(s, status, h.data(), h.size(), str(b), str(d)) != SY_OK)
      g_host->stream_reset(s, str(d));  // the response started: end it instead
  });
}

int64_t h_get_status(Vm& vm, const wasmtime_val_t* a) {
  uint32_t code;
  std::string_view message;
  if (grpc_status(vm, &code, &message)) {
    std::string copy(message);
    return vm.write_u32(u32(a, 0), code) && vm.give(copy, u32(a, 1), u32(a, 2))
               ? kOk
               : kInvalidMemoryAccess;
  }
  const sy_callout_response_t* r = vm.call_response;
  if (!r) return kNotFound;
  return vm.write_u32(u32(a, 0), r->status) && vm.give(view(r->failure), u32(a, 1), u32(a, 2))
             ? kOk
             : kInvalidMemoryAccess;
}

// ---- properties ----

bool integer_property(std::string_view p) {
  return p == "source.port" || p == "destination.port" || p == "upstream.port" ||
         p == "request.size" || p == "request.total_size" || p == "response.code" ||
         p == "response.size" || p == "response.total_size" || p == "connection.id" ||
         p == "response.grpc_status";
}

int64_t h_get_property(Vm& vm, const wasmtime_val_t* a) {
  std::string_view raw;
  if (!vm.read(u32(a, 0), u32(a, 1), &raw)) return kInvalidMemoryAccess;
  // Segments are NUL-separated (and NUL-terminated); the host's attribute paths use dots.
  std::string path(raw);
  while (!path.empty() && path.back() == '\0') path.pop_back();
  for (char& ch : path)
    if (ch == '\0') ch = '.';
  Plugin* plugin = vm.cur_plugin();
  std::string value;
  if (path == "plugin_name" || path == "plugin_root_id") {
    if (!plugin) return kNotFound;
    value = path == "plugin_name" ? plugin->cfg.name : plugin->cfg.root_id;
  } else if (path == "plugin_vm_id") {
    value = vm.group->cfg.vm_id;
  } else if ((path == "request.query" || path == "request.url_path") && cur_stream(vm)) {
    // Envoy's split of request.path at '?' (the ABI gives the whole path).
    sy_str_t p;
    if (g_host->attribute_get(cur_stream(vm), str("request.path"), &p) != SY_OK) return kNotFound;
    std::string_view whole = view(p);
    size_t q = whole.find('?');
    if (path == "request.url_path")
      value = whole.substr(0, q);
    else
      value = q == std::string_view::npos ? "" : whole.substr(q + 1);
  } else {
    StreamCtx* c = vm.effective_stream();
    sy_str_t v;
    sy_status_t st = SY_ERR_NOT_FOUND;
    if (c && c->s)
      st = g_host->attribute_get(c->s, str(path), &v);
    else if (c && c->conn)
      st = g_host->conn_attribute_get(c->conn, str(path), &v);
    if (st != SY_OK) return kNotFound;
    value.assign(v.ptr, v.len);
    // Envoy's source.address and destination.address carry the port ("ip:port").
    if ((path == "source.address" || path == "destination.address") &&
        value.find(':') == std::string::npos && value.find(']') == std::string::npos) {
      std::string port_path = path.substr(0, path.find('.')) + ".port";
      sy_str_t port;
      if (c->s && g_host->attribute_get(c->s, str(port_path), &port) == SY_OK)
        value += ":" + std::string(view(port));
      else if (c->conn && g_host->conn_attribute_get(c->conn, str(port_path), &port) == SY_OK)
        value += ":" + std::string(view(port));
    }
    // Envoy serializes integer and time properties as 8-byte little-endian integers
    // (timestamps and durations in nanoseconds); the ABI gives decimal text.
    bool time = path == "request.time" || path == "request.duration";
    if (integer_property(path) || time) {
      int64_t n = strtoll(value.c_str(), nullptr, 10);
      if (time) n *= 1000000;
      value.assign(reinterpret_cast<const char*>(&n), 8);
    }
  }
  return vm.give(value, u32(a, 2), u32(a, 3)) ? kOk : kInvalidMemoryAccess;
}

int64_t h_set_property(Vm& vm, const wasmtime_val_t* a) {
  std::string_view k, v;
  if (!vm.read(u32(a, 0), u32(a, 1), &k) || !vm.read(u32(a, 2), u32(a, 3), &v))
    return kInvalidMemoryAccess;
  std::string key(k), val(v);
  for (char& ch : key)
    if (ch == '\0') ch = '.';
  sy_stream_t* s = cur_stream(vm);
  if (!s) return kNotFound;
  return g_host->filter_state_set(s, str(key), str(val)) == SY_OK ? kOk : kBadArgument;
}

// ---- shared data and queues: one namespace per vm_id, as Envoy's ----

std::string shared_key(Vm& vm, std::string_view key) {
  return "wasm/" + vm.group->cfg.vm_id + "/" + std::string(key);
}

int64_t h_get_shared_data(Vm& vm, const wasmtime_val_t* a) {
  std::string_view key;
  if (!vm.read(u32(a, 0), u32(a, 1), &key)) return kInvalidMemoryAccess;
  struct Got {
    bool found = false;
    std::string value;
    uint64_t cas = 0;
  } got;
  g_host->shared_get(
      str(shared_key(vm, key)),
      [](void* ctx, sy_str_t bytes, uint64_t cas) {
        auto* g = static_cast<Got*>(ctx);
        g->found = true;
        g->value.assign(bytes.ptr, bytes.len);
        g->cas = cas;
      },
      &got);
  if (!got.found) return kNotFound;
  if (!vm.write_u32(u32(a, 4), uint32_t(got.cas))) return kInvalidMemoryAccess;
  return vm.give(got.value, u32(a, 2), u32(a, 3)) ? kOk : kInvalidMemoryAccess;
}

int64_t h_set_shared_data(Vm& vm, const wasmtime_val_t* a) {
  std::string_view key, value;
  if (!vm.read(u32(a, 0), u32(a, 1), &key) || !vm.read(u32(a, 2), u32(a, 3), &value))
    return kInvalidMemoryAccess;
  sy_status_t st = g_host->shared_set(str(shared_key(vm, key)), str(value), u32(a, 4));
  if (st == SY_ERR_CAS_MISMATCH) return kCasMismatch;
  return st == SY_OK ? kOk : kInternalFailure;
}

int64_t h_register_queue(Vm& vm, const wasmtime_val_t* a) {
  std::string_view name;
  if (!vm.read(u32(a, 0), u32(a, 1), &name)) return kInvalidMemoryAccess;
  uint32_t id = 0;
  if (g_host->queue_register(vm.group->mod->self, vm.cur_worker(), str(shared_key(vm, name)),
                             &id) != SY_OK)
    return kInternalFailure;
  return vm.write_u32(u32(a, 2), id) ? kOk : kInvalidMemoryAccess;
}

int64_t h_resolve_queue(Vm& vm, const wasmtime_val_t* a) {
  std::string_view vm_id, name;
  if (!vm.read(u32(a, 0), u32(a, 1), &vm_id) || !vm.read(u32(a, 2), u32(a, 3), &name))
    return kInvalidMemoryAccess;
  std::string full = "wasm/" + std::string(vm_id) + "/" + std::string(name);
  uint32_t id = 0;
  if (g_host->queue_resolve(str(full), &id) != SY_OK) return kNotFound;
  return vm.write_u32(u32(a, 4), id) ? kOk : kInvalidMemoryAccess;
}

int64_t h_enqueue(Vm& vm, const wasmtime_val_t* a) {
  std::string_view data;
  if (!vm.read(u32(a, 1), u32(a, 2), &data)) return kInvalidMemoryAccess;
  sy_status_t st = g_host->queue_enqueue(u32(a, 0), str(data));
  return st == SY_OK ? kOk : st == SY_ERR_NOT_FOUND ? kNotFound : kInternalFailure;
}

int64_t h_dequeue(Vm& vm, const wasmtime_val_t* a) {
  std::string got;
  sy_status_t st = g_host->queue_dequeue(
      u32(a, 0),
      [](void* ctx, sy_str_t bytes, uint64_t) {
        static_cast<std::string*>(ctx)->assign(bytes.ptr, bytes.len);
      },
      &got);
  if (st == SY_ERR_EMPTY) return kEmpty;
  if (st != SY_OK) return kNotFound;
  return vm.give(got, u32(a, 1), u32(a, 2)) ? kOk : kInvalidMemoryAccess;
}

// ---- metrics ----

int64_t h_define_metric(Vm& vm, const wasmtime_val_t* a) {
  std::string_view name;
  if (!vm.read(u32(a, 1), u32(a, 2), &name)) return kInvalidMemoryAccess;
  uint32_t type = u32(a, 0);
  if (type > 2) return kBadArgument;
  uint32_t id = 0;
  std::string n(name);
  // Envoy keeps plugin metrics under "wasmcustom." and shows them in Prometheus without that
  // prefix (and without its envoy_ prefix): the name with every byte outside [A-Za-z0-9_] made
  // '_'. The host's reserved label __name__ gives the Prometheus family that name.
  std::string prom(n);
  for (char& ch : prom)
    if (!isalnum((unsigned char)ch) && ch != '_') ch = '_';
  sy_label_t label{str("__name__"), str(prom)};
  // Envoy takes any name; the host's are [A-Za-z0-9_.:-] (Go's metrics example writes
  // "name_tag=value"), so other bytes become '_' in /stats.
  for (char& ch : n)
    if (!isalnum((unsigned char)ch) && ch != '_' && ch != '.' && ch != ':' && ch != '-') ch = '_';
  if (n.size() > 200) n.resize(200);
  if (prom.size() > 200) prom.resize(200);
  if (g_host->metric_define(vm.group->mod->self, sy_metric_kind_t(type), str(n), &label, 1, &id) !=
      SY_OK)
    return kBadArgument;
  return vm.write_u32(u32(a, 3), id) ? kOk : kInvalidMemoryAccess;
}

int64_t h_increment_metric(Vm& vm, const wasmtime_val_t* a) {
  sy_status_t st = g_host->metric_add(vm.group->mod->self, u32(a, 0), a[1].of.i64);
  return st == SY_OK ? kOk : st == SY_ERR_NOT_FOUND ? kNotFound : kBadArgument;
}

int64_t h_record_metric(Vm& vm, const wasmtime_val_t* a) {
  int64_t cur = 0;
  sy_module_t* m = vm.group->mod->self;
  uint32_t id = u32(a, 0);
  if (g_host->metric_get(m, id, &cur) != SY_OK) return kNotFound;
  // A gauge is set; a histogram records; a counter cannot be set in Proxy-Wasm either.
  sy_status_t st = g_host->metric_set(m, id, a[1].of.i64);
  if (st != SY_OK) st = g_host->metric_record(m, id, uint64_t(a[1].of.i64));
  return st == SY_OK ? kOk : kBadArgument;
}

int64_t h_get_metric(Vm& vm, const wasmtime_val_t* a) {
  int64_t v = 0;
  if (g_host->metric_get(vm.group->mod->self, u32(a, 0), &v) != SY_OK) return kNotFound;
  return vm.write_u64(u32(a, 1), uint64_t(v)) ? kOk : kInvalidMemoryAccess;
}

// ---- the rest ----

int64_t h_get_configuration(Vm& vm, const wasmtime_val_t* a) {  // 0.1.0
  Plugin* p = vm.cur_plugin();
  if (!p) return kNotFound;
  return vm.give(p->cfg.plugin_configuration, u32(a, 0), u32(a, 1)) ? kOk : kInvalidMemoryAccess;
}

int64_t h_clear_route_cache(Vm& vm, const wasmtime_val_t*) {
  sy_stream_t* s = cur_stream(vm);
  if (s) g_host->clear_route_cache(s);
  return kOk;
}

}  // namespace

size_t response_header_count(Vm& vm) {
  std::vector<std::pair<std::string_view, std::string_view>> kv;
  collect_pairs(vm, 6, &kv);
  return kv.size();
}

void add_env_defs(std::vector<HostDef>* out) {
  const HostDef defs[] = {
      {"env", "proxy_log", "iii", "i", h_log},
      {"env", "proxy_get_log_level", "i", "i", h_get_log_level},
      {"env", "proxy_set_tick_period_milliseconds", "i", "i", h_set_tick},
      {"env", "proxy_get_current_time_nanoseconds", "i", "i", h_time},
      {"env", "proxy_set_effective_context", "i", "i", h_set_effective_context},
      {"env", "proxy_done", "", "i", h_done},
      {"env", "proxy_get_buffer_bytes", "iiiii", "i", h_get_buffer_bytes},
      {"env", "proxy_get_buffer_status", "iii", "i", h_get_buffer_status},
      {"env", "proxy_set_buffer_bytes", "iiiii", "i", h_set_buffer_bytes},
      {"env", "proxy_get_header_map_pairs", "iii", "i", h_get_header_map_pairs},
      {"env", "proxy_set_header_map_pairs", "iii", "i", h_set_header_map_pairs},
      {"env", "proxy_get_header_map_size", "ii", "i", h_get_header_map_size},
      {"env", "proxy_get_header_map_value", "iiiii", "i", h_get_header_map_value},
      {"env", "proxy_replace_header_map_value", "iiiii", "i", h_replace_header},
      {"env", "proxy_add_header_map_value", "iiiii", "i", h_add_header},
      {"env", "proxy_remove_header_map_value", "iii", "i", h_remove_header},
      {"env", "proxy_continue_stream", "i", "i", h_continue_stream},
      {"env", "proxy_continue_request", "", "i", h_continue_request},
      {"env", "proxy_continue_response", "", "i", h_continue_response},
      {"env", "proxy_close_stream", "i", "i", h_close_stream},
      {"env", "proxy_send_local_response", "iiiiiiii", "i", h_send_local_response},
      {"env", "proxy_get_status", "iii", "i", h_get_status},
      {"env", "proxy_get_property", "iiii", "i", h_get_property},
      {"env", "proxy_set_property", "iiii", "i", h_set_property},
      {"env", "proxy_get_shared_data", "iiiii", "i", h_get_shared_data},
      {"env", "proxy_set_shared_data", "iiiii", "i", h_set_shared_data},
      {"env", "proxy_register_shared_queue", "iii", "i", h_register_queue},
      {"env", "proxy_resolve_shared_queue", "iiiii", "i", h_resolve_queue},
      {"env", "proxy_enqueue_shared_queue", "iii", "i", h_enqueue},
      {"env", "proxy_dequeue_shared_queue", "iii", "i", h_dequeue},
      {"env", "proxy_define_metric", "iiii", "i", h_define_metric},
      {"env", "proxy_increment_metric", "iI", "i", h_increment_metric},
      {"env", "proxy_record_metric", "iI", "i", h_record_metric},
      {"env", "proxy_get_metric", "ii", "i", h_get_metric},
      {"env", "proxy_get_configuration", "ii", "i", h_get_configuration},
      {"env", "proxy_clear_route_cache", "", "i", h_clear_route_cache},
  };
  out->insert(out->end(), std::begin(defs), std::end(defs));
}

}  // namespace sywasm
