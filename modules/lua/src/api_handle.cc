// The stream handle: request_handle / response_handle and its methods (Envoy's API), plus
// Switchyard's additions (ctx, sharedDict).
#include <arpa/inet.h>
#include <time.h>

#include <cctype>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "objects.h"

namespace sylua {
namespace {

Dir& handle(lua_State* L) { return live(L, check(L, 1, kHandle)); }

// A header value from Lua: numbers as LuaJIT prints them (7.0 is "7").
std::string value_text(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    push_number_text(L, idx);
    std::string v = lua_tostring(L, -1);
    lua_pop(L, 1);
    return v;
  }
  size_t n = 0;
  const char* p = lua_tolstring(L, idx, &n);
  return std::string(p ? p : "", n);
}

// A header table (already validated: string names; values strings, numbers or arrays of
// them) as a flat name/value list, names lower-cased, SKIP left out. Raises no error.
struct HeaderList {
  std::vector<std::string> store;  // name, value, name, value, ...
  std::vector<sy_header_t> views;
};

void collect_headers(lua_State* L, int idx, const char* skip, HeaderList* out) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    std::string k = lua_tostring(L, -2);
    for (auto& ch : k) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (k != skip) {
      if (lua_istable(L, -1)) {
        auto n = lua_Integer(lua_rawlen(L, -1));
        for (lua_Integer i = 1; i <= n; ++i) {
          lua_rawgeti(L, -1, i);
          if (lua_isstring(L, -1)) {
            out->store.push_back(k);
            out->store.push_back(value_text(L, -1));
          }
          lua_pop(L, 1);
        }
      } else {
        out->store.push_back(k);
        out->store.push_back(value_text(L, -1));
      }
    }
    lua_pop(L, 1);
  }
  for (size_t i = 0; i + 1 < out->store.size(); i += 2)
    out->views.push_back({S(out->store[i]), S(out->store[i + 1])});
}

int yield_for(lua_State* L, Dir& d, State s) {
  d.state = s;
  return lua_yield(L, 0);
}

// ---- headers, body, trailers ----------------------------------------------------------

int l_headers(lua_State* L) {
  Dir& d = handle(L);
  push_headers(L, d, d.is_request() ? SY_REQUEST_HEADERS : SY_RESPONSE_HEADERS, false);
  return 1;
}

// Whether this filter still holds the direction's body (it has not let it go on).
bool holding_body(Dir& d) { return !d.headers_continued; }

int l_body(lua_State* L) {
  Dir& d = handle(L);
  bool always_wrap = false;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    always_wrap = lua_toboolean(L, 2);
  }
  if (d.body_streamed) raise(L, "cannot call body() after body streaming has started");
  if (d.headers_end) {
    if (!always_wrap) return lua_pushnil(L), 1;
    push_buffer(L, d, SY_BODY_BUFFERED);
    return 1;
  }
  if (!holding_body(d)) raise(L, "cannot call body() after body has been streamed");
  d.body_buffered = true;
  if (d.end_seen) {
    push_buffer(L, d, SY_BODY_BUFFERED);
    return 1;
  }
  return yield_for(L, d, State::WaitBody);
}

int chunk_iter(lua_State* L) {
  Dir& d = live(L, static_cast<Obj*>(lua_touserdata(L, lua_upvalueindex(1))));
  ++d.chunk_gen;  // the previous chunk is dead now
  if (d.end_seen) return lua_pushnil(L), 1;
  return yield_for(L, d, State::WaitChunk);
}

int l_body_chunks(lua_State* L) {
  Dir& d = handle(L);
  if (d.body_buffered || d.body_streamed)
    raise(L, "cannot call bodyChunks after body processing has begun");
  d.body_streamed = true;
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, chunk_iter, 1);
  return 1;
}

int l_trailers(lua_State* L) {
  Dir& d = handle(L);
  sy_header_kind_t kind = d.is_request() ? SY_REQUEST_TRAILERS : SY_RESPONSE_TRAILERS;
  if (d.trailers_seen) {
    push_headers(L, d, kind, false);
    return 1;
  }
  if (d.end_seen) return lua_pushnil(L), 1;
  return yield_for(L, d, State::WaitTrailers);
}

// ---- metadata-like ---------------------------------------------------------------------

