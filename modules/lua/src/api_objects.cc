// Objects a handle hands out: header maps, buffers, metadata, stream info, connection.
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "objects.h"

namespace sylua {

// ---- common ---------------------------------------------------------------------------

[[noreturn]] void raise(lua_State* L, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  luaL_where(L, 1);
  lua_pushstring(L, buf);
  lua_concat(L, 2);
  lua_error(L);
  __builtin_unreachable();
}

Obj* new_obj(lua_State* L, Dir* d, const char* mt) {
  Obj* o = static_cast<Obj*>(lua_newuserdatauv(L, sizeof(Obj), 1));
  o->serial = d ? d->serial : 0;
  o->kind = 0;
  o->gen = 0;
  o->id = 0;
  luaL_setmetatable(L, mt);
  return o;
}

Obj* check(lua_State* L, int i, const char* mt) {
  return static_cast<Obj*>(luaL_checkudata(L, i, mt));
}

void new_class(lua_State* L, const char* mt, const luaL_Reg* methods, const luaL_Reg* extra) {
  luaL_newmetatable(L, mt);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  if (extra) luaL_setfuncs(L, extra, 0);
  lua_pop(L, 1);
}

Dir& live(lua_State* L, const Obj* o) {
  Dir* d = Vm::of(L)->running;
  if (!o || !o->serial || !d || d->serial != o->serial)
    raise(L, "object used outside of proper scope");
  return *d;
}

void push_number_text(lua_State* L, int idx) {
  if (lua_isinteger(L, idx)) {
    lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
    return;
  }
  // LuaJIT's format: 10.0 -> "10", 0.1 -> "0.1", 1e15 -> "1e+15".
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.14g", (double)lua_tonumber(L, idx));
  lua_pushstring(L, buf);
}

std::string_view arg_string(lua_State* L, int i) {
  if (lua_type(L, i) == LUA_TNUMBER) {
    push_number_text(L, i);
    lua_replace(L, i);
  }
  size_t n = 0;
  const char* p = luaL_checklstring(L, i, &n);
  return {p, n};
}

void push_json(lua_State* L, const json::Value& v) {
  switch (v.kind) {
    case json::Value::Null:
      lua_pushnil(L);
      break;
    case json::Value::Bool:
      lua_pushboolean(L, v.b);
      break;
    case json::Value::Number:
      // Integral numbers are integers, so scripts print "1234", as they do on LuaJIT.
      if (v.integral)
        lua_pushinteger(L, v.i);
      else if (std::floor(v.num) == v.num && std::fabs(v.num) < 9.0e15)
        lua_pushinteger(L, lua_Integer(v.num));
      else
        lua_pushnumber(L, v.num);
      break;
    case json::Value::String:
      lua_pushlstring(L, v.str.data(), v.str.size());
      break;
    case json::Value::Array:
      lua_createtable(L, int(v.arr.size()), 0);
      for (size_t i = 0; i < v.arr.size(); ++i) {
        push_json(L, v.arr[i]);
        lua_rawseti(L, -2, lua_Integer(i + 1));
      }
      break;
    case json::Value::Object:
      lua_createtable(L, 0, int(v.obj.size()));
      for (const auto& [k, val] : v.obj) {
        lua_pushlstring(L, k.data(), k.size());
        push_json(L, val);
        lua_rawset(L, -3);
      }
      break;
  }
}

void to_json(lua_State* L, int idx, std::string* out, int depth) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      *out += "null";
      return;
    case LUA_TBOOLEAN:
      *out += lua_toboolean(L, idx) ? "true" : "false";
      return;
    case LUA_TNUMBER: {
      push_number_text(L, idx);
      *out += lua_tostring(L, -1);
      lua_pop(L, 1);
      return;
    }
    case LUA_TSTRING: {
      size_t n;
      const char* p = lua_tolstring(L, idx, &n);
      json::write_string({p, n}, out);
      return;
    }
    case LUA_TTABLE: {
      if (depth > 32) {
        *out += "null";
        return;
      }
      lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
      bool array = len > 0;
      if (array) {
        lua_pushnil(L);
        while (lua_next(L, idx)) {
          lua_pop(L, 1);
          if (!lua_isinteger(L, -1)) array = false;
        }
      }
      if (array) {
        *out += "[";
        for (lua_Integer i = 1; i <= len; ++i) {
          if (i > 1) *out += ",";
          lua_rawgeti(L, idx, i);
          to_json(L, -1, out, depth + 1);
          lua_pop(L, 1);
        }
        *out += "]";
        return;
      }
      *out += "{";
      bool first = true;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        if (!first) *out += ",";
        first = false;
        lua_pushvalue(L, -2);
        std::string key;
        if (lua_type(L, -1) == LUA_TNUMBER) {
          push_number_text(L, -1);
          key = lua_tostring(L, -1);
          lua_pop(L, 1);
        } else {
          key = lua_tostring(L, -1) ? lua_tostring(L, -1) : "";
        }
        lua_pop(L, 1);
        json::write_string(key, out);
        *out += ":";
        to_json(L, -1, out, depth + 1);
        lua_pop(L, 1);
      }
      *out += "}";
      return;
    }
    default:
      *out += "null";
  }
}

// ---- header maps ------------------------------------------------------------------------

bool attr(Dir& d, const char* path, std::string* out) {
  sy_str_t v{};
  if (g_host->attribute_get(d.st->s, S(path), &v) != SY_OK) return false;
  out->assign(v.ptr, v.len);
  return true;
}

namespace {

struct HeaderRef {
  Dir* d;
  sy_header_kind_t kind;
  sy_stream_t* s;
};

HeaderRef hdr(lua_State* L, bool write) {
  auto* o = static_cast<Obj*>(luaL_testudata(L, 1, kHeaders));
  if (!o) o = static_cast<Obj*>(luaL_testudata(L, 1, kHeadersRo));
  if (!o) luaL_typeerror(L, 1, "header map");
  Dir& d = live(L, o);
  if (o->id != d.yield_gen) raise(L, "object used outside of proper scope");
  auto kind = sy_header_kind_t(o->kind);
  if (write) {
    if (d.iterating & (1u << kind)) raise(L, "header map cannot be modified while iterating");
    // Header blocks are editable until they go on; trailers (arriving last) stay editable.
    Dir& owner =
        d.st->dir[(kind == SY_REQUEST_HEADERS || kind == SY_REQUEST_TRAILERS) ? SY_REQUEST
                                                                              : SY_RESPONSE];
    if ((kind == SY_REQUEST_HEADERS || kind == SY_RESPONSE_HEADERS) && owner.headers_continued)
      raise(L, "header map can no longer be modified");
    if (kind == SY_REQUEST_HEADERS) owner.headers_modified = true;
  }
  return {&d, kind, d.st->s};
}

int h_get(lua_State* L) {
  HeaderRef h = hdr(L, false);
  std::string_view name = arg_string(L, 2);
  size_t n = g_host->header_count(h.s, h.kind, S(name));
  if (n == 0) return 0;  // Envoy returns no value, not nil
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; ++i) {
    sy_str_t v{};
    g_host->header_get(h.s, h.kind, S(name), i, &v);
    if (i) luaL_addchar(&b, ',');
    luaL_addlstring(&b, v.ptr, v.len);
  }
  luaL_pushresult(&b);
  return 1;
}

int h_get_at_index(lua_State* L) {
  HeaderRef h = hdr(L, false);
  std::string_view name = arg_string(L, 2);
  lua_Integer i = luaL_checkinteger(L, 3);
  size_t n = g_host->header_count(h.s, h.kind, S(name));
  if (i < 0 || size_t(i) >= n) return 0;
  sy_str_t v{};
  g_host->header_get(h.s, h.kind, S(name), size_t(i), &v);
  lua_pushlstring(L, v.ptr, v.len);
  return 1;
}

int h_num_values(lua_State* L) {
  HeaderRef h = hdr(L, false);
  std::string_view name = arg_string(L, 2);
  lua_pushinteger(L, lua_Integer(g_host->header_count(h.s, h.kind, S(name))));
  return 1;
}

void check_status(lua_State* L, sy_status_t st, std::string_view name) {
  if (st == SY_OK) return;
  if (st == SY_ERR_WRONG_PHASE) raise(L, "header map can no longer be modified");
  if (st == SY_ERR_TOO_LARGE)
    raise(L, "header '%.*s' would take the header map over the listener's limits", int(name.size()),
          name.data());
  raise(L, "invalid header '%.*s'", int(name.size()), name.data());
}