const json::Value* route_metadata(Dir& d) {
  if (d.st->rc && d.st->rc->metadata.is_object()) return &d.st->rc->metadata;
  return &d.st->cfg->metadata;
}

int l_metadata(lua_State* L) {
  Dir& d = handle(L);
  push_metadata_object(L, route_metadata(d));
  return 1;
}

int l_route(lua_State* L) {
  Dir& d = handle(L);
  push_route_like(L, route_metadata(d));
  return 1;
}

int l_virtual_host(lua_State* L) {
  Dir& d = handle(L);
  push_route_like(L, &d.st->cfg->vhost_metadata);
  return 1;
}

int l_filter_context(lua_State* L) {
  Dir& d = handle(L);
  // The route's filter_context wins key by key over the filter's.
  json::Value merged = d.st->cfg->filter_context;
  merged.kind = json::Value::Object;
  if (d.st->rc && d.st->rc->filter_context.is_object()) {
    for (const auto& [k, v] : d.st->rc->filter_context.obj) {
      bool replaced = false;
      for (auto& [mk, mv] : merged.obj)
        if (mk == k) {
          mv = v;
          replaced = true;
        }
      if (!replaced) merged.obj.emplace_back(k, v);
    }
  }
  push_metadata_object(L, &merged);
  return 1;
}

int l_stream_info(lua_State* L) {
  push_stream_info(L, handle(L));
  return 1;
}

int l_connection(lua_State* L) {
  push_connection(L, handle(L));
  return 1;
}

int l_conn_stream_info(lua_State* L) {
  push_conn_stream_info(L, handle(L));
  return 1;
}

int l_downstream_request_headers(lua_State* L) {
  Dir& d = handle(L);
  push_headers(L, d, SY_REQUEST_HEADERS, true);
  return 1;
}

// ---- logging ---------------------------------------------------------------------------

template <sy_log_level_t Level>
int l_log(lua_State* L) {
  handle(L);
  size_t n = 0;
  const char* m = luaL_checklstring(L, 2, &n);
  if (g_host->log_enabled(Level)) g_host->log(g_module, Level, {m, n});
  return 0;
}

// ---- httpCall ---------------------------------------------------------------------------