int h_add(lua_State* L) {
  HeaderRef h = hdr(L, true);
  std::string_view name = arg_string(L, 2);
  std::string_view value = arg_string(L, 3);
  check_status(L, g_host->header_add(h.s, h.kind, S(name), S(value)), name);
  return 0;
}

int h_replace(lua_State* L) {
  HeaderRef h = hdr(L, true);
  std::string_view name = arg_string(L, 2);
  std::string_view value = arg_string(L, 3);
  // Envoy's replace removes every value and appends the new one (the header moves last).
  sy_status_t st = g_host->header_remove(h.s, h.kind, S(name));
  if (st == SY_OK || st == SY_ERR_NOT_FOUND)
    st = g_host->header_add(h.s, h.kind, S(name), S(value));
  check_status(L, st, name);
  return 0;
}

int h_remove(lua_State* L) {
  HeaderRef h = hdr(L, true);
  std::string_view name = arg_string(L, 2);
  sy_status_t st = g_host->header_remove(h.s, h.kind, S(name));
  if (st != SY_OK && st != SY_ERR_NOT_FOUND) check_status(L, st, name);
  return 0;
}

int h_reason(lua_State* L) {
  // The HTTP/1 reason phrase is the proxy's own ("OK", ...); the ABI has no slot for it.
  hdr(L, true);
  luaL_checkstring(L, 2);
  return 0;
}

int h_iter(lua_State* L) {
  Obj* o = static_cast<Obj*>(lua_touserdata(L, lua_upvalueindex(1)));
  Dir& d = live(L, o);
  auto gen = uint32_t(lua_tointeger(L, lua_upvalueindex(3)));
  if (gen != d.yield_gen) raise(L, "object used outside of proper scope");
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(2));
  auto kind = sy_header_kind_t(o->kind);
  sy_str_t name{}, value{};
  if (g_host->header_at(d.st->s, kind, size_t(i), &name, &value) != SY_OK) {
    d.iterating &= ~(1u << kind);
    return 0;
  }
  lua_pushinteger(L, i + 1);
  lua_replace(L, lua_upvalueindex(2));
  lua_pushlstring(L, name.ptr, name.len);
  lua_pushlstring(L, value.ptr, value.len);
  return 2;
}

int h_pairs(lua_State* L) {
  HeaderRef h = hdr(L, false);
  if (h.d->iterating & (1u << h.kind))
    raise(L, "cannot create a second iterator before completing the first");
  h.d->iterating |= 1u << h.kind;
  lua_pushvalue(L, 1);
  lua_pushinteger(L, 0);
  lua_pushinteger(L, h.d->yield_gen);
  lua_pushcclosure(L, h_iter, 3);
  return 1;
}

// ---- buffers ----------------------------------------------------------------------------

struct BufRef {
  Dir* d;
  sy_body_part_t part;
  sy_str_t data;
};

BufRef buf(lua_State* L) {
  Obj* o = check(L, 1, kBuffer);
  Dir& d = live(L, o);
  auto part = sy_body_part_t(o->kind);
  // Like Envoy's, a buffer does not survive a yield; a chunk not even the next iteration.
  if (o->id != d.yield_gen || (part == SY_BODY_CHUNK && o->gen != d.chunk_gen))
    raise(L, "object used outside of proper scope");
  sy_str_t data{};
  g_host->body_get(d.st->s, d.d, part, &data);
  return {&d, part, data};
}

int b_length(lua_State* L) {
  BufRef b = buf(L);
  lua_pushinteger(L, lua_Integer(b.data.len));
  return 1;
}

int b_get_bytes(lua_State* L) {
  BufRef b = buf(L);
  lua_Integer index = luaL_checkinteger(L, 2);
  lua_Integer len = luaL_checkinteger(L, 3);
  if (index < 0 || len < 0 || uint64_t(index) + uint64_t(len) > b.data.len)
    raise(L, "index/length must be >= 0 and (index + length) must be <= buffer size");
  lua_pushlstring(L, b.data.ptr + index, size_t(len));
  return 1;
}

int b_set_bytes(lua_State* L) {
  BufRef b = buf(L);
  std::string_view data = arg_string(L, 2);
  if (g_host->body_replace(b.d->st->s, b.d->d, b.part, S(data)) != SY_OK)
    raise(L, "the body can no longer be modified");
  lua_pushinteger(L, lua_Integer(data.size()));
  return 1;
}

int b_tostring(lua_State* L) {
  BufRef b = buf(L);
  lua_pushlstring(L, b.data.ptr, b.data.len);
  return 1;
}

// ---- metadata-like objects (route, virtual host, filter context) ------------------------

int m_get(lua_State* L) {
  check(L, 1, kMeta);
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  return lua_gettable(L, -2) == LUA_TNIL ? 0 : 1;  // a missing key: no value, as in Envoy
}

int m_pairs(lua_State* L) {
  check(L, 1, kMeta);
  lua_getglobal(L, "next");
  lua_getiuservalue(L, 1, 1);
  lua_pushnil(L);
  return 3;
}

// ---- dynamic metadata -------------------------------------------------------------------

// This filter's namespaces, as a Lua table kept for the stream (so that a value set on the
// request is read back on the response with its Lua type), mirrored into the host as JSON.
void push_md_table(lua_State* L, Dir& d) {
  Stream& st = *d.st;
  if (st.metadata_ref == LUA_NOREF) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    st.metadata_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, st.metadata_ref);
}

void copy_value(lua_State* L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  int t = lua_type(L, idx);
  if (t == LUA_TTABLE) {
    if (depth > 32) raise(L, "dynamicMetadata value nested too deep");
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      int kt = lua_type(L, -2);
      if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
        raise(L, "unexpected type '%s' in dynamicMetadata", luaL_typename(L, -2));
      lua_pushvalue(L, -2);
      copy_value(L, -2, depth + 1);
      lua_rawset(L, -5);
      lua_pop(L, 1);
    }
    return;
  }
  if (t == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, idx);
    if (!lua_isinteger(L, idx) && std::floor(n) == n && std::fabs(n) < 9.0e15)
      lua_pushinteger(L, lua_Integer(n));  // stored as a number, read back as LuaJIT shows it
    else
      lua_pushvalue(L, idx);
    return;
  }
  if (t == LUA_TSTRING || t == LUA_TBOOLEAN || t == LUA_TNIL) {
    lua_pushvalue(L, idx);
    return;
  }
  raise(L, "unexpected type '%s' in dynamicMetadata", luaL_typename(L, idx));
}

int dm_get(lua_State* L) {
  Dir& d = live(L, check(L, 1, kDynMeta));
  luaL_checkstring(L, 2);
  push_md_table(L, d);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) == LUA_TNIL) return 0;  // Envoy returns no value for a missing namespace
  copy_value(L, -1, 0);
  return 1;
}

int dm_set(lua_State* L) {
  Dir& d = live(L, check(L, 1, kDynMeta));
  if (d.st->vm->running != &d) raise(L, "object used outside of proper scope");
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  if (d.iterating & 0x10u) raise(L, "dynamic metadata map cannot be modified while iterating");
  copy_value(L, 4, 0);  // validates the type
  int value = lua_gettop(L);
  push_md_table(L, d);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushvalue(L, 3);
  lua_pushvalue(L, value);
  lua_rawset(L, -3);
  std::string text;
  if (lua_type(L, value) == LUA_TSTRING) {
    size_t n;
    const char* p = lua_tolstring(L, value, &n);
    text.assign(p, n);
  } else {
    to_json(L, value, &text);
  }
  size_t nsl, keyl;
  const char* ns = lua_tolstring(L, 2, &nsl);
  const char* key = lua_tolstring(L, 3, &keyl);
  g_host->metadata_set(d.st->s, {ns, nsl}, {key, keyl}, S(text));
  return 0;
}

int dm_iter(lua_State* L) {
  Dir& d = live(L, static_cast<Obj*>(lua_touserdata(L, lua_upvalueindex(1))));
  push_md_table(L, d);
  lua_pushvalue(L, lua_upvalueindex(2));
  if (!lua_next(L, -2)) {
    d.iterating &= ~0x10u;
    return 0;
  }
  lua_pushvalue(L, -2);
  lua_replace(L, lua_upvalueindex(2));
  copy_value(L, -1, 0);
  lua_remove(L, -2);
  return 2;
}