struct Callout {
  Stream* st = nullptr;
  sy_direction_t dir = SY_REQUEST;
  bool duplicates = false;
  uint32_t status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

void callout_task(sy_stream_t* s, void* arg) {
  auto* c = static_cast<Callout*>(arg);
  Stream* st = c->st;
  st->s = s;
  Dir& d = st->dir[c->dir];
  if (d.state != State::HttpCall || !d.co) {
    delete c;
    return;
  }
  lua_State* co = d.co;
  lua_checkstack(co, 8);
  lua_newtable(co);
  if (c->status == 0) {
    // Envoy's answer to a failed call: no error, a made-up 503.
    lua_pushliteral(co, "503");
    lua_setfield(co, -2, ":status");
    lua_pushliteral(co, "upstream failure");
  } else {
    lua_pushstring(co, std::to_string(c->status).c_str());
    lua_setfield(co, -2, ":status");
    for (const auto& [k, v] : c->headers) {
      if (k == ":status") continue;
      lua_checkstack(co, 4);
      if (c->duplicates) {
        // Repeated names become arrays when the script asked for them.
        lua_pushlstring(co, k.data(), k.size());
        int t = lua_rawget(co, -2);
        if (t == LUA_TSTRING) {
          lua_createtable(co, 2, 0);  // tbl, old, arr
          lua_insert(co, -2);         // tbl, arr, old
          lua_rawseti(co, -2, 1);     // tbl, arr
          lua_pushlstring(co, k.data(), k.size());
          lua_pushvalue(co, -2);
          lua_rawset(co, -4);  // tbl[k] = arr
        }
        if (t != LUA_TNIL) {  // tbl, arr
          lua_pushlstring(co, v.data(), v.size());
          lua_rawseti(co, -2, lua_Integer(lua_rawlen(co, -2) + 1));
          lua_pop(co, 1);
          continue;
        }
        lua_pop(co, 1);
      }
      lua_pushlstring(co, k.data(), k.size());
      lua_pushlstring(co, v.data(), v.size());
      lua_rawset(co, -3);
    }
    if (c->body.empty())
      lua_pushnil(co);
    else
      lua_pushlstring(co, c->body.data(), c->body.size());
  }
  delete c;
  resume(d, 2);
  resumed_async(d);
}

void callout_drop(void* arg) { delete static_cast<Callout*>(arg); }

void callout_done(void* arg, const sy_callout_response_t* r) {
  auto* c = static_cast<Callout*>(arg);
  std::string_view failure = V(r->failure);
  if (failure.empty()) {
    c->status = r->status;
    for (size_t i = 0; i < r->header_count; ++i)
      c->headers.emplace_back(std::string(V(r->headers[i].name)),
                              std::string(V(r->headers[i].value)));
    c->body.assign(V(r->body));
  } else if (failure == "timeout" || failure.starts_with("connect") || failure == "overflow") {
    // No response at all: what Envoy's router answers the call with.
    const char* text;
    if (failure == "timeout") {
      c->status = 504;
      text = "upstream request timeout";
    } else {
      c->status = 503;
      text = failure == "overflow"
                 ? "upstream connect error or disconnect/reset before headers. reset reason: "
                   "overflow"
                 : "upstream connect error or disconnect/reset before headers. reset reason: "
                   "remote connection failure";
    }
    c->body = text;
    c->headers.emplace_back("content-length", std::to_string(c->body.size()));
    c->headers.emplace_back("content-type", "text/plain");
  }
  // else (a reset, a reply too large): Envoy's made-up 503 "upstream failure" (status 0).
  // The reply comes without a stream handle: get back to the stream (if it still exists).
  g_host->post_to_stream(c->st->id, callout_task, callout_drop, c);
}

void async_done(void*, const sy_callout_response_t*) {}

// Arguments: cluster, headers, body, timeout_ms | options [, asynchronous].
int l_http_call(lua_State* L) {
  Dir& d = handle(L);
  size_t cluster_len = 0;
  const char* cluster = luaL_checklstring(L, 2, &cluster_len);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (!lua_isnoneornil(L, 4)) arg_string(L, 4);
  lua_Integer timeout = 0;
  bool asynchronous = false, duplicates = false;
  if (lua_istable(L, 5)) {
    lua_pushnil(L);
    while (lua_next(L, 5)) {
      const char* k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (!std::strcmp(k, "asynchronous")) {
        asynchronous = lua_toboolean(L, -1);
      } else if (!std::strcmp(k, "timeout_ms")) {
        timeout = luaL_checkinteger(L, -1);
      } else if (!std::strcmp(k, "return_duplicate_headers")) {
        duplicates = lua_toboolean(L, -1);
      } else if (std::strcmp(k, "trace_sampled") && std::strcmp(k, "send_xff")) {
        raise(L, "\"%s\" is not valid key for httpCall() options", k);
      }
      lua_pop(L, 1);
    }
  } else {
    timeout = luaL_checkinteger(L, 5);
    if (!lua_isnoneornil(L, 6)) {
      if (lua_type(L, 6) != LUA_TBOOLEAN)
        raise(L, "http call asynchronous flag must be 'true', 'false', or empty");
      asynchronous = lua_toboolean(L, 6);
    }
  }
  if (timeout < 0) raise(L, "http call timeout must be >= 0");
  // Validate the header table before anything is built (errors long-jump).
  bool path = false, method = false, authority = false;
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    if (lua_type(L, -2) != LUA_TSTRING) raise(L, "http call header names must be strings");
    const char* k = lua_tostring(L, -2);
    path = path || !std::strcmp(k, ":path");
    method = method || !std::strcmp(k, ":method");
    authority = authority || !std::strcmp(k, ":authority");
    int t = lua_type(L, -1);
    if (t == LUA_TTABLE) {
      lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
      for (lua_Integer i = 1; i <= n; ++i) {
        lua_rawgeti(L, -1, i);
        if (!lua_isstring(L, -1)) raise(L, "http call header values must be strings");
        lua_pop(L, 1);
      }
    } else if (t != LUA_TSTRING && t != LUA_TNUMBER) {
      raise(L, "http call header values must be strings");
    }
    lua_pop(L, 1);
  }
  if (!path || !method || !authority)
    raise(L, "http call headers must include ':path', ':method', and ':authority'");
  sy_status_t st;
  {
    HeaderList hl;
    collect_headers(L, 3, "", &hl);
    const std::vector<sy_header_t>& hs = hl.views;
    size_t body_len = 0;
    const char* body = lua_isnoneornil(L, 4) ? nullptr : lua_tolstring(L, 4, &body_len);
    if (asynchronous) {
      st = g_host->http_callout(d.st->s, nullptr, {cluster, cluster_len}, hs.data(), hs.size(),
                                {body, body_len}, uint64_t(timeout), async_done, nullptr);
    } else {
      auto* c = new Callout();
      c->st = d.st;
      c->dir = d.d;
      c->duplicates = duplicates;
      st = g_host->http_callout(d.st->s, nullptr, {cluster, cluster_len}, hs.data(), hs.size(),
                                {body, body_len}, uint64_t(timeout), callout_done, c);
      if (st != SY_OK) delete c;  // on SY_OK the reply (or failure) comes exactly once
    }
  }
  if (st == SY_ERR_NOT_FOUND) raise(L, "http call cluster invalid. Must be configured");
  if (st != SY_OK) raise(L, "http call headers are not valid HTTP headers");
  if (asynchronous) return 0;
  return yield_for(L, d, State::HttpCall);
}