int dm_pairs(lua_State* L) {
  Dir& d = live(L, check(L, 1, kDynMeta));
  d.iterating |= 0x10u;
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  lua_pushcclosure(L, dm_iter, 2);
  return 1;
}

// ---- filter state -----------------------------------------------------------------------

int fs_get(lua_State* L) {
  Dir& d = live(L, check(L, 1, kFilterState));
  std::string_view key = arg_string(L, 2);
  sy_str_t v{};
  if (g_host->filter_state_get(d.st->s, S(key), &v) != SY_OK) return lua_pushnil(L), 1;
  lua_pushlstring(L, v.ptr, v.len);
  return 1;
}

int fs_set(lua_State* L) {
  Dir& d = live(L, check(L, 1, kFilterState));
  std::string_view key = arg_string(L, 2);
  luaL_checkstring(L, 3);  // Envoy's object factory name: any name stores the bytes as given
  std::string_view value = arg_string(L, 4);
  g_host->filter_state_set(d.st->s, S(key), S(value));
  return 0;
}

// ---- stream info ------------------------------------------------------------------------

int push_attr(lua_State* L, const char* mt, const char* path) {
  Dir& d = live(L, check(L, 1, mt));
  std::string v;
  attr(d, path, &v);
  lua_pushlstring(L, v.data(), v.size());
  return 1;
}

int si_protocol(lua_State* L) { return push_attr(L, kStreamInfo, "request.protocol"); }
int si_route_name(lua_State* L) { return push_attr(L, kStreamInfo, "xds.route_name"); }
int si_sni(lua_State* L) { return push_attr(L, kStreamInfo, "connection.requested_server_name"); }
int si_local(lua_State* L) { return push_attr(L, kStreamInfo, "destination.address"); }
int si_remote(lua_State* L) {
  Dir& d = live(L, check(L, 1, kStreamInfo));
  std::string ip, port;
  attr(d, "source.address", &ip);
  attr(d, "source.port", &port);
  if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";
  std::string v = ip + ":" + port;
  lua_pushlstring(L, v.data(), v.size());
  return 1;
}
int si_virtual_cluster(lua_State* L) {
  live(L, check(L, 1, kStreamInfo));
  lua_pushliteral(L, "");
  return 1;
}
int si_dynamic_metadata(lua_State* L) {
  Dir& d = live(L, check(L, 1, kStreamInfo));
  new_obj(L, &d, kDynMeta);
  return 1;
}
int si_typed_metadata(lua_State* L) {
  live(L, check(L, 1, kStreamInfo));
  luaL_checkstring(L, 2);
  lua_pushnil(L);  // no typed metadata crosses the ABI
  return 1;
}
int si_filter_state(lua_State* L) {
  Dir& d = live(L, check(L, 1, kStreamInfo));
  new_obj(L, &d, kFilterState);
  return 1;
}
int si_ssl(lua_State* L) {
  Dir& d = live(L, check(L, 1, kStreamInfo));
  push_ssl(L, d);
  return 1;
}
int si_drain(lua_State* L) {
  live(L, check(L, 1, kStreamInfo));
  return 0;  // the proxy decides on connection reuse itself
}

// ---- connection -------------------------------------------------------------------------

int conn_ssl(lua_State* L) {
  Dir& d = live(L, check(L, 1, kConnection));
  push_ssl(L, d);
  return 1;
}

int csi_dynamic_metadata(lua_State* L) {
  live(L, check(L, 1, kConnStreamInfo));
  push_metadata_object(L, nullptr);
  return 1;
}

// ---- route / virtual host ---------------------------------------------------------------

int rl_metadata(lua_State* L) {
  check(L, 1, kRouteLike);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

}  // namespace

// Header maps and buffers carry the yield count they were made in (in Obj::id): they die at
// the coroutine's next yield, as Envoy's do.
void push_headers(lua_State* L, Dir& d, sy_header_kind_t kind, bool read_only) {
  Obj* o = new_obj(L, &d, read_only ? kHeadersRo : kHeaders);
  o->kind = kind;
  o->id = d.yield_gen;
}

void push_buffer(lua_State* L, Dir& d, sy_body_part_t part) {
  Obj* o = new_obj(L, &d, kBuffer);
  o->kind = part;
  o->gen = d.chunk_gen;
  o->id = d.yield_gen;
}

void push_metadata_object(lua_State* L, const json::Value* v) {
  new_obj(L, nullptr, kMeta);
  if (v && v->is_object())
    push_json(L, *v);
  else
    lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
}

// Route and virtual host objects: metadata() returns the object made here.
void push_route_like(lua_State* L, const json::Value* v) {
  new_obj(L, nullptr, kRouteLike);
  push_metadata_object(L, v);
  lua_setiuservalue(L, -2, 1);
}

void push_stream_info(lua_State* L, Dir& d) { new_obj(L, &d, kStreamInfo); }
void push_connection(lua_State* L, Dir& d) { new_obj(L, &d, kConnection); }
void push_conn_stream_info(lua_State* L, Dir& d) { new_obj(L, &d, kConnStreamInfo); }

void register_objects(lua_State* L) {
  static const luaL_Reg headers[] = {{"get", h_get},
                                     {"getAtIndex", h_get_at_index},
                                     {"getNumValues", h_num_values},
                                     {"add", h_add},
                                     {"replace", h_replace},
                                     {"remove", h_remove},
                                     {"setHttp1ReasonPhrase", h_reason},
                                     {nullptr, nullptr}};
  static const luaL_Reg headers_ro[] = {{"get", h_get},
                                        {"getAtIndex", h_get_at_index},
                                        {"getNumValues", h_num_values},
                                        {nullptr, nullptr}};
  static const luaL_Reg pairs[] = {{"__pairs", h_pairs}, {nullptr, nullptr}};
  new_class(L, kHeaders, headers, pairs);
  new_class(L, kHeadersRo, headers_ro, pairs);
  static const luaL_Reg buffer[] = {{"length", b_length},
                                    {"getBytes", b_get_bytes},
                                    {"setBytes", b_set_bytes},
                                    {nullptr, nullptr}};
  static const luaL_Reg buffer_mt[] = {{"__tostring", b_tostring}, {nullptr, nullptr}};
  new_class(L, kBuffer, buffer, buffer_mt);
  static const luaL_Reg meta[] = {{"get", m_get}, {nullptr, nullptr}};
  static const luaL_Reg meta_mt[] = {{"__pairs", m_pairs}, {nullptr, nullptr}};
  new_class(L, kMeta, meta, meta_mt);
  static const luaL_Reg dm[] = {{"get", dm_get}, {"set", dm_set}, {nullptr, nullptr}};
  static const luaL_Reg dm_mt[] = {{"__pairs", dm_pairs}, {nullptr, nullptr}};
  new_class(L, kDynMeta, dm, dm_mt);
  static const luaL_Reg fs[] = {{"get", fs_get}, {"set", fs_set}, {nullptr, nullptr}};
  new_class(L, kFilterState, fs, nullptr);
  static const luaL_Reg si[] = {{"protocol", si_protocol},
                                {"routeName", si_route_name},
                                {"requestedServerName", si_sni},
                                {"downstreamLocalAddress", si_local},
                                {"downstreamDirectLocalAddress", si_local},
                                {"downstreamRemoteAddress", si_remote},
                                {"downstreamDirectRemoteAddress", si_remote},
                                {"virtualClusterName", si_virtual_cluster},
                                {"dynamicMetadata", si_dynamic_metadata},
                                {"dynamicTypedMetadata", si_typed_metadata},
                                {"filterState", si_filter_state},
                                {"downstreamSslConnection", si_ssl},
                                {"drainConnectionUponCompletion", si_drain},
                                {nullptr, nullptr}};
  new_class(L, kStreamInfo, si, nullptr);
  static const luaL_Reg conn[] = {{"ssl", conn_ssl}, {nullptr, nullptr}};
  new_class(L, kConnection, conn, nullptr);
  static const luaL_Reg csi[] = {{"dynamicMetadata", csi_dynamic_metadata}, {nullptr, nullptr}};
  new_class(L, kConnStreamInfo, csi, nullptr);
  static const luaL_Reg rl[] = {{"metadata", rl_metadata}, {nullptr, nullptr}};
  new_class(L, kRouteLike, rl, nullptr);
}

}  // namespace sylua