// ---- respond ----------------------------------------------------------------------------

int l_respond(lua_State* L) {
  Dir& d = handle(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (d.headers_continued) {
    if (d.is_request()) raise(L, "respond() cannot be called if headers have been continued");
    raise(L, "respond() cannot be called after the response headers have gone on");
  }
  lua_getfield(L, 2, ":status");
  lua_Integer status = 0;
  if (lua_isstring(L, -1)) {
    int ok = 0;
    lua_Number n = lua_tonumberx(L, -1, &ok);
    if (ok) status = lua_Integer(n);
  }
  lua_pop(L, 1);
  if (status < 200 || status >= 600) raise(L, ":status must be between 200-599");
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING) raise(L, "respond() header names must be strings");
    if (!lua_isstring(L, -1) && !lua_istable(L, -1))
      raise(L, "respond() header values must be strings");
    lua_pop(L, 1);
  }
  sy_status_t st;
  {
    HeaderList hl;
    collect_headers(L, 2, ":status", &hl);
    const std::vector<sy_header_t>& hs = hl.views;
    size_t body_len = 0;
    const char* body = lua_isnoneornil(L, 3) ? "" : luaL_tolstring(L, 3, &body_len);
    st = g_host->send_local_reply(d.st->s, uint32_t(status), hs.data(), hs.size(), {body, body_len},
                                  S("lua_response"));
  }
  if (st != SY_OK) raise(L, "respond() is not possible once the response has started");
  return yield_for(L, d, State::Responded);
}

// ---- small services ---------------------------------------------------------------------

int64_t wall_us() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

int l_timestamp(lua_State* L) {
  handle(L);
  if (!lua_isnoneornil(L, 2) && luaL_checkinteger(L, 2) != 0)
    raise(L, "timestamp format must be MILLISECOND.");
  lua_pushinteger(L, wall_us() / 1000);
  return 1;
}

int l_timestamp_string(lua_State* L) {
  handle(L);
  lua_Integer res = lua_isnoneornil(L, 2) ? 0 : luaL_checkinteger(L, 2);
  if (res != 0 && res != 1) raise(L, "timestamp format must be MILLISECOND or MICROSECOND.");
  int64_t us = wall_us();
  lua_pushfstring(L, "%I", (LUAI_UACINT)(res == 0 ? us / 1000 : us));
  return 1;
}

int l_clear_route_cache(lua_State* L) {
  Dir& d = handle(L);
  if (d.is_request() && !d.headers_continued) g_host->clear_route_cache(d.st->s);
  return 0;
}

// "ip", "ip:port" or "[ipv6]:port", with a decimal port of 1-65535: what Envoy accepts as an
// upstream override host.
bool is_ip_and_port(std::string_view host) {
  unsigned char buf[16];
  auto parses = [&](std::string_view ip, int family) {
    if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN) return false;
    char text[INET6_ADDRSTRLEN];
    std::memcpy(text, ip.data(), ip.size());
    text[ip.size()] = 0;
    return inet_pton(family, text, buf) == 1;
  };
  if (parses(host, AF_INET) || parses(host, AF_INET6)) return true;
  size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view addr = host.substr(0, colon), port = host.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + unsigned(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']')
    return parses(addr.substr(1, addr.size() - 2), AF_INET6);
  return parses(addr, AF_INET);
}

int l_set_upstream_override_host(lua_State* L) {
  Dir& d = handle(L);
  size_t n = 0;
  const char* host = luaL_checklstring(L, 2, &n);
  bool strict = false;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    strict = lua_toboolean(L, 3);
  }
  if (!is_ip_and_port(std::string_view(host, n))) raise(L, "host is not a valid IP address");
  if (!d.is_request() || d.headers_continued) return 0;
  sy_status_t st = g_host->set_upstream_override_host(d.st->s, {host, n});
  if (st != SY_OK && strict) {
    sy_header_t h[] = {{S("content-type"), S("text/plain")}};
    if (g_host->send_local_reply(d.st->s, 503, h, 1, S("no healthy upstream"),
                                 S("lua_upstream_override_unavailable")) == SY_OK)
      return yield_for(L, d, State::Responded);
  }
  return 0;
}

// ---- beyond Envoy -----------------------------------------------------------------------

int l_ctx(lua_State* L) {
  Dir& d = handle(L);
  Stream& st = *d.st;
  if (st.ctx_ref == LUA_NOREF) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    st.ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, st.ctx_ref);
  return 1;
}

int l_stats(lua_State* L) {
  push_stats(L, handle(L));
  return 1;
}

int l_shared_dict(lua_State* L) {
  handle(L);
  size_t n = 0;
  const char* name = luaL_checklstring(L, 2, &n);
  push_dict(L, {name, n});
  return 1;
}

int l_tostring(lua_State* L) {
  Obj* o = check(L, 1, kHandle);
  lua_pushstring(L, o->kind == SY_REQUEST ? "request_handle" : "response_handle");
  return 1;
}

}  // namespace

void push_handle(lua_State* L, Dir& d) { new_obj(L, &d, kHandle)->kind = d.d; }

int crypto_import_public_key(lua_State* L);
int crypto_verify_signature(lua_State* L);
int crypto_base64_escape(lua_State* L);
int crypto_base64_decode(lua_State* L);

namespace {
template <lua_CFunction F>
int with_handle(lua_State* L) {
  handle(L);
  return F(L);
}
}  // namespace

void register_api(lua_State* L) {
  static const luaL_Reg methods[] = {{"headers", l_headers},
                                     {"body", l_body},
                                     {"bodyChunks", l_body_chunks},
                                     {"trailers", l_trailers},
                                     {"metadata", l_metadata},
                                     {"streamInfo", l_stream_info},
                                     {"connection", l_connection},
                                     {"connectionStreamInfo", l_conn_stream_info},
                                     {"logTrace", l_log<SY_LOG_TRACE>},
                                     {"logDebug", l_log<SY_LOG_DEBUG>},
                                     {"logInfo", l_log<SY_LOG_INFO>},
                                     {"logWarn", l_log<SY_LOG_WARN>},
                                     {"logErr", l_log<SY_LOG_ERROR>},
                                     {"logCritical", l_log<SY_LOG_ERROR>},
                                     {"httpCall", l_http_call},
                                     {"respond", l_respond},
                                     {"importPublicKey", with_handle<crypto_import_public_key>},
                                     {"verifySignature", with_handle<crypto_verify_signature>},
                                     {"base64Escape", with_handle<crypto_base64_escape>},
                                     {"base64Decode", with_handle<crypto_base64_decode>},
                                     {"timestamp", l_timestamp},
                                     {"timestampString", l_timestamp_string},
                                     {"clearRouteCache", l_clear_route_cache},
                                     {"setUpstreamOverrideHost", l_set_upstream_override_host},
                                     {"filterContext", l_filter_context},
                                     {"virtualHost", l_virtual_host},
                                     {"route", l_route},
                                     {"stats", l_stats},
                                     {"downstreamRequestHeaders", l_downstream_request_headers},
                                     {"ctx", l_ctx},
                                     {"sharedDict", l_shared_dict},
                                     {nullptr, nullptr}};
  static const luaL_Reg meta[] = {{"__tostring", l_tostring}, {nullptr, nullptr}};
  new_class(L, kHandle, methods, meta);
}

}  // namespace sylua
